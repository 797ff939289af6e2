//! Priority rules: impact x urgency through the matrix of `[tickets]`, and an
//! override that must say why.

use crate::config::TicketSettings;
use crate::error::TicketError;
use crate::model::Priority;

/// What a request says about a ticket's priority.
#[derive(Debug, Clone, Copy)]
pub struct Grading<'a> {
    pub impact: &'a str,
    pub urgency: &'a str,
    /// An override of the matrix, as sent (`P1`..`P4`).
    pub priority: Option<&'a str>,
    /// Why the override; required when it differs from the matrix.
    pub reason: &'a str,
    /// The request field that carries `reason` (`priority_reason` at intake,
    /// `reason` when re-grading), for the error.
    pub reason_field: &'a str,
}

/// The priority the grading gives: the matrix's, or the override when it is
/// explained.
pub fn priority_of(
    settings: &TicketSettings,
    grading: Grading<'_>,
) -> Result<Priority, TicketError> {
    let Grading {
        impact, urgency, ..
    } = grading;
    if !settings.impacts.iter().any(|i| i == impact) {
        return Err(TicketError::invalid(
            "impact",
            format!("`{impact}` is not one of {}", settings.impacts.join(", ")),
        ));
    }
    if !settings.urgencies.iter().any(|u| u == urgency) {
        return Err(TicketError::invalid(
            "urgency",
            format!(
                "`{urgency}` is not one of {}",
                settings.urgencies.join(", ")
            ),
        ));
    }
    let derived = settings
        .priority_for(impact, urgency)
        .ok_or_else(|| TicketError::invalid("impact", "has no priority in the matrix"))?;
    let Some(text) = grading.priority else {
        return Ok(derived);
    };
    let chosen = Priority::parse(text).ok_or_else(|| {
        TicketError::invalid("priority", format!("`{text}` is not P1, P2, P3 or P4"))
    })?;
    if chosen != derived && grading.reason.is_empty() {
        return Err(TicketError::invalid(
            grading.reason_field,
            format!(
                "is required to set {chosen} where impact `{impact}` and urgency `{urgency}` give {derived}"
            ),
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grading<'a>(impact: &'a str, urgency: &'a str) -> Grading<'a> {
        Grading {
            impact,
            urgency,
            priority: None,
            reason: "",
            reason_field: "priority_reason",
        }
    }

    fn field(error: TicketError) -> String {
        match error {
            TicketError::Invalid { field, .. } => field,
            other => panic!("not an invalid field: {other}"),
        }
    }

    #[test]
    fn the_matrix_gives_the_priority() {
        let settings = TicketSettings::default();
        assert_eq!(
            priority_of(&settings, grading("high", "high")).unwrap(),
            Priority::P1
        );
        assert_eq!(
            priority_of(&settings, grading("medium", "low")).unwrap(),
            Priority::P4
        );
        let unknown = priority_of(&settings, grading("apocalyptic", "high")).unwrap_err();
        assert_eq!(field(unknown), "impact");
        let unknown = priority_of(&settings, grading("low", "yesterday")).unwrap_err();
        assert_eq!(field(unknown), "urgency");
    }

    #[test]
    fn an_override_needs_a_reason_unless_it_agrees_with_the_matrix() {
        let settings = TicketSettings::default();
        let mut g = grading("medium", "low");
        g.priority = Some("P1");
        assert_eq!(
            field(priority_of(&settings, g).unwrap_err()),
            "priority_reason"
        );
        g.reason_field = "reason";
        assert_eq!(field(priority_of(&settings, g).unwrap_err()), "reason");
        g.reason = "the CEO's demo is at 3 pm";
        assert_eq!(priority_of(&settings, g).unwrap(), Priority::P1);
        let same = Grading {
            priority: Some("P4"),
            ..grading("medium", "low")
        };
        assert_eq!(priority_of(&settings, same).unwrap(), Priority::P4);
        let bad = Grading {
            priority: Some("P9"),
            ..grading("medium", "low")
        };
        assert_eq!(field(priority_of(&settings, bad).unwrap_err()), "priority");
    }
}
