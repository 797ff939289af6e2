//! How the API shows an alert: its stored row, plus what is true of it now
//! (acknowledged, silenced, inhibited, past its ack SLA). Pure: the caller
//! hands the open alerts, the silences and the time.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{AlertSettings, Inhibition, TierPolicy};
use crate::plan::muted;
use crate::rule::Tier;
use crate::silence::{Silence, rfc3339};
use crate::store::{AlertRow, AlertStatus};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Alert)]
pub struct AlertView {
    pub id: String,
    pub rule: String,
    pub tier: String,
    /// pending, firing, acknowledged or resolved.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
    pub since: Option<String>,
    pub fired_at: Option<String>,
    pub acked_at: Option<String>,
    pub acked_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub silenced: bool,
    pub inhibited: bool,
    /// Firing longer than the tier's acknowledge SLA without an ack.
    pub ack_overdue: bool,
    pub escalation_level: u8,
    pub rollback_trigger: bool,
    pub fingerprint: String,
}

/// What the views of one answer are computed from.
pub struct Context<'a> {
    pub open: &'a [AlertRow],
    pub silences: &'a [Silence],
    pub settings: &'a AlertSettings,
    pub inhibitions: &'a [Inhibition],
    pub now: u64,
}

impl AlertView {
    pub fn of(row: &AlertRow, cx: &Context<'_>) -> AlertView {
        let now = cx.now;
        let (silenced, inhibited) = muted(row, cx.open, cx.silences, cx.inhibitions, now);
        let policy = Tier::parse(&row.tier).and_then(|t| cx.settings.tiers.get(&t));
        let ack_sla = policy.map(|p| p.ack_sla.as_millis() as u64);
        let acked = policy.map_or(row.acked_ms > 0, |p| p.ack_holds(row.acked_ms, now));
        let shown_state = match row.state {
            AlertStatus::Firing if acked => "acknowledged",
            other => other.as_str(),
        };
        AlertView {
            id: row.alert_id.clone(),
            rule: row.rule.clone(),
            tier: row.tier.clone(),
            state: shown_state.to_owned(),
            labels: row.labels(),
            annotations: row.annotations(),
            value: row.value,
            since: rfc3339(row.started_ms),
            fired_at: rfc3339(row.fired_ms),
            acked_at: rfc3339(row.acked_ms),
            acked_by: (!row.acked_by.is_empty()).then(|| row.acked_by.clone()),
            resolved_at: rfc3339(row.resolved_ms),
            resolved_by: (!row.resolved_by.is_empty()).then(|| row.resolved_by.clone()),
            silenced,
            inhibited,
            ack_overdue: row.state == AlertStatus::Firing
                && row.acked_ms == 0
                && ack_sla.is_some_and(|sla| now.saturating_sub(row.fired_ms) > sla),
            escalation_level: row.escalation_level,
            rollback_trigger: row.rollback == 1,
            fingerprint: row.fingerprint.clone(),
        }
    }

    /// Acknowledged or not, the alert fires.
    pub fn is_firing(&self) -> bool {
        self.state == "firing" || self.state == "acknowledged"
    }
}

/// The open alerts as `GET /v1/alerts` lists them: filtered, most severe
/// first, then oldest first.
pub fn board(cx: &Context<'_>, tier: Option<Tier>, state: Option<&str>) -> Vec<AlertView> {
    let mut alerts: Vec<AlertView> = cx
        .open
        .iter()
        .map(|row| AlertView::of(row, cx))
        .filter(|v| tier.is_none_or(|t| v.tier == t.as_str()))
        .filter(|v| state.is_none_or(|s| v.state == s))
        .collect();
    alerts.sort_by(|a, b| a.tier.cmp(&b.tier).then(a.since.cmp(&b.since)));
    alerts
}

/// The clocks of an open alert: how old it is and, while it fires without an
/// ack that holds, when its tier's ack SLA runs out and the next escalation
/// pages (epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub started_ms: u64,
    pub fired_ms: u64,
    pub ack_due_ms: Option<u64>,
    /// When the next escalation level is paged, and whom it pages.
    pub next_escalation: Option<(u64, Vec<String>)>,
}

/// The clocks run from when the alert fired, or from when its ack ran out (as
/// the planner escalates); a pending or acknowledged alert has none.
pub fn timing(row: &AlertRow, policy: Option<&TierPolicy>, now: u64) -> Timing {
    let running =
        policy.filter(|p| row.state == AlertStatus::Firing && !p.ack_holds(row.acked_ms, now));
    let clock = running.map(|p| (p, p.escalation_clock_ms(row.fired_ms, row.acked_ms)));
    Timing {
        started_ms: row.started_ms,
        fired_ms: row.fired_ms,
        ack_due_ms: clock.map(|(p, from)| from.saturating_add(p.ack_sla.as_millis() as u64)),
        next_escalation: clock.and_then(|(p, from)| {
            p.escalation
                .get(usize::from(row.escalation_level))
                .map(|e| {
                    (
                        from.saturating_add(e.after.as_millis() as u64),
                        e.receivers.clone(),
                    )
                })
        }),
    }
}

/// One version of an alert, as its history lists it.
#[derive(Debug, Serialize)]
pub struct Change {
    pub version: u32,
    pub change: String,
    pub at: Option<String>,
    pub state: AlertStatus,
}

pub fn changes(versions: &[AlertRow]) -> Vec<Change> {
    versions
        .iter()
        .map(|v| Change {
            version: v.version,
            change: v.change.clone(),
            at: rfc3339(v.at_ms),
            state: v.state,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Escalation;
    use std::time::Duration;

    const T0: u64 = 1_795_000_000_000;

    fn row(state: AlertStatus, acked_ms: u64, escalation_level: u8) -> AlertRow {
        AlertRow {
            alert_id: "a".into(),
            version: 2,
            fingerprint: "f".into(),
            rule: "r".into(),
            tier: "P0".into(),
            state,
            label_keys: vec![],
            label_values: vec![],
            annotation_keys: vec![],
            annotation_values: vec![],
            value: 1.0,
            rollback: 0,
            started_ms: T0 - 60_000,
            fired_ms: T0,
            acked_ms,
            acked_by: String::new(),
            resolved_ms: 0,
            resolved_by: String::new(),
            escalation_level,
            change: "fired".into(),
            at_ms: T0,
        }
    }

    fn policy(ack_timeout: Option<Duration>) -> TierPolicy {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        TierPolicy {
            receivers: vec!["oncall".into()],
            ack_sla: minutes(5),
            group_wait: Duration::ZERO,
            group_interval: minutes(1),
            repeat_interval: minutes(15),
            escalation: vec![
                Escalation {
                    after: minutes(5),
                    receivers: vec!["lead".into()],
                },
                Escalation {
                    after: minutes(15),
                    receivers: vec!["head".into()],
                },
            ],
            ack_timeout,
            digest_at: None,
        }
    }

    #[test]
    fn a_firing_alert_shows_its_ack_deadline_and_next_escalation() {
        let t = timing(&row(AlertStatus::Firing, 0, 0), Some(&policy(None)), T0 + 1);
        assert_eq!(t.ack_due_ms, Some(T0 + 300_000));
        assert_eq!(t.next_escalation, Some((T0 + 300_000, vec!["lead".into()])));
        assert_eq!(t.started_ms, T0 - 60_000);
        // Once the first level was paged, the next one is the second.
        let t = timing(
            &row(AlertStatus::Firing, 0, 1),
            Some(&policy(None)),
            T0 + 400_000,
        );
        assert_eq!(t.next_escalation, Some((T0 + 900_000, vec!["head".into()])));
        // The last level paged: no escalation left, the SLA is past.
        let t = timing(
            &row(AlertStatus::Firing, 0, 2),
            Some(&policy(None)),
            T0 + 1_000_000,
        );
        assert_eq!(
            (t.ack_due_ms, t.next_escalation),
            (Some(T0 + 300_000), None)
        );
    }

    #[test]
    fn an_ack_stops_the_clocks_until_it_runs_out() {
        let ten_minutes = Some(Duration::from_secs(600));
        let acked = row(AlertStatus::Firing, T0 + 60_000, 0);
        let t = timing(&acked, Some(&policy(ten_minutes)), T0 + 120_000);
        assert_eq!((t.ack_due_ms, t.next_escalation), (None, None));
        // The ack ran out at T0 + 11 min: the clocks start over from then.
        let t = timing(&acked, Some(&policy(ten_minutes)), T0 + 700_000);
        assert_eq!(t.ack_due_ms, Some(T0 + 660_000 + 300_000));
        let pending = timing(&row(AlertStatus::Pending, 0, 0), Some(&policy(None)), T0);
        assert_eq!(pending.ack_due_ms, None);
        let unknown_tier = timing(&row(AlertStatus::Firing, 0, 0), None, T0);
        assert_eq!(unknown_tier.ack_due_ms, None);
    }
}
