//! What the evaluator decides, as pure functions of (state, now): no clock, no
//! I/O, no sleeping. The engine feeds it the samples of each evaluation and
//! the time, stores the returned changes and hands the returned notifications
//! to the delivery tasks.
//!
//! ```text
//! samples ─ Planner::observe ─> changes (pending, fired, resolved)
//! (state, now) ─ Planner::plan ─> changes (ack_expired, escalated)
//!                               + notifications, grouped the way Alertmanager
//!                                 groups them (group wait / group interval /
//!                                 repeat interval), minus silenced and
//!                                 inhibited alerts, plus escalations (same
//!                                 groupKey) and the daily digest of quiet tiers
//! (state, now) ─ Planner::next_due ─> when to evaluate / plan again
//! ```

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::config::{AlertSettings, Inhibition, digest_minute};
pub use crate::error::{Action, ActionError};
use crate::matcher::all_match;
use crate::notify::{NOT_ENDED, Outgoing, WebhookAlert, WebhookPayload, common, rfc3339_ms};
use crate::rule::{Rule, Tier};
use crate::sample::Sample;
use crate::silence::Silence;
use crate::store::{AlertRow, AlertStatus};

/// Set on the alerts of an escalation notification: the level reached (1 = the
/// first `escalation` entry). Documented in docs/alerts.md.
pub const ESCALATION_ANNOTATION: &str = "escalation_level";

/// An alert the evaluator keeps.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub row: AlertRow,
    /// Resolved, waiting for its group to tell the receivers.
    pub resolved_unsent: bool,
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

/// What the evaluator remembers between two plans.
#[derive(Debug, Default)]
pub struct State {
    /// By fingerprint: pending, firing, and resolved-not-yet-notified alerts.
    pub alerts: BTreeMap<String, Tracked>,
    groups: BTreeMap<String, Group>,
    pub silences: Vec<Silence>,
    /// Resolved by hand while their condition still held: not started again
    /// until the condition clears.
    pub held_resolved: BTreeSet<String>,
    last_digest_day: BTreeMap<Tier, i64>,
    last_plan_ms: u64,
}

impl State {
    /// The open alerts read back after a restart.
    pub fn restored(rows: Vec<AlertRow>) -> Self {
        let mut state = State::default();
        for row in rows {
            state.alerts.insert(
                row.fingerprint.clone(),
                Tracked {
                    row,
                    resolved_unsent: false,
                },
            );
        }
        state
    }
}

/// What one plan decided: rows to append to `alert_events`, notifications to send.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<AlertRow>,
    pub outgoing: Vec<Outgoing>,
}

/// The policies the plans follow.
#[derive(Debug, Clone)]
pub struct Planner {
    pub settings: AlertSettings,
    pub rules: Vec<Rule>,
    pub inhibitions: Vec<Inhibition>,
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
                    && other.state == AlertStatus::Firing
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

impl Planner {
    /// After `now`: the earliest moment a pending alert reaches its `for` (an
    /// evaluation is due), and the earliest a group is due to be sent, an ack
    /// runs out or an escalation is due (a plan is due).
    pub fn next_due(&self, state: &State, now: u64) -> (Option<u64>, Option<u64>) {
        let flushes = state.groups.values().filter_map(|g| g.next_flush_ms);
        let fires = state
            .alerts
            .values()
            .filter(|t| t.row.state == AlertStatus::Pending)
            .filter_map(|t| {
                let rule = self.rules.iter().find(|r| r.name == t.row.rule)?;
                Some(t.row.started_ms + rule.for_.as_millis() as u64)
            });
        let timers = state
            .alerts
            .values()
            .filter(|t| t.row.state == AlertStatus::Firing)
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

    fn labels_of(rule: &Rule, sample: &Sample) -> BTreeMap<String, String> {
        let mut labels = sample.labels.clone();
        labels.extend(rule.labels.clone());
        labels.insert("alertname".into(), rule.name.clone());
        labels.insert("tier".into(), rule.tier.as_str().into());
        labels
    }

    /// One evaluation of `rule`: alerts start (pending or firing), fire once
    /// they held for `for`, and resolve when their condition clears or their
    /// series is gone. Returns the changed rows.
    pub fn observe(
        &self,
        state: &mut State,
        rule: &Rule,
        samples: Vec<Sample>,
        now: u64,
    ) -> Vec<AlertRow> {
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for sample in samples {
            let labels = Self::labels_of(rule, &sample);
            let fp = fingerprint(&labels);
            seen.insert(fp.clone());
            let mut annotations: BTreeMap<String, String> = rule
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), render(v, sample.value, &labels)))
                .collect();
            annotations.extend(sample.annotations.clone());
            if !sample.holds {
                state.held_resolved.remove(&fp);
                Self::clear(state, &fp, now, &mut changes);
                continue;
            }
            if state.held_resolved.contains(&fp) {
                continue;
            }
            let open = state.alerts.get(&fp).is_some_and(|t| t.row.state.is_open());
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
                    state: if fires_now {
                        AlertStatus::Firing
                    } else {
                        AlertStatus::Pending
                    },
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
            if row.state == AlertStatus::Pending
                && now.saturating_sub(row.started_ms) >= rule.for_.as_millis() as u64
            {
                row.state = AlertStatus::Firing;
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
                t.row.rule == rule.name && t.row.state.is_open() && !seen.contains(*fp)
            })
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in gone {
            Self::clear(state, &fp, now, &mut changes);
        }
        changes
    }

    /// The condition no longer holds: a pending alert is dropped, a firing one resolved.
    fn clear(state: &mut State, fp: &str, now: u64, changes: &mut Vec<AlertRow>) {
        let Some(tracked) = state.alerts.get_mut(fp) else {
            return;
        };
        if !tracked.row.state.is_open() {
            return;
        }
        let was_firing = tracked.row.state == AlertStatus::Firing;
        let row = &mut tracked.row;
        row.state = AlertStatus::Resolved;
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

    /// One notification per receiver (resolved alerts only to those that want them).
    fn send(
        &self,
        out: &mut Vec<Outgoing>,
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
            let alert_ids = alerts
                .iter()
                .map(|a| a.generator_url.rsplit('/').next().unwrap_or("").to_owned())
                .collect();
            out.push(Outgoing {
                receiver_name: name.clone(),
                receiver: receiver.clone(),
                payload: self.payload(group_key, group_labels, name, alerts),
                reason,
                alert_ids,
            });
        }
    }

    /// Acknowledgements that ran out since the last plan: each is recorded
    /// (`ack_expired`) and returned, so that its group is told again at once.
    fn lapse_acks(
        &self,
        state: &mut State,
        now: u64,
        changes: &mut Vec<AlertRow>,
    ) -> BTreeSet<String> {
        let since = state.last_plan_ms;
        let mut lapsed = BTreeSet::new();
        // After a restart (no previous plan) every open group is re-sent anyway.
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
            if row.state == AlertStatus::Firing && row.acked_ms > 0 && since < end && end <= now {
                row.version += 1;
                row.change = "ack_expired".into();
                row.at_ms = now;
                changes.push(row.clone());
                lapsed.insert(fp.clone());
            }
        }
        lapsed
    }

    /// Everything due at `now`: group notifications, escalations, digests.
    pub fn plan(&self, state: &mut State, now: u64) -> Plan {
        let mut plan = Plan::default();
        let lapsed = self.lapse_acks(state, now, &mut plan.changes);
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
            } else if tracked.row.state == AlertStatus::Firing
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
                    self.send(
                        &mut plan.outgoing,
                        &policy.receivers,
                        &key,
                        &group.labels,
                        &alerts,
                        reason,
                    );
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

        self.escalate(state, now, &mut plan);
        self.digest(state, now, &mut plan.outgoing);
        state.last_plan_ms = now;
        plan
    }

    /// Unacknowledged firing alerts past an escalation delay: their group's
    /// notification (same groupKey and groupLabels, every firing alert of the
    /// group) goes to the next level's receivers, the escalated alerts carrying
    /// the annotation `escalation_level`.
    fn escalate(&self, state: &mut State, now: u64, plan: &mut Plan) {
        let due: Vec<(String, usize)> = state
            .alerts
            .iter()
            .filter(|(_, t)| t.row.state == AlertStatus::Firing)
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
            plan.changes.push(tracked.row.clone());
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
                    t.row.state == AlertStatus::Firing
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
            self.send(
                &mut plan.outgoing,
                &receivers,
                &key,
                &group_labels,
                &alerts,
                "escalation",
            );
        }
    }

    fn digest(&self, state: &mut State, now: u64, out: &mut Vec<Outgoing>) {
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
                        && t.row.state == AlertStatus::Firing
                        && !Self::silenced(state, &labels, now)
                        && !self.inhibited(state, fp, &labels, now)
                })
                .map(|(_, t)| self.webhook_alert(&t.row, true))
                .collect();
            if !alerts.is_empty() {
                let labels = BTreeMap::from([("tier".to_owned(), tier.as_str().to_owned())]);
                let key = format!("{{}}/digest:{{tier={:?}}}", tier.as_str());
                self.send(out, &policy.receivers, &key, &labels, &alerts, "digest");
            }
        }
    }

    /// The row of an acknowledgement of the open alert `id` at `now`, or None
    /// when its ack still holds (acknowledging again changes nothing).
    pub fn ack(
        &self,
        state: &State,
        id: &str,
        by: &str,
        now: u64,
    ) -> Result<Option<AlertRow>, ActionError> {
        let tracked = state
            .alerts
            .values()
            .find(|t| t.row.alert_id == id)
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))?;
        if tracked.row.state != AlertStatus::Firing {
            return Err(ActionError::WrongState {
                id: id.to_owned(),
                state: tracked.row.state,
                action: Action::Ack,
            });
        }
        let mut row = tracked.row.clone();
        let holds = Tier::parse(&row.tier)
            .and_then(|t| self.settings.tiers.get(&t))
            .map_or(row.acked_ms > 0, |p| p.ack_holds(row.acked_ms, now));
        if holds {
            return Ok(None);
        }
        row.acked_ms = now;
        row.acked_by = by.to_owned();
        row.version += 1;
        row.change = "acked".into();
        row.at_ms = now;
        Ok(Some(row))
    }

    /// The row of resolving the open alert `id` by hand at `now`.
    pub fn resolve(
        &self,
        state: &State,
        id: &str,
        by: &str,
        now: u64,
    ) -> Result<AlertRow, ActionError> {
        let tracked = state
            .alerts
            .values()
            .find(|t| t.row.alert_id == id && t.row.state.is_open())
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))?;
        let mut row = tracked.row.clone();
        row.state = AlertStatus::Resolved;
        row.resolved_ms = now;
        row.resolved_by = by.to_owned();
        row.version += 1;
        row.change = "resolved".into();
        row.at_ms = now;
        Ok(row)
    }
}

/// Keeps a stored change in the state: `row` replaces its alert's row. A
/// firing alert resolved by hand stays until its group was told; it is not
/// started again while its condition holds.
pub fn commit(state: &mut State, row: AlertRow) {
    let fp = row.fingerprint.clone();
    let Some(tracked) = state.alerts.get_mut(&fp) else {
        return;
    };
    let was_firing = tracked.row.state == AlertStatus::Firing;
    let resolved = row.state == AlertStatus::Resolved;
    tracked.row = row;
    if resolved {
        tracked.resolved_unsent = was_firing;
        if !was_firing {
            state.alerts.remove(&fp);
        }
        state.held_resolved.insert(fp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Escalation, Receiver, TierPolicy};
    use std::time::Duration;

    const S: u64 = 1000;
    const T0: u64 = 1_795_000_000_000;

    fn receiver() -> Receiver {
        Receiver {
            url: "http://127.0.0.1:9/x".into(),
            send_resolved: true,
            max_alerts: 0,
            timeout: Duration::from_secs(1),
            bearer_token: None,
        }
    }

    fn policy(receivers: &[&str]) -> TierPolicy {
        TierPolicy {
            receivers: receivers.iter().map(|r| (*r).to_owned()).collect(),
            ack_sla: Duration::from_secs(300),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(600),
            escalation: Vec::new(),
            ack_timeout: None,
            digest_at: None,
        }
    }

    fn rule(name: &str, tier: Tier, for_secs: u64) -> Rule {
        let text = format!(
            "groups:\n  - name: g\n    rules:\n      - name: {name}\n        tier: {}\n        for: {for_secs}s\n        annotations: {{summary: s}}\n        condition: {{metric: {{select: q, fn: last, by: [service]}}, above: 1}}\n",
            tier.as_str()
        );
        crate::check::parse("t.yaml", &text, None)
            .unwrap()
            .remove(0)
    }

    fn planner(rules: Vec<Rule>) -> Planner {
        let settings = AlertSettings {
            receivers: ["oncall", "lead", "chat"]
                .iter()
                .map(|n| ((*n).to_owned(), receiver()))
                .collect(),
            tiers: Tier::ALL
                .iter()
                .map(|t| (*t, policy(&["oncall"])))
                .collect(),
            ..AlertSettings::default()
        };
        let inhibitions = settings.inhibitions().unwrap();
        Planner {
            settings,
            rules,
            inhibitions,
        }
    }

    fn sample(service: &str, holds: bool) -> Sample {
        Sample {
            labels: BTreeMap::from([("service".to_owned(), service.to_owned())]),
            value: if holds { 5.0 } else { 0.0 },
            holds,
            annotations: BTreeMap::new(),
        }
    }

    /// Evaluates every rule of `p` with `samples` then plans, at `now`.
    fn step(p: &Planner, state: &mut State, samples: &[Sample], now: u64) -> Plan {
        let mut changes = Vec::new();
        for rule in &p.rules {
            changes.extend(p.observe(state, rule, samples.to_vec(), now));
        }
        let mut plan = p.plan(state, now);
        changes.append(&mut plan.changes);
        plan.changes = changes;
        plan
    }

    fn reasons(plan: &Plan) -> Vec<(&str, &str)> {
        plan.outgoing
            .iter()
            .map(|o| (o.receiver_name.as_str(), o.reason))
            .collect()
    }

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

    #[test]
    fn an_alert_fires_after_for_and_its_group_waits_group_wait() {
        let p = planner(vec![rule("queue", Tier::P1, 60)]);
        let mut state = State::default();
        let plan = step(&p, &mut state, &[sample("api", true)], T0);
        assert_eq!(plan.changes[0].state, AlertStatus::Pending);
        assert!(plan.outgoing.is_empty());
        // An evaluation is due when `for` runs out.
        assert_eq!(p.next_due(&state, T0).0, Some(T0 + 60 * S));
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 60 * S);
        assert_eq!(plan.changes[0].state, AlertStatus::Firing);
        assert!(plan.outgoing.is_empty(), "group_wait first");
        assert_eq!(p.next_due(&state, T0 + 60 * S).1, Some(T0 + 90 * S));
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 89 * S);
        assert!(plan.outgoing.is_empty());
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 90 * S);
        assert_eq!(reasons(&plan), [("oncall", "notify")]);
        assert_eq!(plan.outgoing[0].payload.alerts.len(), 1);
    }

    #[test]
    fn a_new_alert_of_a_notified_group_waits_group_interval() {
        let p = planner(vec![rule("queue", Tier::P1, 0)]);
        let mut state = State::default();
        // Grouped by alertname and service: one group per service.
        step(&p, &mut state, &[sample("api", true)], T0);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        assert_eq!(reasons(&plan), [("oncall", "notify")]);
        let mut two = [sample("api", true), sample("api", true)];
        two[1].labels.insert("pod".into(), "b".into());
        let plan = step(&p, &mut state, &two, T0 + 40 * S);
        assert!(plan.outgoing.is_empty(), "group_interval after the last");
        let plan = step(&p, &mut state, &two, T0 + 89 * S);
        assert!(plan.outgoing.is_empty());
        let plan = step(&p, &mut state, &two, T0 + 90 * S);
        assert_eq!(reasons(&plan), [("oncall", "notify")]);
        assert_eq!(plan.outgoing[0].payload.alerts.len(), 2);
    }

    #[test]
    fn an_unchanged_group_repeats_at_repeat_interval() {
        let p = planner(vec![rule("queue", Tier::P1, 0)]);
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 629 * S);
        assert!(plan.outgoing.is_empty());
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 630 * S);
        assert_eq!(reasons(&plan), [("oncall", "repeat")]);
    }

    #[test]
    fn an_ack_stops_repeats_until_it_times_out() {
        let mut p = planner(vec![rule("queue", Tier::P1, 0)]);
        if let Some(p1) = p.settings.tiers.get_mut(&Tier::P1) {
            p1.ack_timeout = Some(Duration::from_secs(1200));
        }
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        let id = state.alerts.values().next().unwrap().row.alert_id.clone();
        let row = p.ack(&state, &id, "amy", T0 + 60 * S).unwrap().unwrap();
        commit(&mut state, row);
        // Acknowledging again while it holds changes nothing.
        assert!(p.ack(&state, &id, "bob", T0 + 61 * S).unwrap().is_none());
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 700 * S);
        assert!(plan.outgoing.is_empty(), "no repeat while acknowledged");
        assert_eq!(p.next_due(&state, T0 + 700 * S).1, Some(T0 + 1260 * S));
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 1260 * S);
        assert_eq!(reasons(&plan), [("oncall", "ack_expired")]);
        assert_eq!(plan.changes[0].change, "ack_expired");
    }

    #[test]
    fn escalation_keeps_the_group_key_and_an_ack_stops_it() {
        let mut p = planner(vec![rule("down", Tier::P0, 0)]);
        if let Some(p0) = p.settings.tiers.get_mut(&Tier::P0) {
            p0.escalation = vec![
                Escalation {
                    after: Duration::from_secs(300),
                    receivers: vec!["lead".into()],
                },
                Escalation {
                    after: Duration::from_secs(900),
                    receivers: vec!["chat".into()],
                },
            ];
        }
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        let first = step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        assert_eq!(p.next_due(&state, T0 + 30 * S).1, Some(T0 + 300 * S));
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 300 * S);
        assert_eq!(reasons(&plan), [("lead", "escalation")]);
        assert_eq!(
            plan.outgoing[0].payload.group_key,
            first.outgoing[0].payload.group_key
        );
        assert_eq!(
            plan.outgoing[0].payload.alerts[0].annotations[ESCALATION_ANNOTATION],
            "1"
        );
        assert_eq!(plan.changes.last().unwrap().escalation_level, 1);
        let id = state.alerts.values().next().unwrap().row.alert_id.clone();
        let row = p.ack(&state, &id, "amy", T0 + 400 * S).unwrap().unwrap();
        commit(&mut state, row);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 900 * S);
        assert!(plan.outgoing.is_empty(), "acknowledged: no second level");
    }

    #[test]
    fn a_firing_p0_inhibits_lower_tiers_of_its_service_only() {
        let p = planner(vec![rule("down", Tier::P0, 0), rule("slow", Tier::P2, 0)]);
        let mut state = State::default();
        let both = [sample("api", true), sample("web", true)];
        // Only `down` of api holds; `slow` holds for api and web.
        let mut changes = p.observe(&mut state, &p.rules[0], vec![sample("api", true)], T0);
        changes.extend(p.observe(&mut state, &p.rules[1], both.to_vec(), T0));
        assert_eq!(changes.len(), 3);
        p.plan(&mut state, T0);
        let plan = p.plan(&mut state, T0 + 30 * S);
        let mut told: Vec<(String, String)> = plan
            .outgoing
            .iter()
            .flat_map(|o| o.payload.alerts.iter())
            .map(|a| (a.labels["alertname"].clone(), a.labels["service"].clone()))
            .collect();
        told.sort();
        assert_eq!(
            told,
            [
                ("down".to_owned(), "api".to_owned()),
                ("slow".to_owned(), "web".to_owned())
            ]
        );
        let open: Vec<AlertRow> = state.alerts.values().map(|t| t.row.clone()).collect();
        let slow_api = open
            .iter()
            .find(|r| r.rule == "slow" && r.labels()["service"] == "api")
            .unwrap();
        assert_eq!(
            muted(slow_api, &open, &[], &p.inhibitions, T0),
            (false, true)
        );
    }

    #[test]
    fn a_silenced_alert_is_not_sent_until_the_silence_ends() {
        let p = planner(vec![rule("queue", Tier::P1, 0)]);
        let mut state = State {
            silences: vec![Silence {
                id: "s".into(),
                version: 1,
                matchers: vec![crate::matcher::Matcher::parse("service=api").unwrap()],
                starts_ms: T0,
                ends_ms: T0 + 100 * S,
                created_by: "amy".into(),
                comment: "deploy".into(),
            }],
            ..State::default()
        };
        step(&p, &mut state, &[sample("api", true)], T0);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 60 * S);
        assert!(plan.outgoing.is_empty(), "silenced");
        step(&p, &mut state, &[sample("api", true)], T0 + 100 * S);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 130 * S);
        assert_eq!(reasons(&plan), [("oncall", "notify")]);
    }

    #[test]
    fn a_cleared_condition_sends_resolved_and_the_alert_leaves() {
        let p = planner(vec![rule("queue", Tier::P1, 0)]);
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        let plan = step(&p, &mut state, &[sample("api", false)], T0 + 40 * S);
        assert_eq!(plan.changes[0].state, AlertStatus::Resolved);
        assert!(
            plan.outgoing.is_empty(),
            "group_interval holds resolved too"
        );
        let plan = step(&p, &mut state, &[sample("api", false)], T0 + 90 * S);
        assert_eq!(reasons(&plan), [("oncall", "resolved")]);
        assert_eq!(plan.outgoing[0].payload.status, "resolved");
        assert!(state.alerts.is_empty());
    }

    #[test]
    fn resolving_by_hand_holds_until_the_condition_clears() {
        let p = planner(vec![rule("queue", Tier::P1, 0)]);
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        let id = state.alerts.values().next().unwrap().row.alert_id.clone();
        let row = p.resolve(&state, &id, "amy", T0 + 5 * S).unwrap();
        commit(&mut state, row);
        // Kept until its group is told: a conflict that says it is resolved.
        let err = p.ack(&state, &id, "amy", T0 + 6 * S).unwrap_err();
        assert!(
            matches!(
                err,
                ActionError::WrongState {
                    state: AlertStatus::Resolved,
                    ..
                }
            ),
            "{err}"
        );
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 10 * S);
        assert!(plan.changes.is_empty(), "not started again: {plan:?}");
        step(&p, &mut state, &[sample("api", false)], T0 + 20 * S);
        let plan = step(&p, &mut state, &[sample("api", true)], T0 + 30 * S);
        assert_eq!(plan.changes[0].state, AlertStatus::Firing);
    }

    #[test]
    fn a_pending_alert_cannot_be_acknowledged() {
        let p = planner(vec![rule("queue", Tier::P1, 60)]);
        let mut state = State::default();
        step(&p, &mut state, &[sample("api", true)], T0);
        let id = state.alerts.values().next().unwrap().row.alert_id.clone();
        let err = p.ack(&state, &id, "amy", T0).unwrap_err();
        assert!(
            matches!(
                err,
                ActionError::WrongState {
                    state: AlertStatus::Pending,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_quiet_tier_gets_one_digest_a_day() {
        let mut p = planner(vec![rule("minor", Tier::P3, 0)]);
        if let Some(p3) = p.settings.tiers.get_mut(&Tier::P3) {
            p3.digest_at = Some("09:00".into());
        }
        let day = T0 - T0 % 86_400_000;
        let mut state = State::default();
        let plan = step(&p, &mut state, &[sample("api", true)], day + 8 * 3600 * S);
        assert!(plan.outgoing.is_empty());
        let plan = step(&p, &mut state, &[sample("api", true)], day + 9 * 3600 * S);
        assert_eq!(reasons(&plan), [("oncall", "digest")]);
        let plan = step(&p, &mut state, &[sample("api", true)], day + 10 * 3600 * S);
        assert!(plan.outgoing.is_empty(), "once a day");
    }
}
