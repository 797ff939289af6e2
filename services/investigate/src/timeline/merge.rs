//! The timeline's order: a user's events and the log lines naming them, each
//! list already in time order, merged into one page of typed items.
//!
//! The order is (time, kind, id), events before logs of the same nanosecond;
//! each list holds up to `limit + 1` items after the cursor, so the merged page
//! knows whether another page exists, and its last item is the next cursor.

use serde::Serialize;

use crate::logs::filter::{Cursor, Kind};
use crate::logs::store::LogLine;

use super::store::EventItem;

/// One item of a timeline, typed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Item {
    Event(EventItem),
    Log(LogLine),
}

impl Item {
    fn cursor(&self) -> Cursor {
        match self {
            Item::Event(e) => e.cursor(),
            Item::Log(l) => l.cursor(),
        }
    }

    fn key(&self) -> (u64, Kind) {
        match self {
            Item::Event(e) => (e.ns, Kind::Event),
            Item::Log(l) => (l.ns, Kind::Log),
        }
    }
}

/// The first `limit` items of both lists in time order, and the cursor of the
/// next page when either list holds more.
pub fn merge(
    events: Vec<EventItem>,
    logs: Vec<LogLine>,
    limit: usize,
) -> (Vec<Item>, Option<Cursor>) {
    let total = events.len() + logs.len();
    let mut events = events.into_iter().map(Item::Event).peekable();
    let mut logs = logs.into_iter().map(Item::Log).peekable();
    let mut items = Vec::with_capacity(limit.min(total));
    while items.len() < limit {
        // Within one list the store's order stands; across lists (time, kind).
        let next = match (events.peek(), logs.peek()) {
            (Some(e), Some(l)) if e.key() <= l.key() => events.next(),
            (Some(_), Some(_)) => logs.next(),
            (Some(_), None) => events.next(),
            (None, _) => logs.next(),
        };
        let Some(item) = next else { break };
        items.push(item);
    }
    let next = (total > items.len())
        .then(|| items.last().map(Item::cursor))
        .flatten();
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ns: u64, id: &str) -> EventItem {
        EventItem {
            id: id.into(),
            time: String::new(),
            ns,
            event: "e".into(),
            source: String::new(),
            release: String::new(),
            session_id: String::new(),
            value: None,
            properties: Default::default(),
        }
    }

    fn log(ns: u64, id: u64) -> LogLine {
        LogLine {
            id: id.to_string(),
            time: String::new(),
            ns,
            service: String::new(),
            severity: String::new(),
            severity_number: 0,
            body: String::new(),
            event_name: String::new(),
            trace_id: String::new(),
            span_id: String::new(),
            attributes: Default::default(),
        }
    }

    fn order(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Event(e) => format!("e{}:{}", e.ns, e.id),
                Item::Log(l) => format!("l{}:{}", l.ns, l.id),
            })
            .collect()
    }

    #[test]
    fn items_interleave_by_time_and_events_go_first_at_a_tie() {
        let (items, next) = merge(
            vec![event(10, "a"), event(30, "b")],
            vec![log(5, 9), log(10, 2), log(40, 1)],
            10,
        );
        assert_eq!(order(&items), ["l5:9", "e10:a", "l10:2", "e30:b", "l40:1"]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_full_page_ends_with_the_next_cursor() {
        let (items, next) = merge(vec![event(10, "a"), event(30, "b")], vec![log(20, 7)], 2);
        assert_eq!(order(&items), ["e10:a", "l20:7"]);
        assert_eq!(
            next,
            Some(Cursor {
                ns: 20,
                kind: Kind::Log,
                id: "7".into()
            })
        );
        // Exactly `limit` items in all: no next page.
        let (items, next) = merge(vec![event(10, "a")], vec![log(20, 7)], 2);
        assert_eq!(items.len(), 2);
        assert_eq!(next, None);
    }
}
