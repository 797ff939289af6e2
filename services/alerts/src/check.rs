//! Every problem of every rule file at once, as promtool reports them.
//!
//! ```text
//! file text ─ YAML ─ groups ─ each rule on its own ─ serde (unknown fields,
//!   types, durations) ─ Rule::problems (what serde cannot see) ─ names unique
//! ```
//!
//! serde stops at the first error, so a rule is deserialized again after each
//! one, without the field that failed, until it passes or misses a required
//! field; problems of the rule's own checks that are about a removed field are
//! left out (they would only repeat it). Each problem carries the line of the
//! field (or of the rule) in the file, found in the text: the YAML value tree
//! has no positions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::rule::Rule;

/// One problem: `file:line: rule `name`: field: reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the file could not be read.
    pub line: usize,
    /// The rule's name; None for problems of the file or of a group.
    pub rule: Option<String>,
    /// What `rule` names: `rule`, or `slo` for an entry of `slos:`.
    pub kind: &'static str,
    /// The field's path within the rule (`condition.metric.window`), or within
    /// the file (`groups[1].name`) for problems outside rules.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(rule) = &self.rule {
            write!(f, "{} `{rule}`: ", self.kind)?;
        }
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The rules of `paths` that passed, and every problem found. Rule names must
/// be unique across files; a file that cannot be read is one problem.
pub fn check(paths: &[PathBuf], kpis: Option<&[String]>) -> (Vec<Rule>, Vec<Problem>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    let io = |file: &Path, e: std::io::Error| Problem {
        file: file.display().to_string(),
        line: 0,
        rule: None,
        kind: "rule",
        field: "file".into(),
        reason: e.to_string(),
    };
    let files = match files(paths) {
        Ok(files) => files,
        Err(e) => return (rules, vec![io(Path::new("alert rules"), e)]),
    };
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(io(&file, e));
                continue;
            }
        };
        let name = file.display().to_string();
        let (found, mut found_problems) = check_text(&name, &text, kpis);
        problems.append(&mut found_problems);
        for rule in found {
            if rules.iter().any(|r| r.name == rule.name) {
                problems.push(Problem {
                    file: name.clone(),
                    line: rule_lines(&text).get(&rule.name).copied().unwrap_or(1),
                    rule: Some(rule.name.clone()),
                    kind: "rule",
                    field: "name".into(),
                    reason: "is already used by a rule of another file".into(),
                });
            } else {
                rules.push(rule);
            }
        }
    }
    (rules, problems)
}

/// The first line of each rule, by name (the first rule of a name wins).
fn rule_lines(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut lines = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = key_value(line, "name") {
            lines.entry(name).or_insert(i + 1);
        }
    }
    lines
}

/// The value of `key: value` on `line` (block or flow style), unquoted.
fn key_value(line: &str, key: &str) -> Option<String> {
    let at = find_key(line, key)?;
    let rest = line[at + key.len()..].trim_start().strip_prefix(':')?;
    let value: String = rest
        .trim_start()
        .chars()
        .take_while(|c| !matches!(c, ',' | '}' | '#'))
        .collect();
    Some(value.trim().trim_matches(['"', '\'']).to_owned())
}

/// Where `key:` starts on `line` as a key (not inside another word).
fn find_key(line: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = line[from..].find(key) {
        let at = from + found;
        let before = line[..at].chars().next_back();
        let after = line[at + key.len()..].trim_start();
        if before.is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-' | '"' | '\''))
            && after
                .trim_start_matches(['"', '\''])
                .trim_start()
                .starts_with(':')
        {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

/// Checks one file's text: its rules that passed, and every problem.
pub fn check_text(file: &str, text: &str, kpis: Option<&[String]>) -> (Vec<Rule>, Vec<Problem>) {
    let mut problems = Vec::new();
    let problem = |line: usize, rule: Option<&str>, field: &str, reason: String| Problem {
        file: file.to_owned(),
        line,
        rule: rule.map(str::to_owned),
        kind: "rule",
        field: field.to_owned(),
        reason,
    };
    let root: Value = match serde_norway::from_str(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.location().map_or(1, |l| l.line());
            return (
                Vec::new(),
                vec![problem(line, None, "yaml", strip_location(&e))],
            );
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let Some(root) = root.as_mapping() else {
        return (
            Vec::new(),
            vec![problem(
                1,
                None,
                "groups",
                "the file must be a map with `groups`".into(),
            )],
        );
    };
    for key in root.keys() {
        if key.as_str() != Some("groups") && key.as_str() != Some("slos") {
            let name = key_text(key);
            let line = line_of(&lines, 0, lines.len(), &[name.as_str()]);
            problems.push(problem(
                line,
                None,
                &name,
                "unknown field (expected `groups`, `slos`)".into(),
            ));
        }
    }
    // SLOs come first in the answer's problems only if they come first in the file.
    let (slo_rules, mut slo_problems) = match root.get("slos") {
        Some(slos) => check_slos(file, &lines, slos, kpis),
        None => (Vec::new(), Vec::new()),
    };
    let groups = match root.get("groups") {
        None if root.contains_key("slos") => {
            problems.append(&mut slo_problems);
            return (slo_rules, problems);
        }
        groups => groups,
    };
    let Some(groups) = groups.and_then(Value::as_sequence) else {
        let line = line_of(&lines, 0, lines.len(), &["groups"]);
        problems.push(problem(
            line,
            None,
            "groups",
            "is required: a list of rule groups".into(),
        ));
        return (Vec::new(), problems);
    };
    // Rules are found in the text in order: each search starts after the last.
    let mut cursor = 0;
    let mut rules = Vec::new();
    let mut seen = BTreeSet::new();
    for (g, group) in groups.iter().enumerate() {
        let group_line = line_of(&lines, cursor, lines.len(), &["name"]);
        let field = |f: &str| format!("groups[{g}].{f}");
        let Some(group) = group.as_mapping() else {
            problems.push(problem(
                group_line,
                None,
                &format!("groups[{g}]"),
                "must be a map with `name` and `rules`".into(),
            ));
            continue;
        };
        for key in group.keys() {
            let name = key_text(key);
            if name != "name" && name != "rules" {
                let line = line_of(&lines, cursor, lines.len(), &[name.as_str()]);
                problems.push(problem(
                    line,
                    None,
                    &field(&name),
                    "unknown field (expected `name`, `rules`)".into(),
                ));
            }
        }
        let group_name = group
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if group_name.is_empty() {
            problems.push(problem(
                group_line,
                None,
                &field("name"),
                "is required: a group's name".into(),
            ));
        }
        cursor = group_line.min(lines.len());
        let Some(group_rules) = group.get("rules").and_then(Value::as_sequence) else {
            problems.push(problem(
                group_line,
                None,
                &field("rules"),
                "is required: a list of rules".into(),
            ));
            continue;
        };
        for value in group_rules {
            // The rule's block: from its `name:` (after the group's) to the next rule's.
            let start = line_of(&lines, cursor, lines.len(), &["name"]).max(cursor + 1);
            let end = next_item_line(&lines, start);
            cursor = start;
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| "?".to_owned(), str::to_owned);
            let (rule, found) = check_rule(value.clone(), kpis);
            let mut found: Vec<Problem> = found
                .into_iter()
                .map(|(field, reason)| {
                    let path: Vec<&str> = field.split('.').collect();
                    let line = line_of(&lines, start.saturating_sub(1), end, &path);
                    problem(line, Some(&name), &field, reason)
                })
                .collect();
            // In the order of the file (serde reports unknown fields first).
            found.sort_by_key(|p| p.line);
            problems.append(&mut found);
            if let Some(mut rule) = rule {
                if !seen.insert(rule.name.clone()) {
                    problems.push(problem(
                        start,
                        Some(&name),
                        "name",
                        "is used twice in this file".into(),
                    ));
                    continue;
                }
                rule.group = group_name.to_owned();
                rules.push(rule);
            }
        }
    }
    if !slo_problems.is_empty() {
        problems.append(&mut slo_problems);
        problems.sort_by_key(|p| p.line);
    }
    for rule in slo_rules {
        if seen.insert(rule.name.clone()) {
            rules.push(rule);
        } else {
            problems.push(Problem {
                file: file.to_owned(),
                line: 1,
                rule: Some(rule.name.clone()),
                kind: "rule",
                field: "name".into(),
                reason: "is used by a rule and by an SLO's burn-rate rule: rename one".into(),
            });
        }
    }
    (rules, problems)
}

/// The `slos:` list: each SLO's burn-rate rules, and every problem (a
/// problem's `rule` is the SLO's name, its `kind` `slo`). An SLO with a
/// problem makes no rules.
fn check_slos(
    file: &str,
    lines: &[&str],
    slos: &Value,
    kpis: Option<&[String]>,
) -> (Vec<Rule>, Vec<Problem>) {
    let slos_line = line_of(lines, 0, lines.len(), &["slos"]);
    let problem = |line: usize, slo: Option<String>, field: String, reason: String| Problem {
        file: file.to_owned(),
        line,
        rule: slo,
        kind: "slo",
        field,
        reason,
    };
    let Some(list) = slos.as_sequence() else {
        return (
            Vec::new(),
            vec![problem(
                slos_line,
                None,
                "slos".into(),
                "must be a list of SLOs".into(),
            )],
        );
    };
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut cursor = slos_line.saturating_sub(1);
    for (i, value) in list.iter().enumerate() {
        let start = line_of(lines, cursor, lines.len(), &["name"]).max(cursor + 1);
        let end = next_item_line(lines, start);
        cursor = start;
        let name = value.get("name").and_then(Value::as_str).map(str::to_owned);
        let at = |field: &str| {
            let path: Vec<&str> = field.split('.').collect();
            line_of(lines, start.saturating_sub(1), end, &path)
        };
        let who = name.clone().or_else(|| Some(format!("slos[{i}]")));
        // Unknown fields are reported and taken out, so that the SLO's other
        // problems are reported in the same run; any other serde error ends it.
        let mut value = value.clone();
        let mut unknown = false;
        let mut read = None;
        for _ in 0..16 {
            match deserialize_as::<crate::slo::Slo>(&value) {
                Ok(slo) => {
                    read = Some(slo);
                    break;
                }
                Err((mut path, reason)) => {
                    let extra = reason
                        .strip_prefix("unknown field `")
                        .and_then(|rest| rest.split_once('`'));
                    let Some((field, expected)) = extra else {
                        let field = if path.is_empty() {
                            "slo".to_owned()
                        } else {
                            path.join(".")
                        };
                        problems.push(problem(at(&field), who.clone(), field, reason));
                        break;
                    };
                    // serde names the map of an unknown field: name the field.
                    path.push(field.to_owned());
                    let reason = format!("unknown field ({})", expected.trim_start_matches(", "));
                    problems.push(problem(
                        at(&path.join(".")),
                        who.clone(),
                        path.join("."),
                        reason,
                    ));
                    unknown = true;
                    if !remove(&mut value, &path) {
                        break;
                    }
                }
            }
        }
        let Some(slo) = read else {
            continue;
        };
        let found = slo.problems(kpis);
        if unknown || !found.is_empty() {
            for (field, reason) in found {
                problems.push(problem(at(&field), who.clone(), field, reason));
            }
            continue;
        }
        if !names.insert(slo.name.clone()) {
            problems.push(problem(
                start,
                who,
                "name".into(),
                "is used twice in this file".into(),
            ));
            continue;
        }
        rules.extend(crate::slo_rules::alert_rules(slo, "slos"));
    }
    // In the order of the file (serde reports unknown fields first).
    problems.sort_by_key(|p| p.line);
    (rules, problems)
}

fn key_text(key: &Value) -> String {
    key.as_str()
        .map_or_else(|| format!("{key:?}"), str::to_owned)
}

/// The line (1-based) after `start` (0-based index) and before `end` where
/// the keys of `path` appear in turn; as near as found, else `start + 1`.
fn line_of(lines: &[&str], start: usize, end: usize, path: &[&str]) -> usize {
    let mut at = start;
    let mut found = start + 1;
    for key in path {
        let key = key.split('[').next().unwrap_or(key);
        match (at..end.min(lines.len())).find(|i| find_key(lines[*i], key).is_some()) {
            Some(i) => {
                found = i + 1;
                at = i;
            }
            None => break,
        }
    }
    found
}

/// The line (0-based index, exclusive end) where the list item after the one
/// starting at line `start` (1-based) begins, at the same indentation.
fn next_item_line(lines: &[&str], start: usize) -> usize {
    let Some(first) = lines.get(start.saturating_sub(1)) else {
        return lines.len();
    };
    let indent = first
        .find('-')
        .unwrap_or(first.len() - first.trim_start().len());
    (start..lines.len())
        .find(|i| {
            let line = lines[*i];
            let own = line.len() - line.trim_start().len();
            !line.trim().is_empty() && !line.trim_start().starts_with('#') && own <= indent
        })
        .unwrap_or(lines.len())
}

fn strip_location(e: &serde_norway::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

/// One serde error: the path serde names (may be a parent of the field) and
/// the message.
fn deserialize(value: &Value) -> Result<Rule, (Vec<String>, String)> {
    deserialize_as::<Rule>(value)
}

fn deserialize_as<T: serde::de::DeserializeOwned>(
    value: &Value,
) -> Result<T, (Vec<String>, String)> {
    // Through text, so that serde_norway tracks the path of the error.
    let text = serde_norway::to_string(value).map_err(|e| (Vec::new(), e.to_string()))?;
    serde_norway::from_str::<T>(&text).map_err(|e| {
        let message = strip_location(&e);
        match message.split_once(": ") {
            Some((path, rest))
                if !path.contains(' ') && !path.starts_with('`') && !path.is_empty() =>
            {
                (
                    path.split('.').map(str::to_owned).collect(),
                    rest.to_owned(),
                )
            }
            _ => (Vec::new(), message),
        }
    })
}

fn get_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(value, |v, key| v.get_mut(key.as_str()))
}

fn remove(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    get_mut(value, parent)
        .and_then(Value::as_mapping_mut)
        .is_some_and(|m: &mut Mapping| m.shift_remove(last.as_str()).is_some())
}

/// serde names the map that holds a bad value rather than the value: find the
/// child whose removal makes the same error go away (required children, whose
/// removal only trades it for "missing field", cannot tell).
fn narrow(value: &Value, mut path: Vec<String>, message: &str) -> Vec<String> {
    loop {
        let Some(children) = get_mut(&mut value.clone(), &path)
            .and_then(|v| v.as_mapping().cloned())
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
        else {
            return path;
        };
        let culprit = children.into_iter().find(|child| {
            let mut without = value.clone();
            let mut child_path = path.clone();
            child_path.push(child.clone());
            remove(&mut without, &child_path);
            match deserialize(&without) {
                Ok(_) => true,
                Err((_, m)) => m != message && m != format!("missing field `{child}`"),
            }
        });
        match culprit {
            Some(child) => path.push(child),
            None => return path,
        }
    }
}

/// One rule: the rule if serde could read it (bad fields removed), and every
/// (field, reason).
fn check_rule(mut value: Value, kpis: Option<&[String]>) -> (Option<Rule>, Vec<(String, String)>) {
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    if !value.is_mapping() {
        return (None, vec![("rule".into(), "must be a map".into())]);
    }
    // Each round removes one field, so this ends; the bound is for safety.
    for _ in 0..64 {
        let (path, message) = match deserialize(&value) {
            Ok(rule) => {
                let mut valid = true;
                for (field, reason) in rule.problems(kpis) {
                    let related = removed.iter().any(|r| {
                        r == &field
                            || r.starts_with(&format!("{field}."))
                            || field.starts_with(&format!("{r}."))
                    });
                    if !related {
                        problems.push((field, reason));
                    }
                    valid = false;
                }
                let ok = valid && removed.is_empty();
                return (ok.then_some(rule), problems);
            }
            Err(error) => error,
        };
        let join = |path: &[String], last: &str| {
            path.iter()
                .map(String::as_str)
                .chain([last])
                .collect::<Vec<_>>()
                .join(".")
        };
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = expected.trim_start_matches(", ");
            let mut full = path.clone();
            full.push(field.to_owned());
            problems.push((
                join(&path, field),
                format!(
                    "unknown field ({})",
                    if expected.is_empty() {
                        "expected none"
                    } else {
                        expected
                    }
                ),
            ));
            removed.push(full.join("."));
            if !remove(&mut value, &full) {
                break;
            }
            continue;
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            let field = join(&path, rest.split('`').next().unwrap_or(rest));
            // Missing because its bad value was taken out: already reported.
            if !removed.contains(&field) {
                problems.push((field, "is required".into()));
            }
            break;
        }
        let path = narrow(&value, path, &message);
        problems.push((
            if path.is_empty() {
                "rule".into()
            } else {
                path.join(".")
            },
            message,
        ));
        removed.push(path.join("."));
        if path.is_empty() || !remove(&mut value, &path) {
            break;
        }
    }
    (None, problems)
}

/// The first problem of a file or of rule files, for those who stop at it
/// (the service at start-up).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}:{line}: {kind} `{rule}`: {field}: {reason}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub rule: String,
    /// `rule`, or `slo` when `rule` names an SLO.
    pub kind: &'static str,
    pub field: String,
    pub reason: String,
}

/// Parses and checks one file's text; the first problem (see
/// [`check_text`] for every problem).
pub fn parse(file: &str, text: &str, kpis: Option<&[String]>) -> Result<Vec<Rule>, RuleError> {
    match check_text(file, text, kpis) {
        (rules, problems) if problems.is_empty() => Ok(rules),
        (_, problems) => Err(first(problems)),
    }
}

fn first(problems: Vec<Problem>) -> RuleError {
    let problem = problems
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!());
    RuleError {
        file: problem.file,
        line: problem.line,
        rule: problem.rule.unwrap_or_else(|| "-".into()),
        kind: problem.kind,
        field: problem.field,
        reason: problem.reason,
    }
}

/// Every `*.yaml` / `*.yml` rule file under `paths` (files or folders; folders
/// are not searched recursively, so `alert-rules/prometheus/` is left alone).
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Loads every rule of `paths`; rule names must be unique across files. The
/// first problem (see [`check`] for every problem).
pub fn load(paths: &[PathBuf], kpis: Option<&[String]>) -> Result<Vec<Rule>, RuleError> {
    match check(paths, kpis) {
        (rules, problems) if problems.is_empty() => Ok(rules),
        (_, problems) => Err(first(problems)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "groups:
  - name: g
    rules:
      - name: good
        tier: P1
        annotations: {summary: s}
        condition: {kpi: leads, below: 3}
      - name: three_mistakes
        tier: P9
        for: 5minutes
        annotations: {summary: s}
        condition:
          metric: {select: x, windw: 5m}
          above: 1
      - name: semantic
        tier: P2
        for: 1.5m
        annotations: {summary: ''}
        condition: {kpi: nope, above: 1, below: 2}
";

    #[test]
    fn every_problem_of_every_rule_is_reported_with_its_line() {
        let (rules, problems) = check_text("f.yaml", FILE, Some(&["leads".to_owned()]));
        assert_eq!(
            rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["good"]
        );
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let fields: Vec<(usize, &str, &str)> = problems
            .iter()
            .map(|p| (p.line, p.rule.as_deref().unwrap_or(""), p.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (9, "three_mistakes", "tier"),
                (10, "three_mistakes", "for"),
                (13, "three_mistakes", "condition.metric.windw"),
                (17, "semantic", "for"),
                (18, "semantic", "annotations.summary"),
                (19, "semantic", "condition"),
                (19, "semantic", "condition.kpi"),
            ],
            "{shown:#?}"
        );
        assert!(
            shown[0].starts_with("f.yaml:9: rule `three_mistakes`: tier: unknown variant `P9`"),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].contains("for: `5minutes` is not a duration"),
            "{}",
            shown[1]
        );
        assert!(
            shown[2].contains("condition.metric.windw: unknown field (expected one of `select`"),
            "{}",
            shown[2]
        );
        assert!(
            shown[3].contains("for: `1.5m` is not a duration"),
            "{}",
            shown[3]
        );
    }

    #[test]
    fn problems_outside_rules_and_broken_yaml_are_reported() {
        let (_, problems) = check_text("f.yaml", "groups:\n  - name: g\n    rulez: []\n", None);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["groups[0].rulez", "groups[0].rules"]);
        assert_eq!(problems[0].line, 3);
        let (_, problems) = check_text("f.yaml", "groups:\n  - name: [\n", None);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "yaml");
        let (_, problems) = check_text(
            "f.yaml",
            "groups:\n  - name: g\n    rules:\n      - name: a\n        condition: {kpi: k, above: 1}\n",
            None,
        );
        assert_eq!(
            problems[0].to_string(),
            "f.yaml:4: rule `a`: tier: is required"
        );
    }

    #[test]
    fn a_bad_threshold_is_blamed_on_its_own_field() {
        let text = "groups:\n  - name: g\n    rules:\n      - name: a\n        tier: P1\n        annotations: {summary: s}\n        condition:\n          kpi: k\n          above: [1]\n";
        let (_, problems) = check_text("f.yaml", text, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].line, problems[0].field.as_str()),
            (9, "condition.above")
        );
    }

    const SLOS: &str = "slos:
  - name: api
    objective: 99.5
    sli:
      availability: {errors: 'r{status=~\"5..\"}', total: r}
  - name: slow
    objective: 99.5
    window: 2h
    sli:
      latency:
        histogram: h
        threshold: 0.8
        le: 1
  - name: both
    objective: 99
    sli:
      kpi_floor: {kpi: leads, floor: 3}
      latency: {histogram: h, threshold: 1}
  - name: leads
    objective: 150
    sli:
      kpi_floor: {kpi: nope, floor: 3}
";

    #[test]
    fn slos_make_burn_rate_rules_and_their_problems_name_file_slo_field_and_line() {
        let (rules, problems) = check_text("s.yaml", SLOS, Some(&["leads".to_owned()]));
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["api-burn-1h", "api-burn-6h", "api-burn-1d", "api-burn-3d"]
        );
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "s.yaml:8: slo `slow`: window: must be between 1d and 90d",
                "s.yaml:13: slo `slow`: sli.latency.le: unknown field (expected `histogram` or `threshold`)",
                "s.yaml:16: slo `both`: sli: needs exactly one of `availability`, `latency` or `kpi_floor`",
                "s.yaml:20: slo `leads`: objective: must be a percentage above 0 and below 100 (99.5 means 99.5 %)",
                "s.yaml:22: slo `leads`: sli.kpi_floor.kpi: names no known KPI (known: leads)",
            ]
        );
        // A file of rules and SLOs: both, and a clash of names is a problem.
        let mixed = format!(
            "groups:\n  - name: g\n    rules:\n      - name: api-burn-1h\n        tier: P1\n        annotations: {{summary: s}}\n        condition: {{kpi: leads, below: 3}}\n{}",
            SLOS.lines().take(5).collect::<Vec<_>>().join("\n")
        );
        let (rules, problems) = check_text("m.yaml", &mixed, Some(&["leads".to_owned()]));
        assert_eq!(rules.len(), 4, "{problems:?}");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("burn-rate rule"),
            "{problems:?}"
        );
        let (_, problems) = check_text("m.yaml", "slos: 3\n", None);
        assert_eq!(problems[0].field, "slos");
    }

    #[test]
    fn the_shipped_slos_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let kpis: Vec<String> = ["payment_success_rate".to_owned()].into();
        let text = std::fs::read_to_string(root.join("alert-rules/slos.yaml")).unwrap();
        let (rules, problems) = check_text("slos.yaml", &text, Some(&kpis));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rules.len(), 12);
    }
}
