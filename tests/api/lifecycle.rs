//! Start-up, migrations and shutdown.

use std::time::Duration;

use hypercare::cli::{Cli, Command, run};
use hypercare_storage::migrate;
use hypercare_tests::{INGEST_KEY, ndjson_events, spawn_app, spawn_app_with, test_settings};
use serde_json::json;

#[tokio::test]
async fn serve_without_a_url_runs_its_own_clickhouse_under_its_data_folder() {
    let data_dir = tempfile::tempdir().unwrap();
    let data_path = data_dir.path().to_owned();
    let app = spawn_app_with(|settings| {
        settings.clickhouse.url = None;
        settings.clickhouse.local.http_port = 0;
        settings.clickhouse.local.tcp_port = 0;
        settings.data_dir = data_path.clone();
    })
    .await;
    let own_clickhouse = app.db.clone();

    let response = app.post_events(&json!({"event": "local"})).await;

    assert_eq!(response.status(), 202);
    assert_eq!(app.sql_u64("SELECT count() FROM events").await, 1);
    assert!(data_path.join("clickhouse/data").is_dir());
    assert!(data_path.join("clickhouse/config.xml").is_file());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data_path.join("clickhouse"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "the data folder is the user's alone");
    // Its `default` user has a password of its own, readable by this user only.
    let password_file = data_path.join("clickhouse/password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let url = own_clickhouse_url(&data_path);
    let anonymous = clickhouse::Client::default()
        .with_url(&url)
        .with_validation(false);
    assert!(
        anonymous.query("SELECT 1").fetch_one::<u8>().await.is_err(),
        "no password, no query"
    );
    let password = std::fs::read_to_string(&password_file).unwrap();
    let owner = anonymous
        .with_user("default")
        .with_password(password.trim());
    assert_eq!(owner.query("SELECT 1").fetch_one::<u8>().await.unwrap(), 1);
    app.stop().await.unwrap();
    let after_stop = tokio::time::timeout(
        Duration::from_secs(5),
        own_clickhouse.query("SELECT 1").fetch_one::<u8>(),
    )
    .await;
    assert!(
        !matches!(after_stop, Ok(Ok(_))),
        "the local ClickHouse still answers after stop"
    );
}

#[tokio::test]
async fn without_configured_keys_a_development_key_is_made_and_kept() {
    let app = spawn_app_with(|settings| settings.auth.keys.clear()).await;
    // The harness gives each app its own data folder; the key is written there.
    let key = std::fs::read_to_string(app.data_dir().join("dev-api-key")).unwrap();
    let key = key.trim();
    assert!(key.starts_with("hc_dev_") && key.len() > 20);

    let response = app
        .post("/v1/events", key, "application/json", r#"{"event":"dev"}"#)
        .await;

    assert_eq!(response.status(), 202);
    assert_eq!(
        app.post("/v1/events", INGEST_KEY, "application/json", "{}")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn migrations_are_recorded_once_and_rerunning_them_changes_nothing() {
    let app = spawn_app().await;
    let (mut settings, _dir) = test_settings().await;
    settings.clickhouse.database = app.database.clone();

    run(
        Cli {
            config: None,
            command: Command::Migrate,
        },
        settings.clone(),
    )
    .await
    .unwrap();
    let store = hypercare_storage::connect(
        settings.clickhouse.url.as_deref().unwrap(),
        &settings.clickhouse,
    )
    .await
    .unwrap();
    let outcome = migrate::run(&store).await.unwrap();

    // Every migration of the list, whatever capabilities add to it.
    let versions: Vec<u32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    let count = versions.len() as u64;
    assert!(outcome.applied.is_empty());
    assert_eq!(outcome.already_applied, versions);
    assert_eq!(
        app.sql_u64("SELECT count() FROM schema_migrations").await,
        count
    );
    assert_eq!(
        app.sql_u64("SELECT uniqExact(version) FROM schema_migrations")
            .await,
        count
    );

    // Migrations applied but not recorded (a replica stopped in between, or two
    // replicas starting together) runs again without harm, even its ADD COLUMNs,
    // which 18.16 cannot write as IF NOT EXISTS.
    app.db
        .query("TRUNCATE TABLE schema_migrations")
        .execute()
        .await
        .unwrap();
    let outcome = migrate::run(&store).await.unwrap();
    assert_eq!(outcome.applied, versions);
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_stops_start_up() {
    let app = spawn_app().await;
    app.db
        .query("INSERT INTO schema_migrations VALUES (1, 'events', 'not-the-checksum', now() + 60)")
        .execute()
        .await
        .unwrap();
    let (mut settings, _dir) = test_settings().await;
    settings.clickhouse.database = app.database.clone();

    let error = hypercare::Application::build(settings).await.err().unwrap();

    let message = format!("{error:#}");
    assert!(
        message.contains("migration 0001 (events) was changed"),
        "{message}"
    );
}

#[tokio::test]
async fn shutdown_stores_every_acknowledged_row_before_exiting() {
    let app = spawn_app_with(|settings| settings.ingest.writer.flush_interval_ms = 300).await;
    let mut requests = Vec::new();
    for _ in 0..20 {
        let (http, address) = (app.http.clone(), app.address.clone());
        requests.push(tokio::spawn(async move {
            http.post(format!("{address}/v1/events"))
                .bearer_auth(INGEST_KEY)
                .header("content-type", "application/x-ndjson")
                .body(ndjson_events("in_flight", 200))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    // Stop once rows wait in the writer's queue (a loaded machine may take
    // longer than the flush interval to get the first request in).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        let queued = metrics.lines().any(|l| {
            l.starts_with("hypercare_writer_queue_rows{table=\"events\"}") && !l.ends_with(" 0")
        });
        if queued || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let db = app.db.clone();

    app.stop().await.unwrap();

    let mut acknowledged = 0;
    for request in requests {
        if let Ok(Ok(202)) = request.await {
            acknowledged += 1;
        }
    }
    assert!(acknowledged > 0, "no request was in flight");
    let stored: u64 = db
        .query("SELECT uniqExact(event_id) FROM events")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(stored, acknowledged * 200);
}

/// The HTTP URL of the local server whose config Hypercare wrote under `data_dir`.
fn own_clickhouse_url(data_dir: &std::path::Path) -> String {
    let config = std::fs::read_to_string(data_dir.join("clickhouse/config.xml")).unwrap();
    let port = config
        .split("<http_port>")
        .nth(1)
        .and_then(|rest| rest.split("</http_port>").next())
        .unwrap();
    format!("http://127.0.0.1:{port}")
}
