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

use crate::BenchError;
use crate::protocols::BenchProtocol;
use crate::run::{Stop, simulate_until};
use crate::scenario::{LeadersTable, Placement, ProtocolName, Runtime, Scenario};
use bft_core::mix::{GOLDEN_GAMMA, mix64};
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

// ---------------------------------------------------------------------------
// Generation

/// Faults and partitions all start within this window after time zero...
const CHAOS_START: u64 = 600;
/// ...and those with an end last at most this long (ms).
const CHAOS_LENGTH: u64 = 800;
/// How long a `fork` plan runs (ms), see [`random_fault`]: 5 s gives a
/// plan hundreds of choices at the fuzzer's load. HotStuff gets 20 s: the
/// fork that breaks its commit rule needs four views in a row with one
/// particular choice in each (about one run of four in a thousand), and
/// every run that goes wrong costs view timeouts. (At 5 s the HotStuff
/// `commit-indirect-chain` mutant was found once in 30 000 scenarios, at
/// 20 s four times; PBFT and QBFT, whose cases cost the most per simulated
/// second, keep the shorter window.)
fn fork_length(protocol: ProtocolName) -> Duration {
    match protocol {
        ProtocolName::Hotstuff => ms(20_000),
        ProtocolName::Pbft | ProtocolName::Qbft => ms(5_000),
    }
}
/// Open-loop load, requests/s, from two clients: enough to keep every
/// replica busy after the heal, little enough to keep a case cheap.
const FUZZ_RATE: f64 = 50.0;

/// What every fuzz case shares, sampled or enumerated: `base`'s protocol
/// and knobs, simulated with model crypto under the fuzzer's open load and
/// capped back-off, seeded with the case seed.
fn fuzz_setting(base: &Scenario, seed: u64) -> Scenario {
    let mut s = base.clone();
    s.runtime = Runtime::Sim;
    s.crypto = CryptoKind::Model;
    s.seed = seed;
    s.sweep = None;
    s.load = LoadConfig::open(FUZZ_RATE, 2, 32);
    cap_back_off(&mut s);
    s
}

/// One random scenario for `seed`.
pub fn generate(opts: &FuzzOptions, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = opts.base.nodes;
    let f = bft_core::committee::max_faulty(n);
    let faulty = opts.faulty.unwrap_or(f).min(n);
    let mut s = fuzz_setting(&opts.base, seed);
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
        s.faults = chosen
            .into_iter()
            .map(|node| random_fault(&mut rng, opts.base.protocol, n, node))
            .collect();
        s.leaders = random_favourite(&mut rng, n, s.faults.first());
    }
    s.duration = duration_for(&s);
    s
}

/// Sometimes the first faulty replica is the favoured leader, leading 2–5
/// views in a row (at most n, which the protocols' liveness bounds allow
/// for): what a Byzantine leader needs to build forks on certificates it
/// held back. One time in three; nine times in ten, and always the most
/// views in a row, when its attack is `fork` (a plan needs several views in
/// a row to line up a fork, and each view it leads is one more choice).
fn random_favourite(rng: &mut ChaCha8Rng, n: usize, first: Option<&Fault>) -> Option<LeadersTable> {
    let first = first?;
    let most = 5.min(n);
    let (p, weight) = match first.kind {
        FaultKind::Attack(Attack::Fork(_)) => (0.9, most..=most),
        _ => (1.0 / 3.0, 2..=most),
    };
    rng.gen_bool(p).then(|| LeadersTable {
        placement: Placement::Fixed,
        node: Some(first.node),
        weight: Some(rng.gen_range(weight)),
        prefix: Vec::new(),
    })
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
    crate::with_protocol!(s.protocol, P => P::liveness_bound_for(&P::config(s), n, &leaders))
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
fn random_fault(rng: &mut ChaCha8Rng, protocol: ProtocolName, n: usize, node: NodeId) -> Fault {
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
        // Below 2^63: TOML integers are signed.
        "fork" => FaultKind::Attack(Attack::Fork(rng.r#gen::<u64>() >> 1)),
        _ => FaultKind::Attack(Attack::BadSignature),
    };
    // A fork plan lines up only over many views it leads, so it runs for
    // `fork_length` and the liveness check starts after it; the others end
    // within the chaos window or never.
    let end = match kind {
        FaultKind::Attack(Attack::Fork(_)) => Some(start + fork_length(protocol)),
        _ => end,
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
// Exhaustive Twins

/// Most instances an exhaustive enumeration takes: 2^(instances − 1) splits
/// per round must fit a `u64` many times over, and no one runs more.
const MAX_TWINS_INSTANCES: usize = 24;
/// Message delays of an enumerated case: uniform in 1 ms..this. The
/// adversary is the partition and leader schedule; the delays are seeded by
/// the case seed, as in sampled cases.
const TWINS_MAX_DELAY: u64 = 10;

/// The bound of an exhaustive Twins enumeration (Bano et al., 2022, §4:
/// "exhaustive enumeration for small bounds"): `nodes` replicas, the first
/// `twins` of them (nodes `0..twins`, the canonical choice: every leader and
/// every split is enumerated anyway, so which identities are twinned only
/// relabels nodes) run as two instances, for `rounds` rounds.
///
/// Each round picks one of the [`TwinsBound::splits`] unordered partitions of
/// the `nodes + twins` instances into at most two groups (a split and its
/// complement are the same split, and "everyone together" is one of them),
/// and the leader of that round's view (`nodes` choices). Scenario `k` in
/// `0..count()` is `k` written in base `splits · nodes`, round 0 the most
/// significant digit (so the enumeration varies the last round fastest);
/// each digit `d` is split `d / nodes` and leader `d mod nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwinsBound {
    pub nodes: usize,
    pub twins: usize,
    pub rounds: usize,
}

/// One round of an enumerated scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwinsRound {
    /// Which instances are apart: see [`split_groups`].
    pub split: u64,
    /// The leader of the round's view.
    pub leader: NodeId,
}

impl TwinsBound {
    /// A bound an enumeration can count: at least one replica and round, at
    /// most `nodes` twins, and at most 2^64 − 1 scenarios.
    pub fn new(nodes: usize, twins: usize, rounds: usize) -> Result<TwinsBound, BenchError> {
        let bound = TwinsBound {
            nodes,
            twins,
            rounds,
        };
        if nodes == 0 || rounds == 0 {
            return Err(BenchError::Unsupported(
                "exhaustive Twins needs at least one node and one round".into(),
            ));
        }
        if twins > nodes || nodes + twins > MAX_TWINS_INSTANCES {
            return Err(BenchError::Unsupported(format!(
                "exhaustive Twins: {twins} twins of {nodes} nodes (at most n twins and {MAX_TWINS_INSTANCES} instances)"
            )));
        }
        bound.count()?;
        Ok(bound)
    }

    /// Instances: the nodes and their twins.
    pub fn instances(&self) -> usize {
        self.nodes + self.twins
    }

    /// Unordered splits of the instances into at most two groups:
    /// 2^(instances − 1).
    pub fn splits(&self) -> u64 {
        1u64 << self.instances().saturating_sub(1).min(63)
    }

    /// Choices per round: splits × leaders.
    pub fn per_round(&self) -> u64 {
        self.splits().saturating_mul(self.nodes as u64)
    }

    /// Scenarios in the enumeration: `per_round^rounds`.
    pub fn count(&self) -> Result<u64, BenchError> {
        u32::try_from(self.rounds)
            .ok()
            .and_then(|r| self.per_round().checked_pow(r))
            .ok_or_else(|| {
                BenchError::Unsupported(format!(
                    "exhaustive Twins: {}^{} scenarios do not fit in 64 bits; sample instead (no --exhaustive)",
                    self.per_round(),
                    self.rounds
                ))
            })
    }

    /// Scenario `k`'s rounds, or `None` past the end.
    pub fn decode(&self, k: u64) -> Option<Vec<TwinsRound>> {
        if k >= self.count().ok()? {
            return None;
        }
        let base = self.per_round();
        let n = self.nodes as u64;
        let mut digits: Vec<TwinsRound> = (0..self.rounds)
            .scan(k, |rest, _| {
                let d = *rest % base;
                *rest /= base;
                Some(TwinsRound {
                    split: d / n,
                    leader: NodeId(u16::try_from(d % n).ok()?),
                })
            })
            .collect();
        digits.reverse();
        Some(digits)
    }

    /// The number of a scenario: the inverse of [`TwinsBound::decode`].
    pub fn encode(&self, rounds: &[TwinsRound]) -> Option<u64> {
        if rounds.len() != self.rounds {
            return None;
        }
        let n = self.nodes as u64;
        rounds.iter().try_fold(0u64, |k, r| {
            let leader = r.leader.index() as u64;
            if r.split >= self.splits() || leader >= n {
                return None;
            }
            k.checked_mul(self.per_round())?
                .checked_add(r.split * n + leader)
        })
    }
}

/// The groups of split `split` of `instances` instances: instance `i <
/// instances − 1` is apart (in the second group) iff bit `i` of `split` is
/// set; the last instance always stays in the first group, which is what
/// makes each unordered split appear once. Split 0 is everyone together.
pub fn split_groups(instances: usize, split: u64) -> Vec<Vec<u16>> {
    let (apart, together): (Vec<u16>, Vec<u16>) = (0..instances)
        .filter_map(|i| u16::try_from(i).ok())
        .partition(|&i| i < 63 && usize::from(i) + 1 < instances && (split >> i) & 1 == 1);
    if apart.is_empty() {
        vec![together]
    } else {
        vec![together, apart]
    }
}

/// The length of one Twins round: the protocol's base view timeout
/// (`[pbft] view_change_timeout`, `[qbft] round_timeout`, `[hotstuff]
/// view_timeout`: 200, 200 and 500 ms by default), so that one round is
/// about one view.
///
/// Bano et al. (2022) advance Twins rounds with the protocol's rounds; the
/// simulator's rounds are spans of virtual time (`bft_sim::Twins`). A round
/// whose split leaves no side with a quorum makes no progress, so its view
/// lasts one view timeout, and every replica's timer moves it to the next
/// view — the one the next round's pinned leader leads (PBFT, QBFT). In
/// HotStuff a replica leaves a view only on a QC or n−f NEW-VIEWs, so with
/// no side holding n−f the view lasts until the heal and later rounds'
/// pinned leaders are reached only by the views a quorum side completes.
/// That is the case the enumeration is after (views that fail or fork).
/// Two approximations,
/// both in the adversary's favour of variety rather than against safety:
/// back-off makes later failed views longer than a round (PBFT doubles from
/// the second view change, HotStuff after each failed view), so a later
/// round may fall inside one view; and where a side holds a quorum, a
/// HotStuff or QBFT leader that makes progress ends its view within a few
/// network delays, so that round covers many views, led past the pinned
/// prefix by the round-robin rotation.
pub fn twins_round(s: &Scenario) -> Duration {
    crate::with_protocol!(s.protocol, P => P::base_timeout(&P::config(s)))
}

/// The first view a leader leads: PBFT's view 0, QBFT's slot 0 (height 1,
/// round 0), HotStuff's view 1 (view 0 is the genesis block's).
fn first_view(protocol: ProtocolName) -> usize {
    match protocol {
        ProtocolName::Pbft | ProtocolName::Qbft => 0,
        ProtocolName::Hotstuff => 1,
    }
}

/// The leader prefix pinning round r's leader on view `first_view + r`;
/// views before the first (HotStuff's genesis view 0) get round 0's leader,
/// so the prefix names no leader the scenario did not choose.
fn twins_prefix(protocol: ProtocolName, rounds: &[TwinsRound]) -> Vec<NodeId> {
    let first = rounds.first().map(|r| r.leader);
    first
        .into_iter()
        .cycle()
        .take(first_view(protocol))
        .chain(rounds.iter().map(|r| r.leader))
        .collect()
}

/// The Twins table of an enumerated scenario: nodes `0..twins` twinned,
/// one partition per round, rounds of [`twins_round`].
fn twins_table(bound: &TwinsBound, round: Duration, rounds: &[TwinsRound]) -> Twins {
    Twins {
        nodes: (0..bound.twins)
            .filter_map(|i| u16::try_from(i).ok())
            .map(NodeId)
            .collect(),
        round,
        partitions: rounds
            .iter()
            .map(|r| split_groups(bound.instances(), r.split))
            .collect(),
    }
}

/// Scenario `k` of the enumeration `bound` on `base` (its protocol, knobs
/// and mutant), simulated with `seed`: the same load and liveness run
/// length as a sampled case, no faults or partitions besides the Twins
/// rounds, after which the network heals and the liveness check runs.
pub fn twins_case(
    base: &Scenario,
    bound: &TwinsBound,
    seed: u64,
    k: u64,
) -> Result<Scenario, BenchError> {
    let rounds = bound.decode(k).ok_or_else(|| {
        BenchError::Unsupported(format!(
            "exhaustive Twins: case {k}, but the bound has {} cases",
            bound.count().unwrap_or(u64::MAX)
        ))
    })?;
    let mut s = fuzz_setting(base, seed);
    s.nodes = bound.nodes;
    s.batch = BatchConfig {
        max_size: 2,
        max_delay: Duration::from_millis(2),
    };
    s.network = NetworkConfig::uniform(ms(1), ms(TWINS_MAX_DELAY));
    s.faults = Vec::new();
    s.twins = Some(twins_table(bound, twins_round(base), &rounds));
    s.leaders = Some(LeadersTable {
        prefix: twins_prefix(s.protocol, &rounds),
        ..LeadersTable::default()
    });
    s.duration = duration_for(&s);
    Ok(s)
}

/// The enumeration `opts` asks for, if exhaustive: `faulty` twins (default
/// f) of `base.nodes`.
pub fn exhaustive_bound(opts: &FuzzOptions) -> Result<Option<TwinsBound>, BenchError> {
    let n = opts.base.nodes;
    let twins = opts.faulty.unwrap_or(bft_core::committee::max_faulty(n));
    opts.exhaustive
        .map(|rounds| TwinsBound::new(n, twins, rounds))
        .transpose()
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
