//! The rules of a ticket's changes, as pure functions of (ticket, input, now):
//! each answers the next version of the ticket (the row to append) and the
//! events the change caused, or a typed refusal. The service
//! ([`crate::service`]) reads the current version under the ticket's lock,
//! calls one of these, and appends the answer.

use crate::config::TicketSettings;
use crate::error::TicketError;
use crate::intake::Intake;
use crate::model::{Priority, State, Ticket, change};
use crate::priority::{Grading, priority_of};

/// Something a change did that the service reports (logs, counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Opened,
    Moved {
        from: State,
        to: State,
    },
    /// The first-response clock stopped.
    FirstResponse,
    /// The resolution clock stopped.
    Resolved,
    Closed,
    /// A resolved or closed ticket went back to work: its resolution clock runs again.
    Reopened,
    Assigned,
    Commented {
        public: bool,
    },
    Regraded {
        from: Priority,
        to: Priority,
    },
}

/// A ticket after a change, with what the change did.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub ticket: Ticket,
    pub events: Vec<Event>,
}

/// Who of the audience sees a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Support only.
    Internal,
    /// Told to the user: it counts as a response.
    Public,
}

impl Visibility {
    pub fn parse(text: &str) -> Option<Visibility> {
        match text {
            "internal" => Some(Visibility::Internal),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

/// A re-grading request: any of impact, urgency, priority (with a reason).
#[derive(Debug, Clone, Default)]
pub struct Regrade {
    pub impact: Option<String>,
    pub urgency: Option<String>,
    pub priority: Option<String>,
    pub reason: String,
}

impl Ticket {
    /// Version 1 of a ticket that passed intake.
    pub fn open(
        intake: Intake,
        ticket_id: String,
        number: u64,
        actor: &str,
        now_ms: u64,
    ) -> Changed {
        let ticket = Ticket {
            ticket_id,
            number,
            version: 1,
            change: change::CREATED.into(),
            actor: actor.to_owned(),
            at_ms: now_ms,
            title: intake.title,
            description: intake.description,
            category: intake.category,
            impact: intake.impact,
            urgency: intake.urgency,
            priority: intake.priority,
            priority_reason: intake.priority_reason,
            state: State::New,
            assignee: String::new(),
            reporter: intake.reporter,
            channel: intake.channel,
            affected_user: intake.affected_user,
            release: intake.release,
            launch: intake.launch,
            tags: intake.tags,
            links: intake.links,
            created_ms: now_ms,
            first_response_ms: 0,
            resolved_ms: 0,
            closed_ms: 0,
            resolution: String::new(),
            comment: String::new(),
            comment_visibility: String::new(),
        };
        Changed {
            ticket,
            events: vec![Event::Opened],
        }
    }

    /// Moves the ticket to `to`. Refused when the state machine has no such
    /// move (the error lists the allowed ones), or when resolving without a
    /// `resolution`. The first move out of `new` is the first response;
    /// reopening clears the resolution and restarts the resolution clock.
    pub fn transition(
        &self,
        to: State,
        resolution: &str,
        actor: &str,
        now_ms: u64,
    ) -> Result<Changed, TicketError> {
        let from = self.state;
        if !from.allowed().contains(&to) {
            return Err(TicketError::IllegalMove { from, to });
        }
        if to == State::Resolved && resolution.is_empty() {
            return Err(TicketError::invalid(
                "resolution",
                "is required to resolve a ticket",
            ));
        }
        let mut next = self.next(change::TRANSITION, actor, now_ms);
        let mut events = vec![Event::Moved { from, to }];
        next.state = to;
        if from == State::New && next.first_response_ms == 0 {
            next.first_response_ms = now_ms;
            events.push(Event::FirstResponse);
        }
        match to {
            State::Resolved => {
                next.resolved_ms = now_ms;
                next.resolution = resolution.to_owned();
                events.push(Event::Resolved);
            }
            State::Closed => {
                next.closed_ms = now_ms;
                events.push(Event::Closed);
            }
            State::InProgress if from.is_done() => {
                next.resolved_ms = 0;
                next.closed_ms = 0;
                next.resolution = String::new();
                events.push(Event::Reopened);
            }
            _ => {}
        }
        Ok(Changed {
            ticket: next,
            events,
        })
    }

    /// Gives the ticket to `assignee`.
    pub fn assign(&self, assignee: &str, actor: &str, now_ms: u64) -> Changed {
        let mut next = self.next(change::ASSIGNED, actor, now_ms);
        next.assignee = assignee.to_owned();
        Changed {
            ticket: next,
            events: vec![Event::Assigned],
        }
    }

    /// Adds a comment; the first public one is the first response.
    pub fn comment(&self, body: &str, visibility: Visibility, actor: &str, now_ms: u64) -> Changed {
        let mut next = self.next(change::COMMENTED, actor, now_ms);
        let public = visibility == Visibility::Public;
        let mut events = vec![Event::Commented { public }];
        if public && next.first_response_ms == 0 {
            next.first_response_ms = now_ms;
            events.push(Event::FirstResponse);
        }
        next.comment = body.to_owned();
        next.comment_visibility = visibility.as_str().to_owned();
        Changed {
            ticket: next,
            events,
        }
    }

    /// Changes impact, urgency or priority; what is not given stays, and the
    /// result goes through the matrix as at intake (an override needs `reason`).
    pub fn regrade(
        &self,
        settings: &TicketSettings,
        input: Regrade,
        actor: &str,
        now_ms: u64,
    ) -> Result<Changed, TicketError> {
        let impact = input.impact.unwrap_or_else(|| self.impact.clone());
        let urgency = input.urgency.unwrap_or_else(|| self.urgency.clone());
        let priority = priority_of(
            settings,
            Grading {
                impact: &impact,
                urgency: &urgency,
                priority: input.priority.as_deref(),
                reason: &input.reason,
                reason_field: "reason",
            },
        )?;
        let mut next = self.next(change::PRIORITY_CHANGED, actor, now_ms);
        next.impact = impact;
        next.urgency = urgency;
        next.priority = priority;
        next.priority_reason = input.reason;
        Ok(Changed {
            ticket: next,
            events: vec![Event::Regraded {
                from: self.priority,
                to: priority,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::NewTicket;

    const MINUTE: u64 = 60_000;

    fn opened() -> Ticket {
        let new: NewTicket = serde_json::from_value(serde_json::json!({
            "title": "Orders lost", "category": "question", "impact": "high", "urgency": "high"
        }))
        .unwrap();
        let intake = new.check(&TicketSettings::default()).unwrap();
        Ticket::open(intake, "t-1".into(), 1, "ana", 0).ticket
    }

    #[test]
    fn a_ticket_opens_new_at_version_one_with_no_clock_met() {
        let ticket = opened();
        assert_eq!((ticket.state, ticket.version), (State::New, 1));
        assert_eq!(ticket.priority, Priority::P1);
        assert_eq!((ticket.created_ms, ticket.first_response_ms), (0, 0));
    }

    #[test]
    fn an_illegal_move_is_refused_with_the_allowed_moves_and_changes_nothing() {
        let ticket = opened();
        let refusal = ticket
            .transition(State::Closed, "", "ana", MINUTE)
            .unwrap_err();
        match refusal {
            TicketError::IllegalMove { from, to } => {
                assert_eq!((from, to), (State::New, State::Closed));
                assert_eq!(
                    from.allowed(),
                    [State::Triaged, State::InProgress, State::Resolved]
                );
            }
            other => panic!("{other}"),
        }
        assert_eq!(ticket, opened());
    }

    #[test]
    fn resolving_needs_a_resolution() {
        let refusal = opened()
            .transition(State::Resolved, "", "ana", MINUTE)
            .unwrap_err();
        assert!(matches!(refusal, TicketError::Invalid { ref field, .. } if field == "resolution"));
    }

    #[test]
    fn the_first_move_out_of_new_is_the_first_response_and_only_the_first() {
        let triaged = opened()
            .transition(State::Triaged, "", "bob", 5 * MINUTE)
            .unwrap();
        assert_eq!(triaged.ticket.first_response_ms, 5 * MINUTE);
        assert_eq!(triaged.ticket.version, 2);
        assert_eq!(triaged.ticket.actor, "bob");
        assert!(triaged.events.contains(&Event::FirstResponse));
        let working = triaged
            .ticket
            .transition(State::InProgress, "", "bob", 9 * MINUTE)
            .unwrap();
        assert_eq!(working.ticket.first_response_ms, 5 * MINUTE);
        assert_eq!(
            working.events,
            vec![Event::Moved {
                from: State::Triaged,
                to: State::InProgress
            }]
        );
    }

    #[test]
    fn resolve_close_and_reopen_move_the_resolution_clock() {
        let resolved = opened()
            .transition(State::Resolved, "a duplicate of HC-3", "ana", 10 * MINUTE)
            .unwrap()
            .ticket;
        assert_eq!(resolved.resolved_ms, 10 * MINUTE);
        assert_eq!(resolved.resolution, "a duplicate of HC-3");
        let closed = resolved
            .transition(State::Closed, "", "ana", 20 * MINUTE)
            .unwrap()
            .ticket;
        assert_eq!(closed.closed_ms, 20 * MINUTE);
        let reopened = closed
            .transition(State::InProgress, "", "ana", 30 * MINUTE)
            .unwrap();
        assert!(reopened.events.contains(&Event::Reopened));
        let t = reopened.ticket;
        assert_eq!(
            (t.resolved_ms, t.closed_ms, t.resolution.as_str()),
            (0, 0, "")
        );
        assert_eq!(t.version, 4);
    }

    #[test]
    fn a_public_comment_is_a_response_an_internal_one_is_not() {
        let internal = opened().comment("looking", Visibility::Internal, "ana", MINUTE);
        assert_eq!(internal.ticket.first_response_ms, 0);
        assert_eq!(internal.ticket.comment_visibility, "internal");
        let public = internal
            .ticket
            .comment("on it", Visibility::Public, "ana", 2 * MINUTE);
        assert_eq!(public.ticket.first_response_ms, 2 * MINUTE);
        // The next change does not carry the comment over.
        let assigned = public.ticket.assign("bob", "ana", 3 * MINUTE).ticket;
        assert_eq!(
            (assigned.comment.as_str(), assigned.assignee.as_str()),
            ("", "bob")
        );
    }

    #[test]
    fn regrading_goes_through_the_matrix_and_keeps_what_is_not_given() {
        let settings = TicketSettings::default();
        let regraded = opened()
            .regrade(
                &settings,
                Regrade {
                    urgency: Some("low".into()),
                    ..Regrade::default()
                },
                "ana",
                MINUTE,
            )
            .unwrap();
        // high impact x low urgency.
        assert_eq!(regraded.ticket.priority, Priority::P3);
        assert_eq!(regraded.ticket.impact, "high");
        let refused = opened().regrade(
            &settings,
            Regrade {
                priority: Some("P4".into()),
                ..Regrade::default()
            },
            "ana",
            MINUTE,
        );
        assert!(
            matches!(refused, Err(TicketError::Invalid { ref field, .. }) if field == "reason")
        );
    }
}
