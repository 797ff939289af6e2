//! Intake: what a new ticket must give, checked against the categories, the
//! templates and the priority matrix of `[tickets]`. Pure: no storage, no clock.

use serde::Deserialize;

use crate::config::TicketSettings;
use crate::error::TicketError;
use crate::model::Priority;
use crate::priority::{Grading, priority_of};

/// Longest description, comment or resolution, in characters.
pub const MAX_TEXT: usize = 20_000;
/// Longest short field (title, names, release), in characters.
pub const MAX_FIELD: usize = 200;

/// `value` trimmed, or empty when absent; refused when longer than `max` characters.
pub fn text(field: &str, value: Option<String>, max: usize) -> Result<String, TicketError> {
    let value = value.unwrap_or_default().trim().to_owned();
    if value.chars().count() > max {
        return Err(TicketError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(value)
}

/// `category` is one of `[tickets] categories`.
pub fn check_category(settings: &TicketSettings, category: &str) -> Result<(), TicketError> {
    if category.is_empty() {
        return Err(TicketError::invalid("category", "is required"));
    }
    if !settings.categories.iter().any(|c| c == category) {
        return Err(TicketError::invalid(
            "category",
            format!(
                "`{category}` is not one of {}",
                settings.categories.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The fields a new ticket of `category` must give: the ones every ticket
/// needs, then its template's.
pub fn required_fields<'a>(settings: &'a TicketSettings, category: &str) -> Vec<&'a str> {
    let mut fields = vec!["title", "category", "impact", "urgency"];
    if let Some(template) = settings.templates.get(category) {
        fields.extend(template.required.iter().map(String::as_str));
    }
    fields
}

/// The body of `POST /v1/tickets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub impact: Option<String>,
    pub urgency: Option<String>,
    /// Overrides the matrix; needs `priority_reason`.
    pub priority: Option<String>,
    pub priority_reason: Option<String>,
    pub channel: Option<String>,
    pub reporter: Option<String>,
    pub affected_user: Option<String>,
    pub release: Option<String>,
    pub launch: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Links to alerts, KPIs, dashboards: free text such as `alert:abc` or a URL.
    #[serde(default)]
    pub links: Vec<String>,
}

/// A new ticket that passed intake.
#[derive(Debug, Clone, PartialEq)]
pub struct Intake {
    pub title: String,
    pub description: String,
    pub category: String,
    pub impact: String,
    pub urgency: String,
    pub priority: Priority,
    pub priority_reason: String,
    pub channel: String,
    pub reporter: String,
    pub affected_user: String,
    pub release: String,
    pub launch: String,
    pub tags: Vec<String>,
    pub links: Vec<String>,
}

impl NewTicket {
    /// Checks every field; the error names the first wrong one.
    pub fn check(self, settings: &TicketSettings) -> Result<Intake, TicketError> {
        let title = text("title", self.title, MAX_FIELD)?;
        if title.is_empty() {
            return Err(TicketError::invalid("title", "is required"));
        }
        let category = self.category.unwrap_or_default();
        check_category(settings, &category)?;
        let impact = self
            .impact
            .ok_or_else(|| TicketError::invalid("impact", "is required"))?;
        let urgency = self
            .urgency
            .ok_or_else(|| TicketError::invalid("urgency", "is required"))?;
        let priority_reason = text("priority_reason", self.priority_reason, MAX_FIELD)?;
        let priority = priority_of(
            settings,
            Grading {
                impact: &impact,
                urgency: &urgency,
                priority: self.priority.as_deref(),
                reason: &priority_reason,
                reason_field: "priority_reason",
            },
        )?;
        let intake = Intake {
            title,
            description: text("description", self.description, MAX_TEXT)?,
            affected_user: text("affected_user", self.affected_user, MAX_FIELD)?,
            release: text("release", self.release, MAX_FIELD)?,
            launch: text("launch", self.launch, MAX_FIELD)?,
            reporter: text("reporter", self.reporter, MAX_FIELD)?,
            channel: text("channel", self.channel, MAX_FIELD)?,
            category,
            impact,
            urgency,
            priority,
            priority_reason,
            tags: self.tags,
            links: self.links,
        };
        intake.check_template(settings)?;
        Ok(intake)
    }
}

impl Intake {
    /// The fields the category's template requires are given.
    fn check_template(&self, settings: &TicketSettings) -> Result<(), TicketError> {
        let Some(template) = settings.templates.get(&self.category) else {
            return Ok(());
        };
        for field in &template.required {
            let value = match field.as_str() {
                "description" => &self.description,
                "affected_user" => &self.affected_user,
                "release" => &self.release,
                "launch" => &self.launch,
                "reporter" => &self.reporter,
                // Settings validation admits only TEMPLATE_FIELDS.
                _ => &self.channel,
            };
            if value.is_empty() {
                return Err(TicketError::invalid(
                    field,
                    format!(
                        "is required for a `{}` ticket (its intake template)",
                        self.category
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bug() -> NewTicket {
        serde_json::from_value(serde_json::json!({
            "title": "  Payment fails  ", "category": "bug", "impact": "high",
            "urgency": "high", "description": "steps", "release": "2.4.1"
        }))
        .unwrap()
    }

    fn field_of(result: Result<Intake, TicketError>) -> String {
        match result {
            Err(TicketError::Invalid { field, .. }) => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn the_required_fields_are_every_ticket_s_then_the_template_s() {
        let settings = TicketSettings::default();
        assert_eq!(
            required_fields(&settings, "bug"),
            [
                "title",
                "category",
                "impact",
                "urgency",
                "description",
                "release"
            ]
        );
        assert_eq!(required_fields(&settings, "question").len(), 4);
        assert!(check_category(&settings, "bug").is_ok());
        assert!(check_category(&settings, "").is_err());
        assert!(check_category(&settings, "gossip").is_err());
    }

    #[test]
    fn a_complete_bug_passes_trimmed_with_its_matrix_priority() {
        let intake = bug().check(&TicketSettings::default()).unwrap();
        assert_eq!(intake.title, "Payment fails");
        assert_eq!(intake.priority, Priority::P1);
    }

    #[test]
    fn the_template_and_the_vocabulary_are_enforced_naming_the_field() {
        let settings = TicketSettings::default();
        let mut no_release = bug();
        no_release.release = None;
        assert_eq!(field_of(no_release.check(&settings)), "release");
        let mut gossip = bug();
        gossip.category = Some("gossip".into());
        assert_eq!(field_of(gossip.check(&settings)), "category");
        let mut untitled = bug();
        untitled.title = Some(" ".into());
        assert_eq!(field_of(untitled.check(&settings)), "title");
        let mut long = bug();
        long.reporter = Some("x".repeat(MAX_FIELD + 1));
        assert_eq!(field_of(long.check(&settings)), "reporter");
    }
}
