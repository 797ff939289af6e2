//! What one evaluation of a rule found for one series: the planner's input.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' own labels (the `by` labels, or `source`).
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub holds: bool,
    /// Annotations of the sample itself, over the rule's (burn-rate alerts
    /// say the budget left); empty for rules written by hand.
    pub annotations: BTreeMap<String, String>,
}
