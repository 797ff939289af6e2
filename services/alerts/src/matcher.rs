//! Label matchers, as Prometheus and Alertmanager write them: `name="v"`,
//! `name!="v"`, `name=~"re"`, `name!~"re"` (regexes anchored), and metric
//! selectors `metric{matchers}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a matcher or a selector cannot be read; the message names the text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    #[error("`{0}` is not a label name")]
    LabelName(String),
    #[error("`{value}` is not a valid regex: {reason}")]
    Regex { value: String, reason: String },
    #[error("`{0}` has no operator (=, !=, =~, !~)")]
    NoOperator(String),
    #[error("`{0}` has no value")]
    NoValue(String),
    #[error("`{0}` is not a metric name")]
    MetricName(String),
    #[error("`{0}`: the label matchers lack a closing `}}`")]
    Unclosed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "=~")]
    Re,
    #[serde(rename = "!~")]
    NotRe,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    #[serde(skip)]
    regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(name: &str, op: Op, value: &str) -> Result<Self, MatcherError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(MatcherError::LabelName(name.to_owned()));
        }
        let regex = match op {
            Op::Re | Op::NotRe => {
                Some(regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    MatcherError::Regex {
                        value: value.to_owned(),
                        reason: e.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Recompiles the regex after deserializing.
    pub fn compiled(self) -> Result<Self, MatcherError> {
        Matcher::new(&self.name, self.op, &self.value)
    }

    /// A missing label matches as the empty string, as in Alertmanager.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (Op::Eq, _) => value == self.value,
            (Op::Ne, _) => value != self.value,
            (Op::Re, Some(re)) => re.is_match(value),
            (Op::NotRe, Some(re)) => !re.is_match(value),
            _ => false,
        }
    }

    /// Parses `name="value"` (quotes optional).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let text = text.trim();
        let (at, op) = ["=~", "!~", "!=", "="]
            .iter()
            .filter_map(|op| text.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
            .ok_or_else(|| MatcherError::NoOperator(text.to_owned()))?;
        let name = text[..at].trim();
        let raw = text[at + op.len()..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        if value.is_empty() && raw != "\"\"" {
            return Err(MatcherError::NoValue(text.to_owned()));
        }
        let op = match op {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "=~" => Op::Re,
            _ => Op::NotRe,
        };
        Matcher::new(name, op, value)
    }
}

pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `metric{a="b", c=~"x|y"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let text = text.trim();
        let (metric, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let metric = metric.trim();
        if metric.is_empty()
            || !metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':')
        {
            return Err(MatcherError::MetricName(metric.to_owned()));
        }
        let mut matchers = Vec::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| MatcherError::Unclosed(text.to_owned()))?;
            for part in split_outside_quotes(inner) {
                if !part.trim().is_empty() {
                    matchers.push(Matcher::parse(&part)?);
                }
            }
        }
        Ok(Self {
            metric: metric.to_owned(),
            matchers,
        })
    }
}

fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => {
                quoted ^= c == '"';
                current.push(c);
            }
        }
    }
    parts.push(current);
    parts
}

// The SQL of matchers over `metric_points`' labels (and resource attributes).

const LABEL_OR_RESOURCE: &str = "multiIf(has(label_keys, ?), label_values[indexOf(label_keys, ?)], \
     has(resource_keys, ?), resource_values[indexOf(resource_keys, ?)], \
     has(resource_keys, ?), resource_values[indexOf(resource_keys, ?)], '')";

/// The SQL of a label's value (a label, else a resource attribute; `service`
/// also reads `service.name`), with its four binds.
pub(crate) fn label_expr(name: &str, sql: &mut String, binds: &mut Vec<String>) {
    sql.push_str(LABEL_OR_RESOURCE);
    let alt = if name == "service" {
        "service.name"
    } else {
        name
    };
    for n in [name, name, name, name, alt, alt] {
        binds.push(n.to_owned());
    }
}

pub(crate) fn matcher_sql(m: &Matcher, sql: &mut String, binds: &mut Vec<String>) {
    sql.push_str(" AND ");
    match m.op {
        Op::Eq | Op::Ne => {
            label_expr(&m.name, sql, binds);
            sql.push_str(if m.op == Op::Eq { " = ?" } else { " != ?" });
            binds.push(m.value.clone());
        }
        Op::Re | Op::NotRe => {
            if m.op == Op::NotRe {
                sql.push_str("NOT ");
            }
            sql.push_str("match(");
            label_expr(&m.name, sql, binds);
            sql.push_str(", ?)");
            // A plain group: the same meaning, and no `?` in the SQL of the compatibility test.
            binds.push(format!("^({})$", m.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn selectors_and_matchers() {
        let s = Selector::parse(r#"http_requests_total{status=~"5..", route!="/health", a="x,y"}"#)
            .unwrap();
        assert_eq!(s.metric, "http_requests_total");
        assert_eq!(s.matchers.len(), 3);
        let l = labels(&[("status", "503"), ("route", "/pay"), ("a", "x,y")]);
        assert!(all_match(&s.matchers, &l));
        let l = labels(&[("status", "5030"), ("route", "/pay"), ("a", "x,y")]);
        assert!(!all_match(&s.matchers, &l), "regexes are anchored");
        assert!(Matcher::parse("service=").is_err());
        assert!(
            Matcher::parse(r#"service="""#)
                .unwrap()
                .matches(&labels(&[]))
        );
        assert!(Selector::parse("x{a=\"b\"").is_err());
        assert!(Selector::parse("x{a=~\"(\"}").is_err());
    }
}
