//! HotStuff hot paths with real BLS12-381 (blst):
//! - `vote_to_qc/n`: the next leader's work for one view: subgroup-check n−f
//!   votes as they arrive, aggregate them, verify the aggregate once
//!   (optimistic aggregation, `VoteCollector`);
//! - `qc_verify/n`: a replica checking a received QC (one aggregate check and
//!   the signer count, `verify_qc`) — the per-QC verification time;
//! - `sim_decisions/4`: decisions per second of a simulated 4-node cluster
//!   with real crypto (wall time of `Simulation::run`).
//!
//! `cargo bench -p bft-hotstuff -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{BlsSignature, CryptoKind, Digest, NodeId, View};
use bft_crypto::CostModel;
use bft_hotstuff::qc::{VoteCollector, VoteOutcome};
use bft_hotstuff::rules::verify_qc;
use bft_hotstuff::{HotStuff, HotStuffConfig, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
use bft_sim::{LoadConfig, SimConfig, Simulation};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use std::hint::black_box;

const SIZES: [usize; 3] = [4, 16, 64];

fn votes_and_qc(c: &mut Criterion) {
    for n in SIZES {
        let (committee, cryptos) =
            bft_crypto::cluster(n, 1, CryptoKind::Real, CostModel::zero()).unwrap();
        let quorum = committee.quorum_n_minus_f();
        let view = View(7);
        let block = Digest([5; 32]);
        let payload = vote_payload(view, &block);
        let votes: Vec<(NodeId, Vote)> = (0..quorum)
            .map(|i| {
                let signature: BlsSignature = cryptos[i].bls_sign(VOTE_DOMAIN, &payload);
                (
                    NodeId(i as u16),
                    Vote {
                        view,
                        block,
                        signature,
                    },
                )
            })
            .collect();
        let leader = &*cryptos[n - 1];

        let mut group = c.benchmark_group("vote_to_qc");
        group.throughput(Throughput::Elements(quorum as u64));
        group.bench_function(format!("n{n}"), |b| {
            b.iter_batched(
                VoteCollector::default,
                |mut collector| {
                    let mut qc = None;
                    for (voter, vote) in &votes {
                        if let VoteOutcome::Certified { qc: formed, .. } =
                            collector.add(&committee, leader, *voter, vote).unwrap()
                        {
                            qc = Some(formed);
                        }
                    }
                    black_box(qc.unwrap())
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();

        let parts: Vec<_> = votes.iter().map(|(i, v)| (*i, v.signature)).collect();
        let qc = QuorumCert {
            view,
            block,
            signature: leader.bls_aggregate(&parts).unwrap(),
        };
        let replica = &*cryptos[0];
        let mut group = c.benchmark_group("qc_verify");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("n{n}"), |b| {
            b.iter(|| verify_qc(&committee, replica, black_box(&qc)).unwrap())
        });
        group.finish();
    }
}

fn simulated_cluster(c: &mut Criterion) {
    const REQUESTS: u64 = 10;
    let cfg = SimConfig {
        nodes: 4,
        seed: 1,
        crypto: CryptoKind::Real,
        load: LoadConfig::closed(1, 1, 128).with_total(REQUESTS),
        ..SimConfig::default()
    };
    let decisions = 4 * REQUESTS - 3;
    let mut group = c.benchmark_group("sim_decisions");
    group.throughput(Throughput::Elements(decisions));
    group.sample_size(10);
    group.bench_function("n4_real_crypto", |b| {
        b.iter(|| {
            let mut sim =
                Simulation::<HotStuff>::new(cfg.clone(), HotStuffConfig::default()).unwrap();
            let report = sim.run();
            assert_eq!(report.decisions, decisions);
            black_box(report.decisions)
        })
    });
    group.finish();
}

criterion_group!(benches, votes_and_qc, simulated_cluster);
/// criterion_main! with the bundled font registered first, so criterion's
/// plots render whatever plotters features the build unified.
fn main() {
    bft_plotfont::register();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
