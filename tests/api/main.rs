//! End-to-end tests of the HTTP API: a real ClickHouse server (started by the
//! harness), the real service on a free port, real HTTP. Checks go through HTTP
//! and through SQL on the test's own database.

mod alerts;
mod auth;
mod backpressure;
mod backtest;
mod classic_histograms;
mod compat;
mod dashboards;
mod errors;
mod events;
mod hostile;
mod investigate;
mod kpis;
mod lifecycle;
mod limits;
mod loadtest;
mod metrics;
mod observability;
mod openapi;
mod otlp;
mod reconcile;
mod remote_write;
mod report;
mod report_delivery;
mod report_exit;
mod review;
mod segment;
mod slos;
mod stages;
mod tickets;
