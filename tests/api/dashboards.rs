//! The Grafana dashboards of `dashboards/hypercare/`: their JSON, and every
//! panel's, variable's and annotation's SQL, expanded as Grafana and the
//! ClickHouse plugin (grafana-clickhouse-datasource v4) expand it, run over
//! seeded data on the 18.16 test server and on the modern engine (chdb).
//!
//! The expansion follows the plugin's source, in its order: first the
//! frontend's `$__conditionalAll(condition, $var)` (the condition, or `1=1` when
//! the variable is All or empty: `applyConditionalAll` of `CHDatasource.ts`),
//! then Grafana's template variables (`${var:singlequote}` quotes and escapes
//! each value; a bare `$var` is the value itself, or `'a','b'` for several:
//! the datasource's `format`), then the backend's macros (`pkg/macros`):
//! `$__timeFilter(c)` is `c >= toDateTime(from) AND c <= toDateTime(to)`,
//! `$__fromTime`/`$__toTime` are `toDateTime(epoch seconds)`, `$__interval_s` is
//! the interval in whole seconds (at least 1), and `$__timeInterval(c)` is
//! `toStartOfInterval(toDateTime(c), INTERVAL n second)`, which ClickHouse 18.16
//! lacks: the dashboards bucket with `intDiv` instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::TimeZone;
use serde_json::{Value, json};

use hypercare_tests::ManualClock;
use hypercare_tests::{ADMIN_KEY, INGEST_KEY, SUPPORT_KEY, TestApp, eventually, spawn_app_on};

const DATASOURCE_UID: &str = "hypercare-clickhouse";
const PLUGIN: &str = "grafana-clickhouse-datasource";

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// Every dashboard file, by name.
fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("hypercare"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, value)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Variable(String),
    Annotation,
    /// The target's `format`: 0 time series, 1 table.
    Panel {
        format: u64,
        title: String,
    },
}

#[derive(Debug, Clone)]
struct Query {
    origin: String,
    sql: String,
    kind: Kind,
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        out.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            out.extend(inner.iter());
        }
    }
    out
}

fn queries(name: &str, dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let var = variable["name"].as_str().unwrap().to_owned();
            out.push(Query {
                origin: format!("{name} variable {var}"),
                sql: variable["query"]["rawSql"].as_str().unwrap().to_owned(),
                kind: Kind::Variable(var),
            });
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(sql) = annotation["target"]["rawSql"].as_str() {
            out.push(Query {
                origin: format!("{name} annotation {}", annotation["name"]),
                sql: sql.to_owned(),
                kind: Kind::Annotation,
            });
        }
    }
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap().to_owned();
            out.push(Query {
                origin: format!("{name} panel {title:?} {}", target["refId"]),
                sql: target["rawSql"].as_str().unwrap().to_owned(),
                kind: Kind::Panel {
                    format: target["format"].as_u64().unwrap(),
                    title,
                },
            });
        }
    }
    out
}

/// A template variable's current value, as Grafana holds it.
#[derive(Debug, Clone)]
enum Selection {
    One(String),
    Many(Vec<String>),
    /// "All" without a custom all value: Grafana substitutes every option,
    /// and `$__conditionalAll` sees `$__all`.
    All(Vec<String>),
}

impl Selection {
    fn values(&self) -> Vec<String> {
        match self {
            Selection::One(v) => vec![v.clone()],
            Selection::Many(v) | Selection::All(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Expansion {
    from: u64,
    to: u64,
    interval: Duration,
    vars: BTreeMap<String, Selection>,
}

/// `(args, end)`: the arguments of the call whose `(` is at `open`, split at the
/// commas of its own level, and the index after its `)`; as the plugin's
/// `getMacroArgs` (which does not look at quotes either).
fn macro_args(sql: &str, open: usize) -> Option<(Vec<String>, usize)> {
    let bytes = sql.as_bytes();
    let (mut depth, mut start, mut args) = (0usize, open + 1, Vec::new());
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(sql[start..i].to_owned());
                    return Some((args, i + 1));
                }
            }
            b',' if depth == 1 => {
                args.push(sql[start..i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

fn variable_name(text: &str) -> &str {
    let text = text.trim().trim_start_matches('$');
    let text = text.trim_start_matches('{');
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

impl Expansion {
    fn expand(&self, sql: &str) -> String {
        let sql = self.conditional_all(sql);
        let sql = self.template_variables(&sql);
        let sql = self.macros(&sql);
        assert!(!sql.contains('$'), "unexpanded `$` left in:\n{sql}");
        sql
    }

    /// The frontend's `applyConditionalAll`, from the last call to the first.
    fn conditional_all(&self, sql: &str) -> String {
        const MACRO: &str = "$__conditionalAll(";
        let mut sql = sql.to_owned();
        while let Some(at) = sql.rfind(MACRO) {
            let (args, end) = macro_args(&sql, at + MACRO.len() - 1)
                .unwrap_or_else(|| panic!("unbalanced $__conditionalAll in {sql}"));
            assert_eq!(args.len(), 2, "$__conditionalAll takes 2 arguments: {sql}");
            let name = variable_name(&args[1]);
            let all = match self.vars.get(name) {
                Some(Selection::All(_)) => true,
                Some(Selection::One(v)) => v.is_empty(),
                Some(Selection::Many(_)) => false,
                None => panic!("$__conditionalAll over an unknown variable `{name}`"),
            };
            let phrase = if all {
                "1=1".to_owned()
            } else {
                args[0].clone()
            };
            sql.replace_range(at..end, &phrase);
        }
        sql
    }

    /// Grafana's template service with the datasource's default format.
    fn template_variables(&self, sql: &str) -> String {
        let mut out = String::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, format, used) = if let Some(inner) = after.strip_prefix('{') {
                let close = inner.find('}').expect("unclosed ${");
                let body = &inner[..close];
                let (name, format) = match body.split_once(':') {
                    Some((n, f)) => (n, Some(f)),
                    None => (body, None),
                };
                (name, format, close + 2)
            } else {
                let end = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], None, end)
            };
            match self.vars.get(name) {
                Some(selection) if !name.starts_with("__") => {
                    out.push_str(&format_value(selection, format));
                    rest = &after[used..];
                }
                // A macro or an unknown name: Grafana leaves it.
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The backend's macros (`pkg/macros`).
    fn macros(&self, sql: &str) -> String {
        let from = format!("toDateTime({})", self.from);
        let to = format!("toDateTime({})", self.to);
        let seconds = self.interval.as_secs().max(1);
        let mut out = String::new();
        let mut rest = sql.to_owned();
        while let Some(at) = rest.find("$__") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 3..];
            let end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..end];
            let (args, used) = if after[end..].starts_with('(') {
                let (args, close) = macro_args(after, end).expect("unbalanced macro call");
                let args: Vec<String> = args.iter().map(|a| a.trim().to_owned()).collect();
                (args, close)
            } else {
                (Vec::new(), end)
            };
            let expansion = match (name, args.as_slice()) {
                ("timeFilter", [column]) => {
                    format!("{column} >= {from} AND {column} <= {to}")
                }
                ("fromTime", []) => from.clone(),
                ("toTime", []) => to.clone(),
                ("interval_s", []) => seconds.to_string(),
                ("timeInterval", [column]) => {
                    format!("toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)")
                }
                _ => panic!("a macro this test does not know: $__{name}({args:?})"),
            };
            out.push_str(&expansion);
            rest = after[used..].to_owned();
        }
        out.push_str(&rest);
        out
    }
}

fn format_value(selection: &Selection, format: Option<&str>) -> String {
    let values = selection.values();
    match format {
        Some("singlequote") => values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(","),
        Some("raw") | Some("text") => values.join(","),
        None => match selection {
            Selection::One(v) => v.clone(),
            _ => format!("'{}'", values.join("','")),
        },
        Some(other) => panic!("a variable format this test does not know: {other}"),
    }
}

// ---------------------------------------------------------------- lint

fn datasource_refs<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "datasource" {
                    out.push((path.clone(), inner));
                }
                datasource_refs(inner, format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                datasource_refs(inner, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboards_have_unique_ids_no_overlap_the_provisioned_datasource_and_relative_times() {
    let all = dashboards();
    assert_eq!(all.len(), 4, "the four boards of issue 15");
    let provisioned =
        std::fs::read_to_string(root().join("provisioning/datasources/hypercare-clickhouse.yaml"))
            .unwrap();
    assert!(provisioned.contains(&format!("uid: {DATASOURCE_UID}")));
    assert!(provisioned.contains(&format!("type: {PLUGIN}")));
    assert!(provisioned.contains("password: ${HYPERCARE_CLICKHOUSE_PASSWORD}"));
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (name, d) in &all {
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_owned()),
            "{name}: uid reused"
        );
        assert!(
            titles.insert(d["title"].as_str().unwrap().to_owned()),
            "{name}: title reused"
        );
        assert!(
            d["schemaVersion"].as_u64().unwrap() >= 41,
            "{name}: Grafana 11.6+ schema"
        );
        for end in ["from", "to"] {
            let at = d["time"][end].as_str().unwrap();
            assert!(
                at.starts_with("now"),
                "{name}: time.{end} = {at} is absolute"
            );
        }
        let variables: BTreeSet<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for needed in ["launch", "service", "release"] {
            assert!(variables.contains(needed), "{name}: no `{needed}` variable");
        }
        let annotations: Vec<&str> = d["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for needed in [
            "D0",
            "Rollout stages",
            "Alerts fired P0",
            "Alerts fired P3",
            "Ticket spikes",
        ] {
            assert!(
                annotations.contains(&needed),
                "{name}: no annotation {needed}"
            );
        }
        // Panel ids unique; boxes inside the 24 columns and apart.
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
        for panel in panels(d) {
            let title = panel["title"].as_str().unwrap().to_owned();
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: panel id reused ({title})"
            );
            let g = &panel["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(
                w > 0 && h > 0 && x + w <= 24,
                "{name}: {title} outside the grid"
            );
            for (bx, by, bw, bh, other) in &boxes {
                let apart = x + w <= *bx || *bx + bw <= x || y + h <= *by || *by + bh <= y;
                assert!(apart, "{name}: {title:?} overlaps {other:?}");
            }
            boxes.push((x, y, w, h, title));
            assert!(
                panel.get("timeFrom").is_none_or(|t| t.is_null()),
                "{name}: fixed time"
            );
        }
        // Every datasource is the provisioned one (the built-in annotation aside).
        let mut refs = Vec::new();
        datasource_refs(d, name.clone(), &mut refs);
        assert!(!refs.is_empty());
        for (path, reference) in refs {
            if reference["type"] == "grafana" && reference["uid"] == "-- Grafana --" {
                continue;
            }
            assert_eq!(reference["uid"], DATASOURCE_UID, "{path}");
            assert_eq!(reference["type"], PLUGIN, "{path}");
        }
        for query in queries(name, d) {
            assert!(
                !query.sql.contains("$__timeInterval"),
                "{}: $__timeInterval expands to toStartOfInterval, missing on ClickHouse 18.16",
                query.origin
            );
        }
    }
}

#[test]
fn the_expansion_follows_the_plugin() {
    let vars = BTreeMap::from([
        (
            "service".to_owned(),
            Selection::Many(vec!["a".into(), "o'b".into()]),
        ),
        (
            "release".to_owned(),
            Selection::All(vec!["1".into(), "2".into()]),
        ),
        ("launch".to_owned(), Selection::One("l1".into())),
    ]);
    let e = Expansion {
        from: 100,
        to: 200,
        interval: Duration::from_millis(500),
        vars,
    };
    assert_eq!(
        e.expand("WHERE $__conditionalAll(s IN (${service:singlequote}), $service) AND $__conditionalAll(r IN (${release:singlequote}), $release)"),
        "WHERE s IN ('a','o\\'b') AND 1=1"
    );
    assert_eq!(
        e.expand("x = $launch AND y IN ($service)"),
        "x = l1 AND y IN ('a','o'b')"
    );
    assert_eq!(
        e.expand("$__timeFilter(toDateTime(intDiv(t, 1000))) GROUP BY $__interval_s, $__toTime"),
        "toDateTime(intDiv(t, 1000)) >= toDateTime(100) AND toDateTime(intDiv(t, 1000)) <= toDateTime(200) GROUP BY 1, toDateTime(200)"
    );
    assert_eq!(
        e.expand("$__timeInterval(ts)"),
        "toStartOfInterval(toDateTime(ts), INTERVAL 1 second)"
    );
}

// ---------------------------------------------------------------- seeded data

/// 2026-11-20T10:30 in Paris: D+4 of a launch whose D0 is 2026-11-16 09:00.
fn paris_ms(d: u32, h: u32, min: u32) -> u64 {
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
        r#"{"title": "Median search latency", "unit": "ms", "aggregation": "percentile", "p": 0.5, "property": "latency_ms", "filter": {"event": "search_performed"}, "direction": "lower_is_better", "target": 110, "warning": 115, "critical": 120}"#,
    ),
];

async fn ok(response: reqwest::Response) {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
}

async fn sql(app: &TestApp, statement: &str) {
    app.db
        .query(statement)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// A launch with two rollout stages, KPIs, twelve days of events, an hour of
/// RED metrics for two services, a load test baseline, an alert per tier and
/// six tickets; the clock ends at 2026-11-20T10:30 Paris.
async fn seeded(clock: &std::sync::Arc<ManualClock>) -> TestApp {
    let shared: hypercare_runtime::SharedClock = clock.clone();
    let app = spawn_app_on(shared, |s| s.kpis.rollups.interval_secs = 1).await;
    let (status, answer) = app
        .post_json_as(
            "/v1/launches",
            ADMIN_KEY,
            &json!({"name": "Spring", "release": "2.4.0", "d0": "2026-11-16T09:00:00+01:00",
                    "tz": "Europe/Paris", "window_days": 14, "baseline_days": 7,
                    "stages": [{"name": "canary 1%", "percent": 1, "starts_at": "2026-11-16T09:00:00+01:00"},
                               {"name": "100%", "percent": 100, "starts_at": "2026-11-17T09:00:00+01:00"}]}),
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
    // Events, 2026-11-09..20 (Paris), early in the day (before 10:00 on the 20th).
    let mut lines = Vec::new();
    let mut n = 0;
    for day in 9..=20u32 {
        let k = u64::from(day);
        for i in 0..(4 + k % 4) {
            let at = paris_ms(day, 7, 0) + i * 600_000;
            for (event, extra) in [
                ("checkout_started", json!({})),
                (
                    "search_performed",
                    json!({"properties": {"latency_ms": 100 + 3 * i + k % 5}}),
                ),
            ] {
                n += 1;
                let mut line = json!({"event": event, "event_id": format!("00000000-0000-4000-8000-{n:012}"),
                    "timestamp": at, "user_id": format!("u{}", i % 3), "source": "web", "release": "2.4.0"});
                if let Some(p) = extra.get("properties") {
                    line["properties"] = p.clone();
                }
                lines.push(line.to_string());
            }
            if i % 2 == 0 || (k % 3 == 0 && i < 3) {
                n += 1;
                lines.push(json!({"event": "order_placed", "event_id": format!("00000000-0000-4000-8000-{n:012}"),
                    "timestamp": at + 1000, "user_id": format!("u{}", i % 3), "value": 20, "source": "web", "release": "2.4.0"}).to_string());
            }
        }
    }
    // A source that went quiet the day before.
    n += 1;
    lines.push(
        json!({"event": "checkout_started", "event_id": format!("00000000-0000-4000-8000-{n:012}"),
        "timestamp": paris_ms(19, 12, 0), "user_id": "u9", "source": "batch"})
        .to_string(),
    );
    ok(app
        .post(
            "/v1/events",
            INGEST_KEY,
            "application/x-ndjson",
            lines.join("\n"),
        )
        .await)
    .await;
    // An hour of RED metrics per minute, 08:00-09:00 UTC on the 20th.
    let mut points = Vec::new();
    let start = paris_ms(20, 9, 0);
    for m in 0..60u64 {
        let at = start + m * 60_000;
        for (service, ok_rate, err_rate) in [("checkout", 100, 3), ("search", 50, 0)] {
            points.push(
                json!({"name": "http_requests_total", "kind": "counter", "timestamp": at,
                "labels": {"service": service, "status": "200"}, "value": ok_rate * m}),
            );
            points.push(
                json!({"name": "http_requests_total", "kind": "counter", "timestamp": at,
                "labels": {"service": service, "status": "500"}, "value": err_rate * m}),
            );
            points.push(json!({"name": "http_request_duration_seconds", "kind": "histogram", "timestamp": at,
                "labels": {"service": service}, "bounds": [0.1, 0.5, 1.0],
                "counts": [10 * m, 5 * m, 2 * m, m], "sum": 9.0 * m as f64, "count": 18 * m}));
            // Search's latency also as a classic family, as Prometheus
            // remote-writes it (the latency panel's query B).
            if service == "search" {
                for (le, n) in [("0.1", 10), ("0.5", 15), ("1", 17), ("+Inf", 18)] {
                    points.push(json!({"name": "http_request_duration_seconds_bucket",
                        "kind": "counter", "timestamp": at, "value": n * m,
                        "labels": {"service": service, "le": le}}));
                }
            }
            points.push(
                json!({"name": "cpu_utilization", "kind": "gauge", "timestamp": at,
                "labels": {"service": service}, "value": 0.4 + (m as f64) / 200.0}),
            );
        }
    }
    let sent_points = points.len() as u64;
    ok(app.post_metrics(&Value::Array(points)).await).await;
    // Stored (the writers batch) before the clock reaches the board's time,
    // so that the passes published at 10:30 see every event.
    let (sent_events, db) = (lines.len() as u64, app.db.clone());
    eventually(
        "the seeded events and points stored",
        Duration::from_secs(30),
        || {
            let db = db.clone();
            async move {
                let events: u64 = db
                    .query("SELECT count() FROM events")
                    .fetch_one()
                    .await
                    .ok()?;
                let points: u64 = db
                    .query("SELECT count() FROM metric_points")
                    .fetch_one()
                    .await
                    .ok()?;
                (events == sent_events && points == sent_points).then_some(())
            }
        },
    )
    .await;
    sql(&app, "INSERT INTO loadtest_runs (run_id, service, scenario, target, started_at, finished_at, replicas, requests, errors, error_rate, p50_ms, p99_ms, thresholds_passed, slo_p99_ms, latency_floor_ms, max_sustainable_rps, report) VALUES ('run-1', 'checkout', 'ramp', 'http://checkout', toDateTime(1794900000), toDateTime(1794903600), 2, 100000, 10, 0.0001, 20, 80, 1, 500, 10, 120, '{}')").await;
    // One alert per tier: fired, acknowledged 5 minutes later, resolved after 30.
    let fired = paris_ms(20, 8, 0);
    for (i, tier) in ["P0", "P1", "P2", "P3"].iter().enumerate() {
        let fired = fired - (i as u64) * 86_400_000;
        for (version, state, change, acked, resolved) in [
            (1, "firing", "fired", 0, 0),
            (2, "firing", "acked", fired + 300_000, 0),
            (
                3,
                "resolved",
                "resolved",
                fired + 300_000,
                fired + 1_800_000,
            ),
        ] {
            sql(&app, &format!(
                "INSERT INTO alert_events (alert_id, version, rule, tier, state, label_keys, label_values, rollback, started_ms, fired_ms, acked_ms, resolved_ms, change, at_ms) \
                 VALUES ('a{i}', {version}, 'rule_{tier}', '{tier}', '{state}', ['service'], ['checkout'], {}, {fired}, {fired}, {acked}, {resolved}, '{change}', {fired})",
                u8::from(i == 0)
            )).await;
        }
    }
    // Six tickets in one hour (a spike) at 02:00, still open at 10:30: SLAs breached.
    clock.set_ms(paris_ms(20, 2, 0));
    for i in 0..6 {
        let category = ["bug", "billing", "bug"][i % 3];
        let (status, answer) = app
            .post_json_as(
                "/v1/tickets",
                SUPPORT_KEY,
                &json!({"title": format!("cannot pay {i}"), "description": "steps: open checkout, pay",
                    "category": category, "impact": "high", "urgency": if i == 0 { "high" } else { "low" },
                    "release": "2.4.0", "channel": "chat", "reporter": "agent-ana",
                    "affected_user": "u-42", "launch": "spring"}),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    clock.set_ms(paris_ms(20, 10, 30));
    app
}

/// Waits until the publisher has written today's board (a pass after the seeding).
async fn published(app: &TestApp) {
    let db = app.db.clone();
    eventually("the KPI values published for 2026-11-20", Duration::from_secs(60), || {
        let db = db.clone();
        async move {
            let rows: u64 = db
                .query("SELECT count() FROM kpi_published FINAL WHERE grain = 'day' AND date = '2026-11-20' AND comparison = 'pace_to_10:00'")
                .fetch_one()
                .await
                .ok()?;
            (rows == KPIS.len() as u64).then_some(())
        }
    })
    .await;
}

// ---------------------------------------------------------------- running the SQL

#[derive(Debug, Clone, PartialEq)]
struct Answer {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Value>>,
}

async fn run_on_18(app: &TestApp, sql: &str) -> Result<Answer, String> {
    let server = hypercare_tests::clickhouse().await;
    // readonly=2: what the documented Grafana user is allowed.
    let response = app
        .http
        .post(format!(
            "{}/?database={}&readonly=2",
            server.url, app.database
        ))
        .body(format!("{sql}\nFORMAT JSONCompact"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(text);
    }
    let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    Ok(Answer {
        columns: answer["meta"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().into(),
                    c["type"].as_str().unwrap().into(),
                )
            })
            .collect(),
        rows: answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect(),
    })
}

fn is_time(t: &str) -> bool {
    t.starts_with("DateTime") || t.starts_with("Nullable(DateTime")
}

fn is_number(t: &str) -> bool {
    let t = t.strip_prefix("Nullable(").unwrap_or(t);
    ["UInt", "Int", "Float", "Decimal"]
        .iter()
        .any(|p| t.starts_with(p))
}

fn is_text(t: &str) -> bool {
    t == "String" || t.starts_with("Nullable(String")
}

/// What a panel of this kind needs from the columns, or why not.
fn check_columns(kind: &Kind, columns: &[(String, String)]) -> Result<(), String> {
    let names: BTreeSet<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    if names.len() != columns.len() || names.contains("") {
        return Err(format!(
            "column names must be unique and non-empty: {columns:?}"
        ));
    }
    match kind {
        Kind::Variable(_) if (1..=2).contains(&columns.len()) => Ok(()),
        Kind::Variable(_) => Err(format!(
            "a variable answers a value (and a text): {columns:?}"
        )),
        Kind::Annotation => {
            let time = columns.iter().any(|(n, t)| n == "time" && is_time(t));
            let text = columns.iter().any(|(n, t)| n == "text" && is_text(t));
            if time && text {
                Ok(())
            } else {
                Err(format!(
                    "an annotation needs `time` and `text`: {columns:?}"
                ))
            }
        }
        Kind::Panel { format: 0, .. } => {
            let Some(((_, first), rest)) = columns.split_first() else {
                return Err("no columns".into());
            };
            if !is_time(first) {
                return Err(format!(
                    "a time series starts with its time column: {columns:?}"
                ));
            }
            if !rest.iter().any(|(_, t)| is_number(t)) {
                return Err(format!("a time series needs a numeric value: {columns:?}"));
            }
            match rest.iter().find(|(_, t)| !(is_number(t) || is_text(t))) {
                Some(bad) => Err(format!("{bad:?} is neither a value nor a label")),
                None => Ok(()),
            }
        }
        Kind::Panel { format: 1, .. } => Ok(()),
        Kind::Panel { format, .. } => Err(format!("format {format} is not used here")),
    }
}

/// Runs the variable queries in order (as Grafana resolves them on load) and
/// answers their options, given the selection of the ones before.
async fn options(
    app: &TestApp,
    base: &Expansion,
    pick: impl Fn(&str, &[String]) -> Selection,
) -> Expansion {
    let mut e = base.clone();
    let all = dashboards();
    // Custom, text box and constant variables: their current value.
    for (_, d) in &all {
        for variable in d["templating"]["list"].as_array().unwrap() {
            if ["custom", "textbox", "constant"].contains(&variable["type"].as_str().unwrap()) {
                let value = variable["current"]["value"].as_str().unwrap().to_owned();
                e.vars.insert(
                    variable["name"].as_str().unwrap().to_owned(),
                    Selection::One(value),
                );
            }
        }
    }
    // The query variables (the PO board has them all): the launch first, as the
    // others read it.
    let (_, po) = all.iter().find(|(n, _)| n == "po-kpis.json").unwrap();
    let order = ["launch", "tz", "service", "release", "kpi"];
    for name in order {
        let variable = po["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        let sql = e.expand(variable["query"]["rawSql"].as_str().unwrap());
        let answer = run_on_18(app, &sql)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let values: Vec<String> = answer
            .rows
            .iter()
            .map(|r| match &r[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        assert!(
            !values.is_empty(),
            "variable {name} has no option over the seeded data"
        );
        let selection = if variable["multi"] == true || variable["includeAll"] == true {
            pick(name, &values)
        } else {
            Selection::One(values[0].clone())
        };
        e.vars.insert(name.to_owned(), selection);
    }
    e
}

fn chdb(schema: Vec<String>, seed: Vec<String>, queries: &[(String, String)]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compat/chdb_dashboards.py");
    let job = json!({
        "schema": schema,
        "seed": seed,
        "queries": queries.iter().map(|(o, s)| json!({"origin": o, "sql": s})).collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the chdb check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The seeded tables' rows as INSERT statements, for the chdb copy.
async fn dump(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "events",
        "metric_points",
        "launches",
        "kpi_definitions",
        "kpi_published",
        "alert_events",
        "ticket_events",
        "loadtest_runs",
    ] {
        let server = hypercare_tests::clickhouse().await;
        let values = app
            .http
            .post(format!("{}/?database={}", server.url, app.database))
            .body(format!("SELECT * FROM {table} FORMAT Values"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !values.trim().is_empty() {
            out.push(format!("INSERT INTO {table} VALUES {values}"));
        }
    }
    out
}

/// The same rows from both engines: numbers equal to 1e-9 relative (the order
/// of float additions differs), everything else as written.
fn same_rows(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    let same = |x: &Value, y: &Value| match (number_of(x), number_of(y)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| same(x, y)))
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn every_query_runs_on_clickhouse_18_and_in_chdb_with_the_columns_its_panel_expects() {
    let clock = ManualClock::starting_at(paris_ms(20, 10, 30));
    let app = seeded(&clock).await;
    published(&app).await;
    // Up to the wall clock: the time of arrival of events (`received_at`) is
    // the service's wall clock, while the seeded times are of November 2026.
    let wall = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let base = Expansion {
        from: paris_ms(8, 0, 0) / 1000,
        to: wall.max(paris_ms(20, 10, 30) / 1000),
        interval: Duration::from_secs(3600),
        vars: BTreeMap::new(),
    };
    // All, one value, two values of each multi-value variable.
    let all = options(&app, &base, |_, v| Selection::All(v.to_vec())).await;
    let one = options(&app, &base, |_, v| Selection::One(v[0].clone())).await;
    let two = options(&app, &base, |_, v| {
        Selection::Many(v.iter().take(2).cloned().collect())
    })
    .await;
    let mut minutes = all.clone();
    minutes.interval = Duration::from_secs(300);

    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (name, d) in dashboards() {
        for query in queries(&name, &d) {
            for (label, e) in [
                ("all", &all),
                ("one", &one),
                ("two", &two),
                ("5m", &minutes),
            ] {
                // A repeated panel runs once per value of its variable.
                let mut e = e.clone();
                if let Kind::Panel { title, .. } = &query.kind
                    && title.contains("${kpi:text}")
                {
                    let first = e.vars["kpi"].values()[0].clone();
                    e.vars.insert("kpi".into(), Selection::One(first));
                }
                let sql = e.expand(&query.sql);
                let origin = format!("{} [{label}]", query.origin);
                match run_on_18(&app, &sql).await {
                    Err(error) => failures.push(format!("18.16 {origin}: {error}\n{sql}")),
                    Ok(answer) => {
                        if let Err(why) = check_columns(&query.kind, &answer.columns) {
                            failures.push(format!("18.16 {origin}: {why}"));
                        }
                        // Over the seeded data, with every value selected,
                        // every panel, annotation and variable shows something.
                        if label == "all" && answer.rows.is_empty() {
                            failures.push(format!("18.16 {origin}: no rows\n{sql}"));
                        }
                        checked.push((origin, sql, query.kind.clone(), answer.rows));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The same statements on the modern engine, over a copy of the same rows.
    let schema: Vec<String> = hypercare_storage::catalog::schema()
        .into_iter()
        .map(|s| s.sql)
        .collect();
    let seed = dump(&app).await;
    let statements: Vec<(String, String)> = checked
        .iter()
        .map(|(origin, sql, _, _)| (origin.clone(), sql.clone()))
        .collect();
    let answers = chdb(schema, seed, &statements);
    assert_eq!(answers.len(), checked.len());
    for ((origin, sql, kind, rows), answer) in checked.iter().zip(&answers) {
        if answer["ok"] != true {
            failures.push(format!("chdb {origin}: {}\n{sql}", answer["error"]));
            continue;
        }
        let columns: Vec<(String, String)> = answer["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_str().unwrap().into(), c[1].as_str().unwrap().into()))
            .collect();
        if let Err(why) = check_columns(kind, &columns) {
            failures.push(format!("chdb {origin}: {why}"));
        }
        let data: Vec<Vec<Value>> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        if !same_rows(rows, &data) {
            failures.push(format!(
                "chdb {origin}: answers\n{data:?}\n18.16 answered\n{rows:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The rows of a panel, by its title, expanded with `e`.
async fn panel_rows(app: &TestApp, e: &Expansion, dashboard: &str, title: &str) -> Answer {
    let (name, d) = dashboards()
        .into_iter()
        .find(|(n, _)| n == dashboard)
        .unwrap();
    let query = queries(&name, &d)
        .into_iter()
        .find(|q| matches!(&q.kind, Kind::Panel { title: t, .. } if t == title))
        .unwrap_or_else(|| panic!("no panel {title:?} in {dashboard}"));
    run_on_18(app, &e.expand(&query.sql)).await.unwrap()
}

fn column<'a>(answer: &'a Answer, row: &'a [Value], name: &str) -> &'a Value {
    let i = answer
        .columns
        .iter()
        .position(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", answer.columns));
    &row[i]
}

/// ClickHouse's JSON writes Float64 as a number, and null as null.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test]
async fn kpi_panels_show_the_numbers_the_api_answers() {
    let clock = ManualClock::starting_at(paris_ms(20, 10, 30));
    let app = seeded(&clock).await;
    published(&app).await;
    let base = Expansion {
        from: paris_ms(8, 0, 0) / 1000,
        to: paris_ms(20, 10, 30) / 1000,
        interval: Duration::from_secs(3600),
        vars: BTreeMap::new(),
    };
    let e = options(&app, &base, |_, v| Selection::All(v.to_vec())).await;
    let (status, board) = app.get_json("/v1/kpis").await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["comparison"], "pace_to_10:00");

    // The board's table: value, levels, status, baseline and delta of every KPI.
    let table = panel_rows(&app, &e, "po-kpis.json", "Board: value, levels, baseline").await;
    assert_eq!(table.rows.len(), KPIS.len());
    for row in &table.rows {
        let title = column(&table, row, "KPI").as_str().unwrap();
        let entry = board["kpis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["title"] == title)
            .unwrap();
        assert_eq!(column(&table, row, "Date"), &entry["date"]);
        assert_eq!(column(&table, row, "Comparison"), &entry["comparison"]);
        assert_eq!(column(&table, row, "Status"), &entry["status"], "{title}");
        for (col, field) in [
            ("Value", "value"),
            ("Target", "target"),
            ("Baseline", "baseline"),
            ("Delta vs baseline %", "delta_vs_baseline_pct"),
        ] {
            assert_eq!(
                number(column(&table, row, col)),
                entry[field].as_f64(),
                "{title}: {col}"
            );
        }
        let pace = entry["pace"]["target"]
            .as_f64()
            .or(entry["target"].as_f64());
        assert_eq!(
            number(column(&table, row, "Target at pace")),
            pace,
            "{title}"
        );
    }
    // Counts are judged at pace: the levels the panel shows are the API's.
    let orders = board["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "orders")
        .unwrap();
    assert!(
        orders["pace"]["share_of_day"].as_f64().unwrap() > 0.0,
        "{orders}"
    );

    // One stat per KPI: value, unit and status, as the board says.
    for entry in board["kpis"].as_array().unwrap() {
        let mut one = e.clone();
        one.vars.insert(
            "kpi".into(),
            Selection::One(entry["id"].as_str().unwrap().into()),
        );
        let stat = panel_rows(&app, &one, "po-kpis.json", "${kpi:text}").await;
        assert_eq!(stat.rows.len(), 1);
        let text = column(&stat, &stat.rows[0], "board").as_str().unwrap();
        let (shown, status) = text.rsplit_once(' ').unwrap();
        assert_eq!(status, entry["status"].as_str().unwrap(), "{text}");
        let shown = shown
            .trim_end_matches(entry["unit"].as_str().unwrap())
            .trim();
        match entry["value"].as_f64() {
            Some(v) => assert_eq!(shown.parse::<f64>().unwrap(), v, "{text}"),
            None => assert_eq!(shown, "no data"),
        }
    }

    // D-7..D+14: every day's value and status, as GET /v1/launches/current/days.
    let (status, days) = app.get_json("/v1/launches/current/days").await;
    assert_eq!(status, 200, "{days}");
    let matrix = panel_rows(&app, &e, "po-kpis.json", "Days x KPIs (value and status)").await;
    let mut compared = 0;
    for day in days["days"].as_array().unwrap() {
        let date = day["date"].as_str().unwrap();
        if date > "2026-11-20" {
            assert!(
                !matrix
                    .rows
                    .iter()
                    .any(|r| column(&matrix, r, "date") == date),
                "{date} is to come: nothing published"
            );
            continue;
        }
        for (id, kpi) in day["kpis"].as_object().unwrap() {
            let title = KPIS
                .iter()
                .find(|(k, _)| k == id)
                .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap()["title"].clone())
                .unwrap();
            let row = matrix
                .rows
                .iter()
                .find(|r| column(&matrix, r, "date") == date && column(&matrix, r, "kpi") == &title)
                .unwrap_or_else(|| panic!("{date} {id} missing from the panel"));
            let cell = column(&matrix, row, "cell").as_str().unwrap();
            let (shown, status) = cell.rsplit_once(' ').unwrap();
            assert_eq!(status, kpi["status"].as_str().unwrap(), "{date} {id}");
            assert_eq!(
                shown.parse::<f64>().ok(),
                kpi["value"].as_f64(),
                "{date} {id}: {cell}"
            );
            assert_eq!(column(&matrix, row, "day"), &day["day"]);
            compared += 1;
        }
    }
    assert_eq!(compared, 12 * KPIS.len(), "D-7..D+4, every KPI");

    // Per hour: the series the API answers, hour by hour, on the 19th.
    let mut hours = e.clone();
    hours.from = paris_ms(19, 0, 0) / 1000;
    hours.to = paris_ms(20, 0, 0) / 1000 - 1;
    let series_panel = panel_rows(&app, &hours, "po-kpis.json", "KPIs per hour").await;
    for (id, body) in KPIS {
        let title = serde_json::from_str::<Value>(body).unwrap()["title"].clone();
        let (status, series) = app
            .get_json(&format!(
                "/v1/kpis/{id}/series?grain=hour&from=2026-11-19T00:00:00%2B01:00&to=2026-11-20T00:00:00%2B01:00"
            ))
            .await;
        assert_eq!(status, 200, "{series}");
        let api: Vec<Option<f64>> = series["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64())
            .collect();
        let shown: Vec<Option<f64>> = series_panel
            .rows
            .iter()
            .filter(|r| column(&series_panel, r, "kpi") == &title)
            .map(|r| number(column(&series_panel, r, "value")))
            .collect();
        assert_eq!(shown, api, "{id}");
        assert_eq!(api.len(), 24);
        assert!(
            api.iter().any(|v| v.is_some_and(|v| v > 0.0)),
            "{id}: {api:?}"
        );
    }
}

#[tokio::test]
async fn the_time_interval_macro_is_left_out_because_clickhouse_18_has_no_to_start_of_interval() {
    let app = hypercare_tests::spawn_app().await;
    let e = Expansion {
        from: 1_795_000_000,
        to: 1_795_003_600,
        interval: Duration::from_secs(60),
        vars: BTreeMap::new(),
    };
    let plugin = e.expand("SELECT $__timeInterval(timestamp) AS time FROM events WHERE $__timeFilter(timestamp) GROUP BY time");
    let error = run_on_18(&app, &plugin).await.unwrap_err();
    assert!(error.contains("toStartOfInterval"), "{error}");
    // What the dashboards write instead runs.
    let ours = e.expand("SELECT toDateTime(intDiv(toUInt32(timestamp), $__interval_s) * $__interval_s) AS time FROM events WHERE $__timeFilter(timestamp) GROUP BY time");
    run_on_18(&app, &ours).await.unwrap();
}

/// A panel's query by its title and `refId`, expanded with `e`, run on 18.16.
async fn target_rows(
    app: &TestApp,
    e: &Expansion,
    dashboard: &str,
    title: &str,
    id: &str,
) -> Answer {
    let (name, d) = dashboards()
        .into_iter()
        .find(|(n, _)| n == dashboard)
        .unwrap();
    let suffix = format!("{title:?} \"{id}\"");
    let query = queries(&name, &d)
        .into_iter()
        .find(|q| q.origin.ends_with(&suffix))
        .unwrap_or_else(|| panic!("no panel {title:?} {id} in {dashboard}"));
    run_on_18(app, &e.expand(&query.sql)).await.unwrap()
}

#[tokio::test]
async fn the_latency_panel_reads_a_classic_histogram_as_the_quantile_route_does() {
    // An hour of a classic family (`_bucket{le}` counters, no native
    // histogram), a point a minute: shop from two instances, cart from one.
    let start = paris_ms(20, 9, 0);
    let last = start + 59 * 60_000;
    let app = spawn_app_on(ManualClock::starting_at(start + 3_600_000), |_| {}).await;
    let les = ["0.1", "0.25", "0.5", "1", "+Inf"];
    let per_minute: [(&str, &str, [u64; 5]); 3] = [
        ("shop", "a", [60, 90, 98, 100, 100]),
        ("shop", "b", [120, 180, 196, 200, 200]),
        ("cart", "a", [10, 50, 80, 95, 100]),
    ];
    let mut points = Vec::new();
    for (service, instance, counts) in per_minute {
        for m in 0..60u64 {
            for (le, n) in les.iter().zip(counts) {
                points.push(
                    json!({"name": "checkout_latency_seconds_bucket", "kind": "counter",
                    "labels": {"service": service, "instance": instance, "le": le},
                    "timestamp": start + m * 60_000, "value": 7 + n * m}),
                );
            }
        }
    }
    let sent = points.len() as u64;
    ok(app.post_metrics(&Value::Array(points)).await).await;
    let db = app.db.clone();
    eventually("the buckets stored", Duration::from_secs(30), || {
        let db = db.clone();
        async move {
            let stored: u64 = db
                .query("SELECT count() FROM metric_points")
                .fetch_one()
                .await
                .ok()?;
            (stored == sent).then_some(())
        }
    })
    .await;

    // One interval from the first point to the last.
    let mut vars = BTreeMap::new();
    vars.insert(
        "latency_metric".to_owned(),
        Selection::One("checkout_latency_seconds".into()),
    );
    vars.insert(
        "service".to_owned(),
        Selection::All(vec!["cart".into(), "shop".into()]),
    );
    let e = Expansion {
        from: start / 1000,
        to: last / 1000,
        interval: Duration::from_secs(3600),
        vars,
    };
    let title = "Latency p50 / p95 / p99";
    let native = target_rows(&app, &e, "sre-health.json", title, "A").await;
    assert!(native.rows.is_empty(), "{:?}", native.rows);
    let classic = target_rows(&app, &e, "sre-health.json", title, "B").await;
    let shown: Vec<&str> = classic
        .rows
        .iter()
        .map(|r| column(&classic, r, "service").as_str().unwrap())
        .collect();
    assert_eq!(shown, ["cart", "shop"]);
    let rfc3339 = |ms: u64| {
        chrono::Utc
            .timestamp_millis_opt(ms as i64)
            .unwrap()
            .to_rfc3339()
            .replace('+', "%2B")
    };
    for row in &classic.rows {
        let service = column(&classic, row, "service").as_str().unwrap();
        for (q, col) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
            let (status, answer) = app
                .get_json(&format!(
                    "/v1/metrics/quantile?name=checkout_latency_seconds&q={q}&from={}&to={}&label.service={service}",
                    rfc3339(start),
                    rfc3339(last)
                ))
                .await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["kind"], "classic_histogram", "{answer}");
            let (panel, route) = (
                number(column(&classic, row, col)).unwrap(),
                answer["value"].as_f64().unwrap(),
            );
            assert!(
                (panel - route).abs() < 1e-9,
                "{service} {col}: panel {panel}, route {route}"
            );
        }
    }
    // By hand: shop's p95 is rank 0.95 x 300 a minute, 15 of the 24 in
    // (0.25, 0.5]; cart's p99 is in +Inf: the highest finite bound.
    let shop = classic
        .rows
        .iter()
        .find(|r| column(&classic, r, "service") == "shop")
        .unwrap();
    assert_eq!(
        number(column(&classic, shop, "p95")),
        Some(0.25 + 0.25 * 15.0 / 24.0)
    );
    let cart = classic
        .rows
        .iter()
        .find(|r| column(&classic, r, "service") == "cart")
        .unwrap();
    assert_eq!(number(column(&classic, cart, "p99")), Some(1.0));
    app.stop().await.unwrap();
}
