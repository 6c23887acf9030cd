//! `bftbench fuzz`: seeded random scenarios — faults from the whole list,
//! partitions, delays, or Twins — each run in the simulator under the oracle
//! and the liveness check. A violation is shrunk to a minimal scenario that
//! `bftbench run` replays exactly (same code path: [`crate::run::simulate`]).
//!
//! Case `i` of a fuzz run with seed `S` has its own seed, `case_seed(S, i)`,
//! which seeds both the generator and the simulation, so one case can be
//! regenerated without the others.

use crate::BenchError;
use crate::run::{Stop, simulate_until};
use crate::scenario::{LeadersTable, Placement, ProtocolName, Runtime, Scenario};
use bft_core::{Attack, BatchConfig, CryptoKind, Forgery, Mutation, NodeId};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig, Partition, Twins};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Faulty identities per scenario; `None` is f. More than f is a
    /// control: safety is no longer promised, and liveness is not checked.
    pub faulty: Option<usize>,
    pub threads: usize,
    /// Stop at the first case that violates.
    pub stop_at_first: bool,
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
}

/// The seed of case `i` (splitmix64 of the run seed and the index), kept
/// below 2^63 because TOML integers are signed.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 1
}

/// Runs the campaign: every case, on `threads` threads, findings in case
/// order (so the outcome does not depend on thread timing).
pub fn fuzz(opts: &FuzzOptions) -> Result<FuzzSummary, BenchError> {
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let runs = AtomicU64::new(0);
    let events = AtomicU64::new(0);
    let threads = opts.threads.clamp(1, 64);
    let results: Vec<Result<Vec<Finding>, BenchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, runs, events) = (&stop, &runs, &events);
                s.spawn(move || -> Result<Vec<Finding>, BenchError> {
                    let mut found = Vec::new();
                    let mut i = t as u64;
                    while i < opts.scenarios && !stop.load(Ordering::Relaxed) {
                        let seed = case_seed(opts.seed, i);
                        let scenario = generate(opts, seed);
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
    let (report, liveness) = match s.protocol {
        ProtocolName::Pbft => {
            let r = simulate_until::<bft_pbft::Pbft>(s, s.pbft.clone(), quiet, stop)?;
            (r.report, r.liveness)
        }
        ProtocolName::Qbft => {
            let r = simulate_until::<bft_qbft::Qbft>(s, s.qbft.clone(), quiet, stop)?;
            (r.report, r.liveness)
        }
        ProtocolName::Hotstuff => {
            let r = simulate_until::<bft_hotstuff::HotStuff>(s, s.hotstuff.clone(), quiet, stop)?;
            (r.report, r.liveness)
        }
    };
    let mut problems = report.violations;
    problems.extend(liveness.failures);
    Ok(CaseOutcome {
        problems,
        events: report.events,
    })
}

// ---------------------------------------------------------------------------
// Generation

/// Faults and partitions all start within this window after time zero...
const CHAOS_START: u64 = 600;
/// ...and those with an end last at most this long (ms).
const CHAOS_LENGTH: u64 = 800;
/// Open-loop load, requests/s, from two clients: enough to keep every
/// replica busy after the heal, little enough to keep a case cheap.
const FUZZ_RATE: f64 = 50.0;

/// One random scenario for `seed`.
pub fn generate(opts: &FuzzOptions, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = opts.base.nodes;
    let f = bft_core::committee::max_faulty(n);
    let faulty = opts.faulty.unwrap_or(f).min(n);
    let mut s = opts.base.clone();
    s.runtime = Runtime::Sim;
    s.crypto = CryptoKind::Model;
    s.seed = seed;
    s.sweep = None;
    s.load = LoadConfig::open(FUZZ_RATE, 2, 32);
    cap_back_off(&mut s);
    s.batch = BatchConfig {
        max_size: rng.gen_range(1..=4),
        max_delay: Duration::from_millis(2),
    };
    let max_delay = Duration::from_millis(rng.gen_range(2..=25));
    s.network = NetworkConfig::uniform(Duration::from_millis(1), max_delay);
    s.network.partitions = (0..rng.gen_range(0..=2))
        .map(|_| random_partition(&mut rng, n))
        .collect();
    let mut ids: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
    ids.shuffle(&mut rng);
    let chosen: Vec<NodeId> = ids.into_iter().take(faulty).collect();
    if opts.twins {
        s.faults = Vec::new();
        let (twins, prefix) = random_twins(&mut rng, n, chosen);
        s.twins = Some(twins);
        s.leaders = Some(LeadersTable {
            prefix,
            ..LeadersTable::default()
        });
    } else {
        s.twins = None;
        // One time in three a faulty replica is the favoured leader, leading
        // 2–5 views in a row (at most n, which the protocols' liveness
        // bounds allow for): what a Byzantine leader needs to build forks
        // on certificates it held back.
        s.leaders = match chosen.first() {
            Some(&favourite) if rng.gen_bool(1.0 / 3.0) => Some(LeadersTable {
                placement: Placement::Fixed,
                node: Some(favourite),
                weight: Some(rng.gen_range(2..=5.min(n))),
                prefix: Vec::new(),
            }),
            _ => None,
        };
        s.faults = chosen
            .into_iter()
            .map(|node| random_fault(&mut rng, n, node))
            .collect();
    }
    s.duration = duration_for(&s);
    s
}

/// Caps each protocol's timeout back-off (never loosening a tighter one):
/// the chaos lasts under 1.5 s, so higher caps are never reached in a
/// live case, and the liveness bound — which a stuck case simulates in
/// full — stays tens of seconds instead of minutes.
fn cap_back_off(s: &mut Scenario) {
    s.pbft.max_backoff_exponent = s.pbft.max_backoff_exponent.min(3);
    s.qbft.max_timeout_exponent = s.qbft.max_timeout_exponent.min(3);
    s.hotstuff.max_view_timeout = s.hotstuff.max_view_timeout.min(Duration::from_secs(4));
}

/// Long enough for the heal, the protocol's liveness bound and a margin;
/// with more than f faulty (a control), liveness is not promised, so just
/// a second past the heal.
fn duration_for(s: &Scenario) -> Duration {
    let heal = crate::run::sim_config(s).heal_time();
    if s.faulty_beyond_f().is_some() {
        return heal + Duration::from_secs(1);
    }
    heal + liveness_bound(s) + Duration::from_millis(100)
}

fn liveness_bound(s: &Scenario) -> Duration {
    use bft_core::Adversarial;
    let n = s.nodes;
    let leaders = s
        .leader_schedule()
        .ok()
        .flatten()
        .unwrap_or_else(|| bft_core::LeaderSchedule::round_robin(n));
    match s.protocol {
        ProtocolName::Pbft => bft_pbft::Pbft::liveness_bound_for(&s.pbft, n, &leaders),
        ProtocolName::Qbft => bft_qbft::Qbft::liveness_bound_for(&s.qbft, n, &leaders),
        ProtocolName::Hotstuff => {
            bft_hotstuff::HotStuff::liveness_bound_for(&s.hotstuff, n, &leaders)
        }
    }
}

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// A random window: start in the chaos window, and an end (or none, for a
/// fault that lasts to the end of the run) with probability `p_end`.
fn window(rng: &mut ChaCha8Rng, p_end: f64) -> (Duration, Option<Duration>) {
    let start = ms(rng.gen_range(0..CHAOS_START));
    let end = rng
        .gen_bool(p_end)
        .then(|| start + ms(rng.gen_range(50..=CHAOS_LENGTH)));
    (start, end)
}

/// Two groups: a random non-empty proper subset and the rest.
fn random_partition(rng: &mut ChaCha8Rng, n: usize) -> Partition {
    let (start, end) = window(rng, 1.0);
    let mut ids: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
    ids.shuffle(rng);
    let k = rng.gen_range(1..n);
    let mut side: Vec<NodeId> = ids.into_iter().take(k).collect();
    side.sort();
    Partition {
        start,
        end: end.unwrap_or(start + ms(CHAOS_LENGTH)),
        groups: vec![side],
    }
}

fn random_peers(rng: &mut ChaCha8Rng, n: usize, me: NodeId) -> Vec<NodeId> {
    let mut others: Vec<NodeId> = (0..n)
        .map(|i| NodeId(i as u16))
        .filter(|&id| id != me)
        .collect();
    others.shuffle(rng);
    let k = rng.gen_range(1..=others.len());
    let mut peers: Vec<NodeId> = others.into_iter().take(k).collect();
    peers.sort();
    peers
}

/// One fault from the whole list for `node`, with random parameters.
fn random_fault(rng: &mut ChaCha8Rng, n: usize, node: NodeId) -> Fault {
    let forgeries = [
        Forgery::BelowQuorum,
        Forgery::DuplicateSigners,
        Forgery::WrongRound,
        Forgery::WrongDigest,
    ];
    let mutations = [
        Mutation::RoundPlusOne,
        Mutation::RoundMinusOne,
        Mutation::StaleDigest,
        Mutation::SwapSender,
    ];
    let pick = rng.gen_range(0..bft_sim::BEHAVIOURS.len());
    let (start, end) = window(rng, 0.5);
    let kind = match bft_sim::BEHAVIOURS[pick] {
        "crash" => {
            let amnesia = end.is_some() && rng.gen_bool(0.3);
            FaultKind::Crash { amnesia }
        }
        "silent" => FaultKind::Silent,
        "omission" => FaultKind::Omission {
            peers: random_peers(rng, n, node),
        },
        "delay" => FaultKind::Delay {
            by: ms(rng.gen_range(5..=300)),
        },
        "stale-replay" => FaultKind::StaleReplay,
        "censor" => FaultKind::Censor {
            clients: vec![rng.gen_range(0..2)],
        },
        "equivocate" => FaultKind::Attack(Attack::Equivocate),
        "double-vote" => FaultKind::Attack(Attack::DoubleVote),
        "forge" => FaultKind::Attack(Attack::Forge(forgeries[rng.gen_range(0..4)])),
        "inflate-view" => {
            let by = [1, 2, 10, 1_000, 1 << 40][rng.gen_range(0..5)];
            FaultKind::Attack(Attack::InflateView(by))
        }
        "mutate" => FaultKind::Attack(Attack::Mutate(mutations[rng.gen_range(0..4)])),
        _ => FaultKind::Attack(Attack::BadSignature),
    };
    Fault {
        node,
        kind,
        start,
        end,
    }
}

/// Twins of `twinned`: 2–5 rounds of 50–300 ms, each a random split of the
/// instances into two groups (or, one time in four, no split), and leaders
/// pinned for the first views, often a twinned identity.
fn random_twins(rng: &mut ChaCha8Rng, n: usize, twinned: Vec<NodeId>) -> (Twins, Vec<NodeId>) {
    let instances = n + twinned.len();
    let rounds = rng.gen_range(2..=5);
    let round = ms([50, 100, 200, 300][rng.gen_range(0..4)]);
    let partitions = (0..rounds)
        .map(|_| {
            let all: Vec<u16> = (0..instances as u16).collect();
            if rng.gen_bool(0.25) {
                return vec![all];
            }
            let (a, b): (Vec<u16>, Vec<u16>) = all.into_iter().partition(|_| rng.gen_bool(0.5));
            vec![a, b]
        })
        .collect();
    let prefix = (0..rng.gen_range(0..=2 * rounds))
        .map(|_| {
            if !twinned.is_empty() && rng.gen_bool(0.5) {
                twinned[rng.gen_range(0..twinned.len())]
            } else {
                NodeId(rng.gen_range(0..n) as u16)
            }
        })
        .collect();
    let twins = Twins {
        nodes: twinned,
        round,
        partitions,
    };
    (twins, prefix)
}

// ---------------------------------------------------------------------------
// Shrinking

/// Greedy shrinking: drop one fault, partition, Twins round or pinned leader
/// at a time, keeping each removal after which the scenario still violates.
/// Returns the smallest scenario found and its problems.
pub fn shrink(
    mut s: Scenario,
    mut problems: Vec<String>,
) -> Result<(Scenario, Vec<String>), BenchError> {
    let mut tries = 0;
    'again: loop {
        for candidate in smaller(&s) {
            tries += 1;
            if tries > 200 {
                break 'again;
            }
            let outcome = run_case(&candidate)?;
            if !outcome.problems.is_empty() {
                s = candidate;
                problems = outcome.problems;
                continue 'again;
            }
        }
        break;
    }
    Ok((s, problems))
}

/// Every scenario one step smaller than `s`.
fn smaller(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for i in 0..s.network.partitions.len() {
        let mut c = s.clone();
        c.network.partitions.remove(i);
        out.push(c);
    }
    if let Some(t) = &s.twins {
        if !t.partitions.is_empty() {
            let mut c = s.clone();
            if let Some(ct) = c.twins.as_mut() {
                ct.partitions.pop();
            }
            out.push(c);
        }
    }
    if s.leaders.as_ref().is_some_and(|l| l.prefix.is_empty()) {
        let mut c = s.clone();
        c.leaders = None;
        out.push(c);
    }
    if let Some(l) = &s.leaders {
        if !l.prefix.is_empty() {
            let mut c = s.clone();
            if let Some(cl) = c.leaders.as_mut() {
                cl.prefix.pop();
            }
            out.push(c);
        }
    }
    for c in &mut out {
        c.duration = duration_for(c);
    }
    out
}

/// The scenario as a file `bftbench run` takes.
pub fn to_toml(s: &Scenario) -> String {
    match toml::to_string(s) {
        Ok(t) => t,
        Err(e) => format!("# cannot write this scenario as TOML: {e}\n{s:#?}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            faulty: None,
            threads: 1,
            stop_at_first: false,
            verbose: false,
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
}
