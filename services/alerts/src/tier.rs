//! The alert tiers, P0 (page now) to P3 (look during working hours): what
//! rules, SLOs and the tier policies of the configuration name.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    P0,
    P1,
    P2,
    P3,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::P0, Tier::P1, Tier::P2, Tier::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::P0 => "P0",
            Tier::P1 => "P1",
            Tier::P2 => "P2",
            Tier::P3 => "P3",
        }
    }

    pub fn parse(text: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == text)
    }
}
