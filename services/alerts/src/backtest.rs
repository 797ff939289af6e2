//! Rule backtest: what the rules would have done over a past window.
//!
//! ```text
//! request (from, to, rules?, rule?, set.threshold?) ─ plan_request (pure: limits, selection)
//!   for t in from..=to step `step` (default [alerts] interval, widened to stay
//!   within MAX_STEPS):
//!     evaluate::evaluate(store, .., rule, t)   (the live evaluator's reads, by time)
//!       └─ Replay::step (pure): per variant (the rules as written, then one per
//!          swept threshold) a fresh planner State: observe → transitions,
//!          plan (and the flushes due before the next step) → notifications
//!   Replay::finish ─ Outcome
//! ```
//!
//! Contract: nothing is written and nothing is sent; the live evaluator's state
//! is not touched (each variant has its own `State`). Silences are the stored
//! ones, each muting only while it was active at `t` (an expired silence keeps
//! its end time). KPI rules need the board at `t`, which is only computed for
//! now, and capacity rules read the live peak: both are listed in
//! `not_replayed` with the reason. The work is bounded before it starts
//! ([`MAX_STEPS`], [`MAX_RULES`], [`MAX_THRESHOLDS`]) and by [`DEADLINE`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::AlertError;
use crate::notify::rfc3339_ms;
use crate::plan::{Planner, State};
use crate::rule::{Rule, Source, Threshold};
use crate::sample::Sample;
use crate::silence::Silence;
use crate::store::{AlertRow, AlertStatus};

/// Evaluation times of one backtest at most.
pub const MAX_STEPS: u64 = 20_000;
/// Rules of one backtest at most.
pub const MAX_RULES: usize = 200;
/// Values of one threshold sweep at most.
pub const MAX_THRESHOLDS: usize = 20;
/// Transitions and notifications listed at most (the counts stay exact).
pub const MAX_LISTED: usize = 10_000;
/// Wall time of one backtest at most; past it the answer is `query_too_slow`.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// Flushes between two evaluations at most (timers of groups, escalations).
const MAX_FLUSHES_PER_STEP: usize = 64;

/// `POST /v1/alerts/backtest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// RFC 3339: the first evaluation time.
    pub from: String,
    /// RFC 3339: the last evaluation time is at or before it.
    pub to: String,
    /// Candidate rules, as a rule file's YAML text; default the loaded rules.
    #[serde(default)]
    pub rules: Option<String>,
    /// Only these rules (by name).
    #[serde(default)]
    pub rule: Option<Vec<String>>,
    /// Time between two evaluations, e.g. `1m`; default the live evaluator's
    /// interval, widened (to a multiple of it) when the window would need
    /// more than [`MAX_STEPS`] evaluations.
    #[serde(default)]
    pub step: Option<String>,
    /// A sweep: `{"threshold": [0.5, 1, 2]}` replaces the numeric `above` /
    /// `below` of the selected rules by each value in turn.
    #[serde(default)]
    pub set: Option<SetSpec>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    pub threshold: Vec<f64>,
}

/// A backtest, checked: what to evaluate and when.
#[derive(Debug)]
pub struct Plan {
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    pub steps: u64,
    /// The rules replayed.
    pub rules: Vec<Rule>,
    pub not_replayed: Vec<NotReplayed>,
    /// Indexes into `rules` of the rules whose threshold is swept.
    pub swept: Vec<usize>,
    pub thresholds: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotReplayed {
    pub rule: String,
    pub reason: String,
}

/// Checks a request against the loaded rules and the limits, before any read.
/// `interval` is the live evaluator's; `now_ms` bounds `to`.
pub fn plan_request(
    request: BacktestRequest,
    loaded: &[Rule],
    interval: Duration,
    now_ms: u64,
) -> Result<Plan, AlertError> {
    let from_ms = crate::silence::parse_time("from", &request.from)?;
    let to_ms = crate::silence::parse_time("to", &request.to)?;
    if to_ms <= from_ms {
        return Err(AlertError::invalid("to", "must be after `from`"));
    }
    if to_ms > now_ms {
        return Err(AlertError::invalid(
            "to",
            "is in the future: a backtest replays the past",
        ));
    }
    // `evaluate` reads by the second: a finer step would read the same data twice.
    let interval_ms = (interval.as_millis() as u64).max(1000);
    let span_ms = to_ms - from_ms;
    let step_ms = match &request.step {
        Some(text) => {
            let step = crate::duration::parse(text)
                .map_err(|e| AlertError::invalid("step", e.to_string()))?;
            let step_ms = step.as_millis() as u64;
            if step_ms < 1000 {
                return Err(AlertError::invalid("step", "must be at least 1s"));
            }
            if span_ms / step_ms + 1 > MAX_STEPS {
                return Err(AlertError::invalid(
                    "step",
                    format!(
                        "gives {} evaluations over the window, over the limit of {MAX_STEPS}: a longer step or a shorter window",
                        span_ms / step_ms + 1
                    ),
                ));
            }
            step_ms
        }
        // The interval's smallest multiple that keeps within the limit: a
        // fortnight at 15 s is 80 641 evaluations, at 1 min 20 161, at 75 s 16 129.
        None => interval_ms * (span_ms / interval_ms / (MAX_STEPS - 1) + 1),
    };
    let steps = span_ms / step_ms + 1;
    let mut rules: Vec<Rule> = match &request.rules {
        Some(text) => crate::check::parse("rules", text, None)
            .map_err(|e| AlertError::invalid("rules", e.to_string()))?,
        None => loaded.to_vec(),
    };
    if let Some(names) = &request.rule {
        for name in names {
            if !rules.iter().any(|r| &r.name == name) {
                return Err(AlertError::invalid(
                    "rule",
                    format!("no rule named `{name}` in the rules backtested"),
                ));
            }
        }
        rules.retain(|r| names.contains(&r.name));
    }
    if rules.is_empty() {
        return Err(AlertError::invalid(
            if request.rules.is_some() {
                "rules"
            } else {
                "rule"
            },
            "no rule to backtest (this replica has no rules loaded: send `rules`)",
        ));
    }
    if rules.len() > MAX_RULES {
        return Err(AlertError::invalid(
            if request.rule.is_some() {
                "rule"
            } else {
                "rules"
            },
            format!(
                "{} rules, over the limit of {MAX_RULES}: select some with `rule`",
                rules.len()
            ),
        ));
    }
    let mut not_replayed = Vec::new();
    rules.retain(|rule| {
        let reason = match rule.condition.source {
            Source::Kpi(_) => "the KPI board is only computed for now, not at a past time",
            Source::Capacity(_) => {
                "capacity headroom is read from the live peak, not at a past time"
            }
            _ => return true,
        };
        not_replayed.push(NotReplayed {
            rule: rule.name.clone(),
            reason: reason.into(),
        });
        false
    });
    let thresholds = request.set.map(|s| s.threshold).unwrap_or_default();
    if thresholds.len() > MAX_THRESHOLDS {
        return Err(AlertError::invalid(
            "set.threshold",
            format!("at most {MAX_THRESHOLDS} values"),
        ));
    }
    if thresholds.iter().any(|v| !v.is_finite()) {
        return Err(AlertError::invalid(
            "set.threshold",
            "values must be finite numbers",
        ));
    }
    let mut swept = Vec::new();
    if !thresholds.is_empty() {
        for (i, rule) in rules.iter().enumerate() {
            if numeric_threshold(rule).is_some() {
                swept.push(i);
            } else if request.rule.is_some() {
                return Err(AlertError::invalid(
                    "set.threshold",
                    format!(
                        "rule `{}` has no numeric `above` or `below` to replace",
                        rule.name
                    ),
                ));
            }
        }
        if swept.is_empty() {
            return Err(AlertError::invalid(
                "set.threshold",
                "no replayed rule has a numeric `above` or `below` to replace",
            ));
        }
    }
    Ok(Plan {
        from_ms,
        to_ms,
        step_ms,
        steps,
        rules,
        not_replayed,
        swept,
        thresholds,
    })
}

/// A rule's numeric threshold: (true for `above`, value).
fn numeric_threshold(rule: &Rule) -> Option<(bool, f64)> {
    match (rule.condition.above, rule.condition.below) {
        (Some(Threshold::Value(v)), _) => Some((true, v)),
        (None, Some(Threshold::Value(v))) => Some((false, v)),
        _ => None,
    }
}

/// The rule with its numeric threshold replaced by `value`.
pub fn with_threshold(rule: &Rule, value: f64) -> Rule {
    let mut rule = rule.clone();
    match numeric_threshold(&rule) {
        Some((true, _)) => rule.condition.above = Some(Threshold::Value(value)),
        Some((false, _)) => rule.condition.below = Some(Threshold::Value(value)),
        None => {}
    }
    rule
}

/// One change an alert would have made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transition {
    pub rule: String,
    pub labels: BTreeMap<String, String>,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// RFC 3339.
    pub at: String,
    pub value: f64,
}

/// A notification that would have been sent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub receiver: String,
    /// `notify`, `repeat`, `resolved`, `escalation`, `digest`.
    pub reason: String,
    pub at: String,
    /// The `alertname`s it carries.
    pub alerts: Vec<String>,
}

/// How often one threshold would have fired.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SweepResult {
    pub threshold: f64,
    pub firings: u64,
    pub firing_minutes: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BacktestOutcome)]
pub struct Outcome {
    pub from: String,
    pub to: String,
    /// The evaluation interval used as the step, e.g. `15s`.
    pub step: String,
    pub evaluations: u64,
    pub rules: Vec<String>,
    pub not_replayed: Vec<NotReplayed>,
    /// How silences were applied.
    pub silences: &'static str,
    pub firings: u64,
    pub firing_minutes: f64,
    pub transitions: Vec<Transition>,
    pub notifications: Vec<Notification>,
    /// True when more than [`MAX_LISTED`] transitions or notifications happened.
    pub truncated: bool,
    /// One entry per `set.threshold` value (empty without a sweep).
    pub sweep: Vec<SweepResult>,
}

pub const SILENCES_AS_THEY_WERE: &str =
    "stored silences, each muting only while it was active at the evaluation time";

/// One planner run: the rules as written, or one swept threshold.
struct Variant {
    planner: Planner,
    state: State,
    threshold: Option<f64>,
    firings: u64,
    /// Firing since, by fingerprint.
    firing_since: BTreeMap<String, u64>,
    firing_ms: u64,
    transitions: Vec<Transition>,
    notifications: Vec<Notification>,
    truncated: bool,
}

impl Variant {
    fn record(&mut self, row: &AlertRow) {
        let state = match row.change.as_str() {
            "pending" => "pending",
            "fired" => "firing",
            "resolved" => "resolved",
            _ => return,
        };
        match row.state {
            AlertStatus::Firing if state == "firing" => {
                self.firings += 1;
                self.firing_since.insert(row.fingerprint.clone(), row.at_ms);
            }
            AlertStatus::Resolved => {
                if let Some(since) = self.firing_since.remove(&row.fingerprint) {
                    self.firing_ms += row.at_ms.saturating_sub(since);
                }
            }
            _ => {}
        }
        if self.threshold.is_some() {
            return;
        }
        if self.transitions.len() >= MAX_LISTED {
            self.truncated = true;
            return;
        }
        self.transitions.push(Transition {
            rule: row.rule.clone(),
            labels: row.labels(),
            state: state.into(),
            at: rfc3339_ms(row.at_ms),
            value: row.value,
        });
    }

    fn plan(&mut self, now: u64) {
        let plan = self.planner.plan(&mut self.state, now);
        for row in &plan.changes {
            self.record(row);
        }
        if self.threshold.is_some() {
            return;
        }
        for out in plan.outgoing {
            if self.notifications.len() >= MAX_LISTED {
                self.truncated = true;
                break;
            }
            self.notifications.push(Notification {
                receiver: out.receiver_name,
                reason: out.reason.into(),
                at: rfc3339_ms(now),
                alerts: out
                    .payload
                    .alerts
                    .iter()
                    .filter_map(|a| a.labels.get("alertname").cloned())
                    .collect(),
            });
        }
    }
}

/// The pure part of a backtest: fed the samples of each evaluation time.
pub struct Replay {
    plan: Plan,
    variants: Vec<Variant>,
}

impl Replay {
    pub fn new(
        plan: Plan,
        settings: &crate::config::AlertSettings,
        inhibitions: &[crate::config::Inhibition],
        silences: Vec<Silence>,
    ) -> Self {
        let variant = |rules: Vec<Rule>, threshold| Variant {
            planner: Planner {
                settings: settings.clone(),
                rules,
                inhibitions: inhibitions.to_vec(),
            },
            state: {
                let mut state = State::default();
                state.silences = silences.clone();
                state
            },
            threshold,
            firings: 0,
            firing_since: BTreeMap::new(),
            firing_ms: 0,
            transitions: Vec::new(),
            notifications: Vec::new(),
            truncated: false,
        };
        let mut variants = vec![variant(plan.rules.clone(), None)];
        for &value in &plan.thresholds {
            let rules = plan
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if plan.swept.contains(&i) {
                        with_threshold(r, value)
                    } else {
                        r.clone()
                    }
                })
                .collect();
            variants.push(variant(rules, Some(value)));
        }
        Replay { plan, variants }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The evaluation times, oldest first.
    pub fn times(&self) -> impl Iterator<Item = u64> + use<> {
        let (from, step, steps) = (self.plan.from_ms, self.plan.step_ms, self.plan.steps);
        (0..steps).map(move |i| from + i * step)
    }

    /// One evaluation at `now`: per rule (in plan order) its samples, or None
    /// when it could not be evaluated (its alerts keep their state, as live).
    pub fn step(&mut self, now: u64, results: &[Option<Vec<Sample>>]) {
        let next = now + self.plan.step_ms;
        for variant in &mut self.variants {
            let mut changes = Vec::new();
            for (rule, samples) in variant.planner.rules.iter().zip(results) {
                let Some(samples) = samples else { continue };
                let samples = match (variant.threshold, numeric_threshold(rule)) {
                    (Some(_), Some((above, t))) => samples
                        .iter()
                        .map(|s| Sample {
                            holds: if above { s.value > t } else { s.value < t },
                            ..s.clone()
                        })
                        .collect(),
                    _ => samples.clone(),
                };
                changes.extend(
                    variant
                        .planner
                        .observe(&mut variant.state, rule, samples, now),
                );
            }
            for row in &changes {
                variant.record(row);
            }
            variant.plan(now);
            // Timers due before the next evaluation, at their own time (as live).
            for _ in 0..MAX_FLUSHES_PER_STEP {
                match variant.planner.next_due(&variant.state, now).1 {
                    Some(at) if at < next => variant.plan(at),
                    _ => break,
                }
            }
        }
    }

    /// The answer; alerts still firing count their minutes up to `to`.
    pub fn finish(self) -> Outcome {
        let plan = self.plan;
        let mut variants = self.variants.into_iter();
        let mut base = variants.next().unwrap_or_else(|| unreachable!());
        let minutes = |v: &Variant| {
            let open: u64 = v
                .firing_since
                .values()
                .map(|since| plan.to_ms.saturating_sub(*since))
                .sum();
            (v.firing_ms + open) as f64 / 60_000.0
        };
        let sweep = variants
            .map(|v| SweepResult {
                threshold: v.threshold.unwrap_or_default(),
                firings: v.firings,
                firing_minutes: minutes(&v),
            })
            .collect();
        Outcome {
            from: rfc3339_ms(plan.from_ms),
            to: rfc3339_ms(plan.to_ms),
            step: crate::duration::format(Duration::from_millis(plan.step_ms)),
            evaluations: plan.steps,
            rules: plan.rules.iter().map(|r| r.name.clone()).collect(),
            not_replayed: plan.not_replayed,
            silences: SILENCES_AS_THEY_WERE,
            firings: base.firings,
            firing_minutes: minutes(&base),
            transitions: std::mem::take(&mut base.transitions),
            notifications: std::mem::take(&mut base.notifications),
            truncated: base.truncated,
            sweep,
        }
    }
}

/// Runs a checked backtest: evaluates every rule at every step with the live
/// evaluator's [`crate::evaluate::evaluate`]; past [`DEADLINE`], `TooSlow`.
pub async fn run(
    client: &clickhouse::Client,
    kpis: &hypercare_kpis::KpiState,
    capacity: &hypercare_capacity::CapacitySettings,
    mut replay: Replay,
) -> Result<Outcome, AlertError> {
    let started = Instant::now();
    let rules = replay.plan().rules.clone();
    for now in replay.times().collect::<Vec<_>>() {
        if started.elapsed() > DEADLINE {
            return Err(AlertError::TooSlow(format!(
                "the backtest ran past its {}s deadline; narrow `from`..`to` or select rules with `rule`",
                DEADLINE.as_secs()
            )));
        }
        let mut results = Vec::with_capacity(rules.len());
        for rule in &rules {
            match crate::evaluate::evaluate(client, kpis, capacity, None, rule, now / 1000).await {
                Ok(samples) => results.push(Some(samples)),
                // A read ClickHouse refused is the answer's error, not a gap.
                Err(error) => match error.downcast::<clickhouse::error::Error>() {
                    Ok(e) => return Err(AlertError::Store(e)),
                    Err(_) => results.push(None),
                },
            }
        }
        replay.step(now, &results);
    }
    Ok(replay.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
groups:
  - name: g
    rules:
      - name: errors
        tier: P0
        for: 2m
        annotations: { summary: "errors at {{ $value }}" }
        condition:
          metric: { select: error_ratio, fn: last, window: 5m }
          above: 0.02
      - name: leads
        tier: P1
        annotations: { summary: "leads" }
        condition: { kpi: leads, below: critical }
"#;

    fn request(from: &str, to: &str) -> BacktestRequest {
        BacktestRequest {
            from: from.into(),
            to: to.into(),
            rules: Some(RULES.into()),
            rule: None,
            set: None,
            step: None,
        }
    }

    const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn sample(value: f64) -> Vec<Sample> {
        vec![Sample {
            labels: BTreeMap::new(),
            value,
            holds: value > 0.02,
            annotations: BTreeMap::new(),
        }]
    }

    #[test]
    fn limits_are_checked_before_any_read_and_name_the_field() {
        let minute = Duration::from_secs(60);
        let field = |r: BacktestRequest| match plan_request(r, &[], minute, NOW) {
            Err(AlertError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(request("yesterday", "2025-12-31T00:00:00Z")), "from");
        assert_eq!(
            field(request("2025-12-31T00:00:00Z", "2025-12-30T00:00:00Z")),
            "to"
        );
        // 30 days at one minute asked for: 43 201 evaluations.
        let mut r = request("2025-12-01T00:00:00Z", "2025-12-31T00:00:00Z");
        r.step = Some("1m".into());
        assert_eq!(field(r), "step");
        let mut r = request("2025-12-01T00:00:00Z", "2025-12-31T00:00:00Z");
        r.step = Some("soon".into());
        assert_eq!(field(r), "step");
        assert_eq!(
            field(request("2025-12-31T00:00:00Z", "2026-01-02T00:00:00Z")),
            "to"
        );
        let mut r = request("2025-12-31T00:00:00Z", "2025-12-31T01:00:00Z");
        r.rule = Some(vec!["nope".into()]);
        assert_eq!(field(r), "rule");
        let mut r = request("2025-12-31T00:00:00Z", "2025-12-31T01:00:00Z");
        r.rules = Some("groups: [{name: g, rules: [{name: x, tier: P9}]}]".into());
        assert_eq!(field(r), "rules");
        let mut r = request("2025-12-31T00:00:00Z", "2025-12-31T01:00:00Z");
        r.set = Some(SetSpec {
            threshold: vec![0.1; MAX_THRESHOLDS + 1],
        });
        assert_eq!(field(r), "set.threshold");
    }

    #[test]
    fn a_long_window_widens_the_step_to_a_multiple_of_the_interval() {
        // A fortnight at the 15 s interval would be 80 641 evaluations.
        let plan = plan_request(
            request("2025-12-17T00:00:00Z", "2025-12-31T00:00:00Z"),
            &[],
            Duration::from_secs(15),
            NOW,
        )
        .unwrap();
        assert_eq!(plan.step_ms, 75_000);
        assert_eq!(plan.steps, 16_129);
        assert!(plan.steps <= MAX_STEPS);
    }

    #[test]
    fn kpi_rules_are_listed_as_not_replayed() {
        let plan = plan_request(
            request("2025-12-31T00:00:00Z", "2025-12-31T01:00:00Z"),
            &[],
            Duration::from_secs(60),
            NOW,
        )
        .unwrap();
        assert_eq!(plan.steps, 61);
        assert_eq!(plan.rules.len(), 1);
        assert_eq!(plan.not_replayed[0].rule, "leads");
    }

    #[test]
    fn replay_goes_pending_firing_resolved_and_sweeps_thresholds() {
        let mut r = request("2025-12-31T00:00:00Z", "2025-12-31T00:20:00Z");
        r.set = Some(SetSpec {
            threshold: vec![0.005, 0.02, 0.5],
        });
        let plan = plan_request(r, &[], Duration::from_secs(60), NOW).unwrap();
        let mut settings = crate::config::AlertSettings::default();
        settings.receivers.insert(
            "oncall".into(),
            crate::config::Receiver {
                url: "http://127.0.0.1:9/".into(),
                send_resolved: true,
                max_alerts: 0,
                timeout: Duration::from_secs(1),
                bearer_token: None,
            },
        );
        let mut replay = Replay::new(plan, &settings, &[], Vec::new());
        // 0.01 for 20 minutes, 0.05 from minute 5 to minute 10.
        for (i, now) in replay.times().collect::<Vec<_>>().into_iter().enumerate() {
            let value = if (5..10).contains(&i) { 0.05 } else { 0.01 };
            replay.step(now, &[Some(sample(value))]);
        }
        let outcome = replay.finish();
        let states: Vec<(&str, &str)> = outcome
            .transitions
            .iter()
            .map(|t| (t.state.as_str(), &t.at[11..16]))
            .collect();
        assert_eq!(
            states,
            [
                ("pending", "00:05"),
                ("firing", "00:07"),
                ("resolved", "00:10")
            ]
        );
        assert_eq!(outcome.firings, 1);
        assert!((outcome.firing_minutes - 3.0).abs() < 1e-9);
        assert!(
            outcome
                .notifications
                .iter()
                .any(|n| n.receiver == "oncall" && n.reason == "notify"),
            "{:?}",
            outcome.notifications
        );
        let sweep: Vec<(f64, u64)> = outcome
            .sweep
            .iter()
            .map(|s| (s.threshold, s.firings))
            .collect();
        // At 0.005 the quiet 1 % fires from minute 2 to the end, through the burst.
        assert_eq!(sweep, [(0.005, 1), (0.02, 1), (0.5, 0)]);
        assert!(outcome.sweep[0].firing_minutes > outcome.sweep[1].firing_minutes);
    }
}
