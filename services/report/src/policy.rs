//! The go / hold / roll back call, made by a policy written down in YAML.
//!
//! A policy is a list of rules. Each rule names the call it makes and the
//! conditions (all must hold) on named inputs that the report gathers for the
//! day: rollback triggers still firing, KPIs critical and judged worse than the
//! baseline, open P0/P1 tickets, capacity headroom, ... The call of the day is
//! the most severe call of the rules that hold (`roll_back` over `hold` over
//! `go`). Every rule is reported with its inputs and its result, so the call can
//! be audited; an input the day lacks (no load test, so no headroom) makes its
//! rule `no_data`, which never decides the call but is shown.
//!
//! ```yaml
//! rules:
//!   - name: rollback_trigger_firing
//!     call: roll_back
//!     why: a rollback trigger fired and is still firing
//!     when: [rollback_triggers_firing > 0]
//! ```
//!
//! The shipped default (`config/decision-policy.yaml`, [`Policy::default`])
//! writes down the stabilization plan's rules: roll back if the error rate is
//! above 1 % for 10 minutes or a key flow is down (both are rollback-trigger
//! alerts), hold on warnings, open P0/P1 tickets or headroom under 30 %.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The call of a day, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Go,
    Hold,
    RollBack,
}

impl Call {
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Go => "go",
            Call::Hold => "hold",
            Call::RollBack => "roll_back",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule can look at; the report fills in each for the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Rollback-trigger alerts firing at the end of the day (or now, today).
    RollbackTriggersFiring,
    /// Rollback-trigger alerts that fired during the day.
    RollbackTriggersFired,
    /// KPIs whose status is critical.
    KpisCritical,
    /// KPIs whose status is warning.
    KpisWarning,
    /// KPIs critical and judged significantly worse than the baseline.
    KpisCriticalAndWorse,
    /// KPIs judged significantly worse than the baseline.
    KpisWorse,
    /// P0 alerts that fired during the day.
    AlertsP0,
    /// P1 alerts that fired during the day.
    AlertsP1,
    /// P0 and P1 alerts still open.
    AlertsP0P1Open,
    /// Tickets of priority P0 or P1 not resolved.
    OpenP0P1Tickets,
    /// Tickets whose SLA was breached during the day.
    SlaBreaches,
    /// Capacity headroom as a fraction (0.42 = 42 %).
    HeadroomRatio,
    /// Rollout stages whose gate failed.
    StageGatesFailed,
    /// SLOs whose error budget is spent (none left over their window).
    SlosOutOfBudget,
}

impl Input {
    pub fn as_str(self) -> &'static str {
        match self {
            Input::RollbackTriggersFiring => "rollback_triggers_firing",
            Input::RollbackTriggersFired => "rollback_triggers_fired",
            Input::KpisCritical => "kpis_critical",
            Input::KpisWarning => "kpis_warning",
            Input::KpisCriticalAndWorse => "kpis_critical_and_worse",
            Input::KpisWorse => "kpis_worse",
            Input::AlertsP0 => "alerts_p0",
            Input::AlertsP1 => "alerts_p1",
            Input::AlertsP0P1Open => "alerts_p0_p1_open",
            Input::OpenP0P1Tickets => "open_p0_p1_tickets",
            Input::SlaBreaches => "sla_breaches",
            Input::HeadroomRatio => "headroom_ratio",
            Input::StageGatesFailed => "stage_gates_failed",
            Input::SlosOutOfBudget => "slos_out_of_budget",
        }
    }

    pub const ALL: [Input; 14] = [
        Input::RollbackTriggersFiring,
        Input::RollbackTriggersFired,
        Input::KpisCritical,
        Input::KpisWarning,
        Input::KpisCriticalAndWorse,
        Input::KpisWorse,
        Input::AlertsP0,
        Input::AlertsP1,
        Input::AlertsP0P1Open,
        Input::OpenP0P1Tickets,
        Input::SlaBreaches,
        Input::HeadroomRatio,
        Input::StageGatesFailed,
        Input::SlosOutOfBudget,
    ];

    fn parse(name: &str) -> Option<Input> {
        Input::ALL.into_iter().find(|i| i.as_str() == name)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "==")]
    Equal,
}

impl Comparison {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Equal => value == threshold,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
            Comparison::Equal => "==",
        }
    }
}

/// `input comparison threshold`, e.g. `headroom_ratio < 0.3`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Condition {
    pub input: Input,
    pub comparison: Comparison,
    pub threshold: f64,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.input,
            self.comparison.as_str(),
            self.threshold
        )
    }
}

/// A policy rule, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    pub call: Call,
    pub why: String,
    pub when: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// A policy that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct PolicyError {
    /// e.g. `rules[2].when[0]`.
    pub at: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    call: Call,
    #[serde(default)]
    why: String,
    when: Vec<String>,
}

/// The shipped policy, as written in `config/decision-policy.yaml`.
pub const DEFAULT_POLICY: &str = include_str!("../../../config/decision-policy.yaml");

impl Default for Policy {
    fn default() -> Self {
        Policy::parse(DEFAULT_POLICY).expect("the shipped decision policy is valid")
    }
}

impl Policy {
    /// Reads and checks a policy; the error names the rule and the condition.
    pub fn parse(yaml: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_norway::from_str(yaml).map_err(|e| PolicyError {
            at: e
                .location()
                .map(|l| format!("line {}", l.line()))
                .unwrap_or_else(|| "policy".into()),
            reason: e.to_string(),
        })?;
        if file.rules.is_empty() {
            return Err(PolicyError {
                at: "rules".into(),
                reason: "a policy needs at least one rule".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, rule) in file.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            if rule.name.trim().is_empty() || !names.insert(rule.name.clone()) {
                return Err(PolicyError {
                    at: format!("{at}.name"),
                    reason: format!("`{}` is empty or used twice", rule.name),
                });
            }
            if rule.when.is_empty() {
                return Err(PolicyError {
                    at: format!("{at}.when"),
                    reason: "give at least one condition, e.g. `kpis_critical > 0`".into(),
                });
            }
            let when = rule
                .when
                .iter()
                .enumerate()
                .map(|(j, text)| {
                    parse_condition(text).map_err(|reason| PolicyError {
                        at: format!("{at}.when[{j}]"),
                        reason,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                why: if rule.why.is_empty() {
                    rule.name.clone()
                } else {
                    rule.why
                },
                name: rule.name,
                call: rule.call,
                when,
            });
        }
        Ok(Policy { rules })
    }

    /// Applies every rule to the day's inputs.
    pub fn decide(&self, inputs: &BTreeMap<Input, f64>) -> Decision {
        let rules: Vec<RuleResult> = self
            .rules
            .iter()
            .map(|rule| {
                let used: BTreeMap<Input, Option<f64>> = rule
                    .when
                    .iter()
                    .map(|c| (c.input, inputs.get(&c.input).copied()))
                    .collect();
                let outcome = if used.values().any(Option::is_none) {
                    Outcome::NoData
                } else if rule
                    .when
                    .iter()
                    .all(|c| c.comparison.holds(inputs[&c.input], c.threshold))
                {
                    Outcome::Holds
                } else {
                    Outcome::DoesNotHold
                };
                RuleResult {
                    rule: rule.name.clone(),
                    call: rule.call,
                    why: rule.why.clone(),
                    conditions: rule.when.iter().map(ToString::to_string).collect(),
                    inputs: used
                        .into_iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v))
                        .collect(),
                    outcome,
                }
            })
            .collect();
        let call = rules
            .iter()
            .filter(|r| r.outcome == Outcome::Holds)
            .map(|r| r.call)
            .max()
            .unwrap_or(Call::Go);
        let reasons = rules
            .iter()
            .filter(|r| r.outcome == Outcome::Holds && r.call == call)
            .map(|r| r.why.clone())
            .collect();
        Decision {
            call,
            reasons,
            rules,
        }
    }
}

/// `input op number`.
fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    // Two-character operators first, so that `>=` is not read as `>`.
    let operators = [
        (">=", Comparison::AtLeast),
        ("<=", Comparison::AtMost),
        ("==", Comparison::Equal),
        (">", Comparison::Above),
        ("<", Comparison::Below),
    ];
    let (at, op, comparison) = operators
        .iter()
        .find_map(|(op, c)| text.find(op).map(|at| (at, *op, *c)))
        .ok_or_else(|| format!("`{text}` is not `input > number` (one of >, >=, <, <=, ==)"))?;
    let name = text[..at].trim();
    let input = Input::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Input::ALL.iter().map(|i| i.as_str()).collect();
        format!("`{name}` is not an input; known: {}", known.join(", "))
    })?;
    let number = text[at + op.len()..].trim();
    let threshold: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{number}` is not a number"))?;
    Ok(Condition {
        input,
        comparison,
        threshold,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Holds,
    DoesNotHold,
    /// An input is missing for the day; the rule does not decide.
    NoData,
}

/// One rule applied to the day, for the audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule: String,
    pub call: Call,
    pub why: String,
    pub conditions: Vec<String>,
    pub inputs: BTreeMap<String, Option<f64>>,
    pub outcome: Outcome,
}

/// The call, the reasons for it, and every rule's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub call: Call,
    pub reasons: Vec<String>,
    pub rules: Vec<RuleResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_day() -> BTreeMap<Input, f64> {
        Input::ALL
            .into_iter()
            .map(|i| (i, if i == Input::HeadroomRatio { 0.45 } else { 0.0 }))
            .collect()
    }

    #[test]
    fn a_quiet_day_is_go_and_every_rule_is_listed() {
        let policy = Policy::default();
        let decision = policy.decide(&quiet_day());
        assert_eq!(decision.call, Call::Go);
        assert!(decision.reasons.is_empty());
        assert_eq!(decision.rules.len(), policy.rules.len());
        assert!(
            decision
                .rules
                .iter()
                .all(|r| r.outcome == Outcome::DoesNotHold)
        );
    }

    #[test]
    fn a_firing_rollback_trigger_rolls_back_over_any_hold() {
        let mut day = quiet_day();
        day.insert(Input::RollbackTriggersFiring, 1.0);
        day.insert(Input::KpisWarning, 2.0);
        let decision = Policy::default().decide(&day);
        assert_eq!(decision.call, Call::RollBack);
        assert_eq!(decision.reasons.len(), 1, "{:?}", decision.reasons);
        let hold = decision
            .rules
            .iter()
            .find(|r| r.call == Call::Hold && r.outcome == Outcome::Holds);
        assert!(hold.is_some(), "the warning rule is still shown as holding");
    }

    #[test]
    fn headroom_under_the_floor_holds_and_a_missing_headroom_does_not_decide() {
        let mut day = quiet_day();
        day.insert(Input::HeadroomRatio, 0.2);
        assert_eq!(Policy::default().decide(&day).call, Call::Hold);
        day.remove(&Input::HeadroomRatio);
        let decision = Policy::default().decide(&day);
        assert_eq!(decision.call, Call::Go);
        assert!(decision.rules.iter().any(|r| r.outcome == Outcome::NoData));
    }

    #[test]
    fn a_bad_policy_names_the_rule_and_the_condition() {
        let error = Policy::parse(
            "rules:\n  - name: a\n    call: hold\n    when: [kpis_warning > 0]\n  - name: b\n    call: roll_back\n    when: [kpis_critical > 0, error_rate > 0.01]\n",
        )
        .unwrap_err();
        assert_eq!(error.at, "rules[1].when[1]");
        assert!(
            error.reason.contains("`error_rate` is not an input"),
            "{error}"
        );
        let error =
            Policy::parse("rules:\n  - name: a\n    call: hold\n    when: [kpis_warning >> 0]\n")
                .unwrap_err();
        assert_eq!(error.at, "rules[0].when[0]");
        let error =
            Policy::parse("rules:\n  - name: a\n    call: panic\n    when: [kpis_warning > 0]\n")
                .unwrap_err();
        assert!(error.reason.contains("panic"), "{error}");
    }

    #[test]
    fn conditions_read_two_character_operators_first() {
        let c = parse_condition("headroom_ratio <= 0.3").unwrap();
        assert_eq!(c.comparison, Comparison::AtMost);
        assert_eq!(c.threshold, 0.3);
        assert_eq!(c.to_string(), "headroom_ratio <= 0.3");
    }
}
