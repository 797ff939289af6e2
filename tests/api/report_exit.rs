//! The exit criteria of the handover, end to end: a launch of a 4-day window
//! (D0 on 2026-11-16, Paris) whose KPI is ok every day and whose P1 ticket,
//! opened on D+1, keeps it from being ready until it is resolved; as of the
//! window's last day once it is over; the exit report in Markdown and HTML;
//! and what a hostile client gets.

use std::sync::Arc;

use chrono::TimeZone;
use hypercare_tests::*;
use serde_json::{Value, json};

fn paris_ms(d: u32, h: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, 0, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

/// 12 orders on 2026-11-`d`, one an hour from 08:00: over the KPI's target of 10.
async fn seed_day(app: &TestApp, d: u32) {
    let lines: Vec<Value> = (8..20u32)
        .map(|hour| {
            json!({"event": "order_placed", "event_id": uuid::Uuid::new_v4().to_string(),
                   "timestamp": paris_ms(d, hour), "user_id": format!("u{hour}")})
        })
        .collect();
    app.send_events(&lines).await;
}

async fn launch(clock: Arc<ManualClock>) -> TestApp {
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 4, "baseline_days": 0}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let (status, answer) = app
        .put_json(
            "/v1/kpis/orders",
            &json!({"title": "Orders", "aggregation": "count", "filter": {"event": "order_placed"},
                    "direction": "higher_is_better", "target": 10, "warning": 5, "critical": 2}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    app
}

fn criterion<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["criteria"]
        .as_array()
        .unwrap_or_else(|| panic!("no criteria in {answer}"))
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {answer}"))
}

fn outcomes(answer: &Value) -> Vec<(String, String)> {
    answer["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_open_p1_ticket_keeps_the_launch_from_exit_until_it_is_resolved() {
    // Arrange: D+1 10:00, D0's orders in, a P1 bug opened now.
    let clock = ManualClock::starting_at(paris_ms(17, 10));
    let app = launch(clock.clone()).await;
    seed_day(&app, 16).await;
    let (status, ticket) = app
        .post_json_as(
            "/v1/tickets",
            SUPPORT_KEY,
            &json!({"title": "Checkout fails on pay", "description": "steps: open checkout, pay",
                    "category": "bug", "impact": "high", "urgency": "high", "release": "2.4.0"}),
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let ticket = &ticket["ticket"];
    assert_eq!(ticket["priority"], "P1", "{ticket}");
    let key = ticket["key"].as_str().unwrap().to_owned();

    // Act: D+3 01:00, so D+2 is the last whole day.
    clock.set_ms(paris_ms(19, 1));
    seed_day(&app, 17).await;
    seed_day(&app, 18).await;
    let (status, answer) = app.get_json("/v1/launches/current/exit").await;

    // Assert: not ready, and the ticket is named.
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["as_of_day"], 2, "{answer}");
    assert_eq!(answer["as_of_date"], "2026-11-18");
    assert_eq!(answer["window_over"], false);
    assert_eq!(answer["ready"], false);
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        outcomes(&answer),
        owned(&[
            ("no_p0_p1_alerts", "met"),
            ("kpis_ok", "met"),
            ("open_p0_p1_tickets", "not_met"),
            ("sla_breaches", "met"),
            ("headroom", "no_data"),
        ]),
        "{answer}"
    );
    let tickets = criterion(&answer, "open_p0_p1_tickets");
    assert_eq!(tickets["value"], 1.0);
    assert_eq!(
        tickets["evidence"][0],
        format!("P1 ticket {key} \"Checkout fails on pay\" open at the end of D+2 (2026-11-18)")
    );
    // Neither answered in 30 minutes nor resolved in 8 hours: 2 breaches on D+1.
    let sla = criterion(&answer, "sla_breaches");
    assert_eq!(sla["value"], 2.0, "{sla}");
    assert_eq!(sla["evidence"][0], "2 breaches on D+1 (2026-11-17)");
    assert_eq!(
        criterion(&answer, "kpis_ok")["evidence"][0],
        "1 KPI ok on each of D0 (2026-11-16) to D+2 (2026-11-18)"
    );
    assert_eq!(
        criterion(&answer, "headroom")["evidence"][0],
        "headroom unknown on D+2 (2026-11-18): no load-test baseline is recorded"
    );
    assert_eq!(
        answer["summary"],
        "As of D+2 (2026-11-18), ready: false; not met: open_p0_p1_tickets; \
         no data: headroom; the window runs to 2026-11-20."
    );

    // The exit report in Markdown and HTML says the same.
    let md = app
        .get("/v1/launches/current/exit?format=md", Some(READ_KEY))
        .await;
    assert_eq!(md.status(), 200);
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = md.text().await.unwrap();
    assert!(
        md.starts_with("# Spring: exit criteria as of D+2 (2026-11-18)"),
        "{md}"
    );
    assert!(md.contains(&format!("- P1 ticket {key}")), "{md}");
    let page = app
        .get("/v1/launches/current/exit?format=html", Some(READ_KEY))
        .await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Ready for handover: no"), "{page}");
    assert!(
        page.contains("&quot;Checkout fails on pay&quot;")
            || page.contains("\"Checkout fails on pay\"")
    );

    // Act: the ticket is resolved on D+3; D+3 is over.
    clock.set_ms(paris_ms(19, 9));
    let (status, resolved) = app
        .post_json_as(
            &format!("/v1/tickets/{key}/transition"),
            SUPPORT_KEY,
            &json!({"to": "resolved", "expected_version": 1, "resolution": "fixed in 2.4.1"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    clock.set_ms(paris_ms(20, 1));
    seed_day(&app, 19).await;
    let (status, answer) = app.get_json("/v1/launches/current/exit").await;

    // Assert: that criterion is met; headroom still has no data.
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["as_of_day"], 3);
    let tickets = criterion(&answer, "open_p0_p1_tickets");
    assert_eq!(tickets["outcome"], "met", "{tickets}");
    assert_eq!(tickets["value"], 0.0);
    assert_eq!(
        tickets["evidence"][0],
        "no P0/P1 ticket open at the end of D+3 (2026-11-19)"
    );
    assert_eq!(criterion(&answer, "kpis_ok")["days"], json!([1, 2, 3]));
    assert_eq!(answer["ready"], false, "headroom unknown: {answer}");

    // Once the window is over, the answer stays on its last day, D+4.
    clock.set_ms(paris_ms(22, 8));
    seed_day(&app, 20).await;
    let (status, answer) = app.get_json("/v1/launches/current/exit").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["as_of_day"].as_i64(),
            answer["window_over"].as_bool()
        ),
        (Some(4), Some(true)),
        "{answer}"
    );
    assert_eq!(criterion(&answer, "kpis_ok")["outcome"], "met", "{answer}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_hostile_client_gets_401_403_404_and_400_naming_the_parameter() {
    let clock = ManualClock::starting_at(paris_ms(17, 10));
    let app = launch(clock).await;

    let status = app.get("/v1/launches/current/exit", None).await.status();
    assert_eq!(status, 401);
    let (status, answer) = app
        .get_json_as("/v1/launches/current/exit", INGEST_KEY)
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer) = app.get_json("/v1/launches/nope/exit").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("not_found"))
    );
    let (status, answer) = app.get_json("/v1/launches/current/exit?day=3").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (400, Some("invalid_request")),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("day"),
        "{answer}"
    );
    let (status, answer) = app.get_json("/v1/launches/current/exit?format=pdf").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (400, Some("invalid_request")),
        "{answer}"
    );

    // D0 is over, D+1 under way: D0 is looked at, too few days for two criteria.
    let (status, answer) = app.get_json("/v1/launches/current/exit").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["as_of_day"], 0);
    assert_eq!(
        criterion(&answer, "no_p0_p1_alerts")["evidence"][0],
        "only 1 whole day since D0, 3 needed"
    );
    app.stop().await.unwrap();
}
