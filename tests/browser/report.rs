//! The daily report in the console and as the API's HTML page, in a real
//! Chromium: a launch whose orders halved on D+1 while a P0 rollback trigger
//! fired and is still firing (the clock at D+1 21:31 in Paris). The person
//! reads the call and its reason, steps back to D0 with the keyboard, and
//! neither page has a serious accessibility problem at 1280 or 390 px.

use std::time::Duration;

use chrono::TimeZone;
use fantoccini::Locator;
use fantoccini::key::Key;
use hypercare_runtime::ManualClock;
use hypercare_tests::browser::Browser;
use hypercare_tests::*;
use serde_json::{Value, json};

fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

/// A P0 rollback trigger that holds on the seeded data (D+1 has far fewer
/// than 1000 orders).
const ROLLBACK_RULE: &str = "groups:\n  - name: report\n    rules:\n      - {name: orders_rollback, tier: P0, for: 0s, rollback_trigger: true, annotations: {summary: Orders far below plan}, condition: {kpi: orders, compare: value, below: 1000}}\n";

const REASON: &str = "a rollback trigger fired and is still firing";

/// Baseline days 2026-11-09..15, D0 on the 16th; each hour from 08:00 to
/// 20:00, about 10 orders (5 on D+1).
async fn seeded(clock: std::sync::Arc<ManualClock>, rules: &std::path::Path) -> TestApp {
    let shared: hypercare_runtime::SharedClock = clock;
    let rules = rules.to_owned();
    let app = spawn_app_on(shared, move |s| {
        s.alerts.rules = vec![rules];
        s.alerts.interval = Duration::from_millis(100);
    })
    .await;
    let (status, answer) = app
        .post_json_as(
            "/v1/launches",
            ADMIN_KEY,
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let (status, answer) = app
        .put_json(
            "/v1/kpis/orders",
            &json!({"title": "Orders", "aggregation": "count", "filter": {"event": "order_placed"},
                    "direction": "higher_is_better", "target": 100, "warning": 80, "critical": 60}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut lines = Vec::new();
    for day in 9..=17u32 {
        for hour in 8..20u32 {
            let wobble = u64::from((day * 7 + hour * 3) % 3);
            let orders = if day == 17 { 4 + wobble } else { 9 + wobble };
            for i in 0..orders {
                lines.push(
                    json!({"event": "order_placed", "event_id": uuid::Uuid::new_v4().to_string(),
                    "timestamp": paris_ms(day, hour, 0) + i * 60_000, "user_id": format!("u{i}")}),
                );
            }
        }
    }
    app.send_events(&lines).await;
    app
}

async fn no_accessibility_problems(browser: &Browser, page: &str) {
    let problems = browser.accessibility_problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

/// Shows `html` in the browser as its own document (the API's page needs a
/// key, which a browser's address bar cannot send).
async fn show_document(browser: &Browser, html: &str) {
    browser.goto("about:blank").await;
    browser
        .client
        .execute(
            "document.open(); document.write(arguments[0]); document.close();",
            vec![Value::String(html.to_owned())],
        )
        .await
        .expect("writing the page");
}

#[tokio::test]
async fn the_report_shows_the_call_and_its_reason_and_steps_back_a_day_with_the_keyboard() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("report.yaml"), ROLLBACK_RULE).unwrap();
    let clock = ManualClock::starting_at(paris_ms(17, 21, 30));
    let app = seeded(clock.clone(), rules.path()).await;
    eventually(
        "the rollback trigger fired",
        Duration::from_secs(20),
        || async {
            let (_, alerts) = app.get_json_as("/v1/alerts", READ_KEY).await;
            (alerts["rollback"]["state"] == "rollback_recommended").then_some(())
        },
    )
    .await;
    // The report covers the day up to now: a minute on, the alert is in it.
    clock.advance_minutes(1);
    let (status, api) = app
        .get_json_as("/v1/launches/current/report?day=1", READ_KEY)
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["call"]["call"], "roll_back", "{}", api["call"]);
    assert!(
        api["call"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!(REASON))
    );
    let (status, d0) = app
        .get_json_as("/v1/launches/current/report?day=0", READ_KEY)
        .await;
    assert_eq!(status, 200, "{d0}");

    // From the launch days, D+1's report.
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;
    browser
        .goto(&format!("{}/launches/current/days", app.address))
        .await;
    browser.click("a[aria-label='D+1 report']").await;
    browser.wait_for("#call").await;
    assert!(
        browser.current_path().await.ends_with("/report?day=1"),
        "{}",
        browser.current_path().await
    );
    assert!(browser.text("h1").await.contains("Spring D+1 (2026-11-17)"));
    assert_eq!(browser.text("#call-word").await, "roll back");
    assert_eq!(browser.count("#call.roll_back").await, 1);
    assert!(
        browser
            .texts("#call-reasons li")
            .await
            .contains(&REASON.to_owned()),
        "{:?}",
        browser.texts("#call-reasons li").await
    );
    let trigger = browser.text("#rollback-table tbody tr").await;
    assert!(
        trigger.contains("orders_rollback")
            && trigger.contains("still firing")
            && trigger.contains("CET"),
        "{trigger}"
    );
    // The judge's verdict on orders, as the API gave it.
    let verdict = api["kpis"][0]["judgement"]["verdict"].as_str().unwrap();
    let row = browser.text("#kpis-table tr[data-kpi='orders']").await;
    assert!(
        row.contains(&verdict.replace('_', " ")),
        "{row} vs {verdict}"
    );
    // Every rule of the policy is listed with its result.
    assert_eq!(
        browser.count("#rules-table tbody tr").await,
        api["call"]["rules"].as_array().unwrap().len()
    );
    no_accessibility_problems(&browser, "report at 1280 px").await;

    // The previous day, with the keyboard only.
    browser
        .client
        .find(Locator::Css("#previous-day"))
        .await
        .unwrap()
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    browser
        .wait_for("a[aria-current='page'][href$='day=0']")
        .await;
    assert!(browser.text("h1").await.contains("D0 (2026-11-16)"));
    let call = d0["call"]["call"].as_str().unwrap().replace('_', " ");
    assert_eq!(browser.text("#call-word").await, call);
    browser.close().await;

    let phone = Browser::start(390).await;
    phone.sign_in(&app.address, READ_KEY).await;
    phone
        .goto(&format!("{}/launches/current/report?day=1", app.address))
        .await;
    phone.wait_for("#call").await;
    no_accessibility_problems(&phone, "report at 390 px").await;
    // The console's "HTML" link: the standalone page, for a signed-in person.
    phone.click("p.formats a[href$='format=html']").await;
    phone.wait_for("main > h1").await;
    assert_eq!(phone.text("#call-word").await, "roll back");
    assert_eq!(
        phone.count("header.top").await,
        0,
        "not in the console's layout"
    );
    no_accessibility_problems(&phone, "console's HTML report at 390 px").await;

    // The API's own HTML page: the same call, and no problem either.
    let response = app
        .get(
            "/v1/launches/current/report?day=1&format=html",
            Some(READ_KEY),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    show_document(&phone, &page).await;
    assert_eq!(phone.text("#call-word").await, "roll back");
    no_accessibility_problems(&phone, "API HTML report at 390 px").await;
    phone.close().await;
    let wide = Browser::start(1280).await;
    show_document(&wide, &page).await;
    assert_eq!(
        wide.client.title().await.unwrap(),
        "Spring D+1 (2026-11-17): daily report"
    );
    assert!(wide.text("h1").await.starts_with("Spring D+1"));
    no_accessibility_problems(&wide, "API HTML report at 1280 px").await;
    wide.close().await;

    // The console's Markdown is the API's, byte for byte; a wrong address or
    // query gets a page a person can read, naming the field.
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
    let console = |path: &str| {
        http.get(format!("{}{path}", app.address))
            .header("cookie", &cookie)
            .send()
    };
    let markdown = console("/launches/current/report?day=1&format=md")
        .await
        .unwrap();
    assert_eq!(markdown.status(), 200);
    let markdown = markdown.text().await.unwrap();
    let api_markdown = app
        .get(
            "/v1/launches/current/report?day=1&format=md",
            Some(READ_KEY),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(markdown, api_markdown);
    for (path, status, says) in [
        ("/launches/current/report?day=D%2B1", 400, "whole number"),
        (
            "/launches/current/report?day=9999",
            400,
            "between -400 and 400",
        ),
        ("/launches/current/report?day=3", 400, "has not started yet"),
        ("/launches/current/report?day=1&format=pdf", 400, "format"),
        (
            "/launches/no-such-launch/report?day=1",
            404,
            "no-such-launch",
        ),
    ] {
        let response = console(path).await.unwrap();
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
