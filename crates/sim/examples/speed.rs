#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! Simulator speed on the test-only toy protocol with model crypto:
//! `cargo run --release -p bft-sim --example speed`. Prints events and
//! messages handled per second of wall time for n = 4, 64, 256: protocol
//! messages alone, and with the clients' requests (one delivery to each
//! replica) and replies, which the simulator delivers as well.

#[path = "../tests/it/common/toy.rs"]
mod toy;

use bft_core::BatchConfig;
use bft_sim::{LoadConfig, SimConfig, Simulation};
use std::time::{Duration, Instant};
use toy::{Toy, ToyConfig};

/// `SPEED_N=64 SPEED_REQUESTS=20000` picks one size and fewer requests
/// (for profiling under valgrind).
fn main() {
    let sizes: Vec<usize> = match std::env::var("SPEED_N").ok().and_then(|v| v.parse().ok()) {
        Some(n) => vec![n],
        None => vec![4, 64, 256],
    };
    let requests: u64 = std::env::var("SPEED_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for n in sizes {
        let cfg = SimConfig {
            nodes: n,
            load: LoadConfig::closed(4, 4, 128).with_total(requests / n as u64),
            batch: BatchConfig {
                max_size: 1,
                max_delay: Duration::from_millis(1),
            },
            duration: Duration::from_secs(3600),
            keep_ledgers: false,
            ..SimConfig::default()
        };
        let started = Instant::now();
        let report = Simulation::<Toy>::new(cfg, ToyConfig::default())
            .unwrap()
            .run();
        let wall = started.elapsed().as_secs_f64();
        let msgs = report.stats.total_sent().count;
        let all = msgs + report.client_messages;
        println!(
            "n={n:<4} decisions={:<7} events={:<9} messages={:<9} wall={wall:.2}s  {:.0} events/s  {:.0} protocol messages/s  {:.0} with client requests and replies  violations={}",
            report.decisions,
            report.events,
            msgs,
            report.events as f64 / wall,
            msgs as f64 / wall,
            all as f64 / wall,
            report.violations.len()
        );
    }
}
