//! Generating a seeded random scenario: faults drawn from the whole
//! schema, partitions, a favoured leader, sampled Twins, all within a
//! chaos window after which the network heals.

use super::FuzzOptions;
use crate::protocols::BenchProtocol;
use crate::scenario::{LeadersTable, Placement, ProtocolName, Runtime, Scenario};
use bft_core::{Attack, BatchConfig, CryptoKind, Forgery, Mutation, NodeId};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig, Partition, Twins};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Faults and partitions all start within this window after time zero...
pub(super) const CHAOS_START: u64 = 600;
/// ...and those with an end last at most this long (ms).
pub(super) const CHAOS_LENGTH: u64 = 800;
/// How long a `fork` plan runs, see [`random_fault`] and
/// [`BenchProtocol::fork_window`].
pub(super) fn fork_length(protocol: ProtocolName) -> Duration {
    crate::with_protocol!(protocol, P => P::fork_window())
}

/// Open-loop load, requests/s, from two clients: enough to keep every
/// replica busy after the heal, little enough to keep a case cheap.
pub(super) const FUZZ_RATE: f64 = 50.0;

/// What every fuzz case shares, sampled or enumerated: `base`'s protocol
/// and knobs, simulated with model crypto under the fuzzer's open load and
/// capped back-off, seeded with the case seed.
pub(super) fn fuzz_setting(base: &Scenario, seed: u64) -> Scenario {
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
    // Drawn last, so that the draws above stay what they were for a seed.
    s.storage.fsync = if rng.gen_bool(0.5) {
        bft_sim::Fsync::Always
    } else {
        bft_sim::Fsync::Never
    };
    s
}

/// Sometimes the first faulty replica is the favoured leader, leading 2–5
/// views in a row (at most n, which the protocols' liveness bounds allow
/// for): what a Byzantine leader needs to build forks on certificates it
/// held back. One time in three; nine times in ten, and always the most
/// views in a row, when its attack is `fork` (a plan needs several views in
/// a row to line up a fork, and each view it leads is one more choice).
pub(super) fn random_favourite(
    rng: &mut ChaCha8Rng,
    n: usize,
    first: Option<&Fault>,
) -> Option<LeadersTable> {
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
pub(super) fn cap_back_off(s: &mut Scenario) {
    s.pbft.max_backoff_exponent = s.pbft.max_backoff_exponent.min(3);
    s.qbft.max_timeout_exponent = s.qbft.max_timeout_exponent.min(3);
    s.hotstuff.max_view_timeout = s.hotstuff.max_view_timeout.min(Duration::from_secs(4));
}

/// Long enough for the heal, the protocol's liveness bound and a margin;
/// with more than f faulty (a control), liveness is not promised, so just
/// a second past the heal.
pub(super) fn duration_for(s: &Scenario) -> Duration {
    let heal = crate::run::sim_config(s).heal_time();
    if s.faulty_beyond_f().is_some() {
        return heal + Duration::from_secs(1);
    }
    heal + liveness_bound(s) + Duration::from_millis(100)
}

pub(super) fn liveness_bound(s: &Scenario) -> Duration {
    use bft_core::Adversarial;
    let n = s.nodes;
    let leaders = s
        .leader_schedule()
        .ok()
        .flatten()
        .unwrap_or_else(|| bft_core::LeaderSchedule::round_robin(n));
    crate::with_protocol!(s.protocol, P => P::liveness_bound_for(&P::config(s), n, &leaders))
}

pub(super) fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// A random window: start in the chaos window, and an end (or none, for a
/// fault that lasts to the end of the run) with probability `p_end`.
pub(super) fn window(rng: &mut ChaCha8Rng, p_end: f64) -> (Duration, Option<Duration>) {
    let start = ms(rng.gen_range(0..CHAOS_START));
    let end = rng
        .gen_bool(p_end)
        .then(|| start + ms(rng.gen_range(50..=CHAOS_LENGTH)));
    (start, end)
}

/// Two groups: a random non-empty proper subset and the rest.
pub(super) fn random_partition(rng: &mut ChaCha8Rng, n: usize) -> Partition {
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

pub(super) fn random_peers(rng: &mut ChaCha8Rng, n: usize, me: NodeId) -> Vec<NodeId> {
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
pub(super) fn random_fault(
    rng: &mut ChaCha8Rng,
    protocol: ProtocolName,
    n: usize,
    node: NodeId,
) -> Fault {
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
        "swap-payload" => FaultKind::Attack(Attack::SwapPayload),
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
pub(super) fn random_twins(
    rng: &mut ChaCha8Rng,
    n: usize,
    twinned: Vec<NodeId>,
) -> (Twins, Vec<NodeId>) {
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
