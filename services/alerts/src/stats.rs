//! Alert history: which span a question asks about, and per alert the time to
//! acknowledge and to resolve, with their means per tier (MTTA / MTTR). Pure:
//! from the rows `store::history` read and the time.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::AlertError;
use crate::silence::{parse_time, rfc3339};
use crate::store::{AlertRow, AlertStatus};

/// The span asked for: a local day (`date` with `tz`, default UTC), or
/// `from` / `to` (RFC 3339; default the last 24 h up to `now`). Epoch ms.
pub fn span(
    date: Option<&str>,
    tz: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: u64,
) -> Result<(u64, u64), AlertError> {
    let (from, to) = match (date, from, to) {
        (Some(date), None, None) => {
            use chrono::TimeZone;
            let tz: chrono_tz::Tz = tz.unwrap_or("UTC").parse().map_err(|_| {
                AlertError::invalid("tz", "is not an IANA time zone, e.g. Europe/Paris")
            })?;
            let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| AlertError::invalid("date", "must be YYYY-MM-DD"))?;
            let start = |d: chrono::NaiveDate| {
                tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    .earliest()
                    .map_or(0, |t| t.timestamp_millis().max(0) as u64)
            };
            (start(day), start(day.succ_opt().unwrap_or(day)))
        }
        (None, from, to) => (
            from.map(|f| parse_time("from", f))
                .transpose()?
                .unwrap_or(now.saturating_sub(86_400_000)),
            to.map(|t| parse_time("to", t)).transpose()?.unwrap_or(now),
        ),
        _ => {
            return Err(AlertError::invalid(
                "date",
                "cannot be combined with from/to",
            ));
        }
    };
    if from >= to {
        return Err(AlertError::invalid("to", "must be after from"));
    }
    Ok((from, to))
}

/// One alert that fired in the span.
#[derive(Debug, Serialize)]
pub struct Fired {
    pub id: String,
    pub rule: String,
    pub tier: String,
    pub state: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub fired_at: Option<String>,
    pub acked_at: Option<String>,
    pub acked_by: String,
    pub resolved_at: Option<String>,
    pub resolved_by: String,
    pub time_to_ack_secs: Option<f64>,
    pub time_to_resolve_secs: Option<f64>,
    pub rollback_trigger: bool,
}

/// Per tier: how many fired, were acknowledged and resolved, and the mean
/// times (None without any).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct TierTimes {
    pub alerts: u64,
    pub acked: u64,
    pub resolved: u64,
    pub mtta_secs: Option<f64>,
    pub mttr_secs: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tiers: BTreeMap<String, TierTimes>,
    pub alerts: Vec<Fired>,
}

fn mean_secs(ms: &[u64]) -> Option<f64> {
    (!ms.is_empty()).then(|| ms.iter().sum::<u64>() as f64 / ms.len() as f64 / 1000.0)
}

pub fn history(rows: &[AlertRow], from: u64, to: u64) -> History {
    let mut per_tier: BTreeMap<String, (u64, Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let alerts = rows
        .iter()
        .map(|r| {
            let tta = (r.acked_ms > 0).then(|| r.acked_ms.saturating_sub(r.fired_ms));
            let ttr = (r.resolved_ms > 0).then(|| r.resolved_ms.saturating_sub(r.fired_ms));
            let entry = per_tier.entry(r.tier.clone()).or_default();
            entry.0 += 1;
            entry.1.extend(tta);
            entry.2.extend(ttr);
            Fired {
                id: r.alert_id.clone(),
                rule: r.rule.clone(),
                tier: r.tier.clone(),
                state: r.state,
                labels: r.labels(),
                fired_at: rfc3339(r.fired_ms),
                acked_at: rfc3339(r.acked_ms),
                acked_by: r.acked_by.clone(),
                resolved_at: rfc3339(r.resolved_ms),
                resolved_by: r.resolved_by.clone(),
                time_to_ack_secs: tta.map(|ms| ms as f64 / 1000.0),
                time_to_resolve_secs: ttr.map(|ms| ms as f64 / 1000.0),
                rollback_trigger: r.rollback == 1,
            }
        })
        .collect();
    let tiers = per_tier
        .into_iter()
        .map(|(tier, (n, tta, ttr))| {
            (
                tier,
                TierTimes {
                    alerts: n,
                    acked: tta.len() as u64,
                    resolved: ttr.len() as u64,
                    mtta_secs: mean_secs(&tta),
                    mttr_secs: mean_secs(&ttr),
                },
            )
        })
        .collect();
    History {
        from: rfc3339(from),
        to: rfc3339(to),
        tiers,
        alerts,
    }
}

/// One tier over a day, for the daily report.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct TierDay {
    pub fired: u64,
    pub acked: u64,
    pub resolved: u64,
    pub mtta_secs: Option<f64>,
    pub mttr_secs: Option<f64>,
    /// Acknowledged after the tier's ack SLA, or still not acknowledged once
    /// it had passed by the span's end.
    pub ack_sla_breaches: u64,
}

/// An alert active during the span, as it stood at the span's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanAlert {
    pub id: String,
    pub rule: String,
    pub tier: String,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub fired_at: Option<String>,
    /// Resolved by the span's end.
    pub resolved_at: Option<String>,
    /// It fired inside the span (not before it).
    pub fired_in_span: bool,
    /// Still firing at the span's end.
    pub firing_at_end: bool,
    pub rollback_trigger: bool,
}

/// The alerts of a span `[from, to)` (a report's day up to its `as_of`).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct SpanAlerts {
    /// Per tier, over the alerts that fired inside the span.
    pub tiers: BTreeMap<String, TierDay>,
    /// Every alert active during the span, oldest first.
    pub alerts: Vec<SpanAlert>,
}

/// `rows` are the latest versions of the alerts active during `[from, to)`
/// (`store::history`); `ack_sla_ms` gives a tier's time to acknowledge. What
/// happened after `to` is not seen: an alert resolved later is firing at `to`.
pub fn span_alerts(
    rows: &[AlertRow],
    from: u64,
    to: u64,
    ack_sla_ms: impl Fn(&str) -> Option<u64>,
) -> SpanAlerts {
    let seen = |ms: u64| (ms > 0 && ms < to).then_some(ms);
    let mut per_tier: BTreeMap<String, (TierDay, Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let mut alerts = Vec::new();
    for row in rows.iter().filter(|r| r.fired_ms > 0 && r.fired_ms < to) {
        let acked = seen(row.acked_ms);
        let resolved = seen(row.resolved_ms);
        if resolved.is_some_and(|ms| ms < from) {
            continue;
        }
        let fired_in_span = row.fired_ms >= from;
        if fired_in_span {
            let (tier, tta, ttr) = per_tier.entry(row.tier.clone()).or_default();
            tier.fired += 1;
            if let Some(ms) = acked {
                tier.acked += 1;
                tta.push(ms.saturating_sub(row.fired_ms));
            }
            if let Some(ms) = resolved {
                tier.resolved += 1;
                ttr.push(ms.saturating_sub(row.fired_ms));
            }
            if let Some(sla) = ack_sla_ms(&row.tier) {
                let due = row.fired_ms + sla;
                let late = match acked {
                    Some(ms) => ms > due,
                    None => due < to && resolved.is_none_or(|ms| ms > due),
                };
                tier.ack_sla_breaches += u64::from(late);
            }
        }
        alerts.push(SpanAlert {
            id: row.alert_id.clone(),
            rule: row.rule.clone(),
            tier: row.tier.clone(),
            summary: row.annotations().remove("summary").unwrap_or_default(),
            labels: row.labels(),
            fired_at: rfc3339(row.fired_ms),
            resolved_at: resolved.and_then(rfc3339),
            fired_in_span,
            firing_at_end: resolved.is_none(),
            rollback_trigger: row.rollback == 1,
        });
    }
    let tiers = per_tier
        .into_iter()
        .map(|(name, (mut tier, tta, ttr))| {
            tier.mtta_secs = mean_secs(&tta);
            tier.mttr_secs = mean_secs(&ttr);
            (name, tier)
        })
        .collect();
    SpanAlerts { tiers, alerts }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_000_000_000;

    fn row(tier: &str, fired: u64, acked: u64, resolved: u64) -> AlertRow {
        AlertRow {
            alert_id: format!("a{fired}"),
            version: 3,
            fingerprint: "f".into(),
            rule: "r".into(),
            tier: tier.into(),
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
            started_ms: fired,
            fired_ms: fired,
            acked_ms: acked,
            acked_by: String::new(),
            resolved_ms: resolved,
            resolved_by: String::new(),
            escalation_level: 0,
            change: "x".into(),
            at_ms: fired,
        }
    }

    #[test]
    fn a_span_sees_alerts_as_they_stood_at_its_end() {
        let day = 86_400_000;
        let sla = |tier: &str| (tier == "P0").then_some(300_000);
        let rows = [
            // Fired the day before, resolved inside the span: active, not counted.
            row("P1", T0 - 1000, 0, T0 + 1000),
            // Acked late (10 min against 5), resolved after the span: firing at its end.
            row("P0", T0 + 10, T0 + 10 + 600_000, T0 + 2 * day),
            // Never acked, SLA passed: a breach.
            row("P0", T0 + 20, 0, 0),
            // Fired after the span.
            row("P0", T0 + day + 5, 0, 0),
        ];
        let span = span_alerts(&rows, T0, T0 + day, sla);
        assert_eq!(span.alerts.len(), 3);
        assert!(!span.alerts[0].fired_in_span && !span.alerts[0].firing_at_end);
        assert!(span.alerts[1].firing_at_end && span.alerts[1].resolved_at.is_none());
        let p0 = &span.tiers["P0"];
        assert_eq!((p0.fired, p0.acked, p0.resolved), (2, 1, 0));
        assert_eq!(p0.ack_sla_breaches, 2);
        assert_eq!(p0.mtta_secs, Some(600.0));
        assert!(!span.tiers.contains_key("P1"));
    }

    #[test]
    fn mtta_and_mttr_are_means_over_the_alerts_that_have_them() {
        let rows = [
            row("P0", T0, T0 + 60_000, T0 + 600_000),
            row("P0", T0 + 1, T0 + 1 + 120_000, 0),
            row("P1", T0 + 2, 0, 0),
        ];
        let h = history(&rows, T0 - 1, T0 + 86_400_000);
        assert_eq!(
            h.tiers["P0"],
            TierTimes {
                alerts: 2,
                acked: 2,
                resolved: 1,
                mtta_secs: Some(90.0),
                mttr_secs: Some(600.0),
            }
        );
        assert_eq!(
            h.tiers["P1"],
            TierTimes {
                alerts: 1,
                ..TierTimes::default()
            }
        );
        assert_eq!(h.alerts[1].time_to_ack_secs, Some(120.0));
        assert_eq!(h.alerts[1].time_to_resolve_secs, None);
    }

    #[test]
    fn the_span_is_a_local_day_or_from_to_or_the_last_day() {
        let now = T0;
        assert_eq!(
            span(None, None, None, None, now).unwrap(),
            (now - 86_400_000, now)
        );
        let (from, to) = span(Some("2026-03-29"), Some("Europe/Paris"), None, None, now).unwrap();
        // The day clocks go forward is 23 h long.
        assert_eq!(to - from, 23 * 3_600_000);
        let field = |r: Result<(u64, u64), AlertError>| match r.unwrap_err() {
            AlertError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(field(span(Some("2026-3-x"), None, None, None, now)), "date");
        assert_eq!(
            field(span(
                Some("2026-03-29"),
                Some("Mars/Olympus"),
                None,
                None,
                now
            )),
            "tz"
        );
        assert_eq!(
            field(span(
                Some("2026-03-29"),
                None,
                Some("2026-03-29T00:00:00Z"),
                None,
                now
            )),
            "date"
        );
        assert_eq!(
            field(span(None, None, Some("yesterday"), None, now)),
            "from"
        );
        assert_eq!(
            field(span(
                None,
                None,
                Some("2026-03-29T00:00:00Z"),
                Some("2026-03-28T00:00:00Z"),
                now
            )),
            "to"
        );
    }
}
