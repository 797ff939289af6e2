//! The `[tickets]` section: categories and their intake templates, the impact x
//! urgency priority matrix, and the SLA targets per priority.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::Priority;

/// Fields a template may require beyond title, category, impact and urgency
/// (always required).
pub const TEMPLATE_FIELDS: [&str; 6] = [
    "description",
    "affected_user",
    "release",
    "launch",
    "reporter",
    "channel",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketSettings {
    /// The categories a ticket may have.
    pub categories: Vec<String>,
    /// Per category, the fields a new ticket must give (see [`TEMPLATE_FIELDS`]).
    pub templates: BTreeMap<String, Template>,
    /// Impact levels, least first.
    pub impacts: Vec<String>,
    /// Urgency levels, least first.
    pub urgencies: Vec<String>,
    /// `matrix.<impact>.<urgency> = "P1".."P4"`: every pair must be given.
    pub matrix: BTreeMap<String, BTreeMap<String, Priority>>,
    /// Targets per priority.
    pub sla: BTreeMap<Priority, SlaTarget>,
    /// Share of a target used after which a ticket is "at risk" (0..1).
    pub at_risk_ratio: f64,
    /// How often the breach gauges on /metrics are recomputed, in seconds.
    pub metrics_refresh_secs: u64,
}

/// A `[tickets]` option that is wrong, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tickets.{option}: {reason}")]
pub struct SettingsError {
    /// The option's path under `[tickets]`, e.g. `matrix.high.medium`.
    pub option: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Template {
    pub required: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTarget {
    /// Minutes from creation to the first response (a public comment, or the
    /// first move out of `new`).
    pub first_response_minutes: u64,
    /// Minutes from creation to resolution.
    pub resolution_minutes: u64,
}

impl Default for TicketSettings {
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let row = |low, medium, high| {
            BTreeMap::from([
                ("low".to_owned(), low),
                ("medium".to_owned(), medium),
                ("high".to_owned(), high),
            ])
        };
        use Priority::*;
        Self {
            categories: strings(&[
                "bug",
                "performance",
                "data",
                "access",
                "billing",
                "question",
                "feature_request",
            ]),
            templates: BTreeMap::from([
                (
                    "bug".to_owned(),
                    Template {
                        required: strings(&["description", "release"]),
                    },
                ),
                (
                    "access".to_owned(),
                    Template {
                        required: strings(&["affected_user"]),
                    },
                ),
                (
                    "billing".to_owned(),
                    Template {
                        required: strings(&["affected_user", "description"]),
                    },
                ),
            ]),
            impacts: strings(&["low", "medium", "high", "critical"]),
            urgencies: strings(&["low", "medium", "high"]),
            matrix: BTreeMap::from([
                ("low".to_owned(), row(P4, P4, P3)),
                ("medium".to_owned(), row(P4, P3, P2)),
                ("high".to_owned(), row(P3, P2, P1)),
                ("critical".to_owned(), row(P2, P1, P1)),
            ]),
            sla: BTreeMap::from([
                (P1, sla(30, 8 * 60)),
                (P2, sla(2 * 60, 24 * 60)),
                (P3, sla(8 * 60, 3 * 24 * 60)),
                (P4, sla(24 * 60, 7 * 24 * 60)),
            ]),
            at_risk_ratio: 0.8,
            metrics_refresh_secs: 30,
        }
    }
}

fn sla(first_response_minutes: u64, resolution_minutes: u64) -> SlaTarget {
    SlaTarget {
        first_response_minutes,
        resolution_minutes,
    }
}

impl TicketSettings {
    /// Says which option is wrong and why.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let wrong = |option: String, reason: String| Err(SettingsError { option, reason });
        if self.categories.is_empty() {
            return wrong("categories".into(), "give at least one category".into());
        }
        for (category, template) in &self.templates {
            if !self.categories.contains(category) {
                return wrong(
                    format!("templates.{category}"),
                    format!("`{category}` is not in tickets.categories"),
                );
            }
            for field in &template.required {
                if !TEMPLATE_FIELDS.contains(&field.as_str()) {
                    return wrong(
                        format!("templates.{category}.required"),
                        format!(
                            "`{field}` is not a ticket field ({})",
                            TEMPLATE_FIELDS.join(", ")
                        ),
                    );
                }
            }
        }
        for impact in &self.impacts {
            for urgency in &self.urgencies {
                if self.priority_for(impact, urgency).is_none() {
                    return wrong(
                        format!("matrix.{impact}.{urgency}"),
                        "missing; every impact x urgency pair needs a priority".into(),
                    );
                }
            }
        }
        for priority in Priority::ALL {
            if !self.sla.contains_key(&priority) {
                return wrong(
                    format!("sla.{priority}"),
                    "missing; every priority needs targets".into(),
                );
            }
        }
        if !(self.at_risk_ratio > 0.0 && self.at_risk_ratio < 1.0) {
            return wrong(
                "at_risk_ratio".into(),
                format!("{} is not between 0 and 1", self.at_risk_ratio),
            );
        }
        Ok(())
    }

    pub fn priority_for(&self, impact: &str, urgency: &str) -> Option<Priority> {
        self.matrix.get(impact)?.get(urgency).copied()
    }

    /// How often the gauges are recomputed (0 is read as 1 s).
    pub fn metrics_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.metrics_refresh_secs.max(1))
    }

    pub fn sla_for(&self, priority: Priority) -> SlaTarget {
        self.sla
            .get(&priority)
            .copied()
            .unwrap_or(sla(24 * 60, 7 * 24 * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_complete() {
        let settings = TicketSettings::default();
        settings.validate().unwrap();
        assert_eq!(
            settings.priority_for("critical", "high"),
            Some(Priority::P1)
        );
        assert_eq!(settings.priority_for("low", "low"), Some(Priority::P4));
    }

    #[test]
    fn a_hole_in_the_matrix_is_named() {
        let mut settings = TicketSettings::default();
        settings.matrix.get_mut("high").unwrap().remove("medium");
        assert_eq!(
            settings.validate().unwrap_err().to_string(),
            "tickets.matrix.high.medium: missing; every impact x urgency pair needs a priority"
        );
    }
}
