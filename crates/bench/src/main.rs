//! `bftbench`: run BFT protocols side by side and measure what each costs.

use anyhow::{Context, Result};
use bft_core::CryptoKind;
use bftbench::run;
use bftbench::scenario::{Overrides, ProtocolName, Runtime, Scenario, display_path};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario, print a summary and write its JSON record.
    Run {
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
    },
    /// Check a scenario file without running it.
    Validate { scenario: PathBuf },
    /// Generate keys and a cluster file for a multi-process or multi-host
    /// QUIC cluster: DIR/cluster.toml, DIR/node-<i>.key, DIR/client-0.key.
    Keygen {
        #[arg(long)]
        nodes: usize,
        /// Directory for cluster.toml and the secret key files (keep it out of results/)
        #[arg(long)]
        out_dir: PathBuf,
        /// Address of node 0; node i listens on the next ports
        #[arg(long, default_value = "127.0.0.1:7100")]
        base_addr: std::net::SocketAddr,
        /// Derive keys from a seed (tests, reproducible demos); default: OS randomness
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run one replica of a cluster until SIGINT/SIGTERM; prints its counters.
    Node {
        #[arg(long)]
        cluster: PathBuf,
        #[arg(long)]
        id: u16,
        /// The scenario naming the protocol and its knobs
        #[arg(long)]
        scenario: PathBuf,
        /// Secret key file (default: node-<id>.key beside the cluster file)
        #[arg(long)]
        key: Option<PathBuf>,
        /// Write the node's counters as JSON here
        #[arg(long)]
        out: Option<PathBuf>,
        /// Serve Prometheus `GET /metrics` on this TCP address (e.g.
        /// 0.0.0.0:9100) while the node runs
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run the scenario's load against a running cluster and write a record.
    Client {
        #[arg(long)]
        cluster: PathBuf,
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write a result record (what `bftbench plot` and
        /// `summary.csv` read) here
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Run every point of a scenario's [sweep] axes; one record per point
    /// plus summary.csv.
    Sweep {
        scenario: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        /// Worker threads (default: all cores)
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Find each protocol's saturation rate: search the offered open-loop
    /// rate for the highest one sustained (completed >= KEEP_UP x offered and
    /// p99 <= P99_MS); writes every probe's record, saturation.json (the
    /// knees), summary.csv and the throughput-latency plot with the knees
    /// marked. The scenario's [sweep] protocol (and nodes) axes are searched
    /// one by one; its rate axis is ignored.
    Saturate {
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
    },
    /// The regression gate: compare two result directories record by
    /// record (throughput, p50/p99, messages and bytes per request,
    /// view-change cost, saturation knees); print the changes past the
    /// threshold and exit with 1 if any figure got worse by more.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// e.g. 10% or 0.1
        #[arg(long, default_value = "10%", value_parser = bftbench::diff::parse_threshold)]
        threshold: f64,
        /// Print every compared figure, not only those past the threshold
        #[arg(long)]
        all: bool,
    },
    /// Draw a message sequence (Lamport) diagram of a simulated run as SVG:
    /// a lane per replica, an arrow per protocol message coloured by kind,
    /// commits, view timeouts and crashes marked, the view change shaded.
    /// One diagram per point of the scenario's [sweep] (e.g. per protocol).
    Timeline {
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
    },
    /// Draw the plots (PNG and SVG) for the records in a directory.
    Plot {
        dir: PathBuf,
        /// Where to put the plots (default: the same directory)
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Run seeded random fault (or Twins) scenarios under the oracle and the
    /// liveness check; on a violation print the seed and a minimal scenario
    /// that `bftbench run` replays, and exit with 1.
    Fuzz {
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
    },
    /// The main job: run bench-configs/compare.toml (all three protocols),
    /// write records, CSV, plots and results/index.html, print a table.
    Compare {
        /// The suite file
        #[arg(default_value = "bench-configs/compare.toml")]
        suite: PathBuf,
        /// Overrides the suite's out_dir
        #[arg(long)]
        out_dir: Option<PathBuf>,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Measure on this machine every cost the simulator charges (each crypto
    /// operation, per-event handling) and write a cost profile that a
    /// scenario names with `[cost] profile = "FILE"`. Run it on an idle
    /// machine: it warns when the load average or the spread says otherwise.
    Calibrate {
        /// Where to write the profile
        #[arg(long, default_value = "results/calibrate/profile.toml")]
        out: PathBuf,
        /// Timed rounds per figure (the median is kept)
        #[arg(long, default_value_t = 15)]
        rounds: usize,
    },
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

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

fn parse_crypto(s: &str) -> Result<CryptoKind, String> {
    match s {
        "real" => Ok(CryptoKind::Real),
        "model" => Ok(CryptoKind::Model),
        other => Err(format!(
            "unknown crypto \"{other}\": expected real or model"
        )),
    }
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
        Command::Run {
            scenario,
            overrides,
            out,
            metrics,
        } => run_command(&scenario, overrides, out, metrics),
        Command::Fuzz {
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
        } => {
            let time_box = match minutes {
                Some(m) if m.is_finite() && m > 0.0 => {
                    Some(std::time::Duration::from_secs_f64(m * 60.0))
                }
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
        Command::Sweep {
            scenario,
            out_dir,
            threads,
        } => {
            let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
            let records = sweep_command(&s, &display_path(&scenario), &out_dir, threads)?;
            println!(
                "{} records and summary.csv in {}",
                records.len(),
                out_dir.display()
            );
            Ok(exit_for(&records))
        }
        Command::Plot { dir, out_dir } => {
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
        Command::Saturate {
            scenario,
            out_dir,
            p99_ms,
            start,
            max,
            keep_up,
            resolution,
            threads,
        } => {
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
        Command::Timeline {
            scenario,
            from,
            to,
            after_recovery,
            out_dir,
        } => {
            let file = display_path(&scenario);
            let s = Scenario::load(&file, &Overrides::default())?;
            for path in bftbench::timeline::draw(&s, &file, from, to, after_recovery, &out_dir)? {
                println!("{}", path.display());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Diff {
            old,
            new,
            threshold,
            all,
        } => {
            let report = bftbench::diff::diff_dirs(&old, &new, threshold)?;
            print!("{}", bftbench::diff::table(&report, all));
            Ok(if report.regressions().next().is_some() {
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            })
        }
        Command::Calibrate { out, rounds } => calibrate_command(&out, rounds),
        Command::Compare {
            suite,
            out_dir,
            threads,
        } => compare_command(&suite, out_dir, threads),
        Command::Keygen {
            nodes,
            out_dir,
            base_addr,
            seed,
        } => {
            anyhow::ensure!(nodes >= 4, "--nodes {nodes}: need at least 4 for f >= 1");
            let file = bftbench::quic::keygen(nodes, base_addr, seed, &out_dir)?;
            println!(
                "{}: {} nodes, first at {}",
                out_dir.join("cluster.toml").display(),
                file.nodes.len(),
                base_addr
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Node {
            cluster,
            id,
            scenario,
            key,
            out,
            metrics,
        } => {
            let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
            eprintln!(
                "node {id}: {} of {}; Ctrl-C or SIGTERM stops it{}",
                s.protocol,
                cluster.display(),
                metrics
                    .map(|m| format!("; GET http://{m}/metrics"))
                    .unwrap_or_default()
            );
            let summary = bftbench::quic::run_node_with(
                &cluster,
                bft_core::NodeId(id),
                key.as_deref(),
                &s,
                &bftbench::quic::QuicOptions { metrics },
                bftbench::quic::shutdown_signal(),
            )?;
            let json = serde_json::json!({
                "id": id,
                "protocol": s.protocol.as_str(),
                "status": summary.status,
                "sent": summary.stats.sent.to_sorted(),
                "received": summary.stats.received.to_sorted(),
                "rejected": summary.stats.rejected.to_sorted(),
                "cpu_s": summary.cpu_s,
                "dropped_overload": summary.dropped_overload,
                "dropped_link": summary.dropped_link,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
            if let Some(out) = out {
                write_json(&out, &json)?;
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Client {
            cluster,
            scenario,
            out,
            record,
        } => {
            let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
            let c = bftbench::quic::run_client(&cluster, &s)?;
            if let Some(path) = record {
                let n = bft_net::ClusterFile::load(&cluster)?.nodes.len();
                write_json(&path, &bftbench::quic::client_record(&s, n, &c))?;
            }
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let l = c.latency;
            let json = serde_json::json!({
                "protocol": s.protocol.as_str(),
                "requests_issued": c.requests_issued,
                "requests_committed": c.requests_committed,
                "throughput_tx_s": c.throughput(s.load.warmup),
                "latency_ms": {
                    "p50": ms(l.p50), "p90": ms(l.p90), "p99": ms(l.p99), "p999": ms(l.p999), "max": ms(l.max),
                },
                "client_messages": c.client_messages,
                "client_bytes": c.client_bytes,
                "dropped_overload": c.dropped_overload,
                "wall_s": c.wall.as_secs_f64(),
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
            if let Some(out) = out {
                write_json(&out, &json)?;
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Validate { scenario } => validate_command(&display_path(&scenario)),
    }
}

/// `bftbench validate FILE`: a scenario or a compare suite.
fn validate_command(path: &Path) -> Result<std::process::ExitCode> {
    for line in bftbench::suite::validate_file(path)? {
        println!("{line}");
    }
    Ok(std::process::ExitCode::SUCCESS)
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

fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn exit_for(records: &[(String, bftbench::record::Record)]) -> std::process::ExitCode {
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

fn sweep_command(
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

fn compare_command(
    suite_path: &Path,
    out_dir: Option<PathBuf>,
    threads_arg: Option<usize>,
) -> Result<std::process::ExitCode> {
    use bftbench::suite::Suite;
    let started = Instant::now();
    let load_average = bftbench::calibrate::load_average();
    let suite = Suite::load(&display_path(suite_path))?;
    let out = out_dir.unwrap_or_else(|| suite.out_dir.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut sections = Vec::new();
    let mut all = Vec::new();
    let mut knees = Vec::new();
    for sweep in &suite.sweeps {
        let scenario = Scenario::load(&display_path(&sweep.scenario), &Overrides::default())?;
        eprintln!(
            "== {}: {}",
            sweep.name,
            display_path(&sweep.scenario).display()
        );
        let dir = out.join(&sweep.name);
        bftbench::suite::clear_section(&dir)?;
        let file = display_path(&sweep.scenario);
        let records = match &sweep.saturate {
            Some(cfg) => {
                let (k, records) = saturate_command(&scenario, &file, cfg, &dir, threads_arg)?;
                knees.extend(k);
                records
            }
            None => sweep_command(&scenario, &file, &dir, threads_arg)?,
        };
        for (file, r) in &records {
            all.push((format!("{}/{file}", sweep.name), r.clone()));
        }
        sections.push((sweep.clone(), records));
    }
    bftbench::sweep::write_csv(&out, &all)?;
    let mut plots = bftbench::plot::plot(&all, &knees, &out)?;
    let agreement = match &suite.sim_vs_quic {
        None => None,
        Some(v) => {
            let (rows, more) = sim_vs_quic_command(v, &out, threads_arg)?;
            plots.extend(more);
            Some((v, rows))
        }
    };
    let timelines = match &suite.timeline {
        None => Vec::new(),
        Some(t) => {
            let file = display_path(&t.scenario);
            eprintln!("== timeline: {}", file.display());
            let s = Scenario::load(&file, &Overrides::default())?;
            let dir = out.join("timeline");
            bftbench::suite::clear_section(&dir)?;
            bftbench::timeline::draw(&s, &file, t.from, t.to, t.after_recovery, &dir)?
        }
    };
    bftbench::html::copy_scenarios(&out, &sections)?;
    let html = bftbench::html::write(&bftbench::html::Page {
        out_dir: &out,
        plots: &plots,
        sections: &sections,
        knees: &knees,
        agreement: agreement.as_ref().map(|(v, rows)| (*v, rows.as_slice())),
        timelines: suite.timeline.as_ref().map(|t| (t, timelines.as_slice())),
        commit: &bftbench::record::git_rev(),
        load_average,
        elapsed_s: started.elapsed().as_secs_f64(),
    })?;
    print!("{}", bftbench::report::table(&all));
    if !knees.is_empty() {
        print!("\n{}", bftbench::saturate::table(&knees));
    }
    println!(
        "\nrecords, summary.csv and plots in {}/; open {}",
        out.display(),
        html.display()
    );
    println!("finished in {:.1}s", started.elapsed().as_secs_f64());
    Ok(exit_for(&all))
}

/// Searches each protocol's saturation rate, with a line per probe.
fn saturate_command(
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

/// The sim-vs-QUIC section: the sweep in both runtimes, then both at half
/// the QUIC saturation; writes the records, the CSV and the plot.
fn sim_vs_quic_command(
    v: &bftbench::suite::SimVsQuic,
    out: &Path,
    threads_arg: Option<usize>,
) -> Result<(Vec<bftbench::agreement::Row>, Vec<PathBuf>)> {
    use bftbench::agreement;
    let file = display_path(&v.scenario);
    eprintln!("== sim-vs-quic: {}", file.display());
    let base = Scenario::load(&file, &Overrides::default())?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let dir = out.join("sim-vs-quic");
    bftbench::suite::clear_section(&dir)?;
    let points = agreement::points(&base, &file, cores)?;
    let mut records = bftbench::sweep::run_points(&points, &dir, threads(threads_arg), &|p, _| {
        tracing::info!(point = %p.name, "done");
    })?;
    let half = agreement::half_points(&base, &file, cores, &records)?;
    records.extend(bftbench::sweep::run_points(
        &half,
        &dir,
        threads(threads_arg),
        &|p, _| {
            tracing::info!(point = %p.name, "done");
        },
    )?);
    bftbench::sweep::write_csv(&dir, &records)?;
    let rows = agreement::rows(&records);
    let csv = agreement::write_csv(out, &rows)?;
    print!("{}", agreement::csv(&rows));
    println!("sim-vs-QUIC comparison in {}", csv.display());
    let plots = bftbench::plot::plot_agreement(&records, out, cores)?;
    Ok((rows, plots))
}

fn overrides(a: OverrideArgs) -> Overrides {
    Overrides {
        protocol: a.protocol,
        nodes: a.nodes,
        seed: a.seed,
        runtime: a.runtime,
        crypto: a.crypto,
        duration: a.duration,
    }
}

fn run_command(
    path: &Path,
    args: OverrideArgs,
    out: Option<PathBuf>,
    metrics: Option<std::net::SocketAddr>,
) -> Result<std::process::ExitCode> {
    let scenario = Scenario::load(&display_path(path), &overrides(args))?;
    anyhow::ensure!(
        metrics.is_none() || scenario.runtime == Runtime::Quic,
        "--metrics {}: the simulator has no replicas to scrape (runtime = \"sim\"); \
         use it with --runtime quic or `bftbench node`",
        metrics.map(|m| m.to_string()).unwrap_or_default()
    );
    if let Some(k) = scenario.faulty_beyond_f() {
        eprintln!(
            "warning: {k} faulty nodes exceed f = {}: safety and liveness are not promised",
            scenario.f()
        );
    }
    let bar = Bar::new(format!("{} n={}", scenario.protocol, scenario.nodes));
    let record = match metrics {
        Some(base) => {
            eprintln!(
                "serving GET /metrics: replica i on {base} with port + i for the run's length"
            );
            bftbench::quic::run_scenario(
                &scenario,
                &bftbench::quic::QuicOptions {
                    metrics: Some(base),
                },
            )?
        }
        None => run::run(&scenario, &mut |fraction| bar.set(fraction))?,
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

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
