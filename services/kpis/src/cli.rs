//! `hypercare kpi check|list|show`: the KPI file from a terminal, without the
//! service.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Subcommand;

use crate::definition::{Kpi, load_file};

#[derive(Debug, Subcommand)]
pub enum KpiCommand {
    /// Check a KPI file (default: the configured `kpis.file`); errors name the
    /// file, the KPI and the field.
    Check { file: Option<PathBuf> },
    /// One line per KPI of the file.
    List { file: Option<PathBuf> },
    /// One KPI of the file in full.
    Show {
        id: String,
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn load(file: Option<PathBuf>, configured: Option<PathBuf>) -> anyhow::Result<(PathBuf, Vec<Kpi>)> {
    let path = file.or(configured).ok_or_else(|| {
        anyhow::anyhow!("no KPI file: pass one or set [kpis] file in the configuration")
    })?;
    let kpis = load_file(&path).map_err(anyhow::Error::msg)?;
    Ok((path, kpis))
}

pub fn run(command: KpiCommand, configured: Option<PathBuf>) -> anyhow::Result<()> {
    match command {
        KpiCommand::Check { file } => {
            let (path, kpis) = load(file, configured)?;
            writeln!(
                std::io::stdout().lock(),
                "{}: {} KPIs, all valid.",
                path.display(),
                kpis.len()
            )?;
        }
        KpiCommand::List { file } => {
            let (_, kpis) = load(file, configured)?;
            for kpi in kpis {
                writeln!(
                    std::io::stdout().lock(),
                    "{:<28} {:<12} target {:>10} {:<6} {}",
                    kpi.id,
                    format!("{:?}", kpi.aggregation).to_lowercase(),
                    kpi.target,
                    kpi.unit,
                    kpi.title
                )?;
            }
        }
        KpiCommand::Show { id, file } => {
            let (path, kpis) = load(file, configured)?;
            let kpi = kpis
                .into_iter()
                .find(|k| k.id == id)
                .ok_or_else(|| anyhow::anyhow!("{}: no KPI `{id}`", path.display()))?;
            write!(
                std::io::stdout().lock(),
                "{}",
                serde_norway::to_string(&kpi)?
            )?;
        }
    }
    Ok(())
}
