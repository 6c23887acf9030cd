#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! The fuzzer in CI: fixed seeds, so every run checks the same scenarios.
//!
//! - At most f faulty: 10 000 scenarios per protocol at n = 4 (fault lists
//!   and Twins) and a few hundred at n = 7 must all be safe and live.
//! - Controls: f+1 twinned identities must produce an agreement violation
//!   for every protocol — the oracle can see a fork when one happens.
//!
//! `FUZZ_SCALE` (a float, default 1) scales the counts for a quick local run.

use bftbench::fuzz::{FuzzOptions, FuzzSummary, fuzz, to_toml};
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;

fn base(protocol: ProtocolName, n: usize) -> Scenario {
    let text = format!("protocol = \"{protocol}\"\nnodes = {n}\n");
    Scenario::parse(&text, Path::new("ci.toml")).unwrap()
}

fn scaled(count: u64) -> u64 {
    let scale: f64 = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((count as f64 * scale).ceil() as u64).max(1)
}

fn campaign(
    protocol: ProtocolName,
    n: usize,
    scenarios: u64,
    seed: u64,
    twins: bool,
    faulty: Option<usize>,
) -> FuzzSummary {
    let opts = FuzzOptions {
        base: base(protocol, n),
        scenarios,
        seed,
        twins,
        faulty,
        threads: 1,
        // Controls stop at their first fork; clean campaigns run every case,
        // so a failure lists every violating seed, not just the first.
        stop_at_first: faulty.is_some(),
        verbose: false,
    };
    let s = fuzz(&opts).unwrap();
    eprintln!(
        "{protocol} n={n} twins={twins} faulty={faulty:?}: {} scenarios in {:.1}s ({:.0}/min), {} violating",
        s.runs,
        s.wall.as_secs_f64(),
        s.per_second() * 60.0,
        s.findings.len()
    );
    s
}

/// No finding; otherwise fail with every violating seed and the first
/// minimal scenario.
fn assert_clean(s: &FuzzSummary) {
    if let Some(f) = s.findings.first() {
        let seeds: Vec<u64> = s.findings.iter().map(|f| f.case_seed).collect();
        panic!(
            "{} violating cases, seeds {seeds:?}; case {} (seed {}) violates: {:?}\n--- minimal scenario (bftbench run it) ---\n{}",
            s.findings.len(),
            f.case,
            f.case_seed,
            f.problems,
            to_toml(&f.minimal)
        );
    }
}

fn within_f(protocol: ProtocolName) {
    let n4_faults = campaign(protocol, 4, scaled(8_000), 1, false, None);
    assert_clean(&n4_faults);
    let n4_twins = campaign(protocol, 4, scaled(2_000), 2, true, None);
    assert_clean(&n4_twins);
    assert!(n4_faults.runs + n4_twins.runs >= scaled(10_000));
    assert_clean(&campaign(protocol, 7, scaled(200), 3, false, None));
    assert_clean(&campaign(protocol, 7, scaled(100), 4, true, None));
}

#[test]
fn pbft_fuzz_within_f_is_safe_and_live() {
    within_f(ProtocolName::Pbft);
}

#[test]
fn qbft_fuzz_within_f_is_safe_and_live() {
    within_f(ProtocolName::Qbft);
}

#[test]
fn hotstuff_fuzz_within_f_is_safe_and_live() {
    within_f(ProtocolName::Hotstuff);
}

/// f+1 = 2 twinned identities at n = 4: two sides of a partition can each
/// gather a quorum, and the fuzzer must find the fork.
#[test]
fn f_plus_one_twins_fork_every_protocol() {
    for protocol in [
        ProtocolName::Pbft,
        ProtocolName::Qbft,
        ProtocolName::Hotstuff,
    ] {
        let s = campaign(protocol, 4, 2_000, 5, true, Some(2));
        let found = s.findings.first().unwrap_or_else(|| {
            panic!("{protocol}: 2 000 scenarios with f+1 twins and no violation")
        });
        assert!(
            found.problems.iter().any(|p| p.starts_with("agreement")),
            "{protocol}: {:?}",
            found.problems
        );
        eprintln!(
            "{protocol}: control violated in case {} (seed {}): {}",
            found.case, found.case_seed, found.problems[0]
        );
    }
}
