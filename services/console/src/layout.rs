//! The page shell every console page shares: landmarks, a skip link, the
//! navigation the key's scopes allow, the signed-in key and sign-out.

use hypercare_http::auth::Scope;
use maud::{DOCTYPE, Markup, html};

use crate::session::Viewer;
use crate::shell;

/// A part of the console, with the scope its pages need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Board,
    Days,
    Alerts,
    Capacity,
    Tickets,
    Report,
}

impl Section {
    /// The sections in the navigation, in order.
    pub const NAV: &'static [Section] = &[
        Section::Board,
        Section::Days,
        Section::Report,
        Section::Alerts,
        Section::Tickets,
        Section::Capacity,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Home => "Overview",
            Section::Board => "Board",
            Section::Days => "Launch days",
            Section::Alerts => "Alerts",
            Section::Capacity => "Capacity",
            Section::Tickets => "Tickets",
            Section::Report => "Daily report",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Section::Home => "/",
            Section::Board => "/",
            Section::Days => "/launches/current/days",
            Section::Alerts => "/alerts",
            Section::Capacity => "/capacity",
            Section::Tickets => "/tickets",
            Section::Report => "/launches/current/report",
        }
    }

    /// The scope a key needs to see the section.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Section::Home => None,
            Section::Board | Section::Days => Some(Scope::Read),
            Section::Alerts => Some(Scope::Read),
            Section::Capacity => Some(Scope::Read),
            Section::Report => Some(Scope::Read),
            // Support keys too: see `visible_to`.
            Section::Tickets => Some(Scope::Read),
        }
    }

    /// Whether `viewer`'s key may open the section.
    pub fn visible_to(self, viewer: &Viewer) -> bool {
        match self {
            Section::Tickets => viewer.can(Scope::Support) || viewer.can(Scope::Read),
            _ => self.scope().is_none_or(|s| viewer.can(s)),
        }
    }
}

/// A page for a signed-in viewer.
pub fn page(title: &str, viewer: &Viewer, active: Section, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (shell::head(title, Some(&viewer.csrf)))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Hypercare" }
                    nav.main aria-label="Main" {
                        ul {
                            @for section in Section::NAV {
                                @if section.visible_to(viewer) {
                                    li {
                                        a href=(section.path())
                                          aria-current=[(*section == active).then_some("page")] {
                                            (section.title())
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { "Signed in as " strong { (viewer.key_name()) } }
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}
