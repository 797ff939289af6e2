//! The rollback recommendation: "roll back" while an alert of a rule marked
//! `rollback_trigger` fires (acknowledged or not), with each such alert as
//! evidence. Pure: from the alerts shown and the rules.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rule::{Condition, Rule};
use crate::view::AlertView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackState {
    None,
    RollbackRecommended,
}

#[derive(Debug, Serialize)]
pub struct Recommendation<'a> {
    pub state: RollbackState,
    pub evidence: Vec<Evidence<'a>>,
}

/// One firing alert of a rollback rule.
#[derive(Debug, Serialize)]
pub struct Evidence<'a> {
    pub alert: &'a str,
    pub rule: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub value: f64,
    pub since: Option<&'a str>,
    pub summary: Option<&'a str>,
    /// The rule's condition, as written in its file (None on a replica that
    /// does not evaluate, which has no rules loaded).
    pub condition: Option<&'a Condition>,
}

pub fn recommend<'a>(alerts: &'a [AlertView], rules: &'a [Rule]) -> Recommendation<'a> {
    let evidence: Vec<Evidence<'a>> = alerts
        .iter()
        .filter(|a| a.rollback_trigger && a.is_firing())
        .map(|a| Evidence {
            alert: &a.id,
            rule: &a.rule,
            labels: &a.labels,
            value: a.value,
            since: a.fired_at.as_deref(),
            summary: a.annotations.get("summary").map(String::as_str),
            condition: rules
                .iter()
                .find(|r| r.name == a.rule)
                .map(|r| &r.condition),
        })
        .collect();
    Recommendation {
        state: if evidence.is_empty() {
            RollbackState::None
        } else {
            RollbackState::RollbackRecommended
        },
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, state: &str, rollback: bool) -> AlertView {
        AlertView {
            id: id.into(),
            rule: "error_rate".into(),
            tier: "P0".into(),
            state: state.into(),
            labels: BTreeMap::from([("service".to_owned(), "api".to_owned())]),
            annotations: BTreeMap::from([("summary".to_owned(), "5xx".to_owned())]),
            value: 0.2,
            since: None,
            fired_at: Some("2026-11-30T10:00:00.000Z".into()),
            acked_at: None,
            acked_by: None,
            resolved_at: None,
            resolved_by: None,
            silenced: false,
            inhibited: false,
            ack_overdue: false,
            escalation_level: 0,
            rollback_trigger: rollback,
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn only_firing_alerts_of_rollback_rules_recommend_a_rollback() {
        let none = [alert("a", "pending", true), alert("b", "firing", false)];
        let r = recommend(&none, &[]);
        assert_eq!(r.state, RollbackState::None);
        assert!(r.evidence.is_empty());
        for state in ["firing", "acknowledged"] {
            let alerts = [alert("a", state, true), alert("b", "firing", false)];
            let r = recommend(&alerts, &[]);
            assert_eq!(r.state, RollbackState::RollbackRecommended);
            assert_eq!(r.evidence.len(), 1);
            assert_eq!(
                (r.evidence[0].alert, r.evidence[0].summary),
                ("a", Some("5xx"))
            );
        }
        let json = serde_json::to_value(recommend(&[alert("a", "firing", true)], &[])).unwrap();
        assert_eq!(json["state"], "rollback_recommended");
        assert_eq!(json["evidence"][0]["since"], "2026-11-30T10:00:00.000Z");
    }
}
