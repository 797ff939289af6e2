//! Time, injectable: a capability reads "now" from a [`SharedClock`] it is
//! handed, so that tests set a [`ManualClock`] (an SLA that runs out, a board read
//! "at 10:00") instead of waiting, and the service runs on the [`SystemClock`].

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the epoch.
pub trait Clock: Debug + Send + Sync {
    fn now_ms(&self) -> u64;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
    }
}

/// A clock that moves only when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn starting_at(ms: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(ms)))
    }

    pub fn advance_minutes(&self, minutes: u64) {
        self.0.fetch_add(minutes * 60_000, Ordering::SeqCst);
    }

    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance_minutes(2);
        assert_eq!(clock.now_ms(), 121_000);
        clock.set_ms(5);
        assert_eq!(clock.now_ms(), 5);
        assert!(
            SystemClock.now_ms() > 1_700_000_000_000,
            "the wall clock is in ms"
        );
    }
}
