//! Ticket statistics per day (per launch day when the days are D0..D+14),
//! computed from the current state of every ticket.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::TicketSettings;
use crate::model::Ticket;

#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct DayStats {
    pub date: String,
    /// Created that day.
    pub opened: u64,
    /// Resolved that day (and not reopened since).
    pub resolved: u64,
    /// Closed that day.
    pub closed: u64,
    /// Not resolved at the end of the day.
    pub backlog: u64,
    /// The backlog by priority (`P0`..`P3`).
    pub backlog_by_priority: BTreeMap<String, u64>,
    /// SLA targets that fell due that day without being met.
    pub breaches: u64,
    pub opened_by_category: BTreeMap<String, u64>,
    pub opened_by_priority: BTreeMap<String, u64>,
}

/// The local midnight that starts `date` in `tz`, in epoch milliseconds.
pub fn day_start_ms(date: NaiveDate, tz: Tz) -> u64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let start = tz
        .from_local_datetime(&midnight)
        .earliest()
        // A day that starts in a DST gap starts at the first instant that exists.
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight));
    u64::try_from(start.timestamp_millis()).unwrap_or(0)
}

pub fn per_day(
    tickets: &[Ticket],
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    settings: &TicketSettings,
    now_ms: u64,
) -> Vec<DayStats> {
    let mut days = Vec::new();
    let mut date = from;
    while date <= to {
        let start = day_start_ms(date, tz);
        let end = day_start_ms(date.succ_opt().unwrap_or(date), tz);
        let within = |ms: u64| ms >= start && ms < end;
        let mut day = DayStats {
            date: date.to_string(),
            ..DayStats::default()
        };
        for ticket in tickets {
            if within(ticket.created_ms) {
                day.opened += 1;
                *day.opened_by_category
                    .entry(ticket.category.clone())
                    .or_default() += 1;
                *day.opened_by_priority
                    .entry(ticket.priority.to_string())
                    .or_default() += 1;
            }
            let resolved_ms = ticket.resolved_ms_if_done();
            if resolved_ms > 0 && within(resolved_ms) {
                day.resolved += 1;
            }
            if ticket.closed_ms > 0 && within(ticket.closed_ms) {
                day.closed += 1;
            }
            if ticket.created_ms < end && (resolved_ms == 0 || resolved_ms >= end) {
                day.backlog += 1;
                *day.backlog_by_priority
                    .entry(ticket.priority.to_string())
                    .or_default() += 1;
            }
            let target = settings.sla_for(ticket.priority);
            for (minutes, met_ms) in [
                (target.first_response_minutes, ticket.first_response_ms),
                (target.resolution_minutes, resolved_ms),
            ] {
                let due = ticket.created_ms + minutes * 60_000;
                let missed = met_ms == 0 || met_ms > due;
                if within(due) && due <= now_ms && missed {
                    day.breaches += 1;
                }
            }
        }
        days.push(day);
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_local_midnight_even_across_dst() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-03-29 is 23 hours long in Paris.
        let length = day_start_ms(d("2026-03-30"), paris) - day_start_ms(d("2026-03-29"), paris);
        assert_eq!(length, 23 * 3600 * 1000);
        assert_eq!(day_start_ms(d("2026-11-22"), paris), 1_795_302_000_000);
    }
}
