//! The report for people: Markdown ([`markdown`]) and a standalone HTML page
//! ([`html`]), both from the [`DailyReport`](crate::document::DailyReport)
//! alone, so a stored report renders as it did the day it was made. The
//! helpers below keep numbers, p-values and durations written the same way in
//! both.

pub mod html;
pub mod markdown;

use serde::Deserialize;

use crate::document::DailyReport;
use crate::judge::Verdict;
use crate::policy::Call;

/// How the report is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Md,
    Html,
}

impl Format {
    /// `format=` wins; else the first of `Accept` that names Markdown or HTML; else JSON.
    pub fn negotiate(asked: Option<Format>, accept: Option<&str>) -> Format {
        if let Some(format) = asked {
            return format;
        }
        let accept = accept.unwrap_or_default();
        for media in accept
            .split(',')
            .map(|m| m.split(';').next().unwrap_or("").trim())
        {
            match media {
                "application/json" => return Format::Json,
                "text/markdown" => return Format::Md,
                "text/html" => return Format::Html,
                _ => {}
            }
        }
        Format::Json
    }

    /// The report written out, with its media type.
    pub fn write(self, report: &DailyReport) -> (&'static str, String) {
        match self {
            Format::Json => (
                "application/json",
                serde_json::to_string(report).unwrap_or_default(),
            ),
            Format::Md => ("text/markdown; charset=utf-8", markdown::render(report)),
            Format::Html => ("text/html; charset=utf-8", html::render(report)),
        }
    }
}

pub fn call_label(call: Call) -> &'static str {
    match call {
        Call::Go => "go",
        Call::Hold => "hold",
        Call::RollBack => "roll back",
    }
}

pub fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Better => "better",
        Verdict::Worse => "worse",
        Verdict::NoChange => "no change",
        Verdict::NotEnoughData => "not enough data",
    }
}

/// `D0`, `D+3`, `D-2`.
pub fn day_label(day: i64) -> String {
    if day == 0 {
        "D0".into()
    } else {
        format!("D{day:+}")
    }
}

/// Up to two decimals, without trailing zeros.
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A fraction as a percentage: 0.425 -> `42.5 %`.
pub fn percent(fraction: f64) -> String {
    format!("{} %", number(fraction * 100.0))
}

pub fn pvalue(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// `45 s`, `12 min`, `2 h 05 min`.
pub fn seconds(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_the_same_everywhere() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.126), "0.13");
        assert_eq!(number(-0.001), "0");
        assert_eq!(percent(0.425), "42.5 %");
        assert_eq!(pvalue(0.0223), "0.022");
        assert_eq!(pvalue(0.00001), "< 0.001");
        assert_eq!(seconds(45.2), "45 s");
        assert_eq!(seconds(750.0), "12 min");
        assert_eq!(seconds(7500.0), "2 h 05 min");
        assert_eq!(day_label(0), "D0");
        assert_eq!(day_label(3), "D+3");
        assert_eq!(day_label(-2), "D-2");
    }
}
