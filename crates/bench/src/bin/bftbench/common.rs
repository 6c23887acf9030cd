//! Helpers more than one subcommand uses: worker threads, the exit code
//! for safety violations, writing JSON.

use anyhow::{Context, Result};
use std::path::Path;

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

pub fn exit_for(records: &[(String, bftbench::record::Record)]) -> std::process::ExitCode {
    let unsafe_runs: Vec<_> = records
        .iter()
        .filter(|(_, r)| !r.safety_violations.is_empty())
        .collect();
    for (file, r) in &unsafe_runs {
        eprintln!(
            "safety violated in {file} (seed {}): {}",
            r.seed, r.safety_violations[0]
        );
    }
    if unsafe_runs.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}
