//! `bftbench sweep` and `bftbench plot`: every point of a scenario's [sweep]
//! axes, and the plots of a directory of records.

use crate::common::{exit_for, threads};
use anyhow::Result;
use bftbench::scenario::{Overrides, Scenario, display_path};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    scenario: PathBuf,
    #[arg(long)]
    out_dir: PathBuf,
    /// Worker threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        scenario,
        out_dir,
        threads,
    } = args;
    let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
    let records = sweep_command(&s, &display_path(&scenario), &out_dir, threads)?;
    println!(
        "{} records and summary.csv in {}",
        records.len(),
        out_dir.display()
    );
    Ok(exit_for(&records))
}

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct PlotArgs {
    dir: PathBuf,
    /// Where to put the plots (default: the same directory)
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub fn plot(args: PlotArgs) -> Result<std::process::ExitCode> {
    let PlotArgs { dir, out_dir } = args;
    let records = bftbench::sweep::read_records(&dir)?;
    anyhow::ensure!(
        !records.is_empty(),
        "{}: no result records (*.json) found",
        dir.display()
    );
    let knees = bftbench::saturate::read_knees(&dir);
    let files = bftbench::plot::plot(&records, &knees, out_dir.as_deref().unwrap_or(&dir))?;
    for f in &files {
        println!("{}", f.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn sweep_command(
    s: &Scenario,
    file: &Path,
    out_dir: &Path,
    threads_arg: Option<usize>,
) -> Result<Vec<(String, bftbench::record::Record)>> {
    let points = bftbench::sweep::points(s, file)?;
    let bar = ProgressBar::new(points.len() as u64);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{msg:>20} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(file.display().to_string());
    let records = bftbench::sweep::run_points(&points, out_dir, threads(threads_arg), &|p, r| {
        bar.inc(1);
        bar.set_message(p.name.clone());
        tracing::info!(point = %p.name, decisions = r.decisions, "done");
    })?;
    bar.finish_and_clear();
    Ok(records)
}
