//! `bftbench fuzz`: seeded random fault or Twins scenarios under the oracle.

use crate::common::default_threads;
use anyhow::{Context, Result};
use bftbench::scenario::{Overrides, ProtocolName, Scenario, display_path};
use std::path::{Path, PathBuf};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    /// pbft | qbft | hotstuff
    #[arg(long)]
    protocol: ProtocolName,
    /// How many scenarios (default 1000; with --exhaustive, all of the
    /// enumeration, or its first SCENARIOS in enumeration order)
    #[arg(long)]
    scenarios: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Twins scenarios (f identities run twice) instead of fault lists
    #[arg(long)]
    twins: bool,
    /// With --twins: every Twins scenario of ROUNDS rounds (each round a
    /// split of the instances into at most two groups and the leader of
    /// its view; nodes 0..FAULTY twinned) instead of seeded samples
    #[arg(long, value_name = "ROUNDS", requires = "twins")]
    exhaustive: Option<usize>,
    /// Faulty identities per scenario (default f; f+1 is a control that
    /// must find a violation)
    #[arg(long)]
    faulty: Option<usize>,
    /// A scenario whose [pbft]/[qbft]/[hotstuff] table to use (e.g. a
    /// mutant); its protocol and nodes are replaced by the flags
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Keep going after the first violation; at the end, list the
    /// distinct violations (same problem up to numbers) and their cases
    #[arg(long, visible_alias = "all")]
    keep_going: bool,
    /// Time box: start no scenario after M minutes (the summary counts
    /// the scenarios that ran)
    #[arg(long, value_name = "M")]
    minutes: Option<f64>,
    /// One line per case on stderr
    #[arg(long)]
    verbose: bool,
    /// Write each minimal violating scenario here as fuzz-<protocol>-<seed>.toml
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        protocol,
        scenarios,
        seed,
        nodes,
        twins,
        exhaustive,
        faulty,
        config,
        threads,
        keep_going,
        minutes,
        verbose,
        out_dir,
    } = args;
    let time_box = match minutes {
        Some(m) if m.is_finite() && m > 0.0 => Some(std::time::Duration::from_secs_f64(m * 60.0)),
        Some(m) => anyhow::bail!("--minutes {m}: expected a positive number of minutes"),
        None => None,
    };
    let mut base = match &config {
        Some(path) => Scenario::load(&display_path(path), &Overrides::default())?,
        None => Scenario::parse(
            &format!("protocol = \"{protocol}\"\nnodes = {nodes}\n"),
            Path::new("(flags)"),
        )?,
    };
    base.protocol = protocol;
    base.nodes = nodes;
    // Every case checks that no replica changed its durable state without
    // writing it (slower, so the library's own fixed-seed tests leave it
    // off and the restart tests turn it on).
    base.storage.audit = true;
    base.validate(Path::new("(flags)"))?;
    let opts = bftbench::fuzz::FuzzOptions {
        base,
        // Sampling: 1000 by default. Exhaustive: the whole
        // enumeration, or its first `scenarios`.
        scenarios: scenarios.unwrap_or(if exhaustive.is_some() { u64::MAX } else { 1000 }),
        seed,
        twins: twins || exhaustive.is_some(),
        exhaustive,
        faulty,
        threads: threads.unwrap_or_else(default_threads),
        stop_at_first: !keep_going,
        time_box,
        verbose,
    };
    fuzz_command(&opts, out_dir.as_deref())
}

fn fuzz_command(
    opts: &bftbench::fuzz::FuzzOptions,
    out_dir: Option<&Path>,
) -> Result<std::process::ExitCode> {
    let n = opts.base.nodes;
    let f = opts.base.f();
    let faulty = opts.faulty.unwrap_or(f);
    let (mode, flags) = match bftbench::fuzz::exhaustive_bound(opts)? {
        Some(b) => {
            let count = b.count()?;
            eprintln!(
                "fuzz {} n={n} f={f}: exhaustive twins, {} rounds of {:?}: {count} scenarios \
                 ({} splits x {n} leaders per round), running {}; twinned: nodes 0..{}, seed {}",
                opts.base.protocol,
                b.rounds,
                bftbench::fuzz::twins_round(&opts.base),
                b.splits(),
                count.min(opts.scenarios),
                b.twins,
                opts.seed
            );
            (
                "exhaustive twins",
                format!(" --twins --exhaustive {}", b.rounds),
            )
        }
        None => {
            let mode = if opts.twins { "twins" } else { "faults" };
            eprintln!(
                "fuzz {} n={n} f={f}: {} {mode} scenarios, {faulty} faulty identities each, seed {}",
                opts.base.protocol, opts.scenarios, opts.seed
            );
            let flags = if opts.twins { " --twins" } else { "" };
            (mode, flags.to_string())
        }
    };
    let flags = match opts.faulty {
        Some(k) => format!("{flags} --faulty {k}"),
        None => flags,
    };
    let summary = bftbench::fuzz::fuzz(opts)?;
    println!(
        "{} n={n} {mode}: {} scenarios in {:.1}s ({:.0}/s, {:.0}/min, {} events), {} violating",
        opts.base.protocol,
        summary.runs,
        summary.wall.as_secs_f64(),
        summary.per_second(),
        summary.per_second() * 60.0,
        summary.events,
        summary.findings.len()
    );
    for finding in &summary.findings {
        println!(
            "\nVIOLATION in case {} (seed {}):",
            finding.case, finding.case_seed
        );
        for p in finding.problems.iter().take(5) {
            println!("  {p}");
        }
        let text = bftbench::fuzz::to_toml(&finding.minimal);
        let header = format!(
            "# Minimal scenario from `bftbench fuzz --protocol {} --nodes {n} --seed {}{flags}` case {}.\n# Replay: bftbench run <this file>\n",
            opts.base.protocol, opts.seed, finding.case
        );
        match out_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join(format!(
                    "fuzz-{}-{}.toml",
                    opts.base.protocol, finding.case_seed
                ));
                std::fs::write(&path, format!("{header}{text}"))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("  minimal scenario: {}", path.display());
            }
            None => println!("--- minimal scenario ---\n{header}{text}--- end ---"),
        }
    }
    if summary.findings.len() > 1 {
        let distinct = summary.distinct();
        println!("\n{} distinct violations:", distinct.len());
        for (sig, members) in &distinct {
            let cases: Vec<String> = members
                .iter()
                .take(8)
                .map(|&i| summary.findings[i].case.to_string())
                .collect();
            println!(
                "  {}x {sig} (cases {}{})",
                members.len(),
                cases.join(", "),
                if members.len() > 8 { ", ..." } else { "" }
            );
        }
    }
    Ok(if summary.findings.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
