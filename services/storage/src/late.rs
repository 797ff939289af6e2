//! Late events, for the KPI rollups.
//!
//! KPI rollups (`kpi_rollups`) sum each closed UTC hour of `events` once. An event
//! that arrives after its hour was summed must not be missed, so ingest marks its
//! hour in `event_hours_late` once the event is stored, and KPI queries trust a
//! rollup only when it was computed after the hour's latest mark.
//!
//! Marking every event of the previous hour would mean an insert per batch, so
//! only events more than [`LATE_AFTER_SECS`] behind the end of their hour (at
//! receive time) are marked, and the rollup worker leaves an hour alone until
//! [`ROLLUP_DELAY_SECS`] after its end: an unmarked event was received before
//! that and its insert confirmed within the writer's acknowledgement timeout,
//! which the margin between the two constants covers.

use std::cell::RefCell;
use std::collections::BTreeSet;

/// An event received this long after the end of its hour is marked late.
pub const LATE_AFTER_SECS: i64 = 600;

/// The rollup worker sums an hour only this long after its end.
pub const ROLLUP_DELAY_SECS: i64 = LATE_AFTER_SECS + 300;

/// The late hours (UTC hour starts, epoch seconds) seen while encoding a request.
#[derive(Debug, Default)]
pub struct LateHours(RefCell<BTreeSet<u32>>);

impl LateHours {
    /// Notes an event at `event_ms` received at `received_ms`.
    pub fn note(&self, event_ms: i64, received_ms: i64) {
        let hour = event_ms.div_euclid(3_600_000) * 3600;
        if hour >= 0 && (hour + 3600 + LATE_AFTER_SECS) * 1000 <= received_ms {
            self.0.borrow_mut().insert(hour as u32);
        }
    }

    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.borrow_mut())
            .into_iter()
            .collect()
    }
}

/// Marks `hours` late now. Call it after the events are stored.
pub async fn mark(client: &clickhouse::Client, hours: &[u32]) -> clickhouse::error::Result<()> {
    if hours.is_empty() {
        return Ok(());
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    client
        .query(MARK_SQL)
        .bind(hours)
        .bind(now_ms)
        .execute()
        .await
}

pub const MARK_SQL: &str =
    "INSERT INTO event_hours_late SELECT toDateTime(arrayJoin(?)) AS hour, ? AS marked_ms";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_well_past_their_hour_are_late() {
        let hours = LateHours::default();
        let hour_start = 1_795_305_600_i64 * 1000;
        // Received 5 minutes after the hour ended: not late.
        hours.note(hour_start + 1000, hour_start + 3_600_000 + 300_000);
        assert!(hours.take().is_empty());
        // Received 10 minutes after: late, marked once.
        hours.note(hour_start + 1000, hour_start + 3_600_000 + 600_000);
        hours.note(hour_start + 2000, hour_start + 3_600_000 + 600_000);
        assert_eq!(hours.take(), vec![1_795_305_600]);
        assert!(hours.take().is_empty());
    }
}
