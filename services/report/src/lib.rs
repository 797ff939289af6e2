//! The daily stabilization report (issue 16, under way).
//!
//! - [`judge`]: whether a KPI moved since the baseline, as Kayenta judges a
//!   canary: a Mann-Whitney U test per KPI on hourly values, an effect size, a
//!   minimum meaningful effect, and Holm's correction across KPIs;
//! - [`gate`]: a rollout stage's pass / fail, the new release against the old
//!   one over the same window, metric by metric;
//! - [`policy`]: the go / hold / roll back call, from rules written in YAML
//!   (`config/decision-policy.yaml`), every rule reported with its inputs.

pub mod gate;
pub mod judge;
pub mod policy;
