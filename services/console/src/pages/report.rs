//! The daily report (`/launches/{id}/report?day=N`, `current` for the current
//! launch; today's day by default): the call and its reasons first, then
//! every section of the report, in the console's layout, with a day picker
//! (previous / next day, and each day of the window) and the report as
//! Markdown, HTML or JSON.
//!
//! Data flow: [`ReportState::report`] with [`Freshness::Stored`], the same
//! call as `GET /v1/launches/{id}/report`; the sections are
//! [`hypercare_report::render::html::sections`], the markup of the report's
//! own HTML page, so the two read alike. `format=md|html|json` answers the
//! same bytes as the API route (`Format::write`) to the signed-in person,
//! whose browser has a session rather than an API key.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::calendar::local_date;
use hypercare_kpis::{KpiError, KpiState};
use hypercare_report::ReportState;
use hypercare_report::make::Freshness;
use hypercare_report::render::{day_label, html as report_html};
use hypercare_report::routes::Format;
use maud::html;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    day: Option<String>,
    format: Option<String>,
}

/// The days the picker offers, as N of D+N.
#[derive(Debug, PartialEq, Eq)]
pub struct Picker {
    pub previous: Option<i64>,
    pub next: Option<i64>,
    /// D0..the window's last day, each with whether it has started.
    pub window: Vec<(i64, bool)>,
}

/// The picker around `day`: previous and next within the launch's days
/// (`first` = the first baseline day, `last` = the window's last), never past
/// `today` (a day not started has no report).
pub fn picker(first: i64, last: i64, today: i64, day: i64) -> Picker {
    let newest = last.min(today);
    let previous = day - 1;
    let next = day + 1;
    Picker {
        previous: (first..=newest).contains(&previous).then_some(previous),
        next: (first..=newest).contains(&next).then_some(next),
        window: (0..=last.max(0)).map(|n| (n, n <= today)).collect(),
    }
}

/// `day`, read: a whole number, or today's (the window's last once it is over).
fn chosen_day(text: Option<&str>, today: i64, last: i64) -> Result<i64, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(today.min(last)),
        Some(text) => {
            let day: i64 = text.parse().map_err(|_| {
                ApiError::invalid(
                    "day",
                    format!("`{text}` is not a whole number such as 1 (D+1) or -2 (D-2)"),
                )
            })?;
            if !(-400..=400).contains(&day) {
                return Err(ApiError::invalid("day", "must be between -400 and 400"));
            }
            Ok(day)
        }
    }
}

fn chosen_format(text: Option<&str>) -> Result<Option<Format>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some("md") => Ok(Some(Format::Md)),
        Some("html") => Ok(Some(Format::Html)),
        Some("json") => Ok(Some(Format::Json)),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("`{other}` is not one of md, html, json"),
        )),
    }
}

/// The standalone HTML report carries its own `<style>` and no script: its
/// policy allows that style and nothing else.
const STANDALONE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                              frame-ancestors 'none'; form-action 'none'; base-uri 'none'";

pub async fn show(
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
    kpis: web::Data<KpiState>,
    report: web::Data<ReportState>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let format = chosen_format(query.format.as_deref())?;
    let launch = match kpis.launch(&path).await {
        Ok(launch) => launch,
        // The navigation links the current launch's report before any launch exists.
        Err(KpiError::NotFound(_)) if path.as_str() == "current" && format.is_none() => {
            return Ok(super::ok(layout::page(
                "Daily report",
                &viewer,
                Section::Report,
                html! {
                    p #no-launch-report { "No launch is declared yet. Declare one with " code { "POST /v1/launches" } "; its daily reports appear here." }
                },
            )));
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let tz = launch.tz().map_err(|e| ApiError::from(KpiError::from(e)))?;
    let window = launch.window(tz);
    let today = (local_date(kpis.now_secs(), tz) - window.d0).num_days();
    let last = (window.last - window.d0).num_days();
    let first = window
        .baseline
        .map_or(0, |(first, _)| (first - window.d0).num_days());
    let day = chosen_day(query.day.as_deref(), today, last)?;
    let made = report
        .report(&launch, day, Freshness::Stored)
        .await
        .map_err(ApiError::from)?;

    if let Some(format) = format {
        let (media, body) = format.write(&made);
        let mut answer = HttpResponse::Ok();
        answer
            .content_type(media)
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if format == Format::Html {
            answer.insert_header((header::CONTENT_SECURITY_POLICY, STANDALONE_CSP));
        }
        return Ok(answer.body(body));
    }

    let id = &launch.launch_id;
    let here = |n: i64| format!("/launches/{id}/report?day={n}");
    let picker = picker(first, last, today, day);
    let api = format!("/v1/launches/{id}/report?day={day}");
    let title = report_html::title(&made);
    Ok(super::ok(layout::page(
        &title,
        &viewer,
        Section::Report,
        html! {
            nav.day-picker aria-label="Report days" {
                ul.pager {
                    li {
                        @if let Some(n) = picker.previous {
                            a #previous-day rel="prev" href=(here(n)) { "← " (day_label(n)) }
                        } @else {
                            span.muted { "no earlier day" }
                        }
                    }
                    li { strong { (day_label(day)) " · " (made.date) } }
                    li {
                        @if let Some(n) = picker.next {
                            a #next-day rel="next" href=(here(n)) { (day_label(n)) " →" }
                        } @else {
                            span.muted { "no later day yet" }
                        }
                    }
                }
                ul.window-days aria-label="Days of the window" {
                    @for (n, started) in &picker.window {
                        li {
                            @if *n == day {
                                a href=(here(*n)) aria-current="page" { (day_label(*n)) }
                            } @else if *started {
                                a href=(here(*n)) { (day_label(*n)) }
                            } @else {
                                span.muted title="not started yet" { (day_label(*n)) }
                            }
                        }
                    }
                }
            }
            p.formats {
                "This report as "
                a href=(format!("{}&format=md", here(day))) { "Markdown" } ", "
                a href=(format!("{}&format=html", here(day))) { "HTML" } " or "
                a href=(format!("{}&format=json", here(day))) { "JSON" }
                ". From the API, with a key: " code { "GET " (api) "&format=md|html|json" }
            }
            (report_html::sections(&made))
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_stays_within_the_launchs_days_and_never_goes_past_today() {
        // Baseline D-7..D-1, window D0..D+14, today D+4.
        let at = |day| picker(-7, 14, 4, day);
        assert_eq!((at(1).previous, at(1).next), (Some(0), Some(2)));
        assert_eq!((at(-7).previous, at(-7).next), (None, Some(-6)));
        assert_eq!((at(4).previous, at(4).next), (Some(3), None));
        assert_eq!(at(0).window.len(), 15);
        assert_eq!(at(0).window[4], (4, true));
        assert_eq!(at(0).window[5], (5, false));
        // Once the window is over, its last day is the newest.
        let over = picker(-7, 14, 20, 14);
        assert_eq!((over.previous, over.next), (Some(13), None));
        assert!(over.window.iter().all(|(_, started)| *started));
    }

    #[test]
    fn the_day_is_a_whole_number_in_range_or_today() {
        assert_eq!(chosen_day(None, 4, 14).unwrap(), 4);
        assert_eq!(chosen_day(Some(""), 20, 14).unwrap(), 14);
        assert_eq!(chosen_day(Some("-2"), 4, 14).unwrap(), -2);
        assert_eq!(chosen_day(Some("+3"), 4, 14).unwrap(), 3);
        for bad in ["D+1", "1.5", "9999"] {
            let error = chosen_day(Some(bad), 4, 14).unwrap_err();
            assert_eq!(error.field(), Some("day"), "{bad}");
        }
        assert_eq!(chosen_format(Some("md")).unwrap(), Some(Format::Md));
        assert_eq!(
            chosen_format(Some("pdf")).unwrap_err().field(),
            Some("format")
        );
    }
}
