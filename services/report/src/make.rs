//! Making a day's report: read what each capability knows of the day, shape it
//! (`assemble.rs`), make the call (`policy.rs`), and keep it once the day is over.
//!
//! ```text
//! ReportState::report(launch, day)
//!   stored (day over, made before)? -> that report, unchanged
//!   else: board_of + judge_day (KPIs) | AlertState::span | TicketService::day
//!         | CapacityState::headroom_of_every_service_at | stages::gates
//!         | AlertState::slo_status
//!         -> assemble -> Policy::decide -> changes since D+N-1 -> store if day over
//! ```
//!
//! "The day" is D+N's local day in the launch's time zone, up to `as_of`: its
//! end once over, now while it runs (KPIs at pace to the last whole hour, as
//! the board compares them).

use chrono::{Duration, NaiveDate, SecondsFormat};
use hypercare_kpis::calendar::day_start;
use hypercare_kpis::launch::LaunchRow;

use crate::document::{CallSection, DailyReport, LaunchInfo, SCHEMA_VERSION};
use crate::error::ReportError;
use crate::{ReportState, assemble, store, verdicts};

/// How the report of a day is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The stored report if the day has one; else made (and stored if the day is over).
    Stored,
    /// Made again from what the tables hold now, and stored again if the day is over.
    Remake,
}

impl ReportState {
    /// The report of day `day` (N of D+N) of `launch`.
    pub async fn report(
        &self,
        launch: &LaunchRow,
        day: i64,
        freshness: Freshness,
    ) -> Result<DailyReport, ReportError> {
        if freshness == Freshness::Stored
            && let Some(stored) = store::stored(&self.store, &launch.launch_id, day).await?
        {
            return Ok(stored);
        }
        let mut report = self.make(launch, day).await?;
        let before = match store::stored(&self.store, &launch.launch_id, day - 1).await? {
            Some(report) => Some(report),
            // The day before was never asked for: made now, not stored (its
            // own "before" is not needed to compare with it).
            None if self.has_day(launch, day - 1)? => Some(self.make(launch, day - 1).await?),
            None => None,
        };
        if let Some(before) = before {
            report.changes = assemble::changes(&before, &report);
        }
        if report.complete {
            store::save(&self.store, &report, self.clock.now_ms()).await?;
        }
        Ok(report)
    }

    /// The reports of days `from..=to`, in order (kept ones read, others made
    /// and kept once over), each with its changes since the day before.
    pub async fn range(
        &self,
        launch: &LaunchRow,
        from: i64,
        to: i64,
    ) -> Result<Vec<DailyReport>, ReportError> {
        let mut reports = Vec::new();
        for day in from..=to {
            reports.push(self.report(launch, day, Freshness::Stored).await?);
        }
        Ok(reports)
    }

    /// Whether D+`day` is a day the launch's calendar has: from the first
    /// baseline day to the window's last.
    fn has_day(&self, launch: &LaunchRow, day: i64) -> Result<bool, ReportError> {
        let window = launch.window(launch.tz().map_err(hypercare_kpis::KpiError::from)?);
        let date = window.d0 + Duration::days(day);
        let first = window
            .baseline_dates()
            .first()
            .copied()
            .unwrap_or(window.d0);
        Ok(date >= first && date <= window.last)
    }

    /// The report of the day as the tables hold it now, without `changes`.
    pub async fn make(&self, launch: &LaunchRow, day: i64) -> Result<DailyReport, ReportError> {
        let tz = launch.tz().map_err(hypercare_kpis::KpiError::from)?;
        let window = launch.window(tz);
        let date: NaiveDate = window.d0 + Duration::days(day);
        let now_ms = self.clock.now_ms();
        let start = day_start(date, tz);
        let end = day_start(date + Duration::days(1), tz);
        if start * 1000 > now_ms {
            return Err(ReportError::invalid(
                "day",
                format!("D{day:+} ({date}) has not started yet in {}", tz.name()),
            ));
        }
        let complete = now_ms >= end * 1000;
        let as_of_ms = now_ms.min(end * 1000);

        let board = self.kpis.board_of(launch, date).await?;
        let judged = verdicts::judge_day(&self.kpis, launch, day, self.rules()).await?;
        let kpis = assemble::kpis(&board.kpis, &judged.kpis);
        // While the day runs, an alert that fired this very millisecond counts.
        let alerts_to = if complete { as_of_ms } else { as_of_ms + 1 };
        let alerts = assemble::alerts(&self.alerts.span(start * 1000, alerts_to).await?, tz);
        let (stats, clusters) = self.tickets.day(date, tz).await?;
        let tickets = assemble::tickets(stats, clusters);
        let day_minutes = u32::try_from((end - start) / 60).unwrap_or(1440);
        let headrooms = self
            .capacity
            .headroom_of_every_service_at(as_of_ms / 1000, day_minutes)
            .await?;
        let capacity = assemble::capacity(&headrooms);
        let gates = crate::stages::gates(&self.kpis, launch, self, as_of_ms / 1000).await?;
        let rollout = assemble::rollout(&gates.stages);

        let slos = assemble::slos(&self.alerts.slo_status(as_of_ms).await?);
        let mut inputs = assemble::inputs(&kpis, &alerts, &tickets, &capacity, &rollout);
        assemble::slo_inputs(&slos, &mut inputs);
        let decision = self.policy.decide(&inputs);
        let local = |ms: u64| {
            chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
                .unwrap_or_default()
                .with_timezone(&tz)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        Ok(DailyReport {
            schema: SCHEMA_VERSION,
            launch: LaunchInfo {
                id: launch.launch_id.clone(),
                name: launch.name.clone(),
                release: launch.release.clone(),
                tz: tz.name().to_owned(),
                d0: window.d0.to_string(),
                last_day: window.last.to_string(),
            },
            day,
            date: date.to_string(),
            generated_at: chrono::DateTime::from_timestamp_millis(
                i64::try_from(now_ms).unwrap_or(i64::MAX),
            )
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
            as_of: local(as_of_ms),
            complete,
            call: CallSection {
                call: decision.call,
                reasons: decision.reasons,
                inputs: crate::policy::Input::ALL
                    .iter()
                    .map(|i| (i.as_str().to_owned(), inputs.get(i).copied()))
                    .collect(),
                rules: decision.rules,
            },
            kpis,
            alerts,
            tickets,
            capacity,
            rollout,
            slos,
            changes: Vec::new(),
        })
    }
}
