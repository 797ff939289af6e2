//! The Prometheus rule files in alert-rules/prometheus/ are valid (`promtool
//! check rules`), pass their unit tests (`promtool test rules`), and every
//! alert carries the labels and annotations routing and the runbooks rely on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../alert-rules/prometheus")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files in the rules folder whose name ends with `suffix`, relative to the
/// workspace root, sorted.
fn files_ending(suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules_dir())
        .expect("alert-rules/prometheus is readable")
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(suffix))
        .map(|name| Path::new("alert-rules/prometheus").join(name))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *{suffix} file in alert-rules/prometheus"
    );
    files
}

/// Runs promtool with `args` from the workspace root; panics with its output
/// unless it succeeds, and fails (never skips) when promtool is missing.
fn promtool(args: &[&str], files: &[PathBuf]) -> String {
    let program = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let output = match Command::new(&program)
        .args(args)
        .args(files)
        .current_dir(workspace_root())
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed: run `scripts/install-deps --tests` \
             (Debian package `prometheus`), or set PROMTOOL to its path"
        ),
        Err(error) => panic!("cannot run `{program}`: {error}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        args.join(" "),
        output.status
    );
    stdout
}

#[test]
fn promtool_check_rules() {
    let stdout = promtool(&["check", "rules"], &files_ending(".rules.yml"));
    assert!(stdout.contains("SUCCESS"), "unexpected output:\n{stdout}");
}

#[test]
fn promtool_test_rules() {
    let stdout = promtool(&["test", "rules"], &files_ending(".test.yml"));
    assert!(stdout.contains("SUCCESS"), "unexpected output:\n{stdout}");
}

/// An alerting rule as text: its name and the lines of its block.
struct AlertBlock {
    name: String,
    text: String,
}

/// Splits a rule file into its `- alert:` blocks; a block ends at the next
/// rule or group.
fn alert_blocks(rules: &str) -> Vec<AlertBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<AlertBlock> = None;
    for line in rules.lines() {
        let trimmed = line.trim_start();
        let starts_rule = ["- alert:", "- record:", "- name:"]
            .iter()
            .any(|p| trimmed.starts_with(p));
        if starts_rule {
            blocks.extend(current.take());
        }
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            current = Some(AlertBlock {
                name: name.trim().to_owned(),
                text: String::new(),
            });
        }
        if let Some(block) = current.as_mut() {
            block.text.push_str(line);
            block.text.push('\n');
        }
    }
    blocks.extend(current);
    blocks
}

/// The value of `key:` inside a block, unquoted.
fn field<'a>(block: &'a AlertBlock, key: &str) -> Option<&'a str> {
    block.text.lines().find_map(|line| {
        line.trim_start()
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().trim_matches(|c| c == '"' || c == '\''))
    })
}

#[test]
fn every_alert_is_labelled_annotated_and_tested() {
    let tests: String = files_ending(".test.yml")
        .iter()
        .map(|path| std::fs::read_to_string(workspace_root().join(path)).expect("test file"))
        .collect();
    let mut rollback_triggers = 0;
    for path in files_ending(".rules.yml") {
        let rules = std::fs::read_to_string(workspace_root().join(&path)).expect("rule file");
        let blocks = alert_blocks(&rules);
        assert!(!blocks.is_empty(), "{}: no alert", path.display());
        for block in &blocks {
            let name = &block.name;
            let tier = field(block, "tier").unwrap_or_else(|| panic!("{name}: no tier label"));
            assert!(
                ["P0", "P1", "P2", "P3"].contains(&tier),
                "{name}: tier {tier:?} is not P0..P3"
            );
            for key in ["service", "team", "summary", "description"] {
                let value = field(block, key).unwrap_or_else(|| panic!("{name}: no {key}"));
                assert!(!value.is_empty(), "{name}: empty {key}");
            }
            let runbook =
                field(block, "runbook_url").unwrap_or_else(|| panic!("{name}: no runbook_url"));
            assert!(
                runbook.starts_with("https://"),
                "{name}: runbook_url {runbook:?} is not an https URL"
            );
            assert!(field(block, "for").is_some(), "{name}: no `for` duration");
            if let Some(trigger) = field(block, "rollback_trigger") {
                assert_eq!(trigger, "true", "{name}: rollback_trigger must be \"true\"");
                assert_eq!(tier, "P0", "{name}: a rollback trigger is P0");
                rollback_triggers += 1;
            }
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name}: no alert_rule_test in the *.test.yml files"
            );
        }
        // The go-live plan's rollback rule: error rate > 1 % for 10 minutes.
        let rollback = blocks
            .iter()
            .find(|b| b.name == "LaunchErrorRateRollback")
            .expect("LaunchErrorRateRollback is defined");
        assert!(rollback.text.contains("> 0.01\n"), "{}", rollback.text);
        assert_eq!(field(rollback, "for"), Some("10m"));
    }
    assert!(rollback_triggers > 0, "no rollback trigger at all");
}
