//! What clients see when ClickHouse hangs or goes away: a real server behind a
//! proxy that the test stalls or cuts.

use std::time::Duration;

use hypercare_tests::proxy::{FaultyProxy, Mode};
use hypercare_tests::{
    ADMIN_KEY, INGEST_KEY, TestApp, clickhouse, eventually, ndjson_events, spawn_app_with,
};
use serde_json::Value;

async fn app_behind_proxy(
    customize: impl FnOnce(&mut hypercare::Settings),
) -> (TestApp, FaultyProxy) {
    let upstream = clickhouse()
        .await
        .url
        .trim_start_matches("http://")
        .to_owned();
    let proxy = FaultyProxy::start(upstream).await;
    let url = proxy.url.clone();
    let app = spawn_app_with(|settings| {
        settings.clickhouse.url = Some(url);
        settings.ingest.writer.flush_interval_ms = 10;
        customize(settings);
    })
    .await;
    (app, proxy)
}

async fn metric_value(app: &TestApp, prefix: &str) -> f64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn ingest_returns_503_when_the_write_queue_is_full_and_loses_nothing() {
    let first_body = ndjson_events("first", 1900);
    let second_body = ndjson_events("second", 1900);
    // Each body fits the queue alone (RowBinary is smaller than JSON); two do not.
    let capacity = first_body.len().max(second_body.len()) + 1_000;
    let (app, proxy) = app_behind_proxy(|settings| {
        settings.ingest.limits.max_body_bytes = capacity;
        settings.ingest.writer.queue_capacity_bytes = capacity;
        settings.ingest.writer.max_queue_share_per_key = 1.0;
        settings.ingest.writer.ack_timeout_ms = 30_000;
    })
    .await;
    proxy.set(Mode::Stall);
    let first = {
        let (http, address) = (app.http.clone(), app.address.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/v1/events"))
                .bearer_auth(INGEST_KEY)
                .header("content-type", "application/x-ndjson")
                .body(first_body)
                .send()
                .await
                .unwrap()
        })
    };
    eventually(
        "the first request is queued",
        Duration::from_secs(10),
        || async {
            (metric_value(&app, "hypercare_writer_queue_rows{table=\"events\"}").await >= 1900.0)
                .then_some(())
        },
    )
    .await;

    let second = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            second_body,
        )
        .await;

    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(second.json::<Value>().await.unwrap()["error"], "queue_full");
    proxy.set(Mode::Forward);
    let first = first.await.unwrap();
    assert_eq!(first.status(), 202);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'first'")
            .await,
        1900
    );
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'second'")
            .await,
        0
    );
    assert_eq!(
        metric_value(&app, "hypercare_writer_queue_full_total{table=\"events\"}").await,
        1.0
    );
}

#[tokio::test]
async fn readyz_fails_while_clickhouse_is_unreachable_and_recovers() {
    let (app, proxy) = app_behind_proxy(|_| {}).await;
    eventually("ready", Duration::from_secs(10), || async {
        (app.get("/readyz", None).await.status() == 200).then_some(())
    })
    .await;

    proxy.set(Mode::Refuse);

    eventually("not ready", Duration::from_secs(10), || async {
        (app.get("/readyz", None).await.status() == 503).then_some(())
    })
    .await;
    let body: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(body["components"]["clickhouse"]["ready"], false);
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "alive, only not ready"
    );
    proxy.set(Mode::Forward);
    eventually("ready again", Duration::from_secs(10), || async {
        (app.get("/readyz", None).await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn rows_sent_during_a_short_outage_are_stored_once_clickhouse_is_back() {
    let (app, proxy) = app_behind_proxy(|settings| {
        settings.ingest.writer.ack_timeout_ms = 20_000;
    })
    .await;
    proxy.set(Mode::Refuse);
    let request = {
        let (http, address) = (app.http.clone(), app.address.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/v1/events"))
                .bearer_auth(INGEST_KEY)
                .header("content-type", "application/x-ndjson")
                .body(ndjson_events("outage", 300))
                .send()
                .await
                .unwrap()
        })
    };
    eventually("an insert has failed", Duration::from_secs(10), || async {
        (metric_value(
            &app,
            "hypercare_clickhouse_errors_total{kind=\"retryable\",table=\"events\"}",
        )
        .await
            >= 1.0)
            .then_some(())
    })
    .await;

    proxy.set(Mode::Forward);

    let response = request.await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        app.sql_u64("SELECT uniqExact(event_id) FROM events").await,
        300
    );
}

#[tokio::test]
async fn a_request_whose_rows_cannot_be_stored_in_time_gets_503_with_retry_after() {
    let (app, proxy) = app_behind_proxy(|settings| {
        settings.ingest.writer.ack_timeout_ms = 1_000;
    })
    .await;
    proxy.set(Mode::Refuse);

    let response = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            ndjson_events("lost", 10),
        )
        .await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(
        ["storage_unavailable", "not_confirmed"].contains(&body["error"].as_str().unwrap()),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("retry"));
}

#[tokio::test]
async fn reads_answer_503_or_504_while_clickhouse_hangs_instead_of_hanging_with_it() {
    let (app, proxy) = app_behind_proxy(|settings| {
        settings.clickhouse.query_timeout_secs = 1;
    })
    .await;
    let launch = app
        .http
        .post(format!("{}/v1/launches", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-20T09:00:00+01:00", "tz": "Europe/Paris"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launch.status(), 201, "{}", launch.text().await.unwrap());

    proxy.set(Mode::Stall);

    let paths = [
        "/v1/launches",
        "/v1/tickets",
        "/v1/tickets/stats?from=2026-11-01&to=2026-11-07",
        "/v1/alerts/history",
        "/v1/events/summary",
        "/v1/metrics/quantile?name=latency_seconds&q=0.5",
    ];
    // All at once: the store stays hung until every one has answered, so an
    // answer at all is the deadline at work.
    let requests = paths.map(|path| {
        let request = app
            .http
            .get(format!("{}{path}", app.address))
            .bearer_auth(ADMIN_KEY)
            .timeout(Duration::from_secs(30));
        tokio::spawn(async move {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} did not answer while ClickHouse hangs: {e}"));
            let status = response.status().as_u16();
            (path, status, response.json::<Value>().await.unwrap())
        })
    });
    for request in requests {
        let (path, status, body) = request.await.unwrap();
        assert!([503, 504].contains(&status), "{path}: {status} {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    proxy.set(Mode::Forward);
    eventually("reads work again", Duration::from_secs(20), || async {
        (app.get("/v1/events/summary", Some(ADMIN_KEY))
            .await
            .status()
            == 200)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_key_filling_its_share_of_the_queue_leaves_room_for_the_others() {
    let body = ndjson_events("noisy", 1900);
    let capacity = 2 * body.len() + 2_000;
    let (app, proxy) = app_behind_proxy(|settings| {
        settings.ingest.limits.max_body_bytes = body.len() + 1_000;
        settings.ingest.writer.queue_capacity_bytes = capacity;
        settings.ingest.writer.max_queue_share_per_key = 0.5;
        settings.ingest.writer.ack_timeout_ms = 30_000;
    })
    .await;
    proxy.set(Mode::Stall);
    let send = |key: &'static str, body: String| {
        let (http, address) = (app.http.clone(), app.address.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/v1/events"))
                .bearer_auth(key)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap()
        })
    };
    let noisy_first = send(INGEST_KEY, body.clone());
    eventually(
        "the noisy key's request is queued",
        Duration::from_secs(10),
        || async {
            (metric_value(&app, "hypercare_writer_queue_rows{table=\"events\"}").await >= 1900.0)
                .then_some(())
        },
    )
    .await;

    let noisy_second = app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            ndjson_events("noisy", 1900),
        )
        .await;
    let quiet = send(ADMIN_KEY, ndjson_events("quiet", 1900));
    eventually(
        "the quiet key's request is queued too",
        Duration::from_secs(10),
        || async {
            (metric_value(&app, "hypercare_writer_queue_rows{table=\"events\"}").await >= 3800.0)
                .then_some(())
        },
    )
    .await;

    assert_eq!(noisy_second.status(), 503);
    assert_eq!(noisy_second.headers()["retry-after"], "1");
    let error: Value = noisy_second.json().await.unwrap();
    assert_eq!(error["error"], "key_queue_share_full", "{error}");
    proxy.set(Mode::Forward);
    assert_eq!(noisy_first.await.unwrap().status(), 202);
    assert_eq!(quiet.await.unwrap().status(), 202);
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'quiet'")
            .await,
        1900
    );
    assert_eq!(
        app.sql_u64("SELECT count() FROM events WHERE event = 'noisy'")
            .await,
        1900
    );
}
