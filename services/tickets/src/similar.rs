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

/// A group of similar tickets: the daily report's "top clusters".
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cluster {
    /// The oldest ticket's title, standing for the group.
    pub title: String,
    pub category: String,
    /// Keys (`HC-12`), oldest first.
    pub keys: Vec<String>,
}

/// Groups `tickets` of the same category that are similar to one another,
/// directly or through a chain of similar tickets (single linkage at
/// [`MIN_SCORE`]); groups of two or more, biggest first, then oldest first.
pub fn clusters(tickets: &[Ticket]) -> Vec<Cluster> {
    let mut sorted: Vec<&Ticket> = tickets.iter().collect();
    sorted.sort_by_key(|t| (t.created_ms, t.number));
    let bags: Vec<HashSet<String>> = sorted
        .iter()
        .map(|t| words(&format!("{} {}", t.title, t.description)))
        .collect();
    // Union-find over the tickets' indexes.
    let mut parent: Vec<usize> = (0..sorted.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..sorted.len() {
        for j in i + 1..sorted.len() {
            if sorted[i].category != sorted[j].category {
                continue;
            }
            let all = bags[i].union(&bags[j]).count();
            let common = bags[i].intersection(&bags[j]).count();
            if all > 0 && common as f64 / all as f64 >= MIN_SCORE {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                // The older ticket stays the root: it names the group.
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..sorted.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut found: Vec<Cluster> = groups
        .into_iter()
        .filter(|(_, members)| members.len() >= 2)
        .map(|(first, members)| Cluster {
            title: sorted[first].title.clone(),
            category: sorted[first].category.clone(),
            keys: members.iter().map(|i| sorted[*i].key()).collect(),
        })
        .collect();
    // Stable: equal sizes keep the oldest group first.
    found.sort_by_key(|c| std::cmp::Reverse(c.keys.len()));
    found
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
    fn similar_tickets_chain_into_one_cluster_named_by_the_oldest() {
        let mut a = ticket("a", "payment failed at checkout");
        a.number = 1;
        let mut b = ticket("b", "checkout payment failed again");
        b.number = 2;
        b.created_ms = 10;
        let mut c = ticket("c", "payment failed again on mobile");
        c.number = 3;
        c.created_ms = 20;
        let mut d = ticket("d", "dark mode request");
        d.number = 4;
        let found = clusters(&[c, d, b, a]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].title, "payment failed at checkout");
        assert_eq!(found[0].keys, ["HC-1", "HC-2", "HC-3"]);
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
