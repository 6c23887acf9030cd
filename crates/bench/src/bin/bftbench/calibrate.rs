//! `bftbench calibrate`: measure the simulator's costs on this machine.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the profile
    #[arg(long, default_value = "results/calibrate/profile.toml")]
    out: PathBuf,
    /// Timed rounds per figure (the median is kept)
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args { out, rounds } = args;
    calibrate_command(&out, rounds)
}

fn calibrate_command(out: &Path, rounds: usize) -> Result<std::process::ExitCode> {
    use bftbench::calibrate;
    anyhow::ensure!(
        rounds >= 3,
        "--rounds {rounds}: need at least 3 for a median and a spread"
    );
    eprintln!("calibrating: {rounds} rounds per figure, about ten seconds");
    let c = calibrate::calibrate(rounds)?;
    print!("{}", c.table());
    // The built-in default beside each figure: how far the shipped profile
    // is from this machine.
    let default = toml::Value::try_from(bft_crypto::CostModel::default())
        .context("encoding the default cost model")?;
    println!(
        "\n{:<24}{:>12}{:>14}",
        "figure", "default µs", "default/here"
    );
    for f in &c.figures {
        let d = default
            .get(f.name)
            .and_then(|v| v.as_str())
            .and_then(|v| humantime::parse_duration(v).ok())
            .unwrap_or_default();
        let ratio = d.as_secs_f64() / f.median.as_secs_f64().max(1e-12);
        println!(
            "{:<24}{:>12.2}{:>14.2}",
            f.name,
            d.as_secs_f64() * 1e6,
            ratio
        );
    }
    for w in c.warnings() {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, c.profile_toml()).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(std::process::ExitCode::SUCCESS)
}
