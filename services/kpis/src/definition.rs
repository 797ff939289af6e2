//! KPI definitions: what the product owner agreed with the client, as code.
//!
//! ```yaml
//! kpis:
//!   - id: payment_success_rate
//!     title: Payment success rate
//!     owner: po@example.com
//!     unit: "%"
//!     aggregation: ratio
//!     numerator: { event: payment_succeeded }
//!     denominator: { event: [payment_succeeded, payment_failed] }
//!     scale: 100
//!     grain: day
//!     direction: higher_is_better
//!     target: 99
//!     warning: 98.5
//!     critical: 97
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A definition that breaks a rule: `field` names the member (`p`,
/// `filter.properties.amount.>=`), `reason` says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A property's condition that does not parse: `op` is the operator at fault
/// (empty when it is the condition as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BadCondition {
    pub op: String,
    pub reason: String,
}

/// Why a KPI file was refused; the message names the file, the KPI and the field.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: ParseError },
}

/// Why the text of a KPI file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("KPI `{id}`: {invalid}")]
    Kpi { id: String, invalid: Invalid },
    #[error("KPI `{0}`: `id` is defined twice")]
    Duplicate(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiFile {
    pub kpis: Vec<Kpi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    /// `[a-z0-9_]`, unique.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub unit: String,
    pub aggregation: Aggregation,
    /// Which events count (all of them when absent); for `ratio`, applies to both sides.
    #[serde(default)]
    pub filter: Filter,
    /// `ratio` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Filter>,
    /// `percentile` only: 0 < p < 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// `sum`, `avg`, `percentile`: a numeric property instead of the event's `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Multiplies the value (100 turns a ratio into a percentage).
    #[serde(default = "one")]
    pub scale: f64,
    /// Digits after the point of every answer (0..=6); default 2 for `sum` and
    /// `avg`, which add their values as whole units of that precision (cents),
    /// so that a sum is exact and the same in every answer; 6 for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
    #[serde(default)]
    pub grain: Grain,
    pub direction: Direction,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Distinct events (by event id: retries never count twice).
    Count,
    Sum,
    Avg,
    /// Distinct non-empty user ids.
    UniqueUsers,
    /// Distinct numerator events / distinct denominator events.
    Ratio,
    Percentile,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Hour,
    #[default]
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// Conditions on events, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// One event name or several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Properties and what they must match: a string, a number or a boolean
    /// (equal), or comparisons `{">=": 100, "<": 500}`, `{"!=": x}`,
    /// `{"in": [a, b]}`. Kept as written and checked by [`PropertyMatch::parse`],
    /// so that an error names the property and the operator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_json::Value>,
}

/// A property's condition, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyMatch {
    /// All of these must hold (one element for a plain value).
    All(Vec<(Op, Operand)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::In => "IN",
        }
    }
}

/// What a property is compared with; its type picks the column (string,
/// numeric or boolean properties are stored apart).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Str(String),
    Num(f64),
    Bool(bool),
    Strs(Vec<String>),
    Nums(Vec<f64>),
    Bools(Vec<bool>),
}

impl PropertyMatch {
    /// Checks one property's condition; the error names the operator at fault.
    pub fn parse(value: &serde_json::Value) -> Result<Self, BadCondition> {
        use serde_json::Value;
        let scalar = |v: &Value| -> Option<Operand> {
            match v {
                Value::String(s) => Some(Operand::Str(s.clone())),
                Value::Bool(b) => Some(Operand::Bool(*b)),
                Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map(Operand::Num),
                _ => None,
            }
        };
        let fail = |op: &str, reason: &str| {
            Err(BadCondition {
                op: op.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if let Some(operand) = scalar(value) {
            return Ok(PropertyMatch::All(vec![(Op::Eq, operand)]));
        }
        let Value::Object(ops) = value else {
            return fail(
                "",
                "must be a string, a number, a boolean or comparisons such as {\">=\": 100}",
            );
        };
        if ops.is_empty() {
            return fail("", "needs at least one comparison");
        }
        let mut all = Vec::new();
        for (name, operand) in ops {
            let op = match name.as_str() {
                "=" | "==" => Op::Eq,
                "!=" => Op::Ne,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                "<=" => Op::Le,
                "in" => Op::In,
                _ => return fail(name, "is not one of =, !=, >, >=, <, <=, in"),
            };
            let operand = match op {
                Op::In => {
                    let Value::Array(items) = operand else {
                        return fail(name, "needs a list of values");
                    };
                    if items.is_empty() || items.len() > 1000 {
                        return fail(name, "needs between 1 and 1000 values");
                    }
                    let items: Option<Vec<Operand>> = items.iter().map(scalar).collect();
                    let Some(items) = items else {
                        return fail(name, "values must be strings, numbers or booleans");
                    };
                    let strs: Option<Vec<String>> = items
                        .iter()
                        .map(|o| match o {
                            Operand::Str(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    let nums: Option<Vec<f64>> = items
                        .iter()
                        .map(|o| match o {
                            Operand::Num(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    let bools: Option<Vec<bool>> = items
                        .iter()
                        .map(|o| match o {
                            Operand::Bool(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    match (strs, nums, bools) {
                        (Some(s), _, _) => Operand::Strs(s),
                        (_, Some(n), _) => Operand::Nums(n),
                        (_, _, Some(b)) => Operand::Bools(b),
                        _ => return fail(name, "values must all be of one type"),
                    }
                }
                _ => match scalar(operand) {
                    Some(o) => o,
                    None => return fail(name, "needs a string, a number or a boolean"),
                },
            };
            let ordered = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
            if ordered && !matches!(operand, Operand::Num(_)) {
                return fail(name, "compares numbers only");
            }
            all.push((op, operand));
        }
        Ok(PropertyMatch::All(all))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(name) => vec![name.as_str()],
            OneOrMany::Many(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = KpiStatus)]
pub enum Status {
    Ok,
    Warning,
    Critical,
    NoData,
}

/// The one percentile rule of Hypercare: linear interpolation between the two
/// closest ranks (numpy's default `linear`, R type 7, Excel `PERCENTILE.INC`,
/// Prometheus' `quantile_over_time`). Over sorted `values` (x_0..x_{n-1}),
/// h = (n - 1) p and the answer is x_⌊h⌋ + (h - ⌊h⌋)(x_⌊h⌋+1 - x_⌊h⌋).
/// For 1..20 ms, p95: h = 18.05, so 19 + 0.05 × (20 - 19) = 19.05 ms.
/// `query::percentile_sql` is the same formula in SQL.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * p.clamp(0.0, 1.0);
    let low = (h.floor() as usize).min(last);
    let high = (low + 1).min(last);
    Some(sorted[low] + (h - h.floor()) * (sorted[high] - sorted[low]))
}

/// `x` rounded to `decimals` digits after the point (half away from zero).
pub fn round_to(x: f64, decimals: u8) -> f64 {
    let factor = 10f64.powi(i32::from(decimals));
    let rounded = (x * factor).round() / factor;
    // -0.0 prints as "-0.0": a sum of nothing is 0.
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// The most digits a KPI may declare: sums of up to 2^53 units stay exact, so
/// 6 digits leave room for amounts up to 9 × 10^9 in total.
pub const MAX_DECIMALS: u8 = 6;

impl Kpi {
    /// Digits after the point of this KPI's answers: as declared, else 2 for
    /// `sum` and `avg` (money), else 6 (enough for rates and latencies, and no
    /// last-bit noise of floating point in the answers).
    pub fn decimals(&self) -> u8 {
        match (self.decimals, self.aggregation) {
            (Some(d), _) => d.min(MAX_DECIMALS),
            (None, Aggregation::Sum | Aggregation::Avg) => 2,
            (None, _) => 6,
        }
    }

    /// Whether the KPI grows through the day (a count, a sum), so that a part
    /// of a day is compared with the same part of other days, never with whole days.
    pub fn accumulates(&self) -> bool {
        matches!(
            self.aggregation,
            Aggregation::Count | Aggregation::Sum | Aggregation::UniqueUsers
        )
    }

    /// Says which field is wrong and why (the caller adds the file and KPI id).
    pub fn validate(&self) -> Result<(), Invalid> {
        let err = |field: &str, reason: &str| Err(Invalid::new(field, reason));
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return err("id", "must be lowercase letters, digits and `_`");
        }
        if self.title.trim().is_empty() {
            return err("title", "is required");
        }
        let ratio = self.aggregation == Aggregation::Ratio;
        if ratio != self.numerator.is_some() || ratio != self.denominator.is_some() {
            return err(
                "numerator",
                "numerator and denominator are required for `ratio`, and only there",
            );
        }
        match (self.aggregation, self.p) {
            (Aggregation::Percentile, Some(p)) if p > 0.0 && p < 1.0 => {}
            (Aggregation::Percentile, _) => {
                return err("p", "must be between 0 and 1 for `percentile`");
            }
            (_, Some(_)) => return err("p", "is only for `percentile`"),
            _ => {}
        }
        if self.decimals.is_some_and(|d| d > MAX_DECIMALS) {
            return err("decimals", "must be between 0 and 6");
        }
        for (name, filter) in [
            ("filter", Some(&self.filter)),
            ("numerator", self.numerator.as_ref()),
            ("denominator", self.denominator.as_ref()),
        ] {
            for (property, value) in filter.map(|f| &f.properties).into_iter().flatten() {
                if let Err(BadCondition { op, reason }) = PropertyMatch::parse(value) {
                    let field = if op.is_empty() {
                        format!("{name}.properties.{property}")
                    } else {
                        format!("{name}.properties.{property}.{op}")
                    };
                    return Err(Invalid::new(field, reason));
                }
            }
        }
        if self.property.is_some()
            && !matches!(
                self.aggregation,
                Aggregation::Sum | Aggregation::Avg | Aggregation::Percentile
            )
        {
            return err("property", "is only for sum, avg and percentile");
        }
        for (name, value) in [
            ("target", self.target),
            ("warning", self.warning),
            ("critical", self.critical),
            ("scale", self.scale),
        ] {
            if !value.is_finite() {
                return err(name, "must be a finite number");
            }
        }
        let ordered = match self.direction {
            Direction::HigherIsBetter => {
                self.critical <= self.warning && self.warning <= self.target
            }
            Direction::LowerIsBetter => {
                self.critical >= self.warning && self.warning >= self.target
            }
        };
        if !ordered {
            return err(
                "warning",
                "thresholds must lie between target and critical (critical <= warning <= target when higher is better, the reverse when lower is better)",
            );
        }
        Ok(())
    }

    /// Where a value stands against the thresholds.
    pub fn status(&self, value: Option<f64>) -> Status {
        self.status_at_share(value, 1.0)
    }

    /// Where a value of part of a day stands against the thresholds scaled to
    /// that part (`share` of a day's volume, see [`crate::pace`]); only counts
    /// and sums are scaled, rates and percentiles hold at any hour.
    pub fn status_at_share(&self, value: Option<f64>, share: f64) -> Status {
        let Some(v) = value else {
            return Status::NoData;
        };
        let (warning, critical) = self.levels_at_share(share).1;
        let worse = |a: f64, b: f64| match self.direction {
            Direction::HigherIsBetter => a < b,
            Direction::LowerIsBetter => a > b,
        };
        if worse(v, critical) {
            Status::Critical
        } else if worse(v, warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

impl Kpi {
    /// Digits of the whole units that `sum` and `avg` add values in (see
    /// [`Kpi::decimals`]); `None` for the other aggregations.
    pub fn units(&self) -> Option<u8> {
        match self.aggregation {
            Aggregation::Sum | Aggregation::Avg => Some(self.decimals()),
            _ => None,
        }
    }

    /// What the KPI measures, as a key of its rollups: a changed filter or
    /// aggregation gets new rollups; a changed target or title keeps them.
    pub fn measure_key(&self) -> String {
        #[derive(Serialize)]
        struct Measure<'a> {
            aggregation: Aggregation,
            filter: &'a Filter,
            numerator: &'a Option<Filter>,
            denominator: &'a Option<Filter>,
            property: &'a Option<String>,
            /// `sum` and `avg` store sums of whole units of this many digits.
            #[serde(skip_serializing_if = "Option::is_none")]
            units: Option<u8>,
        }
        let text = serde_json::to_string(&Measure {
            aggregation: self.aggregation,
            filter: &self.filter,
            numerator: &self.numerator,
            denominator: &self.denominator,
            property: &self.property,
            units: self.units(),
        })
        .unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }

    /// (target, (warning, critical)) for `share` of a day: scaled for counts
    /// and sums, as they are for the other aggregations.
    pub fn levels_at_share(&self, share: f64) -> (f64, (f64, f64)) {
        let k = if self.accumulates() { share } else { 1.0 };
        (self.target * k, (self.warning * k, self.critical * k))
    }
}

/// Loads and checks a KPI file; errors name the file, the KPI and the field.
pub fn load_file(path: &Path) -> Result<Vec<Kpi>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|source| FileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

pub fn parse(text: &str) -> Result<Vec<Kpi>, ParseError> {
    let file: KpiFile = serde_norway::from_str(text)?;
    let mut seen = std::collections::HashSet::new();
    for kpi in &file.kpis {
        kpi.validate().map_err(|invalid| ParseError::Kpi {
            id: kpi.id.clone(),
            invalid,
        })?;
        if !seen.insert(kpi.id.clone()) {
            return Err(ParseError::Duplicate(kpi.id.clone()));
        }
    }
    Ok(file.kpis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../config/kpis.example.yaml");

    #[test]
    fn the_example_file_is_valid() {
        let kpis = parse(EXAMPLE).unwrap();
        assert!(kpis.len() >= 5);
    }

    #[test]
    fn errors_name_the_kpi_and_the_field() {
        let text = "kpis:\n  - {id: a, title: A, aggregation: percentile, direction: lower_is_better, target: 800, warning: 900, critical: 1000}\n";
        assert_eq!(
            parse(text).unwrap_err().to_string(),
            "KPI `a`: `p` must be between 0 and 1 for `percentile`"
        );
        let text = "kpis:\n  - {id: a, title: A, aggregation: count, direction: higher_is_better, target: 100, warning: 120, critical: 70}\n";
        assert!(
            parse(text)
                .unwrap_err()
                .to_string()
                .starts_with("KPI `a`: `warning`")
        );
        let text = "kpis:\n  - {id: a, title: A, aggregation: count, direction: up, target: 1, warning: 1, critical: 1}\n";
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains("direction"), "{error}");
        let one = "  - {id: a, title: A, aggregation: count, direction: higher_is_better, target: 1, warning: 1, critical: 1}\n";
        assert_eq!(
            parse(&format!("kpis:\n{one}{one}"))
                .unwrap_err()
                .to_string(),
            "KPI `a`: `id` is defined twice"
        );
    }

    #[test]
    fn the_percentile_rule_interpolates_between_the_closest_ranks() {
        let ms: Vec<f64> = (1..=20).map(f64::from).collect();
        // h = 19 x 0.95 = 18.05: 19 + 0.05 x (20 - 19). Nearest rank would say
        // 19, ClickHouse's quantileExact (index floor(n p)) 20.
        assert!((percentile(&ms, 0.95).unwrap() - 19.05).abs() < 1e-12);
        assert_eq!(percentile(&ms, 0.5), Some(10.5));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.25), Some(1.75));
    }

    #[test]
    fn property_filters_are_checked_naming_the_property_and_operator() {
        let kpi = |properties: &str| {
            format!(
                "kpis:\n  - {{id: a, title: A, aggregation: count, filter: {{properties: {properties}}}, direction: higher_is_better, target: 1, warning: 1, critical: 1}}\n"
            )
        };
        assert!(
            parse(&kpi(
                r#"{plan: pro, amount: {">=": 100}, vip: true, tier: {in: [1, 2]}}"#
            ))
            .is_ok()
        );
        assert_eq!(
            parse(&kpi(r#"{amount: {">=": "a lot"}}"#))
                .unwrap_err()
                .to_string(),
            "KPI `a`: `filter.properties.amount.>=` compares numbers only"
        );
        assert_eq!(
            parse(&kpi(r#"{amount: {"~": 1}}"#))
                .unwrap_err()
                .to_string(),
            "KPI `a`: `filter.properties.amount.~` is not one of =, !=, >, >=, <, <=, in"
        );
        assert_eq!(
            parse(&kpi(r#"{tier: {in: [1, x]}}"#))
                .unwrap_err()
                .to_string(),
            "KPI `a`: `filter.properties.tier.in` values must all be of one type"
        );
        assert!(
            parse(&kpi("{tags: [1, 2]}"))
                .unwrap_err()
                .to_string()
                .starts_with("KPI `a`: `filter.properties.tags` must be")
        );
        assert_eq!(
            PropertyMatch::parse(&serde_json::json!({">": 1, "<=": 5})),
            Ok(PropertyMatch::All(vec![
                (Op::Le, Operand::Num(5.0)),
                (Op::Gt, Operand::Num(1.0))
            ]))
        );
    }

    #[test]
    fn sums_default_to_two_decimals_and_counts_scale_at_pace() {
        let mut kpi = parse(EXAMPLE).unwrap().remove(0);
        kpi.aggregation = Aggregation::Sum;
        kpi.decimals = None;
        assert_eq!(kpi.decimals(), 2);
        kpi.decimals = Some(7);
        assert_eq!(kpi.validate().unwrap_err().field, "decimals");
        kpi.decimals = None;
        assert_eq!(round_to(70546.10000000002, 2), 70546.1);
        assert_eq!(round_to(70546.09999999999, 2), 70546.1);
        kpi.aggregation = Aggregation::Count;
        kpi.direction = Direction::HigherIsBetter;
        (kpi.target, kpi.warning, kpi.critical) = (100.0, 90.0, 70.0);
        // 30 leads by 10:00 when the baseline had made 25 % of its day: ok.
        assert_eq!(kpi.status_at_share(Some(30.0), 0.25), Status::Ok);
        assert_eq!(kpi.status(Some(30.0)), Status::Critical);
        kpi.aggregation = Aggregation::Ratio;
        assert_eq!(kpi.status_at_share(Some(60.0), 0.25), Status::Critical);
    }

    #[test]
    fn status_follows_the_direction() {
        let mut kpi = parse(EXAMPLE).unwrap().remove(0);
        kpi.direction = Direction::HigherIsBetter;
        (kpi.target, kpi.warning, kpi.critical) = (100.0, 90.0, 70.0);
        assert_eq!(kpi.status(Some(95.0)), Status::Ok);
        assert_eq!(kpi.status(Some(80.0)), Status::Warning);
        assert_eq!(kpi.status(Some(60.0)), Status::Critical);
        assert_eq!(kpi.status(None), Status::NoData);
        kpi.direction = Direction::LowerIsBetter;
        (kpi.target, kpi.warning, kpi.critical) = (800.0, 900.0, 1000.0);
        // Past the target but not the warning level: not yet a warning, as 95
        // against a target of 100 above.
        assert_eq!(kpi.status(Some(850.0)), Status::Ok);
        assert_eq!(kpi.status(Some(950.0)), Status::Warning);
        assert_eq!(kpi.status(Some(1200.0)), Status::Critical);
    }
}
