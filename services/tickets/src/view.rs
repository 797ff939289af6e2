//! What the API shows of a ticket: [`TicketView`] (the ticket with its SLA
//! clocks at "now") and [`HistoryEntry`] (one version of it). Both are built
//! here only, from the stored [`Ticket`].

use serde::Serialize;

use crate::config::TicketSettings;
use crate::model::{Priority, State, Ticket};
use crate::similar::Similar;
use crate::sla::{Sla, rfc3339_ms, sla};

/// A ticket as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Ticket)]
pub struct TicketView {
    pub id: String,
    pub key: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub category: String,
    pub impact: String,
    pub urgency: String,
    #[schema(value_type = String)]
    pub priority: Priority,
    pub priority_reason: String,
    #[schema(value_type = String)]
    pub state: State,
    pub assignee: String,
    pub reporter: String,
    pub channel: String,
    pub affected_user: String,
    /// The affected user's timeline (events and log lines) from an hour
    /// before the ticket was created to an hour after; absent without a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<String>,
    pub release: String,
    pub launch: String,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub resolution: String,
    pub sla: Sla,
}

impl TicketView {
    pub fn new(ticket: Ticket, settings: &TicketSettings, now_ms: u64) -> Self {
        let sla = sla(&ticket, settings, now_ms);
        Self {
            key: ticket.key(),
            created_at: rfc3339_ms(ticket.created_ms),
            updated_at: rfc3339_ms(ticket.at_ms),
            id: ticket.ticket_id,
            version: ticket.version,
            title: ticket.title,
            description: ticket.description,
            category: ticket.category,
            impact: ticket.impact,
            urgency: ticket.urgency,
            priority: ticket.priority,
            priority_reason: ticket.priority_reason,
            state: ticket.state,
            assignee: ticket.assignee,
            reporter: ticket.reporter,
            channel: ticket.channel,
            timeline: timeline_link(&ticket.affected_user, ticket.created_ms),
            affected_user: ticket.affected_user,
            release: ticket.release,
            launch: ticket.launch,
            tags: ticket.tags,
            links: ticket.links,
            resolution: ticket.resolution,
            sla,
        }
    }
}

/// How far around the ticket's creation its timeline link reads.
const TIMELINE_AROUND_MS: u64 = 3_600_000;

/// `GET /v1/users/{user}/timeline` around `created_ms` (the user id
/// percent-encoded as a path segment), or `None` without a user.
pub fn timeline_link(user: &str, created_ms: u64) -> Option<String> {
    if user.is_empty() {
        return None;
    }
    let mut path = String::from("/v1/users/");
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    let second = |ms: u64| rfc3339_ms(ms / 1000 * 1000).replace(".000Z", "Z");
    Some(format!(
        "{path}/timeline?from={}&to={}",
        second(created_ms.saturating_sub(TIMELINE_AROUND_MS)),
        second(created_ms.saturating_add(TIMELINE_AROUND_MS).div_ceil(1000) * 1000)
    ))
}

/// One entry of a ticket's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketChange)]
pub struct HistoryEntry {
    pub version: u32,
    pub change: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = String)]
    pub state: State,
    #[schema(value_type = String)]
    pub priority: Priority,
    pub assignee: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment_visibility: String,
}

impl From<Ticket> for HistoryEntry {
    fn from(version: Ticket) -> Self {
        Self {
            version: version.version,
            change: version.change,
            actor: version.actor,
            at: rfc3339_ms(version.at_ms),
            state: version.state,
            priority: version.priority,
            assignee: version.assignee,
            comment: version.comment,
            comment_visibility: version.comment_visibility,
        }
    }
}

/// The answer of `POST /v1/tickets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketCreated)]
pub struct Created {
    pub ticket: TicketView,
    /// Open tickets of the same category that read alike: maybe the same problem.
    pub similar: Vec<Similar>,
}

/// The answer of `GET /v1/tickets/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketWithHistory)]
pub struct Shown {
    pub ticket: TicketView,
    pub history: Vec<HistoryEntry>,
}

/// The answer of `GET /v1/tickets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TicketPage)]
pub struct Page {
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub tickets: Vec<TicketView>,
}

#[cfg(test)]
mod tests {
    use super::timeline_link;

    #[test]
    fn the_timeline_link_encodes_the_user_and_spans_two_hours() {
        assert_eq!(timeline_link("", 0), None);
        assert_eq!(
            timeline_link("ana@example.com/1", 1_795_341_600_500).as_deref(),
            Some(
                "/v1/users/ana%40example.com%2F1/timeline?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:01Z"
            )
        );
    }
}
