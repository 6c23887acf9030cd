//! Throughput/latency benchmark (not a test): n = 4 replicas and one load
//! generator in this process on 127.0.0.1, open-loop load at rising rates,
//! 512-byte transactions, real crypto, every request sent to every replica.
//!
//! ```text
//! cargo run --release -p bft-net --example loopback_bench -- [protocols] [rates] [seconds] [batch]
//! cargo run --release -p bft-net --example loopback_bench -- hotstuff,pbft,qbft 10000,25000,50000,100000 5 800
//! ```
//!
//! BENCH_METRICS=127.0.0.1:9100 serves each replica's `/metrics` (replica i
//! on port 9100 + i) during the runs, to measure what the bookkeeping costs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bft_core::{BatchConfig, Protocol};
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_load::LoadConfig;
use bft_net::tls::PathProfile;
use bft_net::{LocalClusterConfig, QuicReport, run_local_cluster};
use bft_pbft::{Pbft, PbftConfig};
use bft_qbft::{Qbft, QbftConfig};
use std::time::Duration;

const WARMUP: Duration = Duration::from_secs(1);

fn config(rate: f64, secs: u64, batch: usize) -> LocalClusterConfig {
    LocalClusterConfig {
        nodes: 4,
        seed: 1,
        load: LoadConfig::open(rate, 16, 512).with_warmup(WARMUP),
        batch: BatchConfig {
            max_size: batch,
            max_delay: Duration::from_millis(5),
        },
        duration: Duration::from_secs(secs),
        path: if std::env::var_os("BENCH_CUBIC").is_some() {
            PathProfile::Network
        } else {
            PathProfile::Loopback
        },
        metrics: std::env::var("BENCH_METRICS")
            .ok()
            .map(|a| a.parse().expect("BENCH_METRICS: an IP:port")),
        ..LocalClusterConfig::default()
    }
}

async fn one<P: Protocol>(proto: P::Config, rate: f64, secs: u64, batch: usize) -> QuicReport {
    run_local_cluster::<P>(config(rate, secs, batch), proto)
        .await
        .expect("cluster run")
}

fn print(name: &str, rate: f64, r: &QuicReport) {
    let cpu: Vec<String> = r
        .cpu_s_per_node
        .iter()
        .map(|c| format!("{:.2}", c / r.load_wall.as_secs_f64()))
        .collect();
    println!(
        "| {name:8} | {rate:>7.0} | {:>9.0} | {:>8.1} | {:>8.1} | {:>8.1} | {:>6} | {:>4} | {:>9} | {:>5.2} | {} |",
        r.throughput(WARMUP),
        r.latency.p50.as_secs_f64() * 1e3,
        r.latency.p99.as_secs_f64() * 1e3,
        r.latency.max.as_secs_f64() * 1e3,
        r.decisions,
        r.view_changes,
        r.dropped_overload + r.dropped_link,
        r.process_cpu_s / r.wall.as_secs_f64(),
        cpu.join(" "),
    );
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        println!("    sent {:?}", r.stats.sent.to_sorted());
        println!("    rejected {:?}", r.stats.rejected.to_sorted());
        println!(
            "    issued {} committed {} measured {} dropped_overload {} dropped_link {} statuses {:?}",
            r.requests_issued,
            r.requests_committed,
            r.requests_measured,
            r.dropped_overload,
            r.dropped_link,
            r.statuses
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocols = args.get(1).map_or("hotstuff,pbft,qbft", String::as_str);
    let rates: Vec<f64> = args
        .get(2)
        .map_or("10000,25000,50000,100000", String::as_str)
        .split(',')
        .map(|r| r.parse().expect("rate"))
        .collect();
    let secs: u64 = args.get(3).map_or(5, |s| s.parse().expect("seconds"));
    let batch: usize = args.get(4).map_or(800, |s| s.parse().expect("batch"));
    println!(
        "n=4 loopback QUIC, 512 B tx, open loop 16 clients, batch {batch}/5ms, {secs} s (warm-up 1 s)"
    );
    println!(
        "| protocol | offered | tx/s      | p50 ms   | p99 ms   | max ms   | blocks | vc   | dropped   | cores | node-task cores (per node) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for p in protocols.split(',') {
        for &rate in &rates {
            let r = match p {
                "hotstuff" => one::<HotStuff>(HotStuffConfig::default(), rate, secs, batch).await,
                "pbft" => one::<Pbft>(PbftConfig::default(), rate, secs, batch).await,
                "qbft" => one::<Qbft>(QbftConfig::default(), rate, secs, batch).await,
                other => panic!("unknown protocol {other}"),
            };
            print(p, rate, &r);
        }
    }
}
