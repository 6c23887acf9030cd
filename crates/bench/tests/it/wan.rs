//! WAN scenarios through the whole bench path (scenario text → simulator →
//! record): latency shifts that follow from the region matrix and each
//! protocol's message pattern, latency-aware leader placement against
//! round-robin, and `regions_file` loading with its errors.
//!
//! The matrix: region "near" (1 ms one-way inside it) and region "far",
//! 80 ms one-way from "near"; every link has a 0.2 ms jitter bound. Seeds
//! are fixed, so every figure below is deterministic.

use bftbench::record::Record;
use bftbench::scenario::{Overrides, Scenario};
use std::path::{Path, PathBuf};

/// One-way latency from "near" to "far" minus the intra-region latency: what
/// one crossing adds.
const CROSS_MS: f64 = 79.0;
/// The per-message jitter bound.
const JITTER_MS: f64 = 0.2;

fn scenario(protocol: &str, placement: &str, client: &str, leaders: &str) -> String {
    format!(
        r#"
protocol = "{protocol}"
nodes = 4
duration = "20s"
seed = 7
crypto = "model"
[load]
mode = "open"
rate = 200
clients = 4
tx_size = 128
warmup = "4s"
[batch]
max_size = 100
max_delay = "2ms"
[network]
model = "regions"
[network.regions]
regions = ["near", "far"]
one_way_ms = [[1.0, 80.0], [80.0, 1.0]]
jitter_ms = [[{JITTER_MS}, {JITTER_MS}], [{JITTER_MS}, {JITTER_MS}]]
placement = {placement}
client_region = "{client}"
[leaders]
placement = "{leaders}"
[pbft]
view_change_timeout = "2s"
[qbft]
round_timeout = "2s"
[hotstuff]
view_timeout = "2s"
"#
    )
}

const ALL_NEAR: &str = r#"["near", "near", "near", "near"]"#;
const ONE_FAR: &str = r#"["near", "near", "near", "far"]"#;

fn run(text: &str) -> Record {
    let path = Path::new("wan-test.toml");
    let s = Scenario::parse(text, path).unwrap();
    s.validate(path).unwrap();
    let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
    assert!(r.safety_violations.is_empty(), "{:?}", r.safety_violations);
    assert!(
        r.latency_ms.count > 1000,
        "the run committed: {}",
        r.latency_ms.count
    );
    r
}

fn shift(a: &Record, b: &Record) -> (f64, f64) {
    (
        b.latency_ms.p50 - a.latency_ms.p50,
        b.latency_ms.p99 - a.latency_ms.p99,
    )
}

/// Tolerance for a shift "within the jitter": a commit path has at most a
/// handful of sequential messages, each up to JITTER_MS late, on each side
/// of the comparison; 10 × the bound covers both (and HDR rounding).
const TOL_MS: f64 = 10.0 * JITTER_MS;

#[test]
fn far_clients_shift_every_protocol_by_two_crossings() {
    // Clients in "far", all replicas in "near": each request crosses once to
    // the replicas and the f+1 replies cross once back, and nothing else
    // changes (the open-loop schedule is the same, only later). So p50 and
    // p99 both move by 2 × 79 ms for every protocol.
    for p in ["pbft", "qbft", "hotstuff"] {
        let base = run(&scenario(p, ALL_NEAR, "near", "round-robin"));
        let far = run(&scenario(p, ALL_NEAR, "far", "round-robin"));
        let (d50, d99) = shift(&base, &far);
        let want = 2.0 * CROSS_MS;
        assert!(
            (d50 - want).abs() <= TOL_MS && (d99 - want).abs() <= TOL_MS,
            "{p}: p50 shift {d50:.2} ms, p99 shift {d99:.2} ms, expected {want} ± {TOL_MS}"
        );
    }
}

#[test]
fn pbft_with_a_far_backup_does_not_move() {
    // PBFT at n = 4: quorum 3, primary node 0. Nodes 0-2 are near, so the
    // pre-prepare, both quorums and the f+1 = 2 replies never wait for the
    // far backup: the shift is 0 at p50 and p99.
    let base = run(&scenario("pbft", ALL_NEAR, "near", "round-robin"));
    let far = run(&scenario("pbft", ONE_FAR, "near", "round-robin"));
    let (d50, d99) = shift(&base, &far);
    assert!(
        d50.abs() <= TOL_MS && d99.abs() <= TOL_MS,
        "p50 shift {d50:.2} ms, p99 shift {d99:.2} ms, expected 0 ± {TOL_MS}"
    );
}

#[test]
fn rotating_leaders_pay_the_far_node_two_crossings_in_the_tail() {
    // QBFT and HotStuff rotate the leader over all four nodes. The far
    // node's turn costs at least two crossings: it learns the previous step
    // (commits for QBFT, votes for HotStuff) 79 ms late, and its proposal
    // reaches the near quorum 79 ms late. One turn in four: the p99 shifts
    // by at least 2 × 79 ms.
    for p in ["qbft", "hotstuff"] {
        let base = run(&scenario(p, ALL_NEAR, "near", "round-robin"));
        let far = run(&scenario(p, ONE_FAR, "near", "round-robin"));
        let (d50, d99) = shift(&base, &far);
        assert!(
            d99 >= 2.0 * CROSS_MS - TOL_MS,
            "{p}: p99 shift {d99:.2} ms (p50 {d50:.2}), expected ≥ {}",
            2.0 * CROSS_MS
        );
    }
}

#[test]
fn latency_aware_leaders_beat_round_robin_on_p50_for_hotstuff() {
    let rr = run(&scenario("hotstuff", ONE_FAR, "near", "round-robin"));
    let la = run(&scenario("hotstuff", ONE_FAR, "near", "latency-aware"));
    let base = run(&scenario("hotstuff", ALL_NEAR, "near", "round-robin"));
    assert!(
        la.latency_ms.p50 < rr.latency_ms.p50,
        "latency-aware p50 {:.2} ms vs round-robin {:.2} ms",
        la.latency_ms.p50,
        rr.latency_ms.p50
    );
    // Not down to the all-near figure: the favourite (node 0, near) leads
    // 3n = 12 views in a row, but the rotation still gives the far node one
    // view in 15, and that view stalls the pipeline for two crossings
    // (≈ 160 ms, about as long as the 14 near views together), so about
    // half the requests still meet a stall. Round-robin meets it every 4th
    // view.
    assert!(la.latency_ms.p50 > base.latency_ms.p50);
    eprintln!(
        "hotstuff p50: all-near {:.2} ms, latency-aware {:.2} ms, round-robin {:.2} ms",
        base.latency_ms.p50, la.latency_ms.p50, rr.latency_ms.p50
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const DATA: &str = r#"
regions = ["near", "far"]
one_way_ms = [[1.0, 80.0], [80.0, 1.0]]
jitter_ms = [[0.2, 0.2], [0.2, 0.2]]
loss = [[0.0, 0.001], [0.001, 0.0]]
"#;

const WITH_FILE: &str = r#"
protocol = "hotstuff"
nodes = 4
[network]
model = "regions"
regions_file = "two.toml"
[network.regions]
placement = ["near", "near", "near", "far"]
client_region = "near"
[leaders]
placement = "latency-aware"
"#;

#[test]
fn a_regions_file_scenario_loads() {
    let dir = temp_dir("load");
    std::fs::write(dir.join("two.toml"), DATA).unwrap();
    std::fs::write(dir.join("s.toml"), WITH_FILE).unwrap();
    let s = Scenario::load(&dir.join("s.toml"), &Overrides::default()).unwrap();
    let bft_sim::DelayModel::Regions(m) = &s.network.delay else {
        panic!("not regions: {:?}", s.network.delay)
    };
    assert_eq!(m.regions, ["near", "far"]);
    assert_eq!(m.placement, [0, 0, 0, 1]);
    assert_eq!(m.jitter_ms[0][1], 0.2);
    assert_eq!(m.loss[1][0], 0.001);
    // Inline keys win over the file's.
    std::fs::write(
        dir.join("s.toml"),
        WITH_FILE.replace(
            "client_region",
            "jitter_ms = [[0.0, 0.0], [0.0, 0.0]]\nclient_region",
        ),
    )
    .unwrap();
    let s = Scenario::load(&dir.join("s.toml"), &Overrides::default()).unwrap();
    let bft_sim::DelayModel::Regions(m) = &s.network.delay else {
        panic!()
    };
    assert_eq!(m.jitter_ms[0][1], 0.0);
    // The shipped five-region file resolves relative to bench-configs/.
    for f in [
        "five-regions-sim.toml",
        "five-regions-sim-latency-aware.toml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../bench-configs/wan")
            .join(f);
        let s = Scenario::load(&path, &Overrides::default()).unwrap();
        let bft_sim::DelayModel::Regions(m) = &s.network.delay else {
            panic!()
        };
        assert_eq!(m.regions.len(), 5, "{f}");
        assert_eq!(m.placement, [0, 1, 2, 3, 4], "{f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_regions_file_names_the_problem() {
    let dir = temp_dir("bad");
    let load = |data: &str, scenario: &str| {
        std::fs::write(dir.join("two.toml"), data).unwrap();
        std::fs::write(dir.join("s.toml"), scenario).unwrap();
        Scenario::load(&dir.join("s.toml"), &Overrides::default())
            .unwrap_err()
            .to_string()
    };
    // A matrix of the wrong shape: the data file, the key, the value.
    let e = load(
        &DATA.replace(
            "[[1.0, 80.0], [80.0, 1.0]]",
            "[[1.0, 80.0, 3.0], [80.0, 1.0]]",
        ),
        WITH_FILE,
    );
    assert!(
        e.contains("two.toml: one_way_ms = [[1.0, 80.0, 3.0]") && e.contains("2×2 matrix"),
        "{e}"
    );
    // A loss that is not a probability.
    let e = load(&DATA.replace("0.001], [0.001", "0.001], [7"), WITH_FILE);
    assert!(
        e.contains("two.toml: loss[1][0] = 7: not a probability"),
        "{e}"
    );
    // An unknown key in the data file.
    let e = load(&format!("{DATA}latency = 3\n"), WITH_FILE);
    assert!(e.contains("two.toml: latency = 3: unknown key"), "{e}");
    // A region the data file does not have: the scenario file, the key and
    // the value.
    let e = load(DATA, &WITH_FILE.replace("\"far\"]", "\"mars\"]"));
    assert!(
        e.contains("s.toml")
            && e.contains(
                "network.regions.placement[3] = \"mars\": no such region; regions are near, far"
            ),
        "{e}"
    );
    // A file that is not there.
    let e = load(DATA, &WITH_FILE.replace("two.toml", "three.toml"));
    assert!(
        e.contains("s.toml: network.regions_file = \"three.toml\": no such file"),
        "{e}"
    );
    // regions_file with another model.
    let e = load(
        DATA,
        &WITH_FILE.replace("model = \"regions\"", "model = \"fixed\""),
    );
    assert!(e.contains("network.model = \"fixed\""), "{e}");
    // Unknown keys in the scenario are still refused.
    let e = load(DATA, &WITH_FILE.replace("client_region", "client_regio"));
    assert!(e.contains("s.toml") && e.contains("client_regio"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_flag_is_refused_for_the_simulator() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bftbench"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args([
            "run",
            "bench-configs/quickstart.toml",
            "--metrics",
            "127.0.0.1:0",
            "--out",
            "/tmp/wan-never-written.json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--metrics 127.0.0.1:0") && stderr.contains("--runtime quic"),
        "{stderr}"
    );
    assert!(!Path::new("/tmp/wan-never-written.json").exists());
}

#[test]
fn quic_leader_schedule_is_the_simulators() {
    // `bftbench node` builds its committee's schedule for the cluster
    // file's n with the same code the simulator's SimConfig.leaders uses.
    let s = Scenario::parse(WITH_FILE_INLINE, Path::new("s.toml")).unwrap();
    let sim = bftbench::run::sim_config(&s).leaders.unwrap();
    let quic = bftbench::quic::leader_schedule(&s, 4, Path::new("s.toml"))
        .unwrap()
        .unwrap();
    assert_eq!(sim, quic);
    // Latency-aware: node 1 (the first near node; node 0 is far) is
    // favoured for 3n = 12 views, then every node leads one from node 2 on.
    assert!((0..12).all(|k| quic.leader(k).0 == 1));
    assert_eq!(
        (12..15).map(|k| quic.leader(k).0).collect::<Vec<_>>(),
        [2, 3, 0]
    );
}

const WITH_FILE_INLINE: &str = r#"
protocol = "hotstuff"
nodes = 4
[network]
model = "regions"
[network.regions]
regions = ["near", "far"]
one_way_ms = [[1.0, 80.0], [80.0, 1.0]]
placement = ["far", "near", "near", "near"]
[leaders]
placement = "latency-aware"
"#;
