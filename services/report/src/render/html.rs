//! The report as one standalone HTML page (its own styles, no script): what
//! the API answers with `format=html`, the folder delivery writes, and a
//! browser prints. The console shows the same sections in its own layout.

use crate::document::DailyReport;
use crate::render::{call_label, day_label};

pub fn render(report: &DailyReport) -> String {
    // A first cut: the Markdown inside a page. Replaced by the real page.
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} {}: {}</title></head>\
         <body><h1>{} {}: call {}</h1><pre>{}</pre></body></html>",
        escape(&report.launch.name),
        day_label(report.day),
        escape(&report.date),
        escape(&report.launch.name),
        day_label(report.day),
        call_label(report.call.call),
        escape(&super::markdown::render(report))
    )
}
