//! Alert rules as YAML files (see `alert-rules/*.yaml` and docs/alerts.md).
//!
//! ```yaml
//! groups:
//!   - name: launch
//!     rules:
//!       - name: error_rate_rollback
//!         tier: P0
//!         for: 10m
//!         rollback_trigger: true
//!         labels: { team: sre }
//!         annotations:
//!           summary: "Error rate {{ $value }} on {{ $labels.service }}"
//!           runbook_url: https://runbooks.example.com/error-rate
//!         condition:
//!           metric:
//!             select: 'http_server_requests_total{status=~"5.."}'
//!             over: http_server_requests_total
//!             fn: rate
//!             window: 5m
//!             by: [service]
//!           above: 0.01
//! ```
//!
//! A condition reads one source (`kpi`, `metric`, `silence` or `capacity`:
//! one [`Source`], each checked by its own rules), optionally
//! compares it (`compare: baseline_pct` or `change_pct`), and holds when the
//! result is `above` / `below` a threshold. Errors name the file, the rule and
//! the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::matcher::Selector;

pub use crate::tier::Tier;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub tier: Tier,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default, with = "crate::duration")]
    pub for_: Duration,
    pub condition: Condition,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `summary` (required), `description`, `runbook_url`; `{{ $value }}` and
    /// `{{ $labels.x }}` are filled in.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Firing means "roll back": shown as `rollback_recommended` with evidence.
    #[serde(default)]
    pub rollback_trigger: bool,
    /// Set when loaded: the group and file it comes from.
    #[serde(skip_deserializing, default)]
    pub group: String,
}

/// What a condition reads: one source, checked by its own rules.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A KPI's current value (today, or this hour for hourly KPIs).
    Kpi(String),
    Metric(MetricSource),
    /// No events (from a source) for a while.
    Silence(SilenceSource),
    /// Capacity headroom in percent (live peak against the load test baseline),
    /// one alert per service that has a baseline.
    Capacity(CapacitySource),
    /// An SLO's burn rate over one row of the workbook's windows: generated
    /// from the file's `slos:` (see `slo.rs`), never written as a condition.
    Slo(crate::slo::SloAlert),
}

impl Source {
    /// The YAML key that selects this source.
    pub fn key(&self) -> &'static str {
        match self {
            Source::Kpi(_) => "kpi",
            Source::Metric(_) => "metric",
            Source::Silence(_) => "silence",
            Source::Capacity(_) => "capacity",
            Source::Slo(_) => "slo",
        }
    }

    /// What is wrong with the source itself, as (field, reason).
    fn problems(&self, kpis: Option<&[String]>, err: &mut impl FnMut(&str, &str)) {
        match self {
            Source::Kpi(id) => {
                if let Some(known) = kpis
                    && !known.contains(id)
                {
                    err(
                        "condition.kpi",
                        &format!("names no known KPI (known: {})", known.join(", ")),
                    );
                }
            }
            Source::Metric(m) => {
                if let Err(reason) = Selector::parse(&m.select) {
                    err("condition.metric.select", &reason.to_string());
                }
                if let Some(over) = &m.over
                    && let Err(reason) = Selector::parse(over)
                {
                    err("condition.metric.over", &reason.to_string());
                }
                if m.window.as_secs() < 1 {
                    err("condition.metric.window", "must be at least 1s");
                }
                match (m.function, m.quantile) {
                    (MetricFn::Quantile, Some(q)) if q > 0.0 && q < 1.0 => {}
                    (MetricFn::Quantile, _) => {
                        err(
                            "condition.metric.quantile",
                            "must be between 0 and 1 with `fn: quantile`",
                        );
                    }
                    (_, Some(_)) => {
                        err(
                            "condition.metric.quantile",
                            "is only read with `fn: quantile`",
                        );
                    }
                    _ => {}
                }
                if m.over.is_some() && !matches!(m.function, MetricFn::Rate | MetricFn::Increase) {
                    err(
                        "condition.metric.over",
                        "makes a ratio of counters: use `fn: rate` or `increase`",
                    );
                }
            }
            Source::Silence(s) => {
                if s.window.as_secs() < 60 || s.lookback <= s.window {
                    err(
                        "condition.silence.window",
                        "must be at least 1m and shorter than `lookback`",
                    );
                }
            }
            Source::Capacity(c) => {
                if !(60..=14 * 86_400).contains(&c.window.as_secs()) {
                    err("condition.capacity.window", "must be between 1m and 14d");
                }
            }
            // Checked as an SLO when its file was read (`Slo::problems`).
            Source::Slo(_) => {}
        }
    }
}

/// A rule's condition. Written in YAML with the source as a key beside the
/// comparison (`{kpi: leads, below: critical}`); read through
/// [`ConditionSpec`], which turns the source keys into one [`Source`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "ConditionSpec")]
pub struct Condition {
    #[serde(flatten)]
    pub source: Source,
    pub compare: Compare,
    /// `compare: change_pct`: against the value this long ago.
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub change_over: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<Threshold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<Threshold>,
    /// KPI conditions: also evaluate outside the current launch's window
    /// (before D0 and after D+N); by default they hold only inside it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside_window: bool,
}

/// A condition as the rule file writes it: each source is a key of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    #[serde(default)]
    pub kpi: Option<String>,
    #[serde(default)]
    pub metric: Option<MetricSource>,
    #[serde(default)]
    pub silence: Option<SilenceSource>,
    #[serde(default)]
    pub capacity: Option<CapacitySource>,
    #[serde(default)]
    pub compare: Compare,
    #[serde(default, with = "crate::duration::option")]
    pub change_over: Option<Duration>,
    #[serde(default)]
    pub above: Option<Threshold>,
    #[serde(default)]
    pub below: Option<Threshold>,
    #[serde(default)]
    pub outside_window: bool,
}

/// A condition without exactly one source. serde reports an error of a
/// conversion without the field's path, so the message names it: `rules
/// check` reads the field from it like from serde's own messages.
#[derive(Debug, thiserror::Error)]
#[error("condition: needs exactly one source: `kpi`, `metric`, `silence` or `capacity`{found}")]
pub struct SourceError {
    found: String,
}

impl TryFrom<ConditionSpec> for Condition {
    type Error = SourceError;

    fn try_from(spec: ConditionSpec) -> Result<Self, SourceError> {
        let mut sources: Vec<Source> = Vec::new();
        sources.extend(spec.kpi.map(Source::Kpi));
        sources.extend(spec.metric.map(Source::Metric));
        sources.extend(spec.silence.map(Source::Silence));
        sources.extend(spec.capacity.map(Source::Capacity));
        if sources.len() != 1 {
            let found = if sources.is_empty() {
                String::new()
            } else {
                let keys: Vec<&str> = sources.iter().map(Source::key).collect();
                format!(" (found {})", keys.join(", "))
            };
            return Err(SourceError { found });
        }
        let source = sources.remove(0);
        Ok(Condition {
            source,
            compare: spec.compare,
            change_over: spec.change_over,
            above: spec.above,
            below: spec.below,
            outside_window: spec.outside_window,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The value itself.
    #[default]
    Value,
    /// (value - baseline) / baseline in percent (KPIs: the launch's baseline days).
    BaselinePct,
    /// (value - value `change_over` ago) / value then, in percent.
    ChangePct,
}

/// A number, or one of the KPI's own levels.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Threshold {
    Value(f64),
    Level(KpiLevel),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiLevel {
    Target,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSource {
    /// `name{label="v", other=~"re"}`, Prometheus style.
    pub select: String,
    /// A denominator: the result is select / over (error ratios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<String>,
    #[serde(rename = "fn", default)]
    pub function: MetricFn,
    /// `fn: quantile`: 0 < q < 1, from histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    #[serde(with = "crate::duration", default = "five_minutes")]
    pub window: Duration,
    /// One alert per value of these labels (a label or a resource attribute;
    /// `service` also reads the OpenTelemetry `service.name`).
    #[serde(default)]
    pub by: Vec<String>,
}

fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricFn {
    /// Per second increase of a counter over the window.
    #[default]
    Rate,
    /// Increase of a counter over the window.
    Increase,
    Last,
    Avg,
    Max,
    Min,
    /// `quantile` of histogram observations over the window.
    Quantile,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSource {
    #[serde(with = "crate::duration")]
    pub window: Duration,
    /// One alert per source that sent events in the last `lookback` but none in
    /// `window`; without it, any events at all count.
    #[serde(default)]
    pub per_source: bool,
    #[serde(with = "crate::duration", default = "one_day")]
    pub lookback: Duration,
    /// Only events of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySource {
    /// The window the peak is looked for in.
    #[serde(with = "crate::duration", default = "one_hour")]
    pub window: Duration,
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

fn one_day() -> Duration {
    Duration::from_secs(86_400)
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Rule {
    /// Checks what serde cannot; `kpis` are the known KPI ids (None: not checked).
    /// The first problem (see [`Rule::problems`] for all of them).
    pub fn validate(&self, kpis: Option<&[String]>) -> Result<(), (String, String)> {
        match self.problems(kpis).into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every problem serde cannot see, as (field, reason), in field order.
    pub fn problems(&self, kpis: Option<&[String]>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut err = |field: &str, reason: &str| {
            problems.push((field.to_owned(), reason.to_owned()));
        };
        if !name_ok(&self.name) {
            err("name", "must be 1-100 characters of [A-Za-z0-9_-]");
        }
        if self
            .annotations
            .get("summary")
            .is_none_or(|s| s.trim().is_empty())
        {
            err(
                "annotations.summary",
                "is required: it is the first line a responder reads",
            );
        }
        if let Some(url) = self.annotations.get("runbook_url")
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            err("annotations.runbook_url", "must be an http(s) URL");
        }
        for key in self.labels.keys() {
            if ["alertname", "tier", "severity"].contains(&key.as_str()) {
                err(
                    &format!("labels.{key}"),
                    "is set by Hypercare (alertname from name, tier from tier)",
                );
            }
        }
        let c = &self.condition;
        let is_kpi = matches!(c.source, Source::Kpi(_));
        if matches!(c.source, Source::Silence(_)) {
            if c.above.is_some() || c.below.is_some() || c.compare != Compare::Value {
                err(
                    "condition.silence",
                    "holds when no events arrive; it takes no `above`, `below` or `compare`",
                );
            }
        } else if c.above.is_some() == c.below.is_some() {
            err("condition", "needs exactly one of `above` or `below`");
        }
        for (field, t) in [("condition.above", c.above), ("condition.below", c.below)] {
            if let Some(Threshold::Level(_)) = t
                && (!is_kpi || c.compare != Compare::Value)
            {
                err(
                    field,
                    "`target`, `warning` and `critical` name a KPI's own levels: use them with `kpi` and `compare: value`",
                );
            }
        }
        match (c.compare, c.change_over) {
            (Compare::ChangePct, None) => {
                err(
                    "condition.change_over",
                    "is required with `compare: change_pct`",
                );
            }
            (Compare::ChangePct, Some(d)) if d.is_zero() => {
                err("condition.change_over", "must be longer than 0");
            }
            (Compare::Value | Compare::BaselinePct, Some(_)) => {
                err(
                    "condition.change_over",
                    "is only read with `compare: change_pct`",
                );
            }
            _ => {}
        }
        if c.outside_window && !is_kpi {
            err(
                "condition.outside_window",
                "is about a launch's window: use it with `kpi`",
            );
        }
        if c.compare == Compare::BaselinePct && !is_kpi {
            err(
                "condition.compare",
                "`baseline_pct` compares a KPI with its launch baseline; use `kpi`",
            );
        }
        c.source.problems(kpis, &mut err);
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(condition: &str) -> Result<Vec<Rule>, crate::check::RuleError> {
        let text = format!(
            "groups:\n  - name: g\n    rules:\n      - name: r1\n        tier: P1\n        for: 5m\n        annotations: {{summary: s}}\n        condition: {condition}\n"
        );
        crate::check::parse("f.yaml", &text, Some(&["leads".to_owned()]))
    }

    #[test]
    fn good_rules_parse() {
        let rules = one("{kpi: leads, below: critical}").unwrap();
        assert_eq!(rules[0].for_, Duration::from_secs(300));
        assert_eq!(rules[0].group, "g");
        one("{metric: {select: 'http_requests_total{status=~\"5..\"}', over: http_requests_total, fn: rate, by: [service]}, above: 0.01}").unwrap();
        one("{kpi: leads, compare: change_pct, change_over: 1h, below: -30}").unwrap();
        one("{silence: {window: 15m, per_source: true}}").unwrap();
        one("{capacity: {window: 1h}, below: 30}").unwrap();
        let rules =
            one("{kpi: leads, compare: baseline_pct, below: -40, outside_window: true}").unwrap();
        assert!(rules[0].condition.outside_window);
        assert!(
            !one("{kpi: leads, below: 1}").unwrap()[0]
                .condition
                .outside_window
        );
    }

    #[test]
    fn errors_name_the_file_the_rule_and_the_field() {
        let e = one("{kpi: nope, below: 1}").unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.rule.as_str(), e.field.as_str()),
            ("f.yaml", "r1", "condition.kpi")
        );
        let e = one("{kpi: leads}").unwrap_err();
        assert_eq!(e.field, "condition");
        let e = one("{above: 1}").unwrap_err();
        assert_eq!(e.field, "condition");
        assert!(e.reason.starts_with("needs exactly one source"), "{e}");
        let e = one("{kpi: leads, metric: {select: x}, above: 1}").unwrap_err();
        assert!(e.field.starts_with("condition"), "{e}");
        assert!(e.reason.contains("(found kpi, metric)"), "{e}");
        let e = one("{metric: {select: 'x{a=}'}, above: 1}").unwrap_err();
        assert_eq!(e.field, "condition.metric.select");
        let e = one("{kpi: leads, compare: change_pct, below: 1}").unwrap_err();
        assert_eq!(e.field, "condition.change_over");
        let e = one("{metric: {select: x, fn: quantile}, above: 1}").unwrap_err();
        assert_eq!(e.field, "condition.metric.quantile");
        let e = one("{capacity: {window: 1h}, below: 30, outside_window: true}").unwrap_err();
        assert_eq!(e.field, "condition.outside_window");
        let e = crate::check::parse(
            "f.yaml",
            "groups:\n  - name: g\n    rules:\n      - name: bad\n        tier: P9\n",
            None,
        )
        .unwrap_err();
        assert_eq!(e.rule, "bad");
        assert!(e.reason.contains("P9"), "{e}");
    }
}
