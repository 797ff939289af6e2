//! A ticket, its states and priorities, as stored: one row of `ticket_events`
//! is the whole ticket after one change.
//!
//! State and priority are enums at the row boundary: they are written and read
//! as their text (`in_progress`, `P2`), and a stored value that is neither is a
//! read error, never a silent default.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a ticket is in its life. The moves allowed from each state are
/// [`State::allowed`]; docs/tickets.md has the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Both enums travel as their text: in JSON, in the `[tickets]` settings and
/// in ClickHouse's `String` columns (RowBinary), so one impl serves all three.
macro_rules! as_text {
    ($type:ident, $what:literal) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $type::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not a ticket {} ({})",
                        $what,
                        $type::ALL.map($type::as_str).join(", ")
                    ))
                })
            }
        }
    };
}

as_text!(State, "state");
as_text!(Priority, "priority");

/// What a change did; the `change` column.
pub mod change {
    pub const CREATED: &str = "created";
    pub const TRANSITION: &str = "transition";
    pub const ASSIGNED: &str = "assigned";
    pub const COMMENTED: &str = "commented";
    pub const PRIORITY_CHANGED: &str = "priority_changed";
}

/// One row of `ticket_events`: the whole ticket after one change. The field order
/// is the table's column order (rows are read and written positionally).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub number: u64,
    pub version: u32,
    /// What this change did (see [`change`]).
    pub change: String,
    pub actor: String,
    pub at_ms: u64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub impact: String,
    pub urgency: String,
    pub priority: Priority,
    pub priority_reason: String,
    pub state: State,
    pub assignee: String,
    pub reporter: String,
    pub channel: String,
    pub affected_user: String,
    pub release: String,
    pub launch: String,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub created_ms: u64,
    /// 0 while nobody has answered (0 means "not yet" in every `_ms` field).
    pub first_response_ms: u64,
    pub resolved_ms: u64,
    pub closed_ms: u64,
    pub resolution: String,
    /// The comment this change added, if it is a comment.
    pub comment: String,
    /// `internal` or `public` for a comment; empty otherwise.
    pub comment_visibility: String,
}

/// The columns of [`Ticket`], in order, for SELECT and INSERT.
pub const COLUMNS: &str = "ticket_id, number, version, change, actor, at_ms, title, description, \
    category, impact, urgency, priority, priority_reason, state, assignee, reporter, channel, \
    affected_user, release, launch, tags, links, created_ms, first_response_ms, resolved_ms, \
    closed_ms, resolution, comment, comment_visibility";

impl Ticket {
    /// The human-friendly id, `HC-42`.
    pub fn key(&self) -> String {
        format!("HC-{}", self.number)
    }

    /// When it was resolved, while it still is (0 when open or reopened).
    pub fn resolved_ms_if_done(&self) -> u64 {
        if self.state.is_done() {
            self.resolved_ms
        } else {
            0
        }
    }

    /// The next version of this ticket, as changed by `actor` at `at_ms`: the
    /// per-change fields (comment) are cleared.
    pub fn next(&self, change: &str, actor: &str, at_ms: u64) -> Ticket {
        Ticket {
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

    #[test]
    fn states_and_priorities_travel_as_text_and_unknown_text_is_an_error() {
        assert_eq!(
            serde_json::to_value(State::WaitingOnUser).unwrap(),
            "waiting_on_user"
        );
        assert_eq!(
            serde_json::from_value::<Priority>("P3".into()).unwrap(),
            Priority::P3
        );
        let error = serde_json::from_value::<State>("sleeping".into()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`sleeping` is not a ticket state")
        );
        assert!(serde_json::from_value::<Priority>("P5".into()).is_err());
    }
}
