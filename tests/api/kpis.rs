//! KPIs end to end: every aggregation against values computed in the test from
//! the generated events (duplicates, late events, time zone day cuts, empty days),
//! the board, series with gaps filled, definitions' history and their checks.

use std::collections::{BTreeMap, HashSet};

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::{Value, json};

use hypercare_kpis::definition::Kpi;
use hypercare_kpis::rollup;
use hypercare_tests::{
    ADMIN_KEY, INGEST_KEY, READ_KEY, TestApp, spawn_app, spawn_app_with, test_settings,
};

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
fn expected(events: &[Event], kpi: &str, date: NaiveDate, tz: Tz) -> Option<f64> {
    let mut seen = HashSet::new();
    let day: Vec<&Event> = events
        .iter()
        .filter(|e| seen.insert(e.id.clone()))
        .filter(|e| tz.timestamp_millis_opt(e.ts_ms).unwrap().date_naive() == date)
        .collect();
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
            // ClickHouse's quantileExact(p): the element at position floor(n * p).
            (!latencies.is_empty()).then(|| {
                latencies[((latencies.len() as f64 * 0.5) as usize).min(latencies.len() - 1)]
            })
        }
    }
}

async fn define_all(app: &TestApp) {
    for (id, body) in KPIS {
        let response = app
            .http
            .put(format!("{}/v1/kpis/{id}", app.address))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{id}: {}",
            response.text().await.unwrap()
        );
    }
}

async fn json_get(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, Some(READ_KEY)).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Checks every KPI on every D+N day of the launch against the events; returns the days.
async fn check_days(app: &TestApp, launch_id: &str, events: &[Event]) -> Vec<Value> {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let days = json_get(app, &format!("/v1/launches/{launch_id}/days")).await;
    let days = days["days"].as_array().unwrap().clone();
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
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{id} on {date}: {g} vs {w}"),
                _ => assert_eq!(got, want, "{id} on {date}"),
            }
        }
    }
    days
}

async fn declare_launch(app: &TestApp) -> String {
    let launch = app
        .http
        .post(format!("{}/v1/launches", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00",
                      "tz": "Europe/Paris", "window_days": 5, "baseline_days": 4,
                      "stages": [{"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(launch.status(), 201);
    let launch: Value = launch.json().await.unwrap();
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut stale = 0;
        for kpi in kpi_definitions() {
            stale += rollup::stale_hours(&app.db, &kpi, from, to)
                .await
                .unwrap()
                .len();
        }
        if stale == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stale} KPI hours still not rolled up after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
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
    let series = json_get(
        &app,
        &format!(
            "/v1/kpis/orders/series?from={}&to={}&grain=hour&tz=UTC",
            hour.format("%Y-%m-%dT%H:%M:%SZ"),
            (hour + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
        ),
    )
    .await;
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
    let series = json_get(&app, "/v1/kpis/orders/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=hour&tz=UTC").await;
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert!(points.iter().all(|p| p["value"] == 0.0), "{series}");
    // Averages have no value where nothing happened, rather than a zero.
    let basket = json_get(
        &app,
        "/v1/kpis/basket/series?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&grain=day&tz=UTC",
    )
    .await;
    assert_eq!(basket["points"][0]["value"], Value::Null);
    assert_eq!(basket["points"][0]["status"], "no_data");
    // Daily series in Paris add up to the events of those Paris days.
    let daily = json_get(&app, "/v1/kpis/orders/series?from=2026-11-12T00:00:00%2B01:00&to=2026-11-22T00:00:00%2B01:00&grain=day&tz=Europe/Paris").await;
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

    let response = app
        .http
        .post(format!("{}/v1/launches", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00", "tz": "Europe/Paris"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let board = json_get(&app, "/v1/kpis").await;
    assert_eq!(board["tz"], "Europe/Paris");
    let kpis = board["kpis"].as_array().unwrap();
    assert_eq!(kpis.len(), KPIS.len());
    let orders = kpis.iter().find(|k| k["id"] == "orders").unwrap();
    // Baseline: the 7 days before D0 (2026-11-09..15), averaged over the days with data
    // (counts are 0 on days without events).
    let baseline: f64 = (9..16)
        .map(|d| {
            expected(
                &events,
                "orders",
                NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
                paris,
            )
            .unwrap()
        })
        .sum::<f64>()
        / 7.0;
    assert!(
        (orders["baseline"].as_f64().unwrap() - baseline).abs() < 1e-9,
        "{orders}"
    );
    assert_eq!(orders["target"], 8.0);
    assert!(["ok", "warning", "critical"].contains(&orders["status"].as_str().unwrap()));
}

#[tokio::test]
async fn definitions_are_checked_and_every_version_is_kept() {
    let app = spawn_app().await;
    let put = |body: &'static str| {
        let app = &app;
        async move {
            let response = app
                .http
                .put(format!("{}/v1/kpis/leads", app.address))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
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
    let shown = json_get(&app, "/v1/kpis/leads").await;
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["definition"]["target"], 120.0);
    assert_eq!(shown["history"].as_array().unwrap().len(), 2);
    assert_eq!(shown["history"][0]["definition"]["target"], 100.0);

    let forbidden = app
        .http
        .put(format!("{}/v1/kpis/leads", app.address))
        .bearer_auth(READ_KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let bad_tz = app.http.post(format!("{}/v1/launches", app.address)).bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "x", "release": "1", "d0": "2026-11-16T09:00:00Z", "tz": "Mars/Olympus"})).send().await.unwrap();
    assert_eq!(bad_tz.status(), 400);
    assert_eq!(bad_tz.json::<Value>().await.unwrap()["field"], "tz");
    let bad_grain = app
        .get("/v1/kpis/leads/series?grain=minute", Some(READ_KEY))
        .await;
    assert_eq!(bad_grain.status(), 400);
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
    let board = json_get(&app, "/v1/kpis").await;
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
        let series = json_get(
            &app,
            &format!(
                "/v1/kpis/{kpi}/series?grain=hour&tz=UTC&from={}&to={}",
                from.format("%Y-%m-%dT%H:%M:%SZ"),
                to.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )
        .await;
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
