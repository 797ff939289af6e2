//! The product owner's pages: the board, the launch days and a KPI, against
//! the API's own answers on the same seeded data and the same fixed "now"
//! (2026-11-20 10:30 in Paris, D+4 of a launch in its 100 % stage).

use std::time::Duration;

use chrono::TimeZone;
use hypercare_runtime::ManualClock;
use hypercare_tests::browser::Browser;
use hypercare_tests::*;
use serde_json::{Value, json};

pub(crate) fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

const KPIS: &[(&str, &str)] = &[
    (
        "orders",
        r#"{"title": "Orders", "aggregation": "count", "filter": {"event": "order_placed"}, "direction": "higher_is_better", "target": 3, "warning": 2, "critical": 1}"#,
    ),
    (
        "conversion",
        r#"{"title": "Conversion", "unit": "%", "aggregation": "ratio", "numerator": {"event": "order_placed"}, "denominator": {"event": "checkout_started"}, "scale": 100, "direction": "higher_is_better", "target": 50, "warning": 40, "critical": 30}"#,
    ),
    (
        "search_p50",
        r#"{"title": "Median search latency", "unit": "ms", "aggregation": "percentile", "p": 0.5, "property": "latency_ms", "filter": {"event": "search_performed"}, "direction": "lower_is_better", "target": 100, "warning": 102, "critical": 104}"#,
    ),
];

/// A rollback rule that holds on the seeded data (conversion is about 50 %).
pub(crate) const ROLLBACK_RULE: &str = "groups:\n  - name: po\n    rules:\n      - {name: conversion_rollback, tier: P0, for: 0s, rollback_trigger: true, annotations: {summary: Conversion below 60 %}, condition: {kpi: conversion, compare: value, below: 60}}\n";

/// A launch with two rollout stages, three KPIs and twelve days of events
/// (2026-11-09..20, early each morning); the clock at 2026-11-20 10:30 Paris.
async fn seeded(rules: Option<&std::path::Path>) -> TestApp {
    seeded_on(ManualClock::starting_at(paris_ms(20, 10, 30)), rules).await
}

/// [`seeded`] on `clock` (the screenshots move it on to add tickets).
pub(crate) async fn seeded_on(
    clock: std::sync::Arc<ManualClock>,
    rules: Option<&std::path::Path>,
) -> TestApp {
    let shared: hypercare_runtime::SharedClock = clock.clone();
    let rules = rules.map(|p| p.to_owned());
    let app = spawn_app_on(shared, move |s| {
        if let Some(dir) = rules {
            s.alerts.rules = vec![dir];
            s.alerts.interval = Duration::from_millis(100);
        }
    })
    .await;
    let (status, answer) = app
        .post_json_as(
            "/v1/launches",
            ADMIN_KEY,
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7,
                    "stages": [{"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"},
                               {"name": "everyone", "percent": 100, "starts_at": "2026-11-17T09:00:00+01:00"}]}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for (id, body) in KPIS {
        let (status, answer) = app
            .put_json(
                &format!("/v1/kpis/{id}"),
                &serde_json::from_str::<Value>(body).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{id}: {answer}");
    }
    let mut lines = Vec::new();
    let mut n = 0;
    for day in 9..=20u32 {
        let k = u64::from(day);
        for i in 0..(4 + k % 4) {
            let at = paris_ms(day, 7, 0) + i * 600_000;
            n += 1;
            lines.push(json!({"event": "checkout_started", "event_id": format!("00000000-0000-4000-8000-{n:012}"),
                "timestamp": at, "user_id": format!("u{}", i % 3)}));
            n += 1;
            lines.push(json!({"event": "search_performed", "event_id": format!("00000000-0000-4000-8000-{n:012}"),
                "timestamp": at, "user_id": format!("u{}", i % 3), "properties": {"latency_ms": 100 + 3 * i + k % 5}}));
            if i % 2 == 0 || (k % 3 == 0 && i < 3) {
                n += 1;
                lines.push(json!({"event": "order_placed", "event_id": format!("00000000-0000-4000-8000-{n:012}"),
                    "timestamp": at + 1000, "user_id": format!("u{}", i % 3), "value": 20}));
            }
        }
    }
    app.send_events(&lines).await;
    app
}

fn word(status: &str) -> &'static str {
    match status {
        "ok" => "OK",
        "warning" => "Warning",
        "critical" => "Critical",
        "no_data" => "No data",
        other => panic!("unknown status {other}"),
    }
}

/// The number at the start of a shown value ("57.142857 %" -> 57.142857),
/// none for "no data".
fn shown_number(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// With `HYPERCARE_UI_SHOTS=<folder>`, a screenshot of the page as
/// `<folder>/<name>.png` (for docs/ui).
async fn shot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("HYPERCARE_UI_SHOTS") {
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, browser.screenshot().await)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

async fn no_accessibility_problems(browser: &Browser, page: &str) {
    let problems = browser.accessibility_problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

#[tokio::test]
async fn the_board_shows_the_apis_values_the_launch_and_the_rollback_recommendation() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("po.yaml"), ROLLBACK_RULE).unwrap();
    let app = seeded(Some(rules.path())).await;
    let (status, board) = app.get_json_as("/v1/kpis", READ_KEY).await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["comparison"], "pace_to_10:00");
    // The rule fires on its own: wait until the API recommends a rollback.
    eventually(
        "a rollback recommended",
        Duration::from_secs(20),
        || async {
            let (_, alerts) = app.get_json_as("/v1/alerts", READ_KEY).await;
            (alerts["rollback"]["state"] == "rollback_recommended").then_some(())
        },
    )
    .await;

    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser.wait_for("#board .tiles").await;
    assert_eq!(browser.current_path().await, "/");

    // Every KPI of the API has a tile with its value, status, delta and trend.
    let kpis = board["kpis"].as_array().unwrap();
    assert_eq!(browser.count("article.tile").await, kpis.len());
    let mut statuses = std::collections::BTreeSet::new();
    for kpi in kpis {
        let id = kpi["id"].as_str().unwrap();
        let tile = format!("article.tile[data-kpi='{id}']");
        let value = browser.text(&format!("{tile} .value")).await;
        match kpi["value"].as_f64() {
            Some(v) => assert!(
                (shown_number(&value).unwrap() - v).abs() < 1e-9,
                "{id}: shown {value}, API {v}"
            ),
            None => assert_eq!(value, "no data"),
        }
        let status = kpi["status"].as_str().unwrap();
        statuses.insert(status.to_owned());
        assert!(
            browser
                .text(&format!("{tile} .status"))
                .await
                .ends_with(word(status)),
            "{id}: {status}"
        );
        assert_eq!(
            browser.count(&format!("{tile}.{status}")).await,
            1,
            "{id}: coloured as {status}"
        );
        let delta = browser.text(&format!("{tile} .delta")).await;
        match kpi["delta_vs_baseline_pct"].as_f64() {
            Some(d) => assert!(delta.starts_with(&format!("{d:+.2} %")), "{id}: {delta}"),
            None => assert!(delta.starts_with("no baseline"), "{id}: {delta}"),
        }
        let trend = browser.text(&format!("{tile} .trend")).await;
        let expected = match kpi["trend"].as_str().unwrap() {
            "up" => "↑ up",
            "down" => "↓ down",
            "flat" => "→ flat",
            _ => "no trend",
        };
        assert!(trend.starts_with(expected), "{id}: {trend}");
        assert_eq!(
            browser.count(&format!("{tile} svg.spark path")).await,
            2,
            "{id}: a sparkline and its target"
        );
    }
    assert!(
        statuses.len() >= 2,
        "the seed shows more than one status: {statuses:?}"
    );

    // The launch: D+4 in Paris, in its second stage.
    assert_eq!(browser.text("#launch-day").await, "D+4");
    assert_eq!(browser.text("#launch-stage").await, "everyone");
    let banner = browser.text("#launch").await;
    assert!(
        banner.contains("Spring") && banner.contains("2.4.0") && banner.contains("Europe/Paris"),
        "{banner}"
    );
    // The rollback recommendation, with the rule as evidence.
    let rollback = browser.text("#rollback").await;
    assert!(
        rollback.contains("Rollback recommended")
            && rollback.contains("conversion_rollback")
            && rollback.contains("Conversion below 60 %"),
        "{rollback}"
    );
    shot(&browser, "board-1280").await;
    no_accessibility_problems(&browser, "board at 1280 px").await;
    browser.close().await;

    let phone = Browser::start(390).await;
    phone.sign_in(&app.address, READ_KEY).await;
    phone.wait_for("#board .tiles").await;
    shot(&phone, "board-390").await;
    no_accessibility_problems(&phone, "board at 390 px").await;
    phone.close().await;

    // The live part: htmx gets the fragment; without htmx, the whole page.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = |key: &'static str| {
        let http = http.clone();
        let address = app.address.clone();
        async move {
            let response = http
                .post(format!("{address}/sign-in"))
                .form(&[("key", key), ("next", "/")])
                .send()
                .await
                .unwrap();
            let cookie = response.headers()["set-cookie"].to_str().unwrap();
            cookie.split(';').next().unwrap().to_owned()
        }
    };
    let read = session(READ_KEY).await;
    let fragment = http
        .get(format!("{}/board/tiles", app.address))
        .header("cookie", &read)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(fragment.status(), 200);
    let fragment = fragment.text().await.unwrap();
    assert!(fragment.starts_with("<div id=\"board\""), "{fragment}");
    assert!(fragment.contains("hx-trigger=\"every 30s\""));
    let page = http
        .get(format!("{}/board/tiles", app.address))
        .header("cookie", &read)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("id=\"board\""));
    // A support key starts at the ticket queue; it cannot read the board.
    let support = session(SUPPORT_KEY).await;
    let start = http
        .get(format!("{}/", app.address))
        .header("cookie", &support)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    assert_eq!(start.headers()["location"], "/tickets");
    let refused = http
        .get(format!("{}/board/tiles", app.address))
        .header("cookie", &support)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("lacks the `read` scope")
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_launch_days_and_a_kpi_page_show_the_apis_statuses_and_series() {
    let app = seeded(None).await;
    let (status, days) = app.get_json_as("/v1/launches/current/days", READ_KEY).await;
    assert_eq!(status, 200, "{days}");
    let days = days["days"].as_array().unwrap();

    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser
        .click("nav.main a[href='/launches/current/days']")
        .await;
    browser.wait_for("table.days").await;

    // One row per day, a cell per KPI (ids in order), saying the API's status.
    assert_eq!(browser.count("table.days tbody tr").await, days.len());
    let heads = browser.texts("table.days tbody th").await;
    let cells = browser.texts("table.days tbody td").await;
    let ids: Vec<&String> = days[0]["kpis"].as_object().unwrap().keys().collect();
    assert_eq!(cells.len(), days.len() * ids.len());
    for (d, day) in days.iter().enumerate() {
        assert!(
            heads[d].starts_with(day["day"].as_str().unwrap()),
            "{} vs {day}",
            heads[d]
        );
        for (k, id) in ids.iter().enumerate() {
            let status = day["kpis"][id.as_str()]["status"].as_str().unwrap();
            let cell = &cells[d * ids.len() + k];
            assert!(
                cell.contains(word(status)),
                "{} {id}: {cell} vs {status}",
                day["day"]
            );
            if let Some(v) = day["kpis"][id.as_str()]["value"].as_f64() {
                let number = cell
                    .split_whitespace()
                    .nth(if status == "no_data" { 3 } else { 2 });
                assert!(
                    number
                        .and_then(|n| n.parse::<f64>().ok())
                        .is_some_and(|n| (n - v).abs() < 1e-9),
                    "{} {id}: {cell} vs {v}",
                    day["day"]
                );
            }
        }
    }
    shot(&browser, "launch-days-1280").await;
    no_accessibility_problems(&browser, "launch days at 1280 px").await;

    // Today's orders open the hours of today.
    browser
        .click("table.days tr.today a[href^='/kpis/orders']")
        .await;
    browser.wait_for("table.series").await;
    assert_eq!(
        browser.current_path().await,
        "/kpis/orders?date=2026-11-20&grain=hour"
    );
    browser.wait_for(".chart canvas").await;
    let from = "2026-11-20T00:00:00%2B01:00";
    let to = "2026-11-20T10:30:00%2B01:00";
    let (status, series) = app
        .get_json_as(
            &format!("/v1/kpis/orders/series?from={from}&to={to}&grain=hour&tz=Europe/Paris"),
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{series}");
    let points = series["points"].as_array().unwrap();
    let shown = browser.texts("table.series tbody td.num").await;
    assert_eq!(shown.len(), points.len(), "{shown:?}");
    for (text, point) in shown.iter().zip(points) {
        match point["value"].as_f64() {
            Some(v) => assert_eq!(shown_number(text), Some(v), "{text} vs {point}"),
            None => assert_eq!(text, "no data"),
        }
    }
    assert!(
        shown.iter().any(|t| t != "no data" && t != "0"),
        "the morning's orders are in the table: {shown:?}"
    );
    // The definition and its versions.
    assert_eq!(browser.count("table.history tbody tr").await, 1);
    assert!(
        browser
            .text("table.history tbody tr")
            .await
            .contains("admin-key")
    );
    shot(&browser, "kpi-hours-1280").await;
    no_accessibility_problems(&browser, "KPI at 1280 px").await;
    let kpi_page = browser.current_path().await;
    browser.close().await;

    let phone = Browser::start(390).await;
    phone.sign_in(&app.address, READ_KEY).await;
    phone
        .goto(&format!("{}/launches/current/days", app.address))
        .await;
    phone.wait_for("table.days").await;
    shot(&phone, "launch-days-390").await;
    no_accessibility_problems(&phone, "launch days at 390 px").await;
    phone.goto(&format!("{}{kpi_page}", app.address)).await;
    phone.wait_for(".chart canvas").await;
    shot(&phone, "kpi-hours-390").await;
    no_accessibility_problems(&phone, "KPI at 390 px").await;
    // The whole launch, per day: the chart carries D0 and the stages.
    phone
        .goto(&format!("{}/kpis/conversion", app.address))
        .await;
    phone.wait_for(".chart canvas").await;
    assert!(phone.count("table.series tbody tr").await >= 12);
    shot(&phone, "kpi-per-day-390").await;
    no_accessibility_problems(&phone, "KPI per day at 390 px").await;
    phone.close().await;

    // What a wrong address or query gets: a page a person can read, with the
    // API's status, naming the field.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", READ_KEY), ("next", "/")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for (path, status, says) in [
        ("/kpis/orders?grain=minute", 400, "grain"),
        ("/kpis/orders?date=20-11-2026", 400, "YYYY-MM-DD"),
        ("/kpis/orders?date=2026-11-21", 400, "after today"),
        ("/kpis/no_such_kpi", 404, "no_such_kpi"),
        ("/launches/no-such-launch/days", 404, "no-such-launch"),
    ] {
        let response = http
            .get(format!("{}{path}", app.address))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(says), "{path}: {page}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn before_any_launch_or_kpi_the_pages_say_so() {
    let app = spawn_app().await;
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser.wait_for("#board").await;
    let board = browser.text("main").await;
    assert!(
        board.contains("No launch is declared yet") && board.contains("No KPI is defined yet"),
        "{board}"
    );
    assert_eq!(browser.count("article.tile").await, 0);
    no_accessibility_problems(&browser, "empty board").await;
    browser
        .click("nav.main a[href='/launches/current/days']")
        .await;
    browser.wait_for("#no-launch-days").await;
    assert_eq!(browser.current_path().await, "/launches/current/days");
    assert!(
        browser
            .text("#no-launch-days")
            .await
            .contains("No launch is declared yet")
    );
    no_accessibility_problems(&browser, "launch days without a launch").await;
    browser.close().await;
    app.stop().await.unwrap();
}
