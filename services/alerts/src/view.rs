//! How the API shows an alert: its stored row, plus what is true of it now
//! (acknowledged, silenced, inhibited, past its ack SLA). Pure: the caller
//! hands the open alerts, the silences and the time.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{AlertSettings, Inhibition};
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
