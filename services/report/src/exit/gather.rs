//! What the exit criteria rest on, read for a launch: the day looked at (the
//! last whole day of the window so far), the daily reports of D0 to that day,
//! and the P0/P1 tickets unresolved at its end, named.
//!
//! The reports come from `ReportState::report(.., Freshness::Stored)`: a day
//! over is made once and kept, so the exit answer of a day reads the same
//! tomorrow and asking again costs one stored read per day.

use chrono::{Duration, SecondsFormat};
use hypercare_kpis::calendar::{day_start, local_date};
use hypercare_kpis::launch::LaunchRow;
use hypercare_tickets::model::Priority;
use hypercare_tickets::store::{Filters, Sort};

use super::{Evidence, ExitReport, OpenTicket, evaluate};
use crate::ReportState;
use crate::document::LaunchInfo;
use crate::error::ReportError;
use crate::make::Freshness;

/// The most P1 tickets read to name the open ones, oldest first: the count
/// comes from the day's report, so beyond this some are counted, not named.
const MAX_NAMED_TICKETS: u64 = 200;

impl ReportState {
    /// The exit criteria of `launch` as of its last whole day.
    pub async fn exit(&self, launch: &LaunchRow) -> Result<ExitReport, ReportError> {
        let tz = launch.tz().map_err(hypercare_kpis::KpiError::from)?;
        let window = launch.window(tz);
        let now_ms = self.clock.now_ms();
        let today = local_date(now_ms / 1000, tz);
        let looked_at = (today - Duration::days(1)).min(window.last);
        let day = (looked_at - window.d0).num_days();
        let window_over = today > window.last;

        let mut reports = Vec::new();
        for n in 0..=day {
            reports.push(self.report(launch, n, Freshness::Stored).await?);
        }
        let open_tickets = if day >= 0 {
            let end_ms = day_start(looked_at + Duration::days(1), tz) * 1000;
            self.open_p1_tickets_at(end_ms).await?
        } else {
            Vec::new()
        };
        let as_of = if day >= 0 {
            (Some(day), Some(looked_at.to_string()))
        } else {
            (None, None)
        };
        let info = LaunchInfo {
            id: launch.launch_id.clone(),
            name: launch.name.clone(),
            release: launch.release.clone(),
            tz: tz.name().to_owned(),
            d0: window.d0.to_string(),
            last_day: window.last.to_string(),
        };
        let generated_at =
            chrono::DateTime::from_timestamp_millis(i64::try_from(now_ms).unwrap_or(i64::MAX))
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(evaluate(
            &self.settings.exit,
            info,
            as_of,
            window_over,
            Evidence {
                reports: &reports,
                open_tickets: &open_tickets,
            },
            generated_at,
        ))
    }

    /// The P1 tickets (the most urgent priority tickets have) created before
    /// `end_ms` and not resolved by then: the backlog the day's report counts
    /// under `P1`, by name.
    async fn open_p1_tickets_at(&self, end_ms: u64) -> Result<Vec<OpenTicket>, ReportError> {
        let filters = Filters {
            priority: Some(Priority::P1),
            created_to_ms: Some(end_ms),
            ..Filters::default()
        };
        let (tickets, _) = self
            .tickets
            .list(&filters, Sort::Created, false, 0, MAX_NAMED_TICKETS)
            .await?;
        Ok(tickets
            .into_iter()
            .filter(|t| {
                let resolved = t.resolved_ms_if_done();
                resolved == 0 || resolved >= end_ms
            })
            .map(|t| OpenTicket {
                key: t.key(),
                title: t.title.clone(),
                priority: t.priority.to_string(),
            })
            .collect())
    }
}
