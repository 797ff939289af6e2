//! Scheduled delivery of the daily report (`[report.delivery]`).
//!
//! ```text
//! every `interval` (task.rs, on ctx.tasks):
//!   current launch -> due_day(now, zone, window, at)      pure, below
//!     -> targets without a final attempt for (launch, day) (store.rs, report_deliveries)
//!     -> ReportState::report(launch, day, Stored)          made once, kept
//!     -> each target: body.rs (json | slack | teams) POSTed, or the folder's 3 files
//!        attempts: retry on network errors, 5xx and 429 (Retry-After), not on other 4xx;
//!        every attempt recorded: retrying | delivered | failed
//! GET /v1/reports/deliveries?since=&limit=                  the attempts (routes.rs)
//! ```
//!
//! Contract: at local time `at` of the launch's zone, the report of the day
//! before (a complete day) goes to every target once. "Once" is read from the
//! attempts table, not from memory: a restart does not send again, and a
//! morning missed while the service was down is delivered when it is back the
//! same day. A target whose attempts all failed is not tried again for that
//! day (its `failed` row is final); one cut by a shutdown between retries is
//! tried again from the start (at least once, never silently dropped).

pub mod body;
pub mod routes;
pub mod store;
pub mod task;

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Timelike};
use chrono_tz::Tz;
use serde::Deserialize;
use sha2::Digest;

use crate::ReportSettingsError;

/// The `[report.delivery]` section. Off by default: no webhook, no folder.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Local time (`HH:MM`, in the current launch's zone) at which the report
    /// of the day before is delivered.
    pub at: String,
    pub webhooks: Vec<Webhook>,
    /// A folder that gets `<launch>-D+N-<date>.{json,md,html}`; empty: none.
    pub folder: String,
    /// Attempts after the first one that failed with a network error, a 5xx
    /// or a 429.
    pub retries: u32,
    /// Before the first retry; doubled at each one.
    #[serde(with = "hypercare_alerts::duration")]
    pub backoff: Duration,
    /// Per attempt.
    #[serde(with = "hypercare_alerts::duration")]
    pub timeout: Duration,
    /// How often the scheduler looks whether a delivery is due.
    #[serde(with = "hypercare_alerts::duration")]
    pub interval: Duration,
    /// The "open the report" link of Slack and Teams messages, with `{launch}`
    /// and `{day}` replaced; empty: no link.
    pub link: String,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            at: "08:30".into(),
            webhooks: Vec::new(),
            folder: String::new(),
            retries: 5,
            backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            interval: Duration::from_secs(30),
            link: String::new(),
        }
    }
}

/// One webhook: its URL is a credential (Slack, Teams), so it is shown and
/// stored without its path (`redact_url`).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub format: HookFormat,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .finish()
    }
}

/// The body a webhook gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFormat {
    /// The `DailyReport` JSON as the API serves it.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` + `blocks`).
    Slack,
    /// A Teams message holding an Adaptive Card (Workflows / incoming webhooks).
    Teams,
}

impl HookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            HookFormat::Json => "json",
            HookFormat::Slack => "slack",
            HookFormat::Teams => "teams",
        }
    }
}

pub use hypercare_alerts::config::redact_url;

/// Where one report goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Webhook(Webhook),
    Folder(String),
}

impl Target {
    /// A stable key of the target for "already delivered?": a digest, since
    /// the full URL is a secret and two Slack webhooks redact alike.
    pub fn id(&self) -> String {
        let key = match self {
            Target::Webhook(hook) => format!("{}:{}", hook.format.as_str(), hook.url),
            Target::Folder(path) => format!("folder:{path}"),
        };
        hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
    }

    /// As shown and stored: the redacted URL or the folder.
    pub fn shown(&self) -> String {
        match self {
            Target::Webhook(hook) => redact_url(&hook.url),
            Target::Folder(path) => path.clone(),
        }
    }

    /// `json`, `slack`, `teams` or `folder` (the metric's and the row's `format`).
    pub fn format(&self) -> &'static str {
        match self {
            Target::Webhook(hook) => hook.format.as_str(),
            Target::Folder(_) => "folder",
        }
    }
}

impl DeliverySettings {
    pub fn targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = self.webhooks.iter().cloned().map(Target::Webhook).collect();
        if !self.folder.is_empty() {
            targets.push(Target::Folder(self.folder.clone()));
        }
        targets
    }

    pub fn enabled(&self) -> bool {
        !self.webhooks.is_empty() || !self.folder.is_empty()
    }

    /// `at` as a time of day (checked by `validate`).
    pub fn at_time(&self) -> Option<NaiveTime> {
        parse_at(&self.at)
    }

    pub fn validate(&self) -> Result<(), ReportSettingsError> {
        let invalid = |field: &'static str, reason: String| ReportSettingsError { field, reason };
        if parse_at(&self.at).is_none() {
            return Err(invalid(
                "delivery.at",
                format!(
                    "`{}` is not a time of day: write HH:MM, e.g. 08:30",
                    self.at
                ),
            ));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let Some((scheme, rest)) = hook.url.split_once("://") else {
                return Err(invalid(
                    "delivery.webhooks.url",
                    format!(
                        "webhook {}: `{}` is not a URL",
                        i + 1,
                        redact_url(&hook.url)
                    ),
                ));
            };
            if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
                return Err(invalid(
                    "delivery.webhooks.url",
                    format!(
                        "webhook {}: `{}` must be an http:// or https:// URL with a host",
                        i + 1,
                        redact_url(&hook.url)
                    ),
                ));
            }
        }
        if self.retries > 20 {
            return Err(invalid("delivery.retries", "must be at most 20".into()));
        }
        if self.backoff.is_zero() || self.backoff > MAX_DELAY {
            return Err(invalid(
                "delivery.backoff",
                "must be more than 0 and at most 1h".into(),
            ));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(300) {
            return Err(invalid(
                "delivery.timeout",
                "must be more than 0 and at most 5m".into(),
            ));
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(3600) {
            return Err(invalid(
                "delivery.interval",
                "must be between 100ms and 1h".into(),
            ));
        }
        let link_ok = self.link.is_empty()
            || self.link.starts_with("http://")
            || self.link.starts_with("https://");
        if !link_ok {
            return Err(invalid(
                "delivery.link",
                "must be an http:// or https:// URL, or empty".into(),
            ));
        }
        Ok(())
    }

    /// The report's link for Slack and Teams, if configured.
    pub fn link_for(&self, launch_id: &str, day: i64) -> Option<String> {
        (!self.link.is_empty()).then(|| {
            self.link
                .replace("{launch}", launch_id)
                .replace("{day}", &day.to_string())
        })
    }
}

/// `HH:MM`, 24-hour.
fn parse_at(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// The longest wait between two attempts, whatever Retry-After asks.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Which report is due at `now_ms`: N of D+N, the day before today in `tz`,
/// once today's local time has reached `at`, if that day is one of the
/// stabilization window's (D0..=`last`). Local wall-clock times are compared,
/// so on a DST day an `at` that does not exist (02:30 when clocks jump to
/// 03:00) is reached at the jump, and one that happens twice is reached the
/// first time (the attempts table keeps the second from sending again).
pub fn due_day(now_ms: u64, tz: Tz, d0: NaiveDate, last: NaiveDate, at: NaiveTime) -> Option<i64> {
    let now =
        chrono::DateTime::from_timestamp_millis(i64::try_from(now_ms).ok()?)?.with_timezone(&tz);
    let local = now.naive_local();
    let time = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())?;
    if time < at {
        return None;
    }
    let yesterday = local.date().pred_opt()?;
    (yesterday >= d0 && yesterday <= last).then(|| (yesterday - d0).num_days())
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        http_status: u16,
    },
    /// Worth another attempt: a network error, a 5xx, a 429; `after` is the
    /// receiver's Retry-After, if it gave one.
    Retryable {
        http_status: u16,
        error: String,
        after: Option<Duration>,
    },
    /// Another attempt would get the same answer (another 4xx).
    Refused {
        http_status: u16,
        error: String,
    },
}

impl Attempt {
    /// From an HTTP answer's status and its Retry-After header.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Attempt {
        match status {
            200..=299 => Attempt::Delivered {
                http_status: status,
            },
            429 | 500..=599 => Attempt::Retryable {
                http_status: status,
                error: format!("HTTP {status}"),
                after: retry_after,
            },
            _ => Attempt::Refused {
                http_status: status,
                error: format!("HTTP {status}"),
            },
        }
    }

    /// The row's `status` for attempt `attempt` of at most `attempts`.
    pub fn status(&self, attempt: u32, attempts: u32) -> &'static str {
        match self {
            Attempt::Delivered { .. } => "delivered",
            Attempt::Retryable { .. } if attempt < attempts => "retrying",
            _ => "failed",
        }
    }
}

/// The wait before attempt `attempt + 1`: `backoff` doubled at each retry,
/// at least what the receiver's Retry-After asked, never more than
/// [`MAX_DELAY`].
pub fn delay_after(attempt: u32, backoff: Duration, retry_after: Option<Duration>) -> Duration {
    let doubled = backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    doubled.max(retry_after.unwrap_or_default()).min(MAX_DELAY)
}

/// Retry-After as seconds or as an HTTP date (RFC 7231), relative to `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at_ms = u64::try_from(at.timestamp_millis()).ok()?;
    Some(Duration::from_millis(at_ms.saturating_sub(now_ms)))
}

/// `<launch name, or id>-D+N-<date>` made safe as a file name: letters,
/// digits, `-`, `_` and `.` kept, anything else `_`.
pub fn file_stem(name: &str, launch_id: &str, day: i64, date: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .trim_matches(['.', '_'])
            .to_owned()
    };
    let mut base = safe(name);
    if base.is_empty() {
        base = safe(launch_id);
    }
    format!("{base}-{}-{}", crate::render::day_label(day), safe(date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ms(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_millis() as u64
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const PARIS: Tz = chrono_tz::Europe::Paris;

    fn at(s: &str) -> NaiveTime {
        parse_at(s).unwrap()
    }

    #[test]
    fn the_report_of_the_day_before_is_due_from_at_on() {
        let (d0, last) = (date(2026, 11, 16), date(2026, 11, 30));
        // D+2, 08:29: not yet; 08:30: D+1's.
        assert_eq!(
            due_day(ms(PARIS, 2026, 11, 18, 8, 29), PARIS, d0, last, at("08:30")),
            None
        );
        assert_eq!(
            due_day(ms(PARIS, 2026, 11, 18, 8, 30), PARIS, d0, last, at("08:30")),
            Some(1)
        );
        // A service started at 08:31 (or back from downtime at 14:00) finds it due.
        assert_eq!(
            due_day(ms(PARIS, 2026, 11, 18, 8, 31), PARIS, d0, last, at("08:30")),
            Some(1)
        );
        assert_eq!(
            due_day(
                ms(PARIS, 2026, 11, 18, 23, 59),
                PARIS,
                d0,
                last,
                at("08:30")
            ),
            Some(1)
        );
        // Local time, not UTC: 08:30 in Paris is 07:30 UTC.
        assert_eq!(
            due_day(
                ms(chrono_tz::UTC, 2026, 11, 18, 7, 29),
                PARIS,
                d0,
                last,
                at("08:30")
            ),
            None
        );
    }

    #[test]
    fn d0_is_due_on_d1_and_nothing_before() {
        let (d0, last) = (date(2026, 11, 16), date(2026, 11, 30));
        // On D0 the day before is a baseline day: nothing is delivered.
        assert_eq!(
            due_day(ms(PARIS, 2026, 11, 16, 12, 0), PARIS, d0, last, at("08:30")),
            None
        );
        assert_eq!(
            due_day(ms(PARIS, 2026, 11, 17, 9, 0), PARIS, d0, last, at("08:30")),
            Some(0)
        );
    }

    #[test]
    fn the_last_day_is_delivered_the_morning_after_and_then_nothing() {
        let (d0, last) = (date(2026, 11, 16), date(2026, 11, 30));
        assert_eq!(
            due_day(ms(PARIS, 2026, 12, 1, 8, 30), PARIS, d0, last, at("08:30")),
            Some(14)
        );
        assert_eq!(
            due_day(ms(PARIS, 2026, 12, 2, 8, 30), PARIS, d0, last, at("08:30")),
            None
        );
    }

    #[test]
    fn dst_days_count_local_days_and_local_times() {
        // Clocks go forward on 2026-03-29 at 02:00 (to 03:00): 02:30 does not
        // exist; it is reached at the jump.
        let (d0, last) = (date(2026, 3, 20), date(2026, 4, 3));
        let before_jump = ms(chrono_tz::UTC, 2026, 3, 29, 0, 59); // 01:59 CET
        let after_jump = ms(chrono_tz::UTC, 2026, 3, 29, 1, 0); // 03:00 CEST
        assert_eq!(due_day(before_jump, PARIS, d0, last, at("02:30")), None);
        assert_eq!(due_day(after_jump, PARIS, d0, last, at("02:30")), Some(8));
        // The 23-hour day itself is one day: the next morning D+9 is due.
        assert_eq!(
            due_day(ms(PARIS, 2026, 3, 30, 8, 30), PARIS, d0, last, at("08:30")),
            Some(9)
        );
        // Clocks go back on 2026-10-25 at 03:00 (to 02:00): 02:30 happens
        // twice; the first is due already.
        let (d0, last) = (date(2026, 10, 20), date(2026, 11, 3));
        let first_0230 = ms(chrono_tz::UTC, 2026, 10, 25, 0, 30); // 02:30 CEST
        let first_0229 = ms(chrono_tz::UTC, 2026, 10, 25, 0, 29);
        assert_eq!(due_day(first_0229, PARIS, d0, last, at("02:30")), None);
        assert_eq!(due_day(first_0230, PARIS, d0, last, at("02:30")), Some(4));
    }

    #[test]
    fn at_is_hh_mm() {
        assert_eq!(parse_at("08:30"), NaiveTime::from_hms_opt(8, 30, 0));
        assert_eq!(parse_at("00:00"), NaiveTime::from_hms_opt(0, 0, 0));
        for bad in ["8:30", "24:00", "08:60", "0830", "08:30:00", "", "ab:cd"] {
            assert_eq!(parse_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn settings_are_checked_by_field() {
        let ok = DeliverySettings::default();
        ok.validate().unwrap();
        assert!(!ok.enabled(), "off by default");
        let field = |s: DeliverySettings| s.validate().unwrap_err().field;
        assert_eq!(
            field(DeliverySettings {
                at: "8h30".into(),
                ..ok.clone()
            }),
            "delivery.at"
        );
        for url in ["ftp://h/x", "hooks.slack.com/x", "http://", "http:///path"] {
            let settings = DeliverySettings {
                webhooks: vec![Webhook {
                    url: url.into(),
                    format: HookFormat::Slack,
                }],
                ..ok.clone()
            };
            assert_eq!(field(settings), "delivery.webhooks.url", "{url}");
        }
        assert_eq!(
            field(DeliverySettings {
                backoff: Duration::ZERO,
                ..ok.clone()
            }),
            "delivery.backoff"
        );
        assert_eq!(
            field(DeliverySettings {
                timeout: Duration::ZERO,
                ..ok.clone()
            }),
            "delivery.timeout"
        );
        assert_eq!(
            field(DeliverySettings {
                link: "javascript:alert(1)".into(),
                ..ok.clone()
            }),
            "delivery.link"
        );
    }

    #[test]
    fn a_bad_webhook_url_is_reported_without_its_secret() {
        let settings = DeliverySettings {
            webhooks: vec![Webhook {
                url: "ftp://hooks.example.com/T000/SECRET".into(),
                format: HookFormat::Json,
            }],
            ..DeliverySettings::default()
        };
        let error = settings.validate().unwrap_err();
        assert!(!error.reason.contains("SECRET"), "{}", error.reason);
        assert!(!format!("{settings:?}").contains("SECRET"));
    }

    #[test]
    fn targets_have_distinct_ids_and_show_no_secret() {
        let hook = |url: &str, format| {
            Target::Webhook(Webhook {
                url: url.into(),
                format,
            })
        };
        let a = hook(
            "https://hooks.slack.com/services/T/B/one",
            HookFormat::Slack,
        );
        let b = hook(
            "https://hooks.slack.com/services/T/B/two",
            HookFormat::Slack,
        );
        let c = hook("https://hooks.slack.com/services/T/B/one", HookFormat::Json);
        assert_eq!(a.shown(), b.shown());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id(), a.clone().id());
        assert_eq!(a.shown(), "https://hooks.slack.com/(hidden)");
        assert_eq!(Target::Folder("/srv/reports".into()).format(), "folder");
    }

    #[test]
    fn network_errors_5xx_and_429_are_retried_other_4xx_are_not() {
        assert_eq!(Attempt::from_status(204, None).status(1, 3), "delivered");
        assert_eq!(Attempt::from_status(503, None).status(1, 3), "retrying");
        assert_eq!(Attempt::from_status(503, None).status(3, 3), "failed");
        assert_eq!(Attempt::from_status(429, None).status(2, 3), "retrying");
        for refused in [400, 401, 403, 404, 410, 413] {
            assert_eq!(Attempt::from_status(refused, None).status(1, 3), "failed");
        }
        let network = Attempt::Retryable {
            http_status: 0,
            error: "connection refused".into(),
            after: None,
        };
        assert_eq!(network.status(1, 6), "retrying");
    }

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let b = Duration::from_secs(30);
        assert_eq!(delay_after(1, b, None), Duration::from_secs(30));
        assert_eq!(delay_after(2, b, None), Duration::from_secs(60));
        assert_eq!(delay_after(3, b, None), Duration::from_secs(120));
        assert_eq!(
            delay_after(1, b, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(delay_after(1, b, Some(Duration::from_secs(1))), b);
        assert_eq!(delay_after(40, b, None), MAX_DELAY);
        assert_eq!(
            delay_after(1, b, Some(Duration::from_secs(86_400))),
            MAX_DELAY
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = ms(chrono_tz::UTC, 2015, 10, 21, 7, 27);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_stem("Spring sale", "l1", 1, "2026-11-17"),
            "Spring_sale-D+1-2026-11-17"
        );
        assert_eq!(
            file_stem("../../etc", "l1", 0, "2026-11-16"),
            "etc-D0-2026-11-16"
        );
        assert_eq!(
            file_stem("", "0a1b", 3, "2026-11-19"),
            "0a1b-D+3-2026-11-19"
        );
        assert_eq!(
            file_stem("///", "0a1b", 3, "2026-11-19"),
            "0a1b-D+3-2026-11-19"
        );
    }
}
