//! Commit certificates: every decision a replica commits carries one that
//! anyone with the cluster's public keys can re-check offline, and a
//! certificate that does not prove its block is found, by `bftbench ledger
//! verify --cluster` and by the simulator's oracle.
//!
//! The keys come from one seed on both sides: a simulation with real
//! crypto and seed S signs with `SecretKeys::from_seed(S, i)`, the same
//! keys `bftbench keygen --seed S` writes to a cluster file.

use super::{PROTOCOLS, scenario};
use bft_core::{CryptoKind, Decision, LedgerEntry, NodeId, Store};
use bft_sim::Simulation;
use bft_sim::oracle::Oracle;
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::{Path, PathBuf};

/// A durable state that names no batch.
fn st(state: &[u8]) -> bft_core::StateWrite {
    bft_core::StateWrite::whole(state.to_vec())
}

const SEED: u64 = 7;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bftbench-certificates-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Replica 0's ledger after a fault-free run with real crypto, and the
/// violations the oracle found.
fn ledger<P: BenchProtocol>(s: &Scenario) -> (Vec<Decision>, Vec<String>) {
    let mut cfg = sim_config(s);
    cfg.keep_ledgers = true;
    let mut sim = Simulation::<P>::new(cfg, P::config(s)).unwrap();
    let report = sim.run();
    (sim.ledger(NodeId(0)).to_vec(), report.violations)
}

/// Writes `decisions` as replica 0's data directory `dir`.
fn write_data_dir(protocol: ProtocolName, dir: &Path, decisions: Vec<Decision>) {
    let owner = bft_store::Owner {
        protocol: protocol.to_string(),
        node: 0,
    };
    let (mut store, _) = bft_store::DataDir::open(dir, &owner, bft_store::Fsync::Never).unwrap();
    let entries: Vec<LedgerEntry> = decisions.into_iter().map(LedgerEntry::Commit).collect();
    store.write(Some(&st(b"state")), &entries).unwrap();
    store.close().unwrap();
}

/// The same decision with one byte of its certificate changed.
fn tampered(d: &Decision) -> Decision {
    let mut bytes = d.certificate.to_vec();
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
    Decision {
        certificate: bytes.into(),
        ..d.clone()
    }
}

#[test]
fn every_committed_decision_carries_a_certificate_the_cluster_keys_verify() {
    let keys = temp_dir("keys");
    let cluster =
        bft_net::keygen(4, 1, "127.0.0.1:7000".parse().unwrap(), Some(SEED), &keys).unwrap();
    let cluster_file = keys.join("cluster.toml");
    let other_keys = temp_dir("other-keys");
    bft_net::keygen(
        4,
        1,
        "127.0.0.1:7000".parse().unwrap(),
        Some(SEED + 1),
        &other_keys,
    )
    .unwrap();
    for protocol in PROTOCOLS {
        let mut s = scenario(protocol, SEED, 40);
        s.crypto = CryptoKind::Real;
        let (decisions, violations) = bftbench::with_protocol!(protocol, P => ledger::<P>(&s));
        assert!(violations.is_empty(), "{protocol}: {violations:?}");
        let slots = decisions.len() as u64;
        assert!(slots > 0, "{protocol}");
        assert!(
            decisions.iter().all(|d| !d.certificate.is_empty()),
            "{protocol}: a fault-free run certifies every decision itself"
        );

        // As written: every certificate checks.
        let dir = temp_dir(&format!("{protocol}-good"));
        write_data_dir(protocol, &dir, decisions.clone());
        let v = bftbench::ledger::verify(&dir, Some(&cluster_file), None).unwrap();
        assert_eq!(v.problems, Vec::<String>::new(), "{protocol}");
        let count = v.certificates.unwrap();
        assert_eq!((count.quorum, count.by_chain), (slots, 0), "{protocol}");

        // Another cluster's keys: no certificate checks.
        let v =
            bftbench::ledger::verify(&dir, Some(&other_keys.join("cluster.toml")), None).unwrap();
        assert_eq!(v.certificates.unwrap().quorum, 0, "{protocol}");
        assert!(!v.problems.is_empty(), "{protocol}");

        // One certificate altered by a bit: that slot is named.
        let mut bad = decisions.clone();
        bad[2] = tampered(&bad[2]);
        let dir = temp_dir(&format!("{protocol}-tampered"));
        write_data_dir(protocol, &dir, bad);
        let v = bftbench::ledger::verify(&dir, Some(&cluster_file), None).unwrap();
        assert_eq!(v.problems.len(), 1, "{protocol}: {:?}", v.problems);
        assert!(
            v.problems[0].starts_with("slot 3: "),
            "{protocol}: {:?}",
            v.problems
        );

        // Another slot's certificate: it does not prove this block.
        let mut moved = decisions.clone();
        moved[4].certificate = moved[5].certificate.clone();
        let dir = temp_dir(&format!("{protocol}-moved"));
        write_data_dir(protocol, &dir, moved);
        let v = bftbench::ledger::verify(&dir, Some(&cluster_file), None).unwrap();
        assert_eq!(v.problems.len(), 1, "{protocol}: {:?}", v.problems);
        assert!(
            v.problems[0].starts_with("slot 5: "),
            "{protocol}: {:?}",
            v.problems
        );

        // The last certificate removed: nothing certifies the tail (PBFT
        // allows a slot without one if a certified one follows; QBFT and
        // HotStuff decide nothing without one).
        let mut cut = decisions.clone();
        if let Some(last) = cut.last_mut() {
            last.certificate = bytes::Bytes::new();
        }
        let dir = temp_dir(&format!("{protocol}-cut"));
        write_data_dir(protocol, &dir, cut);
        let v = bftbench::ledger::verify(&dir, Some(&cluster_file), None).unwrap();
        assert_eq!(v.problems.len(), 1, "{protocol}: {:?}", v.problems);
        if protocol == ProtocolName::Pbft {
            assert_eq!(
                v.problems[0],
                format!(
                    "slots {slots}..={slots} carry no certificate and no certified block of their chain follows them"
                )
            );
        } else {
            assert!(
                v.problems[0].starts_with(&format!("slot {slots}: ")),
                "{protocol}: {:?}",
                v.problems
            );
        }

        // The oracle checks the same thing in every simulation.
        let committee = std::sync::Arc::new(cluster.committee().unwrap());
        let crypto =
            bft_crypto::cluster(4, SEED, CryptoKind::Real, bft_crypto::CostModel::default())
                .unwrap()
                .1
                .into_iter()
                .next();
        let mut oracle = Oracle::new(4).checking_certificates(committee, crypto);
        bftbench::with_protocol!(protocol, P => {
            oracle.certificate::<P>(NodeId(0), &decisions[1]);
            assert!(oracle.violations().is_empty(), "{protocol}");
            oracle.certificate::<P>(NodeId(0), &tampered(&decisions[1]));
        });
        assert_eq!(oracle.violations().len(), 1, "{protocol}");
        assert!(
            oracle.violations()[0].starts_with("certificate: "),
            "{protocol}: {:?}",
            oracle.violations()
        );
        for dir in ["good", "tampered", "moved", "cut"] {
            let _ = std::fs::remove_dir_all(temp_dir(&format!("{protocol}-{dir}")));
        }
    }
    let _ = std::fs::remove_dir_all(&keys);
    let _ = std::fs::remove_dir_all(&other_keys);
}
