//! The region-matrix network model: per-link one-way latency, jitter bounds
//! and loss, regions named or indexed, and errors that name the key.

use bft_core::{NodeId, Time};
use bft_sim::network::{Endpoint, transit};
use bft_sim::{DelayModel, NetworkConfig, RegionMatrix};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

const TABLE: &str = r#"
model = "regions"
[regions]
regions = ["near", "far"]
one_way_ms = [[1.0, 80.0], [80.0, 1.0]]
jitter_ms = [[0.5, 4.0], [4.0, 0.5]]
loss = [[0.0, 0.25], [0.25, 0.0]]
placement = ["near", "near", "near", 1]
client_region = "near"
"#;

fn net(text: &str) -> Result<NetworkConfig, String> {
    toml::from_str::<NetworkConfig>(text).map_err(|e| e.to_string())
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64(x / 1000.0)
}

#[test]
fn names_and_indexes_resolve_to_the_same_placement() {
    let c = net(TABLE).unwrap();
    let DelayModel::Regions(m) = &c.delay else {
        panic!("not regions")
    };
    assert_eq!(m.placement, [0, 0, 0, 1]);
    assert_eq!(m.client_region, 0);
    assert_eq!(
        (0..8).map(|i| m.region_of(i)).collect::<Vec<_>>(),
        [0, 0, 0, 1, 0, 0, 0, 1]
    );
    // The latency-aware leader is a near node; the far one waits 80 ms
    // for any quorum of 3.
    assert_eq!(m.quorum_latency(3, 4, 3), ms(80.0));
    assert_eq!(m.best_leader(4, 3), 0);
    // Round trip through TOML (names written out) gives the same matrix.
    let text = toml::to_string(&c).unwrap();
    assert!(text.contains("\"far\""), "{text}");
    assert_eq!(net(&text).unwrap(), c);
}

#[test]
fn delays_lie_within_one_way_plus_the_link_jitter() {
    let c = net(TABLE).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let link = |a: u16, b: u16| (Endpoint::Replica(NodeId(a)), Endpoint::Replica(NodeId(b)));
    for ((from, to), (lo, hi)) in [
        (link(0, 1), (1.0, 1.5)),
        (link(0, 3), (80.0, 84.0)),
        (link(3, 2), (80.0, 84.0)),
        (
            (Endpoint::Clients, Endpoint::Replica(NodeId(3))),
            (80.0, 84.0),
        ),
        (
            (Endpoint::Replica(NodeId(1)), Endpoint::Clients),
            (1.0, 1.5),
        ),
    ] {
        let mut seen = Vec::new();
        for _ in 0..2000 {
            if let Some(d) = transit(&c, &mut rng, Time::ZERO, from, to) {
                assert!(d >= ms(lo) && d <= ms(hi), "{from:?}->{to:?}: {d:?}");
                seen.push(d);
            }
        }
        // Jitter is spread over the whole bound, not a constant.
        let (min, max) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
        assert!(*max - *min > ms((hi - lo) * 0.9), "{from:?}->{to:?}");
    }
}

#[test]
fn loss_applies_per_replica_link_and_never_to_clients() {
    let c = net(TABLE).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let count = |rng: &mut ChaCha8Rng, from, to| {
        (0..10_000)
            .filter(|_| transit(&c, rng, Time::ZERO, from, to).is_none())
            .count()
    };
    let r = |i| Endpoint::Replica(NodeId(i));
    assert_eq!(count(&mut rng, r(0), r(1)), 0, "no loss inside a region");
    let lost = count(&mut rng, r(0), r(3));
    assert!((2000..3000).contains(&lost), "25 % of 10000, got {lost}");
    assert_eq!(count(&mut rng, Endpoint::Clients, r(3)), 0);
    assert_eq!(count(&mut rng, r(3), Endpoint::Clients), 0);
}

#[test]
fn a_matrix_without_jitter_or_loss_is_exact() {
    let m = RegionMatrix::new(
        &["a", "b"],
        vec![vec![1.0, 80.0], vec![80.0, 1.0]],
        &["a", "b"],
        "a",
    )
    .unwrap();
    let c = NetworkConfig {
        delay: DelayModel::Regions(m),
        ..NetworkConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let d = transit(
        &c,
        &mut rng,
        Time::ZERO,
        Endpoint::Replica(NodeId(0)),
        Endpoint::Replica(NodeId(1)),
    );
    assert_eq!(d, Some(ms(80.0)));
}

#[test]
fn errors_name_the_key_and_the_value() {
    let bad = |from: &str, to: &str| net(&TABLE.replace(from, to)).unwrap_err();
    let e = bad("placement = [\"near\"", "placement = [\"nowhere\"");
    assert!(
        e.contains("network.regions.placement[0] = \"nowhere\": no such region"),
        "{e}"
    );
    let e = bad("client_region = \"near\"", "client_region = 5");
    assert!(
        e.contains("client_region = 5") && e.contains("out of range"),
        "{e}"
    );
    let e = bad("[4.0, 0.5]]\nloss", "[4.0, -0.5]]\nloss");
    assert!(e.contains("jitter_ms[1][1] = -0.5"), "{e}");
    let e = bad("[0.25, 0.0]]", "[1.5, 0.0]]");
    assert!(
        e.contains("loss[1][0] = 1.5") && e.contains("probability"),
        "{e}"
    );
    let e = bad("[[1.0, 80.0], [80.0, 1.0]]", "[[1.0, 80.0]]");
    assert!(e.contains("one_way_ms: must be a 2×2 matrix"), "{e}");
    let e = bad("client_region", "client_regio");
    assert!(e.contains("client_regio"), "unknown keys are refused: {e}");
}
