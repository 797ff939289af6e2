//! KPIs end to end: every aggregation against values computed in the test from
//! the generated events (duplicates, late events, time zone day cuts, empty days),
//! the board, series with gaps filled, definitions' history and their checks.

use std::collections::{BTreeMap, HashSet};

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::{Value, json};

use hypercare_kpis::definition::Kpi;
use hypercare_kpis::rollup;
use std::time::Duration;

use hypercare_tests::{
    ADMIN_KEY, INGEST_KEY, ManualClock, READ_KEY, TestApp, eventually, spawn_app, spawn_app_on,
    spawn_app_with, test_settings,
};
use reqwest::Method;

#[derive(Debug, Clone)]
struct Event {
    id: String,
    name: &'static str,
    ts_ms: i64,
    user: String,
    value: Option<f64>,
    latency: Option<f64>,
}

/// A week of events around go-live in Paris, with events close to local midnight.
fn generate() -> Vec<Event> {
    let mut events = Vec::new();
    let mut n = 0u32;
    let mut push = |events: &mut Vec<Event>, name, ts_ms, user: String, value, latency| {
        n += 1;
        events.push(Event {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            name,
            ts_ms,
            user,
            value,
            latency,
        });
    };
    // 2026-11-12T00:00Z .. 2026-11-21: D0 is 2026-11-16 (Paris); 2026-11-18 stays empty.
    let day0 = 1_794_441_600_000_i64; // 2026-11-12T00:00:00Z
    for d in 0..10i64 {
        if d == 6 {
            continue;
        }
        for i in 0..(5 + d) {
            // Spread over the day, some at 23:10 UTC (00:10 the next day in Paris).
            let minute = if i % 4 == 0 {
                23 * 60 + 10
            } else {
                60 + i * 37
            };
            let ts = day0 + d * 86_400_000 + minute * 60_000;
            let user = format!("u{}", i % 3);
            push(
                &mut events,
                "checkout_started",
                ts,
                user.clone(),
                None,
                None,
            );
            if i % 2 == 0 {
                push(
                    &mut events,
                    "order_placed",
                    ts + 1000,
                    user.clone(),
                    Some(10.0 + i as f64),
                    None,
                );
            }
            push(
                &mut events,
                "search_performed",
                ts + 2000,
                user,
                None,
                Some((100 + 10 * i + d) as f64),
            );
        }
    }
    events
}

fn ndjson(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            let mut record =
                json!({"event": e.name, "event_id": e.id, "timestamp": e.ts_ms, "user_id": e.user});
            if let Some(v) = e.value {
                record["value"] = v.into();
            }
            if let Some(l) = e.latency {
                record["properties"] = json!({"latency_ms": l});
            }
            record.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn send_events(app: &TestApp, events: &[Event]) {
    let response = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            ndjson(events),
        )
        .await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

const KPIS: &[(&str, &str)] = &[
    (
        "orders",
        r#"{"title": "Orders", "aggregation": "count", "filter": {"event": "order_placed"}, "direction": "higher_is_better", "target": 8, "warning": 6, "critical": 4}"#,
    ),
    (
        "revenue",
        r#"{"title": "Revenue", "aggregation": "sum", "filter": {"event": "order_placed"}, "direction": "higher_is_better", "target": 100, "warning": 80, "critical": 50}"#,
    ),
    (
        "basket",
        r#"{"title": "Average basket", "aggregation": "avg", "filter": {"event": "order_placed"}, "direction": "higher_is_better", "target": 15, "warning": 12, "critical": 10}"#,
    ),
    (
        "buyers",
        r#"{"title": "Buyers", "aggregation": "unique_users", "filter": {"event": "order_placed"}, "direction": "higher_is_better", "target": 3, "warning": 2, "critical": 1}"#,
    ),
    (
        "conversion",
        r#"{"title": "Conversion", "aggregation": "ratio", "numerator": {"event": "order_placed"}, "denominator": {"event": "checkout_started"}, "scale": 100, "direction": "higher_is_better", "target": 60, "warning": 50, "critical": 40}"#,
    ),
    (
        "search_p50",
        r#"{"title": "Median search latency", "aggregation": "percentile", "p": 0.5, "property": "latency_ms", "filter": {"event": "search_performed"}, "direction": "lower_is_better", "target": 130, "warning": 150, "critical": 200}"#,
    ),
];

/// What each KPI should be on each Paris day, computed here from the events.
/// A day without any event is `no_data` (no value) for every KPI. Answers are
/// rounded: sums and averages to 2 decimals (the default), the others to 6.
fn expected(events: &[Event], kpi: &str, date: NaiveDate, tz: Tz) -> Option<f64> {
    let mut seen = HashSet::new();
    let day: Vec<&Event> = events
        .iter()
        .filter(|e| seen.insert(e.id.clone()))
        .filter(|e| tz.timestamp_millis_opt(e.ts_ms).unwrap().date_naive() == date)
        .collect();
    if day.is_empty() {
        return None;
    }
    let decimals = if ["revenue", "basket"].contains(&kpi) {
        2
    } else {
        6
    };
    let factor = 10f64.powi(decimals);
    expected_unrounded(&day, kpi).map(|v| (v * factor).round() / factor)
}

/// The percentile rule, written here from its definition (numpy's `linear`):
/// h = (n - 1) p, between the values at ranks floor(h) and floor(h) + 1.
fn linear_percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (
        h.floor() as usize,
        (h.floor() as usize + 1).min(sorted.len() - 1),
    );
    Some(sorted[lo] + (h - h.floor()) * (sorted[hi] - sorted[lo]))
}

fn expected_unrounded(day: &[&Event], kpi: &str) -> Option<f64> {
    let of = |name: &str| {
        day.iter()
            .filter(move |e| e.name == name)
            .copied()
            .collect::<Vec<_>>()
    };
    let orders = of("order_placed");
    let values: Vec<f64> = orders.iter().filter_map(|e| e.value).collect();
    match kpi {
        "orders" => Some(orders.len() as f64),
        "revenue" => Some(values.iter().sum()),
        "basket" => (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        "buyers" => Some(orders.iter().map(|e| &e.user).collect::<HashSet<_>>().len() as f64),
        "conversion" => {
            let checkouts = of("checkout_started").len();
            (checkouts > 0).then(|| orders.len() as f64 / checkouts as f64 * 100.0)
        }
        _ => {
            let mut latencies: Vec<f64> = of("search_performed")
                .iter()
                .filter_map(|e| e.latency)
                .collect();
            latencies.sort_by(f64::total_cmp);
            linear_percentile(&latencies, 0.5)
        }
    }
}

async fn define_all(app: &TestApp) {
    for (id, body) in KPIS {
        let body: Value = serde_json::from_str(body).unwrap();
        let (status, answer) = app.put_json(&format!("/v1/kpis/{id}"), &body).await;
        assert_eq!(status, 200, "{id}: {answer}");
    }
}

/// One KPI's entry of a board answer.
fn board_kpi(board: &Value, id: &str) -> Value {
    board["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no KPI {id} on {board}"))
        .clone()
}

/// Checks every KPI on every D+N day of the launch against the events; returns the days.
async fn check_days(app: &TestApp, launch_id: &str, events: &[Event]) -> Vec<Value> {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let (status, days) = app
        .get_json_as(&format!("/v1/launches/{launch_id}/days"), READ_KEY)
        .await;
    assert_eq!(status, 200, "{days}");
    let all = days["days"].as_array().unwrap().clone();
    // The baseline days D-4..D-1 first, marked, then the window.
    let baseline: Vec<&Value> = all.iter().filter(|d| d["baseline"] == true).collect();
    assert_eq!(baseline.len(), 4, "{days}");
    for (i, day) in baseline.iter().enumerate() {
        assert_eq!(day["day"], format!("D-{}", 4 - i));
        let date = NaiveDate::parse_from_str(day["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(
            date,
            NaiveDate::from_ymd_opt(2026, 11, 12 + i as u32).unwrap()
        );
        for (id, _) in KPIS {
            let got = day["kpis"][id]["value"].as_f64();
            assert_eq!(got, expected(events, id, date, paris), "{id} on {date}");
        }
    }
    let days: Vec<Value> = all
        .iter()
        .filter(|d| d["baseline"] == false)
        .cloned()
        .collect();
    assert_eq!(days.len(), 6, "D+0..D+5");
    for (n, day) in days.iter().enumerate() {
        assert_eq!(day["day"], format!("D+{n}"));
        let date = NaiveDate::parse_from_str(day["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(
            date,
            NaiveDate::from_ymd_opt(2026, 11, 16 + n as u32).unwrap()
        );
        for (id, _) in KPIS {
            let got = day["kpis"][id]["value"].as_f64();
            let want = expected(events, id, date, paris);
            // Rounded answers: exactly the numbers computed here.
            assert_eq!(got, want, "{id} on {date}");
        }
    }
    days
}

async fn declare_launch(app: &TestApp) -> String {
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 5, "baseline_days": 4,
                    "stages": [{"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"}]}),
        )
        .await;
    assert_eq!(status, 201, "{launch}");
    launch["id"].as_str().unwrap().to_owned()
}

fn kpi_definitions() -> Vec<Kpi> {
    KPIS.iter()
        .map(|(id, body)| {
            let mut value: Value = serde_json::from_str(body).unwrap();
            value["id"] = (*id).into();
            serde_json::from_value(value).unwrap()
        })
        .collect()
}

/// Waits until the rollup worker has a trusted rollup of every hour of the events
/// for every KPI.
async fn wait_for_rollups(app: &TestApp, events: &[Event]) {
    let from = (events.iter().map(|e| e.ts_ms).min().unwrap() / 3_600_000 * 3600) as u64;
    let to = (events.iter().map(|e| e.ts_ms).max().unwrap() / 3_600_000 * 3600 + 3600) as u64;
    rolled_up(app, &kpi_definitions(), from, to).await;
}

/// Waits (at most 60 s) until every hour of `[from, to)` of each of `kpis` has
/// a trusted rollup.
async fn rolled_up(app: &TestApp, kpis: &[Kpi], from: u64, to: u64) {
    eventually(
        "every KPI hour rolled up",
        Duration::from_secs(60),
        || async {
            for kpi in kpis {
                let stale = rollup::stale_hours(&app.db, kpi, from, to).await.unwrap();
                if !stale.is_empty() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

#[tokio::test]
async fn rollups_give_the_same_answers_and_late_events_count_at_once() {
    let app = spawn_app_with(|s| s.kpis.rollups.interval_secs = 1).await;
    define_all(&app).await;
    let events = generate();
    let (first, late) = events.split_at(events.len() - 20);
    send_events(&app, first).await;
    send_events(&app, first).await;
    let launch_id = declare_launch(&app).await;
    wait_for_rollups(&app, first).await;
    check_days(&app, &launch_id, first).await;
    // Again, with the closed days' values now cached.
    check_days(&app, &launch_id, first).await;

    // Answers come from the rollups: a rollup row written by hand shows.
    let orders = kpi_definitions().remove(0);
    let late_hour = (late[0].ts_ms / 3_600_000 * 3600) as u32;
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    let mut insert = app
        .db
        .insert::<rollup::RollupRow>("kpi_rollups")
        .await
        .unwrap();
    insert
        .write(&rollup::RollupRow {
            measure: rollup::measure_key(&orders),
            hour: late_hour,
            computed_ms: now_ms,
            events: 1000,
            denominator: 0,
            value_sum: 0.0,
            value_count: 0,
            users: vec![],
            values: vec![],
        })
        .await
        .unwrap();
    insert.end().await.unwrap();
    let hour = chrono::DateTime::from_timestamp(i64::from(late_hour), 0).unwrap();
    let (status, series) = app
        .get_json_as(
            &format!(
                "/v1/kpis/orders/series?from={}&to={}&grain=hour&tz=UTC",
                hour.format("%Y-%m-%dT%H:%M:%SZ"),
                (hour + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
            ),
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["points"][0]["value"], 1000.0, "{series}");

    // Late events (days after their time) and a retried batch: exact at once,
    // without waiting for the worker, and after it has caught up.
    send_events(&app, late).await;
    send_events(&app, first).await;
    check_days(&app, &launch_id, &events).await;
    wait_for_rollups(&app, &events).await;
    check_days(&app, &launch_id, &events).await;
}

#[tokio::test]
async fn every_aggregation_matches_the_events_day_by_day_in_the_launch_time_zone() {
    let app = spawn_app().await;
    define_all(&app).await;
    let events = generate();
    // Sent twice: a client retrying its batches must not change any number.
    let (first, late) = events.split_at(events.len() - 20);
    send_events(&app, first).await;
    send_events(&app, first).await;
    // Late events: the last ones arrive after the others, days later in event time order.
    send_events(&app, late).await;

    let launch_id = declare_launch(&app).await;

    let paris: Tz = "Europe/Paris".parse().unwrap();
    let days = check_days(&app, &launch_id, &events).await;
    // 2026-11-18 (UTC) had no events; in Paris only what fell after midnight of the 17th shows.
    assert_eq!(
        days[2]["kpis"]["basket"]["status"],
        if expected(
            &events,
            "basket",
            NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
            paris
        )
        .is_none()
        {
            "no_data"
        } else {
            days[2]["kpis"]["basket"]["status"].as_str().unwrap()
        }
    );

    // Statuses follow the thresholds.
    for day in days {
        let orders = day["kpis"]["orders"]["value"].as_f64().unwrap();
        let status = day["kpis"]["orders"]["status"].as_str().unwrap();
        let want = if orders < 4.0 {
            "critical"
        } else if orders < 6.0 {
            "warning"
        } else {
            "ok"
        };
        assert_eq!(status, want, "{day}");
    }
}

#[tokio::test]
async fn series_fill_gaps_and_the_board_compares_with_the_baseline() {
    let app = spawn_app().await;
    define_all(&app).await;
    let events = generate();
    send_events(&app, &events).await;

    // Hourly orders over 2026-11-18 (UTC), a day without events: 24 zeros.
    let (status, series) = app.get_json_as("/v1/kpis/orders/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=hour&tz=UTC", READ_KEY).await;
    assert_eq!(status, 200, "{series}");
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert!(points.iter().all(|p| p["value"] == 0.0), "{series}");
    // Averages have no value where nothing happened, rather than a zero.
    let (status, basket) = app.get_json_as("/v1/kpis/basket/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=day&tz=UTC", READ_KEY).await;
    assert_eq!(status, 200, "{basket}");
    assert_eq!(basket["points"][0]["value"], Value::Null);
    assert_eq!(basket["points"][0]["status"], "no_data");
    // Daily series in Paris add up to the events of those Paris days.
    let (status, daily) = app.get_json_as("/v1/kpis/orders/series?from=2026-11-12T00:00:00%2B01:00&to=2026-11-22T00:00:00%2B01:00&grain=day&tz=Europe/Paris", READ_KEY).await;
    assert_eq!(status, 200, "{daily}");
    let total: f64 = daily["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let want: f64 = (12..22)
        .map(|d| {
            expected(
                &events,
                "orders",
                NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
                paris,
            )
            .unwrap()
        })
        .sum();
    assert_eq!(total, want);

    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00", "tz": "Europe/Paris"}),
        )
        .await;
    assert_eq!(status, 201, "{launch}");
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["tz"], "Europe/Paris");
    let kpis = board["kpis"].as_array().unwrap();
    assert_eq!(kpis.len(), KPIS.len());
    let orders = kpis.iter().find(|k| k["id"] == "orders").unwrap();
    // The window (D0..D+14) has ended: the board shows its last day, whole.
    assert_eq!(board["date"], "2026-11-30");
    assert_eq!(board["comparison"], "complete_day");
    assert_eq!(board["in_window"], false);
    // Baseline: the 7 days before D0 (2026-11-09..15), averaged over the days
    // with data (the events start on the 12th: days without any event are no data).
    let known: Vec<f64> = (9..16)
        .filter_map(|d| {
            expected(
                &events,
                "orders",
                NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
                paris,
            )
        })
        .collect();
    assert_eq!(known.len(), 4);
    let baseline = known.iter().sum::<f64>() / known.len() as f64;
    assert!(
        (orders["baseline"].as_f64().unwrap() - baseline).abs() < 1e-6,
        "{orders}"
    );
    assert_eq!(orders["target"], 8.0);
    // 2026-11-30 had no events at all: no data, not a critical 0.
    assert_eq!(orders["value"], Value::Null, "{orders}");
    assert_eq!(orders["status"], "no_data");
    // A day asked for: 2026-11-20, whole, against the baseline.
    let (status, board) = app.get_json_as("/v1/kpis?date=2026-11-20", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    let orders = board_kpi(&board, "orders");
    let want = expected(
        &events,
        "orders",
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        paris,
    );
    assert_eq!(orders["value"].as_f64(), want, "{orders}");
    assert_eq!(board["comparison"], "complete_day");
    let delta = (want.unwrap() - orders["baseline"].as_f64().unwrap())
        / orders["baseline"].as_f64().unwrap()
        * 100.0;
    assert!(
        (orders["delta_vs_baseline_pct"].as_f64().unwrap() - delta).abs() < 0.01,
        "{orders}"
    );
    for bad in [
        "/v1/kpis?date=2026-13-01",
        "/v1/kpis?date=yesterday",
        "/v1/kpis?date=2099-01-01",
    ] {
        let (status, answer) = app.get_json_as(bad, READ_KEY).await;
        assert_eq!(
            (status.as_u16(), &answer["error"], &answer["field"]),
            (400, &json!("invalid_request"), &json!("date")),
            "{bad}: {answer}"
        );
    }
    let (status, unknown) = app.get_json_as("/v1/kpis?day=2026-11-20", READ_KEY).await;
    assert_eq!(status, 400, "{unknown}");
    assert_eq!(unknown["error"], "invalid_request");
}

#[tokio::test]
async fn definitions_are_checked_and_every_version_is_kept() {
    let app = spawn_app().await;
    let put = |body: &'static str| {
        let app = &app;
        async move {
            let body: Value = serde_json::from_str(body).unwrap();
            let (status, answer) = app.put_json("/v1/kpis/leads", &body).await;
            (status.as_u16(), answer)
        }
    };
    let (status, answer) = put(r#"{"title": "Leads", "aggregation": "count", "filter": {"event": "lead"}, "direction": "higher_is_better", "target": 100, "warning": 90, "critical": 70}"#).await;
    assert_eq!((status, answer["version"].as_u64()), (200, Some(1)));
    let (status, answer) = put(r#"{"title": "Leads", "aggregation": "count", "filter": {"event": "lead"}, "direction": "higher_is_better", "target": 120, "warning": 90, "critical": 70}"#).await;
    assert_eq!((status, answer["version"].as_u64()), (200, Some(2)));
    let (status, answer) = put(r#"{"title": "Leads", "aggregation": "count", "direction": "higher_is_better", "target": 100, "warning": 110, "critical": 70}"#).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("warning")),
        "{answer}"
    );
    let (status, answer) = put(r#"{"title": "Leads", "aggregation": "median", "direction": "higher_is_better", "target": 1, "warning": 1, "critical": 1}"#).await;
    assert_eq!(status, 400, "{answer}");
    let (status, shown) = app.get_json_as("/v1/kpis/leads", READ_KEY).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["definition"]["target"], 120.0);
    assert_eq!(shown["history"].as_array().unwrap().len(), 2);
    assert_eq!(shown["history"][0]["definition"]["target"], 100.0);

    let (status, forbidden) = app
        .json(Method::PUT, "/v1/kpis/leads", READ_KEY, Some(&json!({})))
        .await;
    assert_eq!(status, 403, "{forbidden}");
    assert_eq!(forbidden["error"], "forbidden");
    let (status, bad_tz) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "x", "release": "1", "d0": "2026-11-16T09:00:00Z", "tz": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(status, 400, "{bad_tz}");
    assert_eq!(bad_tz["field"], "tz");
    // A missing member is named; a body that is not JSON says so.
    let (status, no_d0) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "x", "release": "1", "tz": "UTC"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &no_d0["error"], &no_d0["field"]),
        (400, &json!("invalid_request"), &json!("d0")),
        "{no_d0}"
    );
    let not_json = app
        .post("/v1/launches", ADMIN_KEY, "application/json", "{name:")
        .await;
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.json::<Value>().await.unwrap()["error"],
        "invalid_json"
    );
    let (status, unknown) = app.get_json_as("/v1/kpis/nothing", READ_KEY).await;
    assert_eq!(
        (status.as_u16(), &unknown["error"]),
        (404, &json!("not_found")),
        "{unknown}"
    );
    let (status, bad_grain) = app
        .get_json_as("/v1/kpis/leads/series?grain=minute", READ_KEY)
        .await;
    assert_eq!(status, 400, "{bad_grain}");
    assert_eq!(bad_grain["error"], "invalid_request");
}

#[tokio::test]
async fn a_bad_kpi_file_stops_start_up_naming_file_kpi_and_field() {
    let (mut settings, dir) = test_settings().await;
    let file = dir.path().join("kpis.yaml");
    std::fs::write(&file, "kpis:\n  - {id: conv, title: Conversion, aggregation: ratio, numerator: {event: a}, direction: higher_is_better, target: 3, warning: 2, critical: 1}\n").unwrap();
    settings.kpis.file = Some(file.clone());
    let error = match hypercare::startup::Application::build(settings).await {
        Ok(_) => panic!("a bad KPI file must stop start-up"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert!(error.contains("KPI `conv`: `numerator`"), "{error}");

    // The example file is valid and its KPIs appear on the board.
    let (mut settings, _dir) = test_settings().await;
    settings.kpis.file =
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/kpis.example.yaml").into());
    let app = hypercare_tests::spawn_app_with(|s| s.kpis = settings.kpis.clone()).await;
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    let ids: BTreeMap<String, Value> = board["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap().to_owned(), k["status"].clone()))
        .collect();
    assert!(
        ids.contains_key("payment_success_rate") && ids.contains_key("search_latency_p95"),
        "{board}"
    );
    assert_eq!(ids["search_latency_p95"], "no_data");
}

#[tokio::test]
async fn recent_hours_are_read_from_the_hour_sorted_copy_exactly() {
    let app = spawn_app().await;
    define_all(&app).await;
    // The last three hours, an order every 7 minutes, each sent twice.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events: Vec<Event> = (0..25)
        .map(|i| Event {
            id: format!("00000000-0000-4000-9000-{i:012}"),
            name: "order_placed",
            ts_ms: now_ms - 3 * 3_600_000 + i * 7 * 60_000,
            user: format!("u{}", i % 4),
            value: Some(10.0 + i as f64),
            latency: None,
        })
        .collect();
    send_events(&app, &events).await;
    send_events(&app, &events).await;
    // The materialized view keeps the copy in step with `events`.
    assert_eq!(app.sql_u64("SELECT count() FROM events_recent").await, 50);

    let hour = |ms: i64| ms / 3_600_000 * 3_600_000;
    let from = chrono::DateTime::from_timestamp_millis(hour(now_ms) - 3 * 3_600_000).unwrap();
    let to = chrono::DateTime::from_timestamp_millis(hour(now_ms) + 3_600_000).unwrap();
    for kpi in ["orders", "revenue", "buyers"] {
        let (status, series) = app
            .get_json_as(
                &format!(
                    "/v1/kpis/{kpi}/series?grain=hour&tz=UTC&from={}&to={}",
                    from.format("%Y-%m-%dT%H:%M:%SZ"),
                    to.format("%Y-%m-%dT%H:%M:%SZ")
                ),
                READ_KEY,
            )
            .await;
        assert_eq!(status, 200, "{series}");
        let points = series["points"].as_array().unwrap();
        assert_eq!(points.len(), 4, "{series}");
        for (i, point) in points.iter().enumerate() {
            let start = hour(now_ms) - 3 * 3_600_000 + i as i64 * 3_600_000;
            let in_hour: Vec<&Event> = events
                .iter()
                .filter(|e| e.ts_ms >= start && e.ts_ms < start + 3_600_000)
                .collect();
            let want = match kpi {
                "orders" => in_hour.len() as f64,
                "revenue" => in_hour.iter().filter_map(|e| e.value).sum(),
                _ => in_hour
                    .iter()
                    .map(|e| &e.user)
                    .collect::<HashSet<_>>()
                    .len() as f64,
            };
            assert_eq!(
                point["value"].as_f64(),
                Some(want),
                "{kpi} hour {i}: {series}"
            );
        }
    }
}

/// Events of one name, with optional value and properties.
fn event(id: u64, name: &str, ts_ms: i64, value: Option<f64>, properties: Value) -> Value {
    let mut record = json!({"event": name, "event_id": format!("00000000-0000-4000-a000-{id:012}"),
                            "timestamp": ts_ms, "user_id": format!("u{}", id % 5)});
    if let Some(v) = value {
        record["value"] = v.into();
    }
    if properties.is_object() {
        record["properties"] = properties;
    }
    record
}

async fn send_records(app: &TestApp, records: &[Value]) {
    for chunk in records.chunks(1000) {
        let body = chunk
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let response = app
            .post("/v1/events", INGEST_KEY, "application/x-ndjson", body)
            .await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    }
}

fn madrid() -> Tz {
    "Europe/Madrid".parse().unwrap()
}

/// Epoch ms of a local time in Madrid.
fn at_madrid(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    madrid()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

async fn declare_madrid_launch(app: &TestApp) {
    let (status, launch) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Madrid", "release": "3.0", "d0": "2026-11-16T09:00:00+01:00",
                    "tz": "Europe/Madrid", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert_eq!(status, 201, "{launch}");
}

/// Leads over 2026-11-09..21 in Madrid: five at :10 of every local hour, plus
/// `d` more at 15:20 on day `d` of November (so whole days differ from their
/// mornings); on the 21st only two leads by 10:30 (a real drop); five leads at
/// 10:45 on the 20th, after the board's "now".
fn leads() -> Vec<(i64, u32)> {
    let mut out = Vec::new();
    for day in 9..=21u32 {
        if day == 21 {
            out.push((at_madrid(2026, 11, day, 3, 10), day));
            out.push((at_madrid(2026, 11, day, 8, 10), day));
            continue;
        }
        for hour in 0..24 {
            for _ in 0..5 {
                out.push((at_madrid(2026, 11, day, hour, 10), day));
            }
        }
        for _ in 0..day {
            out.push((at_madrid(2026, 11, day, 15, 20), day));
        }
        if day == 20 {
            for _ in 0..5 {
                out.push((at_madrid(2026, 11, day, 10, 45), day));
            }
        }
    }
    out
}

/// KPI rules as shipped in alert-rules/launch.yaml, with `for: 0s` so that a
/// condition that holds shows at once, plus the same baseline rule evaluated
/// outside the window.
fn shipped_kpi_rules() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let kpis: Vec<String> =
        hypercare_kpis::definition::load_file(&root.join("config/kpis.example.yaml"))
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
    let shipped = hypercare_alerts::check::load(&[root.join("alert-rules")], Some(&kpis)).unwrap();
    let mut yaml = String::from("groups:\n  - name: shipped-kpi-rules\n    rules:\n");
    let mut n = 0;
    for rule in shipped
        .iter()
        .filter(|r| matches!(r.condition.source, hypercare_alerts::rule::Source::Kpi(_)))
    {
        n += 1;
        let condition = serde_json::to_string(&rule.condition).unwrap();
        yaml.push_str(&format!(
            "      - {{name: {}, tier: {:?}, for: 0s, rollback_trigger: {}, annotations: {{summary: s}}, condition: {condition}}}\n",
            rule.name, rule.tier, rule.rollback_trigger
        ));
    }
    assert!(n >= 4, "the shipped KPI rules: {yaml}");
    let mut outside = shipped
        .iter()
        .find(|r| r.name == "leads_below_baseline")
        .unwrap()
        .condition
        .clone();
    outside.outside_window = true;
    yaml.push_str(&format!(
        "      - {{name: leads_below_baseline_any_day, tier: P1, for: 0s, annotations: {{summary: s}}, condition: {}}}\n",
        serde_json::to_string(&outside).unwrap()
    ));
    yaml
}

async fn open_alerts(app: &TestApp) -> Vec<(String, String)> {
    let (status, answer) = app.get_json_as("/v1/alerts", READ_KEY).await;
    assert_eq!(status, 200, "{answer}");
    answer["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Lets the rules be evaluated about twenty times (every 100 ms, each reading
/// the board), to show that none fires. An absence has no event to wait for:
/// this is the one fixed wait left, until the alert engine tells how many
/// evaluations it has made.
async fn a_few_ticks() {
    tokio::time::sleep(Duration::from_millis(2000)).await;
}

/// Polls the open alerts until `done` holds (at most 20 s).
async fn wait_for_alerts(
    app: &TestApp,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    eventually("the expected alerts", Duration::from_secs(20), || async {
        let open = open_alerts(app).await;
        done(&open).then_some(open)
    })
    .await
}

#[tokio::test]
async fn the_morning_board_compares_with_the_baseline_up_to_the_same_hour_and_rules_follow() {
    // Arrange: the example KPIs, the shipped KPI rules, a launch in Madrid, and
    // a clock at 10:30 on D+4.
    let clock = ManualClock::starting_at(at_madrid(2026, 11, 20, 10, 30) as u64);
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("kpi.yaml"), shipped_kpi_rules()).unwrap();
    let rules_dir = rules.path().to_owned();
    let app = spawn_app_on(clock.clone(), move |s| {
        s.kpis.file =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/kpis.example.yaml").into());
        s.alerts.rules = vec![rules_dir];
        s.alerts.interval = std::time::Duration::from_millis(100);
    })
    .await;
    let leads = leads();
    let records: Vec<Value> = leads
        .iter()
        .enumerate()
        .map(|(i, (ts, _))| event(i as u64, "lead_created", *ts, None, Value::Null))
        .collect();
    send_records(&app, &records).await;
    declare_madrid_launch(&app).await;

    // Act: the board at 10:30.
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");

    // Assert: today up to the last whole hour (10:00) against each baseline day
    // up to 10:00, computed here.
    let before = |day: u32, cut: (u32, u32)| {
        leads
            .iter()
            .filter(|(ts, d)| *d == day && *ts < at_madrid(2026, 11, day, cut.0, cut.1))
            .count() as f64
    };
    let whole = |day: u32| leads.iter().filter(|(_, d)| *d == day).count() as f64;
    let pace_baseline = (9..=15).map(|d| before(d, (10, 0))).sum::<f64>() / 7.0;
    let whole_baseline = (9..=15).map(whole).sum::<f64>() / 7.0;
    assert_eq!(board["date"], "2026-11-20");
    assert_eq!(board["comparison"], "pace_to_10:00");
    assert_eq!(board["in_window"], true);
    let leads_now = board_kpi(&board, "leads_per_day");
    assert_eq!(leads_now["comparison"], "pace_to_10:00");
    assert_eq!(
        leads_now["value"].as_f64(),
        Some(before(20, (10, 0))),
        "{leads_now}"
    );
    assert_eq!(
        leads_now["value"], 50.0,
        "the leads of 10:10 and 10:45 are in an hour not over yet"
    );
    assert!((leads_now["baseline"].as_f64().unwrap() - pace_baseline).abs() < 1e-6);
    assert_eq!(leads_now["delta_vs_baseline_pct"], 0.0, "{leads_now}");
    // Yesterday up to 10:00 too: the same count, so flat.
    assert_eq!(leads_now["trend"], "flat");
    // Levels scaled to the share of a day the baseline had made by 10:30.
    let share = pace_baseline / whole_baseline;
    assert!((leads_now["pace"]["share_of_day"].as_f64().unwrap() - share).abs() < 1e-4);
    assert!((leads_now["pace"]["critical"].as_f64().unwrap() - 70.0 * share).abs() < 0.01);
    // 50 leads against the whole day's critical level (70) would be critical;
    // at pace (target 100 x share) they are on target.
    assert!(50.0 < 70.0 && 50.0 >= 100.0 * share);
    assert_eq!(leads_now["status"], "ok", "{leads_now}");
    assert!(whole_baseline > 2.0 * pace_baseline);

    // The launch's days: D-7..D-1 marked baseline, today as the board judges it
    // (not complete), the days to come without data.
    let (status, days) = app.get_json_as("/v1/launches/current/days", READ_KEY).await;
    assert_eq!(status, 200, "{days}");
    let days = days["days"].as_array().unwrap();
    assert_eq!(days.len(), 7 + 15);
    assert_eq!(
        (days[0]["day"].as_str(), days[0]["baseline"].as_bool()),
        (Some("D-7"), Some(true))
    );
    assert_eq!(
        days[0]["kpis"]["leads_per_day"]["value"].as_f64(),
        Some(whole(9))
    );
    let today = days.iter().find(|d| d["date"] == "2026-11-20").unwrap();
    assert_eq!(
        (today["day"].as_str(), today["complete"].as_bool()),
        (Some("D+4"), Some(false))
    );
    assert_eq!(today["kpis"]["leads_per_day"]["value"], 50.0);
    assert_eq!(
        today["kpis"]["leads_per_day"]["status"],
        leads_now["status"]
    );
    let yesterday = days.iter().find(|d| d["date"] == "2026-11-19").unwrap();
    assert_eq!(yesterday["complete"], true);
    assert_eq!(
        yesterday["kpis"]["leads_per_day"]["value"].as_f64(),
        Some(whole(19))
    );
    let to_come = days.iter().find(|d| d["date"] == "2026-11-25").unwrap();
    assert_eq!(to_come["kpis"]["leads_per_day"]["status"], "no_data");
    assert_eq!(to_come["kpis"]["leads_per_day"]["value"], Value::Null);

    // The shipped rules hold nothing on an ordinary morning.
    a_few_ticks().await;
    let open = open_alerts(&app).await;
    assert!(open.is_empty(), "{open:?}");

    // A real drop: two leads by 10:00 on the 21st, -96 % against the baseline
    // at the same hour. The shipped rollback rule fires.
    clock.set_ms(at_madrid(2026, 11, 21, 10, 30) as u64);
    let firing = ("leads_below_baseline".to_owned(), "firing".to_owned());
    let open = wait_for_alerts(&app, |open| open.contains(&firing)).await;
    assert!(
        open.contains(&("leads_below_baseline".to_owned(), "firing".to_owned())),
        "{open:?}"
    );
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    let leads_now = board_kpi(&board, "leads_per_day");
    let drop = (before(21, (10, 0)) - pace_baseline) / pace_baseline * 100.0;
    assert!((leads_now["delta_vs_baseline_pct"].as_f64().unwrap() - drop).abs() < 0.01);

    // Two weeks after the window, no event today: the board shows the window's
    // last day, whole; KPI rules stop, and no rule fires on a day without data.
    clock.set_ms(at_madrid(2026, 12, 14, 10, 0) as u64);
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["date"], "2026-11-30");
    assert_eq!(board["comparison"], "complete_day");
    assert_eq!(board["in_window"], false);
    let last_day = board_kpi(&board, "leads_per_day");
    // No event at all on 2026-11-30: no data, not "0 leads, critical, -100 %".
    assert_eq!(last_day["status"], "no_data", "{last_day}");
    assert_eq!(last_day["value"], Value::Null);
    assert_eq!(last_day["delta_vs_baseline_pct"], Value::Null);
    // The firing alert resolves; the rule evaluated outside the window finds
    // no data today and holds nothing either.
    let open = wait_for_alerts(&app, |open| open.is_empty()).await;
    assert!(open.is_empty(), "after the window: {open:?}");
    a_few_ticks().await;
    let open = open_alerts(&app).await;
    assert!(open.is_empty(), "after the window: {open:?}");
}

#[tokio::test]
async fn percentiles_follow_the_linear_rule_on_small_samples_with_and_without_rollups() {
    let app = spawn_app_with(|s| s.kpis.rollups.interval_secs = 1).await;
    for (id, p) in [("p95", 0.95), ("p50", 0.5), ("p10", 0.1)] {
        let body = json!({"title": id, "aggregation": "percentile", "p": p, "property": "latency_ms",
                          "filter": {"event": "search_performed"}, "direction": "lower_is_better",
                          "target": 10, "warning": 15, "critical": 20});
        let (status, answer) = app.put_json(&format!("/v1/kpis/{id}"), &body).await;
        assert_eq!(status, 200, "{answer}");
    }
    // 1..20 ms on 2026-11-18 (UTC), in shuffled order, sent twice; 7 values on the 19th.
    let day = chrono::Utc
        .with_ymd_and_hms(2026, 11, 18, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let mut records = Vec::new();
    for (i, ms) in [
        7, 3, 20, 1, 15, 9, 12, 2, 18, 5, 11, 4, 19, 6, 14, 8, 17, 10, 16, 13,
    ]
    .iter()
    .enumerate()
    {
        records.push(event(
            i as u64,
            "search_performed",
            day + i as i64 * 3_000_000,
            None,
            json!({"latency_ms": ms}),
        ));
    }
    let small = [120.0, 80.0, 100.0, 95.0, 300.0, 101.0, 99.0];
    for (i, ms) in small.iter().enumerate() {
        records.push(event(
            100 + i as u64,
            "search_performed",
            day + 86_400_000 + i as i64 * 60_000,
            None,
            json!({"latency_ms": ms}),
        ));
    }
    send_records(&app, &records).await;
    send_records(&app, &records).await;

    let mut sorted_small = small.to_vec();
    sorted_small.sort_by(f64::total_cmp);
    let ms: Vec<f64> = (1..=20).map(f64::from).collect();
    let round6 = |x: f64| (x * 1e6).round() / 1e6;
    let check = |series: Value, p: f64| {
        let points = series["points"].as_array().unwrap().clone();
        assert_eq!(
            points[0]["value"].as_f64(),
            linear_percentile(&ms, p).map(round6),
            "{series}"
        );
        assert_eq!(
            points[1]["value"].as_f64(),
            linear_percentile(&sorted_small, p).map(round6),
            "{series}"
        );
    };
    let path = |id: &str| {
        format!(
            "/v1/kpis/{id}/series?from=2026-11-18T00:00:00Z&to=2026-11-20T00:00:00Z&grain=day&tz=UTC"
        )
    };
    // The examples of docs/kpis.md: p95 of 1..20 ms is 19.05 (nearest rank: 19,
    // quantileExact: 20), the median 10.5, p10 2.9.
    for (id, want) in [("p95", 19.05), ("p50", 10.5), ("p10", 2.9)] {
        let (status, series) = app.get_json_as(&path(id), READ_KEY).await;
        assert_eq!(
            (status.as_u16(), &series["points"][0]["value"]),
            (200, &json!(want)),
            "{series}"
        );
    }
    for (id, p) in [("p95", 0.95), ("p50", 0.5), ("p10", 0.1)] {
        check(app.get_json_as(&path(id), READ_KEY).await.1, p);
    }
    // The same from the hourly rollups (values of many hours merged).
    let p95_kpi: Kpi = serde_json::from_value(json!({"id": "p95", "title": "p95", "aggregation": "percentile", "p": 0.95, "property": "latency_ms",
        "filter": {"event": "search_performed"}, "direction": "lower_is_better", "target": 10, "warning": 15, "critical": 20})).unwrap();
    let from = (day / 1000) as u64;
    rolled_up(&app, &[p95_kpi], from, from + 2 * 86_400).await;
    for (id, p) in [("p95", 0.95), ("p50", 0.5), ("p10", 0.1)] {
        check(app.get_json_as(&path(id), READ_KEY).await.1, p);
    }
}

#[tokio::test]
async fn money_sums_are_exact_and_identical_in_series_days_board_and_rollups() {
    let clock = ManualClock::starting_at(at_madrid(2026, 11, 25, 12, 0) as u64);
    let app = spawn_app_on(clock, |s| s.kpis.rollups.interval_secs = 1).await;
    let (status, answer) = app
        .put_json(
            "/v1/kpis/revenue",
            &json!({"title": "Revenue", "unit": "EUR", "aggregation": "sum", "filter": {"event": "order_placed"},
                    "direction": "higher_is_better", "target": 1000, "warning": 800, "critical": 500}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // Amounts whose float sums change with the order of addition (0.1 + 0.2 ...).
    let amounts = [
        0.1, 0.2, 0.3, 19.99, 70_000.7, 0.07, 1234.56, 0.01, 99.99, 5.05, 0.15, 3.3,
    ];
    let mut records = Vec::new();
    let mut cents: BTreeMap<u32, i64> = BTreeMap::new();
    let mut n = 0;
    for day in 14..=24u32 {
        for (i, amount) in amounts.iter().enumerate() {
            let hour = (i as u32 * 2 + day) % 24;
            records.push(event(
                n,
                "order_placed",
                at_madrid(2026, 11, day, hour, 5),
                Some(*amount),
                Value::Null,
            ));
            n += 1;
            // Integer cents, computed here.
            *cents.entry(day).or_default() += (amount * 100.0_f64).round() as i64;
        }
    }
    send_records(&app, &records).await;
    declare_madrid_launch(&app).await;
    let euros = |c: i64| c as f64 / 100.0;

    let read_all = || async {
        let (status, days) = app.get_json_as("/v1/launches/current/days", READ_KEY).await;
        assert_eq!(status, 200, "{days}");
        let (status, series) = app.get_json_as("/v1/kpis/revenue/series?from=2026-11-09T00:00:00%2B01:00&to=2026-11-25T00:00:00%2B01:00&grain=day&tz=Europe/Madrid", READ_KEY).await;
        assert_eq!(status, 200, "{series}");
        let mut out = BTreeMap::new();
        for day in 14..=24u32 {
            let date = format!("2026-11-{day}");
            let from_days = days["days"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["date"] == date.as_str())
                .unwrap()["kpis"]["revenue"]["value"]
                .clone();
            let from_series = series["points"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["start"].as_str().unwrap().starts_with(&date))
                .unwrap()["value"]
                .clone();
            let (status, board) = app
                .get_json_as(&format!("/v1/kpis?date={date}"), READ_KEY)
                .await;
            assert_eq!(status, 200, "{board}");
            let from_board = board["kpis"][0]["value"].clone();
            // The JSON numbers themselves, not close floats.
            assert_eq!(from_days.to_string(), from_series.to_string(), "{date}");
            assert_eq!(from_days.to_string(), from_board.to_string(), "{date}");
            assert_eq!(from_days.as_f64(), Some(euros(cents[&day])), "{date}");
            out.insert(day, from_days.to_string());
        }
        // The baseline: the mean of the baseline days, to the cent.
        let (status, board) = app.get_json_as("/v1/kpis?date=2026-11-20", READ_KEY).await;
        assert_eq!(status, 200, "{board}");
        let want = (14..=15).map(|d| cents[&d]).sum::<i64>() as f64 / 2.0 / 100.0;
        assert_eq!(
            board["kpis"][0]["baseline"].as_f64(),
            Some((want * 100.0).round() / 100.0)
        );
        out
    };
    let before = read_all().await;
    assert_eq!(before[&14], "71364.42", "{before:?}");
    // After the rollups: the same answers, to the last digit.
    let kpi: Kpi = serde_json::from_value(json!({"id": "revenue", "title": "Revenue", "unit": "EUR", "aggregation": "sum", "filter": {"event": "order_placed"},
                      "direction": "higher_is_better", "target": 1000, "warning": 800, "critical": 500})).unwrap();
    let from = (at_madrid(2026, 11, 14, 0, 0) / 1000) as u64 / 3600 * 3600;
    let to = (at_madrid(2026, 11, 25, 0, 0) / 1000) as u64;
    rolled_up(&app, &[kpi], from, to).await;
    let after = read_all().await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn property_filters_match_numbers_booleans_and_comparisons_and_name_bad_fields() {
    let app = spawn_app().await;
    let put = |id: &'static str, filter: Value| {
        let app = &app;
        async move {
            let (status, answer) = app
                .put_json(
                    &format!("/v1/kpis/{id}"),
                    &json!({"title": id, "aggregation": "count", "filter": filter,
                            "direction": "higher_is_better", "target": 1, "warning": 1, "critical": 1}),
                )
                .await;
            (status.as_u16(), answer)
        }
    };
    let filters = [
        (
            "big",
            json!({"event": "order_placed", "properties": {"items": {">=": 3}}}),
        ),
        (
            "mid",
            json!({"event": "order_placed", "properties": {"items": {">": 1, "<=": 4}}}),
        ),
        (
            "vip",
            json!({"event": "order_placed", "properties": {"vip": true}}),
        ),
        (
            "not_two",
            json!({"event": "order_placed", "properties": {"items": {"!=": 2}}}),
        ),
        (
            "some",
            json!({"event": "order_placed", "properties": {"items": {"in": [1, 5]}, "country": {"in": ["ES", "FR"]}}}),
        ),
        (
            "exact",
            json!({"event": "order_placed", "properties": {"items": 2, "vip": false, "country": "ES"}}),
        ),
    ];
    for (id, filter) in &filters {
        let (status, answer) = put(id, filter.clone()).await;
        assert_eq!(status, 200, "{id}: {answer}");
    }
    // 60 orders on 2026-11-18 (UTC): items 0..5, vip every third, country ES/FR/PT;
    // the last ten without `items`.
    let day = chrono::Utc
        .with_ymd_and_hms(2026, 11, 18, 8, 0, 0)
        .unwrap()
        .timestamp_millis();
    let orders: Vec<(Option<f64>, bool, &str)> = (0..60)
        .map(|i| {
            (
                (i < 50).then_some((i % 6) as f64),
                i % 3 == 0,
                ["ES", "FR", "PT", "ES"][i % 4],
            )
        })
        .collect();
    let records: Vec<Value> = orders
        .iter()
        .enumerate()
        .map(|(i, (items, vip, country))| {
            let mut properties = json!({"vip": vip, "country": country});
            if let Some(n) = items {
                properties["items"] = (*n).into();
            }
            event(
                i as u64,
                "order_placed",
                day + i as i64 * 1000,
                None,
                properties,
            )
        })
        .collect();
    send_records(&app, &records).await;
    let count = |f: &dyn Fn(Option<f64>, bool, &str) -> bool| {
        orders.iter().filter(|(n, v, c)| f(*n, *v, c)).count() as f64
    };
    let want = [
        ("big", count(&|n, _, _| n.is_some_and(|n| n >= 3.0))),
        (
            "mid",
            count(&|n, _, _| n.is_some_and(|n| n > 1.0 && n <= 4.0)),
        ),
        ("vip", count(&|_, v, _| v)),
        ("not_two", count(&|n, _, _| n.is_some_and(|n| n != 2.0))),
        (
            "some",
            count(&|n, _, c| n.is_some_and(|n| n == 1.0 || n == 5.0) && (c == "ES" || c == "FR")),
        ),
        ("exact", count(&|n, v, c| n == Some(2.0) && !v && c == "ES")),
    ];
    for (id, want) in want {
        let (status, series) = app.get_json_as(&format!("/v1/kpis/{id}/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=day&tz=UTC"), READ_KEY).await;
        assert_eq!(status, 200, "{series}");
        assert_eq!(
            series["points"][0]["value"].as_f64(),
            Some(want),
            "{id}: {series}"
        );
        assert!(
            want > 0.0 && want < 60.0,
            "{id} must select some orders, not all"
        );
    }

    // Bad filters: 400 naming the field and the operator.
    for (filter, field) in [
        (
            json!({"properties": {"items": {">=": "three"}}}),
            "filter.properties.items.>=",
        ),
        (
            json!({"properties": {"items": {"like": 3}}}),
            "filter.properties.items.like",
        ),
        (
            json!({"properties": {"items": {"in": []}}}),
            "filter.properties.items.in",
        ),
        (
            json!({"properties": {"items": [1, 2]}}),
            "filter.properties.items",
        ),
        (
            json!({"properties": {"items": {"in": [1, "a"]}}}),
            "filter.properties.items.in",
        ),
    ] {
        let (status, answer) = put("bad", filter.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{filter}: {answer}"
        );
    }
}

#[tokio::test]
async fn another_key_cannot_replace_an_event_the_first_copy_received_wins() {
    let app = spawn_app().await;
    let body = json!({"title": "Revenue", "aggregation": "sum", "filter": {"event": "order_paid"}, "direction": "higher_is_better",
                      "target": 10, "warning": 5, "critical": 1});
    let (status, answer) = app.put_json("/v1/kpis/revenue", &body).await;
    assert_eq!(status, 200, "{answer}");
    let day = chrono::Utc
        .with_ymd_and_hms(2026, 11, 18, 10, 0, 0)
        .unwrap()
        .timestamp_millis();
    let paid = |id: u64, value: f64| event(id, "order_paid", day, Some(value), Value::Null);
    send_records(&app, &[paid(1, 10.0), paid(2, 5.0)]).await;
    // `received_at` has whole seconds: the other key's copy arrives in a later one.
    let received = app
        .sql_u64("SELECT toUInt64(max(received_at)) FROM events")
        .await;
    eventually(
        "ClickHouse's next second",
        Duration::from_secs(5),
        || async { (app.sql_u64("SELECT toUInt64(now())").await > received).then_some(()) },
    )
    .await;
    let forged = paid(1, 1000.0).to_string();
    let response = app
        .post("/v1/events", ADMIN_KEY, "application/x-ndjson", forged)
        .await;
    assert_eq!(response.status(), 202);
    // The owner retries its own event, as clients do.
    send_records(&app, &[paid(1, 10.0)]).await;
    // Merge everything now, as ClickHouse would in its own time.
    app.db
        .query("OPTIMIZE TABLE events FINAL")
        .execute()
        .await
        .unwrap();

    let (status, series) = app.get_json_as("/v1/kpis/revenue/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=day&tz=UTC", READ_KEY).await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["points"][0]["value"], 15.0, "{series}");
    // The forged copy is kept beside the event, and ignored; the retry is folded.
    assert_eq!(
        app.sql_u64(
            "SELECT count() FROM events WHERE event_id = toUUID('00000000-0000-4000-a000-000000000001')"
        )
        .await,
        2
    );
}
