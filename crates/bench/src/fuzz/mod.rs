//! `bftbench fuzz`: seeded random scenarios — faults from the whole list,
//! partitions, delays, or Twins — each run in the simulator under the oracle
//! and the liveness check. A violation is shrunk to a minimal scenario that
//! `bftbench run` replays exactly (same code path: [`crate::run::simulate`]).
//!
//! Case `i` of a fuzz run with seed `S` has its own seed, `case_seed(S, i)`,
//! which seeds both the generator and the simulation, so one case can be
//! regenerated without the others.
//!
//! Twins (Bano et al., 2022) come two ways: seeded sampling (`--twins`),
//! for any bound, and exhaustive enumeration for small bounds (`--twins
//! --exhaustive R`, [`TwinsBound`]): every partition of the instances into
//! at most two groups and every leader, per round, for R rounds; case `k`
//! is the `k`-th scenario of that enumeration.
//!
//! This file runs cases (`fuzz`, `run_case`) and groups findings;
//! `generate.rs` draws a scenario, `twins.rs` enumerates Twins cases,
//! `shrink.rs` minimises a violation.

use crate::BenchError;
use crate::protocols::BenchProtocol;
use crate::run::{Stop, simulate_until};
use crate::scenario::Scenario;
use bft_core::mix::{GOLDEN_GAMMA, mix64};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod generate;
mod shrink;
mod twins;

pub use generate::generate;
pub use shrink::{shrink, to_toml};
pub use twins::{TwinsBound, TwinsRound, exhaustive_bound, split_groups, twins_case, twins_round};

/// What to fuzz.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// Protocol and its `[pbft]`/`[qbft]`/`[hotstuff]` knobs (a mutant is
    /// selected there); `nodes` is the committee size.
    pub base: Scenario,
    pub scenarios: u64,
    pub seed: u64,
    /// Twins scenarios instead of fault scenarios.
    pub twins: bool,
    /// `Some(R)`: every Twins scenario of R rounds ([`TwinsBound`], with
    /// `faulty` twinned identities, nodes `0..faulty`) instead of sampled
    /// ones; `twins` is then implied, and `scenarios` caps the count (the
    /// first `scenarios` in enumeration order; `u64::MAX` for all).
    pub exhaustive: Option<usize>,
    /// Faulty identities per scenario; `None` is f. More than f is a
    /// control: safety is no longer promised, and liveness is not checked.
    pub faulty: Option<usize>,
    pub threads: usize,
    /// Stop at the first case that violates.
    pub stop_at_first: bool,
    /// Time box: start no case after this much wall time (`None`: run all
    /// `scenarios`). Which cases ran then depends on thread timing; each
    /// finding still names its case and seed, so it replays exactly.
    pub time_box: Option<Duration>,
    /// Print one line per case to stderr (events, wall time, verdict).
    pub verbose: bool,
}

/// A violating case, shrunk.
#[derive(Clone, Debug)]
pub struct Finding {
    pub case: u64,
    /// The case's seed: `bftbench fuzz --seed S` reaches it as case `case`;
    /// the minimal scenario carries it as its `seed`.
    pub case_seed: u64,
    pub minimal: Scenario,
    /// Oracle violations and liveness failures of the minimal scenario.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct FuzzSummary {
    pub runs: u64,
    pub events: u64,
    pub wall: Duration,
    pub findings: Vec<Finding>,
}

impl FuzzSummary {
    pub fn per_second(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 { self.runs as f64 / s } else { 0.0 }
    }

    /// The findings grouped by [`signature`] of their first problem, in
    /// order of first appearance: (signature, the findings' indices).
    pub fn distinct(&self) -> Vec<(String, Vec<usize>)> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, finding) in self.findings.iter().enumerate() {
            let sig = finding
                .problems
                .first()
                .map_or_else(String::new, |p| signature(p));
            match groups.iter_mut().find(|(s, _)| *s == sig) {
                Some((_, members)) => members.push(i),
                None => groups.push((sig, vec![i])),
            }
        }
        groups
    }
}

/// A problem line with its numbers (node ids, counts, durations with their
/// unit) replaced by `#`: two findings with the same signature are the same
/// kind of violation ("liveness: node # committed nothing between the heal
/// at # and # (bound #; stuck at # decisions)").
pub fn signature(problem: &str) -> String {
    let mut out = String::with_capacity(problem.len());
    let mut chars = problem.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        out.push('#');
        while chars
            .peek()
            .is_some_and(|d| d.is_ascii_digit() || *d == '.')
        {
            chars.next();
        }
        // A unit right after the number ("615ms", "1.5s", "3µs") is part of it.
        let rest: String = chars.clone().take(3).collect();
        let unit = ["ms", "µs", "us", "ns", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u) && !rest[u.len()..].starts_with(char::is_alphanumeric));
        if let Some(u) = unit {
            for _ in 0..u.chars().count() {
                chars.next();
            }
        }
    }
    out
}

/// The seed of case `i` (splitmix64 of the run seed and the index), kept
/// below 2^63 because TOML integers are signed.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    mix64(seed ^ i.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)) >> 1
}

/// Runs the campaign: every case, on `threads` threads, findings in case
/// order (so the outcome does not depend on thread timing).
pub fn fuzz(opts: &FuzzOptions) -> Result<FuzzSummary, BenchError> {
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let runs = AtomicU64::new(0);
    let events = AtomicU64::new(0);
    let threads = opts.threads.clamp(1, 64);
    let bound = exhaustive_bound(opts)?;
    let total = match &bound {
        Some(b) => b.count()?.min(opts.scenarios),
        None => opts.scenarios,
    };
    let results: Vec<Result<Vec<Finding>, BenchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, runs, events, bound) = (&stop, &runs, &events, &bound);
                s.spawn(move || -> Result<Vec<Finding>, BenchError> {
                    let mut found = Vec::new();
                    let mut i = t as u64;
                    let in_time = || opts.time_box.is_none_or(|limit| started.elapsed() < limit);
                    while i < total && !stop.load(Ordering::Relaxed) && in_time() {
                        let seed = case_seed(opts.seed, i);
                        let scenario = match bound {
                            Some(b) => twins_case(&opts.base, b, seed, i)?,
                            None => generate(opts, seed),
                        };
                        let case_started = Instant::now();
                        let outcome = run_case(&scenario)?;
                        if opts.verbose {
                            eprintln!(
                                "case {i} seed {seed}: {} events, {:.1} ms wall, {}",
                                outcome.events,
                                case_started.elapsed().as_secs_f64() * 1e3,
                                outcome.problems.first().map_or("ok", String::as_str)
                            );
                        }
                        runs.fetch_add(1, Ordering::Relaxed);
                        events.fetch_add(outcome.events, Ordering::Relaxed);
                        if !outcome.problems.is_empty() {
                            let (minimal, problems) = shrink(scenario, outcome.problems)?;
                            found.push(Finding {
                                case: i,
                                case_seed: seed,
                                minimal,
                                problems,
                            });
                            if opts.stop_at_first {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        i += threads as u64;
                    }
                    Ok(found)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BenchError::Unsupported("a fuzz thread panicked".into()))
                })
            })
            .collect()
    });
    let mut findings = Vec::new();
    for r in results {
        findings.extend(r?);
    }
    findings.sort_by_key(|f| f.case);
    Ok(FuzzSummary {
        runs: runs.into_inner(),
        events: events.into_inner(),
        wall: started.elapsed(),
        findings,
    })
}

/// What one case produced.
pub struct CaseOutcome {
    pub problems: Vec<String>,
    pub events: u64,
}

/// Runs one scenario; its problems are the oracle's violations plus the
/// liveness check's failures.
pub fn run_case(s: &Scenario) -> Result<CaseOutcome, BenchError> {
    let quiet = &mut |_| {};
    let stop = Stop::AfterLivenessCheck;
    let (report, liveness) = crate::with_protocol!(s.protocol, P => {
        let r = simulate_until::<P>(s, P::config(s), quiet, stop)?;
        (r.report, r.liveness)
    });
    let mut problems = report.violations;
    problems.extend(liveness.failures);
    Ok(CaseOutcome {
        problems,
        events: report.events,
    })
}
#[cfg(test)]
mod tests {
    use super::twins::first_view;
    use super::*;
    use crate::scenario::ProtocolName;
    use bft_core::NodeId;

    fn base(protocol: ProtocolName, n: usize) -> Scenario {
        let text = format!("protocol = \"{protocol}\"\nnodes = {n}\n");
        Scenario::parse(&text, std::path::Path::new("t.toml")).unwrap()
    }

    fn opts(protocol: ProtocolName) -> FuzzOptions {
        FuzzOptions {
            base: base(protocol, 4),
            scenarios: 1,
            seed: 7,
            twins: false,
            exhaustive: None,
            faulty: None,
            threads: 1,
            stop_at_first: false,
            time_box: None,
            verbose: false,
        }
    }

    #[test]
    fn signatures_ignore_numbers_and_their_units() {
        let a = "liveness: node 0 committed nothing between the heal at 615ms and 68.615s (bound 68s; stuck at 0 decisions)";
        let b = "liveness: node 3 committed nothing between the heal at 1.037s and 61.037s (bound 60s; stuck at 15 decisions)";
        assert_eq!(signature(a), signature(b));
        assert_eq!(
            signature(a),
            "liveness: node # committed nothing between the heal at # and # (bound #; stuck at # decisions)"
        );
        assert_ne!(signature("agreement: slot 4 differs"), signature(a));
        assert_eq!(signature("3 msgs"), "# msgs", "a word is not a unit");
    }

    /// Campaigns must draw every fault the scenario schema has: a behaviour
    /// added to `bft_sim::BEHAVIOURS` without a generator arm here would
    /// silently be fuzzed as another one, and this test names it.
    #[test]
    fn fault_scenarios_draw_every_behaviour_of_the_schema() {
        for protocol in [
            ProtocolName::Pbft,
            ProtocolName::Qbft,
            ProtocolName::Hotstuff,
        ] {
            let o = opts(protocol);
            let drawn: std::collections::BTreeSet<&str> = (0..2000)
                .flat_map(|i| generate(&o, case_seed(11, i)).faults)
                .map(|f| f.kind.name())
                .collect();
            let schema: std::collections::BTreeSet<&str> =
                bft_sim::BEHAVIOURS.iter().copied().collect();
            assert_eq!(drawn, schema, "{protocol}");
        }
    }

    #[test]
    fn generation_is_a_function_of_the_seed_and_stays_within_f() {
        let o = opts(ProtocolName::Pbft);
        for i in 0..50 {
            let seed = case_seed(7, i);
            let a = generate(&o, seed);
            assert_eq!(a, generate(&o, seed));
            assert!(a.faulty_beyond_f().is_none(), "{a:?}");
            a.validate(std::path::Path::new("gen.toml")).unwrap();
        }
        let twins = FuzzOptions { twins: true, ..o };
        for i in 0..50 {
            let s = generate(&twins, case_seed(7, i));
            assert_eq!(s.twins.as_ref().unwrap().nodes.len(), 1);
            s.validate(std::path::Path::new("gen.toml")).unwrap();
        }
    }

    #[test]
    fn generated_scenarios_round_trip_through_toml() {
        let o = FuzzOptions {
            twins: true,
            ..opts(ProtocolName::Hotstuff)
        };
        for (twins, i) in [(true, 3), (false, 4), (false, 5)] {
            let o = FuzzOptions { twins, ..o.clone() };
            let s = generate(&o, case_seed(1, i));
            let text = to_toml(&s);
            let back = Scenario::parse(&text, std::path::Path::new("min.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, s, "{text}");
        }
    }

    #[test]
    fn twins_enumeration_counts_splits_and_leaders() {
        let b = TwinsBound::new(4, 1, 2).unwrap();
        assert_eq!((b.instances(), b.splits(), b.per_round()), (5, 16, 64));
        assert_eq!(b.count().unwrap(), 4096);
        assert_eq!(TwinsBound::new(4, 2, 1).unwrap().count().unwrap(), 32 * 4);
        assert!(TwinsBound::new(4, 5, 1).is_err());
        assert!(TwinsBound::new(4, 1, 0).is_err());
        assert!(TwinsBound::new(4, 1, 20).is_err(), "64^20 overflows");
    }

    #[test]
    fn split_groups_are_every_unordered_split_once() {
        for instances in 1..=6 {
            let mut seen = std::collections::BTreeSet::new();
            for split in 0..1u64 << (instances - 1) {
                let groups = split_groups(instances, split);
                assert!(groups.iter().all(|g| !g.is_empty()), "{groups:?}");
                let mut all: Vec<u16> = groups.concat();
                all.sort();
                assert_eq!(all, (0..instances as u16).collect::<Vec<_>>());
                let mut canonical: Vec<Vec<u16>> = groups.clone();
                canonical.sort();
                assert!(seen.insert(canonical), "{instances}: split {split} twice");
            }
            // Every subset and its complement is one split: 2^m / 2.
            assert_eq!(seen.len(), 1 << (instances - 1));
        }
        assert_eq!(split_groups(5, 0), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(split_groups(5, 0b0101), vec![vec![1, 3, 4], vec![0, 2]]);
    }

    #[test]
    fn twins_decode_is_a_bijection() {
        let b = TwinsBound::new(2, 1, 3).unwrap();
        let count = b.count().unwrap();
        assert_eq!(count, (4 * 2u64).pow(3));
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..count {
            let rounds = b.decode(k).unwrap();
            assert_eq!(rounds.len(), 3);
            assert_eq!(b.encode(&rounds), Some(k));
            let key: Vec<(u64, u16)> = rounds.iter().map(|r| (r.split, r.leader.0)).collect();
            assert!(seen.insert(key));
        }
        assert_eq!(b.decode(count), None);
        // Round 0 is the most significant digit.
        let last = b.decode(1).unwrap();
        assert_eq!((last[0].leader, last[2].leader), (NodeId(0), NodeId(1)));
    }

    #[test]
    fn every_enumerated_twins_case_is_valid() {
        for protocol in [
            ProtocolName::Pbft,
            ProtocolName::Qbft,
            ProtocolName::Hotstuff,
        ] {
            let o = FuzzOptions {
                exhaustive: Some(2),
                ..opts(protocol)
            };
            let b = exhaustive_bound(&o).unwrap().unwrap();
            assert_eq!(b, TwinsBound::new(4, 1, 2).unwrap());
            for k in 0..b.count().unwrap() {
                let s = twins_case(&o.base, &b, case_seed(7, k), k).unwrap();
                s.validate(std::path::Path::new("enum.toml")).unwrap();
                assert!(s.faulty_beyond_f().is_none());
                let t = s.twins.as_ref().unwrap();
                assert_eq!(t.nodes, vec![NodeId(0)]);
                assert_eq!(t.round, twins_round(&o.base));
                assert_eq!(t.partitions.len(), 2);
                let prefix = &s.leaders.as_ref().unwrap().prefix;
                let rounds = b.decode(k).unwrap();
                let first = first_view(protocol);
                assert_eq!(prefix.len(), first + 2);
                assert_eq!(prefix[first + 1], rounds[1].leader);
            }
            assert!(twins_case(&o.base, &b, 0, 4096).is_err());
        }
    }
}
