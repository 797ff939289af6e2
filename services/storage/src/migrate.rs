//! Versioned schema migrations.
//!
//! Each migration is a file `migrations/NNNN_name.sql` of one or more statements,
//! embedded in the binary. Applied migrations are recorded in `schema_migrations`
//! with a checksum; a file changed after it was applied stops start-up with an
//! error, since the live schema no longer matches it. Every statement must be
//! idempotent (`IF NOT EXISTS`): replicas that start together may both apply one.
//!
//! Each capability owns a range of version numbers, so that work on two of them
//! never competes for the next number; versions only need to increase:
//!
//! | range     | capability                                   |
//! |-----------|----------------------------------------------|
//! | 0001-0099 | ingest: events, metrics, OTLP, remote write  |
//! | 0100-0199 | launches and KPIs                            |
//! | 0200-0299 | alerts                                       |
//! | 0300-0399 | feedback tickets                             |
//! | 0400-0499 | load tests and capacity                      |

use clickhouse::sql::Identifier;
use sha2::{Digest, Sha256};

use crate::{Error, Result, Store};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// The statements of the file, split at semicolons that end a line.
    pub fn statements(&self) -> impl Iterator<Item = String> + '_ {
        self.sql
            .split(";\n")
            .map(strip_comments)
            .filter(|statement| !statement.is_empty())
    }

    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

fn strip_comments(chunk: &str) -> String {
    chunk
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .trim_end_matches(';')
        .to_owned()
}

/// All migrations, in order of version. A new file takes the next free number in
/// its capability's range (see the module documentation).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../migrations/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "metric_points",
        sql: include_str!("../migrations/0002_metric_points.sql"),
    },
    Migration {
        version: 3,
        name: "metric_points_otlp",
        sql: include_str!("../migrations/0003_metric_points_otlp.sql"),
    },
    Migration {
        version: 4,
        name: "logs",
        sql: include_str!("../migrations/0004_logs.sql"),
    },
    Migration {
        version: 5,
        name: "metric_names",
        sql: include_str!("../migrations/0005_metric_names.sql"),
    },
    Migration {
        version: 100,
        name: "launches",
        sql: include_str!("../migrations/0100_launches.sql"),
    },
    Migration {
        version: 101,
        name: "kpi_definitions",
        sql: include_str!("../migrations/0101_kpi_definitions.sql"),
    },
    Migration {
        version: 102,
        name: "event_hours_late",
        sql: include_str!("../migrations/0102_event_hours_late.sql"),
    },
    Migration {
        version: 103,
        name: "kpi_rollups",
        sql: include_str!("../migrations/0103_kpi_rollups.sql"),
    },
    Migration {
        version: 104,
        name: "events_recent",
        sql: include_str!("../migrations/0104_events_recent.sql"),
    },
    Migration {
        version: 105,
        name: "kpi_published",
        sql: include_str!("../migrations/0105_kpi_published.sql"),
    },
    Migration {
        version: 200,
        name: "alert_events",
        sql: include_str!("../migrations/0200_alert_events.sql"),
    },
    Migration {
        version: 201,
        name: "silences",
        sql: include_str!("../migrations/0201_silences.sql"),
    },
    Migration {
        version: 202,
        name: "alert_notifications",
        sql: include_str!("../migrations/0202_alert_notifications.sql"),
    },
    Migration {
        version: 300,
        name: "ticket_events",
        sql: include_str!("../migrations/0300_ticket_events.sql"),
    },
    Migration {
        version: 400,
        name: "loadtest_runs",
        sql: include_str!("../migrations/0400_loadtest_runs.sql"),
    },
    Migration {
        version: 401,
        name: "loadtest_steps",
        sql: include_str!("../migrations/0401_loadtest_steps.sql"),
    },
    Migration {
        version: 500,
        name: "events_first_write_wins",
        sql: include_str!("../migrations/0500_events_first_write_wins.sql"),
    },
    Migration {
        version: 600,
        name: "daily_reports",
        sql: include_str!("../migrations/0600_daily_reports.sql"),
    },
    Migration {
        version: 601,
        name: "report_deliveries",
        sql: include_str!("../migrations/0601_report_deliveries.sql"),
    },
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version UInt32, name String, checksum String, applied_at DateTime) \
     ENGINE = ReplacingMergeTree(applied_at) ORDER BY version";

/// What [`run`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub applied: Vec<u32>,
    pub already_applied: Vec<u32>,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Applied {
    version: u32,
    checksum: String,
}

#[derive(Debug, clickhouse::Row, serde::Serialize)]
struct Record<'a> {
    version: u32,
    name: &'a str,
    checksum: &'a str,
    applied_at: u32,
}

/// Creates the database if needed and applies the migrations not yet applied.
#[tracing::instrument(name = "clickhouse.migrate", skip_all, fields(database = %store.database))]
pub async fn run(store: &Store) -> Result<Outcome> {
    store
        .server
        .query("CREATE DATABASE IF NOT EXISTS ?")
        .bind(Identifier(&store.database))
        .execute()
        .await
        .map_err(Error::clickhouse("CREATE DATABASE"))?;
    store
        .background
        .query(CREATE_LEDGER)
        .execute()
        .await
        .map_err(Error::clickhouse("creating schema_migrations"))?;
    let applied: Vec<Applied> = store
        .background
        .query(
            "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version",
        )
        .fetch_all()
        .await
        .map_err(Error::clickhouse("reading schema_migrations"))?;

    let mut outcome = Outcome::default();
    for migration in MIGRATIONS {
        let checksum = migration.checksum();
        if let Some(done) = applied.iter().find(|a| a.version == migration.version) {
            if done.checksum != checksum {
                return Err(Error::MigrationChanged {
                    version: migration.version,
                    name: migration.name.into(),
                    applied: done.checksum.clone(),
                    current: checksum,
                });
            }
            outcome.already_applied.push(migration.version);
            continue;
        }
        for statement in migration.statements() {
            let result = store
                .background
                .query(&statement)
                .with_setting("wait_end_of_query", "1")
                .execute()
                .await;
            match result {
                Ok(()) => {}
                Err(error) if column_already_added(&statement, &error) => {}
                Err(error) => {
                    return Err(Error::clickhouse(format!(
                        "migration {:04} ({})",
                        migration.version, migration.name
                    ))(error));
                }
            }
        }
        let mut insert = store
            .background
            .insert::<Record>("schema_migrations")
            .await
            .map_err(Error::clickhouse("recording a migration"))?;
        insert
            .write(&Record {
                version: migration.version,
                name: migration.name,
                checksum: &checksum,
                applied_at: now_unix(),
            })
            .await
            .map_err(Error::clickhouse("recording a migration"))?;
        insert
            .end()
            .await
            .map_err(Error::clickhouse("recording a migration"))?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "Applied migration."
        );
        outcome.applied.push(migration.version);
    }
    Ok(outcome)
}

/// An `ADD COLUMN` that fails because the column exists was applied before (by a
/// replica starting at the same time, or a run stopped half-way). ClickHouse 18.16
/// has no `ADD COLUMN IF NOT EXISTS`, so this stands in for it. The error is code
/// 44 on 18.x and 15 (DUPLICATE_COLUMN) on recent servers.
fn column_already_added(statement: &str, error: &clickhouse::error::Error) -> bool {
    let adds_a_column = statement.trim_start().starts_with("ALTER TABLE")
        && statement.matches("ADD COLUMN").count() == 1;
    let message = error.to_string();
    adds_a_column
        && (message.contains("Code: 44") || message.contains("Code: 15"))
        && message.contains("already exists")
}

fn now_unix() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_match_their_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(
            files, listed,
            "every file in migrations/ must be listed in MIGRATIONS, in order"
        );
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].version < pair[1].version,
                "versions must increase: {} then {}",
                pair[0].version,
                pair[1].version
            );
        }
    }

    #[test]
    fn statements_drop_comments_and_split_at_line_ending_semicolons() {
        let m = Migration {
            version: 9,
            name: "x",
            sql: "-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Log;\n\nCREATE TABLE b (y String) ENGINE = Log;\n",
        };
        let statements: Vec<String> = m.statements().collect();
        assert_eq!(
            statements,
            vec![
                "CREATE TABLE a (x UInt8) ENGINE = Log",
                "CREATE TABLE b (y String) ENGINE = Log"
            ]
        );
    }
}
