//! The target's resource use during each step, so that a baseline says what a
//! rate costs: CPU and RSS of a process on this host (from `/proc/<pid>`), and
//! values scraped from the target's Prometheus `/metrics` at the start and end of
//! each step (counters ending in `_total` also give a per-second rate).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::HttpClient;

/// Linux reports process CPU time in clock ticks of USER_HZ, 100 on every
/// architecture we run on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Metrics scraped when none are named.
pub const DEFAULT_SCRAPED: [&str; 2] =
    ["process_cpu_seconds_total", "process_resident_memory_bytes"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// CPU cores busy on average (1.0 = one core), from /proc or the scraped
    /// `process_cpu_seconds_total`.
    pub cpu_cores: Option<f64>,
    /// Resident memory at the end of the step, in bytes.
    pub rss_bytes: Option<u64>,
    /// Scraped values at the end of the step (summed over label sets), and
    /// `<name>:rate` per second over the step for `_total` counters.
    pub scraped: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceProbe {
    pub pid: Option<u32>,
    /// e.g. `http://127.0.0.1:8080/metrics`.
    pub scrape_url: Option<String>,
    pub scrape_metrics: Vec<String>,
}

pub struct Sampling {
    at: Instant,
    cpu_ticks: Option<u64>,
    scrape: Option<JoinHandle<Option<BTreeMap<String, f64>>>>,
}

impl ResourceProbe {
    pub fn start(&self, client: &HttpClient) -> Sampling {
        Sampling {
            at: Instant::now(),
            cpu_ticks: self.pid.and_then(cpu_ticks),
            scrape: self.spawn_scrape(client),
        }
    }

    /// Takes the end readings now; the returned future completes the scrape.
    pub fn finish(
        &self,
        client: &HttpClient,
        start: Sampling,
    ) -> impl Future<Output = Resources> + use<> {
        let secs = start.at.elapsed().as_secs_f64().max(1e-9);
        let end_ticks = self.pid.and_then(cpu_ticks);
        let rss = self.pid.and_then(rss_bytes);
        let end_scrape = self.spawn_scrape(client);
        async move {
            let mut resources = Resources {
                cpu_cores: match (start.cpu_ticks, end_ticks) {
                    (Some(a), Some(b)) => {
                        Some(b.saturating_sub(a) as f64 / CLOCK_TICKS_PER_SEC / secs)
                    }
                    _ => None,
                },
                rss_bytes: rss,
                scraped: BTreeMap::new(),
            };
            let begin = match start.scrape {
                Some(task) => task.await.ok().flatten(),
                None => None,
            };
            let end = match end_scrape {
                Some(task) => task.await.ok().flatten(),
                None => None,
            };
            if let Some(end) = end {
                for (name, value) in &end {
                    // A counter missing from a successful first scrape had not
                    // counted anything yet (labelled counters appear on first use).
                    if name.ends_with("_total")
                        && let Some(before) =
                            begin.as_ref().map(|b| b.get(name).copied().unwrap_or(0.0))
                    {
                        let rate = (value - before).max(0.0) / secs;
                        resources.scraped.insert(format!("{name}:rate"), rate);
                        if name == "process_cpu_seconds_total" && resources.cpu_cores.is_none() {
                            resources.cpu_cores = Some(rate);
                        }
                    }
                    if name == "process_resident_memory_bytes" && resources.rss_bytes.is_none() {
                        resources.rss_bytes = Some(*value as u64);
                    }
                }
                resources.scraped.extend(end);
            }
            resources
        }
    }

    fn spawn_scrape(
        &self,
        client: &HttpClient,
    ) -> Option<JoinHandle<Option<BTreeMap<String, f64>>>> {
        let url: hyper::Uri = self.scrape_url.as_ref()?.parse().ok()?;
        let client = client.clone();
        let names = if self.scrape_metrics.is_empty() {
            DEFAULT_SCRAPED.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.scrape_metrics.clone()
        };
        Some(tokio::spawn(async move {
            let request = hyper::Request::get(url)
                .body(Full::new(Bytes::new()))
                .ok()?;
            let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
                .await
                .ok()?
                .ok()?;
            let body = response.into_body().collect().await.ok()?.to_bytes();
            Some(parse_prometheus(&String::from_utf8_lossy(&body), &names))
        }))
    }
}

/// Sums of the samples of the named metrics in a Prometheus text exposition.
pub fn parse_prometheus(text: &str, names: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if !names.iter().any(|n| n == name) {
            continue;
        }
        let rest = match line[name_end..].rfind('}') {
            Some(close) if line[name_end..].starts_with('{') => &line[name_end + close + 1..],
            _ => &line[name_end..],
        };
        if let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *out.entry(name.to_owned()).or_insert(0.0) += value;
        }
    }
    out
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_samples_of_named_metrics_are_summed_over_labels() {
        let text = "# HELP x\n# TYPE http_requests_total counter\n\
            http_requests_total{code=\"200\",path=\"/a b}\"} 10\n\
            http_requests_total{code=\"500\"} 2.5 1700000000000\n\
            process_resident_memory_bytes 1048576\nother 3\n";
        let names = vec![
            "http_requests_total".to_owned(),
            "process_resident_memory_bytes".to_owned(),
        ];
        let parsed = parse_prometheus(text, &names);
        assert_eq!(parsed["http_requests_total"], 12.5);
        assert_eq!(parsed["process_resident_memory_bytes"], 1048576.0);
        assert!(!parsed.contains_key("other"));
    }

    #[test]
    fn this_process_has_cpu_time_and_rss() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_bytes(pid).unwrap() > 1024 * 1024);
    }
}
