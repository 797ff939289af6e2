//! Building and running the application.
//!
//! [`Application::build`] does everything that can fail before traffic is taken:
//! it checks the settings, finds or starts ClickHouse, applies the migrations,
//! builds the capabilities (the ingest writers start on the tasks) and binds the
//! listener (port 0 allowed; [`Application::port`] says which one).
//! [`Application::run_until_stopped`] serves until the shutdown future completes,
//! then stops in dependency order: stop taking requests and let in-flight ones
//! finish (they wait for their rows to be stored), then cancel the tasks and wait
//! for them (the writers store what they hold), then stop the local ClickHouse.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use prometheus::Registry;
use secrecy::{ExposeSecret, SecretString};

use hypercare_capacity::Capacity;
use hypercare_http::auth::{ApiKeySettings, ApiKeys, Scope};
use hypercare_http::health::{self, Health};
use hypercare_http::observe::{HttpMetrics, observe};
use hypercare_ingest::Ingest;
use hypercare_kpis::Kpis;
use hypercare_runtime::{Capability, Context, Mount, SharedClock, SystemClock, Tasks};
use hypercare_storage::local::LocalClickHouse;
use hypercare_storage::{Store, connect, migrate};

use crate::config::Settings;

/// A built application, listening and ready to serve.
pub struct Application {
    port: u16,
    server: Server,
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
        let mut development = None;
        if settings.auth.keys.is_empty() {
            let key = development_key(&settings.data_dir)?;
            development = Some(key.expose_secret().to_owned());
            settings.auth.keys.push(ApiKeySettings {
                name: "development".into(),
                key: Some(key),
                key_sha256: None,
                scopes: vec![Scope::Admin],
                rate_limit: None,
            });
        }
        let keys = web::Data::new(ApiKeys::from_settings(&settings.auth)?);

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

        // The writers run on `ctx.tasks`: at shutdown they store what they hold.
        let ingest = Ingest::build(settings.ingest.clone(), &ctx).await?;
        let kpis = Kpis::build(settings.kpis.clone(), &ctx).await?;
        let tickets = hypercare_tickets::Tickets::build(settings.tickets.clone(), &ctx).await?;
        let tasks = ctx.tasks.clone();
        let alerts = hypercare_alerts::Alerts::build(
            hypercare_alerts::AlertsSettings {
                alerts: settings.alerts.clone(),
                kpis: kpis.state(),
                capacity: settings.capacity.clone(),
            },
            &ctx,
        )
        .await?;
        let capacity = Capacity::build(settings.capacity.clone(), &ctx).await?;
        let report = hypercare_report::Report::build(
            hypercare_report::ReportInputs {
                report: settings.report.clone(),
                kpis: kpis.state(),
                alerts: alerts.state().clone(),
                tickets: tickets.service(),
                capacity: capacity.state().clone(),
            },
            &ctx,
        )
        .await?;
        let console = hypercare_console::Console::build(settings.console.clone(), &ctx).await?;
        let investigate = hypercare_investigate::Investigate::build((), &ctx).await?;
        // The capabilities built on the one shape mount their own state and routes.
        let mounted: Arc<[Arc<dyn Mount>]> = Arc::new([
            Arc::new(ingest) as Arc<dyn Mount>,
            Arc::new(kpis),
            Arc::new(capacity),
            Arc::new(tickets),
            Arc::new(alerts),
            Arc::new(report),
            Arc::new(console),
            Arc::new(investigate),
        ]);

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
            let mounted = mounted.clone();
            App::new()
                .wrap(from_fn(move |req, next| {
                    observe(http_metrics.clone(), req, next)
                }))
                .app_data(keys.clone())
                .app_data(bodies_in_flight.clone())
                .app_data(registry.clone())
                .app_data(health.clone())
                .app_data(openapi.clone())
                .configure(hypercare_http::body::extractor_errors)
                .configure(routes)
                .configure(|cfg| mounted.iter().for_each(|m| m.configure(cfg)))
                .default_service(web::to(hypercare_http::error::no_route))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.run();
        tracing::info!(port, "Hypercare is listening.");
        // A first local run: say where to go and with what, as a notebook server
        // prints its token. Configured keys are never printed.
        if let Some(key) = development
            && settings.console.enabled
        {
            let host = settings
                .server
                .listen
                .rsplit_once(':')
                .map_or("127.0.0.1", |(h, _)| h);
            let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
            eprintln!(
                "\n  Hypercare console: http://{host}:{port}/\n  Sign in with the development key: {key}\n"
            );
        }
        Ok(Self {
            port,
            server,
            tasks,
            shutdown_deadline: Duration::from_secs(settings.server.shutdown_timeout_secs),
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
            tasks,
            shutdown_deadline,
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
        // The ingest writers are among the tasks: they store what they hold.
        tasks.shutdown(shutdown_deadline).await;
        if let Some(local) = local_clickhouse.as_mut() {
            local.stop(Duration::from_secs(30));
        }
        tracing::info!("Hypercare stopped.");
        served.context("HTTP server task")?.context("HTTP server")
    }
}

/// Every route the service mounts but those of the capabilities that mount
/// their own ([`Mount`]: ingest, KPIs, capacity, tickets); each one is in the OpenAPI document
/// ([`crate::openapi`], whose test compares the two).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route(
            "/metrics",
            web::get().to(hypercare_http::observe::prometheus_metrics),
        )
        .route(
            "/v1/openapi.json",
            web::get().to(crate::openapi::openapi_json),
        );
}

/// The route tables of the capabilities that mount their own routes (in
/// [`hypercare_runtime::Mount::configure`]), for the OpenAPI test, which
/// compares every API route with the document.
pub const CAPABILITY_ROUTES: &[fn(&mut web::ServiceConfig)] = &[
    hypercare_ingest::configure,
    hypercare_kpis::configure,
    hypercare_capacity::configure,
    hypercare_tickets::configure,
    hypercare_alerts::configure,
    hypercare_report::configure,
    hypercare_investigate::configure,
];

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
