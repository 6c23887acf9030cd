//! Crypto costs on this machine, the source of `CostModel::default()`.
//!
//! `cargo bench -p bft-crypto -- --warm-up-time 1 --measurement-time 3`
//!
//! Real crypto through the `Crypto` trait (so the figures include the
//! domain digest, as the protocols pay it), at n = 4, 16, 64, 256 where the
//! size matters; model crypto for comparison.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{BlsSignature, Crypto, CryptoKind, Digest, NodeId, Signature, SignedItem};
use bft_crypto::{CostModel, cluster, fresh_aggregates};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::hint::black_box;
use std::sync::Arc;

const DOMAIN: &str = "bftbench/bench/v1";
const MSG: &[u8] = &[7u8; 200];
const SIZES: [usize; 4] = [4, 16, 64, 256];
const LARGEST: usize = 256;
/// Above the model memo's 64 entries.
const FRESH_AGGREGATES: usize = 80;

fn nodes(kind: CryptoKind) -> Vec<Arc<dyn Crypto>> {
    cluster(LARGEST, 1, kind, CostModel::zero()).unwrap().1
}

fn id(i: usize) -> NodeId {
    NodeId(u16::try_from(i).unwrap())
}

fn single_ops(c: &mut Criterion, kind: CryptoKind, nodes: &[Arc<dyn Crypto>]) {
    let mut g = c.benchmark_group(kind.as_str());
    let sig = nodes[1].sign(DOMAIN, MSG);
    let part = nodes[1].bls_sign(DOMAIN, MSG);
    g.bench_function("ed25519_sign", |b| {
        b.iter(|| nodes[0].sign(DOMAIN, black_box(MSG)))
    });
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| {
            nodes[0]
                .verify(NodeId(1), DOMAIN, black_box(MSG), &sig)
                .unwrap()
        })
    });
    g.bench_function("bls_sign", |b| {
        b.iter(|| nodes[0].bls_sign(DOMAIN, black_box(MSG)))
    });
    g.bench_function("bls_verify", |b| {
        b.iter(|| {
            nodes[0]
                .bls_verify(NodeId(1), DOMAIN, black_box(MSG), &part)
                .unwrap()
        })
    });
    g.bench_function("bls_check", |b| {
        b.iter(|| nodes[0].bls_check(black_box(&part)).unwrap())
    });
    g.finish();
}

fn sized_ops(c: &mut Criterion, kind: CryptoKind, nodes: &[Arc<dyn Crypto>]) {
    let sigs: Vec<Signature> = nodes.iter().map(|n| n.sign(DOMAIN, MSG)).collect();
    let parts: Vec<(NodeId, BlsSignature)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (id(i), n.bls_sign(DOMAIN, MSG)))
        .collect();
    let mut g = c.benchmark_group(format!("{}_sized", kind.as_str()));
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        let items: Vec<SignedItem<'_>> = (0..n)
            .map(|i| SignedItem {
                signer: id(i),
                domain: DOMAIN,
                msg: MSG,
                sig: &sigs[i],
            })
            .collect();
        g.bench_with_input(
            BenchmarkId::new("ed25519_verify_batch", n),
            &items,
            |b, items| b.iter(|| nodes[0].verify_batch(black_box(items)).unwrap()),
        );
        let quorum = &parts[..n];
        g.bench_with_input(BenchmarkId::new("bls_aggregate", n), quorum, |b, quorum| {
            b.iter(|| nodes[0].bls_aggregate(black_box(quorum)).unwrap())
        });
        // Warm: the same QC again, as each of n nodes verifies it (model
        // crypto's cluster memo and real crypto's signer-key cache hit).
        let agg = nodes[0].bls_aggregate(quorum).unwrap();
        g.bench_with_input(
            BenchmarkId::new("bls_verify_aggregate", n),
            &agg,
            |b, agg| {
                b.iter(|| {
                    nodes[0]
                        .bls_verify_aggregate(DOMAIN, MSG, black_box(agg))
                        .unwrap()
                })
            },
        );
        // Cold: every call a QC over another message and signer set (both
        // caches miss), the cost a leader pays for a fresh QC.
        let fresh = fresh_aggregates(nodes, n, FRESH_AGGREGATES, DOMAIN).unwrap();
        g.bench_with_input(
            BenchmarkId::new("bls_verify_aggregate_cold", n),
            &fresh,
            |b, fresh| {
                let mut next = fresh.iter().cycle();
                b.iter(|| {
                    let (msg, agg) = next.next().unwrap();
                    nodes[0]
                        .bls_verify_aggregate(DOMAIN, msg, black_box(agg))
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

/// What every sign/verify of either kind pays before any key is touched.
fn domain_digest(c: &mut Criterion) {
    c.bench_function("domain_digest_200B", |b| {
        b.iter(|| Digest::of(DOMAIN, &[black_box(MSG)]))
    });
}

fn benches(c: &mut Criterion) {
    domain_digest(c);
    for kind in [CryptoKind::Real, CryptoKind::Model] {
        let nodes = nodes(kind);
        single_ops(c, kind, &nodes);
        sized_ops(c, kind, &nodes);
    }
}

criterion_group!(crypto, benches);
/// criterion_main! with the bundled font registered first, so criterion's
/// plots render whatever plotters features the build unified.
fn main() {
    bft_plotfont::register();
    crypto();
    Criterion::default().configure_from_args().final_summary();
}
