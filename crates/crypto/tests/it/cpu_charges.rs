//! `take_cpu` charges the cost model's figures — the same for Real and Model
//! crypto — and resets; rejections before any math charge nothing.

use bft_core::{AggregateSignature, CryptoKind, NodeId, SignedItem, SignerBitmap};
use bft_crypto::{CostModel, cluster};
use std::time::Duration;

/// Each figure a different power of ten (ns), so the total spells out how
/// many times each one was charged: digit k counts operation k.
fn decimal_costs() -> CostModel {
    let ns = Duration::from_nanos;
    CostModel {
        sign: ns(1),
        verify: ns(10),
        batch_verify_per_sig: ns(100),
        bls_sign: ns(1_000),
        bls_verify: ns(10_000),
        bls_check: ns(100_000),
        bls_aggregate_per_sig: ns(1_000_000),
        bls_verify_aggregate: ns(10_000_000),
        ..CostModel::zero()
    }
}

/// A fixed workload on node 0, as a protocol would drive it; returns the CPU
/// charged to node 0 (and resets every node's meter first).
fn workload(kind: CryptoKind) -> (Duration, Duration) {
    let (_, c) = cluster(4, 3, kind, decimal_costs()).unwrap();
    for node in &c {
        node.take_cpu();
    }
    let me = &c[0];
    let d = "bftbench/test/v1";
    // 2 signs, 3 verifies (one of them failing), a batch of 2.
    let s0 = me.sign(d, b"a");
    let s1 = c[1].sign(d, b"b");
    me.sign(d, b"c");
    me.verify(NodeId(1), d, b"b", &s1).unwrap();
    me.verify(NodeId(1), d, b"x", &s1).unwrap_err();
    me.verify(NodeId(0), d, b"a", &s0).unwrap();
    let items = [
        SignedItem {
            signer: NodeId(0),
            domain: d,
            msg: b"a",
            sig: &s0,
        },
        SignedItem {
            signer: NodeId(1),
            domain: d,
            msg: b"b",
            sig: &s1,
        },
    ];
    me.verify_batch(&items).unwrap();
    // 1 BLS sign, 1 BLS verify, 3 checks, aggregate of 3, 1 aggregate verify.
    let parts: Vec<_> = (0..3)
        .map(|i| (NodeId(i), c[usize::from(i)].bls_sign(d, b"v")))
        .collect();
    me.bls_verify(NodeId(1), d, b"v", &parts[1].1).unwrap();
    for (_, p) in &parts {
        me.bls_check(p).unwrap();
    }
    let agg = me.bls_aggregate(&parts).unwrap();
    me.bls_verify_aggregate(d, b"v", &agg).unwrap();

    // Rejected on shape before any math: no charge.
    me.verify(NodeId(9), d, b"a", &s0).unwrap_err();
    me.verify_batch(&[]).unwrap();
    me.verify_batch(&[SignedItem {
        signer: NodeId(9),
        domain: d,
        msg: b"a",
        sig: &s0,
    }])
    .unwrap_err();
    me.bls_aggregate(&[]).unwrap_err();
    me.bls_aggregate(&[parts[0], parts[0]]).unwrap_err();
    let empty = AggregateSignature {
        signers: SignerBitmap::new(4),
        signature: agg.signature,
    };
    me.bls_verify_aggregate(d, b"v", &empty).unwrap_err();
    let misfit = AggregateSignature {
        signers: SignerBitmap::new(9),
        signature: agg.signature,
    };
    me.bls_verify_aggregate(d, b"v", &misfit).unwrap_err();

    (me.take_cpu(), me.take_cpu())
}

#[test]
fn take_cpu_charges_model_figures_identically_for_both_kinds_and_resets() {
    // digits, most significant first: verify_aggregate 1, aggregate_per_sig 3,
    // check 3, bls_verify 1, bls_sign 1, batch_per_sig 2, verify 3, sign 2.
    let expected = Duration::from_nanos(13_311_232);
    for kind in [CryptoKind::Real, CryptoKind::Model] {
        let (first, second) = workload(kind);
        assert_eq!(first, expected, "{kind:?}");
        assert_eq!(second, Duration::ZERO, "{kind:?}: take_cpu resets");
    }
}

#[test]
fn each_node_has_its_own_meter() {
    let (_, c) = cluster(4, 3, CryptoKind::Model, decimal_costs()).unwrap();
    c[1].sign("d", b"m");
    assert_eq!(c[0].take_cpu(), Duration::ZERO);
    assert_eq!(c[1].take_cpu(), Duration::from_nanos(1));
}

#[test]
fn zero_cost_model_charges_nothing() {
    let (_, c) = cluster(4, 3, CryptoKind::Model, CostModel::zero()).unwrap();
    let sig = c[0].sign("d", b"m");
    c[0].verify(NodeId(0), "d", b"m", &sig).unwrap();
    assert_eq!(c[0].take_cpu(), Duration::ZERO);
}

#[test]
fn cost_model_reads_humantime_fields_and_defaults_the_rest() {
    let parsed: CostModel =
        toml::from_str("sign = \"18us\"\nbls_verify = \"1ms 200us\"\n").unwrap();
    let default = CostModel::default();
    assert_eq!(parsed.sign, Duration::from_micros(18));
    assert_eq!(parsed.bls_verify, Duration::from_micros(1200));
    assert_eq!(parsed.verify, default.verify);
    assert_eq!(parsed.bls_verify_aggregate, default.bls_verify_aggregate);

    let text = toml::to_string(&default).unwrap();
    assert_eq!(
        toml::from_str::<CostModel>(&text).unwrap(),
        default,
        "{text}"
    );

    let err = toml::from_str::<CostModel>("sigh = \"1us\"\n").unwrap_err();
    assert!(err.to_string().contains("sigh"), "{err}");
    assert!(
        toml::from_str::<CostModel>("sign = 18\n").is_err(),
        "a bare number has no unit"
    );
}
