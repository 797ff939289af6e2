//! The `[alerts]` section: rule files, tier policies P0..P3, receivers, grouping
//! and inhibition. Durations are written as Prometheus writes them: `30s`, `5m`,
//! `1h30m` (see [`crate::duration`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::matcher::Matcher;
use crate::rule::Tier;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Rule files or folders of them (`*.yaml`); relative paths are read from the
    /// working directory.
    pub rules: Vec<PathBuf>,
    /// Whether this replica runs the evaluator and the notifier. Exactly one
    /// replica of a deployment must (the others serve the alert API read-only).
    pub evaluate: bool,
    /// Seconds between two evaluations of every rule.
    #[serde(with = "crate::duration")]
    pub interval: Duration,
    /// Where people reach Hypercare; used in notifications' `externalURL`.
    pub external_url: String,
    /// Labels that make one notification group within a tier (Alertmanager's
    /// `group_by`); the tier always is one.
    pub group_by: Vec<String>,
    pub receivers: BTreeMap<String, Receiver>,
    pub tiers: BTreeMap<Tier, TierPolicy>,
    /// Alertmanager-style inhibition: a firing source alert mutes target alerts
    /// that have the same values of `equal`.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Webhook delivery attempts before a notification is recorded as failed.
    pub delivery_attempts: u32,
    /// Delay before the first retry; doubled at each attempt.
    #[serde(with = "crate::duration")]
    pub retry_backoff: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            rules: vec![PathBuf::from("alert-rules")],
            evaluate: true,
            interval: Duration::from_secs(15),
            external_url: "http://127.0.0.1:8080".into(),
            group_by: vec!["alertname".into(), "service".into()],
            receivers: BTreeMap::new(),
            tiers: default_tiers(),
            inhibit_rules: vec![InhibitRule {
                source_matchers: vec!["tier=P0".into()],
                target_matchers: vec!["tier=~P1|P2|P3".into()],
                equal: vec!["service".into()],
            }],
            delivery_attempts: 5,
            retry_backoff: Duration::from_secs(2),
        }
    }
}

/// The go-live plan's defaults: P0 answered in 5 minutes, escalated when not.
fn default_tiers() -> BTreeMap<Tier, TierPolicy> {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let policy = |ack, repeat, group_wait, escalation: Vec<Escalation>| TierPolicy {
        receivers: vec!["oncall".into()],
        ack_sla: minutes(ack),
        group_wait,
        group_interval: minutes(1),
        repeat_interval: minutes(repeat),
        escalation,
        ack_timeout: None,
        digest_at: None,
    };
    BTreeMap::from([
        (
            Tier::P0,
            policy(
                5,
                15,
                Duration::ZERO,
                vec![
                    Escalation {
                        after: minutes(5),
                        receivers: vec!["team_lead".into()],
                    },
                    Escalation {
                        after: minutes(15),
                        receivers: vec!["head_of_engineering".into()],
                    },
                ],
            ),
        ),
        (
            Tier::P1,
            policy(15, 60, Duration::from_secs(30), Vec::new()),
        ),
        (
            Tier::P2,
            policy(60, 240, Duration::from_secs(60), Vec::new()),
        ),
        (
            Tier::P3,
            TierPolicy {
                digest_at: Some("09:00".into()),
                ..policy(24 * 60, 24 * 60, Duration::from_secs(60), Vec::new())
            },
        ),
    ])
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// Gets the Alertmanager webhook payload (version 4) by POST.
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per notification (0: all); the rest are counted
    /// in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    #[serde(with = "crate::duration", default = "ten_seconds")]
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer ...`; put it in the environment
    /// (`HYPERCARE_ALERTS__RECEIVERS__<NAME>__BEARER_TOKEN`), not in the file.
    #[serde(default)]
    pub bearer_token: Option<secrecy::SecretString>,
}

/// Without the URL's secret part (`hypercare config` prints the settings).
impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("url", &redact_url(&self.url))
            .field("send_resolved", &self.send_resolved)
            .field("max_alerts", &self.max_alerts)
            .field("timeout", &self.timeout)
            .field("bearer_token", &self.bearer_token)
            .finish()
    }
}

/// A receiver URL as it may be shown and stored: scheme and host only. The
/// path and query of a Slack, Teams or PagerDuty URL are its credential.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(hidden)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // `user:password@host` keeps only the host.
    let host = rest[..end].rsplit('@').next().unwrap_or("");
    let hidden = if end < rest.len() { "/(hidden)" } else { "" };
    format!("{scheme}://{host}{hidden}")
}

fn yes() -> bool {
    true
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// Notified as soon as the group is due.
    pub receivers: Vec<String>,
    /// Time to acknowledge; past it an alert shows `ack_overdue`.
    #[serde(with = "crate::duration")]
    pub ack_sla: Duration,
    #[serde(with = "crate::duration")]
    pub group_wait: Duration,
    #[serde(with = "crate::duration")]
    pub group_interval: Duration,
    #[serde(with = "crate::duration")]
    pub repeat_interval: Duration,
    /// Who else is notified when an alert stays unacknowledged.
    #[serde(default)]
    pub escalation: Vec<Escalation>,
    /// How long an acknowledgement holds. An acknowledged alert is not re-sent
    /// at `repeat_interval` nor escalated; past this (counted from the ack) it
    /// notifies again at once, repeats and escalates as if never acknowledged,
    /// until acknowledged again. None: an ack holds until the alert resolves.
    #[serde(default, with = "crate::duration::option")]
    pub ack_timeout: Option<Duration>,
    /// Quiet tier: one digest a day at this UTC time (`HH:MM`) instead of
    /// notifications as alerts fire.
    #[serde(default)]
    pub digest_at: Option<String>,
}

impl TierPolicy {
    /// When the acknowledgement given at `acked_ms` stops holding (None: never;
    /// `acked_ms` 0 is no ack, which never holds).
    pub fn ack_expires_ms(&self, acked_ms: u64) -> Option<u64> {
        self.ack_timeout
            .map(|t| acked_ms.saturating_add(t.as_millis() as u64))
    }

    /// Whether an alert acknowledged at `acked_ms` (0: not acknowledged) counts
    /// as acknowledged at `now`.
    pub fn ack_holds(&self, acked_ms: u64, now: u64) -> bool {
        acked_ms > 0 && self.ack_expires_ms(acked_ms).is_none_or(|end| now < end)
    }

    /// The instant escalation delays count from: when the alert fired, or when
    /// its acknowledgement ran out (a lapsed ack starts the escalation over
    /// rather than paging every level at once).
    pub fn escalation_clock_ms(&self, fired_ms: u64, acked_ms: u64) -> u64 {
        match self.ack_expires_ms(acked_ms) {
            Some(end) if acked_ms > 0 => fired_ms.max(end),
            _ => fired_ms,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    #[serde(with = "crate::duration")]
    pub after: Duration,
    pub receivers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// An inhibition rule with its matchers parsed.
#[derive(Debug, Clone)]
pub struct Inhibition {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// A setting of `[alerts]` that cannot work; `field` is its path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn config_error(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl AlertSettings {
    /// Checks references between sections and parses the inhibition rules;
    /// errors name the field. Run once, when the settings are loaded.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (tier, policy) in &self.tiers {
            let names = policy.receivers.iter().map(|r| ("receivers", r)).chain(
                policy
                    .escalation
                    .iter()
                    .flat_map(|e| e.receivers.iter().map(|r| ("escalation", r))),
            );
            for (field, name) in names {
                if !self.receivers.is_empty() && !self.receivers.contains_key(name) {
                    return Err(config_error(
                        format!("alerts.tiers.{}.{field}", tier.as_str()),
                        format!(
                            "no receiver `{name}` in [alerts.receivers] (known: {})",
                            self.receivers
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            if let Some(at) = &policy.digest_at
                && digest_minute(at).is_none()
            {
                return Err(config_error(
                    format!("alerts.tiers.{}.digest_at", tier.as_str()),
                    format!("`{at}` is not an HH:MM time"),
                ));
            }
            if policy.group_interval.is_zero() {
                return Err(config_error(
                    format!("alerts.tiers.{}.group_interval", tier.as_str()),
                    "must be longer than 0",
                ));
            }
        }
        for (name, receiver) in &self.receivers {
            if !(receiver.url.starts_with("http://") || receiver.url.starts_with("https://")) {
                return Err(config_error(
                    format!("alerts.receivers.{name}.url"),
                    "must be an http(s) URL",
                ));
            }
        }
        self.inhibitions().map(drop)
    }

    /// The inhibition rules with their matchers parsed.
    pub fn inhibitions(&self) -> Result<Vec<Inhibition>, ConfigError> {
        self.inhibit_rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let parse = |field: &str, list: &[String]| {
                    list.iter()
                        .map(|m| {
                            Matcher::parse(m).map_err(|e| {
                                config_error(
                                    format!("alerts.inhibit_rules[{i}].{field}"),
                                    e.to_string(),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                Ok(Inhibition {
                    source: parse("source_matchers", &rule.source_matchers)?,
                    target: parse("target_matchers", &rule.target_matchers)?,
                    equal: rule.equal.clone(),
                })
            })
            .collect()
    }
}

/// `HH:MM` as minutes after midnight.
pub fn digest_minute(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_holds_until_its_timeout_and_then_restarts_escalation() {
        let mut policy = default_tiers().remove(&Tier::P0).unwrap();
        assert!(!policy.ack_holds(0, 5));
        assert!(
            policy.ack_holds(1_000, u64::MAX),
            "no timeout: until resolved"
        );
        assert_eq!(policy.escalation_clock_ms(500, 1_000), 500);
        policy.ack_timeout = Some(Duration::from_secs(60));
        assert!(policy.ack_holds(1_000, 60_999));
        assert!(!policy.ack_holds(1_000, 61_000));
        assert_eq!(policy.escalation_clock_ms(500, 1_000), 61_000);
        assert_eq!(policy.escalation_clock_ms(500, 0), 500);
    }

    #[test]
    fn config_durations_follow_prometheus() {
        let policy = |d: &str| {
            serde_json::from_value::<TierPolicy>(serde_json::json!({
                "receivers": [], "ack_sla": "5m", "group_wait": d, "group_interval": "1m",
                "repeat_interval": "1h30m", "ack_timeout": "1d"
            }))
        };
        assert_eq!(
            policy("30s").unwrap().ack_timeout,
            Some(Duration::from_secs(86_400))
        );
        let error = policy("30 seconds").unwrap_err().to_string();
        assert!(error.contains("`30 seconds` is not a duration"), "{error}");
    }
}
