//! `hypercare rules check` as a user runs it: the real binary, its stdout, its
//! exit code, and a reader that leaves early (`| head`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A fresh folder with `files` (name, text) in it.
fn folder(test: &str, files: &[(&str, String)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hypercare-rules-{test}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn rule(name: &str, body: &str) -> String {
    format!("      - name: {name}\n        tier: P1\n        annotations: {{summary: s}}\n{body}")
}

fn file(rules: &[String]) -> String {
    format!("groups:\n  - name: g\n    rules:\n{}", rules.concat())
}

fn check(dir: &PathBuf) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hypercare"));
    command
        .arg("rules")
        .arg("check")
        .arg(dir)
        .env("HYPERCARE_LOG_FORMAT", "text")
        .current_dir(dir);
    command
}

#[test]
fn rules_check_prints_every_problem_of_every_file_and_exits_1() {
    let good = "        condition: {metric: {select: x, fn: last, window: 5m}, above: 1}\n";
    let dir = folder(
        "every",
        &[
            (
                "a.yaml",
                file(&[
                    rule("fine", good),
                    rule(
                        "three",
                        "        for: 5minutes\n        condition:\n          metric: {select: x, windw: 5m}\n          abvoe: 1\n",
                    ),
                ]),
            ),
            (
                "b.yaml",
                file(&[
                    rule("dup", good),
                    rule("late", &good.replace("5m}", "1.5m}")),
                ]),
            ),
            ("c.yaml", file(&[rule("dup", good)])),
        ],
    );
    let output = check(&dir).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let a = dir.join("a.yaml").display().to_string();
    let b = dir.join("b.yaml").display().to_string();
    let c = dir.join("c.yaml").display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    let want = [
        format!("{a}:11: rule `three`: for: `5minutes` is not a duration"),
        format!("{a}:13: rule `three`: condition.metric.windw: unknown field (expected one of"),
        format!("{a}:14: rule `three`: condition.abvoe: unknown field (expected one of"),
        format!("{b}:11: rule `late`: condition.metric.window: `1.5m` is not a duration"),
        format!("{c}:4: rule `dup`: name: is already used by a rule of another file"),
    ];
    assert_eq!(lines.len(), want.len(), "{stdout}");
    for (line, want) in lines.iter().zip(&want) {
        assert!(line.starts_with(want.as_str()), "{line}\nwanted {want}");
    }
    // Plain lines, not log records; the field is named once.
    assert!(
        !stdout.contains("\"level\"") && !stdout.contains("`for` "),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn rules_check_does_not_panic_when_its_reader_leaves() {
    // Far more than a pipe holds, so the writes meet the closed pipe.
    let rules: Vec<String> = (0..3000)
        .map(|i| {
            rule(
                &format!("r{i}"),
                "        condition: {kpi: k, above: 1, typo: 2}\n",
            )
        })
        .collect();
    let dir = folder("pipe", &[("many.yaml", file(&rules))]);
    let mut child = check(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("rule `r0`: condition.typo: unknown field"),
        "{first}"
    );
    // The reader is gone (as `| head -1` exits).
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
