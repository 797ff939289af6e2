//! The daily stabilization report (issue 16, under way).
//!
//! - [`judge`]: whether a KPI moved since the baseline, as Kayenta judges a
//!   canary: a Mann-Whitney U test per KPI on hourly values, an effect size, a
//!   minimum meaningful effect, and Holm's correction across KPIs;
//! - [`policy`]: the go / hold / roll back call, from rules written in YAML
//!   (`config/decision-policy.yaml`), every rule reported with its inputs.

pub mod judge;
pub mod policy;
