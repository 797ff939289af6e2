//! The evaluator and notifier: one loop that evaluates every rule, moves alerts
//! through pending -> firing -> resolved, and sends notifications the way
//! Alertmanager does (group wait / group interval / repeat interval per group,
//! inhibition, silences), plus escalation of unacknowledged alerts and a daily
//! digest for quiet tiers.
//!
//! State lives in memory in the one replica that runs the evaluator, and every
//! change is appended to `alert_events`; at start-up open alerts are read back,
//! so a restart does not forget what fires (groups are notified again once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use clickhouse::Client;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::config::{AlertSettings, Inhibition, digest_minute};
use crate::evaluate::{Sample, evaluate};
use crate::matcher::all_match;
use crate::notify::{Delivery, NOT_ENDED, WebhookAlert, WebhookPayload, common, rfc3339_ms};
use crate::now_ms;
use crate::rule::{Rule, Tier};
use crate::store::{self, AlertRow, Silence};

/// The shortest pause between two evaluations when they run early.
const MIN_GAP: std::time::Duration = std::time::Duration::from_millis(50);

/// Set on the alerts of an escalation notification: the level reached (1 = the
/// first `escalation` entry). Documented in docs/alerts.md.
pub const ESCALATION_ANNOTATION: &str = "escalation_level";

/// An alert the evaluator keeps.
#[derive(Debug, Clone)]
struct Tracked {
    row: AlertRow,
    /// Resolved, waiting for its group to tell the receivers.
    resolved_unsent: bool,
}

#[derive(Debug, Clone)]
struct Group {
    tier: Tier,
    labels: BTreeMap<String, String>,
    /// Fingerprints of the firing alerts the receivers were last told about.
    notified: BTreeSet<String>,
    last_flush_ms: Option<u64>,
    next_flush_ms: Option<u64>,
}

/// A group's tier, group labels and firing fingerprints, as of this tick.
type FiringGroup = (Tier, BTreeMap<String, String>, Vec<String>);

#[derive(Default)]
struct State {
    /// By fingerprint: pending, firing, and resolved-not-yet-notified alerts.
    alerts: BTreeMap<String, Tracked>,
    groups: BTreeMap<String, Group>,
    silences: Vec<Silence>,
    /// Resolved by hand while their condition still held: not started again
    /// until the condition clears.
    held_resolved: BTreeSet<String>,
    last_digest_day: BTreeMap<Tier, i64>,
    last_tick_ms: u64,
}

pub struct Engine {
    pub settings: AlertSettings,
    pub rules: Vec<Rule>,
    pub inhibitions: Vec<Inhibition>,
    store: Client,
    kpis: Arc<hypercare_kpis::KpiState>,
    capacity: hypercare_capacity::CapacitySettings,
    delivery: Arc<Delivery>,
    state: Mutex<State>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no open alert `{0}`")]
    NotFound(String),
    #[error("alert `{id}` is {state}: only a firing alert can be {action}")]
    WrongState {
        id: String,
        state: String,
        action: &'static str,
    },
    #[error("storing the change failed: {0}")]
    Store(#[from] clickhouse::error::Error),
}

pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in labels {
        hasher.update(k.as_bytes());
        hasher.update([0xff]);
        hasher.update(v.as_bytes());
        hasher.update([0xfe]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// `{{ $value }}` and `{{ $labels.name }}` filled in.
pub fn render(template: &str, value: f64, labels: &BTreeMap<String, String>) -> String {
    static VALUE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static LABEL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let value_re = VALUE.get_or_init(|| {
        regex::Regex::new(r"\{\{\s*\$value\s*\}\}").unwrap_or_else(|_| unreachable!())
    });
    let label_re = LABEL.get_or_init(|| {
        regex::Regex::new(r"\{\{\s*\$labels\.([A-Za-z0-9_.]+)\s*\}\}")
            .unwrap_or_else(|_| unreachable!())
    });
    let formatted = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}").trim_end_matches('0').to_owned()
    };
    let text = value_re.replace_all(template, formatted.as_str());
    label_re
        .replace_all(&text, |c: &regex::Captures| {
            labels.get(&c[1]).cloned().unwrap_or_default()
        })
        .into_owned()
}

fn split(map: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
    (
        map.keys().cloned().collect(),
        map.values().cloned().collect(),
    )
}

impl Engine {
    pub fn new(
        settings: AlertSettings,
        rules: Vec<Rule>,
        store: Client,
        kpis: Arc<hypercare_kpis::KpiState>,
        capacity: hypercare_capacity::CapacitySettings,
    ) -> Result<Self, String> {
        let inhibitions = settings.validate()?;
        let delivery = Arc::new(Delivery {
            http: crate::notify::http_client(),
            store: store.clone(),
            attempts: settings.delivery_attempts,
            backoff: settings.retry_backoff,
        });
        Ok(Self {
            settings,
            rules,
            inhibitions,
            store,
            kpis,
            capacity,
            delivery,
            state: Mutex::new(State::default()),
        })
    }

    /// Reads back the open alerts (after a restart).
    pub async fn restore(&self) -> clickhouse::error::Result<usize> {
        let rows = store::open_alerts(&self.store).await?;
        let mut state = self.state.lock().await;
        for row in rows {
            state.alerts.insert(
                row.fingerprint.clone(),
                Tracked {
                    row,
                    resolved_unsent: false,
                },
            );
        }
        Ok(state.alerts.len())
    }

    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match self.restore().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(alerts = n, "Open alerts read back."),
                Err(error) => tracing::warn!(%error, "Could not read back open alerts."),
            }
            // Rules are evaluated every `interval`, and early when a pending
            // alert reaches its `for`. Notification timers (a group's wait or
            // interval, an ack running out, an escalation) only send what the
            // last evaluation found, at once: no evaluation, no waiting for one.
            // At least MIN_GAP apart, so a storm of timers stays cheap.
            let mut next_evaluation = tokio::time::Instant::now();
            loop {
                let woke = tokio::time::Instant::now();
                if woke >= next_evaluation {
                    next_evaluation = woke + self.settings.interval;
                    if let Err(error) = self.tick().await {
                        tracing::warn!(%error, "Alert evaluation failed; retrying at the next interval.");
                    }
                } else if let Err(error) = self.flush().await {
                    tracing::warn!(%error, "Alert notification failed; retrying at the next interval.");
                }
                let now = now_ms();
                let (evaluate_at, flush_at) = self.next_due_ms(now).await;
                let after = |at: u64| {
                    tokio::time::Instant::now() + std::time::Duration::from_millis(at - now)
                };
                if let Some(at) = evaluate_at {
                    next_evaluation = next_evaluation.min(after(at));
                }
                let wake = flush_at.map_or(next_evaluation, |at| next_evaluation.min(after(at)));
                tokio::time::sleep_until(wake.max(tokio::time::Instant::now() + MIN_GAP)).await;
            }
        })
    }

    /// After `now`: the earliest moment a pending alert reaches its `for` (an
    /// evaluation is due), and the earliest a group is due to be sent, an ack
    /// runs out or an escalation is due (notifications are due).
    async fn next_due_ms(&self, now: u64) -> (Option<u64>, Option<u64>) {
        let state = self.state.lock().await;
        let flushes = state.groups.values().filter_map(|g| g.next_flush_ms);
        let fires = state
            .alerts
            .values()
            .filter(|t| t.row.state == "pending")
            .filter_map(|t| {
                let rule = self.rules.iter().find(|r| r.name == t.row.rule)?;
                Some(t.row.started_ms + rule.for_.as_millis() as u64)
            });
        let timers = state
            .alerts
            .values()
            .filter(|t| t.row.state == "firing")
            .filter_map(|t| {
                let policy = Tier::parse(&t.row.tier).and_then(|t| self.settings.tiers.get(&t))?;
                let clock = policy.escalation_clock_ms(t.row.fired_ms, t.row.acked_ms);
                let escalation = policy
                    .escalation
                    .get(usize::from(t.row.escalation_level))
                    .map(|e| clock + e.after.as_millis() as u64);
                let lapse = (t.row.acked_ms > 0)
                    .then(|| policy.ack_expires_ms(t.row.acked_ms))
                    .flatten();
                escalation.into_iter().chain(lapse).min()
            });
        (
            fires.filter(|at| *at > now).min(),
            flushes.chain(timers).filter(|at| *at > now).min(),
        )
    }

    /// Notifications that are due, from what the last evaluation found.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let now = now_ms();
        let mut state = self.state.lock().await;
        let mut changes = Vec::new();
        self.notify(&mut state, now, &mut changes);
        store::append(&self.store, &changes).await?;
        state.last_tick_ms = now;
        Ok(())
    }

    /// One evaluation of every rule, then notifications.
    pub async fn tick(&self) -> anyhow::Result<()> {
        let now = now_ms();
        let silences = store::silences(&self.store).await?;
        let board = if self.rules.iter().any(|r| r.condition.kpi.is_some()) {
            match self.kpis.board_now().await {
                Ok(board) => Some(board),
                Err(error) => {
                    tracing::warn!(%error, "Could not read the KPI board; KPI rules keep their state.");
                    None
                }
            }
        } else {
            None
        };
        let mut results = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            match evaluate(
                &self.store,
                &self.kpis,
                &self.capacity,
                board.as_ref(),
                rule,
                now / 1000,
            )
            .await
            {
                Ok(samples) => results.push(Some(samples)),
                Err(error) => {
                    tracing::warn!(rule = %rule.name, %error, "Could not evaluate an alert rule; its alerts keep their state.");
                    results.push(None);
                }
            }
        }
        let mut state = self.state.lock().await;
        state.silences = silences;
        let mut changes = Vec::new();
        for (rule, samples) in self.rules.iter().zip(results) {
            if let Some(samples) = samples {
                self.apply(&mut state, rule, samples, now, &mut changes);
            }
        }
        store::append(&self.store, &changes).await?;
        let mut changes = Vec::new();
        self.notify(&mut state, now, &mut changes);
        store::append(&self.store, &changes).await?;
        state.last_tick_ms = now;
        Ok(())
    }

    fn labels_of(rule: &Rule, sample: &Sample) -> BTreeMap<String, String> {
        let mut labels = sample.labels.clone();
        labels.extend(rule.labels.clone());
        labels.insert("alertname".into(), rule.name.clone());
        labels.insert("tier".into(), rule.tier.as_str().into());
        labels
    }

    fn apply(
        &self,
        state: &mut State,
        rule: &Rule,
        samples: Vec<Sample>,
        now: u64,
        changes: &mut Vec<AlertRow>,
    ) {
        let mut seen = BTreeSet::new();
        for sample in samples {
            let labels = Self::labels_of(rule, &sample);
            let fp = fingerprint(&labels);
            seen.insert(fp.clone());
            let annotations: BTreeMap<String, String> = rule
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), render(v, sample.value, &labels)))
                .collect();
            if !sample.holds {
                state.held_resolved.remove(&fp);
                self.clear(state, &fp, now, changes);
                continue;
            }
            if state.held_resolved.contains(&fp) {
                continue;
            }
            let open = state
                .alerts
                .get(&fp)
                .is_some_and(|t| t.row.state != "resolved");
            if !open {
                let (label_keys, label_values) = split(&labels);
                let (annotation_keys, annotation_values) = split(&annotations);
                let fires_now = rule.for_.is_zero();
                let row = AlertRow {
                    alert_id: format!("{}{:x}", &fp[..8], now),
                    version: 1,
                    fingerprint: fp.clone(),
                    rule: rule.name.clone(),
                    tier: rule.tier.as_str().into(),
                    state: if fires_now { "firing" } else { "pending" }.into(),
                    label_keys,
                    label_values,
                    annotation_keys,
                    annotation_values,
                    value: sample.value,
                    rollback: u8::from(rule.rollback_trigger),
                    started_ms: now,
                    fired_ms: if fires_now { now } else { 0 },
                    acked_ms: 0,
                    acked_by: String::new(),
                    resolved_ms: 0,
                    resolved_by: String::new(),
                    escalation_level: 0,
                    change: if fires_now { "fired" } else { "pending" }.into(),
                    at_ms: now,
                };
                changes.push(row.clone());
                state.alerts.insert(
                    fp,
                    Tracked {
                        row,
                        resolved_unsent: false,
                    },
                );
                continue;
            }
            let Some(tracked) = state.alerts.get_mut(&fp) else {
                continue;
            };
            let row = &mut tracked.row;
            row.value = sample.value;
            let (annotation_keys, annotation_values) = split(&annotations);
            row.annotation_keys = annotation_keys;
            row.annotation_values = annotation_values;
            if row.state == "pending"
                && now.saturating_sub(row.started_ms) >= rule.for_.as_millis() as u64
            {
                row.state = "firing".into();
                row.fired_ms = now;
                row.version += 1;
                row.change = "fired".into();
                row.at_ms = now;
                changes.push(row.clone());
            }
        }
        // Series that are gone (no data) end like a condition that cleared.
        let gone: Vec<String> = state
            .alerts
            .iter()
            .filter(|(fp, t)| {
                t.row.rule == rule.name && t.row.state != "resolved" && !seen.contains(*fp)
            })
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in gone {
            self.clear(state, &fp, now, changes);
        }
    }

    /// The condition no longer holds: a pending alert is dropped, a firing one resolved.
    fn clear(&self, state: &mut State, fp: &str, now: u64, changes: &mut Vec<AlertRow>) {
        let Some(tracked) = state.alerts.get_mut(fp) else {
            return;
        };
        if tracked.row.state == "resolved" {
            return;
        }
        let was_firing = tracked.row.state == "firing";
        let row = &mut tracked.row;
        row.state = "resolved".into();
        row.resolved_ms = now;
        row.resolved_by = "condition".into();
        row.version += 1;
        row.change = "resolved".into();
        row.at_ms = now;
        changes.push(row.clone());
        if was_firing {
            tracked.resolved_unsent = true;
        } else {
            state.alerts.remove(fp);
        }
    }

    fn silenced(state: &State, labels: &BTreeMap<String, String>, now: u64) -> bool {
        silenced(&state.silences, labels, now)
    }

    fn inhibited(
        &self,
        state: &State,
        fp: &str,
        labels: &BTreeMap<String, String>,
        now: u64,
    ) -> bool {
        inhibited(
            &self.inhibitions,
            fp,
            labels,
            state.alerts.values().map(|t| &t.row),
            &state.silences,
            now,
        )
    }

    fn group_key(
        &self,
        tier: Tier,
        labels: &BTreeMap<String, String>,
    ) -> (String, BTreeMap<String, String>) {
        let mut group = BTreeMap::from([("tier".to_owned(), tier.as_str().to_owned())]);
        for l in &self.settings.group_by {
            if let Some(v) = labels.get(l) {
                group.insert(l.clone(), v.clone());
            }
        }
        let inner = group
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        (format!("{{}}:{{{inner}}}"), group)
    }

    fn webhook_alert(&self, row: &AlertRow, firing: bool) -> WebhookAlert {
        WebhookAlert {
            status: if firing { "firing" } else { "resolved" },
            labels: row.labels(),
            annotations: row.annotations(),
            starts_at: rfc3339_ms(if row.fired_ms > 0 {
                row.fired_ms
            } else {
                row.started_ms
            }),
            ends_at: if firing {
                NOT_ENDED.into()
            } else {
                rfc3339_ms(row.resolved_ms)
            },
            generator_url: format!(
                "{}/v1/alerts/{}",
                self.settings.external_url.trim_end_matches('/'),
                row.alert_id
            ),
            fingerprint: row.fingerprint.clone(),
        }
    }

    fn payload(
        &self,
        group_key: &str,
        group_labels: &BTreeMap<String, String>,
        receiver: &str,
        alerts: Vec<WebhookAlert>,
    ) -> WebhookPayload {
        let labels: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.labels).collect();
        let annotations: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.annotations).collect();
        WebhookPayload {
            version: "4",
            group_key: group_key.to_owned(),
            truncated_alerts: 0,
            status: if alerts.iter().any(|a| a.status == "firing") {
                "firing"
            } else {
                "resolved"
            },
            receiver: receiver.to_owned(),
            group_labels: group_labels.clone(),
            common_labels: common(&labels),
            common_annotations: common(&annotations),
            external_url: self.settings.external_url.clone(),
            alerts,
        }
    }

    fn send(
        &self,
        receivers: &[String],
        group_key: &str,
        group_labels: &BTreeMap<String, String>,
        alerts: &[WebhookAlert],
        reason: &'static str,
    ) {
        for name in receivers {
            let Some(receiver) = self.settings.receivers.get(name) else {
                tracing::warn!(receiver = %name, "No such receiver in [alerts.receivers]; notification skipped.");
                continue;
            };
            let alerts: Vec<WebhookAlert> = alerts
                .iter()
                .filter(|a| a.status == "firing" || receiver.send_resolved)
                .cloned()
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let ids = alerts
                .iter()
                .map(|a| a.generator_url.rsplit('/').next().unwrap_or("").to_owned())
                .collect();
            let payload = self.payload(group_key, group_labels, name, alerts);
            self.delivery.send(receiver.clone(), payload, reason, ids);
        }
    }

    /// Acknowledgements that ran out since the last tick: each is recorded
    /// (`ack_expired`) and returned, so that its group is told again at once.
    fn lapse_acks(
        &self,
        state: &mut State,
        now: u64,
        changes: &mut Vec<AlertRow>,
    ) -> BTreeSet<String> {
        let since = state.last_tick_ms;
        let mut lapsed = BTreeSet::new();
        // After a restart (no previous tick) every open group is re-sent anyway.
        if since == 0 {
            return lapsed;
        }
        for (fp, tracked) in &mut state.alerts {
            let row = &mut tracked.row;
            let Some(end) = Tier::parse(&row.tier)
                .and_then(|t| self.settings.tiers.get(&t))
                .and_then(|p| p.ack_expires_ms(row.acked_ms))
            else {
                continue;
            };
            if row.state == "firing" && row.acked_ms > 0 && since < end && end <= now {
                row.version += 1;
                row.change = "ack_expired".into();
                row.at_ms = now;
                changes.push(row.clone());
                lapsed.insert(fp.clone());
            }
        }
        lapsed
    }

    fn notify(&self, state: &mut State, now: u64, changes: &mut Vec<AlertRow>) {
        let lapsed = self.lapse_acks(state, now, changes);
        // Which alerts each group should show now.
        let mut firing: BTreeMap<String, FiringGroup> = BTreeMap::new();
        let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (fp, tracked) in &state.alerts {
            let Some(tier) = Tier::parse(&tracked.row.tier) else {
                continue;
            };
            let labels = tracked.row.labels();
            let (key, group_labels) = self.group_key(tier, &labels);
            if tracked.resolved_unsent {
                resolved.entry(key).or_default().push(fp.clone());
            } else if tracked.row.state == "firing"
                && !Self::silenced(state, &labels, now)
                && !self.inhibited(state, fp, &labels, now)
            {
                firing
                    .entry(key)
                    .or_insert_with(|| (tier, group_labels, Vec::new()))
                    .2
                    .push(fp.clone());
            }
        }
        let keys: BTreeSet<String> = firing.keys().chain(state.groups.keys()).cloned().collect();
        for key in keys {
            let now_firing: BTreeSet<String> = firing
                .get(&key)
                .map(|f| f.2.iter().cloned().collect())
                .unwrap_or_default();
            let group = match state.groups.get(&key) {
                Some(g) => g.clone(),
                None => {
                    let Some((tier, labels, _)) = firing.get(&key) else {
                        continue;
                    };
                    let Some(policy) = self.settings.tiers.get(tier) else {
                        continue;
                    };
                    Group {
                        tier: *tier,
                        labels: labels.clone(),
                        notified: BTreeSet::new(),
                        last_flush_ms: None,
                        next_flush_ms: Some(now + policy.group_wait.as_millis() as u64),
                    }
                }
            };
            let Some(policy) = self.settings.tiers.get(&group.tier) else {
                continue;
            };
            if policy.digest_at.is_some() {
                continue;
            }
            let mut group = group;
            let ended: Vec<String> = resolved
                .get(&key)
                .map(|r| {
                    r.iter()
                        .filter(|fp| group.notified.contains(*fp))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let changed = now_firing != group.notified;
            // An acknowledged alert stops repeating until its ack lapses (as on
            // PagerDuty and Opsgenie); a group of only acknowledged alerts is quiet.
            let unacked = now_firing.iter().any(|fp| {
                state
                    .alerts
                    .get(fp)
                    .is_some_and(|t| !policy.ack_holds(t.row.acked_ms, now))
            });
            let ack_lapsed = now_firing.iter().any(|fp| lapsed.contains(fp));
            let mut reason = "notify";
            if let Some(last) = group.last_flush_ms {
                if changed && group.next_flush_ms.is_none() {
                    group.next_flush_ms =
                        Some(now.max(last + policy.group_interval.as_millis() as u64));
                }
                if !changed && ack_lapsed {
                    group.next_flush_ms = Some(now);
                    reason = "ack_expired";
                } else if !changed
                    && unacked
                    && now >= last + policy.repeat_interval.as_millis() as u64
                {
                    group.next_flush_ms = Some(now);
                    reason = "repeat";
                }
            }
            if group.next_flush_ms.is_some_and(|at| at <= now) {
                let mut alerts: Vec<WebhookAlert> = now_firing
                    .iter()
                    .filter_map(|fp| state.alerts.get(fp))
                    .map(|t| self.webhook_alert(&t.row, true))
                    .collect();
                alerts.extend(
                    ended
                        .iter()
                        .filter_map(|fp| state.alerts.get(fp))
                        .map(|t| self.webhook_alert(&t.row, false)),
                );
                if now_firing.is_empty() {
                    reason = "resolved";
                }
                if !alerts.is_empty() {
                    self.send(&policy.receivers, &key, &group.labels, &alerts, reason);
                }
                group.notified = now_firing.clone();
                group.last_flush_ms = Some(now);
                group.next_flush_ms = None;
            }
            if group.notified.is_empty() && now_firing.is_empty() {
                state.groups.remove(&key);
            } else {
                state.groups.insert(key.clone(), group);
            }
        }
        // Resolved alerts leave once no group still has to tell about them.
        let still_notified: BTreeSet<String> = state
            .groups
            .values()
            .flat_map(|g| g.notified.iter().cloned())
            .collect();
        state
            .alerts
            .retain(|fp, t| !t.resolved_unsent || still_notified.contains(fp));

        self.escalate(state, now, changes);
        self.digest(state, now);
    }

    /// Unacknowledged firing alerts past an escalation delay: their group's
    /// notification (same groupKey and groupLabels, every firing alert of the
    /// group) goes to the next level's receivers, the escalated alerts carrying
    /// the annotation `escalation_level`.
    fn escalate(&self, state: &mut State, now: u64, changes: &mut Vec<AlertRow>) {
        let due: Vec<(String, usize)> = state
            .alerts
            .iter()
            .filter(|(_, t)| t.row.state == "firing")
            .filter_map(|(fp, t)| {
                let tier = Tier::parse(&t.row.tier)?;
                let policy = self.settings.tiers.get(&tier)?;
                if policy.ack_holds(t.row.acked_ms, now) {
                    return None;
                }
                let labels = t.row.labels();
                if Self::silenced(state, &labels, now) || self.inhibited(state, fp, &labels, now) {
                    return None;
                }
                let clock = policy.escalation_clock_ms(t.row.fired_ms, t.row.acked_ms);
                let level = policy
                    .escalation
                    .iter()
                    .take_while(|e| now.saturating_sub(clock) >= e.after.as_millis() as u64)
                    .count();
                (level > usize::from(t.row.escalation_level)).then(|| (fp.clone(), level))
            })
            .collect();
        // By group and receivers: one notification per group and level reached.
        type Batch = (BTreeMap<String, String>, BTreeMap<String, usize>);
        let mut batches: BTreeMap<(String, Vec<String>), Batch> = BTreeMap::new();
        for (fp, level) in due {
            let Some(tracked) = state.alerts.get_mut(&fp) else {
                continue;
            };
            let Some(tier) = Tier::parse(&tracked.row.tier) else {
                continue;
            };
            let Some(policy) = self.settings.tiers.get(&tier) else {
                continue;
            };
            let receivers: Vec<String> = policy.escalation
                [usize::from(tracked.row.escalation_level)..level]
                .iter()
                .flat_map(|e| e.receivers.iter().cloned())
                .collect();
            tracked.row.escalation_level = level as u8;
            tracked.row.version += 1;
            tracked.row.change = "escalated".into();
            tracked.row.at_ms = now;
            changes.push(tracked.row.clone());
            let (key, group_labels) = self.group_key(tier, &tracked.row.labels());
            batches
                .entry((key, receivers))
                .or_insert_with(|| (group_labels, BTreeMap::new()))
                .1
                .insert(fp, level);
        }
        for ((key, receivers), (group_labels, escalated)) in batches {
            let alerts: Vec<WebhookAlert> = state
                .alerts
                .iter()
                .filter(|(fp, t)| {
                    if escalated.contains_key(*fp) {
                        return true;
                    }
                    let labels = t.row.labels();
                    t.row.state == "firing"
                        && !t.resolved_unsent
                        && Tier::parse(&t.row.tier)
                            .is_some_and(|tier| self.group_key(tier, &labels).0 == key)
                        && !Self::silenced(state, &labels, now)
                        && !self.inhibited(state, fp, &labels, now)
                })
                .map(|(fp, t)| {
                    let mut alert = self.webhook_alert(&t.row, true);
                    if let Some(level) = escalated.get(fp) {
                        alert
                            .annotations
                            .insert(ESCALATION_ANNOTATION.into(), level.to_string());
                    }
                    alert
                })
                .collect();
            self.send(&receivers, &key, &group_labels, &alerts, "escalation");
        }
    }

    fn digest(&self, state: &mut State, now: u64) {
        let day = (now / 86_400_000) as i64;
        let minute = ((now / 60_000) % 1440) as u32;
        for (tier, policy) in &self.settings.tiers {
            let Some(at) = policy.digest_at.as_deref().and_then(digest_minute) else {
                continue;
            };
            if minute < at || state.last_digest_day.get(tier) == Some(&day) {
                continue;
            }
            state.last_digest_day.insert(*tier, day);
            let alerts: Vec<WebhookAlert> = state
                .alerts
                .iter()
                .filter(|(fp, t)| {
                    let labels = t.row.labels();
                    t.row.tier == tier.as_str()
                        && t.row.state == "firing"
                        && !Self::silenced(state, &labels, now)
                        && !self.inhibited(state, fp, &labels, now)
                })
                .map(|(_, t)| self.webhook_alert(&t.row, true))
                .collect();
            if !alerts.is_empty() {
                let labels = BTreeMap::from([("tier".to_owned(), tier.as_str().to_owned())]);
                let key = format!("{{}}/digest:{{tier={:?}}}", tier.as_str());
                self.send(&policy.receivers, &key, &labels, &alerts, "digest");
            }
        }
    }

    /// Acknowledges a firing alert: escalation and repeats stop until it
    /// resolves or the tier's `ack_timeout` runs out; acknowledging again after
    /// that renews the ack.
    pub async fn ack(&self, id: &str, by: &str) -> Result<AlertRow, ActionError> {
        let mut state = self.state.lock().await;
        let tracked = state
            .alerts
            .values_mut()
            .find(|t| t.row.alert_id == id)
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))?;
        if tracked.row.state != "firing" {
            return Err(ActionError::WrongState {
                id: id.to_owned(),
                state: tracked.row.state.clone(),
                action: "acknowledged",
            });
        }
        let now = now_ms();
        let mut row = tracked.row.clone();
        let holds = Tier::parse(&row.tier)
            .and_then(|t| self.settings.tiers.get(&t))
            .map_or(row.acked_ms > 0, |p| p.ack_holds(row.acked_ms, now));
        if !holds {
            row.acked_ms = now;
            row.acked_by = by.to_owned();
            row.version += 1;
            row.change = "acked".into();
            row.at_ms = now;
            store::append(&self.store, std::slice::from_ref(&row)).await?;
            tracked.row = row.clone();
        }
        Ok(row)
    }

    /// Resolves an alert by hand; it stays resolved until its condition clears.
    pub async fn resolve(&self, id: &str, by: &str) -> Result<AlertRow, ActionError> {
        let mut state = self.state.lock().await;
        let (fp, tracked) = state
            .alerts
            .iter_mut()
            .find(|(_, t)| t.row.alert_id == id && t.row.state != "resolved")
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))?;
        let fp = fp.clone();
        let now = now_ms();
        let was_firing = tracked.row.state == "firing";
        let mut row = tracked.row.clone();
        row.state = "resolved".into();
        row.resolved_ms = now;
        row.resolved_by = by.to_owned();
        row.version += 1;
        row.change = "resolved".into();
        row.at_ms = now;
        store::append(&self.store, std::slice::from_ref(&row)).await?;
        tracked.row = row.clone();
        tracked.resolved_unsent = was_firing;
        if !was_firing {
            state.alerts.remove(&fp);
        }
        state.held_resolved.insert(fp);
        Ok(row)
    }

    /// Open alerts as the API shows them.
    pub async fn open(&self) -> (Vec<AlertRow>, Vec<Silence>) {
        let state = self.state.lock().await;
        (
            state
                .alerts
                .values()
                .filter(|t| t.row.state != "resolved")
                .map(|t| t.row.clone())
                .collect(),
            state.silences.clone(),
        )
    }

    pub async fn reload_silences(&self) -> clickhouse::error::Result<()> {
        let silences = store::silences(&self.store).await?;
        self.state.lock().await.silences = silences;
        Ok(())
    }
}

fn silenced(silences: &[Silence], labels: &BTreeMap<String, String>, now: u64) -> bool {
    silences.iter().any(|s| s.mutes(labels, now))
}

/// Whether the alert `fingerprint` with `labels` is inhibited by another firing,
/// unsilenced alert among `others`.
fn inhibited<'a>(
    inhibitions: &[Inhibition],
    fingerprint: &str,
    labels: &BTreeMap<String, String>,
    others: impl Iterator<Item = &'a AlertRow> + Clone,
    silences: &[Silence],
    now: u64,
) -> bool {
    inhibitions.iter().any(|rule| {
        all_match(&rule.target, labels)
            && others.clone().any(|other| {
                let source = other.labels();
                other.fingerprint != fingerprint
                    && other.state == "firing"
                    && all_match(&rule.source, &source)
                    && !silenced(silences, &source, now)
                    && rule.equal.iter().all(|l| {
                        source.get(l).map_or("", String::as_str)
                            == labels.get(l).map_or("", String::as_str)
                    })
            })
    })
}

/// Whether `row` is muted by a silence or inhibited by another of `open`.
pub fn muted(
    row: &AlertRow,
    open: &[AlertRow],
    silences: &[Silence],
    inhibitions: &[Inhibition],
    now: u64,
) -> (bool, bool) {
    let labels = row.labels();
    (
        silenced(silences, &labels, now),
        inhibited(
            inhibitions,
            &row.fingerprint,
            &labels,
            open.iter(),
            silences,
            now,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_value_and_labels() {
        let labels = BTreeMap::from([("service".to_owned(), "checkout".to_owned())]);
        assert_eq!(
            render(
                "{{ $value }} errors/s on {{$labels.service}}{{ $labels.none }}",
                0.01234567,
                &labels
            ),
            "0.0123 errors/s on checkout"
        );
        assert_eq!(render("{{ $value }}", 42.0, &labels), "42");
    }

    #[test]
    fn fingerprints_depend_on_every_label() {
        let a = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let b = BTreeMap::from([("a".to_owned(), "2".to_owned())]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }
}
