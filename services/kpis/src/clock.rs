//! The KPI answers' clock (see [`hypercare_clock`]). Only the answers read it;
//! the rollup worker and the choice of `events_recent` follow the wall clock,
//! as ClickHouse does.

pub use hypercare_clock::{Clock, ManualClock, SharedClock, SystemClock};
