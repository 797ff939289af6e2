//! Launches and their D+N days.
//!
//! A launch is declared once (`POST /v1/launches`, checked by
//! [`NewLaunch::validate`]) and kept in `launches`; the last one declared is
//! the current one, whose time zone cuts the days of the board and whose
//! window (D0..D+N) and baseline days (D-B..D-1) the comparisons use.
//!
//! Data flow of the days (`GET /v1/launches/{id}/days`):
//! [`crate::state::KpiState::days`] reads each KPI's value on every day of
//! [`dates`] and, for today, the board's entry; [`days`] lays them out, one
//! [`LaunchDay`] per day, pure.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use hypercare_storage::ReadOnly;
use serde::{Deserialize, Serialize};

use crate::board::Board;
use crate::calendar::local_date;
use crate::definition::{Invalid, Kpi, Status};
use crate::pace::Window;
use crate::sql;

/// A launch as stored.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct LaunchRow {
    pub launch_id: String,
    pub name: String,
    pub release: String,
    /// As sent, RFC 3339 with its offset.
    pub d0: String,
    pub d0_secs: u64,
    pub tz: String,
    pub window_days: u16,
    pub baseline_days: u16,
    /// The stages, as JSON.
    pub stages: String,
    pub created_ms: u64,
    pub actor: String,
}

/// `POST /v1/launches`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLaunch {
    pub name: String,
    pub release: String,
    /// Go-live, RFC 3339 with its offset (e.g. `2026-11-20T09:00:00+01:00`).
    #[schema(format = DateTime)]
    pub d0: String,
    pub tz: String,
    #[serde(default = "fourteen")]
    pub window_days: u16,
    #[serde(default = "seven")]
    pub baseline_days: u16,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

fn fourteen() -> u16 {
    14
}

fn seven() -> u16 {
    7
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LaunchStage)]
pub struct Stage {
    pub name: String,
    pub percent: f64,
    #[schema(format = DateTime)]
    pub starts_at: String,
}

/// A time zone by its IANA name; the error names `field`.
pub fn parse_tz(field: &str, name: &str) -> Result<Tz, Invalid> {
    name.parse().map_err(|_| {
        Invalid::new(
            field,
            format!("`{name}` is not an IANA time zone such as Europe/Paris"),
        )
    })
}

impl NewLaunch {
    /// Checks every field; the launch to store, declared at `created_ms` by `actor`.
    pub fn validate(self, id: String, created_ms: u64, actor: &str) -> Result<LaunchRow, Invalid> {
        if self.name.trim().is_empty() {
            return Err(Invalid::new("name", "is required"));
        }
        parse_tz("tz", &self.tz)?;
        let d0 = DateTime::parse_from_rfc3339(&self.d0)
            .map_err(|e| Invalid::new("d0", format!("is not an RFC 3339 time ({e})")))?;
        if !(1..=90).contains(&self.window_days) {
            return Err(Invalid::new("window_days", "must be between 1 and 90"));
        }
        if self.baseline_days > 90 {
            return Err(Invalid::new("baseline_days", "must be at most 90"));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if !(0.0..=100.0).contains(&stage.percent) {
                return Err(Invalid::new(
                    format!("stages[{i}].percent"),
                    "must be between 0 and 100",
                ));
            }
            DateTime::parse_from_rfc3339(&stage.starts_at).map_err(|_| {
                Invalid::new(format!("stages[{i}].starts_at"), "is not an RFC 3339 time")
            })?;
        }
        Ok(LaunchRow {
            launch_id: id,
            name: self.name,
            release: self.release,
            d0: self.d0,
            d0_secs: d0.timestamp().max(0) as u64,
            tz: self.tz,
            window_days: self.window_days,
            baseline_days: self.baseline_days,
            stages: serde_json::to_string(&self.stages).unwrap_or_default(),
            created_ms,
            actor: actor.to_owned(),
        })
    }
}

/// A launch as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Launch {
    pub id: String,
    pub name: String,
    pub release: String,
    pub d0: String,
    pub tz: String,
    pub window_days: u16,
    pub baseline_days: u16,
    #[schema(value_type = Vec<Object>)]
    pub stages: serde_json::Value,
}

impl LaunchRow {
    pub fn view(&self) -> Launch {
        Launch {
            id: self.launch_id.clone(),
            name: self.name.clone(),
            release: self.release.clone(),
            d0: self.d0.clone(),
            tz: self.tz.clone(),
            window_days: self.window_days,
            baseline_days: self.baseline_days,
            stages: serde_json::from_str(&self.stages).unwrap_or_default(),
        }
    }

    /// Its time zone (checked when declared).
    pub fn tz(&self) -> Result<Tz, Invalid> {
        parse_tz("tz", &self.tz)
    }

    /// Its window and baseline days, local days of `tz`.
    pub fn window(&self, tz: Tz) -> Window {
        Window::new(
            local_date(self.d0_secs, tz),
            self.window_days,
            self.baseline_days,
        )
    }
}

/// The launch declared last.
pub async fn current(store: &clickhouse::Client) -> clickhouse::error::Result<Option<LaunchRow>> {
    store
        .query(sql::CURRENT_LAUNCH)
        .read_only()
        .fetch_optional()
        .await
}

/// The launch `id`, or the current one for `current`.
pub async fn find(
    store: &clickhouse::Client,
    id: &str,
) -> clickhouse::error::Result<Option<LaunchRow>> {
    if id == "current" {
        return current(store).await;
    }
    store
        .query(sql::LAUNCH_BY_ID)
        .bind(id)
        .read_only()
        .fetch_optional()
        .await
}

/// Every launch, newest first.
pub async fn list(store: &clickhouse::Client) -> clickhouse::error::Result<Vec<LaunchRow>> {
    store.query(sql::LAUNCHES).read_only().fetch_all().await
}

pub async fn insert(store: &clickhouse::Client, row: &LaunchRow) -> clickhouse::error::Result<()> {
    let mut insert = store.insert::<LaunchRow>("launches").await?;
    insert.write(row).await?;
    insert.end().await
}

/// `GET /v1/launches/{id}/days`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LaunchDays {
    pub launch: Launch,
    pub days: Vec<LaunchDay>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LaunchDay {
    /// `D-7` .. `D-1` for baseline days, then `D+0`, `D+1`, ...
    pub day: String,
    pub date: String,
    /// A baseline day (before D0), which the comparisons are made of.
    pub baseline: bool,
    /// The local day has ended; today is judged at pace, as on the board.
    pub complete: bool,
    pub kpis: BTreeMap<String, KpiDayValue>,
}

/// A day's value of one KPI.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpiDayValue {
    pub value: Option<f64>,
    pub status: Status,
}

/// The days of a launch: baseline days D-B..D-1, then D0..D+N.
pub fn dates(window: &Window) -> Vec<NaiveDate> {
    let mut dates = window.baseline_dates();
    dates.extend(window.d0.iter_days().take_while(|d| *d <= window.last));
    dates
}

/// `D-3`, `D+0`, `D+4`.
pub fn day_label(n: i64) -> String {
    if n < 0 {
        format!("D{n}")
    } else {
        format!("D+{n}")
    }
}

/// One entry per day of `window` with each KPI's value and status that day
/// (`values`, per KPI id); today, when `today_board` is given, as the board
/// judges it (at pace).
pub fn days(
    window: &Window,
    today: NaiveDate,
    values: &BTreeMap<String, (Kpi, BTreeMap<NaiveDate, Option<f64>>)>,
    today_board: Option<&Board>,
) -> Vec<LaunchDay> {
    dates(window)
        .into_iter()
        .map(|date| {
            let n = (date - window.d0).num_days();
            let kpis = values
                .iter()
                .map(|(id, (kpi, values))| {
                    let from_board = today_board
                        .filter(|_| date == today)
                        .and_then(|b| b.kpis.iter().find(|k| &k.id == id));
                    let day = match from_board {
                        Some(entry) => KpiDayValue {
                            value: entry.value,
                            status: entry.status,
                        },
                        None => {
                            let value = values.get(&date).copied().flatten();
                            KpiDayValue {
                                value,
                                status: kpi.status(value),
                            }
                        }
                    };
                    (id.clone(), day)
                })
                .collect();
            LaunchDay {
                day: day_label(n),
                date: date.to_string(),
                baseline: n < 0,
                complete: date < today,
                kpis,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::parse;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn launch() -> NewLaunch {
        serde_json::from_value(serde_json::json!({"name": "Spring", "release": "2.4",
            "d0": "2026-11-16T09:00:00+01:00", "tz": "Europe/Paris", "window_days": 3, "baseline_days": 2,
            "stages": [{"name": "canary", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"}]}))
        .unwrap()
    }

    #[test]
    fn a_launch_is_checked_field_by_field() {
        let row = launch().validate("id".into(), 5, "admin").unwrap();
        assert_eq!(row.d0_secs, 1_794_816_000);
        assert_eq!(row.view().stages[0]["name"], "canary");
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(row.window(paris).last, date(19));
        for (change, field) in [
            (serde_json::json!({"name": " "}), "name"),
            (serde_json::json!({"tz": "Mars/Olympus"}), "tz"),
            (serde_json::json!({"d0": "tomorrow"}), "d0"),
            (serde_json::json!({"window_days": 0}), "window_days"),
            (serde_json::json!({"baseline_days": 91}), "baseline_days"),
            (
                serde_json::json!({"stages": [{"name": "x", "percent": 101, "starts_at": "2026-11-16T09:00:00Z"}]}),
                "stages[0].percent",
            ),
        ] {
            let mut body =
                serde_json::to_value(launch().validate("id".into(), 5, "a").unwrap().view())
                    .unwrap();
            body.as_object_mut().unwrap().remove("id");
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let new: NewLaunch = serde_json::from_value(body).unwrap();
            assert_eq!(new.validate("id".into(), 5, "a").unwrap_err().field, field);
        }
    }

    #[test]
    fn the_days_run_from_the_baseline_to_the_window_end_and_today_is_the_boards() {
        let kpi = parse("kpis:\n  - {id: leads, title: Leads, aggregation: count, direction: higher_is_better, target: 10, warning: 8, critical: 5}\n")
            .unwrap()
            .remove(0);
        let window = Window::new(date(16), 3, 2);
        let values: BTreeMap<NaiveDate, Option<f64>> = [
            (date(14), Some(9.0)),
            (date(16), Some(12.0)),
            (date(17), Some(2.0)),
        ]
        .into();
        let per_kpi = BTreeMap::from([("leads".to_owned(), (kpi, values))]);
        let days = days(&window, date(17), &per_kpi, None);
        let labels: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(labels, ["D-2", "D-1", "D+0", "D+1", "D+2", "D+3"]);
        assert!(days[0].baseline && !days[2].baseline);
        assert!(days[2].complete && !days[3].complete);
        assert_eq!(days[0].kpis["leads"].status, Status::Ok);
        assert_eq!(days[1].kpis["leads"].status, Status::NoData);
        assert_eq!(days[3].kpis["leads"].status, Status::Critical);
    }
}
