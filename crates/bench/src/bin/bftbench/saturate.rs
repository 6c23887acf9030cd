//! `bftbench saturate`: search each protocol's saturation rate.

use crate::common::{exit_for, threads};
use anyhow::Result;
use bftbench::scenario::{Overrides, Scenario, display_path};
use std::path::{Path, PathBuf};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    scenario: PathBuf,
    /// Default: results/saturate/<scenario file name without .toml>
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Bound on the p99 latency, ms (default 100)
    #[arg(long)]
    p99_ms: Option<f64>,
    /// First offered rate, tx/s (default 2000)
    #[arg(long)]
    start: Option<f64>,
    /// Highest offered rate probed, tx/s (default 400000)
    #[arg(long)]
    max: Option<f64>,
    /// Fraction of the offered rate that must complete (default 0.95)
    #[arg(long)]
    keep_up: Option<f64>,
    /// Stop when the unsustained rate is within this fraction of the
    /// sustained one (default 0.1)
    #[arg(long)]
    resolution: Option<f64>,
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        scenario,
        out_dir,
        p99_ms,
        start,
        max,
        keep_up,
        resolution,
        threads,
    } = args;
    let file = display_path(&scenario);
    let s = Scenario::load(&file, &Overrides::default())?;
    let d = bftbench::saturate::SearchConfig::default();
    let cfg = bftbench::saturate::SearchConfig {
        p99_ms: p99_ms.unwrap_or(d.p99_ms),
        start: start.unwrap_or(d.start),
        max: max.unwrap_or(d.max),
        keep_up: keep_up.unwrap_or(d.keep_up),
        resolution: resolution.unwrap_or(d.resolution),
    };
    let stem = file
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let dir = out_dir.unwrap_or_else(|| PathBuf::from("results/saturate").join(stem));
    let (knees, records) = saturate_command(&s, &file, &cfg, &dir, threads)?;
    let plots = bftbench::plot::plot(&records, &knees, &dir)?;
    print!("{}", bftbench::saturate::table(&knees));
    println!(
        "records, saturation.json and {} plot files in {}",
        plots.len(),
        dir.display()
    );
    Ok(exit_for(&records))
}

/// Searches each protocol's saturation rate, with a line per probe.
pub fn saturate_command(
    s: &Scenario,
    file: &Path,
    cfg: &bftbench::saturate::SearchConfig,
    out_dir: &Path,
    threads_arg: Option<usize>,
) -> Result<(Vec<bftbench::saturate::Knee>, bftbench::saturate::Named)> {
    eprintln!("   searching the saturation rate ({})", cfg.rule());
    let done = |p: &bftbench::sweep::Point, r: &bftbench::record::Record| {
        let offered = match p.scenario.load.mode {
            bft_sim::LoadMode::Open { rate } => rate,
            bft_sim::LoadMode::Closed { .. } => 0.0,
        };
        let ok = cfg.sustained(offered, r.throughput_tx_s, r.latency_ms.p99);
        eprintln!(
            "   {:<28} completed {:>9.0} tx/s  p99 {:>9.2} ms  {}",
            p.name,
            r.throughput_tx_s,
            r.latency_ms.p99,
            if ok { "sustained" } else { "not sustained" }
        );
    };
    Ok(bftbench::saturate::saturate(
        s,
        file,
        cfg,
        out_dir,
        threads(threads_arg),
        &done,
    )?)
}
