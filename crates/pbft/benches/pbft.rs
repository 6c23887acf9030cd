//! Criterion benches: the normal-case hot path with real Ed25519 (handling a
//! PREPARE or COMMIT), and decisions per second of a 4-replica simulated
//! cluster with real crypto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bft_core::{
    BatchConfig, Committee, Crypto, CryptoKind, Input, NodeContext, NodeId, Protocol, Request,
    RequestId, Time, batch_digest,
};
use bft_crypto::CostModel;
use bft_pbft::{
    Pbft, PbftConfig, PbftMessage, PrePrepare, Vote, domain, pre_prepare_payload, vote_payload,
};
use bft_sim::{LoadConfig, SimConfig, Simulation};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

struct Keys {
    committee: Arc<Committee>,
    cryptos: Vec<Arc<dyn Crypto>>,
}

impl Keys {
    fn new() -> Keys {
        let (committee, cryptos) =
            bft_crypto::cluster(4, 1, CryptoKind::Real, CostModel::zero()).unwrap();
        Keys { committee, cryptos }
    }
    fn replica(&self, id: u16) -> Pbft {
        Pbft::new(
            NodeContext {
                id: NodeId(id),
                committee: Arc::clone(&self.committee),
                crypto: Arc::clone(&self.cryptos[usize::from(id)]),
                batch: BatchConfig::default(),
            },
            &PbftConfig::default(),
        )
    }
    fn pre_prepare(&self, seq: u64) -> PrePrepare {
        // The core alone, without a `Node`: no client signature is checked.
        let batch = vec![Request::unsigned(
            RequestId {
                client: 1,
                number: seq,
            },
            Bytes::from(vec![7u8; 128]),
        )];
        let digest = batch_digest(&batch);
        PrePrepare {
            view: 0,
            seq,
            digest,
            sig: self.cryptos[0].sign(domain::PRE_PREPARE, &pre_prepare_payload(0, seq, &digest)),
            batch,
        }
    }
    fn vote(&self, dom: &'static str, by: u16, pp: &PrePrepare) -> Vote {
        let replica = NodeId(by);
        Vote {
            view: 0,
            seq: pp.seq,
            digest: pp.digest,
            replica,
            sig: self.cryptos[usize::from(by)]
                .sign(dom, &vote_payload(0, pp.seq, &pp.digest, replica)),
        }
    }
}

fn feed(r: &mut Pbft, from: u16, msg: PbftMessage) -> usize {
    let mut out = Vec::new();
    r.handle(
        Time(1),
        Input::Message {
            from: NodeId(from),
            msg,
        },
        &mut out,
    )
    .unwrap();
    out.len()
}

fn hot_path(c: &mut Criterion) {
    let keys = Keys::new();
    let pp = keys.pre_prepare(1);
    let prepare2 = keys.vote(domain::PREPARE, 2, &pp);
    let commits: Vec<Vote> = [0, 2, 3]
        .iter()
        .map(|&i| keys.vote(domain::COMMIT, i, &pp))
        .collect();
    let mut g = c.benchmark_group("pbft-hot-path-ed25519");
    g.throughput(Throughput::Elements(1));
    // A PREPARE that completes the certificate: verify it, then sign and
    // multicast COMMIT.
    g.bench_function("prepare-completing-certificate", |b| {
        b.iter_batched(
            || {
                let mut r = keys.replica(1);
                feed(&mut r, 0, PbftMessage::PrePrepare(pp.clone()));
                r
            },
            |mut r| black_box(feed(&mut r, 2, PbftMessage::Prepare(prepare2.clone()))),
            BatchSize::SmallInput,
        )
    });
    // A COMMIT that completes the quorum: verify it, execute, emit Commit.
    g.bench_function("commit-completing-quorum", |b| {
        b.iter_batched(
            || {
                let mut r = keys.replica(1);
                feed(&mut r, 0, PbftMessage::PrePrepare(pp.clone()));
                feed(&mut r, 2, PbftMessage::Prepare(prepare2.clone()));
                feed(&mut r, 0, PbftMessage::Commit(commits[0].clone()));
                r
            },
            |mut r| black_box(feed(&mut r, 2, PbftMessage::Commit(commits[1].clone()))),
            BatchSize::SmallInput,
        )
    });
    // A COMMIT that only adds a vote (signature check + bookkeeping).
    g.bench_function("commit-vote-only", |b| {
        b.iter_batched(
            || {
                let mut r = keys.replica(1);
                feed(&mut r, 0, PbftMessage::PrePrepare(pp.clone()));
                r
            },
            |mut r| black_box(feed(&mut r, 3, PbftMessage::Commit(commits[2].clone()))),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn cluster_throughput(c: &mut Criterion) {
    const REQUESTS: u64 = 200;
    let mut g = c.benchmark_group("pbft-sim-n4-real-crypto");
    g.sample_size(10);
    g.throughput(Throughput::Elements(REQUESTS));
    g.bench_function("decisions", |b| {
        b.iter(|| {
            let cfg = SimConfig {
                nodes: 4,
                crypto: CryptoKind::Real,
                load: LoadConfig::closed(1, 1, 128).with_total(REQUESTS),
                batch: BatchConfig {
                    max_size: 1,
                    max_delay: Duration::from_millis(1),
                },
                ..SimConfig::default()
            };
            let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
                .unwrap()
                .run();
            assert_eq!(report.decisions, REQUESTS);
            black_box(report.decisions)
        })
    });
    g.finish();
}

criterion_group!(benches, hot_path, cluster_throughput);
/// criterion_main! with the bundled font registered first, so criterion's
/// plots render whatever plotters features the build unified.
fn main() {
    bft_plotfont::register();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
