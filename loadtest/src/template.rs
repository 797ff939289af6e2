//! Templates for paths, header values and bodies: text with placeholders that are
//! filled in for every request.
//!
//! Placeholders: `{{uuid}}` (a random v4 UUID), `{{now_ms}}` (Unix time in
//! milliseconds), `{{now_rfc3339}}`, `{{rand_int A B}}` (uniform in A..=B),
//! `{{seq}}` (the request's sequence number in the run, from 0) and `{{env NAME}}`
//! (read once, when the scenario is loaded). A template is parsed once; rendering
//! is a walk over its parts, so that it costs little per request.

use std::fmt::Write;

use rand::Rng;

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
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut text = String::new();
        while let Some(start) = rest.find("{{") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` at byte {start} is never closed with `}}}}`"))?;
            let inner = after[..end].trim();
            let mut words = inner.split_whitespace();
            let part = match (words.next(), words.next(), words.next(), words.next()) {
                (Some("uuid"), None, None, None) => Part::Uuid,
                (Some("now_ms"), None, None, None) => Part::NowMs,
                (Some("now_rfc3339"), None, None, None) => Part::NowRfc3339,
                (Some("seq"), None, None, None) => Part::Seq,
                (Some("rand_int"), Some(a), Some(b), None) => {
                    let parse = |s: &str| {
                        s.parse::<i64>()
                            .map_err(|_| format!("`{{{{{inner}}}}}`: `{s}` is not an integer"))
                    };
                    let (a, b) = (parse(a)?, parse(b)?);
                    if a > b {
                        return Err(format!("`{{{{{inner}}}}}`: {a} is greater than {b}"));
                    }
                    Part::RandInt(a, b)
                }
                (Some("env"), Some(name), None, None) => {
                    let value = std::env::var(name).map_err(|_| {
                        format!("`{{{{{inner}}}}}`: environment variable {name} is not set")
                    })?;
                    text.push_str(&value);
                    rest = &after[end + 2..];
                    continue;
                }
                _ => {
                    return Err(format!(
                        "`{{{{{inner}}}}}` is not a placeholder: use uuid, now_ms, now_rfc3339, seq, rand_int A B or env NAME"
                    ));
                }
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

    /// Appends the rendered template to `out`.
    pub fn render_into(&self, out: &mut String, seq: u64, rng: &mut impl Rng) {
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Uuid => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
                    out.push_str(id.hyphenated().encode_lower(&mut buf));
                }
                Part::NowMs => {
                    write!(out, "{}", chrono::Utc::now().timestamp_millis()).ok();
                }
                Part::NowRfc3339 => out.push_str(
                    &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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

    pub fn render(&self, seq: u64, rng: &mut impl Rng) -> String {
        let mut out = String::new();
        self.render_into(&mut out, seq, rng);
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
        let out = t.render(41, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["s"], 41);
        assert!((1..=3).contains(&v["n"].as_i64().unwrap()));
        assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
        assert!(!t.is_constant());
    }

    #[test]
    fn plain_text_is_constant_and_errors_name_the_placeholder() {
        let t = Template::parse("/v1/events").unwrap();
        assert!(t.is_constant());
        assert_eq!(t.render(0, &mut rand::rng()), "/v1/events");
        let err = Template::parse("x {{nope}}").unwrap_err();
        assert!(err.contains("nope"), "{err}");
        assert!(Template::parse("{{rand_int 5 1}}").is_err());
        assert!(Template::parse("{{uuid").is_err());
    }
}
