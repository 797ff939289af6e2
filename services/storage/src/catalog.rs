//! Every SQL statement Hypercare runs, gathered in one place.
//!
//! ClickHouse 18.16 (the Debian server we test end to end) and 26.x (production,
//! and the engine in the `chdb` Python package) accept different SQL. Each
//! capability lists its read queries here with example parameter values, and the
//! compatibility test runs the migrations and every listed query through both
//! engines, so that a query that works on only one of them fails CI.

use crate::migrate::MIGRATIONS;

/// A statement, ready to run (parameters already bound to example values).
#[derive(Debug, Clone)]
pub struct Statement {
    /// Where it comes from, e.g. `migration 0001 events` or `ingest: event summary`.
    pub origin: String,
    pub sql: String,
}

/// The migrations' statements, in the order they are applied.
pub fn schema() -> Vec<Statement> {
    MIGRATIONS
        .iter()
        .flat_map(|m| {
            m.statements().map(move |sql| Statement {
                origin: format!("migration {:04} {}", m.version, m.name),
                sql,
            })
        })
        .collect()
}
