//! The statistical judge on a launch day, end to end: a KPI that dropped by
//! half on D+1 is judged significantly worse than its baseline days' same
//! hours; one that did not move is not; a quiet day has no verdict but
//! `no_change`.

use chrono::TimeZone;
use hypercare_tests::*;
use serde_json::{Value, json};

fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 11, d, h, min, 0)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

/// Baseline days 2026-11-09..15, D0 on the 16th, D+1 on the 17th: from 08:00
/// to 20:00 each hour, about 10 orders (5 on D+1) and 20 searches.
async fn seeded() -> TestApp {
    let clock = ManualClock::starting_at(paris_ms(17, 21, 30));
    let app = spawn_app_on(clock, |_| {}).await;
    let (status, answer) = app
        .post_json(
            "/v1/launches",
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T00:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for (id, event) in [("orders", "order_placed"), ("searches", "search_performed")] {
        let (status, answer) = app
            .put_json(
                &format!("/v1/kpis/{id}"),
                &json!({"title": id, "aggregation": "count", "filter": {"event": event},
                        "direction": "higher_is_better", "target": 100, "warning": 50, "critical": 20}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let mut lines = Vec::new();
    for day in 9..=17u32 {
        for hour in 8..20u32 {
            let wobble = u64::from((day * 7 + hour * 3) % 3); // 0, 1 or 2
            let orders = if day == 17 { 4 + wobble } else { 9 + wobble };
            for (event, count) in [("order_placed", orders), ("search_performed", 19 + wobble)] {
                for i in 0..count {
                    lines.push(
                        json!({"event": event, "event_id": uuid::Uuid::new_v4().to_string(),
                               "timestamp": paris_ms(day, hour, 0) + i * 60_000, "user_id": format!("u{i}")}),
                    );
                }
            }
        }
    }
    app.send_events(&lines).await;
    app
}

fn verdict<'a>(answer: &'a Value, kpi: &str) -> &'a Value {
    answer["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kpi"] == kpi)
        .unwrap_or_else(|| panic!("no {kpi} in {answer}"))
}

#[tokio::test]
async fn a_kpi_that_halved_on_d1_is_judged_worse_and_one_that_held_is_not() {
    let app = seeded().await;

    let (status, answer) = app.get_json("/v1/launches/current/judgement?day=1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["date"], "2026-11-17");
    assert_eq!(answer["tz"], "Europe/Paris");
    // 00:00..21:00 of the 17th: the hour under way is not judged.
    assert_eq!(answer["hours"], 21);
    let orders = verdict(&answer, "orders");
    assert_eq!(orders["verdict"], "worse", "{orders}");
    assert!(orders["p_adjusted"].as_f64().unwrap() < 0.05, "{orders}");
    assert!(
        orders["relative_shift"].as_f64().unwrap() < -0.3,
        "{orders}"
    );
    assert_eq!(orders["launch_values"], 21);
    assert_eq!(orders["baseline_values"], 7 * 21);
    let searches = verdict(&answer, "searches");
    assert_eq!(searches["verdict"], "no_change", "{searches}");

    // D0 looked like its baseline: nothing moved.
    let (status, answer) = app.get_json("/v1/launches/current/judgement?day=0").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        verdict(&answer, "orders")["verdict"],
        "no_change",
        "{answer}"
    );
    assert_eq!(answer["hours"], 24);

    // Today by default; a day far outside any launch is refused by its field.
    let (status, answer) = app.get_json("/v1/launches/current/judgement").await;
    assert_eq!(
        (status.as_u16(), answer["day"].as_i64()),
        (200, Some(1)),
        "{answer}"
    );
    let (status, answer) = app
        .get_json("/v1/launches/current/judgement?day=9000")
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], "day");
    let (status, answer) = app.get_json("/v1/launches/nope/judgement?day=1").await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await.unwrap();
}
