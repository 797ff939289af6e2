//! A command whose reader leaves (`hypercare kpi list | head -1`) ends its
//! output there and exits 0, as any Unix tool does, instead of panicking.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn kpi_list_ends_quietly_when_its_reader_leaves() {
    let dir = std::env::temp_dir().join(format!("hypercare-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("many.yaml");
    // Far more than a pipe holds, so the writes meet the closed pipe.
    let kpis: String = (0..3000)
        .map(|i| {
            format!(
                "  - id: k{i}\n    title: K{i}\n    owner: po@example.com\n    aggregation: count\n    filter: {{ event: e }}\n    direction: higher_is_better\n    target: 1\n    warning: 0.5\n    critical: 0.1\n"
            )
        })
        .collect();
    std::fs::write(&file, format!("kpis:\n{kpis}")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypercare"))
        .args(["kpi", "list"])
        .arg(&file)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("k0 "), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
