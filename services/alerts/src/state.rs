//! [`AlertState`]: what the API handlers and the console's alert page ask of
//! the alert capability, as domain calls (no HTTP in here).
//!
//! Reads go to the evaluator's memory where it runs (open alerts, silences),
//! else to ClickHouse (`store`); what an alert looks like now comes from the
//! pure [`crate::view`], history times from [`crate::stats`]. Actions (ack,
//! resolve) go through the evaluator so that its memory and the stored rows
//! never disagree; silences are stored, then the evaluator reloads them.
//! Callers check the key's scope first: `read` to read, `admin` to act.

use std::collections::HashMap;
use std::sync::Arc;

use hypercare_runtime::SharedClock;

use crate::backtest::{self, BacktestRequest, Outcome, Replay};
use crate::burn::{self, SloStatus};
use crate::config::{AlertSettings, Inhibition, TierPolicy};
use crate::engine::Engine;
use crate::error::{Action, AlertError};
use crate::rule::{Rule, Tier};
use crate::silence::{Silence, SilenceInput};
use crate::slo::Slo;
use crate::stats::{History, SpanAlerts};
use crate::store::{self, AlertRow, DeliveryRow};
use crate::view::{self, AlertView, Change, Timing};

/// What the handlers share (`web::Data<AlertState>`).
pub struct AlertState {
    pub store: clickhouse::Client,
    /// Present on the replica that evaluates.
    pub engine: Option<Arc<Engine>>,
    pub settings: AlertSettings,
    pub inhibitions: Vec<Inhibition>,
    pub clock: SharedClock,
    /// The SLOs of the rule files (loaded on every replica).
    pub slos: Vec<Arc<Slo>>,
    /// KPI floors read KPIs per hour.
    pub kpis: Arc<hypercare_kpis::KpiState>,
}

/// The open alerts as `GET /v1/alerts` shows them, with the rules they came
/// from (the rollback recommendation's evidence quotes their conditions) and
/// each alert's clocks by id (age, ack SLA, next escalation).
pub struct OpenAlerts<'a> {
    pub alerts: Vec<AlertView>,
    pub rules: &'a [Rule],
    pub timings: HashMap<String, Timing>,
    pub now: u64,
}

impl AlertState {
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The tier's policy (ack SLA, escalation), if the tier is known.
    pub fn policy(&self, tier: &str) -> Option<&TierPolicy> {
        Tier::parse(tier).and_then(|t| self.settings.tiers.get(&t))
    }

    /// The loaded rules (none on a replica that does not evaluate).
    pub fn rules(&self) -> &[Rule] {
        self.engine
            .as_ref()
            .map_or(&[][..], |e| e.planner.rules.as_slice())
    }

    /// Replays the rules (the loaded ones, or the request's) over a past
    /// window with the live evaluator's reads and planner, writing and
    /// sending nothing (see `backtest.rs`). The limits are checked first.
    pub async fn backtest(&self, request: BacktestRequest) -> Result<Outcome, AlertError> {
        let plan =
            backtest::plan_request(request, self.rules(), self.settings.interval, self.now())?;
        let silences = Silence::from_rows(store::silences(&self.store).await?);
        let replay = Replay::new(plan, &self.settings, &self.inhibitions, silences);
        // Capacity rules are not replayed: the settings are never read.
        let capacity = hypercare_capacity::CapacitySettings::default();
        backtest::run(&self.store, &self.kpis, &capacity, replay).await
    }

    /// The open alerts and silences: from the evaluator's memory where it
    /// runs, else from ClickHouse.
    pub async fn open_alerts(&self) -> Result<(Vec<AlertRow>, Vec<Silence>), AlertError> {
        Ok(match &self.engine {
            Some(engine) => engine.open().await,
            None => (
                store::open_alerts(&self.store).await?,
                Silence::from_rows(store::silences(&self.store).await?),
            ),
        })
    }

    fn engine(&self) -> Result<&Engine, AlertError> {
        self.engine.as_deref().ok_or(AlertError::NotEvaluator)
    }

    pub fn view_context<'a>(
        &'a self,
        open: &'a [AlertRow],
        silences: &'a [Silence],
    ) -> view::Context<'a> {
        view::Context {
            open,
            silences,
            settings: &self.settings,
            inhibitions: &self.inhibitions,
            now: self.now(),
        }
    }

    /// The open alerts, filtered by tier and shown state, most severe first.
    pub async fn board(
        &self,
        tier: Option<Tier>,
        state: Option<&str>,
    ) -> Result<OpenAlerts<'_>, AlertError> {
        let (open, silences) = self.open_alerts().await?;
        let cx = self.view_context(&open, &silences);
        let alerts = view::board(&cx, tier, state);
        let timings = open
            .iter()
            .map(|row| {
                let timing = view::timing(row, self.policy(&row.tier), cx.now);
                (row.alert_id.clone(), timing)
            })
            .collect();
        Ok(OpenAlerts {
            alerts,
            rules: self.rules(),
            timings,
            now: cx.now,
        })
    }

    /// One alert as it is now, and its changes.
    pub async fn alert(&self, id: &str) -> Result<(AlertView, Vec<Change>), AlertError> {
        let versions = store::alert_versions(&self.store, id).await?;
        let Some(latest) = versions.last() else {
            return Err(AlertError::NotFound(format!("no alert `{id}`")));
        };
        let (open, silences) = self.open_alerts().await?;
        Ok((
            AlertView::of(latest, &self.view_context(&open, &silences)),
            view::changes(&versions),
        ))
    }

    /// Acknowledges or resolves alert `id` as `by`, on the evaluating replica.
    pub async fn act(&self, action: Action, id: &str, by: &str) -> Result<AlertView, AlertError> {
        let engine = self.engine()?;
        let row = engine.act(action, id, by).await?;
        let (open, silences) = engine.open().await;
        Ok(AlertView::of(&row, &self.view_context(&open, &silences)))
    }

    /// Alerts that fired in `[from, to)` (epoch ms) with their times, and the
    /// per-tier MTTA / MTTR.
    pub async fn history(&self, from: u64, to: u64) -> Result<History, AlertError> {
        let rows = store::history(&self.store, from, to).await?;
        Ok(crate::stats::history(&rows, from, to))
    }

    /// The noisy-alert review of `[from, to)` (epoch ms): per rule, noise,
    /// flaps, time to ack, and suggested changes.
    pub async fn review(
        &self,
        from: u64,
        to: u64,
        params: crate::review::ReviewParams,
    ) -> Result<crate::review::Review, AlertError> {
        if to - from > crate::review::MAX_SPAN_MS {
            return Err(AlertError::invalid(
                "from",
                "the span is longer than 92 days",
            ));
        }
        let rows = store::history(&self.store, from, to).await?;
        Ok(crate::review::review(&rows, from, to, params, |tier| {
            self.policy(tier)
                .map(|p| u64::try_from(p.ack_sla.as_millis()).unwrap_or(u64::MAX))
        }))
    }

    /// The alerts active during `[from, to)` as they stood at `to`, with the
    /// per-tier times and ack SLA breaches of those that fired inside it.
    pub async fn span(&self, from: u64, to: u64) -> Result<SpanAlerts, AlertError> {
        let rows = store::history(&self.store, from, to).await?;
        Ok(crate::stats::span_alerts(&rows, from, to, |tier| {
            self.policy(tier)
                .map(|p| u64::try_from(p.ack_sla.as_millis()).unwrap_or(u64::MAX))
        }))
    }

    /// Webhook delivery attempts since `since` (epoch ms), newest first, their
    /// URLs without the secret part.
    pub async fn deliveries(&self, since: u64, limit: u64) -> Result<Vec<DeliveryRow>, AlertError> {
        let mut rows = store::deliveries(&self.store, since, limit.clamp(1, 10_000)).await?;
        // Rows recorded before URLs were stored redacted still hold the whole URL.
        for row in &mut rows {
            row.url = crate::config::redact_url(&row.url);
        }
        Ok(rows)
    }

    /// Every SLO with its error budget and burn rates at `at_ms` (epoch ms),
    /// in the order of the rule files. An SLO that cannot be measured (a
    /// selector over too many series, an unknown KPI) says why in its
    /// `error`; ClickHouse not answering fails the whole call.
    pub async fn slo_status(&self, at_ms: u64) -> Result<Vec<SloStatus>, AlertError> {
        let mut out = Vec::with_capacity(self.slos.len());
        for slo in &self.slos {
            match crate::sli::measure(&self.store, &self.kpis, slo, at_ms / 1000).await {
                Ok(measured) => out.push(burn::status(slo, &measured)),
                Err(error) if error.is_storage() => return Err(AlertError::Sli(error)),
                Err(error) => out.push(burn::unmeasured(slo, error.to_string())),
            }
        }
        Ok(out)
    }

    /// Every silence, expired ones included.
    pub async fn silences(&self) -> Result<Vec<Silence>, AlertError> {
        Ok(Silence::from_rows(store::silences(&self.store).await?))
    }

    pub async fn find_silence(&self, id: &str) -> Result<Silence, AlertError> {
        self.silences()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| AlertError::NotFound(format!("no silence `{id}`")))
    }

    /// Checks and stores a new silence; errors name the field.
    pub async fn create_silence(&self, input: SilenceInput) -> Result<Silence, AlertError> {
        let silence = input.into_silence(uuid::Uuid::new_v4().to_string(), self.now())?;
        self.save_silence(&silence).await?;
        Ok(silence)
    }

    /// Ends silence `id` now (kept, as in Alertmanager); one that has ended
    /// already is answered as it is.
    pub async fn expire_silence(&self, id: &str) -> Result<Silence, AlertError> {
        let silence = self.find_silence(id).await?;
        match silence.expired_at(self.now()) {
            Some(expired) => {
                self.save_silence(&expired).await?;
                Ok(expired)
            }
            None => Ok(silence),
        }
    }

    /// Stores a silence's version and lets the evaluator see it at once.
    async fn save_silence(&self, silence: &Silence) -> Result<(), AlertError> {
        store::save_silence(&self.store, &silence.to_row(self.now())).await?;
        if let Some(engine) = &self.engine {
            engine.reload_silences().await?;
        }
        Ok(())
    }
}
