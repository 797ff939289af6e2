//! `hypercare rules check`: validate rule files without starting the service.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate alert rule files (or folders of them); exit 1 naming the file,
    /// the rule and the field of the first error.
    Check {
        /// Files or folders; default: the configured [alerts] rules.
        paths: Vec<PathBuf>,
        /// A KPI file, so that rules naming KPIs are checked against it.
        #[arg(long)]
        kpis: Option<PathBuf>,
    },
}

/// Runs the command; `configured` are the rule paths of the configuration.
pub fn run(
    command: RulesCommand,
    configured: &[PathBuf],
    kpi_file: Option<&PathBuf>,
) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check { paths, kpis } => {
            let paths = if paths.is_empty() {
                configured.to_vec()
            } else {
                paths
            };
            let kpi_ids = match kpis.as_ref().or(kpi_file) {
                Some(file) => Some(
                    hypercare_kpis::definition::load_file(file)
                        .map_err(anyhow::Error::msg)?
                        .into_iter()
                        .map(|k| k.id)
                        .collect::<Vec<_>>(),
                ),
                None => None,
            };
            let rules = crate::rule::load(&paths, kpi_ids.as_deref())?;
            let files = crate::rule::files(&paths)?;
            println!("{} rules in {} files: OK", rules.len(), files.len());
            for rule in &rules {
                println!(
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
                );
            }
            Ok(())
        }
    }
}
