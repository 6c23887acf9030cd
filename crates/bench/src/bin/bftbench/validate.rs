//! `bftbench validate`: check a scenario file or a compare suite.

use anyhow::Result;
use bftbench::scenario::display_path;
use std::path::{Path, PathBuf};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    scenario: PathBuf,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args { scenario } = args;
    validate_command(&display_path(&scenario))
}

/// `bftbench validate FILE`: a scenario or a compare suite.
fn validate_command(path: &Path) -> Result<std::process::ExitCode> {
    for line in bftbench::suite::validate_file(path)? {
        println!("{line}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
