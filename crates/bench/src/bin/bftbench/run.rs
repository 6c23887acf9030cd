//! `bftbench run`: one scenario, its summary and its JSON record.

use crate::common::write_json;
use anyhow::Result;
use bft_core::CryptoKind;
use bftbench::run;
use bftbench::scenario::{Overrides, ProtocolName, Runtime, Scenario, display_path};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct Args {
    scenario: PathBuf,
    #[command(flatten)]
    overrides: OverrideArgs,
    /// Where to write the JSON record (default: results/<protocol>-n<N>-<runtime>.json)
    #[arg(long)]
    out: Option<PathBuf>,
    /// QUIC runs only: serve each replica's Prometheus `GET /metrics`,
    /// replica i on this address's port + i (port 0: ephemeral ports,
    /// logged at info level)
    #[arg(long, value_name = "BASE")]
    metrics: Option<std::net::SocketAddr>,
    /// QUIC runs only: each replica persists its durable state and ledger
    /// in DIR/node-<i> (fsync as the scenario's `[storage] fsync` says);
    /// the record's `store` and `fsync` say so. DIR must not hold another
    /// run's directories.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug, Default)]
struct OverrideArgs {
    /// pbft | qbft | hotstuff (overrides `protocol`)
    #[arg(long)]
    protocol: Option<ProtocolName>,
    /// Number of replicas (overrides `nodes`)
    #[arg(long)]
    nodes: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// sim | quic
    #[arg(long)]
    runtime: Option<Runtime>,
    /// real | model
    #[arg(long, value_parser = parse_crypto)]
    crypto: Option<CryptoKind>,
    /// e.g. 10s, 500ms
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Open-loop load, requests per second in total (overrides `[load]`'s
    /// mode; clients and request size stay)
    #[arg(long)]
    rate: Option<f64>,
}

pub fn run(args: Args) -> Result<std::process::ExitCode> {
    let Args {
        scenario,
        overrides,
        out,
        metrics,
        data_dir,
    } = args;
    run_command(&scenario, overrides, out, metrics, data_dir)
}

fn parse_crypto(s: &str) -> Result<CryptoKind, String> {
    match s {
        "real" => Ok(CryptoKind::Real),
        "model" => Ok(CryptoKind::Model),
        other => Err(format!(
            "unknown crypto \"{other}\": expected real or model"
        )),
    }
}

fn overrides(a: OverrideArgs) -> Overrides {
    Overrides {
        protocol: a.protocol,
        nodes: a.nodes,
        seed: a.seed,
        runtime: a.runtime,
        crypto: a.crypto,
        duration: a.duration,
        rate: a.rate,
    }
}

fn run_command(
    path: &Path,
    args: OverrideArgs,
    out: Option<PathBuf>,
    metrics: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
) -> Result<std::process::ExitCode> {
    let scenario = Scenario::load(&display_path(path), &overrides(args))?;
    anyhow::ensure!(
        metrics.is_none() || scenario.runtime == Runtime::Quic,
        "--metrics {}: the simulator has no replicas to scrape (runtime = \"sim\"); \
         use it with --runtime quic or `bftbench node`",
        metrics.map(|m| m.to_string()).unwrap_or_default()
    );
    anyhow::ensure!(
        data_dir.is_none() || scenario.runtime == Runtime::Quic,
        "--data-dir {}: the simulator keeps its model store in memory (runtime = \"sim\"); \
         use it with --runtime quic or `bftbench node`",
        data_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    if let Some(k) = scenario.faulty_beyond_f() {
        eprintln!(
            "warning: {k} faulty nodes exceed f = {}: safety and liveness are not promised",
            scenario.f()
        );
    }
    let bar = Bar::new(format!("{} n={}", scenario.protocol, scenario.nodes));
    let store = data_dir.map(|dir| bft_net::durable::StoreConfig {
        dir,
        fsync: scenario.storage.fsync,
    });
    let record = if metrics.is_some() || store.is_some() {
        if let Some(base) = metrics {
            eprintln!(
                "serving GET /metrics: replica i on {base} with port + i for the run's length"
            );
        }
        bftbench::quic::run_scenario(
            &scenario,
            &bftbench::quic::QuicOptions {
                metrics,
                store,
                http: None,
            },
        )?
    } else {
        run::run(&scenario, &mut |fraction| bar.set(fraction))?
    };
    bar.finish();
    print!("{}", run::summary(&record));
    let out = out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "results/{}-n{}-{}.json",
            record.protocol, record.n, record.runtime
        ))
    });
    write_json(&out, &record)?;
    println!("  record                  {}", out.display());
    if !record.safety_violations.is_empty() {
        eprintln!(
            "safety violated; replay with: bftbench run {} --seed {}",
            path.display(),
            record.seed
        );
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A progress bar on stderr that appears only after a second, and only on a
/// terminal.
struct Bar {
    bar: ProgressBar,
    started: Instant,
    shown: std::cell::Cell<bool>,
}

impl Bar {
    fn new(label: String) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {percent}% {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label);
        Bar {
            bar,
            started: Instant::now(),
            shown: std::cell::Cell::new(false),
        }
    }
    fn set(&self, fraction: f64) {
        if !self.shown.get()
            && self.started.elapsed() > Duration::from_secs(1)
            && std::io::stderr().is_terminal()
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
        self.bar.set_position((fraction * 1000.0) as u64);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
