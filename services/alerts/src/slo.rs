//! SLOs as code: the `slos:` list of a rule file (beside `groups:`), checked
//! like rules, and the burn-rate alert rules each SLO generates.
//!
//! ```yaml
//! slos:
//!   - name: checkout-availability
//!     objective: 99.5            # percent of good events (or good hours)
//!     window: 28d                # default 28d
//!     labels: { team: sre }      # added to its alerts
//!     tiers: { "1h": P0 }        # optional: a tier per long window
//!     sli:
//!       availability:
//!         errors: 'http_requests_total{service="checkout", status=~"5.."}'
//!         total: 'http_requests_total{service="checkout"}'
//! ```
//!
//! ```text
//! file ─ check::check_text ─ slos[i] ─ serde + Slo::problems ─ Slo
//!   Slo ─ alert_rules ─ 4 Rules (Source::Slo), one per BURN_WINDOWS row,
//!         evaluated by the engine like any rule (grouping, routing, silences)
//! ```
//!
//! The windows and factors are the SRE workbook's (ch. 5, "Alerting on
//! SLOs"); the math is in [`crate::burn`], the reads in [`crate::sli`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::matcher::Selector;
use crate::tier::Tier;

/// One multi-window alert: fires when the burn rate is at least `factor` over
/// both the long and the short window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BurnWindow {
    #[serde(with = "crate::duration")]
    pub long: Duration,
    #[serde(with = "crate::duration")]
    pub short: Duration,
    pub factor: f64,
    pub tier: Tier,
}

const fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// The workbook's table: 2 % of a 30-day budget in 1 h (14.4x) pages; 5 % in
/// 6 h (6x) pages; 10 % in 1 d (3x) and 10 % in 3 d (1x) are tickets.
pub const BURN_WINDOWS: [BurnWindow; 4] = [
    BurnWindow {
        long: minutes(60),
        short: minutes(5),
        factor: 14.4,
        tier: Tier::P1,
    },
    BurnWindow {
        long: minutes(6 * 60),
        short: minutes(30),
        factor: 6.0,
        tier: Tier::P2,
    },
    BurnWindow {
        long: minutes(24 * 60),
        short: minutes(120),
        factor: 3.0,
        tier: Tier::P3,
    },
    BurnWindow {
        long: minutes(3 * 24 * 60),
        short: minutes(6 * 60),
        factor: 1.0,
        tier: Tier::P3,
    },
];

/// The longest alert window: the reads of alert windows cover this much.
pub const LONGEST_ALERT_WINDOW: Duration = minutes(3 * 24 * 60);

/// An SLO as written in a rule file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub name: String,
    /// Percent: 99.5 means 99.5 % of events (hours, for a KPI floor) are good.
    pub objective: f64,
    #[serde(with = "crate::duration", default = "default_window")]
    pub window: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Added to the labels of its alerts.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A tier per long window (`1h`, `6h`, `1d`, `3d`), instead of the table's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, Tier>,
    pub sli: Sli,
}

fn default_window() -> Duration {
    Duration::from_secs(28 * 86_400)
}

/// What counts as a bad event; exactly one key (read through [`SliSpec`]:
/// YAML writes an enum as a tag, the file writes a key).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", try_from = "SliSpec")]
pub enum Sli {
    /// Increase of the `errors` counters over increase of the `total` counters.
    Availability { errors: String, total: String },
    /// Requests slower than `threshold` seconds (a bucket bound of the histogram).
    Latency { histogram: String, threshold: f64 },
    /// Hours in which KPI `kpi` was below `floor` (whole hours only).
    KpiFloor { kpi: String, floor: f64 },
}

/// An SLI as the file writes it: each kind is a key of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliSpec {
    #[serde(default)]
    availability: Option<AvailabilitySpec>,
    #[serde(default)]
    latency: Option<LatencySpec>,
    #[serde(default)]
    kpi_floor: Option<KpiFloorSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilitySpec {
    errors: String,
    total: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencySpec {
    histogram: String,
    threshold: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiFloorSpec {
    kpi: String,
    floor: f64,
}

/// An SLI without exactly one kind. serde reports a conversion's error
/// without the field's path, so the message names it (`rules check` reads it).
#[derive(Debug, thiserror::Error)]
#[error("sli: needs exactly one of `availability`, `latency` or `kpi_floor`")]
pub struct SliKindError;

impl TryFrom<SliSpec> for Sli {
    type Error = SliKindError;

    fn try_from(spec: SliSpec) -> Result<Self, SliKindError> {
        let mut kinds: Vec<Sli> = Vec::new();
        kinds.extend(spec.availability.map(|a| Sli::Availability {
            errors: a.errors,
            total: a.total,
        }));
        kinds.extend(spec.latency.map(|l| Sli::Latency {
            histogram: l.histogram,
            threshold: l.threshold,
        }));
        kinds.extend(spec.kpi_floor.map(|k| Sli::KpiFloor {
            kpi: k.kpi,
            floor: k.floor,
        }));
        match kinds.len() {
            1 => Ok(kinds.remove(0)),
            _ => Err(SliKindError),
        }
    }
}

impl Sli {
    pub fn kind(&self) -> &'static str {
        match self {
            Sli::Availability { .. } => "availability",
            Sli::Latency { .. } => "latency",
            Sli::KpiFloor { .. } => "kpi_floor",
        }
    }
}

/// What a burn-rate rule reads: its SLO and its row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct SloAlert {
    #[serde(serialize_with = "shared")]
    pub slo: Arc<Slo>,
    pub window: BurnWindow,
}

/// serde's `rc` feature is off: an `Arc<Slo>` is written as the SLO.
fn shared<S: serde::Serializer>(slo: &Arc<Slo>, s: S) -> Result<S::Ok, S::Error> {
    Slo::serialize(slo, s)
}

fn name_ok(name: &str) -> bool {
    // Rule names add at most `-burn-3d` (8 characters) and stay within 100.
    !name.is_empty()
        && name.len() <= 90
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Slo {
    /// The error budget: the share of events allowed to be bad.
    pub fn budget(&self) -> f64 {
        1.0 - self.objective / 100.0
    }

    /// Every problem serde cannot see, as (field, reason); `kpis` are the
    /// known KPI ids (None: not checked).
    pub fn problems(&self, kpis: Option<&[String]>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut err = |field: &str, reason: String| problems.push((field.to_owned(), reason));
        if !name_ok(&self.name) {
            err(
                "name",
                "must be 1-90 characters of [A-Za-z0-9_-] (its alert rules add `-burn-1h`)".into(),
            );
        }
        if !(self.objective > 0.0 && self.objective < 100.0) {
            err(
                "objective",
                "must be a percentage above 0 and below 100 (99.5 means 99.5 %)".into(),
            );
        } else if self.objective < 1.0 {
            err(
                "objective",
                format!(
                    "is a percentage: {} means {} %; write {} for {} %",
                    self.objective,
                    self.objective,
                    self.objective * 100.0,
                    self.objective * 100.0
                ),
            );
        }
        if !(86_400..=90 * 86_400).contains(&self.window.as_secs()) {
            err("window", "must be between 1d and 90d".into());
        }
        for key in self.labels.keys() {
            if ["alertname", "tier", "severity", "slo", "window"].contains(&key.as_str()) {
                err(
                    &format!("labels.{key}"),
                    "is set by Hypercare on burn-rate alerts".into(),
                );
            }
        }
        for key in self.tiers.keys() {
            if !BURN_WINDOWS
                .iter()
                .any(|w| crate::duration::format(w.long) == *key)
            {
                err(
                    &format!("tiers.{key}"),
                    "names no alert window (1h, 6h, 1d or 3d)".into(),
                );
            }
        }
        match &self.sli {
            Sli::Availability { errors, total } => {
                for (field, text) in [
                    ("sli.availability.errors", errors),
                    ("sli.availability.total", total),
                ] {
                    if let Err(reason) = Selector::parse(text) {
                        err(field, reason.to_string());
                    }
                }
            }
            Sli::Latency {
                histogram,
                threshold,
            } => {
                if let Err(reason) = Selector::parse(histogram) {
                    err("sli.latency.histogram", reason.to_string());
                }
                if !(threshold.is_finite() && *threshold > 0.0) {
                    err(
                        "sli.latency.threshold",
                        "must be a positive number of seconds (a bucket bound)".into(),
                    );
                }
            }
            Sli::KpiFloor { kpi, floor } => {
                if let Some(known) = kpis
                    && !known.contains(kpi)
                {
                    err(
                        "sli.kpi_floor.kpi",
                        format!("names no known KPI (known: {})", known.join(", ")),
                    );
                }
                if !floor.is_finite() {
                    err("sli.kpi_floor.floor", "must be a number".into());
                }
            }
        }
        problems
    }

    /// The tier of the alert over `window`: the SLO's override, else the table's.
    pub fn tier(&self, window: &BurnWindow) -> Tier {
        self.tiers
            .get(&crate::duration::format(window.long))
            .copied()
            .unwrap_or(window.tier)
    }
}

/// The rule name of an SLO's alert over `long`: `checkout-availability-burn-1h`.
pub fn rule_name(slo: &str, long: Duration) -> String {
    format!("{slo}-burn-{}", crate::duration::format(long))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(yaml: &str) -> Result<Slo, serde_norway::Error> {
        serde_norway::from_str(yaml)
    }

    #[test]
    fn problems_name_the_field() {
        let s = slo("name: api\nobjective: 0.995\nwindow: 2h\ntiers: {2h: P0}\nlabels: {slo: x}\nsli: {latency: {histogram: 'h{a=}', threshold: -1}}\n").unwrap();
        let fields: Vec<String> = s.problems(None).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "objective",
                "window",
                "labels.slo",
                "tiers.2h",
                "sli.latency.histogram",
                "sli.latency.threshold"
            ]
        );
        let s = slo(
            "name: k\nobjective: 95\ntiers: {1h: P0}\nsli: {kpi_floor: {kpi: nope, floor: 3}}\n",
        )
        .unwrap();
        let problems = s.problems(Some(&["leads".to_owned()]));
        assert_eq!(problems[0].0, "sli.kpi_floor.kpi");
        assert_eq!(s.tier(&BURN_WINDOWS[0]), Tier::P0);
        assert!(slo("name: x\nobjective: 99\nsli: {availability: {errors: a}}\n").is_err());
    }
}
