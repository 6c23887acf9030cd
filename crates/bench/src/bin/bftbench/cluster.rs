//! `bftbench keygen`, `node` and `client`: a multi-process or multi-host QUIC cluster.

use crate::common::write_json;
use anyhow::Result;
use bftbench::scenario::{Overrides, Scenario, display_path};
use std::path::PathBuf;
use std::time::Duration;

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct KeygenArgs {
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
    /// Client keys to write: client j signs the requests of the load
    /// generator's logical client j, so a scenario's `[load] clients` must
    /// not exceed this
    #[arg(long, default_value_t = 16)]
    clients: u32,
}

pub fn keygen(args: KeygenArgs) -> Result<std::process::ExitCode> {
    let KeygenArgs {
        nodes,
        out_dir,
        base_addr,
        seed,
        clients,
    } = args;
    anyhow::ensure!(nodes >= 4, "--nodes {nodes}: need at least 4 for f >= 1");
    let file = bftbench::quic::keygen(nodes, clients, base_addr, seed, &out_dir)?;
    println!(
        "{}: {} nodes, first at {}",
        out_dir.join("cluster.toml").display(),
        file.nodes.len(),
        base_addr
    );
    Ok(std::process::ExitCode::SUCCESS)
}

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct NodeArgs {
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
    /// Persist the replica's durable state and committed ledger in this
    /// directory before anything that depends on them is sent; started
    /// again on the same directory, the replica resumes from it. Without
    /// it the replica keeps nothing.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// always: every write is forced to the disk (survives a power loss);
    /// never: writes reach the OS only (survive a killed process, not a
    /// power loss). Only with --data-dir.
    #[arg(long, default_value = "always", requires = "data_dir")]
    fsync: bft_core::Fsync,
    /// Serve an HTTP ingress on this TCP address: `POST /submit` with a
    /// transaction as the body, answered 200 when this replica commits it
    /// (503 when overloaded, 504 when not committed in time; every status
    /// in docs/deployment.md#http-ingress)
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Ingress requests that may wait for their commit at once; more are
    /// answered 503 (admission)
    #[arg(long, value_name = "N", requires = "http", default_value_t = bft_net::ingress::DEFAULT_MAX_PENDING as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_max_pending: u64,
    /// How long an ingress request waits for its commit before a 504
    #[arg(long, value_name = "DURATION", requires = "http", default_value = "30s",
          value_parser = humantime::parse_duration)]
    http_commit_wait: Duration,
}

pub fn node(args: NodeArgs) -> Result<std::process::ExitCode> {
    let NodeArgs {
        cluster,
        id,
        scenario,
        key,
        out,
        metrics,
        data_dir,
        fsync,
        http,
        http_max_pending,
        http_commit_wait,
    } = args;
    let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
    eprintln!(
        "node {id}: {} of {}; Ctrl-C or SIGTERM stops it{}{}{}",
        s.protocol,
        cluster.display(),
        metrics
            .map(|m| format!("; GET http://{m}/metrics"))
            .unwrap_or_default(),
        data_dir
            .as_ref()
            .map(|d| format!("; data in {} (fsync {})", d.display(), fsync.as_str()))
            .unwrap_or_default(),
        http.map(|a| format!("; POST http://{a}/submit"))
            .unwrap_or_default()
    );
    let store = data_dir.map(|dir| bft_net::durable::StoreConfig { dir, fsync });
    let summary = bftbench::quic::run_node_with(
        &cluster,
        bft_core::NodeId(id),
        key.as_deref(),
        &s,
        &bftbench::quic::QuicOptions {
            metrics,
            store,
            http: http.map(|addr| bft_net::ingress::IngressConfig {
                max_pending: usize::try_from(http_max_pending).unwrap_or(usize::MAX),
                commit_wait: http_commit_wait,
                ..bft_net::ingress::IngressConfig::new(addr)
            }),
        },
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
        "resumed_at": summary.resumed_at,
        "first_commit_s": summary.first_commit_s,
        "snapshots_installed": summary.stats.snapshots_installed,
        "store_writes": summary.store_writes,
        "store_s": summary.store_s,
        "forwarded_requests": summary.forwarded_requests,
        "dropped_forwards": summary.dropped_forwards,
        "http": summary.ingress.as_ref().map(|s| s.to_sorted()),
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    if let Some(out) = out {
        write_json(&out, &json)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

// The subcommand's about text is the doc comment on its `Command` variant.
#[derive(clap::Args)]
pub struct ClientArgs {
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
    /// Write the id of every request seen committed (f+1 replies) here,
    /// one `client:number` per line, for `bftbench ledger verify
    /// --requests`
    #[arg(long, value_name = "FILE")]
    committed: Option<PathBuf>,
}

pub fn client(args: ClientArgs) -> Result<std::process::ExitCode> {
    let ClientArgs {
        cluster,
        scenario,
        out,
        record,
        committed,
    } = args;
    let s = Scenario::load(&display_path(&scenario), &Overrides::default())?;
    let c = bftbench::quic::run_client(&cluster, &s, committed.is_some())?;
    if let Some(path) = committed {
        bftbench::ledger::write_request_ids(&path, &c.committed_ids)?;
    }
    if let Some(path) = record {
        let n = bft_net::ClusterFile::load(&cluster)?.nodes.len();
        write_json(&path, &bftbench::quic::client_record(&s, n, &c))?;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let l = c.latency;
    let json = serde_json::json!({
        "protocol": s.protocol.as_str(),
        "requests_issued": c.requests_issued,
        "requests_rejected": c.requests_rejected,
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
