//! Notifications in the Alertmanager webhook format (version 4), delivered with
//! retries on the capability's tasks; every attempt is recorded in
//! `alert_notifications` (through `store`, which owns the row type).

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;

use std::sync::Arc;

use hypercare_runtime::{SharedClock, Tasks};

use crate::config::{Receiver, redact_url};
use crate::store::DeliveryRow;

/// The body Alertmanager POSTs to webhook receivers.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPayload {
    pub version: &'static str,
    #[serde(rename = "groupKey")]
    pub group_key: String,
    #[serde(rename = "truncatedAlerts")]
    pub truncated_alerts: usize,
    pub status: &'static str,
    pub receiver: String,
    #[serde(rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// `0001-01-01T00:00:00Z` while firing, as Alertmanager sends it.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Labels (or annotations) every alert shares.
pub fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// `User-Agent: Hypercare/<version>`, as Alertmanager sends `Alertmanager/<version>`:
/// receivers can tell who calls in their logs.
pub const USER_AGENT: &str = concat!("Hypercare/", env!("CARGO_PKG_VERSION"));

/// The HTTP client of webhook deliveries. Every request carries `User-Agent`
/// and `Content-Type: application/json`, plus `Authorization: Bearer` when the
/// receiver has a token.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .build()
        .unwrap_or_default()
}

/// What to deliver and how often to try.
pub struct Delivery {
    pub http: reqwest::Client,
    pub store: clickhouse::Client,
    pub clock: SharedClock,
    /// Deliveries run here, so that shutdown stops their retries and waits
    /// for the attempts in flight.
    pub tasks: Tasks,
    pub attempts: u32,
    pub backoff: Duration,
}

/// One notification for one receiver, as the planner decided it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub receiver_name: String,
    pub receiver: Receiver,
    pub payload: WebhookPayload,
    /// `notify`, `repeat`, `resolved`, `escalation`, `digest`, `ack_expired`.
    pub reason: &'static str,
    pub alert_ids: Vec<String>,
}

impl Delivery {
    /// Sends `outgoing`, retrying with a doubling delay; records each attempt.
    /// Runs on its own task so a slow receiver never holds the evaluator. At
    /// shutdown an attempt in flight finishes (and is recorded); no retry
    /// starts after it: the notification is recorded as `abandoned`.
    pub fn send(self: &Arc<Self>, outgoing: Outgoing) {
        let Outgoing {
            receiver,
            mut payload,
            reason,
            alert_ids,
            ..
        } = outgoing;
        if receiver.max_alerts > 0 && payload.alerts.len() > receiver.max_alerts {
            payload.truncated_alerts = payload.alerts.len() - receiver.max_alerts;
            payload.alerts.truncate(receiver.max_alerts);
        }
        let this = self.clone();
        self.tasks.spawn("webhook_delivery", move |cancel| async move {
            let record = |attempt: u32, status: &str, http_status: u16, error: String| DeliveryRow {
                at_ms: this.clock.now_ms(),
                group_key: payload.group_key.clone(),
                receiver: payload.receiver.clone(),
                url: redact_url(&receiver.url),
                reason: reason.into(),
                status: status.into(),
                attempt,
                http_status,
                error,
                alert_ids: alert_ids.clone(),
            };
            let mut delay = this.backoff;
            let attempts = this.attempts.max(1);
            for attempt in 1..=attempts {
                if cancel.is_cancelled() {
                    let row = record(attempt, "abandoned", 0, "the service stopped before this attempt".into());
                    if let Err(e) = crate::store::record_delivery(&this.store, &row).await {
                        tracing::warn!(error = %e, "Could not record an abandoned notification delivery.");
                    }
                    tracing::warn!(receiver = %payload.receiver, attempt, "Webhook delivery abandoned at shutdown.");
                    return;
                }
                let mut request = this
                    .http
                    .post(&receiver.url)
                    .timeout(receiver.timeout)
                    .json(&payload);
                if let Some(token) = &receiver.bearer_token {
                    request = request.bearer_auth(token.expose_secret());
                }
                let (status, http_status, error) = match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        ("delivered", r.status().as_u16(), String::new())
                    }
                    Ok(r) => (
                        "failed",
                        r.status().as_u16(),
                        format!("HTTP {}", r.status()),
                    ),
                    Err(e) => ("failed", 0, e.without_url().to_string()),
                };
                let row = record(attempt, status, http_status, error.clone());
                if let Err(e) = crate::store::record_delivery(&this.store, &row).await {
                    tracing::warn!(error = %e, "Could not record a notification delivery.");
                }
                if status == "delivered" {
                    return;
                }
                tracing::warn!(receiver = %payload.receiver, attempt, %error, "Webhook delivery failed.");
                if attempt < attempts {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay *= 2;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_uses_alertmanager_field_names() {
        let payload = WebhookPayload {
            version: "4",
            group_key: "{}:{alertname=\"x\"}".into(),
            truncated_alerts: 0,
            status: "firing",
            receiver: "oncall".into(),
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            external_url: "http://h".into(),
            alerts: vec![WebhookAlert {
                status: "firing",
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                starts_at: rfc3339_ms(0),
                ends_at: NOT_ENDED.into(),
                generator_url: "http://h/v1/alerts/a".into(),
                fingerprint: "f".into(),
            }],
        };
        let json = serde_json::to_value(&payload).unwrap();
        for field in [
            "externalURL",
            "groupKey",
            "truncatedAlerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert!(json["alerts"][0].get("generatorURL").is_some());
        assert_eq!(json["alerts"][0]["startsAt"], "1970-01-01T00:00:00.000Z");
    }

    #[tokio::test]
    async fn shutdown_stops_the_retries_of_a_failing_delivery() {
        // Arrange: a receiver nobody listens on, five attempts an hour apart.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let tasks = Tasks::new();
        let delivery = Arc::new(Delivery {
            http: http_client(),
            store: clickhouse::Client::default().with_url(format!("http://127.0.0.1:{port}")),
            clock: Arc::new(hypercare_runtime::SystemClock),
            tasks: tasks.clone(),
            attempts: 5,
            backoff: Duration::from_secs(3600),
        });
        let receiver = Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            send_resolved: true,
            max_alerts: 0,
            timeout: Duration::from_secs(1),
            bearer_token: None,
        };
        let payload = WebhookPayload {
            version: "4",
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
            status: "firing",
            receiver: "oncall".into(),
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            external_url: "http://h".into(),
            alerts: Vec::new(),
        };
        delivery.send(Outgoing {
            receiver_name: "oncall".into(),
            receiver,
            payload,
            reason: "notify",
            alert_ids: Vec::new(),
        });
        assert_eq!(tasks.len(), 1);
        // Act and assert: the wait for the second attempt ends at once.
        assert!(tasks.shutdown(Duration::from_secs(10)).await);
        assert!(tasks.is_empty());
    }

    #[test]
    fn common_labels_are_the_shared_pairs() {
        let a = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]);
        let b = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ]);
        assert_eq!(
            common(&[&a, &b]),
            BTreeMap::from([("a".to_owned(), "1".to_owned())])
        );
    }

    #[test]
    fn receiver_urls_are_shown_without_their_secret_part() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/(hidden)"
        );
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:9099?token=1"),
            "http://127.0.0.1:9099/(hidden)"
        );
        assert_eq!(redact_url("http://127.0.0.1:9099"), "http://127.0.0.1:9099");
        assert_eq!(redact_url("not a url"), "(hidden)");
    }
}
