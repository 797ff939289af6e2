//! The scheduler: a task on `ctx.tasks` that, every `interval`, delivers the
//! report that is due (`due_day`) to the targets that have not had it
//! (`store::finished`). A tick awaits its deliveries, retries included, so
//! the next tick cannot start the same delivery twice; at shutdown the
//! attempt in flight ends and is recorded, and no retry starts (its last row
//! says `retrying`, so the next start delivers it again).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web;
use hypercare_runtime::{Cancellation, Context};
use prometheus::{IntCounterVec, Opts};

use crate::ReportState;
use crate::delivery::store::{self, AttemptRow};
use crate::delivery::{Attempt, DeliverySettings, Target, body, delay_after, due_day};
use crate::document::DailyReport;
use crate::make::Freshness;
use crate::routes::Format;

/// `User-Agent` of the webhook requests.
const USER_AGENT: &str = concat!("Hypercare/", env!("CARGO_PKG_VERSION"));

pub struct Scheduler {
    settings: DeliverySettings,
    report: web::Data<ReportState>,
    store: clickhouse::Client,
    http: reqwest::Client,
    deliveries: IntCounterVec,
    cancel: Cancellation,
}

/// Starts the scheduler on `ctx.tasks` when delivery is configured.
pub fn start(settings: DeliverySettings, report: web::Data<ReportState>, ctx: &Context) {
    if !settings.enabled() {
        return;
    }
    let deliveries = IntCounterVec::new(
        Opts::new(
            "hypercare_report_deliveries_total",
            "Attempts to deliver the daily report, by format (json, slack, teams, folder) and status (delivered, retrying, failed).",
        ),
        &["format", "status"],
    )
    .expect("a valid metric definition");
    if let Err(e) = ctx.registry.register(Box::new(deliveries.clone())) {
        tracing::warn!(error = %e, "The report delivery metric could not be registered.");
    }
    let scheduler = Arc::new(Scheduler {
        http: reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_default(),
        store: ctx.store.background.clone(),
        settings,
        report,
        deliveries,
        cancel: ctx.tasks.cancellation(),
    });
    let interval = scheduler.settings.interval;
    ctx.tasks.every("report_delivery", interval, move || {
        let scheduler = scheduler.clone();
        async move { scheduler.tick().await }
    });
}

impl Scheduler {
    /// Delivers what is due now, if anything; what fails is tried at a later tick.
    async fn tick(&self) {
        let Some(at) = self.settings.at_time() else {
            return;
        };
        let launch = match hypercare_kpis::launch::current(&self.store).await {
            Ok(Some(launch)) => launch,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "Report delivery: the current launch could not be read.");
                return;
            }
        };
        let Ok(tz) = launch.tz() else {
            return;
        };
        let window = launch.window(tz);
        let now_ms = self.report.clock.now_ms();
        let Some(day) = due_day(now_ms, tz, window.d0, window.last, at) else {
            return;
        };
        let Ok(day32) = i32::try_from(day) else {
            return;
        };
        let finished = match store::finished(&self.store, &launch.launch_id, day32).await {
            Ok(finished) => finished,
            Err(e) => {
                tracing::warn!(error = %e, "Report delivery: past attempts could not be read.");
                return;
            }
        };
        let pending: Vec<Target> = self
            .settings
            .targets()
            .into_iter()
            .filter(|t| !finished.contains(&t.id()))
            .collect();
        if pending.is_empty() {
            return;
        }
        let report = match self.report.report(&launch, day, Freshness::Stored).await {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(error = %e, day, "Report delivery: the report could not be made; trying again at the next tick.");
                return;
            }
        };
        let report = &report;
        futures_util::future::join_all(pending.iter().map(|t| self.deliver(t, report))).await;
    }

    /// Attempts `target` until delivered, refused, out of retries or shut down;
    /// records every attempt.
    async fn deliver(&self, target: &Target, report: &DailyReport) {
        let attempts = self.settings.retries.saturating_add(1);
        let day = i32::try_from(report.day).unwrap_or(i32::MAX);
        for attempt in 1..=attempts {
            if attempt > 1 && self.cancel.is_cancelled() {
                return;
            }
            let outcome = match target {
                Target::Webhook(hook) => {
                    let link = self.settings.link_for(&report.launch.id, report.day);
                    self.post(&hook.url, body::body(hook.format, report, link.as_deref()))
                        .await
                }
                Target::Folder(folder) => write_files(Path::new(folder), report).await,
            };
            let status = outcome.status(attempt, attempts);
            let (http_status, error, after) = match &outcome {
                Attempt::Delivered { http_status } => (*http_status, String::new(), None),
                Attempt::Retryable {
                    http_status,
                    error,
                    after,
                } => (*http_status, error.clone(), *after),
                Attempt::Refused { http_status, error } => (*http_status, error.clone(), None),
            };
            let row = AttemptRow {
                at_ms: self.report.clock.now_ms(),
                launch_id: report.launch.id.clone(),
                day,
                target_id: target.id(),
                target: target.shown(),
                format: target.format().into(),
                attempt,
                status: status.into(),
                http_status,
                error: error.clone(),
            };
            if let Err(e) = store::record(&self.store, &row).await {
                tracing::warn!(error = %e, "Report delivery: an attempt could not be recorded.");
            }
            self.deliveries
                .with_label_values(&[target.format(), status])
                .inc();
            if status != "retrying" {
                if status == "failed" {
                    tracing::warn!(target = %target.shown(), attempt, %error, "Report delivery failed.");
                }
                return;
            }
            tracing::info!(target = %target.shown(), attempt, %error, "Report delivery failed; retrying.");
            let delay = delay_after(attempt, self.settings.backoff, after);
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn post(&self, url: &str, body: Vec<u8>) -> Attempt {
        let sent = self
            .http
            .post(url)
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) => {
                let retry_after = answer
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        crate::delivery::parse_retry_after(v, self.report.clock.now_ms())
                    });
                Attempt::from_status(answer.status().as_u16(), retry_after)
            }
            // A request that cannot be built (a URL reqwest refuses) would
            // fail the same way again.
            Err(e) if e.is_builder() => Attempt::Refused {
                http_status: 0,
                error: e.without_url().to_string(),
            },
            // Without the URL: it is a secret.
            Err(e) => Attempt::Retryable {
                http_status: 0,
                error: e.without_url().to_string(),
                after: None,
            },
        }
    }
}

/// Writes the report as `.json`, `.md` and `.html` into `folder`, each
/// through a temporary file renamed into place, so a reader never sees half
/// a file.
async fn write_files(folder: &Path, report: &DailyReport) -> Attempt {
    let stem = crate::delivery::file_stem(
        &report.launch.name,
        &report.launch.id,
        report.day,
        &report.date,
    );
    let written = async {
        tokio::fs::create_dir_all(folder).await?;
        for (format, extension) in [
            (Format::Json, "json"),
            (Format::Md, "md"),
            (Format::Html, "html"),
        ] {
            let (_, text) = format.write(report);
            let name = format!("{stem}.{extension}");
            let temporary: PathBuf = folder.join(format!(".{name}.tmp"));
            tokio::fs::write(&temporary, text).await?;
            tokio::fs::rename(&temporary, folder.join(&name)).await?;
        }
        std::io::Result::Ok(())
    };
    match written.await {
        Ok(()) => Attempt::Delivered { http_status: 0 },
        Err(e) => Attempt::Retryable {
            http_status: 0,
            error: e.to_string(),
            after: None,
        },
    }
}
