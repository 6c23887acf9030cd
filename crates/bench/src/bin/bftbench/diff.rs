//! `bftbench diff`: the regression gate between two result directories.

use anyhow::Result;
use std::path::PathBuf;

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    old: PathBuf,
    new: PathBuf,
    /// e.g. 10% or 0.1
    #[arg(long, default_value = "10%", value_parser = bftbench::diff::parse_threshold)]
    threshold: f64,
    /// Print every compared figure, not only those past the threshold
    #[arg(long)]
    all: bool,
    /// Compare only records of this runtime (sim: the deterministic
    /// figures; QUIC figures are wall-clock and move between runs)
    #[arg(long, value_parser = ["sim", "quic"])]
    runtime: Option<String>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        old,
        new,
        threshold,
        all,
        runtime,
    } = args;
    let report = bftbench::diff::diff_dirs(&old, &new, threshold, runtime.as_deref())?;
    print!("{}", bftbench::diff::table(&report, all));
    Ok(if report.regressions().next().is_some() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
