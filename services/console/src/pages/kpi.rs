//! A KPI (`/kpis/{id}`, optional `?date=YYYY-MM-DD` and `grain=hour|day`):
//! its series as a chart (target and warning lines, the baseline band, the
//! launch's D0 and stage marks) and as a table of the same values, then its
//! definition and every version of it.
//!
//! Data flow: [`KpiState::series`] (the same call as
//! `GET /v1/kpis/{id}/series`) for the points, [`KpiState::values`] over the
//! baseline days for the band, [`KpiState::history`] (`GET /v1/kpis/{id}`)
//! for the versions. The chart's data goes in a
//! `<script type="application/json" data-chart=...>` that `assets/console.js`
//! draws with uPlot; the table needs no script.
//!
//! Range: a `date` is that local day of the launch's time zone (per hour by
//! default), up to now; without one, the launch's baseline days to now (per
//! day by default), or the last 14 days without a launch.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate};
use hypercare_http::ApiError;
use hypercare_http::auth::Scope;
use hypercare_kpis::KpiState;
use hypercare_kpis::calendar::{day_start, local_date};
use hypercare_kpis::definition::Grain;
use hypercare_kpis::launch::Stage;
use hypercare_kpis::repository::KpiDefinitions;
use hypercare_kpis::state::SeriesRange;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::board::current_launch;
use super::figures::{self, status_class, status_symbol, status_word};
use super::zone::launch_tz;
use crate::error::ConsoleError;
use crate::layout::{self, Section};
use crate::session::Viewer;
use crate::shell;

#[derive(Debug, Deserialize)]
pub struct KpiQuery {
    date: Option<String>,
    grain: Option<String>,
}

pub async fn show(
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<KpiQuery>,
    kpis: web::Data<KpiState>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(Scope::Read)?;
    let id = path.into_inner();
    let rows = kpis.history(&id).await.map_err(ApiError::from)?;
    let definitions = KpiDefinitions::from_rows(&rows);
    let kpi = kpis
        .definitions()
        .get(&id)
        .await
        .ok_or_else(|| ApiError::not_found(format!("KPI `{id}`")))?;
    let grain = match query.grain.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some("hour") => Some(Grain::Hour),
        Some("day") => Some(Grain::Day),
        Some(_) => return Err(ApiError::invalid("grain", "must be `hour` or `day`").into()),
    };
    let date =
        match query.date.as_deref().filter(|d| !d.is_empty()) {
            None => None,
            Some(text) => Some(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
                ApiError::invalid("date", format!("is not a YYYY-MM-DD date ({e})"))
            })?),
        };
    let launch = current_launch(&kpis).await?;
    let tz = launch_tz(launch.as_ref());
    let now = kpis.now_secs();
    let window = launch.as_ref().map(|l| l.window(tz));
    let figures::ChartRange { from, to, grain } =
        figures::chart_range(date, grain, window.as_ref(), tz, now)
            .map_err(|e| ApiError::invalid(e.field, e.reason))?;
    let range = SeriesRange {
        from,
        to,
        grain: Some(grain),
        tz: Some(tz),
    };
    let series = kpis.series(&id, range).await.map_err(ApiError::from)?;
    let starts: Vec<u64> = series
        .points
        .iter()
        .map(|p| {
            p.start
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(0, |t| t.timestamp().max(0) as u64)
        })
        .collect();
    let baseline = match window.and_then(|w| w.baseline) {
        Some((first, last)) => {
            let end = day_start(last.succ_opt().unwrap_or(last), tz);
            kpis.values(&kpi, grain, tz, day_start(first, tz), end)
                .await
                .map_err(ApiError::from)?
        }
        None => Vec::new(),
    };
    let band = figures::baseline_band(&starts, &baseline, grain, tz);
    let levels = figures::levels_apply(&kpi, grain);
    let marks: Vec<serde_json::Value> = match &launch {
        Some(l) => {
            let stages: Vec<Stage> = serde_json::from_str(&l.stages).unwrap_or_default();
            figures::chart_marks(l.d0_secs, &stages, from, to)
                .into_iter()
                .map(|(x, label)| json!({"x": x, "label": label}))
                .collect()
        }
        None => Vec::new(),
    };
    let values: Vec<Option<f64>> = series.points.iter().map(|p| p.value).collect();
    let flat = |v: f64| vec![Some(v); starts.len()];
    let mut chart_series = vec![json!({"label": kpi.title, "stroke": "#0b5cad", "width": 2})];
    let mut data = vec![json!(starts), json!(values)];
    if levels {
        chart_series
            .push(json!({"label": "Target", "stroke": "#116329", "width": 1, "dash": [6, 4]}));
        data.push(json!(flat(kpi.target)));
        chart_series
            .push(json!({"label": "Warning", "stroke": "#7d4e00", "width": 1, "dash": [2, 3]}));
        data.push(json!(flat(kpi.warning)));
    }
    let has_band = band.iter().any(|(lo, _)| lo.is_some());
    if has_band {
        chart_series.push(json!({"label": "Baseline high", "stroke": "#8c959f", "width": 1}));
        data.push(json!(band.iter().map(|b| b.1).collect::<Vec<_>>()));
        chart_series.push(json!({"label": "Baseline low", "stroke": "#8c959f", "width": 1}));
        data.push(json!(band.iter().map(|b| b.0).collect::<Vec<_>>()));
    }
    let spec = json!({
        "series": chart_series,
        "data": data,
        // uPlot's series indices (1 is the KPI): the band fills between them.
        "band": has_band.then(|| [chart_series.len() - 1, chart_series.len()]),
        "marks": marks,
        "tz": tz.name(),
    });
    let grain_word = match grain {
        Grain::Hour => "hour",
        Grain::Day => "day",
    };
    let span_text = match date {
        Some(d) => format!("{} ({})", figures::short_date(d), tz.name()),
        None => format!(
            "{} to {} ({})",
            figures::short_date(local_date(from, tz)),
            figures::short_date(local_date(to.saturating_sub(1), tz)),
            tz.name()
        ),
    };
    let other_grain = match grain {
        Grain::Hour => "day",
        Grain::Day => "hour",
    };
    let switch = match date {
        Some(d) => format!("/kpis/{id}?date={d}&grain={other_grain}"),
        None => format!("/kpis/{id}?grain={other_grain}"),
    };
    let definition_json = serde_json::to_string_pretty(&definitions.definition).unwrap_or_default();
    let title = kpi.title.clone();
    let chart_id = format!("chart-{}", kpi.id);
    Ok(super::ok(layout::page(
        &title,
        &viewer,
        Section::Board,
        html! {
            p.muted {
                "Per " (grain_word) ", " (span_text) ". "
                @if levels {
                    "Target " (figures::with_unit(Some(kpi.target), &kpi))
                    ", warning at " (figures::with_unit(Some(kpi.warning), &kpi))
                    ", critical at " (figures::with_unit(Some(kpi.critical), &kpi)) ". "
                } @else {
                    "The day's levels do not apply to an hour of a count or a sum; the baseline band shows the same hour of the baseline days. "
                }
                a href=(switch) { "Per " (other_grain) }
                @if date.is_some() { " · " a href=(format!("/kpis/{id}")) { "The whole launch" } }
                @if launch.is_some() { " · " a href="/launches/current/days" { "Launch days" } }
            }
            section aria-labelledby="chart-title" {
                h2 #chart-title { "Chart" }
                div.chart #(chart_id) role="img"
                    aria-label=(format!("Chart of {} per {}; the same values are in the table below.", kpi.title, grain_word)) {}
                script type="application/json" data-chart=(chart_id) { (shell::json_script(&spec)) }
            }
            section aria-labelledby="values-title" {
                h2 #values-title { "Values" }
                div.scroll tabindex="0" role="region" aria-labelledby="values-caption" {
                    table.series {
                        caption #values-caption { (kpi.title) " per " (grain_word) ", " (span_text) }
                        thead { tr {
                            th scope="col" { "Start (" (tz.name()) ")" }
                            th scope="col" { "Value" }
                            @if levels { th scope="col" { "Status" } }
                            @if has_band { th scope="col" { "Baseline range" } }
                        } }
                        tbody {
                            @for (i, point) in series.points.iter().enumerate() {
                                tr {
                                    th scope="row" { (figures::local_time(starts[i], tz)) }
                                    td.num { (figures::with_unit(point.value, &kpi)) }
                                    @if levels {
                                        td { span.status.(status_class(point.status)) { (status_symbol(point.status)) " " (status_word(point.status)) } }
                                    }
                                    @if has_band {
                                        td { @match band[i] {
                                            (Some(lo), Some(hi)) => { (figures::number(lo, &kpi)) " – " (figures::with_unit(Some(hi), &kpi)) }
                                            _ => "–",
                                        } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="definition-title" {
                h2 #definition-title { "Definition (version " (definitions.version) ")" }
                dl.facts {
                    dt { "Id" } dd { code { (kpi.id) } }
                    @if !kpi.owner.is_empty() { dt { "Owner" } dd { (kpi.owner) } }
                    dt { "Aggregation" } dd { (serde_json::to_value(kpi.aggregation).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                    dt { "Direction" } dd { (serde_json::to_value(kpi.direction).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                    dt { "Levels" } dd {
                        "target " (figures::with_unit(Some(kpi.target), &kpi))
                        ", warning " (figures::with_unit(Some(kpi.warning), &kpi))
                        ", critical " (figures::with_unit(Some(kpi.critical), &kpi))
                    }
                }
                details {
                    summary { "The definition as stored" }
                    pre { code { (definition_json) } }
                }
                h2 #history-title { "Versions" }
                div.scroll tabindex="0" role="region" aria-labelledby="history-title" {
                    table.history {
                        thead { tr {
                            th scope="col" { "Version" }
                            th scope="col" { "When (" (tz.name()) ")" }
                            th scope="col" { "From" }
                            th scope="col" { "By" }
                            th scope="col" { "Levels" }
                        } }
                        tbody {
                            @for (v, row) in definitions.history.iter().zip(&rows).rev() {
                                tr {
                                    th scope="row" { (v.version) }
                                    td { (figures::local_time(row.at_ms / 1000, tz)) }
                                    td { (v.source) }
                                    td { (v.actor) }
                                    td {
                                        "target " (v.definition["target"]) ", warning " (v.definition["warning"])
                                        ", critical " (v.definition["critical"])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )))
}
