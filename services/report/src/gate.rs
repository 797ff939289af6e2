//! Rollout stage gates: before a canary goes from 1 % to 10 % (and on), the
//! new release is compared with the old one over the same window, metric by
//! metric (error ratio, latency quantiles, conversion KPIs), with the same
//! judge as the KPIs ([`crate::judge`]): the stage fails when any metric is
//! significantly worse by at least its minimum effect, passes when none is and
//! every metric had enough values, and otherwise has `not_enough_data`.
//!
//! Comparing releases over the same window (rather than the new release with
//! last week) takes out the time of day, the weekday and the traffic mix,
//! which is what makes a canary's small sample enough.

use serde::Serialize;

use crate::judge::{Direction, JudgeSettings, Judgement, Sample, Verdict, judge};

/// One metric's values per interval for each release, over the same window.
#[derive(Debug, Clone)]
pub struct GateMetric<'a> {
    pub name: &'a str,
    pub direction: Direction,
    pub min_effect: f64,
    pub new_release: &'a [f64],
    pub old_release: &'a [f64],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateVerdict {
    Pass,
    Fail,
    NotEnoughData,
}

impl GateVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Pass => "pass",
            GateVerdict::Fail => "fail",
            GateVerdict::NotEnoughData => "not_enough_data",
        }
    }
}

/// A stage's verdict and the judgement of each metric it rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub verdict: GateVerdict,
    pub metrics: Vec<Judgement>,
}

pub fn stage_gate(metrics: &[GateMetric<'_>], settings: JudgeSettings) -> Gate {
    let samples: Vec<Sample<'_>> = metrics
        .iter()
        .map(|m| Sample {
            kpi: m.name,
            direction: m.direction,
            min_effect: m.min_effect,
            launch: m.new_release,
            baseline: m.old_release,
        })
        .collect();
    let judgements = judge(&samples, settings);
    let verdict = if judgements.iter().any(|j| j.verdict == Verdict::Worse) {
        GateVerdict::Fail
    } else if judgements.is_empty()
        || judgements
            .iter()
            .any(|j| j.verdict == Verdict::NotEnoughData)
    {
        GateVerdict::NotEnoughData
    } else {
        GateVerdict::Pass
    };
    Gate {
        verdict,
        metrics: judgements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-minute error ratios around `level`, with some noise.
    fn ratios(level: f64, minutes: usize, seed: u64) -> Vec<f64> {
        (0..minutes as u64)
            .map(|m| level * (1.0 + 0.2 * (((m * 7 + seed * 13) % 11) as f64 / 10.0 - 0.5)))
            .collect()
    }

    fn error_ratio<'a>(new: &'a [f64], old: &'a [f64]) -> GateMetric<'a> {
        GateMetric {
            name: "error_ratio",
            direction: Direction::LowerIsBetter,
            min_effect: 0.10,
            new_release: new,
            old_release: old,
        }
    }

    #[test]
    fn a_canary_with_a_worse_error_ratio_fails_and_an_equal_one_passes() {
        let old = ratios(0.004, 60, 1);
        let worse = ratios(0.009, 60, 2);
        let same = ratios(0.004, 60, 3);
        let gate = stage_gate(&[error_ratio(&worse, &old)], JudgeSettings::default());
        assert_eq!(gate.verdict, GateVerdict::Fail);
        assert_eq!(gate.metrics[0].verdict, Verdict::Worse);
        let gate = stage_gate(&[error_ratio(&same, &old)], JudgeSettings::default());
        assert_eq!(gate.verdict, GateVerdict::Pass, "{gate:?}");
    }

    #[test]
    fn a_canary_too_young_to_judge_has_not_enough_data() {
        let old = ratios(0.004, 60, 1);
        let young = ratios(0.004, 3, 2);
        let gate = stage_gate(&[error_ratio(&young, &old)], JudgeSettings::default());
        assert_eq!(gate.verdict, GateVerdict::NotEnoughData);
        let gate = stage_gate(&[], JudgeSettings::default());
        assert_eq!(gate.verdict, GateVerdict::NotEnoughData);
    }
}
