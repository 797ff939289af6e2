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
use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// String properties that must equal these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
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

impl Kpi {
    /// Says which field is wrong and why (the caller adds the file and KPI id).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, reason: &str| Err((field.to_owned(), reason.to_owned()));
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
        let Some(v) = value else {
            return Status::NoData;
        };
        let worse = |a: f64, b: f64| match self.direction {
            Direction::HigherIsBetter => a < b,
            Direction::LowerIsBetter => a > b,
        };
        if worse(v, self.critical) {
            Status::Critical
        } else if worse(v, self.warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// Loads and checks a KPI file; errors name the file, the KPI and the field.
pub fn load_file(path: &Path) -> Result<Vec<Kpi>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Kpi>, String> {
    let file: KpiFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for kpi in &file.kpis {
        kpi.validate()
            .map_err(|(field, reason)| format!("KPI `{}`: `{field}` {reason}", kpi.id))?;
        if !seen.insert(kpi.id.clone()) {
            return Err(format!("KPI `{}`: `id` is defined twice", kpi.id));
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
            parse(text).unwrap_err(),
            "KPI `a`: `p` must be between 0 and 1 for `percentile`"
        );
        let text = "kpis:\n  - {id: a, title: A, aggregation: count, direction: higher_is_better, target: 100, warning: 120, critical: 70}\n";
        assert!(parse(text).unwrap_err().starts_with("KPI `a`: `warning`"));
        let text = "kpis:\n  - {id: a, title: A, aggregation: count, direction: up, target: 1, warning: 1, critical: 1}\n";
        assert!(
            parse(text).unwrap_err().contains("direction"),
            "{}",
            parse(text).unwrap_err()
        );
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
