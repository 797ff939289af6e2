//! Lost-record reconciliation end to end: a million ids against a real
//! ClickHouse, and what a hostile client gets.

use std::collections::BTreeSet;

use bytes::BytesMut;
use hypercare_storage::rowbinary::RowBinaryExt;
use hypercare_tests::{ADMIN_KEY, READ_KEY, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use uuid::Uuid;

const SOURCE_IDS: u128 = 1_000_000;
/// 2026-11-20T00:00:00Z.
const DAY0: u32 = 1_795_132_800;

/// The i-th id of the source system.
fn id(i: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | i)
}

/// Stores events of `event` with these ids directly (a million through the
/// API would take the writer's pace, not the comparison's), on three days.
async fn seed(app: &TestApp, event: &str, ids: impl Iterator<Item = (u128, Uuid)>) {
    let mut rows = BytesMut::new();
    for (i, uuid) in ids {
        rows.put_rb_uuid(&uuid);
        rows.put_rb_str(event);
        let at = DAY0 + (i % 3) as u32 * 86_400 + 3600;
        rows.put_rb_datetime(at);
        rows.put_rb_datetime(at);
    }
    let mut insert = app.db.insert_formatted_with(
        "INSERT INTO events (event_id, event, timestamp, received_at) FORMAT RowBinary",
    );
    insert.send(rows.freeze()).await.unwrap();
    insert.end().await.unwrap();
}

fn listed(answer: &Value, side: &str) -> BTreeSet<String> {
    answer[side]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn reconcile(
    app: &TestApp,
    key: &str,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = app
        .post(&format!("/v1/reconcile{query}"), key, content_type, body)
        .await;
    let status = response.status().as_u16();
    let value = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test]
async fn reconciliation_of_a_million_ids_finds_exactly_the_137_missing_and_12_extra() {
    let app = spawn_app().await;
    let missing: BTreeSet<u128> = (0..137).map(|k| k * 7_001 + 3).collect();
    let extra: Vec<Uuid> = (0..12).map(|k| id(SOURCE_IDS + 10 + k)).collect();
    let stored = (0..SOURCE_IDS)
        .filter(|i| !missing.contains(i))
        .map(|i| (i, id(i)))
        .chain(extra.iter().enumerate().map(|(k, u)| (k as u128, *u)));
    seed(&app, "lead_created", stored).await;
    // Another event holding the missing ids must not count as having them.
    seed(&app, "lead_updated", missing.iter().map(|&i| (i, id(i)))).await;

    let mut csv = String::from("event_id\n");
    for i in 0..SOURCE_IDS {
        csv.push_str(&id(i).to_string());
        csv.push('\n');
    }
    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "?event=lead_created&limit=200",
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source_ids"], 1_000_000);
    assert_eq!(answer["missing"]["total"], 137);
    assert_eq!(answer["extra"]["total"], 12);
    let want_missing: BTreeSet<String> = missing.iter().map(|&i| id(i).to_string()).collect();
    let want_extra: BTreeSet<String> = extra.iter().map(Uuid::to_string).collect();
    assert_eq!(listed(&answer, "missing"), want_missing);
    assert_eq!(listed(&answer, "extra"), want_extra);
    // The CSV gave no days: missing ids count under no day, extras under
    // the days they were stored on.
    let rows = answer["by_event_day"].as_array().unwrap();
    let of = |day: Value| rows.iter().find(|r| r["day"] == day).cloned().unwrap();
    assert_eq!(of(Value::Null)["missing"], 137);
    assert_eq!(of(json!("2026-11-20"))["extra"], 4);
    assert_eq!(of(json!("2026-11-21"))["extra"], 4);
    assert_eq!(of(json!("2026-11-22"))["extra"], 4);
    // Nothing is left behind in the database.
    assert_eq!(
        app.sql_u64("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'reconcile%'").await,
        0
    );
}

#[tokio::test]
async fn business_ids_days_and_ranges_are_compared_per_event() {
    let app = spawn_app().await;
    let events: Vec<Value> = ["L-1", "L-2", "L-4"]
        .iter()
        .enumerate()
        .map(|(i, lead)| {
            json!({"event": "lead", "timestamp": format!("2026-11-2{i}T10:00:00Z"),
                   "properties": {"lead_id": lead}})
        })
        .collect();
    app.send_events(&events).await;
    // JSON: L-3 is missing, L-4 is extra.
    let body = json!({"event": "lead", "ids": ["L-1", "L-2", "L-3"], "id_property": "lead_id"});
    let (status, answer) =
        reconcile(&app, ADMIN_KEY, "", "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        listed(&answer, "missing"),
        BTreeSet::from(["L-3".to_owned()])
    );
    assert_eq!(listed(&answer, "extra"), BTreeSet::from(["L-4".to_owned()]));
    assert_eq!(answer["extra"]["ids"][0]["day"], "2026-11-22");
    // CSV with days, over the first two days only: L-4 (day 3) is out of range.
    let csv = "event,id,day\nlead,L-1,2026-11-20\nlead,L-9,2026-11-21\nlead,L-4,2026-11-22\n";
    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "?id_property=lead_id&from=2026-11-20&to=2026-11-21",
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source_ids"], 2);
    assert_eq!(
        listed(&answer, "missing"),
        BTreeSet::from(["L-9".to_owned()])
    );
    assert_eq!(listed(&answer, "extra"), BTreeSet::from(["L-2".to_owned()]));
    assert_eq!(answer["missing"]["ids"][0]["day"], "2026-11-21");

    // The same through `hypercare reconcile`.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), csv).unwrap();
    let args = hypercare_ingest::reconcile::cli::ReconcileArgs {
        ids: file.path().to_owned(),
        event: None,
        id_property: Some("lead_id".into()),
        from: Some("2026-11-20".into()),
        to: Some("2026-11-21".into()),
        limit: None,
        json: false,
        url: app.address.clone(),
        key: Some(ADMIN_KEY.into()),
    };
    let text = hypercare_ingest::reconcile::cli::run(args, None)
        .await
        .unwrap();
    assert_eq!(
        text,
        "2 ids compared: 1 missing in Hypercare, 1 extra in Hypercare.\n\
         missing\tlead\t2026-11-21\tL-9\n\
         extra\tlead\t2026-11-21\tL-2\n\
         count\tlead\t2026-11-21\tmissing 1\textra 1\n"
    );
}

#[tokio::test]
async fn a_hostile_client_gets_a_named_4xx_and_an_unknown_event_is_all_missing() {
    let app = spawn_app_with(|s| s.ingest.reconcile.max_ids = 3).await;
    let a = id(1).to_string();
    let json_body = |ids: Value| json!({"event": "nobody_sends_this", "ids": ids}).to_string();

    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "",
        "application/json",
        json_body(json!([a, id(2).to_string()])),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["missing"]["total"], 2);
    assert_eq!(answer["extra"]["total"], 0);

    let (status, answer) = reconcile(&app, ADMIN_KEY, "", "text/plain", a.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (415, Some("unsupported_content_type"))
    );

    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "",
        "application/json",
        json_body(json!([])),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("ids")),
        "{answer}"
    );

    let four = json!([a, a, a, a]);
    let (status, answer) =
        reconcile(&app, ADMIN_KEY, "", "application/json", json_body(four)).await;
    assert_eq!(
        (status, answer["error"].as_str(), answer["field"].as_str()),
        (413, Some("too_many_records"), Some("ids")),
        "{answer}"
    );
    let csv = format!("{a}\n{a}\n{a}\n{a}\n");
    let (status, answer) = reconcile(&app, ADMIN_KEY, "?event=e", "text/csv", csv).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (413, Some("ids")),
        "{answer}"
    );

    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "",
        "application/json",
        json_body(json!([a, "not-a-uuid"])),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("ids[1]")),
        "{answer}"
    );
    let (status, answer) = reconcile(&app, ADMIN_KEY, "", "text/csv", format!("{a}\n")).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("event")),
        "{answer}"
    );
    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "?event=e",
        "application/x-ndjson",
        "{\"id\": [1]}\n",
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("line 1")),
        "{answer}"
    );
    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "?event=e&from=2026-13-01",
        "text/csv",
        format!("{a}\n"),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("from")),
        "{answer}"
    );
    let (status, answer) = reconcile(
        &app,
        ADMIN_KEY,
        "?limit=0",
        "application/json",
        json_body(json!([a])),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("limit")),
        "{answer}"
    );
    let (status, answer) =
        reconcile(&app, ADMIN_KEY, "", "application/json", "{\"event\": 1}").await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = reconcile(
        &app,
        READ_KEY,
        "",
        "application/json",
        json_body(json!([a])),
    )
    .await;
    assert_eq!(status, 403);
}
