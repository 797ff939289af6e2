//! Feedback tickets end to end: intake, the state machine, priorities, SLA clocks
//! on a manual clock, search, statistics, concurrent changes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use hypercare_tests::{
    INGEST_KEY, ManualClock, READ_KEY, SUPPORT_KEY, TestApp, eventually, spawn_app_on,
};

/// 2026-11-20T08:00:00Z.
const START_MS: u64 = 1_795_161_600_000;

async fn app_with_clock() -> (TestApp, Arc<ManualClock>) {
    let clock = ManualClock::starting_at(START_MS);
    let app = spawn_app_on(clock.clone(), |settings| {
        settings.tickets.metrics_refresh_secs = 1;
    })
    .await;
    (app, clock)
}

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, answer) = app.post_json_as("/v1/tickets", SUPPORT_KEY, &body).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

fn bug(title: &str) -> Value {
    json!({"title": title, "description": "steps: open checkout, pay", "category": "bug",
           "impact": "high", "urgency": "high", "release": "2.4.1", "channel": "chat",
           "reporter": "agent-ana", "affected_user": "u-42", "launch": "spring"})
}

/// Waits until /metrics shows `line` (the gauges refresh every second here).
async fn metrics_show(app: &TestApp, line: &str) {
    eventually(line, Duration::from_secs(10), || async {
        let metrics = app.get("/metrics", None).await.text().await.ok()?;
        metrics.contains(line).then_some(())
    })
    .await
}

async fn sla_of(app: &TestApp, id: &str) -> Value {
    let path = format!("/v1/tickets/{id}");
    app.get_json_as(&path, SUPPORT_KEY).await.1["ticket"]["sla"].clone()
}

/// POST `body` to `/v1/tickets/{id}/<action>` with the support key.
async fn act(app: &TestApp, id: &str, action: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/tickets/{id}/{action}");
    let (status, answer) = app.post_json_as(&path, SUPPORT_KEY, &body).await;
    (status.as_u16(), answer)
}

async fn move_to(app: &TestApp, id: &str, to: &str, version: u64) -> (u16, Value) {
    let mut body = json!({"to": to, "expected_version": version});
    if to == "resolved" {
        body["resolution"] = "fixed in 2.4.2".into();
    }
    act(app, id, "transition", body).await
}

async fn list(app: &TestApp, query: &str) -> (u16, Value) {
    let (status, page) = app
        .get_json_as(&format!("/v1/tickets?{query}"), READ_KEY)
        .await;
    (status.as_u16(), page)
}

#[tokio::test]
async fn a_ticket_goes_through_its_life_and_keeps_every_change() {
    let (app, clock) = app_with_clock().await;
    let created = create(&app, bug("Payment fails at checkout")).await;
    let ticket = &created["ticket"];
    assert_eq!(ticket["key"], "HC-1");
    assert_eq!(ticket["state"], "new");
    assert_eq!(ticket["priority"], "P1", "high impact x high urgency");
    let id = ticket["id"].as_str().unwrap().to_owned();

    let mut version = 1;
    for to in [
        "triaged",
        "in_progress",
        "waiting_on_user",
        "in_progress",
        "resolved",
        "closed",
        "in_progress",
        "resolved",
    ] {
        clock.advance_minutes(5);
        let (status, answer) = move_to(&app, &id, to, version).await;
        assert_eq!(status, 200, "{to}: {answer}");
        assert_eq!(answer["state"], to);
        version += 1;
        assert_eq!(answer["version"], version);
    }
    let (status, _) = act(
        &app,
        &id,
        "assign",
        json!({"assignee": "bob", "expected_version": version}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = act(&app, &id, "comments",
        json!({"body": "deployed the fix", "visibility": "public", "expected_version": version + 1})).await;
    assert_eq!(status, 201);

    let (status, shown) = app.get_json_as("/v1/tickets/HC-1", READ_KEY).await;
    assert_eq!(status, 200, "{shown}");
    let history = shown["history"].as_array().unwrap();
    let changes: Vec<(&str, &str)> = history
        .iter()
        .map(|c| (c["change"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert_eq!(changes.len(), 11);
    assert_eq!(changes[0], ("created", "new"));
    assert_eq!(changes[6], ("transition", "closed"));
    assert_eq!(changes[7], ("transition", "in_progress"), "reopened");
    assert_eq!(changes[9], ("assigned", "resolved"));
    assert_eq!(history[10]["comment"], "deployed the fix");
    assert!(history.iter().all(|c| c["actor"] == "support-key"));
    assert_eq!(shown["ticket"]["assignee"], "bob");
    assert_eq!(shown["ticket"]["resolution"], "fixed in 2.4.2");
}

#[tokio::test]
async fn illegal_moves_answer_409_with_the_allowed_ones() {
    let (app, _clock) = app_with_clock().await;
    let id = create(&app, bug("Login loops")).await["ticket"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, answer) = move_to(&app, &id, "closed", 1).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "conflict");
    assert_eq!(answer["state"], "new");
    assert_eq!(
        answer["allowed"],
        json!(["triaged", "in_progress", "resolved"])
    );

    let (status, answer) = move_to(&app, &id, "sleeping", 1).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("to")));
    let (status, answer) = act(
        &app,
        &id,
        "transition",
        json!({"to": "resolved", "expected_version": 1}),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("resolution"))
    );
    let (status, answer) = act(&app, &id, "transition", json!({"to": "triaged"})).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("expected_version"))
    );
    let (status, _) = move_to(&app, "HC-999", "triaged", 1).await;
    assert_eq!(status, 404);

    // Nothing of that changed the ticket.
    assert_eq!(app.sql_u64("SELECT count() FROM ticket_events").await, 1);
}

#[tokio::test]
async fn priority_comes_from_the_matrix_and_an_override_needs_a_reason() {
    let (app, _clock) = app_with_clock().await;
    let mut body = json!({"title": "Export is slow", "category": "performance",
                          "impact": "medium", "urgency": "low"});
    assert_eq!(create(&app, body.clone()).await["ticket"]["priority"], "P4");
    body["urgency"] = "high".into();
    assert_eq!(create(&app, body.clone()).await["ticket"]["priority"], "P2");

    body["priority"] = "P1".into();
    let (status, answer) = app.post_json_as("/v1/tickets", SUPPORT_KEY, &body).await;
    assert_eq!(
        (status.as_u16(), answer["field"].as_str()),
        (400, Some("priority_reason")),
        "{answer}"
    );
    body["priority_reason"] = "the CEO's demo is at 3 pm".into();
    let ticket = create(&app, body).await["ticket"].clone();
    assert_eq!(
        (
            ticket["priority"].as_str(),
            ticket["priority_reason"].as_str()
        ),
        (Some("P1"), Some("the CEO's demo is at 3 pm"))
    );

    // Re-grading later goes through the matrix too.
    let id = ticket["id"].as_str().unwrap();
    let (status, answer) = act(
        &app,
        id,
        "priority",
        json!({"impact": "low", "urgency": "low", "expected_version": 1}),
    )
    .await;
    assert_eq!(
        (status, answer["priority"].as_str()),
        (200, Some("P4")),
        "{answer}"
    );

    // Templates: a bug needs a description and a release; bad values are named.
    for (change, field) in [
        (json!({"release": null}), "release"),
        (json!({"category": "gossip"}), "category"),
        (json!({"impact": "apocalyptic"}), "impact"),
        (json!({"title": ""}), "title"),
        (json!({"severity": "high"}), "severity"),
    ] {
        let mut body = bug("x");
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let (status, answer) = app.post_json_as("/v1/tickets", SUPPORT_KEY, &body).await;
        assert_eq!(
            (status.as_u16(), answer["field"].as_str()),
            (400, Some(field)),
            "{answer}"
        );
    }
    // Ingest keys cannot log tickets; read keys can read but not write.
    let (status, _) = app.post_json_as("/v1/tickets", INGEST_KEY, &bug("x")).await;
    assert_eq!(status, 403);
    let (status, _) = app.post_json_as("/v1/tickets", READ_KEY, &bug("x")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn sla_clocks_run_on_the_clock_and_stop_when_met() {
    let (app, clock) = app_with_clock().await;
    // P1: first response within 30 min, resolution within 8 h (defaults).
    let id = create(&app, bug("Orders lost")).await["ticket"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.advance_minutes(20);
    let s = sla_of(&app, &id).await;
    assert_eq!(
        (
            s["first_response"]["at_risk"].as_bool(),
            s["first_response"]["breached"].as_bool()
        ),
        (Some(false), Some(false))
    );
    clock.advance_minutes(5);
    let s = sla_of(&app, &id).await;
    assert_eq!(
        s["first_response"]["at_risk"], true,
        "25 of 30 minutes used: {s}"
    );
    assert_eq!(s["first_response"]["elapsed_minutes"], 25.0);
    clock.advance_minutes(10);
    let s = sla_of(&app, &id).await;
    assert_eq!(s["first_response"]["breached"], true);
    // The breach reaches /metrics.
    metrics_show(
        &app,
        "hypercare_tickets_sla_breached{clock=\"first_response\",priority=\"P1\"} 1",
    )
    .await;

    // The first public comment stops the first-response clock.
    let (status, _) = act(
        &app,
        &id,
        "comments",
        json!({"body": "looking", "visibility": "public", "expected_version": 1}),
    )
    .await;
    assert_eq!(status, 201);
    clock.advance_minutes(60);
    let s = sla_of(&app, &id).await;
    assert_eq!(s["first_response"]["met_at"], "2026-11-20T08:35:00.000Z");
    assert_eq!(s["first_response"]["elapsed_minutes"], 35.0);
    assert_eq!(s["resolution"]["breached"], false);

    // The open ticket and its missed first response show on /metrics (refreshed
    // every second here) for the alert tiers.
    metrics_show(&app, "hypercare_tickets_open{priority=\"P1\"} 1").await;
    // Met since.
    metrics_show(
        &app,
        "hypercare_tickets_sla_breached{clock=\"first_response\",priority=\"P1\"} 0",
    )
    .await;

    clock.advance_minutes(8 * 60);
    let s = sla_of(&app, &id).await;
    assert_eq!(s["resolution"]["breached"], true);
}

#[tokio::test]
async fn two_agents_changing_one_ticket_at_once_get_one_success_and_one_conflict() {
    let (app, _clock) = app_with_clock().await;
    let id = create(&app, bug("Cart empties itself")).await["ticket"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for round in 0..5u64 {
        let version = round + 1;
        let a = act(
            &app,
            &id,
            "assign",
            json!({"assignee": format!("ana-{round}"), "expected_version": version}),
        );
        let b = act(
            &app,
            &id,
            "assign",
            json!({"assignee": format!("bob-{round}"), "expected_version": version}),
        );
        let ((sa, _), (sb, answer_b)) = tokio::join!(a, b);
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}");
        if sb == 409 {
            assert_eq!(answer_b["current_version"], version + 1);
        }
    }
    // One version per successful change, no lost or doubled change.
    assert_eq!(app.sql_u64("SELECT count() FROM ticket_events").await, 6);
    assert_eq!(
        app.sql_u64("SELECT uniqExact(version) FROM ticket_events")
            .await,
        6
    );
}

#[tokio::test]
async fn search_filters_pages_and_suggests_similar_tickets() {
    let (app, clock) = app_with_clock().await;
    let first = create(&app, bug("Payment declined with card ending 4242")).await;
    assert_eq!(first["similar"], json!([]));
    clock.advance_minutes(1);
    let second = create(&app, bug("Card payment declined at checkout")).await;
    let similar = second["similar"].as_array().unwrap();
    assert_eq!(similar.len(), 1, "{second}");
    assert_eq!(similar[0]["key"], "HC-1");
    for i in 0..6 {
        clock.advance_minutes(1);
        create(
            &app,
            json!({"title": format!("How do I export report {i}?"), "category": "question",
                            "impact": "low", "urgency": "low"}),
        )
        .await;
    }
    let (status, page) = list(&app, "q=DECLINED").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    let (_, page) = list(
        &app,
        "category=question&limit=4&offset=4&sort=created&order=asc",
    )
    .await;
    assert_eq!(page["total"], 6);
    let titles: Vec<&str> = page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["How do I export report 4?", "How do I export report 5?"]
    );
    let (_, page) = list(&app, "priority=P1&release=2.4.1&state=new").await;
    assert_eq!(page["total"], 2);
    let (_, page) = list(&app, "sort=priority&order=asc&limit=1").await;
    assert_eq!(page["tickets"][0]["priority"], "P1");
    let (status, answer) = list(&app, "state=sleeping").await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("state")));
    let (status, answer) = list(&app, "sort=title").await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("sort")));
}

#[tokio::test]
async fn stats_per_day_match_counts_made_in_the_test() {
    let (app, clock) = app_with_clock().await;
    // Day 1 (2026-11-20, UTC): 3 bugs (P1) and 1 question (P4); one bug resolved the same day.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            create(&app, bug(&format!("bug {i}"))).await["ticket"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    create(&app, json!({"title": "how to export", "category": "question", "impact": "low", "urgency": "low"})).await;
    clock.advance_minutes(60);
    let (status, _) = move_to(&app, &ids[0], "resolved", 1).await;
    assert_eq!(status, 200);
    // Day 2: one more bug; a second one is resolved; nobody answered the third (breached).
    clock.set_ms(START_MS + 24 * 3600 * 1000);
    create(&app, bug("bug 3")).await;
    let (status, _) = move_to(&app, &ids[1], "resolved", 1).await;
    assert_eq!(status, 200);

    let (status, stats) = app
        .get_json_as(
            "/v1/tickets/stats?from=2026-11-20&to=2026-11-21&tz=UTC",
            READ_KEY,
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    let day1 = &stats["days"][0];
    assert_eq!(
        (
            day1["date"].as_str(),
            day1["opened"].as_u64(),
            day1["resolved"].as_u64(),
            day1["backlog"].as_u64()
        ),
        (Some("2026-11-20"), Some(4), Some(1), Some(3))
    );
    assert_eq!(day1["opened_by_category"], json!({"bug": 3, "question": 1}));
    assert_eq!(day1["opened_by_priority"], json!({"P1": 3, "P4": 1}));
    // P1 targets: first response 30 min (due 08:30), resolution 8 h (due 16:00).
    // First responses: ticket 0 answered by its resolution at 09:00 (late), tickets 1
    // and 2 never: 3. Resolutions: ticket 1 resolved on day 2 (late), ticket 2 never: 2.
    assert_eq!(day1["breaches"], 5);
    let day2 = &stats["days"][1];
    assert_eq!(
        (
            day2["opened"].as_u64(),
            day2["resolved"].as_u64(),
            day2["backlog"].as_u64()
        ),
        (Some(1), Some(1), Some(3))
    );
    // The question (P4) was due a first response 24 h after creation, now: unanswered.
    assert_eq!(day2["breaches"], 1);

    let (status, answer) = app
        .get_json_as(
            "/v1/tickets/stats?from=2026-11-20&tz=Mars/Olympus",
            READ_KEY,
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["field"].as_str()),
        (400, Some("tz"))
    );
}

/// `hypercare ticket ...` drives the same API from a terminal.
#[tokio::test]
async fn the_ticket_command_creates_moves_and_lists() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ticket: hypercare_tickets::cli::TicketArgs,
    }
    let (app, _clock) = app_with_clock().await;
    let run = |words: &[&str]| {
        let mut argv = vec![
            "hypercare-ticket",
            "--url",
            app.address.as_str(),
            "--key",
            SUPPORT_KEY,
        ];
        argv.extend_from_slice(words);
        let cli = Cli::try_parse_from(argv).unwrap();
        hypercare_tickets::cli::run(cli.ticket, None)
    };
    run(&[
        "create",
        "--title",
        "Refund missing",
        "--category",
        "billing",
        "--impact",
        "high",
        "--urgency",
        "medium",
        "--affected-user",
        "u-7",
        "--description",
        "paid twice",
    ])
    .await
    .unwrap();
    run(&["move", "HC-1", "--to", "triaged"]).await.unwrap();
    run(&["comment", "HC-1", "--body", "refund queued", "--public"])
        .await
        .unwrap();
    run(&["list", "--state", "triaged"]).await.unwrap();
    let error = run(&["move", "HC-1", "--to", "closed"]).await.unwrap_err();
    assert!(error.to_string().contains("409"), "{error}");
    assert!(
        error.to_string().contains("in_progress"),
        "the allowed moves: {error}"
    );

    let (_, shown) = app.get_json_as("/v1/tickets/HC-1", READ_KEY).await;
    assert_eq!(shown["ticket"]["state"], "triaged");
    assert_eq!(shown["ticket"]["priority"], "P2");
    assert_eq!(shown["history"].as_array().unwrap().len(), 3);
}
