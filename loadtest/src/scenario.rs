//! Scenarios: what to send, how fast, and what counts as a pass.
//!
//! A scenario is a YAML file (format in `docs/loadtest.md`) or the built-in
//! `hypercare-ingest`. Loading checks everything a run needs before the first
//! request (templates, thresholds, the arrival plan), so that a typo fails in
//! milliseconds instead of after a ten-minute ramp.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{ScenarioError, ValueError};
use crate::template::Template;

/// The scenario as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// A name for reports and the recorded run.
    #[serde(default = "default_name")]
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:8080` (HTTP/1.1, no TLS).
    #[serde(default)]
    pub target: Option<String>,
    /// The service under test, as named in its metrics (`service` label): the key
    /// of recorded baselines and of the headroom API.
    #[serde(default)]
    pub service: Option<String>,
    /// Replicas of the service that served this run (capacity per replica = max / replicas).
    #[serde(default = "one")]
    pub replicas: u32,
    pub requests: Vec<RequestFile>,
    /// Constant arrival rate, requests per second (with `duration`).
    #[serde(default)]
    pub rate: Option<f64>,
    /// How long the constant rate runs, e.g. `30s`.
    #[serde(default)]
    pub duration: Option<String>,
    /// A stepped ramp instead of a constant rate.
    #[serde(default)]
    pub ramp: Option<RampFile>,
    /// Hard cap on the run's length; the plan is cut there. Default 10m.
    #[serde(default)]
    pub max_duration: Option<String>,
    /// Requests in flight at most; a request due while the cap is reached is
    /// dropped and counted as an error (never delayed). Default 2000.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Connections at most (default: as many as `max_in_flight`). Fewer connections
    /// make requests wait for one (still measured from their due time, as wrk2 does
    /// with its fixed connections) instead of opening new ones.
    #[serde(default)]
    pub connections: Option<usize>,
    /// Per-request timeout, e.g. `10s` (default); a timeout counts as an error.
    #[serde(default)]
    pub timeout: Option<String>,
    /// The latency objective used for the maximum sustainable rate.
    #[serde(default)]
    pub slo: Option<SloFile>,
    /// Conditions over the whole run, e.g. `p99 < 300ms`, `error_rate < 1%`.
    #[serde(default)]
    pub thresholds: Vec<String>,
}

fn default_name() -> String {
    "scenario".into()
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The body template is rendered this many times, joined by newlines (NDJSON batches).
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default = "one")]
    pub weight: u32,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampFile {
    pub from: f64,
    pub to: f64,
    pub steps: u32,
    pub step_duration: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    /// e.g. `300ms`. Default 300ms.
    #[serde(default)]
    pub p99: Option<String>,
    /// e.g. `1%`. Default 1%.
    #[serde(default)]
    pub error_rate: Option<String>,
}

/// One kind of request, ready to render.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub name: String,
    pub method: hyper::Method,
    pub path: Template,
    pub headers: Vec<(hyper::header::HeaderName, Template)>,
    pub body: Option<Template>,
    pub repeat: u32,
    pub weight: u32,
}

/// One step of the arrival plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub target: String,
    pub service: String,
    pub replicas: u32,
    pub requests: Vec<RequestSpec>,
    pub steps: Vec<Step>,
    pub max_in_flight: usize,
    pub connections: usize,
    pub timeout: Duration,
    pub slo_p99: Duration,
    pub slo_error_rate: f64,
    pub thresholds: Vec<Threshold>,
}

/// Command-line values that replace the scenario's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub rate: Option<f64>,
    pub duration: Option<String>,
    pub ramp: Option<String>,
    pub max_duration: Option<String>,
    pub max_in_flight: Option<usize>,
    pub connections: Option<usize>,
    pub slo_p99: Option<String>,
    pub slo_error_rate: Option<String>,
    pub service: Option<String>,
    pub replicas: Option<u32>,
    pub thresholds: Vec<String>,
}

pub const BUILTIN_INGEST: &str = "hypercare-ingest";

/// The built-in scenario: NDJSON batches of 100 events to `POST /v1/events`, with
/// the API key from `LOADTEST_API_KEY`.
pub fn builtin(name: &str) -> Result<ScenarioFile, ScenarioError> {
    match name {
        BUILTIN_INGEST => {
            let yaml = r#"
name: hypercare-ingest
target: http://127.0.0.1:8080
service: hypercare
requests:
  - name: events batch
    method: POST
    path: /v1/events
    headers:
      content-type: application/x-ndjson
      authorization: "Bearer {{env LOADTEST_API_KEY}}"
    body: '{"event":"loadtest_event","event_id":"{{uuid}}","user_id":"u-{{rand_int 1 100000}}","value":{{rand_int 1 100}},"properties":{"seq":{{seq}},"source":"loadtest"}}'
    repeat: 100
rate: 50
duration: 30s
slo: {p99: 300ms, error_rate: 1%}
"#;
            parse_file(yaml)
        }
        other => Err(ScenarioError::UnknownBuiltin {
            name: other.to_owned(),
            known: BUILTIN_INGEST,
        }),
    }
}

pub fn parse_file(text: &str) -> Result<ScenarioFile, ScenarioError> {
    serde_norway::from_str(text).map_err(|e| ScenarioError::Yaml(e.to_string()))
}

impl ScenarioFile {
    /// Checks the scenario and applies `overrides`; errors name the field.
    pub fn check(mut self, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
        if let Some(target) = &overrides.target {
            self.target = Some(target.clone());
        }
        if overrides.rate.is_some() || overrides.ramp.is_some() {
            self.rate = overrides.rate;
            self.ramp = None;
        }
        if let Some(duration) = &overrides.duration {
            self.duration = Some(duration.clone());
        }
        if let Some(ramp) = &overrides.ramp {
            self.ramp = Some(parse_ramp(ramp).map_err(ScenarioError::Ramp)?);
        }
        if let Some(max) = &overrides.max_duration {
            self.max_duration = Some(max.clone());
        }
        if let Some(cap) = overrides.max_in_flight {
            self.max_in_flight = Some(cap);
        }
        if let Some(connections) = overrides.connections {
            self.connections = Some(connections);
        }
        if let Some(service) = &overrides.service {
            self.service = Some(service.clone());
        }
        if let Some(replicas) = overrides.replicas {
            self.replicas = replicas;
        }
        self.thresholds.extend(overrides.thresholds.iter().cloned());

        let target = self.target.ok_or_else(|| {
            ScenarioError::field("target", "missing (in the scenario or with --target)")
        })?;
        let target = target.trim_end_matches('/').to_owned();
        if !target.starts_with("http://") {
            return Err(ScenarioError::field(
                format!("target `{target}`"),
                "only http:// targets are supported",
            ));
        }
        if self.requests.is_empty() {
            return Err(ScenarioError::field(
                "requests",
                "at least one request is needed",
            ));
        }
        if self.replicas == 0 {
            return Err(ScenarioError::field("replicas", "must be at least 1"));
        }
        let requests = self
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| check_request(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        if requests.iter().all(|r| r.weight == 0) {
            return Err(ScenarioError::field(
                "requests",
                "at least one weight must be above 0",
            ));
        }

        let mut steps = match (self.rate, &self.ramp) {
            (Some(_), Some(_)) => {
                return Err(ScenarioError::field("rate and ramp", "give one of them"));
            }
            (None, None) => return Err(ScenarioError::field("rate or ramp", "one is needed")),
            (Some(rate), None) => {
                let duration = parse_duration(self.duration.as_deref().unwrap_or("30s"))
                    .map_err(ScenarioError::value("duration"))?;
                vec![Step { rate, duration }]
            }
            (None, Some(ramp)) => {
                let duration = parse_duration(&ramp.step_duration)
                    .map_err(ScenarioError::value("ramp.step_duration"))?;
                if ramp.steps == 0 {
                    return Err(ScenarioError::field("ramp.steps", "must be at least 1"));
                }
                (0..ramp.steps)
                    .map(|i| {
                        let rate = if ramp.steps == 1 {
                            ramp.from
                        } else {
                            ramp.from
                                + (ramp.to - ramp.from) * f64::from(i) / f64::from(ramp.steps - 1)
                        };
                        Step { rate, duration }
                    })
                    .collect()
            }
        };
        if let Some(bad) = steps.iter().find(|s| !(s.rate > 0.0 && s.rate.is_finite())) {
            return Err(ScenarioError::field(
                "rate",
                format!("{} is not a positive number", bad.rate),
            ));
        }
        if steps.iter().any(|s| s.duration.is_zero()) {
            return Err(ScenarioError::field("duration", "must be above 0"));
        }
        let max_duration = parse_duration(self.max_duration.as_deref().unwrap_or("10m"))
            .map_err(ScenarioError::value("max_duration"))?;
        let mut total = Duration::ZERO;
        steps.retain_mut(|step| {
            let left = max_duration.saturating_sub(total);
            step.duration = step.duration.min(left);
            total += step.duration;
            !step.duration.is_zero()
        });

        let timeout = parse_duration(self.timeout.as_deref().unwrap_or("10s"))
            .map_err(ScenarioError::value("timeout"))?;
        let mut slo = self.slo.unwrap_or(SloFile {
            p99: None,
            error_rate: None,
        });
        if let Some(p99) = &overrides.slo_p99 {
            slo.p99 = Some(p99.clone());
        }
        if let Some(rate) = &overrides.slo_error_rate {
            slo.error_rate = Some(rate.clone());
        }
        let slo_p99 = parse_duration(slo.p99.as_deref().unwrap_or("300ms"))
            .map_err(ScenarioError::value("slo.p99"))?;
        let slo_error_rate = parse_fraction(slo.error_rate.as_deref().unwrap_or("1%"))
            .map_err(ScenarioError::value("slo.error_rate"))?;
        let max_in_flight = self.max_in_flight.unwrap_or(2000).max(1);
        let thresholds = self
            .thresholds
            .iter()
            .map(|t| {
                Threshold::parse(t).map_err(|error| ScenarioError::Threshold {
                    text: t.clone(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario {
            name: self.name,
            target,
            service: self.service.unwrap_or_default(),
            replicas: self.replicas,
            requests,
            steps,
            max_in_flight,
            connections: self
                .connections
                .unwrap_or(max_in_flight)
                .clamp(1, max_in_flight),
            timeout,
            slo_p99,
            slo_error_rate,
            thresholds,
        })
    }
}

fn check_request(index: usize, r: RequestFile) -> Result<RequestSpec, ScenarioError> {
    let at = |field: &str| format!("requests[{index}].{field}");
    let method =
        hyper::Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            ScenarioError::field(
                at("method"),
                format!("`{}` is not an HTTP method", r.method),
            )
        })?;
    if !r.path.starts_with('/') {
        return Err(ScenarioError::field(at("path"), "must start with /"));
    }
    let path = Template::parse(&r.path).map_err(ScenarioError::template(at("path")))?;
    let headers = r
        .headers
        .iter()
        .map(|(name, value)| {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ScenarioError::field(at("headers"), format!("`{name}` is not a header name"))
            })?;
            let value = Template::parse(value).map_err(ScenarioError::template(at("headers")))?;
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, ScenarioError>>()?;
    let body = r
        .body
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(ScenarioError::template(at("body")))?;
    if r.repeat == 0 {
        return Err(ScenarioError::field(at("repeat"), "must be at least 1"));
    }
    Ok(RequestSpec {
        name: r
            .name
            .unwrap_or_else(|| format!("{} {}", method.as_str(), r.path)),
        method,
        path,
        headers,
        body,
        repeat: r.repeat,
        weight: r.weight,
    })
}

/// `FROM:TO:STEPS:STEP_DURATION`, e.g. `100:5000:10:30s`.
pub fn parse_ramp(text: &str) -> Result<RampFile, ValueError> {
    let parts: Vec<&str> = text.split(':').collect();
    let [from, to, steps, step_duration] = parts[..] else {
        return Err(ValueError::RampShape(text.to_owned()));
    };
    let number = |s: &str| {
        s.parse::<f64>().map_err(|_| ValueError::RampNumber {
            text: text.to_owned(),
            part: s.to_owned(),
        })
    };
    Ok(RampFile {
        from: number(from)?,
        to: number(to)?,
        steps: steps.parse().map_err(|_| ValueError::RampSteps {
            text: text.to_owned(),
            part: steps.to_owned(),
        })?,
        step_duration: step_duration.to_owned(),
    })
}

/// `250ms`, `30s`, `2m`, `1h`, `1.5s`, `800us`.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| ValueError::NoUnit(text.to_owned()))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| ValueError::NotANumber(text.to_owned()))?;
    let secs = match unit.trim() {
        "us" | "µs" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(ValueError::UnknownUnit(other.to_owned())),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `1%` or `0.01`.
pub fn parse_fraction(text: &str) -> Result<f64, ValueError> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| ValueError::NotAFraction(text.to_owned()))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ValueError::FractionOutOfRange(text.to_owned()));
    }
    Ok(value)
}

/// What a threshold looks at, over the whole run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (0-100), in milliseconds.
    Percentile(f64),
    MeanMs,
    MaxMs,
    /// Errors (HTTP >= 400, transport errors, timeouts, drops) over requests due.
    ErrorRate,
    /// Achieved requests per second (successful responses).
    Rps,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    /// Milliseconds for latencies, a fraction for error_rate, req/s for rps.
    pub value: f64,
}

impl Threshold {
    /// `p99 < 300ms`, `p99.9 <= 1s`, `mean < 20ms`, `error_rate < 1%`, `rps >= 900`.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [metric, op, value] = words[..] else {
            return Err(ValueError::ThresholdShape);
        };
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            other => return Err(ValueError::Operator(other.to_owned())),
        };
        let metric = match metric {
            "mean" => Metric::MeanMs,
            "max" => Metric::MaxMs,
            "error_rate" => Metric::ErrorRate,
            "rps" => Metric::Rps,
            p if p.starts_with('p') => {
                let q: f64 = p[1..]
                    .parse()
                    .map_err(|_| ValueError::Percentile(p.to_owned()))?;
                if !(0.0..=100.0).contains(&q) {
                    return Err(ValueError::PercentileRange(p.to_owned()));
                }
                Metric::Percentile(q)
            }
            other => return Err(ValueError::Metric(other.to_owned())),
        };
        let value = match metric {
            Metric::ErrorRate => parse_fraction(value)?,
            Metric::Rps => value
                .parse()
                .map_err(|_| ValueError::Rate(value.to_owned()))?,
            _ => parse_duration(value)?.as_secs_f64() * 1e3,
        };
        Ok(Self {
            text: text.to_owned(),
            metric,
            op,
            value,
        })
    }

    pub fn holds(&self, actual: f64) -> bool {
        match self.op {
            Op::Lt => actual < self.value,
            Op::Le => actual <= self.value,
            Op::Gt => actual > self.value,
            Op::Ge => actual >= self.value,
        }
    }
}

/// Refuses targets outside loopback unless `allow_remote`.
pub fn check_target_is_local(target: &str, allow_remote: bool) -> Result<(), ScenarioError> {
    if allow_remote {
        return Ok(());
    }
    let uri = target
        .parse::<hyper::Uri>()
        .map_err(|e| ScenarioError::field(format!("target `{target}`"), e.to_string()))?;
    let host = uri.host().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        Ok(())
    } else {
        Err(ScenarioError::RemoteTarget(target.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_becomes_evenly_spaced_steps_cut_at_max_duration() {
        let file = parse_file(
            "target: http://127.0.0.1:1\nrequests: [{path: /}]\nramp: {from: 100, to: 1000, steps: 10, step_duration: 30s}\nmax_duration: 100s\n",
        )
        .unwrap();
        let s = file.check(&Overrides::default()).unwrap();
        let rates: Vec<f64> = s.steps.iter().map(|s| s.rate).collect();
        assert_eq!(rates, vec![100.0, 200.0, 300.0, 400.0]);
        assert_eq!(s.steps[3].duration, Duration::from_secs(10));
    }

    #[test]
    fn thresholds_parse_units_and_compare() {
        let t = Threshold::parse("p99 < 300ms").unwrap();
        assert_eq!(t.metric, Metric::Percentile(99.0));
        assert_eq!(t.value, 300.0);
        assert!(t.holds(299.0) && !t.holds(300.0));
        let e = Threshold::parse("error_rate <= 1%").unwrap();
        assert!((e.value - 0.01).abs() < 1e-12);
        assert_eq!(Threshold::parse("p99.9 < 1s").unwrap().value, 1000.0);
        assert!(Threshold::parse("p99 ~ 3ms").is_err());
        assert!(Threshold::parse("latency < 3ms").is_err());
    }

    #[test]
    fn only_loopback_targets_pass_without_the_flag() {
        assert!(check_target_is_local("http://127.0.0.1:8080", false).is_ok());
        assert!(check_target_is_local("http://localhost:8080", false).is_ok());
        assert!(check_target_is_local("http://[::1]:8080", false).is_ok());
        assert!(check_target_is_local("http://10.0.0.5:8080", false).is_err());
        assert!(check_target_is_local("http://example.com", false).is_err());
        assert!(check_target_is_local("http://example.com", true).is_ok());
    }

    #[test]
    fn errors_name_the_field_and_say_what_to_fix() {
        let check = |yaml: &str| {
            parse_file(yaml)
                .unwrap()
                .check(&Overrides::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            check("target: http://127.0.0.1:1\nrequests: [{path: /, method: 'NO PE'}]\nrate: 1\n"),
            "requests[0].method: `NO PE` is not an HTTP method"
        );
        assert_eq!(
            check(
                "target: http://127.0.0.1:1\nrequests: [{path: /}]\nrate: 1\nduration: 3 weeks\n"
            ),
            "duration: `weeks` is not a unit (use us, ms, s, m or h)"
        );
        assert_eq!(
            check("target: http://127.0.0.1:1\nrequests: [{path: '/{{nope}}'}]\nrate: 1\n"),
            "requests[0].path: `{{nope}}` is not a placeholder: use uuid, now_ms, now_rfc3339, seq, rand_int A B or env NAME"
        );
        assert_eq!(
            check("requests: [{path: /}]\nrate: 1\n"),
            "target: missing (in the scenario or with --target)"
        );
        assert!(matches!(
            check_target_is_local("http://10.0.0.5:8080", false),
            Err(ScenarioError::RemoteTarget(_))
        ));
    }

    #[test]
    fn the_builtin_ingest_scenario_checks() {
        let file = builtin(BUILTIN_INGEST).unwrap();
        assert_eq!(file.requests[0].repeat, 100);
        assert!(builtin("nope").is_err());
    }
}
