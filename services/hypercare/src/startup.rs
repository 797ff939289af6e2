//! Building and running the application.
//!
//! [`Application::build`] does everything that can fail before traffic is taken:
//! it checks the settings, finds or starts ClickHouse, applies the migrations,
//! starts the writers and binds the listener (port 0 allowed; [`Application::port`]
//! says which one). [`Application::run_until_stopped`] serves until the shutdown
//! future completes, then stops in dependency order: stop taking requests and let
//! in-flight ones finish (they wait for their rows to be stored), then let the
//! writers store what they hold, then stop the local ClickHouse.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use prometheus::{Encoder, Registry, TextEncoder};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use hypercare_http::auth::{ApiKeySettings, ApiKeys, Scope};
use hypercare_http::error::{ErrorCode, error_response};
use hypercare_http::health::{self, Health};
use hypercare_http::observe::{HttpMetrics, observe};
use hypercare_ingest::metrics::IngestMetrics;
use hypercare_ingest::writer::{Writer, WriterMetrics};
use hypercare_ingest::{IngestState, event, metric, otlp};
use hypercare_runtime::{Context, SharedClock, SystemClock, Tasks};
use hypercare_storage::local::LocalClickHouse;
use hypercare_storage::{Store, connect, migrate};

use crate::config::Settings;

/// A built application, listening and ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    writers: Vec<JoinHandle<()>>,
    stop_writers: watch::Sender<bool>,
    /// Legacy: periodic work aborted at shutdown (moving to `tasks`).
    background: Vec<JoinHandle<()>>,
    /// Every capability's background work (workers, refreshers, deliveries).
    tasks: Tasks,
    shutdown_deadline: Duration,
    local_clickhouse: Option<LocalClickHouse>,
    store: Store,
}

impl Application {
    /// Builds the application on the wall clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the application on `clock`, the one source of "now" of every
    /// capability (tests hand a [`hypercare_runtime::ManualClock`]).
    pub async fn build_with_clock(
        mut settings: Settings,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        if settings.auth.keys.is_empty() {
            let key = development_key(&settings.data_dir)?;
            settings.auth.keys.push(ApiKeySettings {
                name: "development".into(),
                key: Some(key),
                key_sha256: None,
                scopes: vec![Scope::Admin],
                rate_limit: None,
            });
        }
        let keys =
            web::Data::new(ApiKeys::from_settings(&settings.auth).map_err(anyhow::Error::msg)?);

        let (store, local_clickhouse) = connect_store(&settings).await?;
        migrate::run(&store)
            .await
            .context("applying schema migrations")?;

        let registry = Registry::new();
        let http_metrics = HttpMetrics::register(&registry)?;
        let health = Health::default();
        let ctx = Context {
            store: store.clone(),
            clock: clock.clone(),
            registry: registry.clone(),
            health: health.clone(),
            tasks: Tasks::new(),
        };
        spawn_clickhouse_probe(&ctx);
        // Until every capability takes the clock from the context.
        settings.kpis.clock = Some(clock.clone());
        settings.tickets.clock = Some(clock.clone());

        let (stop_writers, stopped) = watch::channel(false);
        let shutdown = |mut rx: watch::Receiver<bool>| async move {
            // An error means the sender is gone, which is a stop signal as well.
            rx.wait_for(|stop| *stop).await.ok();
        };
        let (events, events_task) = Writer::spawn(
            store.client.clone(),
            event::TABLE,
            event::INSERT_SQL,
            settings.ingest.writer.clone(),
            WriterMetrics::register(&registry, event::TABLE)?,
            health.register("writer_events", Duration::from_secs(30)),
            shutdown(stopped.clone()),
        );
        let (metrics, metrics_task) = Writer::spawn(
            store.client.clone(),
            metric::TABLE,
            metric::INSERT_SQL,
            settings.ingest.writer.clone(),
            WriterMetrics::register(&registry, metric::TABLE)?,
            health.register("writer_metric_points", Duration::from_secs(30)),
            shutdown(stopped.clone()),
        );
        let (logs, logs_task) = Writer::spawn(
            store.client.clone(),
            otlp::logs::TABLE,
            otlp::logs::INSERT_SQL,
            settings.ingest.writer.clone(),
            WriterMetrics::register(&registry, otlp::logs::TABLE)?,
            health.register("writer_logs", Duration::from_secs(30)),
            shutdown(stopped),
        );
        let ingest = web::Data::new(IngestState {
            limits: settings.ingest.limits.clone(),
            events,
            metrics,
            logs,
            store: store.client.clone(),
            counters: IngestMetrics::register(&registry)?,
        });
        let kpis = web::Data::new(
            hypercare_kpis::KpiState::load(
                store.client.clone(),
                settings.kpis.load().map_err(anyhow::Error::msg)?,
                settings.kpis.clock.clone(),
            )
            .await
            .context("loading the KPI definitions")?,
        );
        let tickets = web::Data::new(hypercare_tickets::TicketsState::new(
            settings.tickets.clone(),
            store.client.clone(),
            &registry,
        )?);
        let mut background = vec![tickets.clone().into_inner().spawn_gauge_refresher()];
        let tasks = ctx.tasks.clone();
        if settings.kpis.rollups.enabled {
            background.push(
                kpis.clone()
                    .into_inner()
                    .spawn_rollup_worker(settings.kpis.rollups.clone(), store.background.clone()),
            );
            // The values dashboards read, on the rollups' cadence (issue 15).
            hypercare_kpis::published::start(
                &ctx.tasks,
                kpis.clone().into_inner(),
                Duration::from_secs(settings.kpis.rollups.interval_secs.max(1)),
                store.background.clone(),
            );
        }
        let alerts = web::Data::new(build_alerts(&settings, &store, kpis.clone().into_inner())?);
        if let Some(engine) = &alerts.engine {
            background.push(engine.clone().spawn());
        }
        let capacity = web::Data::new(hypercare_capacity::CapacityState {
            settings: settings.capacity.clone(),
            store: store.client.clone(),
        });

        let openapi = web::Data::new(crate::openapi::OpenApiJson(
            crate::openapi::document_for(&settings)
                .to_json()
                .context("writing the OpenAPI document")?,
        ));

        let listener = TcpListener::bind(&settings.server.listen)
            .with_context(|| format!("binding server.listen {}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        let registry = web::Data::new(registry);
        let health = web::Data::new(health);
        let bodies_in_flight = web::Data::new(hypercare_http::body::BodiesInFlight::new(
            settings.server.max_bodies_in_flight_bytes,
        ));
        let mut server = HttpServer::new(move || {
            let http_metrics = http_metrics.clone();
            App::new()
                .wrap(from_fn(move |req, next| {
                    observe(http_metrics.clone(), req, next)
                }))
                .app_data(keys.clone())
                .app_data(bodies_in_flight.clone())
                .app_data(ingest.clone())
                .app_data(registry.clone())
                .app_data(health.clone())
                .app_data(capacity.clone())
                .app_data(tickets.clone())
                .app_data(kpis.clone())
                .app_data(alerts.clone())
                .app_data(openapi.clone())
                .configure(hypercare_http::error::extractor_errors)
                .configure(routes)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.run();
        tracing::info!(port, "Hypercare is listening.");
        Ok(Self {
            port,
            server,
            writers: vec![events_task, metrics_task, logs_task],
            stop_writers,
            tasks,
            shutdown_deadline: Duration::from_secs(settings.server.shutdown_timeout_secs),
            background,
            local_clickhouse,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ClickHouse the application uses (the local one, when it started one).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` completes or the server fails, then stops cleanly.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            server,
            writers,
            stop_writers,
            tasks,
            shutdown_deadline,
            background,
            mut local_clickhouse,
            ..
        } = self;
        let handle = server.handle();
        let mut server = tokio::spawn(server);
        let served = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                tracing::info!("Shutting down: finishing in-flight requests.");
                handle.stop(true).await;
                server.await
            }
        };
        // The writers hold the receivers until they end, so this cannot fail.
        stop_writers.send(true).ok();
        for writer in writers {
            if let Err(error) = writer.await {
                tracing::error!(%error, "A writer task failed.");
            }
        }
        tasks.shutdown(shutdown_deadline).await;
        for task in background {
            task.abort();
        }
        if let Some(local) = local_clickhouse.as_mut() {
            local.stop(Duration::from_secs(30));
        }
        tracing::info!("Hypercare stopped.");
        served.context("HTTP server task")?.context("HTTP server")
    }
}

/// Every route the service mounts; each one is in the OpenAPI document
/// ([`crate::openapi`], whose test compares the two).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(prometheus_metrics))
        .route(
            "/v1/openapi.json",
            web::get().to(crate::openapi::openapi_json),
        );
    hypercare_ingest::configure(cfg);
    hypercare_capacity::configure(cfg);
    hypercare_tickets::configure(cfg);
    hypercare_kpis::configure(cfg);
    hypercare_alerts::configure(cfg);
}

/// Connects to the configured ClickHouse, or starts the local default (and
/// logs in with the password it made).
pub(crate) async fn connect_store(
    settings: &Settings,
) -> anyhow::Result<(Store, Option<LocalClickHouse>)> {
    match &settings.clickhouse.url {
        Some(url) if !url.is_empty() => Ok((connect(url, &settings.clickhouse).await?, None)),
        _ => {
            let dir = settings.data_dir.join("clickhouse");
            tracing::info!(dir = %dir.display(), "No clickhouse.url set: starting a local ClickHouse server.");
            let local = LocalClickHouse::start(&dir, &settings.clickhouse.local).await?;
            let mut login = settings.clickhouse.clone();
            if let Some(password) = local.password() {
                login.password = password;
            }
            let store = connect(&local.url(), &login).await?;
            Ok((store, Some(local)))
        }
    }
}

/// With no key configured, a development key with every scope is made once and
/// kept in `<data_dir>/dev-api-key` (mode 0600), so a first run works at once.
fn development_key(data_dir: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join("dev-api-key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 16 {
            tracing::warn!(path = %path.display(), "No API keys configured: using the development key (all scopes) kept in this file.");
            return Ok(SecretString::from(existing));
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data_dir {}", data_dir.display()))?;
    let key = format!("hc_dev_{}", hex::encode(rand::random::<[u8; 20]>()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tracing::warn!(path = %path.display(), "No API keys configured: made a development key with all scopes and wrote it to this file. Configure [[auth.keys]] for anything but a trial.");
    Ok(SecretString::from(key))
}

fn spawn_clickhouse_probe(ctx: &Context) {
    let reporter = ctx.health.register("clickhouse", Duration::from_secs(15));
    let store = ctx.store.clone();
    // Connected and migrated a moment ago.
    reporter.report(true, format!("reachable (version {})", store.version));
    let was_up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    ctx.tasks
        .every("clickhouse_probe", Duration::from_secs(2), move || {
            let (store, reporter, was_up) = (store.clone(), reporter.clone(), was_up.clone());
            async move {
                let up = store.ping(Duration::from_secs(2)).await;
                if up {
                    reporter.report(true, format!("reachable (version {})", store.version));
                } else {
                    reporter.report(false, "unreachable");
                }
                if was_up.swap(up, std::sync::atomic::Ordering::Relaxed) != up {
                    if up {
                        tracing::info!("ClickHouse is reachable again.");
                    } else {
                        tracing::warn!("ClickHouse is unreachable: /readyz now fails.");
                    }
                }
            }
        });
}

/// The service's own Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub(crate) async fn prometheus_metrics(registry: web::Data<Registry>) -> HttpResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&registry.gather(), &mut buffer) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(buffer),
        Err(e) => error_response(ErrorCode::InternalError, e.to_string()),
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error_response(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
}

/// Loads the alert rules and, on the evaluating replica, the engine.
fn build_alerts(
    settings: &Settings,
    store: &Store,
    kpis: std::sync::Arc<hypercare_kpis::KpiState>,
) -> anyhow::Result<hypercare_alerts::AlertState> {
    let config = &settings.alerts;
    let inhibitions = config.validate().map_err(anyhow::Error::msg)?;
    let paths: Vec<_> = config
        .rules
        .iter()
        .filter(|p| {
            let exists = p.exists();
            if !exists {
                tracing::warn!(path = %p.display(), "No alert rules at this path (alerts.rules); it is skipped.");
            }
            exists
        })
        .cloned()
        .collect();
    let rules = hypercare_alerts::rule::load(&paths, None).context("loading the alert rules")?;
    tracing::info!(
        rules = rules.len(),
        evaluate = config.evaluate,
        "Alert rules loaded."
    );
    let engine = if config.evaluate {
        Some(std::sync::Arc::new(
            hypercare_alerts::engine::Engine::new(
                config.clone(),
                rules,
                // Evaluation reads whole windows of metrics: background deadlines.
                store.background.clone(),
                kpis,
                settings.capacity.clone(),
            )
            .map_err(anyhow::Error::msg)?,
        ))
    } else {
        None
    };
    Ok(hypercare_alerts::AlertState {
        store: store.client.clone(),
        engine,
        settings: config.clone(),
        inhibitions,
    })
}
