//! Messages per decision against 2(n−1) for n = 4 … 256 with model crypto.
//! Ignored by default (the n = 256 runs take a few seconds); run with
//! `cargo test -p bft-hotstuff --release --test it sweep:: -- --ignored --nocapture`.

use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_sim::{LoadConfig, SimConfig, Simulation};

#[test]
#[ignore = "sweep up to n = 256; prints the table for the report"]
fn messages_per_decision_sweep_n4_to_n256() {
    let requests = 50u64;
    println!(
        "| n | decisions | proposal | vote | msgs/decision | 2(n-1) | bytes/decision | p50 latency |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4usize, 8, 16, 32, 64, 128, 256] {
        let cfg = SimConfig {
            nodes: n,
            seed: 1,
            load: LoadConfig::closed(1, 1, 128).with_total(requests),
            keep_ledgers: false,
            ..SimConfig::default()
        };
        let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
        let report = sim.run();
        assert!(report.violations.is_empty());
        assert_eq!(report.requests_committed, requests);
        let d = report.decisions;
        let proposals = report.stats.sent.get("proposal").unwrap().count;
        let votes = report.stats.sent.get("vote").unwrap().count;
        let peers = n as u64 - 1;
        // Exact: (n−1) of each per proposed block; 3 blocks at the end of the
        // run are proposed and voted on but not committed.
        assert_eq!(proposals, peers * (d + 3));
        assert_eq!(votes, peers * (d + 3));
        let total = report.stats.total_sent();
        println!(
            "| {n} | {d} | {proposals} | {votes} | {:.2} | {} | {:.0} | {:?} |",
            (proposals + votes) as f64 / d as f64,
            2 * peers,
            total.bytes as f64 / d as f64,
            report.latency.p50,
        );
    }
}
