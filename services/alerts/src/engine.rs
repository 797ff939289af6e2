//! The evaluator: one loop, on the replica that evaluates, that reads every
//! rule's samples, lets the [`Planner`] decide (pure, see `plan.rs`), appends
//! the changes to `alert_events` and hands the notifications to the delivery
//! tasks. Acknowledging and resolving by hand go through it too, so that the
//! state in memory and the stored rows never disagree.
//!
//! State lives in memory in the one replica that runs the evaluator, and every
//! change is appended to `alert_events`; at start-up open alerts are read back,
//! so a restart does not forget what fires (groups are notified again once).
//! Time is read from the context's clock only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;
use hypercare_runtime::{Cancellation, SharedClock, Tasks};
use tokio::sync::Mutex;

use crate::burn::{self, Measurement};
use crate::config::{AlertSettings, ConfigError};
use crate::error::AlertError;
use crate::evaluate::evaluate;
use crate::notify::Delivery;
use crate::plan::{self, Action, ActionError, Plan, Planner, State};
use crate::rule::{Rule, Source};
use crate::silence::Silence;
use crate::sli;
use crate::store::{self, AlertRow};

/// The shortest pause between two evaluations when they run early.
const MIN_GAP: Duration = Duration::from_millis(50);

pub struct Engine {
    pub planner: Planner,
    store: Client,
    clock: SharedClock,
    kpis: Arc<hypercare_kpis::KpiState>,
    capacity: hypercare_capacity::CapacitySettings,
    delivery: Arc<Delivery>,
    state: Mutex<State>,
    /// The last error of each SLO that could not be measured: logged when it
    /// starts or changes, not at every evaluation.
    slo_errors: std::sync::Mutex<HashMap<String, String>>,
}

impl Engine {
    /// Logs an SLO that cannot be measured when its error starts or changes,
    /// and when it can be measured again: an SLO naming a KPI that is not
    /// defined would otherwise log at every evaluation.
    fn note_slo_error(&self, slo: &str, error: Option<String>) {
        let mut errors = self.slo_errors.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(error) if errors.get(slo) != Some(&error) => {
                tracing::warn!(%slo, %error, "Could not measure an SLO; its burn-rate alerts keep their state (logged again only if the error changes).");
                errors.insert(slo.to_owned(), error);
            }
            Some(_) => {}
            None => {
                if errors.remove(slo).is_some() {
                    tracing::info!(%slo, "The SLO can be measured again.");
                }
            }
        }
    }

    pub fn new(
        planner: Planner,
        store: Client,
        clock: SharedClock,
        kpis: Arc<hypercare_kpis::KpiState>,
        capacity: hypercare_capacity::CapacitySettings,
        delivery: Arc<Delivery>,
    ) -> Self {
        Self {
            planner,
            store,
            clock,
            kpis,
            capacity,
            delivery,
            slo_errors: Default::default(),
            state: Mutex::new(State::default()),
        }
    }

    /// An evaluator of `rules` with the policies of `config`, delivering on `tasks`.
    pub fn with_settings(
        config: &AlertSettings,
        rules: Vec<Rule>,
        store: Client,
        clock: SharedClock,
        tasks: Tasks,
        kpis: Arc<hypercare_kpis::KpiState>,
        capacity: hypercare_capacity::CapacitySettings,
    ) -> Result<Self, ConfigError> {
        let delivery = Arc::new(Delivery {
            http: crate::notify::http_client(),
            store: store.clone(),
            clock: clock.clone(),
            tasks,
            attempts: config.delivery_attempts,
            backoff: config.retry_backoff,
        });
        let planner = Planner {
            settings: config.clone(),
            rules,
            inhibitions: config.inhibitions()?,
        };
        Ok(Self::new(planner, store, clock, kpis, capacity, delivery))
    }

    /// Reads back the open alerts (after a restart).
    pub async fn restore(&self) -> clickhouse::error::Result<usize> {
        let rows = store::open_alerts(&self.store).await?;
        let mut state = self.state.lock().await;
        *state = State::restored(rows);
        Ok(state.alerts.len())
    }

    /// Evaluates and notifies until `cancel` fires; an evaluation that has
    /// started finishes (its changes are stored) before the loop ends.
    pub async fn run(self: Arc<Self>, cancel: Cancellation) {
        match self.restore().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "Open alerts read back."),
            Err(error) => tracing::warn!(%error, "Could not read back open alerts."),
        }
        // Rules are evaluated every `interval`, and early when a pending
        // alert reaches its `for`. Notification timers (a group's wait or
        // interval, an ack running out, an escalation) only send what the
        // last evaluation found, at once: no evaluation, no waiting for one.
        // At least MIN_GAP apart, so a storm of timers stays cheap.
        let interval = self.planner.settings.interval;
        let mut next_evaluation = tokio::time::Instant::now();
        while !cancel.is_cancelled() {
            let woke = tokio::time::Instant::now();
            if woke >= next_evaluation {
                next_evaluation = woke + interval;
                if let Err(error) = self.tick().await {
                    tracing::warn!(%error, "Alert evaluation failed; retrying at the next interval.");
                }
            } else if let Err(error) = self.flush().await {
                tracing::warn!(%error, "Alert notification failed; retrying at the next interval.");
            }
            let now = self.clock.now_ms();
            let (evaluate_at, flush_at) = {
                let state = self.state.lock().await;
                self.planner.next_due(&state, now)
            };
            let after = |at: u64| tokio::time::Instant::now() + Duration::from_millis(at - now);
            if let Some(at) = evaluate_at {
                next_evaluation = next_evaluation.min(after(at));
            }
            let wake = flush_at.map_or(next_evaluation, |at| next_evaluation.min(after(at)));
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(wake.max(tokio::time::Instant::now() + MIN_GAP)) => {}
            }
        }
        tracing::debug!("Alert evaluator stopped.");
    }

    /// Stores a plan's changes and starts its deliveries.
    async fn carry_out(&self, plan: Plan) -> clickhouse::error::Result<()> {
        store::append(&self.store, &plan.changes).await?;
        for outgoing in plan.outgoing {
            self.delivery.send(outgoing);
        }
        Ok(())
    }

    /// Notifications that are due, from what the last evaluation found.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut state = self.state.lock().await;
        let plan = self.planner.plan(&mut state, now);
        self.carry_out(plan).await?;
        Ok(())
    }

    /// One evaluation of every rule, then notifications.
    pub async fn tick(&self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let silences = Silence::from_rows(store::silences(&self.store).await?);
        let rules = &self.planner.rules;
        let board = if rules
            .iter()
            .any(|r| matches!(r.condition.source, Source::Kpi(_)))
        {
            match self.kpis.board_now().await {
                Ok(board) => Some(board),
                Err(error) => {
                    tracing::warn!(%error, "Could not read the KPI board; KPI rules keep their state.");
                    None
                }
            }
        } else {
            None
        };
        let mut results = Vec::with_capacity(rules.len());
        // An SLO's four burn-rate rules read its SLI once per evaluation.
        let mut measured: HashMap<String, Option<Measurement>> = HashMap::new();
        for rule in rules {
            let evaluated = match &rule.condition.source {
                Source::Slo(alert) => {
                    let name = &alert.slo.name;
                    if !measured.contains_key(name) {
                        let result =
                            sli::measure(&self.store, &self.kpis, &alert.slo, now / 1000).await;
                        self.note_slo_error(name, result.as_ref().err().map(ToString::to_string));
                        measured.insert(name.clone(), result.ok());
                    }
                    match measured.get(name).and_then(Option::as_ref) {
                        Some(m) => Ok(burn::sample(alert, m).into_iter().collect()),
                        None => {
                            results.push(None);
                            continue;
                        }
                    }
                }
                _ => {
                    evaluate(
                        &self.store,
                        &self.kpis,
                        &self.capacity,
                        board.as_ref(),
                        rule,
                        now / 1000,
                    )
                    .await
                }
            };
            match evaluated {
                Ok(samples) => results.push(Some(samples)),
                Err(error) => {
                    tracing::warn!(rule = %rule.name, %error, "Could not evaluate an alert rule; its alerts keep their state.");
                    results.push(None);
                }
            }
        }
        let mut state = self.state.lock().await;
        state.silences = silences;
        let mut changes = Vec::new();
        for (rule, samples) in rules.iter().zip(results) {
            if let Some(samples) = samples {
                changes.extend(self.planner.observe(&mut state, rule, samples, now));
            }
        }
        store::append(&self.store, &changes).await?;
        let plan = self.planner.plan(&mut state, now);
        self.carry_out(plan).await?;
        Ok(())
    }

    /// Acknowledges or resolves an open alert by hand. An ack stops escalation
    /// and repeats until the alert resolves or the tier's `ack_timeout` runs
    /// out (acknowledging again after that renews it); a resolved alert stays
    /// resolved until its condition clears. The change is stored before the
    /// state in memory takes it.
    pub async fn act(&self, action: Action, id: &str, by: &str) -> Result<AlertRow, AlertError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now_ms();
        let decided = match action {
            Action::Ack => self.planner.ack(&state, id, by, now),
            Action::Resolve => self.planner.resolve(&state, id, by, now).map(Some),
        };
        let row = match decided {
            Ok(Some(row)) => row,
            // Still acknowledged: nothing changes.
            Ok(None) => {
                return state
                    .alerts
                    .values()
                    .find(|t| t.row.alert_id == id)
                    .map(|t| t.row.clone())
                    .ok_or_else(|| AlertError::NotFound(format!("no open alert `{id}`")));
            }
            Err(ActionError::NotFound(_)) => {
                drop(state);
                return Err(self.closed(action, id).await);
            }
            Err(error) => return Err(error.into()),
        };
        store::append(&self.store, std::slice::from_ref(&row)).await?;
        plan::commit(&mut state, row.clone());
        Ok(row)
    }

    /// An alert the evaluator no longer keeps: a conflict saying its state if
    /// `alert_events` knows it (resolved), else unknown.
    async fn closed(&self, action: Action, id: &str) -> AlertError {
        match store::alert_versions(&self.store, id).await {
            Ok(versions) => match versions.last() {
                Some(latest) => AlertError::WrongState {
                    id: id.to_owned(),
                    state: latest.state,
                    action,
                },
                None => AlertError::NotFound(format!("no alert `{id}`")),
            },
            Err(error) => error.into(),
        }
    }

    /// Open alerts as the API shows them, with the silences.
    pub async fn open(&self) -> (Vec<AlertRow>, Vec<Silence>) {
        let state = self.state.lock().await;
        (
            state
                .alerts
                .values()
                .filter(|t| t.row.state.is_open())
                .map(|t| t.row.clone())
                .collect(),
            state.silences.clone(),
        )
    }

    pub async fn reload_silences(&self) -> clickhouse::error::Result<()> {
        let silences = Silence::from_rows(store::silences(&self.store).await?);
        self.state.lock().await.silences = silences;
        Ok(())
    }
}
