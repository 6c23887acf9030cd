#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! Simulator speed on the test-only toy protocol with model crypto:
//! `cargo run --release -p bft-sim --example speed`. Prints events and
//! protocol messages handled per second of wall time for n = 4, 64, 256.

#[path = "../tests/common/toy.rs"]
mod toy;

use bft_core::BatchConfig;
use bft_sim::{LoadConfig, SimConfig, Simulation};
use std::time::{Duration, Instant};
use toy::{Toy, ToyConfig};

fn main() {
    for n in [4usize, 64, 256] {
        let cfg = SimConfig {
            nodes: n,
            load: LoadConfig::closed(4, 4, 128).with_total(200_000 / n as u64),
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
        println!(
            "n={n:<4} decisions={:<7} events={:<9} messages={:<9} wall={wall:.2}s  {:.0} events/s  {:.0} messages/s  violations={}",
            report.decisions,
            report.events,
            msgs,
            report.events as f64 / wall,
            msgs as f64 / wall,
            report.violations.len()
        );
    }
}
