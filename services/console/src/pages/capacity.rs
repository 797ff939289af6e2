//! The capacity page (`/capacity`, scope `read`): live headroom and the
//! scaling plan of every service with a load test baseline, and the recorded
//! load test runs with their plot, knee and maximum sustainable rate.
//!
//! Reads go through [`CapacityState`], the same domain calls as
//! `GET /v1/capacity/headroom` (the configured window, the baseline's
//! replicas, the live peak as the forecast). Each run's plot is drawn by
//! `assets/console.js` (uPlot) from a `<script type="application/json"
//! data-chart>`; the same figures are in a table beside it, for screen readers
//! and for browsers without JavaScript.

use actix_web::{HttpResponse, web};
use hypercare_capacity::CapacityState;
use hypercare_capacity::headroom::Headroom;
use hypercare_capacity::runs::Run;
use hypercare_http::auth::Scope;
use maud::{Markup, html};

use super::alerts::local_time;
use super::zone::launch_zone;
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;
use crate::shell;

/// Runs the page shows, newest first.
const RUNS_SHOWN: u32 = 10;

fn rate(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0} req/s")
    } else {
        format!("{rps:.1} req/s")
    }
}

fn percent(p: f64) -> String {
    format!("{p:.1} %")
}

pub async fn show(
    viewer: Viewer,
    state: web::Data<CapacityState>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let tz = launch_zone(&state.store).await?;
    let headroom = state
        .headroom_of_every_service()
        .await
        .map_err(hypercare_http::ApiError::from)?;
    let runs = state
        .runs(RUNS_SHOWN)
        .await
        .map_err(hypercare_http::ApiError::from)?;
    let warning = state.settings.warning_headroom_percent;
    Ok(super::ok(layout::page(
        "Capacity",
        &viewer,
        Section::Capacity,
        html! {
            p.muted {
                "Times are in " strong { (tz.name()) } " (the launch's time zone). Live peaks are taken over the last "
                (state.settings.window_minutes) " minutes; the plan runs each replica at "
                (percent(state.settings.target_utilisation * 100.0)) " of its capacity."
            }
            section aria-labelledby="headroom-title" {
                h2 #headroom-title { "Live headroom" }
                @if headroom.is_empty() {
                    p.muted {
                        "No service has a load test baseline yet: record one with "
                        code { "hypercare loadtest run <scenario> --record-to <clickhouse url> --service <name>" } "."
                    }
                } @else {
                    div.scroll tabindex="0" role="region" aria-label="Live headroom" {
                        table #headroom aria-labelledby="headroom-title" {
                            thead { tr {
                                th scope="col" { "Service" }
                                th scope="col" { "Live peak" }
                                th scope="col" { "Capacity" }
                                th scope="col" { "Headroom" }
                                th scope="col" { "Scaling plan" }
                            } }
                            tbody {
                                @for h in &headroom {
                                    (headroom_row(h, warning, tz))
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="runs-title" {
                h2 #runs-title { "Load test runs" }
                @if runs.is_empty() {
                    p.muted { "No load test run is recorded." }
                }
                @for (i, run) in runs.iter().enumerate() {
                    (run_section(i, run, tz))
                }
            }
        },
    )))
}

fn headroom_row(h: &Headroom, warning: f64, tz: chrono_tz::Tz) -> Markup {
    let (class, word) = if h.headroom_percent < 0.0 {
        ("critical", "over capacity")
    } else if h.warning || h.headroom_percent < warning {
        ("warning", "low")
    } else {
        ("ok", "ok")
    };
    let plan = &h.scaling_plan;
    html! {
        tr data-service=(h.service) {
            th scope="row" { (h.service) }
            td {
                (rate(h.peak_rps))
                @if let Some(at) = h.peak_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
                    br; span.muted { "at " (local_time(at.timestamp_millis().max(0) as u64, tz)) }
                }
            }
            td {
                (rate(h.capacity_rps))
                br; span.muted { (h.replicas) " × " (rate(h.per_replica_rps)) }
            }
            td.headroom {
                strong { (percent(h.headroom_percent)) } " "
                span class=(format!("status {class}")) { (word) }
            }
            td {
                (plan.replicas) " replica" @if plan.replicas != 1 { "s" }
                " for a peak of " (rate(plan.forecast_peak_rps))
                br; span.muted { (percent(plan.spare_percent)) " spare" }
            }
        }
    }
}

fn run_section(i: usize, run: &Run, tz: chrono_tz::Tz) -> Markup {
    let s = &run.summary;
    let chart_id = format!("run-chart-{i}");
    let title_id = format!("run-{i}-title");
    let offered: Vec<f64> = run.steps.iter().map(|p| p.offered_rps).collect();
    let spec = serde_json::json!({
        "time": false,
        "xLabel": "offered req/s",
        "series": [
            {"label": "achieved req/s", "stroke": "#0b5cad", "scale": "rps"},
            {"label": "offered req/s", "stroke": "#545d68", "dash": [4, 4], "width": 1, "scale": "rps"},
            {"label": "p99 ms", "stroke": "#a40e26", "scale": "ms"},
        ],
        "axes": [
            {"label": "req/s", "scale": "rps"},
            {"label": "p99 ms", "scale": "ms", "side": 1},
        ],
        "data": [
            offered,
            run.steps.iter().map(|p| p.achieved_rps).collect::<Vec<_>>(),
            offered,
            run.steps.iter().map(|p| p.p99_ms).collect::<Vec<_>>(),
        ],
    });
    let max = (s.max_sustainable_rps > 0.0).then_some(s.max_sustainable_rps);
    html! {
        article.card.run data-run=(s.run_id) aria-labelledby=(title_id) {
            h3 #(title_id) { (s.service) " · " (s.scenario) " · " (local_time(u64::from(s.started_at) * 1000, tz)) }
            dl.figures {
                div { dt { "Maximum sustainable rate" } dd.max-rate { (max.map_or_else(|| "none found".to_owned(), rate)) } }
                div { dt { "Knee" } dd { (s.knee_rps.map_or_else(|| "none found".to_owned(), rate)) } }
                div { dt { "p99 (SLO)" } dd { (format!("{:.0} ms ({:.0} ms)", s.p99_ms, s.slo_p99_ms)) } }
                div { dt { "Requests" } dd { (s.requests) ", " (percent(s.error_rate * 100.0)) " errors" } }
                div { dt { "Replicas" } dd { (s.replicas) } }
                div { dt { "Thresholds" } dd {
                    @if s.thresholds_passed == 1 { span.status.ok { "passed" } } @else { span.status.critical { "broken" } }
                } }
            }
            @if !run.steps.is_empty() {
                div.chart #(chart_id) role="img"
                    aria-label=(format!("Achieved rate and p99 latency against offered rate, run {}; the figures are in the table below", s.run_id)) {}
                script type="application/json" data-chart=(chart_id) { (shell::json_script(&spec)) }
                div.scroll tabindex="0" role="region" aria-label=(format!("Steps of run {}", s.run_id)) {
                    table aria-label=(format!("Steps of run {}", s.run_id)) {
                        thead { tr {
                            th scope="col" { "Step" }
                            th scope="col" { "Offered" }
                            th scope="col" { "Achieved" }
                            th scope="col" { "Errors" }
                            th scope="col" { "p50" }
                            th scope="col" { "p99" }
                            th scope="col" { "Note" }
                        } }
                        tbody {
                            @for p in &run.steps {
                                tr {
                                    th scope="row" { (p.step) }
                                    td { (rate(p.offered_rps)) }
                                    td { (rate(p.achieved_rps)) }
                                    td { (percent(p.error_rate * 100.0)) }
                                    td { (format!("{:.1} ms", p.p50_ms)) }
                                    td { (format!("{:.1} ms", p.p99_ms)) }
                                    td {
                                        @if s.knee_rps == Some(p.offered_rps) { "knee " }
                                        @if max == Some(p.offered_rps) { "maximum sustainable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted { "Run " code { (s.run_id) } }
        }
    }
}
