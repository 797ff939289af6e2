//! KPI board and series latency over 100 million events:
//!
//! ```text
//! cargo bench -p hypercare-tests --bench kpis [-- --events 100000000 --calls 30]
//! ```
//!
//! Loads N events spread evenly over the last 21 days up to now (page views,
//! searches with a latency, checkouts, orders with an amount, payments, leads),
//! in sessions of 20 events by one of 200,000 users, plus 1 % retried copies, with `INSERT ... SELECT` from
//! `system.numbers`; defines the KPIs of `config/kpis.example.yaml`, declares a
//! launch ten days ago, then times through the HTTP API:
//! - the board and a series straight from `events` (before any rollup);
//! - the rollup worker's catch-up over the whole history;
//! - the board, each KPI's 14-day hourly series and the launch's D+N days,
//!   and the console's board, launch days and KPI pages (HTML, as a session):
//!   the first call (cold: no bucket cached) and p50 / p95 / max over repeated
//!   calls (closed buckets cached, the current day or hour computed each time);
//! - the daily report of yesterday, made and kept, today's, and the judge;
//! - one alert evaluation of 200 rules over the same data.

use std::sync::Arc;
use std::time::Instant;

use hypercare_kpis::rollup;
use hypercare_tests::bench::{option, percentile};
use hypercare_tests::{ADMIN_KEY, READ_KEY, TestApp, spawn_app_with};

const SPAN_SECS: u64 = 21 * 86_400;
const CHUNK: u64 = 10_000_000;

/// Event `number` of `total`: its name from a hash, its time from its rank.
const LOAD_SQL: &str = "INSERT INTO events (event_id, event, timestamp, timestamp_ms, received_at, \
     source, release, user_id, session_id, value, prop_str_keys, prop_str_values, prop_num_keys, \
     prop_num_values, prop_bool_keys, prop_bool_values, api_key) \
     SELECT generateUUIDv4(), event, toDateTime(? + intDiv(number * ?, ?)), toUInt16(0), now(), \
     'web', '2.4.0', concat('u', toString(intHash32(intDiv(number, 20)) % 200000)), '', \
     if(event = 'order_placed', toNullable(20 + (intHash32(number) % 10000) / 100), CAST(NULL AS Nullable(Float64))), \
     if(event = 'order_placed', ['currency'], emptyArrayString()), \
     if(event = 'order_placed', ['EUR'], emptyArrayString()), \
     if(event = 'search_performed', ['latency_ms'], emptyArrayString()), \
     if(event = 'search_performed', [toFloat64(50 + intHash32(number * 7) % 1500)], emptyArrayFloat64()), \
     emptyArrayString(), emptyArrayUInt8(), 'bench' \
     FROM (SELECT number, multiIf(r < 40, 'page_viewed', r < 60, 'search_performed', \
           r < 75, 'checkout_started', r < 79, 'order_placed', r < 89, 'payment_succeeded', \
           r < 90, 'payment_failed', 'lead_created') AS event \
           FROM (SELECT number + ? AS number, intHash32(number * 3) % 100 AS r \
                 FROM system.numbers LIMIT ?))";

async fn load(app: &TestApp, events: u64, start: u64) -> anyhow::Result<()> {
    let mut offset = 0;
    while offset < events {
        let n = CHUNK.min(events - offset);
        app.db
            .query(LOAD_SQL)
            .bind(start)
            .bind(SPAN_SECS)
            .bind(events)
            .bind(offset)
            .bind(n)
            .execute()
            .await?;
        offset += n;
    }
    // Retried batches: 1 % of the events stored a second time, same ids.
    app.db
        .query("INSERT INTO events SELECT * FROM events WHERE cityHash64(toString(event_id)) % 100 = 0")
        .execute()
        .await?;
    Ok(())
}

async fn time_calls(app: &TestApp, name: &str, path: &str, calls: usize) -> anyhow::Result<()> {
    time_as(app, name, path, calls, None).await
}

/// GET `path` with the read key, or as a console session (`cookie`).
async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    match cookie {
        None => app.get(path, Some(READ_KEY)).await,
        Some(cookie) => app
            .http
            .get(format!("{}{path}", app.address))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request failed"),
    }
}

/// A console session of the read key: the `Cookie` header value.
async fn console_session(app: &TestApp) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", READ_KEY), ("next", "/")])
        .send()
        .await?;
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie: {}", response.status()))?;
    Ok(cookie.to_owned())
}

async fn time_as(
    app: &TestApp,
    name: &str,
    path: &str,
    calls: usize,
    cookie: Option<&str>,
) -> anyhow::Result<()> {
    let cold = Instant::now();
    let first = get(app, path, cookie).await;
    let status = first.status();
    let body = first.text().await?;
    let cold = cold.elapsed();
    if status != 200 {
        println!(
            "{name:<40} HTTP {status} after {:.0} ms: {body}",
            cold.as_secs_f64() * 1000.0
        );
        return Ok(());
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let response = get(app, path, cookie).await;
        anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
        let _ = response.bytes().await?;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{name:<40} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        cold.as_secs_f64() * 1000.0,
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0)
    );
    Ok(())
}

/// Technical metrics for the metric rules: request counters of 20 services x 5
/// statuses every 15 s over the last 2 hours.
const METRICS_SQL: &str = "INSERT INTO metric_points (name, kind, series_id, label_keys, label_values, \
     timestamp, timestamp_ms, received_at, value, hist_bounds, hist_counts, hist_sum, hist_count, api_key) \
     SELECT 'http_requests_total', 'counter', intDiv(number, 480) AS series, ['service', 'status'], \
     [concat('svc-', toString(series % 20)), arrayElement(['200', '201', '404', '500', '503'], intDiv(series, 20) + 1)], \
     toDateTime(? + (number % 480) * 15), toUInt16(0), now(), \
     toFloat64((number % 480) * (if(intDiv(series, 20) >= 3, 1, 100))), [], [], 0, toUInt64(0), 'bench' \
     FROM system.numbers LIMIT 48000";

/// One alert evaluation of 200 rules (100 over KPIs, 50 ingest-silence, 50 over
/// metrics) on the same data, timed over several ticks.
async fn evaluate_200_rules(
    app: &TestApp,
    kpis: &[hypercare_kpis::definition::Kpi],
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp() as u64;
    app.db.query(METRICS_SQL).bind(now - 7200).execute().await?;
    let mut yaml = String::from("groups:\n  - name: bench\n    rules:\n");
    for i in 0..100 {
        let kpi = &kpis[i % kpis.len()];
        let compare = if i % 2 == 0 {
            ""
        } else {
            "compare: baseline_pct, "
        };
        yaml.push_str(&format!(
            "      - {{name: kpi_{i}, tier: P{}, annotations: {{summary: s}}, condition: {{kpi: {}, {compare}below: {}}}}}\n",
            i % 4,
            kpi.id,
            i
        ));
    }
    let events = [
        "page_viewed",
        "search_performed",
        "checkout_started",
        "order_placed",
        "payment_succeeded",
    ];
    for i in 0..50 {
        let condition = if i % 2 == 0 {
            format!(
                "{{silence: {{window: {}m, event: {}}}}}",
                5 + i,
                events[i % events.len()]
            )
        } else {
            format!("{{silence: {{window: {}m, per_source: true}}}}", 5 + i)
        };
        yaml.push_str(&format!(
            "      - {{name: silence_{i}, tier: P1, annotations: {{summary: s}}, condition: {condition}}}\n"
        ));
    }
    for i in 0..50 {
        let condition = match i % 3 {
            0 => "{metric: {select: 'http_requests_total{status=~\"5..\"}', over: http_requests_total, fn: rate, window: 5m, by: [service]}, above: 0.01}".to_owned(),
            1 => format!("{{metric: {{select: http_requests_total, fn: rate, window: {}m, by: [service]}}, above: 1000}}", 1 + i % 10),
            _ => "{metric: {select: http_requests_total, fn: rate, window: 5m, by: [service]}, compare: change_pct, change_over: 1h, above: 50}".to_owned(),
        };
        yaml.push_str(&format!(
            "      - {{name: metric_{i}, tier: P2, annotations: {{summary: s}}, condition: {condition}}}\n"
        ));
    }
    let rules = hypercare_alerts::check::parse("bench.yaml", &yaml, None)?;
    let state = Arc::new(
        hypercare_kpis::KpiState::load(
            app.db.clone(),
            Vec::new(),
            Arc::new(hypercare_tests::SystemClock),
        )
        .await?,
    );
    let engine = hypercare_alerts::engine::Engine::with_settings(
        &hypercare_alerts::AlertSettings::default(),
        rules,
        app.db.clone(),
        Arc::new(hypercare_runtime::SystemClock),
        hypercare_runtime::Tasks::new(),
        state,
        hypercare_capacity::CapacitySettings::default(),
    )?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        engine.tick().await?;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{:<40} {:>8.1} {:>8.1} {:>8.1}",
        "alert evaluation: 200 rules, one tick",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events = option(&args, "events", 100_000_000);
    let calls = option(&args, "calls", 30) as usize;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let kpi_file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kpis.example.yaml");
        let app = spawn_app_with(|s| {
            s.kpis.file = Some(kpi_file.clone());
            // The bench runs the catch-up itself, to time it.
            s.kpis.rollups.enabled = false;
            // The test client (`app.db`) loads the data and runs the catch-up:
            // statements of minutes, past the 10 s deadline of API requests.
            s.clickhouse.query_timeout_secs = 1800;
        })
        .await;
        let now = chrono::Utc::now().timestamp() as u64;
        let started = Instant::now();
        load(&app, events, now - SPAN_SECS).await?;
        let stored: u64 = app
            .db
            .query("SELECT count() FROM events")
            .fetch_one()
            .await?;
        println!("command: cargo bench -p hypercare-tests --bench kpis -- --events {events}");
        println!(
            "loaded {events} events (+{} retried copies) over 21 days in {:.0} s",
            stored - events,
            started.elapsed().as_secs_f64()
        );

        let d0 = chrono::Utc::now() - chrono::Duration::days(10);
        let launch = app
            .http
            .post(format!("{}/v1/launches", app.address))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"name": "bench", "release": "2.4.0",
                "d0": d0.format("%Y-%m-%dT09:00:00+01:00").to_string(), "tz": "Europe/Paris"}))
            .send()
            .await?;
        anyhow::ensure!(launch.status() == 201, "launch: {}", launch.text().await?);
        let launch: serde_json::Value = launch.json().await?;
        let launch_id = launch["id"].as_str().unwrap_or_default().to_owned();

        let to = chrono::Utc::now();
        let from = to - chrono::Duration::days(14);
        let series = |kpi: &str| {
            format!(
                "/v1/kpis/{kpi}/series?grain=hour&tz=Europe/Paris&from={}&to={}",
                from.format("%Y-%m-%dT%H:00:00Z"),
                to.format("%Y-%m-%dT%H:00:00Z")
            )
        };
        println!(
            "{:<40} {:>8} {:>8} {:>8}",
            "call", "p50 ms", "p95 ms", "max ms"
        );
        time_calls(&app, "board, from events only", "/v1/kpis", 3).await?;
        time_calls(
            &app,
            "14-day hourly series, events only",
            &series("active_users"),
            3,
        )
        .await?;

        let kpis = hypercare_kpis::definition::load_file(&kpi_file).map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let hours = rollup::catch_up(&app.db, &kpis, 35).await?;
        println!(
            "rollup catch-up: {hours} KPI hours ({} KPIs x 35 days) in {:.0} s",
            kpis.len(),
            started.elapsed().as_secs_f64()
        );

        time_calls(&app, "board (GET /v1/kpis)", "/v1/kpis", calls).await?;
        // The daily report of yesterday (D+9): made from the tables at every
        // call (`refresh`), then read back as kept; today's, under way; and the
        // judge alone, the report's costliest read after the board.
        let report = |query: &str| format!("/v1/launches/{launch_id}/report?{query}");
        time_calls(
            &app,
            "daily report D+9, made (refresh)",
            &report("day=9&refresh=true"),
            calls.div_ceil(3),
        )
        .await?;
        time_calls(&app, "daily report D+9, kept", &report("day=9"), calls).await?;
        time_calls(
            &app,
            "daily report today (under way)",
            &report("day=10"),
            calls.div_ceil(3),
        )
        .await?;
        time_calls(
            &app,
            "judge D+9 (every KPI, GET /judgement)",
            &format!("/v1/launches/{launch_id}/judgement?day=9"),
            calls.div_ceil(3),
        )
        .await?;
        // The console's pages, server time as the browser waits for the HTML
        // (the board page reads the board, the launch days and the alerts).
        let session = console_session(&app).await?;
        time_as(
            &app,
            "console: board page (GET /)",
            "/",
            calls,
            Some(&session),
        )
        .await?;
        time_as(
            &app,
            "console: launch days page",
            &format!("/launches/{launch_id}/days"),
            calls.div_ceil(3),
            Some(&session),
        )
        .await?;
        time_as(
            &app,
            &format!("console: KPI page ({})", kpis[0].id),
            &format!("/kpis/{}", kpis[0].id),
            calls,
            Some(&session),
        )
        .await?;
        for kpi in &kpis {
            time_calls(
                &app,
                &format!("14-day hourly series: {}", kpi.id),
                &series(&kpi.id),
                calls,
            )
            .await?;
        }
        time_calls(
            &app,
            "launch days (D+0..D+14 x every KPI)",
            &format!("/v1/launches/{launch_id}/days"),
            calls.div_ceil(3),
        )
        .await?;
        evaluate_200_rules(&app, &kpis).await?;
        app.stop().await?;
        anyhow::Ok(())
    })
}
