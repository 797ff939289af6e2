//! The end-to-end test harness.
//!
//! [`spawn_app`] starts the real service on a free port against a real ClickHouse,
//! in a database of its own, and returns a [`TestApp`] with typed helpers for HTTP
//! and SQL. The ClickHouse server is started once per test process from the
//! Debian `clickhouse-server` binary, on free ports, with a throw-away data folder;
//! set `HYPERCARE_TEST_CLICKHOUSE_URL` to run the same tests against another server
//! (a modern one, say). Logs show only when `TEST_LOG` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hypercare::Settings;
use hypercare::startup::Application;
pub use hypercare_runtime::{ManualClock, SharedClock, SystemClock};
use hypercare_storage::LocalServerSettings;
use hypercare_storage::local::LocalClickHouse;
use secrecy::SecretString;
use tokio::sync::OnceCell;

pub mod bench;
pub mod browser;
pub mod proxy;
pub mod receiver;

pub use hypercare_http_keys::*;

/// API keys the test applications accept.
pub mod hypercare_http_keys {
    pub const INGEST_KEY: &str = "test-ingest-key-0123456789";
    pub const READ_KEY: &str = "test-read-key-0123456789ab";
    pub const ADMIN_KEY: &str = "test-admin-key-0123456789a";
    pub const SUPPORT_KEY: &str = "test-support-key-012345678";
}

static CLICKHOUSE: OnceCell<TestClickHouse> = OnceCell::const_new();

/// The ClickHouse server of this test process.
pub struct TestClickHouse {
    pub url: String,
    _local: Option<LocalClickHouse>,
}

/// Starts (once) and returns the test ClickHouse server.
pub async fn clickhouse() -> &'static TestClickHouse {
    CLICKHOUSE
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("HYPERCARE_TEST_CLICKHOUSE_URL") {
                return TestClickHouse { url, _local: None };
            }
            let dir = test_server_dir();
            // Throw-away and shared by every test of the process, which also
            // reach it directly: no password (the service's own local default,
            // with one, is tested in `lifecycle`).
            let settings = LocalServerSettings {
                http_port: 0,
                tcp_port: 0,
                generate_password: false,
                ..LocalServerSettings::default()
            };
            let local = LocalClickHouse::start(&dir, &settings)
                .await
                .expect("starting the test ClickHouse server (is clickhouse-server installed? run tests/run)");
            TestClickHouse {
                url: local.url(),
                _local: Some(local),
            }
        })
        .await
}

/// `$TMPDIR/hypercare-tests/clickhouse-<pid>`. The server is never dropped (it is
/// process-wide) so its folder outlives the process; folders of processes that
/// are gone are removed here, at the next start.
fn test_server_dir() -> PathBuf {
    let root = std::env::temp_dir().join("hypercare-tests");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("clickhouse-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists()) {
                // Best effort: another test process may be removing it too.
                std::fs::remove_dir_all(entry.path()).ok();
            }
        }
    }
    root.join(format!("clickhouse-{}", std::process::id()))
}

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub http: reqwest::Client,
    /// A client bound to this test's database.
    pub db: clickhouse::Client,
    pub database: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

/// The settings of a test application: free port, own database, a key per scope.
pub async fn test_settings() -> (Settings, tempfile::TempDir) {
    hypercare_telemetry::init_test_logs();
    let server = clickhouse().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: data_dir.path().to_owned(),
        ..Settings::default()
    };
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 5;
    settings.clickhouse.url = Some(server.url.clone());
    settings.clickhouse.database = format!("test_{}", uuid::Uuid::new_v4().simple());
    // Suites write launches of November 2026 at fixed dates; the 90-day horizon
    // would turn them into rejections as the calendar moves on. The horizon
    // itself is tested with its default in `hostile`.
    settings.ingest.limits.max_age_days = 3650;
    settings.auth.keys = [
        ("ingest-key", INGEST_KEY, "ingest"),
        ("read-key", READ_KEY, "read"),
        ("admin-key", ADMIN_KEY, "admin"),
        ("support-key", SUPPORT_KEY, "support"),
    ]
    .into_iter()
    .map(|(name, key, scope)| {
        serde_json::from_value(serde_json::json!({"name": name, "key": key, "scopes": [scope]}))
            .unwrap()
    })
    .collect();
    (settings, data_dir)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts an application with test settings changed by `customize`, on the
/// wall clock.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(Arc::new(SystemClock), customize).await
}

/// Starts an application whose one clock is `clock` (a [`ManualClock`] that the
/// test moves: an SLA that runs out, a board read "at 10:30", an alert that
/// repeats), with test settings changed by `customize`.
pub async fn spawn_app_on(clock: SharedClock, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, data_dir) = test_settings().await;
    customize(&mut settings);
    let database = settings.clickhouse.database.clone();
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("building the application");
    let port = app.port();
    let db = app.store().client.clone();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        stopped.await.ok();
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        db,
        database,
        shutdown: Some(shutdown),
        task: Some(task),
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// The application's data folder (a temporary one).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// `POST path` with `body` and `content_type`, authenticated with `key`.
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.address))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request failed")
    }

    /// `POST /v1/events` with a JSON body and the ingest key.
    pub async fn post_events(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post(
            "/v1/events",
            INGEST_KEY,
            "application/json",
            body.to_string(),
        )
        .await
    }

    /// `POST /v1/events` of `events` as NDJSON with the ingest key, which must
    /// answer 202, then waits until the table holds them: the seed of a test.
    pub async fn send_events(&self, events: &[serde_json::Value]) {
        let db = &self.db;
        let count = || async move {
            db.query("SELECT count() FROM events")
                .fetch_one::<u64>()
                .await
                .ok()
        };
        let before = count().await.expect("counting the events");
        let body: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        let response = self
            .post(
                "/v1/events",
                INGEST_KEY,
                "application/x-ndjson",
                body.join("\n"),
            )
            .await;
        let status = response.status();
        assert_eq!(status, 202, "{}", response.text().await.unwrap());
        let expected = before + events.len() as u64;
        eventually(
            "the events stored",
            Duration::from_secs(30),
            || async move { (count().await? == expected).then_some(()) },
        )
        .await;
    }

    /// `POST /v1/metrics` with a JSON body and the ingest key.
    pub async fn post_metrics(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post(
            "/v1/metrics",
            INGEST_KEY,
            "application/json",
            body.to_string(),
        )
        .await
    }

    /// `POST /v1/prometheus/write` as Prometheus sends it (protobuf, snappy block
    /// format, remote write 0.1.0) with the ingest key; `body` is compressed already.
    pub async fn remote_write(&self, body: Vec<u8>) -> reqwest::Response {
        self.remote_write_as("application/x-protobuf", "snappy", body)
            .await
    }

    /// [`TestApp::remote_write`] with another content type or encoding.
    pub async fn remote_write_as(
        &self,
        content_type: &str,
        encoding: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/prometheus/write", self.address))
            .bearer_auth(INGEST_KEY)
            .header("content-type", content_type)
            .header("content-encoding", encoding)
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body)
            .send()
            .await
            .expect("request failed")
    }

    /// Every stored `events` row (copies included), by event name then arrival.
    pub async fn stored_events(&self) -> Vec<StoredEvent> {
        self.db
            .query(
                "SELECT toString(event_id) AS event_id, event, \
                 toUInt64(timestamp) * 1000 + timestamp_ms AS ts_ms, source, release, user_id, \
                 session_id, value, prop_str_keys, prop_str_values, prop_num_keys, \
                 prop_num_values, prop_bool_keys, prop_bool_values, api_key FROM events \
                 ORDER BY event, received_at",
            )
            .fetch_all()
            .await
            .expect("reading events")
    }

    /// `method path` with an optional JSON body, authenticated with `key`;
    /// answers the status and the JSON body (a body that is not JSON comes back
    /// as a JSON string, so an assertion on it shows what was sent).
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let text = response.text().await.expect("reading the answer");
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    /// `GET path` with the admin key: (status, JSON body).
    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::GET, path, ADMIN_KEY, None).await
    }

    /// `GET path` with `key`: (status, JSON body).
    pub async fn get_json_as(
        &self,
        path: &str,
        key: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::GET, path, key, None).await
    }

    /// `POST path` with a JSON body and the admin key: (status, JSON body).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::POST, path, ADMIN_KEY, Some(body))
            .await
    }

    /// `POST path` with a JSON body and `key`: (status, JSON body).
    pub async fn post_json_as(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    /// `PUT path` with a JSON body and the admin key: (status, JSON body).
    pub async fn put_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::PUT, path, ADMIN_KEY, Some(body))
            .await
    }

    /// `DELETE path` with the admin key: (status, JSON body).
    pub async fn delete_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.json(reqwest::Method::DELETE, path, ADMIN_KEY, None)
            .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("request failed")
    }

    /// One number from SQL, e.g. `SELECT count() FROM events`.
    pub async fn sql_u64(&self, sql: &str) -> u64 {
        self.db
            .query(sql)
            .fetch_one::<u64>()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Stops the application as Ctrl-C would, and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

/// An `events` row as a test reads it back ([`TestApp::stored_events`]).
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
pub struct StoredEvent {
    pub event_id: String,
    pub event: String,
    pub ts_ms: u64,
    pub source: String,
    pub release: String,
    pub user_id: String,
    pub session_id: String,
    pub value: Option<f64>,
    pub prop_str_keys: Vec<String>,
    pub prop_str_values: Vec<String>,
    pub prop_num_keys: Vec<String>,
    pub prop_num_values: Vec<f64>,
    pub prop_bool_keys: Vec<String>,
    pub prop_bool_values: Vec<u8>,
    pub api_key: String,
}

impl StoredEvent {
    /// The string property `key`.
    pub fn string(&self, key: &str) -> Option<&str> {
        let i = self.prop_str_keys.iter().position(|k| k == key)?;
        Some(&self.prop_str_values[i])
    }

    /// The number property `key`.
    pub fn number(&self, key: &str) -> Option<f64> {
        let i = self.prop_num_keys.iter().position(|k| k == key)?;
        Some(self.prop_num_values[i])
    }

    /// The boolean property `key`.
    pub fn boolean(&self, key: &str) -> Option<bool> {
        let i = self.prop_bool_keys.iter().position(|k| k == key)?;
        Some(self.prop_bool_values[i] == 1)
    }
}

/// Asks `check` every 100 ms until it answers `Some`, for at most `timeout`
/// (then fails naming `what`): for what the service does in the background
/// (a rollup, a notification), instead of a fixed sleep.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A secret from a literal, for settings built in tests.
pub fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// `n` NDJSON events with fresh ids, named `event`.
pub fn ndjson_events(event: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "event": event,
                "event_id": uuid::Uuid::new_v4().to_string(),
                "user_id": format!("u-{i}"),
                "value": i,
                "properties": {"i": i, "plan": "pro"}
            })
            .to_string()
                + "\n"
        })
        .collect()
}
