//! Support's pages: the queue (`/tickets`), the intake form (`/tickets/new`)
//! and a ticket (`/tickets/{id}`) with its actions.
//!
//! Every page reads and acts through the tickets capability's service
//! ([`TicketService`], from app data) and the same checks as the API routes
//! ([`hypercare_tickets::request`], [`hypercare_tickets::intake`]), as the
//! signed-in key: reading needs `support` or `read`, acting needs `support`.
//! Actions are plain HTML forms (CSRF token, the ticket's version as seen),
//! answered with a redirect to the ticket (post/redirect/get); a refusal
//! shows the page again with the reason.
//!
//! Times are shown in the current launch's time zone (UTC before a launch
//! is declared), with the zone named.

mod new;
mod queue;
mod show;

use actix_web::error::UrlencodedError;
use actix_web::{ResponseError, web};
use chrono::TimeZone;
use chrono_tz::Tz;
use hypercare_http::ApiError;
use hypercare_http::error::ErrorCode;
use hypercare_kpis::KpiState;
use hypercare_tickets::TicketService;
use hypercare_tickets::model::{Priority, State};
use maud::{Markup, html};

use crate::error::ConsoleError;

/// Longest form body: a description or comment of `MAX_TEXT` characters,
/// each up to 4 UTF-8 bytes, URL-encoded (3 bytes per byte), and the rest.
const FORM_LIMIT: usize = hypercare_tickets::intake::MAX_TEXT * 12 + 16 * 1024;

/// The form bodies of the actions: a body too large or not a form gets a
/// page a person can read, as every other refusal of the console.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(FORM_LIMIT)
        .error_handler(|err, _| {
            let error = match &err {
                UrlencodedError::Overflow { .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the form is larger than the limit of {FORM_LIMIT} bytes"),
                ),
                UrlencodedError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedContentType,
                    "send the form as application/x-www-form-urlencoded",
                ),
                other => ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the form is not valid: {other}"),
                ),
            };
            let page = ConsoleError::Api(error).error_response();
            actix_web::error::InternalError::from_response(err, page).into()
        })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let form = form_config;
    cfg.route("/tickets", web::get().to(queue::show))
        .service(
            web::resource("/tickets/new")
                .app_data(form())
                .route(web::get().to(new::show))
                .route(web::post().to(new::submit)),
        )
        .route("/tickets/{id}", web::get().to(show::show))
        .service(
            web::resource("/tickets/{id}/transition")
                .app_data(form())
                .route(web::post().to(show::transition)),
        )
        .service(
            web::resource("/tickets/{id}/assign")
                .app_data(form())
                .route(web::post().to(show::assign)),
        )
        .service(
            web::resource("/tickets/{id}/comments")
                .app_data(form())
                .route(web::post().to(show::comment)),
        );
}

type Service = web::Data<TicketService>;

/// The time zone pages show times in: the current launch's.
async fn zone(kpis: Option<&web::Data<KpiState>>) -> Tz {
    let Some(kpis) = kpis else {
        return chrono_tz::UTC;
    };
    match super::zone::launch_zone(&kpis.store).await {
        Ok(tz) => tz,
        Err(error) => {
            tracing::warn!(%error, "Could not read the current launch; showing times in UTC.");
            chrono_tz::UTC
        }
    }
}

/// A time in `tz`, its zone's abbreviation after it (`2026-11-20 14:05 CET`).
fn at(ms: u64, tz: Tz) -> Markup {
    let Some(utc) = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)) else {
        return html! { "?" };
    };
    let local = tz.from_utc_datetime(&utc.naive_utc());
    html! {
        time datetime=(utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (local.format("%Y-%m-%d %H:%M %Z"))
        }
    }
}

/// Which zone the page's times are in, said once per page.
fn zone_note(tz: Tz) -> Markup {
    html! { p.muted.zone { "Times are in " strong { (tz.name()) } "." } }
}

/// "3 d 4 h", "2 h 05 min", "12 min".
fn span(ms: u64) -> String {
    let minutes = ms / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {mins:02} min")
    } else {
        format!("{mins} min")
    }
}

fn state_label(state: State) -> &'static str {
    match state {
        State::New => "New",
        State::Triaged => "Triaged",
        State::InProgress => "In progress",
        State::WaitingOnUser => "Waiting on user",
        State::Resolved => "Resolved",
        State::Closed => "Closed",
    }
}

fn state_badge(state: State) -> Markup {
    html! { span.badge.state { (state_label(state)) } }
}

fn priority_badge(priority: Priority) -> Markup {
    let class = match priority {
        Priority::P1 => "critical",
        Priority::P2 => "warning",
        _ => "no_data",
    };
    html! { span.status.(class) { (priority.as_str()) } }
}

/// A field's label on the intake form and in the ticket's details.
fn field_label(field: &str) -> &str {
    match field {
        "title" => "Title",
        "category" => "Category",
        "impact" => "Impact",
        "urgency" => "Urgency",
        "description" => "Description",
        "affected_user" => "Affected user",
        "release" => "Release",
        "launch" => "Launch",
        "reporter" => "Reporter",
        "channel" => "Channel",
        "priority" => "Priority override",
        "priority_reason" => "Reason for the override",
        "tags" => "Tags",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_the_largest_useful_units() {
        assert_eq!(span(0), "0 min");
        assert_eq!(span(12 * 60_000 + 59_999), "12 min");
        assert_eq!(span(125 * 60_000), "2 h 05 min");
        assert_eq!(span((3 * 1440 + 4 * 60 + 7) * 60_000), "3 d 4 h");
    }

    #[test]
    fn a_time_is_shown_in_the_zone_and_names_it() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 2026-11-20T13:05:00Z is 14:05 in Paris (CET, UTC+1).
        let shown = at(1_795_179_900_000, paris).into_string();
        assert!(shown.contains("2026-11-20 14:05 CET"), "{shown}");
        assert!(
            shown.contains("datetime=\"2026-11-20T13:05:00Z\""),
            "{shown}"
        );
    }
}
