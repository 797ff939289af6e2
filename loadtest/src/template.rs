//! Templates for paths, header values and bodies: text with placeholders that are
//! filled in for every request.
//!
//! Placeholders: `{{uuid}}` (a random v4 UUID), `{{now_ms}}` (Unix time in
//! milliseconds), `{{now_rfc3339}}`, `{{rand_int A B}}` (uniform in A..=B),
//! `{{seq}}` (the request's sequence number in the run, from 0) and `{{env NAME}}`
//! (read once, when the scenario is loaded). A template is parsed once; rendering
//! is a walk over its parts, so that it costs little per request.
//!
//! "Now" is handed to [`Template::render_into`] by the caller: the generator
//! passes the wall clock at the moment it builds the request (what a real
//! client would stamp), and tests pass a fixed time.

use std::fmt::Write;

use rand::Rng;

use crate::error::TemplateError;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Uuid,
    NowMs,
    NowRfc3339,
    RandInt(i64, i64),
    Seq,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`; the error names the placeholder and says why.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut text = String::new();
        while let Some(start) = rest.find("{{") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or(TemplateError::Unclosed { at: start })?;
            let inner = after[..end].trim();
            let mut words = inner.split_whitespace();
            let part = match (words.next(), words.next(), words.next(), words.next()) {
                (Some("uuid"), None, None, None) => Part::Uuid,
                (Some("now_ms"), None, None, None) => Part::NowMs,
                (Some("now_rfc3339"), None, None, None) => Part::NowRfc3339,
                (Some("seq"), None, None, None) => Part::Seq,
                (Some("rand_int"), Some(a), Some(b), None) => {
                    let parse = |s: &str| {
                        s.parse::<i64>().map_err(|_| TemplateError::NotAnInteger {
                            placeholder: inner.to_owned(),
                            value: s.to_owned(),
                        })
                    };
                    let (a, b) = (parse(a)?, parse(b)?);
                    if a > b {
                        return Err(TemplateError::EmptyRange {
                            placeholder: inner.to_owned(),
                            low: a,
                            high: b,
                        });
                    }
                    Part::RandInt(a, b)
                }
                (Some("env"), Some(name), None, None) => {
                    let value = std::env::var(name).map_err(|_| TemplateError::MissingEnv {
                        placeholder: inner.to_owned(),
                        name: name.to_owned(),
                    })?;
                    text.push_str(&value);
                    rest = &after[end + 2..];
                    continue;
                }
                _ => return Err(TemplateError::Unknown(inner.to_owned())),
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &after[end + 2..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// True when the template has no placeholder: it can be rendered once.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Appends the rendered template to `out`; `now_ms` is Unix time in
    /// milliseconds for `now_ms` and `now_rfc3339`.
    pub fn render_into(&self, out: &mut String, seq: u64, now_ms: i64, rng: &mut impl Rng) {
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Uuid => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
                    out.push_str(id.hyphenated().encode_lower(&mut buf));
                }
                Part::NowMs => {
                    write!(out, "{now_ms}").ok();
                }
                Part::NowRfc3339 => out.push_str(
                    &chrono::DateTime::from_timestamp_millis(now_ms)
                        .unwrap_or_default()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
                Part::RandInt(a, b) => {
                    write!(out, "{}", rng.random_range(*a..=*b)).ok();
                }
                Part::Seq => {
                    write!(out, "{seq}").ok();
                }
            }
        }
    }

    pub fn render(&self, seq: u64, now_ms: i64, rng: &mut impl Rng) -> String {
        let mut out = String::new();
        self.render_into(&mut out, seq, now_ms, rng);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in() {
        let t = Template::parse(r#"{"id":"{{uuid}}","n":{{rand_int 1 3}},"s":{{ seq }}}"#).unwrap();
        let mut rng = rand::rng();
        let out = t.render(41, 0, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["s"], 41);
        assert!((1..=3).contains(&v["n"].as_i64().unwrap()));
        assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
        assert!(!t.is_constant());
    }

    #[test]
    fn now_is_the_time_handed_in() {
        let t = Template::parse("{{now_ms}} {{now_rfc3339}}").unwrap();
        // 2026-11-20T08:00:00.250Z.
        let out = t.render(0, 1_795_161_600_250, &mut rand::rng());
        assert_eq!(out, "1795161600250 2026-11-20T08:00:00.250Z");
    }

    #[test]
    fn plain_text_is_constant_and_errors_name_the_placeholder() {
        let t = Template::parse("/v1/events").unwrap();
        assert!(t.is_constant());
        assert_eq!(t.render(0, 0, &mut rand::rng()), "/v1/events");
        let err = Template::parse("x {{nope}}").unwrap_err();
        assert_eq!(err, TemplateError::Unknown("nope".into()));
        assert!(
            err.to_string()
                .starts_with("`{{nope}}` is not a placeholder"),
            "{err}"
        );
        assert!(Template::parse("{{rand_int 5 1}}").is_err());
        assert!(Template::parse("{{uuid").is_err());
    }
}
