//! `bftbench`: run BFT protocols side by side and measure what each costs.
//!
//! This file holds the clap definitions and the dispatch; each subcommand
//! (or close family) lives in its own module beside it.

mod calibrate;
mod cluster;
mod common;
mod compare;
mod diff;
mod fuzz;
mod ledger;
mod run;
mod saturate;
mod sweep;
mod timeline;
mod validate;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bftbench",
    version,
    about = "Run PBFT, QBFT and chained HotStuff side by side and measure what each costs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario, print a summary and write its JSON record.
    Run(run::Args),
    /// Check a scenario file without running it.
    Validate(validate::Args),
    /// Generate keys and a cluster file for a multi-process or multi-host
    /// QUIC cluster: DIR/cluster.toml, DIR/node-<i>.key, DIR/client-0.key.
    Keygen(cluster::KeygenArgs),
    /// Run one replica of a cluster until SIGINT/SIGTERM; prints its counters.
    Node(cluster::NodeArgs),
    /// Run the scenario's load against a running cluster and write a record.
    Client(cluster::ClientArgs),
    /// Read replicas' data directories (`node --data-dir`) offline:
    /// `verify DIR` re-checks one, `diff DIR...` compares several.
    Ledger(ledger::Args),
    /// Run every point of a scenario's [sweep] axes; one record per point
    /// plus summary.csv.
    Sweep(sweep::Args),
    /// Find each protocol's saturation rate: search the offered open-loop
    /// rate for the highest one sustained (completed >= KEEP_UP x offered and
    /// p99 <= P99_MS); writes every probe's record, saturation.json (the
    /// knees), summary.csv and the throughput-latency plot with the knees
    /// marked. The scenario's [sweep] protocol (and nodes) axes are searched
    /// one by one; its rate axis is ignored.
    Saturate(saturate::Args),
    /// The regression gate: compare two result directories record by
    /// record (throughput, p50/p99, messages and bytes per request,
    /// view-change cost, saturation knees); print the changes past the
    /// threshold and exit with 1 if any figure got worse by more.
    Diff(diff::Args),
    /// Draw a message sequence (Lamport) diagram of a simulated run as SVG:
    /// a lane per replica, an arrow per protocol message coloured by kind,
    /// commits, view timeouts and crashes marked, the view change shaded.
    /// One diagram per point of the scenario's [sweep] (e.g. per protocol).
    Timeline(timeline::Args),
    /// Draw the plots (PNG and SVG) for the records in a directory.
    Plot(sweep::PlotArgs),
    /// Run seeded random fault (or Twins) scenarios under the oracle and the
    /// liveness check; on a violation print the seed and a minimal scenario
    /// that `bftbench run` replays, and exit with 1.
    Fuzz(fuzz::Args),
    /// The main job: run bench-configs/compare.toml (all three protocols),
    /// write records, CSV, plots and results/index.html, print a table.
    Compare(compare::Args),
    /// Measure on this machine every cost the simulator charges (each crypto
    /// operation, per-event handling) and write a cost profile that a
    /// scenario names with `[cost] profile = "FILE"`. Run it on an idle
    /// machine: it warns when the load average or the spread says otherwise.
    Calibrate(calibrate::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match main_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            std::process::ExitCode::from(2)
        }
    }
}

fn main_inner() -> Result<std::process::ExitCode> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Keygen(args) => cluster::keygen(args),
        Command::Node(args) => cluster::node(args),
        Command::Client(args) => cluster::client(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Saturate(args) => saturate::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Timeline(args) => timeline::run(args),
        Command::Plot(args) => sweep::plot(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Calibrate(args) => calibrate::run(args),
    }
}

/// An error and its causes, each said once: our error messages already
/// include their source's text, which `{:#}` would print again.
fn describe(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn an_error_names_its_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(bftbench::BenchError::Write {
            file: PathBuf::from("x/summary.csv"),
            source: io,
        });
        assert_eq!(describe(&e), "x/summary.csv: cannot write: no such file");
        let wrapped = e.context("compare");
        assert_eq!(
            describe(&wrapped),
            "compare: x/summary.csv: cannot write: no such file"
        );
    }
}
