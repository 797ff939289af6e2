//! "Is this already reported?": open tickets of the same category whose words
//! overlap the new one's (Jaccard similarity of their word sets), so that support
//! links a duplicate instead of opening a second investigation.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::{State, Ticket};

/// Below this share of common words, two tickets are not called similar.
pub const MIN_SCORE: f64 = 0.2;
pub const MAX_SUGGESTIONS: usize = 5;

const STOP_WORDS: [&str; 24] = [
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "not", "but",
    "have", "has", "had", "when", "after", "before", "into", "our", "your", "they", "can",
    "cannot",
];

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Similar {
    pub id: String,
    pub key: String,
    pub title: String,
    #[schema(value_type = String)]
    pub state: State,
    pub score: f64,
}

/// The most similar candidates, best first.
pub fn similar(title: &str, description: &str, candidates: &[Ticket]) -> Vec<Similar> {
    let mine = words(&format!("{title} {description}"));
    if mine.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<Similar> = candidates
        .iter()
        .filter_map(|other| {
            let theirs = words(&format!("{} {}", other.title, other.description));
            let common = mine.intersection(&theirs).count();
            let all = mine.union(&theirs).count();
            let score = if all == 0 {
                0.0
            } else {
                common as f64 / all as f64
            };
            (score >= MIN_SCORE).then(|| Similar {
                id: other.ticket_id.clone(),
                key: other.key(),
                title: other.title.clone(),
                state: other.state,
                score: (score * 100.0).round() / 100.0,
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(MAX_SUGGESTIONS);
    found
}

/// The candidates most like `ticket` itself (a ticket is not similar to itself).
pub fn similar_to(ticket: &Ticket, candidates: &[Ticket]) -> Vec<Similar> {
    let others: Vec<Ticket> = candidates
        .iter()
        .filter(|c| c.ticket_id != ticket.ticket_id)
        .cloned()
        .collect();
    similar(&ticket.title, &ticket.description, &others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: &str, title: &str) -> Ticket {
        let new: crate::intake::NewTicket = serde_json::from_value(serde_json::json!({
            "title": title, "category": "question", "impact": "low", "urgency": "low"
        }))
        .unwrap();
        let intake = new
            .check(&crate::config::TicketSettings::default())
            .unwrap();
        Ticket::open(intake, id.into(), 1, "ana", 0).ticket
    }

    #[test]
    fn a_ticket_is_not_its_own_duplicate() {
        let mine = ticket("a", "payment failed at checkout");
        let twin = ticket("b", "checkout payment failed again");
        let other = ticket("c", "dark mode request");
        let found = similar_to(&mine, &[mine.clone(), twin, other]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "b");
    }

    #[test]
    fn common_words_make_a_match_and_stop_words_do_not() {
        assert_eq!(
            words("The payment FAILED with code 502"),
            ["payment", "failed", "code", "502"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        let a = words("payment failed at checkout");
        let b = words("checkout payment failed again");
        assert_eq!(a.intersection(&b).count(), 3);
    }
}
