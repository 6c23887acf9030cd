//! QBFT hot paths with real Ed25519, and decisions per second of a simulated
//! 4-node cluster with real crypto.
//!
//! `cargo bench -p bft-qbft -- --warm-up-time 1 --measurement-time 3`
//!
//! - `backup_block`: one replica taking a block from PROPOSAL to decision
//!   (verify proposal, sign PREPARE, verify 2 PREPAREs, sign COMMIT + seal,
//!   verify 2 COMMITs with seals): the per-block cost of a backup at n = 4.
//! - `justified_proposal/n`: verifying a round-1 PROPOSAL that re-proposes a
//!   prepared block, with q ROUND-CHANGEs and q PREPAREs (batch-verified).
//! - `sim_decisions`: `Simulation::run` over 200 single-request blocks; the
//!   throughput line is decisions per wall-clock second.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{
    BatchConfig, Committee, Crypto, CryptoKind, GENESIS, Input, NodeContext, NodeId, Request,
    RequestId, Time,
};
use bft_crypto::{CostModel, cluster};
use bft_qbft::messages::{
    Block, PreparePayload, Proposal, ProposalPayload, QbftMessage, RoundChangePayload, Signed,
    signed_commit,
};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{LoadConfig, SimConfig, Simulation};
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use std::sync::Arc;

type Cluster = (Arc<Committee>, Vec<Arc<dyn Crypto>>);

fn replica(cluster: &Cluster, id: u16) -> Qbft {
    Qbft::new(
        NodeContext {
            id: NodeId(id),
            committee: cluster.0.clone(),
            crypto: cluster.1[usize::from(id)].clone(),
            batch: BatchConfig::default(),
        },
        &QbftConfig::default(),
    )
}

fn block(proposer: u16) -> Block {
    Block {
        height: 1,
        parent: GENESIS,
        proposer: NodeId(proposer),
        // The core alone, without a `Node`: no client signature is checked.
        requests: vec![Request::unsigned(
            RequestId {
                client: 0,
                number: 1,
            },
            Bytes::from(vec![0u8; 128]),
        )],
    }
}

fn proposal(
    c: &dyn Crypto,
    round: u64,
    block: &Block,
    round_changes: Vec<Signed<RoundChangePayload>>,
    prepares: Vec<Signed<PreparePayload>>,
) -> QbftMessage {
    QbftMessage::Proposal(Box::new(Proposal {
        signed: Signed::sign(
            c,
            ProposalPayload {
                height: 1,
                round,
                digest: block.hash(),
            },
        ),
        block: block.clone(),
        round_changes,
        prepares,
    }))
}

fn feed(replica: &mut Qbft, msgs: &[(u16, QbftMessage)]) -> usize {
    let mut out = Vec::new();
    for (from, msg) in msgs {
        replica
            .handle(
                Time::ZERO,
                Input::Message {
                    from: NodeId(*from),
                    msg: msg.clone(),
                },
                &mut out,
            )
            .unwrap();
    }
    out.len()
}

fn backup_block(c: &mut Criterion) {
    let cl = cluster(4, 1, CryptoKind::Real, CostModel::zero()).unwrap();
    let b = block(0);
    let d = b.hash();
    let mut msgs = vec![(0, proposal(cl.1[0].as_ref(), 0, &b, vec![], vec![]))];
    for s in [0u16, 1] {
        let prepare = Signed::sign(
            cl.1[usize::from(s)].as_ref(),
            PreparePayload {
                height: 1,
                round: 0,
                digest: d,
            },
        );
        msgs.push((s, QbftMessage::Prepare(prepare)));
    }
    for s in [0u16, 1] {
        msgs.push((
            s,
            QbftMessage::Commit(signed_commit(cl.1[usize::from(s)].as_ref(), 1, 0, d)),
        ));
    }
    let mut g = c.benchmark_group("qbft");
    g.throughput(Throughput::Elements(1));
    g.bench_function("backup_block", |bch| {
        bch.iter_batched(
            || replica(&cl, 2),
            |mut r| {
                feed(&mut r, &msgs);
                assert_eq!(r.height(), 2);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn justified_proposal(c: &mut Criterion) {
    let mut g = c.benchmark_group("qbft/justified_proposal");
    g.throughput(Throughput::Elements(1));
    for n in [4usize, 16] {
        let cl = cluster(n, 1, CryptoKind::Real, CostModel::zero()).unwrap();
        let q = cl.0.quorum_two_thirds();
        let signer = |i: usize| cl.1[i].as_ref();
        let b = block(0);
        let d = b.hash();
        let round_changes: Vec<_> = (0..q)
            .map(|i| {
                Signed::sign(
                    signer(i),
                    RoundChangePayload {
                        height: 1,
                        round: 1,
                        prepared_round: (i == 0).then_some(0),
                        prepared_value: (i == 0).then_some(d),
                    },
                )
            })
            .collect();
        let prepares: Vec<_> = (0..q)
            .map(|i| {
                Signed::sign(
                    signer(i),
                    PreparePayload {
                        height: 1,
                        round: 0,
                        digest: d,
                    },
                )
            })
            .collect();
        // proposer(1, 1) = node 1; the receiver is the last node.
        let msgs = vec![(1u16, proposal(signer(1), 1, &b, round_changes, prepares))];
        let receiver = u16::try_from(n - 1).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(n), &msgs, |bch, msgs| {
            bch.iter_batched(
                || replica(&cl, receiver),
                |mut r| {
                    feed(&mut r, msgs);
                    assert_eq!(r.round(), 1);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn sim_decisions(c: &mut Criterion) {
    const BLOCKS: u64 = 200;
    let mut g = c.benchmark_group("qbft/sim_decisions");
    g.throughput(Throughput::Elements(BLOCKS));
    g.sample_size(10);
    g.bench_function("n4_real_crypto", |bch| {
        bch.iter_batched(
            || {
                let cfg = SimConfig {
                    nodes: 4,
                    crypto: CryptoKind::Real,
                    load: LoadConfig::closed(1, 1, 128).with_total(BLOCKS),
                    ..SimConfig::default()
                };
                Simulation::<Qbft>::new(cfg, QbftConfig::default()).unwrap()
            },
            |mut sim| {
                let report = sim.run();
                assert_eq!(report.decisions, BLOCKS);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The raw crypto the paths above pay, on this machine at this moment, to
/// read their figures against: one Ed25519 sign, one verify, and a batch
/// verification of 7 (a round-1 proposal at n = 4: 1 + 3 + 3).
fn crypto_baseline(c: &mut Criterion) {
    const DOMAIN: &str = "bftbench/bench/v1";
    let cl = cluster(4, 1, CryptoKind::Real, CostModel::zero()).unwrap();
    let msg = [7u8; 48];
    let sig = cl.1[1].sign(DOMAIN, &msg);
    let items: Vec<bft_core::SignedItem<'_>> = (0..7)
        .map(|_| bft_core::SignedItem {
            signer: NodeId(1),
            domain: DOMAIN,
            msg: &msg,
            sig: &sig,
        })
        .collect();
    let mut g = c.benchmark_group("qbft/crypto_baseline");
    g.bench_function("ed25519_sign", |b| b.iter(|| cl.1[0].sign(DOMAIN, &msg)));
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| cl.1[0].verify(NodeId(1), DOMAIN, &msg, &sig).unwrap())
    });
    g.bench_function("ed25519_verify_batch_7", |b| {
        b.iter(|| cl.1[0].verify_batch(&items).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    crypto_baseline,
    backup_block,
    justified_proposal,
    sim_decisions
);
/// criterion_main! with the bundled font registered first, so criterion's
/// plots render whatever plotters features the build unified.
fn main() {
    bft_plotfont::register();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
