//! The judge applied to a launch day: every KPI's complete hours of day D+N
//! against the same hours of each baseline day (D-B..D-1), in the launch's
//! time zone, judged together ([`crate::judge::judge`], Holm across KPIs).
//!
//! Values come from `KpiState::values`, the function behind the KPI series, so
//! an hour here is the hour the series route shows. Only whole hours that have
//! passed count: the hour under way would compare a part with whole hours.

use chrono::NaiveDate;
use hypercare_kpis::calendar::day_start;
use hypercare_kpis::definition::{Direction as KpiDirection, Grain};
use hypercare_kpis::launch::LaunchRow;
use hypercare_kpis::{KpiError, KpiState};
use serde::Serialize;

use crate::judge::{Direction, JudgeSettings, Judgement, Sample, judge};

/// The judge's answer for one day of a launch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayJudgement {
    pub launch: String,
    /// N of D+N (negative: a baseline day).
    pub day: i64,
    pub date: String,
    pub tz: String,
    /// Whole hours of the day judged (fewer while the day is under way).
    pub hours: u32,
    /// The family-wise false alarm rate the verdicts keep.
    pub alpha: f64,
    /// The smallest relative change worth a verdict.
    pub min_effect: f64,
    #[schema(value_type = Vec<Object>)]
    pub kpis: Vec<Judgement>,
}

/// What a verdict needs beyond the judge's own settings.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub judge: JudgeSettings,
    pub min_effect: f64,
}

/// Judges day `day` (N of D+N) of `launch` as of the KPIs' "now".
pub async fn judge_day(
    kpis: &KpiState,
    launch: &LaunchRow,
    day: i64,
    rules: Rules,
) -> Result<DayJudgement, KpiError> {
    let tz = launch.tz()?;
    let window = launch.window(tz);
    let date: NaiveDate = window.d0 + chrono::Duration::days(day);
    let start = day_start(date, tz);
    let now = kpis.now_secs();
    // Whole hours only, and never more than the day has.
    let day_end = day_start(date + chrono::Duration::days(1), tz);
    let hours = (now.min(day_end).saturating_sub(start) / 3600) as u32;
    let span = u64::from(hours) * 3600;
    let definitions = kpis.definitions().all().await;
    let mut launch_values = Vec::with_capacity(definitions.len());
    let mut baseline_values = Vec::with_capacity(definitions.len());
    for kpi in &definitions {
        let present = |values: Vec<(u64, Option<f64>)>| -> Vec<f64> {
            values.into_iter().filter_map(|(_, v)| v).collect()
        };
        let on_day = if span == 0 {
            Vec::new()
        } else {
            present(
                kpis.values(kpi, Grain::Hour, tz, start, start + span)
                    .await?,
            )
        };
        let mut baseline = Vec::new();
        if span > 0 {
            for base in window.baseline_dates() {
                let from = day_start(base, tz);
                baseline.extend(present(
                    kpis.values(kpi, Grain::Hour, tz, from, from + span).await?,
                ));
            }
        }
        launch_values.push(on_day);
        baseline_values.push(baseline);
    }
    let samples: Vec<Sample<'_>> = definitions
        .iter()
        .zip(launch_values.iter().zip(&baseline_values))
        .map(|(kpi, (launch, baseline))| Sample {
            kpi: &kpi.id,
            direction: match kpi.direction {
                KpiDirection::HigherIsBetter => Direction::HigherIsBetter,
                KpiDirection::LowerIsBetter => Direction::LowerIsBetter,
            },
            min_effect: rules.min_effect,
            launch,
            baseline,
        })
        .collect();
    Ok(DayJudgement {
        launch: launch.launch_id.clone(),
        day,
        date: date.to_string(),
        tz: tz.name().to_owned(),
        hours,
        alpha: rules.judge.alpha,
        min_effect: rules.min_effect,
        kpis: judge(&samples, rules.judge),
    })
}
