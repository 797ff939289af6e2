//! The web console in a real headless Chromium, against the real service and
//! ClickHouse: what the product owner, the SRE and support do, as they would
//! do it. Every page is also checked with axe-core.

mod alerts;
mod board;
mod report;
mod screenshots;
mod sign_in;
mod tickets;
