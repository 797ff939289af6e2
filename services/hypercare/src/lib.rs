//! The `hypercare` service: configuration, start-up and the command line.
//! Capabilities live in their own crates under `services/`; this crate composes them.

pub mod cli;
pub mod config;
pub mod openapi;
pub mod startup;

pub use config::Settings;
pub use startup::Application;
