//! The tickets' clock (see [`hypercare_clock`]): SLA tests move a manual clock
//! instead of waiting.

pub use hypercare_clock::{Clock, ManualClock, SharedClock, SystemClock};
