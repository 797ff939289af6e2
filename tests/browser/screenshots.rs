//! `scripts/screenshots`: a PNG of every console page, 1280 px wide, in
//! `docs/ui/` (or `$HYPERCARE_SCREENSHOTS_DIR`). Ignored by `cargo test`; the
//! script runs it. The service runs with seeded demo data on a free port and
//! a fixed clock (D+2 of a launch), so two runs draw the same pages.
//!
//! A new page is one line in [`PAGES`] (and, if it needs data, a few lines
//! in [`seed_demo`]).

use std::path::PathBuf;
use std::time::Duration;

use hypercare_runtime::ManualClock;
use hypercare_tests::browser::Browser;
use hypercare_tests::*;
use serde_json::{Value, json};

/// Every console page behind sign-in: (file name in docs/ui, path).
const PAGES: &[(&str, &str)] = &[
    ("board", "/"),
    ("launch-days", "/launches/current/days"),
    ("report", "/launches/current/report"),
    ("kpi", "/kpis/conversion"),
    ("alerts", "/alerts"),
    ("capacity", "/capacity"),
    ("tickets", "/tickets"),
    ("ticket-new", "/tickets/new?category=bug"),
    ("ticket", "/tickets/HC-1"),
];

const WIDTH: u32 = 1280;

fn out_dir() -> PathBuf {
    match std::env::var_os("HYPERCARE_SCREENSHOTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/ui"),
    }
}

async fn ok(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let (status, answer) = app
        .json(reqwest::Method::POST, path, key, Some(&body))
        .await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Tickets in several states with comments and an owner (the launch, KPIs,
/// events and a firing rollback alert come from the board's seed).
async fn seed_demo(app: &TestApp, clock: &ManualClock) {
    let tickets = [
        json!({"title": "Card payment fails with 502 at checkout", "category": "bug", "impact": "high",
               "urgency": "high", "description": "Since the 100% rollout, about 1 card payment in 20 answers 502.",
               "release": "2.4.0", "channel": "email", "reporter": "Claire (store ops)"}),
        json!({"title": "Checkout page slow on mobile", "category": "performance", "impact": "medium",
               "urgency": "high", "description": "Checkout takes 6 s to show on 4G."}),
        json!({"title": "Cannot sign in after password reset", "category": "access", "impact": "medium",
               "urgency": "medium", "affected_user": "user-4821"}),
        json!({"title": "Invoice shows last month's VAT rate", "category": "billing", "impact": "low",
               "urgency": "medium", "affected_user": "acct-77", "description": "Invoice 2026-1184."}),
        json!({"title": "Payment declined at checkout for Amex cards", "category": "bug", "impact": "high",
               "urgency": "medium", "description": "Amex payment fails at checkout with a 502 answer.",
               "release": "2.4.0"}),
        json!({"title": "Export orders as CSV", "category": "feature_request", "impact": "low", "urgency": "low"}),
    ];
    for ticket in tickets {
        ok(app, SUPPORT_KEY, "/v1/tickets", ticket).await;
        clock.advance_minutes(23);
    }
    clock.advance_minutes(20);
    let change = |id: &str, what: &str, version: u32, body: Value| {
        let mut body = body;
        body["expected_version"] = version.into();
        (format!("/v1/tickets/{id}/{what}"), body)
    };
    for (path, body) in [
        change("HC-1", "transition", 1, json!({"to": "triaged"})),
        change("HC-1", "assign", 2, json!({"assignee": "ana"})),
        change(
            "HC-1",
            "comments",
            3,
            json!({"body": "Reproduced with a test card; the PSP answers 502 when 3-D Secure is on.", "visibility": "internal"}),
        ),
        change("HC-1", "transition", 4, json!({"to": "in_progress"})),
        change(
            "HC-3",
            "comments",
            1,
            json!({"body": "We reset the account; please try again.", "visibility": "public"}),
        ),
        change("HC-3", "transition", 2, json!({"to": "triaged"})),
        change("HC-3", "transition", 3, json!({"to": "waiting_on_user"})),
        change(
            "HC-6",
            "transition",
            1,
            json!({"to": "resolved", "resolution": "On the roadmap for 2.6."}),
        ),
    ] {
        ok(app, SUPPORT_KEY, &path, body).await;
        clock.advance_minutes(7);
    }
}

/// Grows the window to the page's full height, so the PNG shows all of it
/// (the window's own frame is not page: measured and added).
async fn fit_height(browser: &Browser) {
    for _ in 0..3 {
        let sizes = browser
            .client
            .execute(
                "return [Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
                         window.innerHeight, window.outerHeight];",
                vec![],
            )
            .await
            .expect("measuring the page");
        let size = |i: usize| sizes[i].as_f64().unwrap_or(900.0) as u32;
        let (page, inner, outer) = (size(0), size(1), size(2));
        if page <= inner {
            return;
        }
        let frame = outer.saturating_sub(inner);
        browser
            .client
            .set_window_size(WIDTH, (page + frame).min(8000))
            .await
            .expect("sizing the window");
    }
}

async fn shoot(browser: &Browser, name: &str) {
    fit_height(browser).await;
    // Charts draw after load; give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = browser.screenshot().await;
    let path = out_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    println!("Wrote {}.", path.display());
    browser
        .client
        .set_window_size(WIDTH, 900)
        .await
        .expect("sizing the window");
}

#[tokio::test]
#[ignore = "writes docs/ui/*.png: run scripts/screenshots"]
async fn every_console_page() {
    let clock = ManualClock::starting_at(crate::board::paris_ms(20, 9, 0));
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("po.yaml"), crate::board::ROLLBACK_RULE).unwrap();
    let app = crate::board::seeded_on(clock.clone(), Some(rules.path())).await;
    seed_demo(&app, &clock).await;
    std::fs::create_dir_all(out_dir()).unwrap();
    let browser = Browser::start(WIDTH).await;

    browser.goto(&format!("{}/sign-in", app.address)).await;
    browser.wait_for("#key").await;
    shoot(&browser, "sign-in").await;

    browser.sign_in(&app.address, ADMIN_KEY).await;
    for (name, path) in PAGES {
        browser.goto(&format!("{}{path}", app.address)).await;
        browser.wait_for("main h1").await;
        shoot(&browser, name).await;
    }
    browser.close().await;
    app.stop().await.unwrap();
}
