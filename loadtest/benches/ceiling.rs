//! The generator's own ceiling from one core: the `loadtest` binary pinned on
//! CPU 1 (current-thread runtime) ramps against its trivially fast target server
//! pinned on CPU 0, and `wrk` (closed loop, if installed) runs against the same
//! server for comparison. Needs `taskset` (util-linux) and 2 cores.
//!
//! `cargo bench -p hypercare-loadtest --bench ceiling` (LOADTEST_RAMP overrides
//! the ramp, default 40000:120000:9:3s).

use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    let bin = env!("CARGO_BIN_EXE_loadtest");
    let ramp = std::env::var("LOADTEST_RAMP").unwrap_or_else(|_| "40000:120000:9:3s".into());
    let out = std::env::temp_dir().join(format!("loadtest-ceiling-{}", std::process::id()));
    let mut server = Command::new("taskset")
        .args([
            "-c",
            "0",
            bin,
            "target-server",
            "--listen",
            "127.0.0.1:18977",
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("taskset and the loadtest binary");
    std::thread::sleep(Duration::from_millis(500));
    let run = Command::new("taskset")
        .args(["-c", "1", bin, "run", "--threads", "1", "--quiet", "--json"])
        .args(["--target", "http://127.0.0.1:18977", "--ramp", &ramp])
        .args(["--max-in-flight", "5000", "--pid", &server.id().to_string()])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running the generator");
    let report: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("the JSON report on stdout");
    println!("loadtest (open model, one core), ramp {ramp}:");
    println!("  offered/s  achieved/s  errors%  p50 ms  p99 ms  target cpu");
    for s in report["steps"].as_array().unwrap() {
        println!(
            "  {:>9.0}  {:>10.0}  {:>7.2}  {:>6.2}  {:>6.2}  {:>10.2}",
            s["offered_rps"].as_f64().unwrap(),
            s["achieved_rps"].as_f64().unwrap(),
            100.0 * s["error_rate"].as_f64().unwrap(),
            s["latency"]["p50_ms"].as_f64().unwrap(),
            s["latency"]["p99_ms"].as_f64().unwrap(),
            s["resources"]["cpu_cores"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!(
        "  ceiling (highest rate kept up with, p99 <= 300 ms, errors <= 1 %): {:.0} req/s",
        report["capacity"]["max_sustainable_rps"]
            .as_f64()
            .unwrap_or(0.0)
    );
    match Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c50",
            "-d5s",
            "http://127.0.0.1:18977/",
        ])
        .output()
    {
        Ok(wrk) if wrk.status.success() => {
            let text = String::from_utf8_lossy(&wrk.stdout);
            let rps = text
                .lines()
                .find(|l| l.starts_with("Requests/sec"))
                .unwrap_or("Requests/sec: ?");
            println!("wrk -t1 -c50 (closed loop, one core): {rps}");
        }
        _ => println!("wrk is not installed: no closed-loop comparison (apt-get install wrk)."),
    }
    server.kill().ok();
    server.wait().ok();
    std::fs::remove_dir_all(&out).ok();
}
