//! Ingest: business events and technical metrics into ClickHouse.
//!
//! ```text
//! POST /v1/events, /v1/metrics (JSON: routes); /v1/otlp/v1/{metrics,logs} (otlp);
//!      /v1/prometheus/write (remote_write);
//!      /v1/segment/v1/{track,identify,page,screen,group,alias,batch} (segment)
//!   -> the route: key and scope; content type; body (gzip, size limit)
//!   -> state::IngestState::admit: request limits, body bytes from the key's byte rate
//!   -> the protocol's decoder (records, otlp::json, remote_write::decode, ...)
//!      -> event / metric / otlp::logs: check each field, encode accepted records as RowBinary
//!   -> state::IngestState::store: count, refuse if nothing is valid, then
//!      writer: queue (bounded, 503 when full) -> batched INSERT -> mark late hours
//!   -> 2xx once stored; any failure is an error::IngestError, answered through
//!      its one conversion into hypercare_http::ApiError
//! ```
//!
//! A 2xx means the accepted records are stored in ClickHouse. Retried batches are
//! made harmless by the tables and the reads (see `migrations/` and [`summary`]).
//!
//! [`Ingest`] is the capability the application builds: it starts the three
//! writers (events, metric points, logs) on the application's tasks, which
//! store what they hold when the tasks are cancelled at shutdown, and mounts
//! [`IngestState`] and the routes.

pub mod api_doc;
pub mod budget;
pub mod classic;
pub mod config;
pub mod error;
pub mod event;
pub mod fields;
pub mod metric;
pub mod metrics;
pub mod otlp;
pub mod quantile;
pub mod reconcile;
pub mod records;
pub mod remote_write;
pub mod routes;
pub mod schema;
pub mod segment;
pub mod state;
pub mod summary;
pub mod wire;
pub mod writer;

use std::time::Duration;

use actix_web::web;

use hypercare_runtime::{Capability, Context, Mount};

pub use config::{IngestSettings, InvalidSettings, Limits, WriterSettings};
pub use error::IngestError;
pub use routes::configure;
pub use state::IngestState;

use metrics::IngestMetrics;
use writer::{Writer, WriterMetrics};

/// How long a writer may go without reporting before `/readyz` fails.
const WRITER_HEALTH_DEADLINE: Duration = Duration::from_secs(30);

/// The ingest capability: its state, shared by the routes, and its writers,
/// running on the application's tasks. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    state: web::Data<IngestState>,
    reconcile: web::Data<reconcile::ReconcileState>,
}

impl Ingest {
    pub fn state(&self) -> &IngestState {
        &self.state
    }
}

impl Capability for Ingest {
    type Settings = IngestSettings;
    /// Registering the writers' and counters' metrics failed (a name taken).
    type Error = prometheus::Error;

    /// Starts one writer per table on `ctx.tasks`, each reporting its health;
    /// the settings were validated with the others (`IngestSettings::validate`).
    async fn build(settings: IngestSettings, ctx: &Context) -> Result<Self, prometheus::Error> {
        let writer = |table: &'static str, insert_sql: &'static str, component: &'static str| {
            Ok::<_, prometheus::Error>(Writer::spawn(
                ctx.store.client.clone(),
                table,
                insert_sql,
                settings.writer.clone(),
                WriterMetrics::register(&ctx.registry, table)?,
                ctx.health.register(component, WRITER_HEALTH_DEADLINE),
                &ctx.tasks,
            ))
        };
        let events = writer(event::TABLE, event::INSERT_SQL, "writer_events")?;
        let metrics = writer(metric::TABLE, metric::INSERT_SQL, "writer_metric_points")?;
        let logs = writer(otlp::logs::TABLE, otlp::logs::INSERT_SQL, "writer_logs")?;
        let reconcile = reconcile_state(&settings, ctx);
        let state = IngestState {
            limits: settings.limits,
            events,
            metrics,
            logs,
            store: ctx.store.client.clone(),
            counters: IngestMetrics::register(&ctx.registry)?,
            clock: ctx.clock.clone(),
        };
        Ok(Self {
            state: web::Data::new(state),
            reconcile: web::Data::new(reconcile),
        })
    }
}

impl Mount for Ingest {
    fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone());
        cfg.app_data(self.reconcile.clone());
        routes::configure(cfg);
    }
}

/// How often id tables left by cut reconciliations are looked for.
const RECONCILE_SWEEP_PERIOD: Duration = Duration::from_secs(600);

/// The reconciliation's state, and its sweep on `ctx.tasks`.
fn reconcile_state(settings: &IngestSettings, ctx: &Context) -> reconcile::ReconcileState {
    let comparer = reconcile::compare::Comparer {
        client: ctx.store.background.clone(),
        deadline: Duration::from_secs(settings.reconcile.query_timeout_secs),
    };
    let (sweeper, clock) = (comparer.clone(), ctx.clock.clone());
    ctx.tasks.every("reconcile_sweep", RECONCILE_SWEEP_PERIOD, move || {
        let (sweeper, clock) = (sweeper.clone(), clock.clone());
        async move {
            let now = i64::try_from(clock.now_ms() / 1000).unwrap_or(0);
            match sweeper.sweep(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tables = n, "Dropped reconciliation tables left by cut requests."),
                Err(e) => tracing::warn!(error = %e, "Could not look for leftover reconciliation tables."),
            }
        }
    });
    reconcile::ReconcileState {
        settings: settings.reconcile.clone(),
        comparer,
        body_read_timeout: Duration::from_millis(settings.limits.body_read_timeout_ms),
        clock: ctx.clock.clone(),
    }
}
