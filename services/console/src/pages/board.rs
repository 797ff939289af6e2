//! The board (`/`), what the product owner opens every morning: the launch
//! (name, release, D+N in its time zone, the rollout stage), the rollback
//! recommendation with its evidence when there is one, and a tile per KPI
//! (value, target, status in colour and in words, delta vs baseline, trend,
//! a sparkline of the launch's days).
//!
//! Data flow: [`KpiState::board_on`] (the same call as `GET /v1/kpis`),
//! [`KpiState::launch`] and [`KpiState::days`] (`GET /v1/launches/{id}/days`,
//! the sparklines), [`AlertState::active`] and
//! [`hypercare_alerts::rollback::recommend`] (`GET /v1/alerts`); rendered by
//! [`super::figures`]. The page refreshes its live part every 30 s with htmx
//! (`GET /board/tiles`, which answers the whole page to a browser without
//! JavaScript). A key without `read` goes to its own start page: the ticket
//! queue for a support key.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::DateTime;
use chrono_tz::Tz;
use hypercare_alerts::AlertState;
use hypercare_alerts::rollback::{self, RollbackState};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::board::{Board, BoardEntry};
use hypercare_kpis::calendar::local_date;
use hypercare_kpis::definition::Kpi;
use hypercare_kpis::launch::{LaunchDays, LaunchRow, Stage};
use hypercare_kpis::{KpiError, KpiState};
use maud::{Markup, html};

use super::figures::{self, status_class, status_symbol, status_word};
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;

/// The current launch, none before one is declared.
pub async fn current_launch(kpis: &KpiState) -> Result<Option<LaunchRow>, ConsoleError> {
    match kpis.launch("current").await {
        Ok(launch) => Ok(Some(launch)),
        Err(KpiError::NotFound(_)) => Ok(None),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// Every KPI definition, by id.
pub async fn definitions(kpis: &KpiState) -> BTreeMap<String, Kpi> {
    kpis.definitions()
        .all()
        .await
        .into_iter()
        .map(|k| (k.id.clone(), k))
        .collect()
}

/// What the board shows.
struct Live {
    board: Board,
    definitions: BTreeMap<String, Kpi>,
    launch: Option<LaunchRow>,
    days: Option<LaunchDays>,
    rollback: Option<Markup>,
    now: u64,
}

async fn load(req: &HttpRequest, kpis: &KpiState) -> Result<Live, ConsoleError> {
    let launch = current_launch(kpis).await?;
    let tz = super::zone::launch_tz(launch.as_ref());
    // The three reads are independent: the page waits for the slowest, not
    // for their sum.
    let board = async { kpis.board_on(None, false).await.map_err(ApiError::from) };
    let days = async {
        match &launch {
            Some(l) => kpis
                .days(&l.launch_id)
                .await
                .map(Some)
                .map_err(ApiError::from),
            None => Ok(None),
        }
    };
    let rollback = async {
        match req.app_data::<web::Data<AlertState>>() {
            Some(alerts) => {
                let open = alerts.board(None, None).await.map_err(ApiError::from)?;
                let recommendation = rollback::recommend(&open.alerts, open.rules);
                Ok::<_, ApiError>(
                    (recommendation.state == RollbackState::RollbackRecommended)
                        .then(|| rollback_banner(&recommendation, tz)),
                )
            }
            None => Ok(None),
        }
    };
    let (board, days, rollback) = futures_util::future::join3(board, days, rollback).await;
    let (board, days, rollback) = (board?, days?, rollback?);
    // After the board: every KPI it shows is defined by then.
    let definitions = definitions(kpis).await;
    Ok(Live {
        board,
        definitions,
        launch,
        days,
        rollback,
        now: kpis.now_secs(),
    })
}

pub async fn show(
    req: HttpRequest,
    viewer: Viewer,
    kpis: web::Data<KpiState>,
) -> Result<HttpResponse, ConsoleError> {
    if !viewer.can(Scope::Read) {
        if viewer.can(Scope::Support) {
            return Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/tickets"))
                .finish());
        }
        return Ok(super::home::show(viewer).await);
    }
    viewer.require(Scope::Read)?;
    let live = load(&req, &kpis).await?;
    Ok(super::ok(layout::page(
        "Board",
        &viewer,
        Section::Board,
        live_part(&live),
    )))
}

/// The live part alone for htmx; the whole page for a browser without it.
pub async fn tiles(
    req: HttpRequest,
    viewer: Viewer,
    kpis: web::Data<KpiState>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let live = load(&req, &kpis).await?;
    if req.headers().contains_key("hx-request") {
        return Ok(super::ok(live_part(&live)));
    }
    Ok(super::ok(layout::page(
        "Board",
        &viewer,
        Section::Board,
        live_part(&live),
    )))
}

fn live_part(live: &Live) -> Markup {
    let tz: Tz = live.board.tz.parse().unwrap_or(chrono_tz::UTC);
    html! {
        div #board hx-get="/board/tiles" hx-trigger="every 30s" hx-swap="outerHTML" {
            (launch_banner(live, tz))
            @if let Some(banner) = &live.rollback { (banner) }
            p.muted #board-day {
                (board_day(&live.board))
                " Updated " (figures::local_time(live.now, tz))
                "; refreshes every 30 s. "
                a href="/" { "Refresh now" }
            }
            @if live.board.kpis.is_empty() {
                p { "No KPI is defined yet (" code { "PUT /v1/kpis/{id}" } " or " code { "kpis.file" } ")." }
            }
            div.tiles {
                @for entry in &live.board.kpis {
                    (tile(entry, live.definitions.get(&entry.id), live.days.as_ref()))
                }
            }
        }
    }
}

fn board_day(board: &Board) -> String {
    let date = board
        .date
        .parse()
        .map(figures::short_date)
        .unwrap_or_else(|_| board.date.clone());
    match figures::pace_time(&board.comparison) {
        Some(time) => format!(
            "{date}, so far: today up to {time} against the baseline days up to the same time ({}).",
            board.tz
        ),
        None => format!(
            "{date}, whole day against whole baseline days ({}).",
            board.tz
        ),
    }
}

fn launch_banner(live: &Live, tz: Tz) -> Markup {
    let Some(launch) = &live.launch else {
        return html! {
            section.banner.info aria-label="Launch" {
                "No launch is declared yet: the board shows today in UTC, without a baseline."
            }
        };
    };
    let today = local_date(live.now, tz);
    let d0 = local_date(launch.d0_secs, tz);
    let stages: Vec<Stage> = serde_json::from_str(&launch.stages).unwrap_or_default();
    let stage = figures::current_stage(&stages, live.now);
    html! {
        section.banner.info #launch aria-label="Launch" {
            strong { (launch.name) } " · release " strong { (launch.release) }
            " · " strong #launch-day { (figures::day_of_launch(d0, today)) }
            " (" (figures::local_time(live.now, tz)) ")"
            " · rollout stage: "
            @match stage {
                Some(s) => { strong #launch-stage { (s.name) } " (" (s.percent) " % of traffic)" }
                None => "not started",
            }
            " · " a href=(format!("/launches/{}/days", launch.launch_id)) { "Launch days" }
        }
    }
}

fn rollback_banner(recommendation: &rollback::Recommendation<'_>, tz: Tz) -> Markup {
    html! {
        section.banner.critical #rollback aria-labelledby="rollback-title" {
            h2 #rollback-title { "Rollback recommended" }
            p { "A rule marked as a rollback trigger is firing. Evidence:" }
            ul {
                @for e in &recommendation.evidence {
                    li {
                        strong { (e.rule) }
                        @if let Some(summary) = e.summary { ": " (summary) }
                        " — value " (e.value)
                        @if let Some(since) = e.since.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
                            ", firing since " (figures::local_time(since.timestamp().max(0) as u64, tz))
                        }
                        @if !e.labels.is_empty() {
                            " ("
                            @for (i, (k, v)) in e.labels.iter().enumerate() {
                                @if i > 0 { ", " }
                                (k) "=" (v)
                            }
                            ")"
                        }
                        @if let Some(condition) = e.condition {
                            br;
                            span.muted { "Condition: " code { (serde_json::to_string(condition).unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
    }
}

fn tile(entry: &BoardEntry, kpi: Option<&Kpi>, days: Option<&LaunchDays>) -> Markup {
    // The definitions are read after the board and KPIs are never removed,
    // so every entry has one; a tile without it could not format its value.
    let Some(kpi) = kpi else {
        return html! {};
    };
    let class = status_class(entry.status);
    let title_id = format!("kpi-{}", entry.id);
    let window: Vec<Option<f64>> = days
        .map(|d| {
            d.days
                .iter()
                .map(|day| day.kpis.get(&entry.id).and_then(|v| v.value))
                .collect()
        })
        .unwrap_or_default();
    let spark_label = match days {
        Some(d) => format!(
            "{} per day from {} to {}",
            entry.title,
            d.days.first().map_or("", |x| x.day.as_str()),
            d.days.last().map_or("", |x| x.day.as_str())
        ),
        None => String::new(),
    };
    html! {
        article.tile.(class) data-kpi=(entry.id) aria-labelledby=(title_id) {
            h2 #(title_id) { a href=(format!("/kpis/{}", entry.id)) { (entry.title) } }
            p.value { (figures::with_unit(entry.value, kpi)) }
            p { span.status.(class) { (status_symbol(entry.status)) " " (status_word(entry.status)) } }
            dl.facts {
                dt { "Target" }
                dd.target {
                    @match (entry.pace, figures::pace_time(&entry.comparison)) {
                        (Some(pace), Some(time)) => {
                            (figures::with_unit(Some(pace.target), kpi)) " by " (time)
                            " (" (figures::with_unit(Some(entry.target), kpi)) " for the day)"
                        }
                        _ => (figures::with_unit(Some(entry.target), kpi)),
                    }
                }
                dt { "Baseline" }
                dd.delta {
                    (figures::delta_text(entry.delta_vs_baseline_pct))
                    @if let Some(b) = entry.baseline { " (" (figures::approx_with_unit(b, kpi)) ")" }
                }
                dt { "Trend" }
                dd.trend { (figures::trend_text(entry.trend, entry.trend_is_good)) }
            }
            @if let Some(svg) = figures::sparkline(&window, entry.target, &spark_label) { (svg) }
        }
    }
}
