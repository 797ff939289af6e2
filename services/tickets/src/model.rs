//! A ticket, its states and the moves between them.

use serde::{Deserialize, Serialize};

/// Where a ticket is in its life. The moves allowed from each state are
/// [`State::allowed`]; docs/tickets.md has the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Logged, not looked at yet.
    New,
    /// Looked at: category, priority and owner are right.
    Triaged,
    /// Someone works on it.
    InProgress,
    /// Needs an answer from the user before work goes on.
    WaitingOnUser,
    /// Fixed or answered; the user was told.
    Resolved,
    /// Confirmed done. A closed ticket may still be reopened.
    Closed,
}

impl State {
    pub const ALL: [State; 6] = [
        State::New,
        State::Triaged,
        State::InProgress,
        State::WaitingOnUser,
        State::Resolved,
        State::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Triaged => "triaged",
            State::InProgress => "in_progress",
            State::WaitingOnUser => "waiting_on_user",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The states a ticket may move to from this one. Resolving is possible from
    /// every open state (a duplicate, a question answered at once); reopening goes
    /// back to `in_progress`.
    pub fn allowed(self) -> &'static [State] {
        match self {
            State::New => &[State::Triaged, State::InProgress, State::Resolved],
            State::Triaged => &[State::InProgress, State::WaitingOnUser, State::Resolved],
            State::InProgress => &[State::WaitingOnUser, State::Resolved],
            State::WaitingOnUser => &[State::InProgress, State::Resolved],
            State::Resolved => &[State::Closed, State::InProgress],
            State::Closed => &[State::InProgress],
        }
    }

    /// Resolved or closed: the resolution clock has stopped.
    pub fn is_done(self) -> bool {
        matches!(self, State::Resolved | State::Closed)
    }
}

/// P1 is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// One row of `ticket_events`: the whole ticket after one change. The field order
/// is the table's column order (rows are read and written positionally).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct TicketRow {
    pub ticket_id: String,
    pub number: u64,
    pub version: u32,
    /// What this change did: `created`, `transition`, `assigned`, `commented`,
    /// `priority_changed`.
    pub change: String,
    pub actor: String,
    pub at_ms: u64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub impact: String,
    pub urgency: String,
    pub priority: String,
    pub priority_reason: String,
    pub state: String,
    pub assignee: String,
    pub reporter: String,
    pub channel: String,
    pub affected_user: String,
    pub release: String,
    pub launch: String,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub created_ms: u64,
    pub first_response_ms: u64,
    pub resolved_ms: u64,
    pub closed_ms: u64,
    pub resolution: String,
    /// The comment this change added, if it is a comment.
    pub comment: String,
    /// `internal` or `public` for a comment; empty otherwise.
    pub comment_visibility: String,
}

/// The columns of [`TicketRow`], in order, for SELECT and INSERT.
pub const COLUMNS: &str = "ticket_id, number, version, change, actor, at_ms, title, description, \
    category, impact, urgency, priority, priority_reason, state, assignee, reporter, channel, \
    affected_user, release, launch, tags, links, created_ms, first_response_ms, resolved_ms, \
    closed_ms, resolution, comment, comment_visibility";

impl TicketRow {
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::New)
    }

    pub fn priority(&self) -> Priority {
        Priority::parse(&self.priority).unwrap_or(Priority::P4)
    }

    /// The human-friendly id, `HC-42`.
    pub fn key(&self) -> String {
        format!("HC-{}", self.number)
    }

    /// The next version of this ticket, as changed by `actor` at `at_ms`: the
    /// per-change fields (comment) are cleared.
    pub fn next(&self, change: &str, actor: &str, at_ms: u64) -> TicketRow {
        TicketRow {
            version: self.version + 1,
            change: change.to_owned(),
            actor: actor.to_owned(),
            at_ms,
            comment: String::new(),
            comment_visibility: String::new(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_can_be_left_and_done_states_can_reopen() {
        for state in State::ALL {
            assert!(!state.allowed().is_empty(), "{state:?} is a dead end");
            assert!(!state.allowed().contains(&state));
        }
        assert!(State::Closed.allowed().contains(&State::InProgress));
        assert!(!State::New.allowed().contains(&State::Closed));
        assert_eq!(State::parse("waiting_on_user"), Some(State::WaitingOnUser));
    }
}
