//! A launch's days (`/launches/{id}/days`, `current` for the current one):
//! the baseline days D-B..D-1 and D0..D+N down, the KPIs across, each cell
//! coloured by its status and saying it in words, linking to that KPI's hours
//! of that day.
//!
//! Data flow: [`KpiState::days`], the same call as
//! `GET /v1/launches/{id}/days` (today judged at pace, as on the board).

use actix_web::{HttpResponse, web};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::calendar::local_date;
use hypercare_kpis::launch::LaunchDay;
use hypercare_kpis::{KpiError, KpiState};
use maud::html;

use super::board::definitions;
use super::figures::{self, status_class, status_symbol, status_word};
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;

pub async fn show(
    viewer: Viewer,
    path: web::Path<String>,
    kpis: web::Data<KpiState>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let answer = match kpis.days(&path).await {
        Ok(answer) => answer,
        // The navigation links the current launch's days before any launch exists.
        Err(KpiError::NotFound(_)) if path.as_str() == "current" => {
            return Ok(super::ok(layout::page(
                "Launch days",
                &viewer,
                Section::Days,
                html! {
                    p #no-launch-days { "No launch is declared yet. Declare one with " code { "POST /v1/launches" } "; its days appear here." }
                },
            )));
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let definitions = definitions(&kpis).await;
    let launch = &answer.launch;
    let tz: chrono_tz::Tz = launch.tz.parse().unwrap_or(chrono_tz::UTC);
    let today = local_date(kpis.now_secs(), tz).to_string();
    // The columns: every KPI the days carry, in the order of the board.
    let columns: Vec<&String> = answer
        .days
        .first()
        .map(|d| d.kpis.keys().collect())
        .unwrap_or_default();
    let title = format!("{} · launch days", launch.name);
    let row = |day: &LaunchDay| {
        let is_today = day.date == today;
        let date = day
            .date
            .parse()
            .map(figures::short_date)
            .unwrap_or_else(|_| day.date.clone());
        html! {
            tr.today[is_today] {
                th scope="row" {
                    strong { (day.day) } " " (date)
                    @if day.baseline { br; span.muted { "baseline" } }
                    @if is_today { br; span.muted { "today, so far" } }
                    @if let Ok(n) = day.day.trim_start_matches('D').parse::<i64>() {
                        br;
                        a.report-link href=(format!("/launches/{}/report?day={n}", launch.id))
                          aria-label=(format!("{} report", day.day)) { "report" }
                    }
                }
                @for id in &columns {
                    @if let Some(value) = day.kpis.get(*id) {
                        td.cell.(status_class(value.status)) {
                            a href=(format!("/kpis/{id}?date={}&grain=hour", day.date)) {
                                span.word { (status_symbol(value.status)) " " (status_word(value.status)) }
                                @if let (Some(v), Some(kpi)) = (value.value, definitions.get(*id)) {
                                    " " span.num { (figures::with_unit(Some(v), kpi)) }
                                }
                            }
                        }
                    } @else {
                        td { "–" }
                    }
                }
            }
        }
    };
    Ok(super::ok(layout::page(
        &title,
        &viewer,
        Section::Days,
        html! {
            p.muted {
                "Release " strong { (launch.release) } ", D0 "
                @if let Ok(d0) = chrono::DateTime::parse_from_rfc3339(&launch.d0) {
                    (figures::local_time(d0.timestamp().max(0) as u64, tz))
                } @else { (launch.d0) }
                ". Days are local days in " strong { (launch.tz) }
                "; today is judged up to the last whole hour, as on the board. "
                "Each cell opens that KPI's hours of the day."
            }
            div.scroll tabindex="0" role="region" aria-labelledby="days-caption" {
                table.days {
                    caption #days-caption { "Each KPI per day, " (answer.days.first().map_or("", |d| d.day.as_str())) " to " (answer.days.last().map_or("", |d| d.day.as_str())) " (" (launch.tz) ")" }
                    thead {
                        tr {
                            th scope="col" { "Day" }
                            @for id in &columns {
                                th scope="col" {
                                    a href=(format!("/kpis/{id}")) {
                                        (definitions.get(*id).map_or(id.as_str(), |k| k.title.as_str()))
                                    }
                                }
                            }
                        }
                    }
                    tbody {
                        @for day in &answer.days { (row(day)) }
                    }
                }
            }
        },
    )))
}
