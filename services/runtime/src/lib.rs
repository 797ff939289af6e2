//! The one shape of a capability (ingest, KPIs, alerts, tickets, capacity, ...).
//!
//! The application builder (`hypercare::startup`) parses and validates the
//! settings once, connects to ClickHouse once, then builds each capability the
//! same way: [`Capability::build`] from its section of the settings and the shared
//! [`Context`]. A capability mounts its routes and state in
//! [`Capability::configure`], and starts its background work (workers,
//! refreshers, deliveries) on [`Context::tasks`], never with a bare
//! `tokio::spawn`: at shutdown the builder stops taking requests, lets in-flight
//! ones finish, then cancels [`Tasks`] and waits for every task up to a deadline.
//!
//! Time comes from [`Context::clock`], handed down by the builder (never read
//! from configuration or the wall clock directly), so tests move a manual clock.

use std::future::Future;
use std::time::Duration;

use actix_web::web;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use hypercare_clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use tokio_util::sync::CancellationToken as Cancellation;

/// What every capability is built from.
#[derive(Clone)]
pub struct Context {
    /// ClickHouse: `client` for requests, `background` for workers.
    pub store: hypercare_storage::Store,
    /// The one source of "now".
    pub clock: SharedClock,
    /// The Prometheus registry that `/metrics` exposes.
    pub registry: prometheus::Registry,
    /// Readiness: a capability registers the components it reports on.
    pub health: hypercare_http::health::Health,
    /// Where background work runs, so that shutdown can stop and await it.
    pub tasks: Tasks,
}

/// What the HTTP server asks of every built capability (object safe, so the
/// builder keeps them in one list).
pub trait Mount: Send + Sync + 'static {
    /// Mounts its state (`app_data`) and its routes.
    fn configure(&self, cfg: &mut web::ServiceConfig);
}

/// A part of the service with its own routes, state and background work.
pub trait Capability: Mount {
    /// What it is built from: its section of the settings (and, for a
    /// capability that reads another one, that one's handle).
    type Settings;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds the capability and starts its background work on `ctx.tasks`.
    fn build(
        settings: Self::Settings,
        ctx: &Context,
    ) -> impl Future<Output = Result<Self, Self::Error>> + Send
    where
        Self: Sized;
}

/// Background tasks that stop together: each one is handed the cancellation
/// and is expected to end soon after it fires (finishing the unit of work it is
/// in, never mid-write); [`Tasks::shutdown`] waits for all of them.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` until it ends; it should watch `cancelled` and stop.
    pub fn spawn<F>(&self, name: &'static str, work: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let future = work(self.cancel.clone());
        self.tracker.spawn(async move {
            future.await;
            tracing::debug!(task = name, "Background task ended.");
        });
    }

    /// Runs `tick` `period` after the previous one ended (the first one after
    /// `period`) until cancelled; a tick that has started is never cut off.
    pub fn every<F>(
        &self,
        name: &'static str,
        period: Duration,
        mut tick: impl FnMut() -> F + Send + 'static,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, move |cancel| async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(period) => tick().await,
                }
            }
        });
    }

    /// A token that fires when shutdown starts.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// How many tasks are running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Cancels every task and waits up to `deadline` for them to end; answers
    /// whether they all did. Tasks spawned after this are cancelled at once.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        let ended = tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok();
        if !ended {
            tracing::warn!(
                still_running = self.tracker.len(),
                deadline_secs = deadline.as_secs_f64(),
                "Background tasks did not stop within the shutdown deadline; leaving them."
            );
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_a_started_tick_finish_and_starts_no_new_one() {
        let tasks = Tasks::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let counted = ticks.clone();
        tasks.every("count", Duration::from_secs(10), move || {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Ticks start 10 s after the previous one ended: at 10, 23 and 36 s.
        // At 37 s, two are done and the third is under way.
        tokio::time::sleep(Duration::from_secs(37)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 2);
        assert!(tasks.shutdown(Duration::from_secs(60)).await);
        assert_eq!(ticks.load(Ordering::SeqCst), 3);
        assert!(tasks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_cancellation_is_left_after_the_deadline() {
        let tasks = Tasks::new();
        tasks.spawn("stubborn", |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        assert!(!tasks.shutdown(Duration::from_secs(5)).await);
        assert_eq!(tasks.len(), 1);
    }
}
