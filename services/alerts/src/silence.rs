//! Silences as Alertmanager has them: matchers, a start and an end. Built here
//! from what the API takes (checked field by field), stored as versioned
//! `silences` rows by `store`, and read back into [`Silence`] values that the
//! planner asks whether they mute an alert.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::AlertError;
use crate::matcher::{Matcher, Op};
use crate::store::SilenceRow;

/// 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write.
pub const LAST_RFC3339_MS: u64 = 253_402_300_799_999;

/// A silence with its matchers parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: String,
    pub version: u32,
    pub matchers: Vec<Matcher>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence is in its life, as in Alertmanager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub const fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// None for a row whose matchers no longer parse (kept, but it mutes nothing).
    pub fn from_row(row: SilenceRow) -> Option<Self> {
        let matchers: Vec<Matcher> = serde_json::from_str(&row.matchers).ok()?;
        let matchers = matchers
            .into_iter()
            .map(Matcher::compiled)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(Self {
            id: row.silence_id,
            version: row.version,
            matchers,
            starts_ms: row.starts_ms,
            ends_ms: row.ends_ms,
            created_by: row.created_by,
            comment: row.comment,
        })
    }

    pub fn from_rows(rows: Vec<SilenceRow>) -> Vec<Self> {
        rows.into_iter().filter_map(Silence::from_row).collect()
    }

    pub fn state(&self, now_ms: u64) -> SilenceState {
        if now_ms < self.starts_ms {
            SilenceState::Pending
        } else if now_ms < self.ends_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn mutes(&self, labels: &BTreeMap<String, String>, now_ms: u64) -> bool {
        self.state(now_ms) == SilenceState::Active
            && crate::matcher::all_match(&self.matchers, labels)
    }

    /// The row of this silence's next version.
    pub fn to_row(&self, at_ms: u64) -> SilenceRow {
        SilenceRow {
            silence_id: self.id.clone(),
            version: self.version,
            matchers: serde_json::to_string(&self.matchers).unwrap_or_default(),
            starts_ms: self.starts_ms,
            ends_ms: self.ends_ms,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
            at_ms,
        }
    }

    /// This silence ended at `now` (a new version), or None when it has ended
    /// already: expiring is idempotent, and the silence is kept.
    pub fn expired_at(&self, now: u64) -> Option<Silence> {
        (self.state(now) != SilenceState::Expired).then(|| Silence {
            version: self.version + 1,
            starts_ms: self.starts_ms.min(now),
            ends_ms: now,
            ..self.clone()
        })
    }

    /// As Alertmanager's API shows a silence.
    pub fn to_json(&self, now: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "status": {"state": self.state(now).as_str()},
            "matchers": self.matchers.iter().map(|m| serde_json::json!({
                "name": m.name, "value": m.value,
                "isRegex": matches!(m.op, Op::Re | Op::NotRe),
                "isEqual": matches!(m.op, Op::Eq | Op::Re),
            })).collect::<Vec<_>>(),
            "startsAt": rfc3339(self.starts_ms), "endsAt": rfc3339(self.ends_ms),
            "createdBy": self.created_by, "comment": self.comment,
        })
    }
}

/// An RFC 3339 time of the API, or None for 0 (not set).
pub fn rfc3339(ms: u64) -> Option<String> {
    (ms > 0).then(|| crate::notify::rfc3339_ms(ms))
}

/// Reads an RFC 3339 time of field `field`, in epoch milliseconds.
pub fn parse_time(field: &str, text: &str) -> Result<u64, AlertError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis().max(0) as u64)
        .map_err(|e| AlertError::invalid(field, format!("must be an RFC 3339 time: {e}")))
}

/// Matchers as Alertmanager's API takes them, or as `name="value"` strings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MatcherInput {
    Text(String),
    Object {
        name: String,
        value: String,
        #[serde(rename = "isRegex", default)]
        is_regex: bool,
        #[serde(rename = "isEqual", default = "yes")]
        is_equal: bool,
    },
}

fn yes() -> bool {
    true
}

/// `POST /v1/silences`, as Alertmanager's API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceInput {
    pub matchers: Vec<MatcherInput>,
    #[serde(rename = "startsAt", default)]
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Instead of endsAt: `2h`, `30m`.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
}

impl SilenceInput {
    /// The new silence `id` this input asks for at `now`; errors name the field.
    pub fn into_silence(self, id: String, now: u64) -> Result<Silence, AlertError> {
        if self.matchers.is_empty() {
            return Err(AlertError::invalid(
                "matchers",
                "needs at least one matcher (a silence of everything is refused)",
            ));
        }
        let mut matchers = Vec::new();
        for (i, m) in self.matchers.iter().enumerate() {
            let parsed = match m {
                MatcherInput::Text(text) => Matcher::parse(text),
                MatcherInput::Object {
                    name,
                    value,
                    is_regex,
                    is_equal,
                } => {
                    let op = match (is_regex, is_equal) {
                        (false, true) => Op::Eq,
                        (false, false) => Op::Ne,
                        (true, true) => Op::Re,
                        (true, false) => Op::NotRe,
                    };
                    Matcher::new(name, op, value)
                }
            };
            matchers.push(
                parsed.map_err(|e| AlertError::invalid(format!("matchers[{i}]"), e.to_string()))?,
            );
        }
        if self.created_by.trim().is_empty() {
            return Err(AlertError::invalid(
                "createdBy",
                "is required: who silenced this",
            ));
        }
        if self.comment.trim().is_empty() {
            return Err(AlertError::invalid(
                "comment",
                "is required: why it is silenced",
            ));
        }
        let starts = self
            .starts_at
            .as_deref()
            .map(|s| parse_time("startsAt", s))
            .transpose()?
            .unwrap_or(now);
        let ends = match (&self.ends_at, &self.duration) {
            (Some(e), None) => parse_time("endsAt", e)?,
            (None, Some(d)) => {
                let d = crate::duration::parse(d)
                    .map_err(|reason| AlertError::invalid("duration", reason.to_string()))?;
                // Checked: `18446744073709551615s` overflowed the sum and panicked.
                u64::try_from(d.as_millis())
                    .ok()
                    .and_then(|ms| starts.checked_add(ms))
                    .filter(|&end| end <= LAST_RFC3339_MS)
                    .ok_or_else(|| {
                        AlertError::invalid("duration", "is too long: a silence ends by year 9999")
                    })?
            }
            _ => {
                return Err(AlertError::invalid(
                    "endsAt",
                    "give either endsAt or duration",
                ));
            }
        };
        if ends <= starts || ends <= now {
            return Err(AlertError::invalid(
                "endsAt",
                "must be after startsAt and in the future",
            ));
        }
        Ok(Silence {
            id,
            version: 1,
            matchers,
            starts_ms: starts,
            ends_ms: ends,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000;

    fn input(body: serde_json::Value) -> SilenceInput {
        serde_json::from_value(body).unwrap()
    }

    fn field(body: serde_json::Value) -> String {
        let error = input(body).into_silence("s".into(), NOW).unwrap_err();
        match error {
            AlertError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_silence_takes_both_matcher_forms_and_a_duration() {
        let silence = input(serde_json::json!({
            "matchers": [{"name": "alertname", "value": "queue_full"}, "service=~\"api|web\""],
            "duration": "1h", "createdBy": "amy", "comment": "deploying a fix"
        }))
        .into_silence("s1".into(), NOW)
        .unwrap();
        assert_eq!((silence.starts_ms, silence.ends_ms), (NOW, NOW + 3_600_000));
        assert_eq!(silence.matchers.len(), 2);
        assert_eq!(silence.matchers[1].op, Op::Re);
        assert_eq!(silence.state(NOW), SilenceState::Active);
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "queue_full".to_owned()),
            ("service".to_owned(), "web".to_owned()),
        ]);
        assert!(silence.mutes(&labels, NOW + 1));
        assert!(!silence.mutes(&labels, NOW + 3_600_000));
        let json = silence.to_json(NOW);
        assert_eq!(json["matchers"][1]["isRegex"], true);
        assert_eq!(json["status"]["state"], "active");
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = |patch: serde_json::Value| {
            let mut body = serde_json::json!({"matchers": ["service=api"], "duration": "1h", "createdBy": "amy", "comment": "x"});
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    body.as_object_mut().unwrap().remove(k);
                } else {
                    body[k] = v.clone();
                }
            }
            body
        };
        assert_eq!(field(base(serde_json::json!({"matchers": []}))), "matchers");
        assert_eq!(
            field(base(
                serde_json::json!({"matchers": [{"name": "s", "value": "(", "isRegex": true}]})
            )),
            "matchers[0]"
        );
        assert_eq!(field(base(serde_json::json!({"comment": " "}))), "comment");
        assert_eq!(
            field(base(serde_json::json!({"createdBy": ""}))),
            "createdBy"
        );
        assert_eq!(
            field(base(serde_json::json!({"duration": "1.5h"}))),
            "duration"
        );
        assert_eq!(
            field(base(
                serde_json::json!({"duration": "18446744073709551615s"})
            )),
            "duration"
        );
        assert_eq!(
            field(base(
                serde_json::json!({"duration": null, "endsAt": "2020-01-01T00:00:00Z"})
            )),
            "endsAt"
        );
        assert_eq!(
            field(base(serde_json::json!({"endsAt": "2099-01-01T00:00:00Z"}))),
            "endsAt",
            "both endsAt and duration"
        );
        assert_eq!(
            field(base(serde_json::json!({"startsAt": "soon"}))),
            "startsAt"
        );
    }

    #[test]
    fn expiring_ends_a_silence_now_once() {
        let silence = input(serde_json::json!({"matchers": ["a=b"], "duration": "1h", "createdBy": "amy", "comment": "x"}))
            .into_silence("s".into(), NOW)
            .unwrap();
        let expired = silence.expired_at(NOW + 10).unwrap();
        assert_eq!((expired.version, expired.ends_ms), (2, NOW + 10));
        assert_eq!(expired.state(NOW + 10), SilenceState::Expired);
        assert!(expired.expired_at(NOW + 20).is_none());
        let row = expired.to_row(NOW + 10);
        let back = Silence::from_row(row).unwrap();
        assert_eq!(back.matchers.len(), 1);
    }
}
