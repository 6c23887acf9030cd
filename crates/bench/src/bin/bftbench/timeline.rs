//! `bftbench timeline`: message sequence diagrams of a simulated run.

use anyhow::Result;
use bftbench::scenario::{Overrides, Scenario, display_path};
use std::path::PathBuf;
use std::time::Duration;

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    scenario: PathBuf,
    /// Start of the window (virtual time), e.g. 990ms
    #[arg(long, value_parser = humantime::parse_duration)]
    from: Duration,
    /// End of the window, e.g. 1.5s
    #[arg(long, value_parser = humantime::parse_duration)]
    to: Duration,
    /// End the window this long after the first view change completes
    /// (when that is before --to), e.g. 8ms
    #[arg(long, value_parser = humantime::parse_duration)]
    after_recovery: Option<Duration>,
    #[arg(long, default_value = "results/timeline")]
    out_dir: PathBuf,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        scenario,
        from,
        to,
        after_recovery,
        out_dir,
    } = args;
    let file = display_path(&scenario);
    let s = Scenario::load(&file, &Overrides::default())?;
    for path in bftbench::timeline::draw(&s, &file, from, to, after_recovery, &out_dir)? {
        println!("{}", path.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}
