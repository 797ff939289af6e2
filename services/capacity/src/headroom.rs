//! The arithmetic of headroom and the scaling plan, and the two reads behind it.
//!
//! Data flow: [`HeadroomRequest::check`] checks the asked window, replicas and
//! forecast; [`current_at`] reads the service's latest baseline
//! ([`LATEST_BASELINE_SQL`]) and its request counter over the window
//! ([`COUNTER_MINUTES_SQL`]); [`peak_rate`] and [`headroom`] are the pure maths.

use hypercare_runtime::{Clock, SystemClock};
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;
use serde::{Deserialize, Serialize};

use crate::CapacitySettings;

/// Last value per series and minute of a counter of one service. Binds: metric
/// name, label key (twice), label value, from and to (epoch seconds).
pub const COUNTER_MINUTES_SQL: &str = "SELECT series_id, \
     toUInt32(toStartOfMinute(timestamp)) AS minute, \
     argMax(value, toUInt64(timestamp) * 1000 + timestamp_ms) AS value, \
     max(toUInt64(timestamp) * 1000 + timestamp_ms) AS at_ms \
     FROM metric_points \
     WHERE name = ? AND kind = 'counter' \
     AND has(label_keys, ?) AND label_values[indexOf(label_keys, ?)] = ? \
     AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) \
     GROUP BY series_id, minute ORDER BY series_id, minute";

/// The latest baseline of a service that found a sustainable rate.
pub const LATEST_BASELINE_SQL: &str = "SELECT run_id, toUInt32(started_at) AS started_at, \
     max_sustainable_rps, replicas FROM loadtest_runs \
     WHERE service = ? AND max_sustainable_rps > 0 \
     ORDER BY started_at DESC, run_id DESC LIMIT 1";

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct CounterPoint {
    pub series_id: u64,
    pub minute: u32,
    pub value: f64,
    pub at_ms: u64,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Baseline {
    pub run_id: String,
    pub started_at: u32,
    pub max_sustainable_rps: f64,
    pub replicas: u32,
}

/// The peak of the summed per-minute rate of several counter series, and the
/// minute (epoch seconds) it happened in. A counter that went down was reset:
/// its new value is what it counted since.
pub fn peak_rate(points: &[CounterPoint]) -> Option<(f64, u32)> {
    let mut per_minute: std::collections::BTreeMap<u32, f64> = Default::default();
    for pair in points.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.series_id != b.series_id || b.at_ms <= a.at_ms {
            continue;
        }
        let increase = if b.value >= a.value {
            b.value - a.value
        } else {
            b.value
        };
        let rate = increase / ((b.at_ms - a.at_ms) as f64 / 1e3);
        *per_minute.entry(b.minute).or_insert(0.0) += rate;
    }
    per_minute
        .into_iter()
        .map(|(minute, rate)| (rate, minute))
        .max_by(|x, y| x.0.total_cmp(&y.0))
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ScalingPlan {
    pub forecast_peak_rps: f64,
    pub per_replica_rps: f64,
    pub target_utilisation: f64,
    /// ceil(forecast peak / (per-replica capacity x target utilisation)), at least 1.
    pub replicas: u32,
    /// Spare capacity at the forecast peak with that many replicas, in percent.
    pub spare_percent: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Headroom {
    pub service: String,
    pub window_minutes: u32,
    /// Highest per-minute request rate in the window (0 without two points).
    pub peak_rps: f64,
    /// The minute of the peak, RFC 3339.
    pub peak_at: Option<String>,
    pub baseline: Baseline,
    pub per_replica_rps: f64,
    /// Replicas running now (from the request, else the baseline's).
    pub replicas: u32,
    pub capacity_rps: f64,
    /// 100 x (1 - peak / capacity).
    pub headroom_percent: f64,
    /// Headroom is below `capacity.warning_headroom_percent`.
    pub warning: bool,
    pub scaling_plan: ScalingPlan,
}

pub fn rfc3339(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Services that have a load test baseline.
pub const BASELINE_SERVICES_SQL: &str = "SELECT DISTINCT service FROM loadtest_runs \
     WHERE max_sustainable_rps > 0 AND service != '' ORDER BY service";

pub async fn services_with_baseline(
    store: &clickhouse::Client,
) -> clickhouse::error::Result<Vec<String>> {
    store
        .query(BASELINE_SERVICES_SQL)
        .read_only()
        .fetch_all()
        .await
}

/// A bad parameter of a headroom request: `field` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{field}` {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: &'static str,
}

/// What a headroom request asks, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadroomRequest {
    pub service: Option<String>,
    pub window_minutes: Option<u32>,
    pub replicas: Option<u32>,
    pub forecast_peak_rps: Option<f64>,
}

/// A headroom request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub service: String,
    pub window_minutes: u32,
    pub replicas: Option<u32>,
    pub forecast_peak_rps: Option<f64>,
}

/// The longest window a peak is looked for in: 14 days.
pub const MAX_WINDOW_MINUTES: u32 = 14 * 24 * 60;

impl HeadroomRequest {
    /// Checks every parameter; the window defaults to `capacity.window_minutes`.
    pub fn check(self, settings: &CapacitySettings) -> Result<Checked, Invalid> {
        let service = self.service.filter(|s| !s.is_empty()).ok_or(Invalid {
            field: "service",
            reason: "is required (the service label of its metrics)",
        })?;
        let window_minutes = self.window_minutes.unwrap_or(settings.window_minutes);
        if window_minutes == 0 || window_minutes > MAX_WINDOW_MINUTES {
            return Err(Invalid {
                field: "window_minutes",
                reason: "must be between 1 and 20160 (14 days)",
            });
        }
        if self.replicas == Some(0) {
            return Err(Invalid {
                field: "replicas",
                reason: "must be at least 1",
            });
        }
        if let Some(f) = self.forecast_peak_rps
            && !(f.is_finite() && f >= 0.0)
        {
            return Err(Invalid {
                field: "forecast_peak_rps",
                reason: "must be a rate of 0 or more",
            });
        }
        Ok(Checked {
            service,
            window_minutes,
            replicas: self.replicas,
            forecast_peak_rps: self.forecast_peak_rps,
        })
    }
}

/// [`current_at`] now by the wall clock, for callers that have no clock of
/// their own: the alert evaluator calls it today; it should call
/// [`current_at`] with its evaluation time instead, and this goes.
pub async fn current(
    store: &clickhouse::Client,
    settings: &CapacitySettings,
    service: &str,
    window_minutes: u32,
    replicas: Option<u32>,
    forecast_peak_rps: Option<f64>,
) -> clickhouse::error::Result<Option<Headroom>> {
    let request = Checked {
        service: service.to_owned(),
        window_minutes,
        replicas,
        forecast_peak_rps,
    };
    current_at(store, settings, &request, SystemClock.now_ms() / 1000).await
}

/// The headroom of the request's service over the `window_minutes` before
/// `now` (epoch seconds), with the current replica count of its baseline;
/// `None` without a baseline.
pub async fn current_at(
    store: &clickhouse::Client,
    settings: &CapacitySettings,
    request: &Checked,
    now: u64,
) -> clickhouse::error::Result<Option<Headroom>> {
    let Checked {
        service,
        window_minutes,
        replicas,
        forecast_peak_rps,
    } = request;
    let (service, window_minutes) = (service.as_str(), *window_minutes);
    let baseline: Option<Baseline> = store
        .query(LATEST_BASELINE_SQL)
        .bind(service)
        .read_only()
        .fetch_optional()
        .await?;
    let Some(baseline) = baseline else {
        return Ok(None);
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX - 1);
    let from = now - i64::from(window_minutes) * 60;
    let points: Vec<CounterPoint> = store
        .query(COUNTER_MINUTES_SQL)
        .bind(&settings.request_counter)
        .bind(&settings.service_label)
        .bind(&settings.service_label)
        .bind(service)
        .bind(from.max(0))
        .bind(now + 1)
        .read_only()
        .fetch_all()
        .await?;
    Ok(Some(headroom(
        service,
        settings,
        window_minutes,
        peak_rate(&points),
        baseline,
        *replicas,
        *forecast_peak_rps,
    )))
}

/// Headroom and plan from a peak and a baseline.
pub fn headroom(
    service: &str,
    settings: &CapacitySettings,
    window_minutes: u32,
    peak: Option<(f64, u32)>,
    baseline: Baseline,
    replicas_now: Option<u32>,
    forecast_peak_rps: Option<f64>,
) -> Headroom {
    let per_replica = baseline.max_sustainable_rps / f64::from(baseline.replicas.max(1));
    let replicas = replicas_now.unwrap_or(baseline.replicas).max(1);
    let capacity = per_replica * f64::from(replicas);
    let peak_rps = peak.map_or(0.0, |(rate, _)| rate);
    let headroom_percent = 100.0 * (1.0 - peak_rps / capacity);
    let forecast = forecast_peak_rps.unwrap_or(peak_rps);
    let needed = (forecast / (per_replica * settings.target_utilisation)).ceil();
    let needed = if needed.is_finite() && needed >= 1.0 {
        needed.min(f64::from(u32::MAX)) as u32
    } else {
        1
    };
    Headroom {
        service: service.to_owned(),
        window_minutes,
        peak_rps,
        peak_at: peak.map(|(_, minute)| rfc3339(i64::from(minute))),
        per_replica_rps: per_replica,
        replicas,
        capacity_rps: capacity,
        headroom_percent,
        warning: headroom_percent < settings.warning_headroom_percent,
        scaling_plan: ScalingPlan {
            forecast_peak_rps: forecast,
            per_replica_rps: per_replica,
            target_utilisation: settings.target_utilisation,
            replicas: needed,
            spare_percent: 100.0 * (1.0 - forecast / (per_replica * f64::from(needed))),
        },
        baseline,
    }
}

/// The read queries of capacity, with example parameters.
pub fn catalog() -> Vec<Statement> {
    let mut counter = COUNTER_MINUTES_SQL.to_owned();
    for value in [
        "'http_requests_total'",
        "'service'",
        "'service'",
        "'checkout'",
        "1795300000",
        "1795400000",
    ] {
        counter = counter.replacen('?', value, 1);
    }
    vec![
        Statement {
            origin: "capacity: counter per series and minute".into(),
            sql: counter,
        },
        Statement {
            origin: "capacity: latest baseline".into(),
            sql: LATEST_BASELINE_SQL.replacen('?', "'checkout'", 1),
        },
        Statement {
            origin: "capacity: services with a baseline".into(),
            sql: BASELINE_SERVICES_SQL.into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(series_id: u64, minute: u32, value: f64) -> CounterPoint {
        CounterPoint {
            series_id,
            minute,
            value,
            at_ms: u64::from(minute) * 1000 + 59_000,
        }
    }

    #[test]
    fn peak_sums_series_per_minute_and_survives_a_reset() {
        let points = vec![
            point(1, 0, 0.0),
            point(1, 60, 6000.0),   // 100/s
            point(1, 120, 18000.0), // 200/s
            point(1, 180, 600.0),   // reset: 10/s
            point(2, 60, 100.0),
            point(2, 120, 3100.0), // 50/s
        ];
        let (peak, minute) = peak_rate(&points).unwrap();
        assert!((peak - 250.0).abs() < 1e-9, "{peak}");
        assert_eq!(minute, 120);
        assert!(peak_rate(&[point(1, 0, 5.0)]).is_none());
    }

    #[test]
    fn a_request_names_its_bad_parameter() {
        let settings = CapacitySettings::default();
        let ok = HeadroomRequest {
            service: Some("checkout".into()),
            ..HeadroomRequest::default()
        };
        assert_eq!(ok.clone().check(&settings).unwrap().window_minutes, 60);
        for (request, field) in [
            (HeadroomRequest::default(), "service"),
            (
                HeadroomRequest {
                    window_minutes: Some(MAX_WINDOW_MINUTES + 1),
                    ..ok.clone()
                },
                "window_minutes",
            ),
            (
                HeadroomRequest {
                    replicas: Some(0),
                    ..ok.clone()
                },
                "replicas",
            ),
            (
                HeadroomRequest {
                    forecast_peak_rps: Some(f64::NAN),
                    ..ok.clone()
                },
                "forecast_peak_rps",
            ),
        ] {
            assert_eq!(request.check(&settings).unwrap_err().field, field);
        }
    }

    #[test]
    fn headroom_and_replicas_follow_the_formulas() {
        let baseline = Baseline {
            run_id: "r".into(),
            started_at: 0,
            max_sustainable_rps: 2000.0,
            replicas: 2,
        };
        let settings = CapacitySettings::default();
        let h = headroom(
            "checkout",
            &settings,
            60,
            Some((1500.0, 60)),
            baseline,
            None,
            Some(3000.0),
        );
        assert_eq!(h.per_replica_rps, 1000.0);
        assert_eq!(h.capacity_rps, 2000.0);
        assert!((h.headroom_percent - 25.0).abs() < 1e-9);
        assert!(h.warning);
        // ceil(3000 / (1000 * 0.7)) = ceil(4.29) = 5
        assert_eq!(h.scaling_plan.replicas, 5);
        assert!((h.scaling_plan.spare_percent - 40.0).abs() < 1e-9);
    }
}
