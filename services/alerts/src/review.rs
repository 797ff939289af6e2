//! The noisy-alert review (`GET /v1/alerts/review`, `hypercare rules review`):
//! per rule, how often it fired in a span, how long it stayed, which firings
//! were noise (resolved by their condition within a few minutes, never
//! acknowledged), how often it flapped (fired again soon after resolving), the
//! time to acknowledge, how many firings overlapped a rollback trigger's, and
//! suggestions that name the rule and the change.
//!
//! Pure: from the latest version of every alert active in the span
//! (`store::history`: each firing is its own alert id, and its latest version
//! carries its fired, acked and resolved times) and each tier's ack SLA.
//! Alerts that fired before the span are read only as the firing a flap
//! follows; the counts are over firings inside `[from, to)`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::AlertError;
use crate::rule::Tier;
use crate::silence::rfc3339;
use crate::store::AlertRow;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// What counts as noise, a flap, and a busy rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewParams {
    /// A firing resolved by its condition within this, without an ack, is noise.
    pub noise_within_ms: u64,
    /// A firing that starts within this of the same alert's resolution is a flap.
    pub flap_within_ms: u64,
    /// Firings per day above which a higher threshold is suggested.
    pub busy_per_day: f64,
}

impl Default for ReviewParams {
    fn default() -> Self {
        ReviewParams {
            noise_within_ms: 5 * MINUTE_MS,
            flap_within_ms: 10 * MINUTE_MS,
            busy_per_day: 10.0,
        }
    }
}

/// The longest noise or flap window a question may ask for (a day): beyond
/// it, every firing is "noise" and the answer says nothing.
pub const MAX_WINDOW_MINUTES: u64 = 1440;
/// The longest span one review reads (its rows are held in memory).
pub const MAX_SPAN_MS: u64 = 92 * DAY_MS;

impl ReviewParams {
    /// From the query's optional `noise_minutes`, `flap_minutes`, `busy_per_day`.
    pub fn parse(
        noise_minutes: Option<u64>,
        flap_minutes: Option<u64>,
        busy_per_day: Option<f64>,
    ) -> Result<Self, AlertError> {
        let minutes = |field: &str, value: Option<u64>, default: u64| match value {
            None => Ok(default),
            Some(m) if (1..=MAX_WINDOW_MINUTES).contains(&m) => Ok(m * MINUTE_MS),
            Some(_) => Err(AlertError::invalid(
                field,
                format!("must be 1 to {MAX_WINDOW_MINUTES} minutes"),
            )),
        };
        let default = ReviewParams::default();
        let busy = match busy_per_day {
            None => default.busy_per_day,
            Some(b) if b.is_finite() && b > 0.0 => b,
            Some(_) => {
                return Err(AlertError::invalid(
                    "busy_per_day",
                    "must be a positive number",
                ));
            }
        };
        Ok(ReviewParams {
            noise_within_ms: minutes("noise_minutes", noise_minutes, default.noise_within_ms)?,
            flap_within_ms: minutes("flap_minutes", flap_minutes, default.flap_within_ms)?,
            busy_per_day: busy,
        })
    }
}

/// A change to one rule, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub rule: String,
    /// `longer_for`, `higher_threshold` or `lower_tier`.
    pub change: String,
    /// The change in words, e.g. "longer `for` (e.g. 10m)".
    pub text: String,
    /// The figures that call for it.
    pub reason: String,
}

/// One rule's firings in the span.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuleReview {
    pub rule: String,
    pub tier: String,
    pub firings: u64,
    /// Time spent firing (up to the span's end for one still firing).
    pub firing_secs_total: f64,
    pub firing_secs_median: Option<f64>,
    /// Resolved by the condition within the noise window, never acknowledged.
    pub noise: u64,
    /// Firings that started within the flap window of the same alert's
    /// (same labels) previous resolution.
    pub flaps: u64,
    pub acked: u64,
    /// Mean time to acknowledge, over the acknowledged firings.
    pub mtta_secs: Option<f64>,
    /// Firings acknowledged within the tier's ack SLA.
    pub acked_within_sla: u64,
    /// Firings that overlapped a firing of a rollback-trigger rule (another alert).
    pub with_rollback_trigger: u64,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub from: Option<String>,
    pub to: Option<String>,
    pub noise_minutes: u64,
    pub flap_minutes: u64,
    pub busy_per_day: f64,
    /// Rules that fired in the span, noisiest first (most suggestions, then
    /// most firings).
    pub rules: Vec<RuleReview>,
    /// Every suggestion of every rule, in the order of `rules`.
    pub suggestions: Vec<Suggestion>,
}

/// When a row stopped firing, as seen at `to`.
fn end_ms(row: &AlertRow, to: u64) -> u64 {
    if row.resolved_ms > 0 && row.resolved_ms < to {
        row.resolved_ms
    } else {
        to
    }
}

/// Resolved by its condition (not by hand) within `within`, never acknowledged.
fn is_noise(row: &AlertRow, within: u64) -> bool {
    row.acked_ms == 0
        && row.resolved_ms > 0
        && row.resolved_by == "condition"
        && row.resolved_ms.saturating_sub(row.fired_ms) <= within
}

fn median(mut values: Vec<u64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    let mid = if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    };
    Some(mid)
}

/// `10m`, `1h30m`, as rule files write durations.
fn minutes_text(ms: u64) -> String {
    crate::duration::format(std::time::Duration::from_millis(ms))
}

/// The review of `[from, to)` (epoch ms); `ack_sla_ms` gives a tier's time to
/// acknowledge.
pub fn review(
    rows: &[AlertRow],
    from: u64,
    to: u64,
    params: ReviewParams,
    ack_sla_ms: impl Fn(&str) -> Option<u64>,
) -> Review {
    let fired: Vec<&AlertRow> = rows
        .iter()
        .filter(|r| r.fired_ms > 0 && r.fired_ms < to)
        .collect();
    // The previous resolution of each alert (rule and labels), for flaps.
    let mut by_alert: BTreeMap<(&str, &str), Vec<&AlertRow>> = BTreeMap::new();
    for row in &fired {
        by_alert
            .entry((row.rule.as_str(), row.fingerprint.as_str()))
            .or_default()
            .push(row);
    }
    let mut flap_ids = std::collections::HashSet::new();
    for firings in by_alert.values_mut() {
        firings.sort_by_key(|r| r.fired_ms);
        for pair in firings.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            if before.resolved_ms > 0
                && before.resolved_ms <= after.fired_ms
                && after.fired_ms - before.resolved_ms <= params.flap_within_ms
            {
                flap_ids.insert(after.alert_id.as_str());
            }
        }
    }
    let triggers: Vec<(&str, u64, u64)> = fired
        .iter()
        .filter(|r| r.rollback == 1)
        .map(|r| (r.alert_id.as_str(), r.fired_ms, end_ms(r, to)))
        .collect();

    let mut per_rule: BTreeMap<&str, Vec<&AlertRow>> = BTreeMap::new();
    for row in fired.iter().filter(|r| r.fired_ms >= from) {
        per_rule.entry(row.rule.as_str()).or_default().push(row);
    }
    // A span shorter than a day counts as one, so a short look does not
    // extrapolate two firings into a busy rule.
    let days = ((to - from) as f64 / DAY_MS as f64).max(1.0);
    let mut rules: Vec<RuleReview> = per_rule
        .into_iter()
        .map(|(rule, firings)| {
            // The latest firing's tier: a rule's tier can change between loads.
            let tier = firings
                .iter()
                .max_by_key(|r| r.fired_ms)
                .map(|r| r.tier.clone())
                .unwrap_or_default();
            let sla = ack_sla_ms(&tier);
            let durations: Vec<u64> = firings
                .iter()
                .map(|r| end_ms(r, to).saturating_sub(r.fired_ms))
                .collect();
            let tta: Vec<u64> = firings
                .iter()
                .filter(|r| r.acked_ms > 0)
                .map(|r| r.acked_ms.saturating_sub(r.fired_ms))
                .collect();
            let overlaps = |r: &AlertRow| {
                let (start, end) = (r.fired_ms, end_ms(r, to));
                triggers
                    .iter()
                    .any(|(id, s, e)| *id != r.alert_id && *s <= end && start <= *e)
            };
            let mut review = RuleReview {
                rule: rule.to_owned(),
                tier,
                firings: firings.len() as u64,
                firing_secs_total: durations.iter().sum::<u64>() as f64 / 1000.0,
                firing_secs_median: median(durations).map(|ms| ms / 1000.0),
                noise: firings
                    .iter()
                    .filter(|r| is_noise(r, params.noise_within_ms))
                    .count() as u64,
                flaps: firings
                    .iter()
                    .filter(|r| flap_ids.contains(r.alert_id.as_str()))
                    .count() as u64,
                acked: tta.len() as u64,
                mtta_secs: (!tta.is_empty())
                    .then(|| tta.iter().sum::<u64>() as f64 / tta.len() as f64 / 1000.0),
                acked_within_sla: sla.map_or(0, |sla| tta.iter().filter(|t| **t <= sla).count())
                    as u64,
                with_rollback_trigger: firings.iter().filter(|r| overlaps(r)).count() as u64,
                suggestions: Vec::new(),
            };
            let self_resolved = firings
                .iter()
                .any(|r| r.acked_ms == 0 && r.resolved_by == "condition");
            review.suggestions = suggest(&review, self_resolved, days, params);
            review
        })
        .collect();
    rules.sort_by(|a, b| {
        b.suggestions
            .len()
            .cmp(&a.suggestions.len())
            .then(b.firings.cmp(&a.firings))
            .then(a.rule.cmp(&b.rule))
    });
    let suggestions = rules
        .iter()
        .flat_map(|r| r.suggestions.iter().cloned())
        .collect();
    Review {
        from: rfc3339(from),
        to: rfc3339(to),
        noise_minutes: params.noise_within_ms / MINUTE_MS,
        flap_minutes: params.flap_within_ms / MINUTE_MS,
        busy_per_day: params.busy_per_day,
        rules,
        suggestions,
    }
}

/// The changes one rule's figures call for. `self_resolved`: at least one of
/// its firings was resolved by its condition without an ack.
pub fn suggest(
    r: &RuleReview,
    self_resolved: bool,
    days: f64,
    params: ReviewParams,
) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let make = |change: &str, text: String, reason: String| Suggestion {
        rule: r.rule.clone(),
        change: change.to_owned(),
        text,
        reason,
    };
    // Noise that is most of the firings, or repeated flapping: a `for`
    // longer than the noise window would have kept these pending.
    let mostly_noise = r.noise >= 2 && r.noise * 2 >= r.firings;
    if mostly_noise || r.flaps >= 2 {
        let longer = (params.noise_within_ms * 2).max(params.flap_within_ms);
        out.push(make(
            "longer_for",
            format!("longer `for` (e.g. {})", minutes_text(longer)),
            format!(
                "{} of {} firings resolved by themselves within {} without an ack; {} flaps (fired again within {} of resolving)",
                r.noise,
                r.firings,
                minutes_text(params.noise_within_ms),
                r.flaps,
                minutes_text(params.flap_within_ms),
            ),
        ));
    }
    let per_day = r.firings as f64 / days;
    if per_day > params.busy_per_day {
        out.push(make(
            "higher_threshold",
            "higher threshold".to_owned(),
            format!(
                "{per_day:.1} firings a day (more than {})",
                params.busy_per_day
            ),
        ));
    }
    let urgent = matches!(Tier::parse(&r.tier), Some(Tier::P0 | Tier::P1));
    if urgent && r.acked_within_sla == 0 && self_resolved {
        let lower = match Tier::parse(&r.tier) {
            Some(Tier::P0) => "P1",
            _ => "P2",
        };
        out.push(make(
            "lower_tier",
            format!("lower tier ({} to {lower})", r.tier),
            format!(
                "none of its {} firings was acknowledged within the {} ack SLA, and they resolve by themselves",
                r.firings, r.tier
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AlertStatus;

    const FROM: u64 = 1_795_000_000_000;
    const TO: u64 = FROM + DAY_MS;

    /// A firing of `rule` (labels `fp`) from `fired` to `resolved` minutes
    /// after FROM (0: still firing), resolved by its condition.
    fn firing(rule: &str, fp: &str, fired: u64, resolved: u64) -> AlertRow {
        AlertRow {
            alert_id: format!("{rule}-{fp}-{fired}"),
            version: 3,
            fingerprint: fp.into(),
            rule: rule.into(),
            tier: "P2".into(),
            state: if resolved > 0 {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            },
            label_keys: vec![],
            label_values: vec![],
            annotation_keys: vec![],
            annotation_values: vec![],
            value: 1.0,
            rollback: 0,
            started_ms: FROM + fired * MINUTE_MS,
            fired_ms: FROM + fired * MINUTE_MS,
            acked_ms: 0,
            acked_by: String::new(),
            resolved_ms: if resolved > 0 {
                FROM + resolved * MINUTE_MS
            } else {
                0
            },
            resolved_by: if resolved > 0 {
                "condition".into()
            } else {
                String::new()
            },
            escalation_level: 0,
            change: String::new(),
            at_ms: 0,
        }
    }

    fn sla(_: &str) -> Option<u64> {
        Some(5 * MINUTE_MS)
    }

    fn run(rows: &[AlertRow]) -> Review {
        review(rows, FROM, TO, ReviewParams::default(), sla)
    }

    fn rule<'a>(review: &'a Review, name: &str) -> &'a RuleReview {
        review.rules.iter().find(|r| r.rule == name).unwrap()
    }

    fn changes(r: &RuleReview) -> Vec<&str> {
        r.suggestions.iter().map(|s| s.change.as_str()).collect()
    }

    #[test]
    fn a_flapping_rule_gets_a_longer_for_and_a_steady_one_nothing() {
        let rows = vec![
            firing("flappy", "a", 10, 11),
            firing("flappy", "a", 13, 14),
            firing("flappy", "a", 16, 17),
            firing("flappy", "a", 40, 41),
            firing("steady", "b", 10, 0),
        ];
        let review = run(&rows);
        let flappy = rule(&review, "flappy");
        assert_eq!(flappy.firings, 4);
        assert_eq!(flappy.noise, 4);
        // 13 and 16 came within 10 min of a resolution; 40 did not (23 min).
        assert_eq!(flappy.flaps, 2);
        assert_eq!(flappy.firing_secs_total, 240.0);
        assert_eq!(flappy.firing_secs_median, Some(60.0));
        assert_eq!(changes(flappy), ["longer_for"]);
        assert_eq!(flappy.suggestions[0].text, "longer `for` (e.g. 10m)");
        assert_eq!(review.rules[0].rule, "flappy", "noisiest first");

        let steady = rule(&review, "steady");
        assert_eq!((steady.firings, steady.noise, steady.flaps), (1, 0, 0));
        // Still firing: up to the span's end.
        assert_eq!(
            steady.firing_secs_total,
            (DAY_MS - 10 * MINUTE_MS) as f64 / 1000.0
        );
        assert!(steady.suggestions.is_empty());
        assert_eq!(review.suggestions.len(), 1);
    }

    #[test]
    fn flaps_are_counted_per_label_set_and_not_across_them() {
        let rows = vec![firing("r", "a", 10, 11), firing("r", "b", 12, 13)];
        assert_eq!(rule(&run(&rows), "r").flaps, 0);
    }

    #[test]
    fn a_long_firing_or_one_resolved_by_hand_or_acked_is_not_noise() {
        let mut by_hand = firing("r", "a", 10, 12);
        by_hand.resolved_by = "alice".into();
        let mut acked = firing("r", "b", 10, 12);
        acked.acked_ms = FROM + 11 * MINUTE_MS;
        let long = firing("r", "c", 10, 30);
        let r = run(&[by_hand, acked, long]);
        let r = rule(&r, "r");
        assert_eq!(r.noise, 0);
        assert_eq!(r.acked, 1);
        assert_eq!(r.mtta_secs, Some(60.0));
        assert!(r.suggestions.is_empty(), "{:?}", r.suggestions);
    }

    #[test]
    fn a_rule_firing_more_than_the_busy_rate_gets_a_higher_threshold() {
        // 12 firings a day of 30 min each, 90 min apart: not noise, no flaps.
        let rows: Vec<AlertRow> = (0..12)
            .map(|i| firing("busy", "a", i * 120, i * 120 + 30))
            .collect();
        let r = run(&rows);
        assert_eq!(changes(rule(&r, "busy")), ["higher_threshold"]);
        assert!(r.suggestions[0].reason.starts_with("12.0 firings a day"));
        // The same firings over two days are 6 a day: fine.
        let two_days = review(&rows, FROM, FROM + 2 * DAY_MS, ReviewParams::default(), sla);
        assert!(rule(&two_days, "busy").suggestions.is_empty());
    }

    #[test]
    fn a_short_span_is_not_extrapolated_into_a_busy_rule() {
        let rows = vec![firing("r", "a", 1, 30), firing("r", "a", 60, 90)];
        let r = review(
            &rows,
            FROM,
            FROM + 120 * MINUTE_MS,
            ReviewParams::default(),
            sla,
        );
        assert!(rule(&r, "r").suggestions.is_empty());
    }

    #[test]
    fn an_urgent_rule_never_acked_in_its_sla_that_resolves_itself_gets_a_lower_tier() {
        let mut rows = vec![firing("page", "a", 10, 40), firing("page", "a", 100, 130)];
        for row in &mut rows {
            row.tier = "P1".into();
        }
        let r = run(&rows);
        let page = rule(&r, "page");
        assert_eq!(changes(page), ["lower_tier"]);
        assert_eq!(page.suggestions[0].text, "lower tier (P1 to P2)");
        assert_eq!(page.suggestions[0].rule, "page");

        // One ack within the SLA: people do act on it.
        rows[0].acked_ms = rows[0].fired_ms + MINUTE_MS;
        assert!(rule(&run(&rows), "page").suggestions.is_empty());
        // A P2 is not paged: nothing to lower.
        rows[0].acked_ms = 0;
        for row in &mut rows {
            row.tier = "P2".into();
        }
        assert!(rule(&run(&rows), "page").suggestions.is_empty());
    }

    #[test]
    fn firings_overlapping_another_rollback_trigger_are_counted() {
        let mut trigger = firing("rollback", "x", 20, 50);
        trigger.rollback = 1;
        let rows = vec![trigger, firing("r", "a", 10, 25), firing("r", "a", 60, 70)];
        let r = run(&rows);
        assert_eq!(rule(&r, "r").with_rollback_trigger, 1);
        // A trigger's own firing is not its own coincidence.
        assert_eq!(rule(&r, "rollback").with_rollback_trigger, 0);
    }

    #[test]
    fn firings_before_the_span_only_make_the_next_one_a_flap() {
        let before = firing("r", "a", 0, 2);
        let mut inside = firing("r", "a", 5, 6);
        let review = review(
            &[before, inside.clone()],
            FROM + 3 * MINUTE_MS,
            TO,
            ReviewParams::default(),
            sla,
        );
        let r = rule(&review, "r");
        assert_eq!((r.firings, r.flaps), (1, 1));
        inside.fired_ms = 0;
        assert!(run(&[inside]).rules.is_empty());
    }

    #[test]
    fn parameters_out_of_range_name_their_field() {
        let field = |e: AlertError| match e {
            AlertError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(ReviewParams::parse(Some(0), None, None).unwrap_err()),
            "noise_minutes"
        );
        assert_eq!(
            field(ReviewParams::parse(None, Some(1441), None).unwrap_err()),
            "flap_minutes"
        );
        assert_eq!(
            field(ReviewParams::parse(None, None, Some(f64::NAN)).unwrap_err()),
            "busy_per_day"
        );
        let p = ReviewParams::parse(Some(3), None, Some(2.5)).unwrap();
        assert_eq!(p.noise_within_ms, 3 * MINUTE_MS);
        assert_eq!(p.flap_within_ms, 10 * MINUTE_MS);
        assert_eq!(p.busy_per_day, 2.5);
    }
}
