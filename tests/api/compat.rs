//! The schema and every query on both ClickHouse engines we support: the 18.16
//! server of the Debian package (end to end) and the 26.x engine of `chdb`.

use std::io::Write;
use std::process::{Command, Stdio};

use hypercare_storage::catalog::{self, Statement};
use hypercare_tests::spawn_app;

/// Every read query of every capability, with example parameters.
fn reads() -> Vec<Statement> {
    let mut statements = hypercare_ingest::summary::catalog();
    statements.extend(hypercare_ingest::quantile::catalog());
    statements.extend(hypercare_ingest::reconcile::compare::catalog());
    statements.extend(hypercare_loadtest::record::catalog());
    statements.extend(hypercare_capacity::headroom::catalog());
    statements.extend(hypercare_capacity::runs::catalog());
    statements.extend(hypercare_tickets::store::catalog());
    statements.extend(hypercare_kpis::sql::catalog());
    statements.extend(hypercare_alerts::catalog());
    statements.extend(hypercare_report::catalog());
    statements.extend(hypercare_investigate::catalog());
    statements
}

fn every_statement() -> Vec<Statement> {
    let mut statements = catalog::schema();
    statements.extend(reads());
    statements
}

#[tokio::test]
async fn every_statement_runs_on_clickhouse_18() {
    // The application has applied the migrations in its database; run the reads there.
    let app = spawn_app().await;
    for statement in reads() {
        app.db
            .query(&statement.sql)
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", statement.origin, statement.sql));
    }
}

#[test]
fn every_statement_runs_on_the_modern_engine_in_chdb() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compat/chdb_check.py");
    let statements: Vec<serde_json::Value> = every_statement()
        .into_iter()
        .map(|s| serde_json::json!({"origin": s.origin, "sql": s.sql}))
        .collect();
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the chdb compatibility check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&statements).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "chdb check failed:\n{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", statements.len())),
        "{report}"
    );
}
