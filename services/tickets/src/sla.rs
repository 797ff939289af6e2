//! SLA clocks: first response and resolution, against the targets of the
//! ticket's priority.
//!
//! Both clocks run from creation. The first response is the first public comment
//! or the first move out of `new`, whichever comes first. The resolution clock
//! stops when the ticket is resolved and starts again (from creation) when it is
//! reopened. Time waiting on the user is not paused (a deliberate simplification:
//! see docs/tickets.md).

use serde::Serialize;

use crate::config::TicketSettings;
use crate::model::Ticket;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SlaClock {
    pub target_minutes: u64,
    /// Minutes from creation to the event, or to now while it has not happened.
    pub elapsed_minutes: f64,
    pub due_at: String,
    /// When the event happened, if it did.
    pub met_at: Option<String>,
    /// The target passed before the event (or passes now without it).
    pub breached: bool,
    /// Still running and past `at_risk_ratio` of the target.
    pub at_risk: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Sla {
    pub first_response: SlaClock,
    pub resolution: SlaClock,
}

pub fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One clock: due `target_minutes` after creation, met at `done_ms` (0: not yet).
fn clock(
    created_ms: u64,
    done_ms: u64,
    target_minutes: u64,
    now_ms: u64,
    at_risk_ratio: f64,
) -> SlaClock {
    let due_ms = created_ms + target_minutes * 60_000;
    let until = if done_ms > 0 { done_ms } else { now_ms };
    let elapsed_ms = until.saturating_sub(created_ms);
    let breached = until > due_ms;
    let at_risk = done_ms == 0
        && !breached
        && elapsed_ms as f64 >= at_risk_ratio * (target_minutes * 60_000) as f64;
    SlaClock {
        target_minutes,
        elapsed_minutes: elapsed_ms as f64 / 60_000.0,
        due_at: rfc3339_ms(due_ms),
        met_at: (done_ms > 0).then(|| rfc3339_ms(done_ms)),
        breached,
        at_risk,
    }
}

/// Both clocks of `ticket` at `now_ms`.
pub fn sla(ticket: &Ticket, settings: &TicketSettings, now_ms: u64) -> Sla {
    let target = settings.sla_for(ticket.priority);
    let resolved_ms = ticket.resolved_ms_if_done();
    Sla {
        first_response: clock(
            ticket.created_ms,
            ticket.first_response_ms,
            target.first_response_minutes,
            now_ms,
            settings.at_risk_ratio,
        ),
        resolution: clock(
            ticket.created_ms,
            resolved_ms,
            target.resolution_minutes,
            now_ms,
            settings.at_risk_ratio,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_is_at_risk_then_breached_and_stops_when_met() {
        let minute = 60_000;
        let running = clock(0, 0, 30, 10 * minute, 0.8);
        assert!(!running.at_risk && !running.breached);
        let at_risk = clock(0, 0, 30, 25 * minute, 0.8);
        assert!(at_risk.at_risk && !at_risk.breached);
        let breached = clock(0, 0, 30, 31 * minute, 0.8);
        assert!(breached.breached && !breached.at_risk);
        let met_late = clock(0, 40 * minute, 30, 100 * minute, 0.8);
        assert!(met_late.breached);
        assert_eq!(met_late.elapsed_minutes, 40.0);
        let met_in_time = clock(0, 20 * minute, 30, 100 * minute, 0.8);
        assert!(!met_in_time.breached && !met_in_time.at_risk);
    }
}
