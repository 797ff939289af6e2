//! The KPI definitions: every version kept in `kpi_definitions`, the current
//! ones held in memory.
//!
//! Data flow: at start-up [`Definitions::load`] reads the latest version of
//! each KPI, then records the KPI file's definitions that are new or changed
//! as new versions (source `file`); `PUT /v1/kpis/{id}` records one (source
//! `api`). A definition equal to the current one is not stored again. Readers
//! (the board, series, days, the rollup worker, the alert rules) take copies
//! of the current definitions.

use std::collections::BTreeMap;

use hypercare_runtime::SharedClock;
use hypercare_storage::ReadOnly;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::definition::Kpi;
use crate::sql;
use utoipa::ToSchema;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `[kpis] file`, at start-up.
    File,
    /// `PUT /v1/kpis/{id}`.
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Api => "api",
        }
    }
}

/// One stored version of a definition.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
pub struct DefinitionRow {
    pub kpi_id: String,
    pub version: u32,
    /// The definition, as JSON.
    pub definition: String,
    /// `file` or `api`.
    pub source: String,
    pub at_ms: u64,
    pub actor: String,
}

/// The current definitions, by id, with their version.
pub struct Definitions {
    store: clickhouse::Client,
    /// When a version is recorded.
    clock: SharedClock,
    current: RwLock<BTreeMap<String, (Kpi, u32)>>,
}

impl Definitions {
    /// Reads the stored definitions and records those of `from_file` that are
    /// new or changed.
    pub async fn load(
        store: clickhouse::Client,
        clock: SharedClock,
        from_file: Vec<Kpi>,
    ) -> clickhouse::error::Result<Self> {
        let definitions = Self {
            store,
            clock,
            current: RwLock::new(BTreeMap::new()),
        };
        definitions.reload().await?;
        for kpi in from_file {
            definitions.save(kpi, Source::File, "kpis.file").await?;
        }
        Ok(definitions)
    }

    async fn reload(&self) -> clickhouse::error::Result<()> {
        let rows: Vec<DefinitionRow> = self
            .store
            .query(sql::LATEST_DEFINITIONS)
            .read_only()
            .fetch_all()
            .await?;
        let mut current = self.current.write().await;
        current.clear();
        for row in rows {
            match serde_json::from_str::<Kpi>(&row.definition) {
                Ok(kpi) => {
                    current.insert(row.kpi_id, (kpi, row.version));
                }
                Err(error) => {
                    tracing::error!(kpi = %row.kpi_id, %error, "A stored KPI definition no longer parses; it is skipped.")
                }
            }
        }
        Ok(())
    }

    /// Stores `kpi` as a new version unless it equals the current one;
    /// answers the version now current.
    pub async fn save(
        &self,
        kpi: Kpi,
        source: Source,
        actor: &str,
    ) -> clickhouse::error::Result<u32> {
        let mut current = self.current.write().await;
        let version = match current.get(&kpi.id) {
            Some((existing, version)) if *existing == kpi => return Ok(*version),
            Some((_, version)) => version + 1,
            None => 1,
        };
        let row = DefinitionRow {
            kpi_id: kpi.id.clone(),
            version,
            definition: serde_json::to_string(&kpi).unwrap_or_default(),
            source: source.as_str().to_owned(),
            at_ms: self.clock.now_ms(),
            actor: actor.to_owned(),
        };
        let mut insert = self
            .store
            .insert::<DefinitionRow>("kpi_definitions")
            .await?;
        insert.write(&row).await?;
        insert.end().await?;
        current.insert(kpi.id.clone(), (kpi, version));
        Ok(version)
    }

    /// The current definition of `id`.
    pub async fn get(&self, id: &str) -> Option<Kpi> {
        self.current
            .read()
            .await
            .get(id)
            .map(|(kpi, _)| kpi.clone())
    }

    /// Every current definition, by id.
    pub async fn all(&self) -> Vec<Kpi> {
        self.current
            .read()
            .await
            .values()
            .map(|(kpi, _)| kpi.clone())
            .collect()
    }

    /// Every stored version of `id`, oldest first (empty for an unknown KPI).
    pub async fn history(&self, id: &str) -> clickhouse::error::Result<Vec<DefinitionRow>> {
        self.store
            .query(sql::DEFINITION_HISTORY)
            .bind(id)
            .read_only()
            .fetch_all()
            .await
    }
}

/// `GET /v1/kpis/{id}`: the current definition and every version.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiDefinitions {
    pub id: String,
    pub version: u32,
    #[schema(value_type = Kpi)]
    pub definition: serde_json::Value,
    pub history: Vec<KpiVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KpiVersion {
    pub version: u32,
    /// `file` or `api`.
    pub source: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = Kpi)]
    pub definition: serde_json::Value,
}

impl KpiDefinitions {
    /// From the stored versions, oldest first (at least one).
    pub fn from_rows(rows: &[DefinitionRow]) -> Self {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or_default();
        let last = rows.last();
        Self {
            id: last.map(|r| r.kpi_id.clone()).unwrap_or_default(),
            version: last.map_or(0, |r| r.version),
            definition: last.map(|r| parse(&r.definition)).unwrap_or_default(),
            history: rows
                .iter()
                .map(|r| KpiVersion {
                    version: r.version,
                    source: r.source.clone(),
                    actor: r.actor.clone(),
                    at: chrono::DateTime::from_timestamp_millis(r.at_ms as i64)
                        .unwrap_or_default()
                        .to_rfc3339(),
                    definition: parse(&r.definition),
                })
                .collect(),
        }
    }
}

/// `PUT /v1/kpis/{id}`: the version now current.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiSaved {
    pub id: String,
    pub version: u32,
}
