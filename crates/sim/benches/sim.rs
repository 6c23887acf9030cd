#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! Simulator speed: protocol messages delivered per second of wall time with
//! model crypto, at n = 4, 64 and 256, on the test-only toy protocol.
//! `cargo bench -p bft-sim` — criterion's "thrpt" is messages per second.

#[path = "../tests/it/common/toy.rs"]
mod toy;

use bft_core::BatchConfig;
use bft_sim::{LoadConfig, SimConfig, Simulation};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::time::Duration;
use toy::{Toy, ToyConfig};

fn scenario(n: usize) -> SimConfig {
    SimConfig {
        nodes: n,
        // One request per decision, as in examples/speed.rs: protocol
        // messages (3(n-1) per decision) dominate the n request arrivals.
        load: LoadConfig::closed(4, 4, 128).with_total(40_000 / n as u64),
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        duration: Duration::from_secs(600),
        keep_ledgers: false,
        ..SimConfig::default()
    }
}

fn messages(n: usize) -> u64 {
    let report = Simulation::<Toy>::new(scenario(n), ToyConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty());
    report.stats.total_sent().count
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_messages");
    g.sample_size(10);
    for n in [4usize, 64, 256] {
        g.throughput(Throughput::Elements(messages(n)));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                Simulation::<Toy>::new(scenario(n), ToyConfig::default())
                    .unwrap()
                    .run()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
/// criterion_main! with the bundled font registered first, so criterion's
/// plots render whatever plotters features the build unified.
fn main() {
    bft_plotfont::register();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
