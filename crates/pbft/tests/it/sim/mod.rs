//! PBFT in the deterministic simulator: exact message counts, faults,
//! Byzantine primaries, and the oracle (agreement, contiguity, hash chain,
//! at-most-once, validity) checked in every run.

use bft_core::{
    BatchConfig, CryptoKind, GENESIS, NodeId, Request, RequestId, Time, WireMessage, batch_digest,
};
use bft_pbft::{Pbft, PbftConfig, PbftMessage, PrePrepare, Vote, domain, pre_prepare_payload};
use bft_sim::{
    Fault, FaultKind, LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation,
};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::time::Duration;

mod byzantine;
mod counts;
mod faults;
mod findings;
mod leaders;
mod view_change;

fn sim_config(nodes: usize, load: LoadConfig) -> SimConfig {
    SimConfig {
        nodes,
        seed: 42,
        load,
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        ..SimConfig::default()
    }
}

fn sent(report: &SimReport, kind: &str) -> u64 {
    report.stats.sent.get(kind).map_or(0, |c| c.count)
}

fn rejected(sim: &Simulation<Pbft>, node: u16, reason: &str) -> u64 {
    sim.node(NodeId(node))
        .stats()
        .rejected
        .get(reason)
        .copied()
        .unwrap_or(0)
}

/// Request `number` of `client`, signed by the client's key in `sim`.
fn request(sim: &Simulation<Pbft>, client: u32, number: u64, fill: u8) -> Request {
    let mut r = Request::unsigned(RequestId { client, number }, Bytes::from(vec![fill; 32]));
    sim.client_signer(client).sign(&mut r);
    r
}

/// Honest ledgers: each contiguous from slot 1 and hash-chained (the oracle
/// checks it too), and equal slot by slot where both have decided.
fn assert_ledgers_agree(sim: &Simulation<Pbft>, honest: &[u16]) {
    for &a in honest {
        let la = sim.ledger(NodeId(a));
        let mut parent = GENESIS;
        for (k, d) in la.iter().enumerate() {
            assert_eq!(d.slot, k as u64 + 1, "replica {a}: no gap");
            assert_eq!(d.parent, parent, "replica {a}: chain");
            parent = d.block;
        }
        for &b in honest {
            for (x, y) in la.iter().zip(sim.ledger(NodeId(b))) {
                assert_eq!(
                    x.block, y.block,
                    "replicas {a} and {b} differ at slot {}",
                    x.slot
                );
            }
        }
    }
}

/// Re-signs a pre-prepare from primary 0 over another batch (same request
/// ids, different payload), as an equivocating primary would. The clients
/// collude: `clients` signs the other payloads (a client's signature alone
/// must not make two batches safe to commit).
fn equivocate(
    crypto: &dyn bft_core::Crypto,
    clients: &dyn Fn(u32) -> bft_crypto::ClientSigner,
    pp: &PrePrepare,
    fill: u8,
) -> PrePrepare {
    let batch: Vec<Request> = pp
        .batch
        .iter()
        .map(|r| {
            let mut other =
                Request::unsigned(r.id(), Bytes::from(vec![fill; r.payload().len().max(1)]));
            clients(r.id().client).sign(&mut other);
            other
        })
        .collect();
    let digest = batch_digest(&batch);
    PrePrepare {
        view: pp.view,
        seq: pp.seq,
        digest,
        sig: crypto.sign(
            domain::PRE_PREPARE,
            &pre_prepare_payload(pp.view, pp.seq, &digest),
        ),
        batch,
    }
}

fn sent_by(sim: &Simulation<Pbft>, node: u16, kind: &str) -> u64 {
    sim.node(NodeId(node))
        .stats()
        .sent
        .get(kind)
        .map_or(0, |c| c.count)
}

/// The rejection reason an attack by `node` must show up under in
/// `every_attack_by_one_replica_is_safe_live_and_bounded` (None: its messages
/// are validly signed, or it never applies there).
fn expected_rejection(node: u16, attack: bft_core::Attack) -> Option<&'static str> {
    use bft_core::{Attack, Forgery, Mutation};
    match attack {
        Attack::DoubleVote => Some("duplicate-prepare"),
        Attack::BadSignature => Some("bad-signature"),
        Attack::Forge(Forgery::BelowQuorum | Forgery::DuplicateSigners) => {
            Some("bad-prepared-cert")
        }
        // Relabelled to view 1 in a VIEW-CHANGE for view 1.
        Attack::Forge(Forgery::WrongRound) => Some("bad-view-change"),
        Attack::Forge(Forgery::WrongDigest) => Some("bad-signature"),
        // CHECKPOINTs at seq ± 1 (pre-prepares and votes of view ± 1 are
        // mostly stale or buffered, not invalid).
        Attack::Mutate(Mutation::RoundPlusOne | Mutation::RoundMinusOne) => {
            Some("checkpoint-off-interval")
        }
        // Only the primary's pre-prepares are checked against their batch;
        // a vote for GENESIS is valid and merely useless.
        Attack::Mutate(Mutation::StaleDigest) if node == 0 => Some("digest-mismatch"),
        Attack::Mutate(Mutation::SwapSender) => Some("sender-mismatch"),
        _ => None,
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// What differs between the shrunk `bftbench fuzz --protocol pbft` cases;
/// the rest is the fuzzer's fixed setting (see [`FuzzCase::replay`]).
struct FuzzCase {
    nodes: usize,
    seed: u64,
    duration: Duration,
    /// Upper bound of the uniform delays (from 1 ms).
    max_delay: Duration,
    partitions: Vec<bft_sim::Partition>,
    batch_size: usize,
    faults: Vec<Fault>,
    leaders: Option<bft_core::LeaderSchedule>,
    /// Where liveness is checked from.
    heal: Duration,
}

impl FuzzCase {
    /// Runs the case as the fuzzer did (`nodes` replicas, open load 50 tx/s from 2
    /// clients, 2 ms batch delay, view-change backoff capped at 2^3),
    /// asserts the oracle finds nothing and every replica that must be live
    /// commits again within the liveness bound for the leader schedule
    /// after `heal`, and returns the
    /// finished simulation and its report.
    fn replay(self) -> (Simulation<Pbft>, SimReport) {
        use bft_core::Adversarial;
        let mut network = NetworkConfig::uniform(ms(1), self.max_delay);
        network.partitions = self.partitions;
        let leaders = self
            .leaders
            .clone()
            .unwrap_or_else(|| bft_core::LeaderSchedule::round_robin(self.nodes));
        let cfg = SimConfig {
            nodes: self.nodes,
            seed: self.seed,
            duration: self.duration,
            network,
            load: LoadConfig::open(50.0, 2, 32),
            batch: BatchConfig {
                max_size: self.batch_size,
                max_delay: ms(2),
            },
            faults: self.faults,
            leaders: self.leaders,
            ..SimConfig::default()
        };
        let pbft = PbftConfig {
            max_backoff_exponent: 3,
            ..PbftConfig::default()
        };
        let bound = <Pbft as Adversarial>::liveness_bound_for(&pbft, self.nodes, &leaders);
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let stuck = sim.check_liveness(Time::from_duration(self.heal), bound);
        let report = sim.run();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(stuck.is_empty(), "{stuck:?}");
        (sim, report)
    }
}

fn resent(report: &SimReport, kind: &str) -> u64 {
    report.stats.resent.get(kind).map_or(0, |c| c.count)
}
