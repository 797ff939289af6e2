//! The burn-rate alert rules an SLO makes: four rules per SLO, one per row
//! of [`crate::slo::BURN_WINDOWS`], read by the evaluator as any rule
//! (`Source::Slo`), and the SLOs found back from the loaded rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::rule::{Compare, Condition, Rule, Source};
use crate::slo::{BURN_WINDOWS, Slo, SloAlert, rule_name};

/// The four burn-rate rules of `slo`, in the table's order. They fire at once
/// (no `for`): the short window is what keeps them from firing on a blip and
/// lets them resolve soon after the burning stops.
pub fn alert_rules(slo: Slo, group: &str) -> Vec<Rule> {
    let slo = Arc::new(slo);
    BURN_WINDOWS
        .iter()
        .map(|window| {
            let long = crate::duration::format(window.long);
            let short = crate::duration::format(window.short);
            let mut labels = slo.labels.clone();
            labels.insert("slo".into(), slo.name.clone());
            labels.insert("window".into(), long.clone());
            let summary = format!(
                "SLO {}: error budget burning at {{{{ $value }}}}x over {long} (threshold {}x over {long} and {short})",
                slo.name, window.factor
            );
            Rule {
                name: rule_name(&slo.name, window.long),
                tier: slo.tier(window),
                for_: Duration::ZERO,
                condition: Condition {
                    source: Source::Slo(SloAlert {
                        slo: slo.clone(),
                        window: *window,
                    }),
                    compare: Compare::Value,
                    change_over: None,
                    above: None,
                    below: None,
                    outside_window: false,
                },
                labels,
                annotations: BTreeMap::from([("summary".to_owned(), summary)]),
                rollback_trigger: false,
                group: group.to_owned(),
            }
        })
        .collect()
}

/// The distinct SLOs behind `rules` (from their burn-rate rules), in order.
pub fn slos_of(rules: &[Rule]) -> Vec<Arc<Slo>> {
    let mut out: Vec<Arc<Slo>> = Vec::new();
    for rule in rules {
        if let Source::Slo(alert) = &rule.condition.source
            && !out.iter().any(|s| s.name == alert.slo.name)
        {
            out.push(alert.slo.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::Tier;

    fn slo(yaml: &str) -> Result<Slo, serde_norway::Error> {
        serde_norway::from_str(yaml)
    }

    #[test]
    fn an_slo_reads_with_defaults_and_makes_the_workbook_rules() {
        let s = slo("name: api\nobjective: 99.5\nsli: {availability: {errors: 'r{status=~\"5..\"}', total: r}}\n").unwrap();
        assert_eq!(s.window, Duration::from_secs(28 * 86_400));
        assert!((s.budget() - 0.005).abs() < 1e-12);
        assert!(s.problems(None).is_empty());
        let rules = alert_rules(s, "slos");
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["api-burn-1h", "api-burn-6h", "api-burn-1d", "api-burn-3d"]
        );
        let tiers: Vec<Tier> = rules.iter().map(|r| r.tier).collect();
        assert_eq!(tiers, [Tier::P1, Tier::P2, Tier::P3, Tier::P3]);
        assert_eq!(rules[1].labels["window"], "6h");
        assert_eq!(rules[1].labels["slo"], "api");
        assert!(!rules[0].rollback_trigger);
        assert_eq!(slos_of(&rules).len(), 1);
    }
}
