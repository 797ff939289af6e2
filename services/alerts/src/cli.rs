//! `hypercare rules check`: validate rule files without starting the service.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate alert rule files (or folders of them); print every problem of
    /// every file on stdout as `file:line: rule `name`: field: reason`, exit 1.
    Check {
        /// Files or folders; default: the configured [alerts] rules.
        paths: Vec<PathBuf>,
        /// A KPI file, so that rules naming KPIs are checked against it.
        #[arg(long)]
        kpis: Option<PathBuf>,
    },
}

/// Runs the command; `configured` are the rule paths of the configuration.
/// Returns the exit code: 0 when every file passes, 1 otherwise.
pub fn run(
    command: RulesCommand,
    configured: &[PathBuf],
    kpi_file: Option<&PathBuf>,
) -> anyhow::Result<u8> {
    // The outcome is decided before anything is printed, so that a reader
    // that leaves early (`hypercare rules check | head`) changes nothing but
    // how much of it is read.
    let mut text = Vec::new();
    let mut summary = Vec::new();
    let code = report(command, configured, kpi_file, &mut text, &mut summary)?;
    print_stdout(&text)?;
    // The count goes to stderr, after the list, so `| head` still shows it.
    std::io::stderr().write_all(&summary).ok();
    Ok(code)
}

/// Writes `text` to stdout; a reader that left (a closed pipe) is not an error.
pub fn print_stdout(text: &[u8]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes the outcome to `out` (problems, or the rules that passed) and, when
/// there are problems, their count to `summary`; answers the exit code.
pub fn report(
    command: RulesCommand,
    configured: &[PathBuf],
    kpi_file: Option<&PathBuf>,
    out: &mut impl Write,
    summary: &mut impl Write,
) -> std::io::Result<u8> {
    let RulesCommand::Check { paths, kpis } = command;
    let paths = if paths.is_empty() {
        configured.to_vec()
    } else {
        paths
    };
    let kpi_ids = match kpis.as_ref().or(kpi_file) {
        Some(file) => match hypercare_kpis::definition::load_file(file) {
            Ok(kpis) => Some(kpis.into_iter().map(|k| k.id).collect::<Vec<_>>()),
            Err(e) => {
                writeln!(out, "{}: kpis: {e}", file.display())?;
                return Ok(1);
            }
        },
        None => None,
    };
    let (rules, problems) = crate::check::check(&paths, kpi_ids.as_deref());
    let files = crate::check::files(&paths).map_or(0, |f| f.len());
    if !problems.is_empty() {
        for problem in &problems {
            writeln!(out, "{problem}")?;
        }
        writeln!(
            summary,
            "{} in {}.",
            counted(problems.len(), "problem"),
            counted(files, "file")
        )?;
        return Ok(1);
    }
    writeln!(
        out,
        "{} in {}: OK",
        counted(rules.len(), "rule"),
        counted(files, "file")
    )?;
    for rule in &rules {
        writeln!(
            out,
            "  {:<4} {:<32} for {:<6} {}{}",
            rule.tier.as_str(),
            rule.name,
            crate::duration::format(rule.for_),
            rule.annotations.get("summary").map_or("", String::as_str),
            if rule.rollback_trigger {
                "  [rollback trigger]"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// `1 rule`, `3 rules`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
