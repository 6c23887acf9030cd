//! Cost profiles: what `bftbench calibrate` writes is what a scenario naming
//! it runs with, the shipped default is such a profile, and a bad profile is
//! an error naming the file and the key.

use bft_crypto::CostModel;
use bftbench::calibrate::{Calibration, Figure, measure};
use bftbench::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bftbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn figure(name: &'static str, micros: u64) -> Figure {
    let d = Duration::from_micros(micros);
    Figure {
        name,
        median: d,
        q1: d - Duration::from_nanos(50),
        q3: d + Duration::from_nanos(50),
        fastest: d - Duration::from_nanos(100),
        slowest: d + Duration::from_nanos(100),
    }
}

fn calibration() -> Calibration {
    let names = [
        "sign",
        "verify",
        "batch_verify_per_sig",
        "bls_sign",
        "bls_verify",
        "bls_check",
        "bls_aggregate_per_sig",
        "bls_verify_aggregate",
        "handling",
        "transport_per_message",
        "transport_per_kib",
        "client_per_request",
    ];
    Calibration {
        rounds: 15,
        figures: names
            .iter()
            .enumerate()
            .map(|(i, n)| figure(n, 10 + i as u64))
            .collect(),
        loopback_latency: None,
        load_before: Some(0.2),
        load_after: Some(0.3),
        cores: 2,
        git_rev: "test".into(),
        date: "2026-12-02T00:00Z".into(),
    }
}

const SCENARIO: &str = r#"
protocol = "pbft"
nodes = 4
[cost]
profile = "profile.toml"
verify = "99us"
"#;

#[test]
fn a_scenario_naming_a_profile_runs_with_its_figures_and_records_it() {
    let dir = temp_dir("profile");
    let c = calibration();
    std::fs::write(dir.join("profile.toml"), c.profile_toml()).unwrap();
    let path = dir.join("s.toml");
    let s = Scenario::parse(SCENARIO, &path).unwrap();
    let mut want = c.cost_model();
    assert_eq!(want.sign, Duration::from_micros(10));
    assert_eq!(want.handling, Duration::from_micros(18));
    assert_eq!(want.client_per_request, Duration::from_micros(21));
    // A figure the scenario sets itself wins over the profile's.
    want.verify = Duration::from_micros(99);
    assert_eq!(s.cost, want);
    let named = s.cost_profile.as_deref().unwrap();
    assert!(named.ends_with("profile.toml"), "{named}");
    // The record's scenario carries the profile's name and its figures.
    let json = serde_json::to_value(&s).unwrap();
    assert!(
        json["cost_profile"]
            .as_str()
            .unwrap()
            .ends_with("profile.toml")
    );
    assert_eq!(json["cost"]["sign"], "10us");
    assert!(c.warnings().is_empty());
}

#[test]
fn a_missing_or_malformed_profile_is_an_error_naming_file_and_key() {
    let dir = temp_dir("bad-profile");
    let path = dir.join("s.toml");
    let err = Scenario::parse(SCENARIO, &path).unwrap_err().to_string();
    assert!(
        err.contains("cost.profile") && err.contains("no such file"),
        "{err}"
    );
    std::fs::write(dir.join("profile.toml"), "[cost]\nsign = \"fast\"\n").unwrap();
    let err = Scenario::parse(SCENARIO, &path).unwrap_err().to_string();
    assert!(
        err.contains("profile.toml") && err.contains("sign"),
        "{err}"
    );
    std::fs::write(dir.join("profile.toml"), "[cost]\nsing = \"1us\"\n").unwrap();
    let err = Scenario::parse(SCENARIO, &path).unwrap_err().to_string();
    assert!(
        err.contains("profile.toml") && err.contains("sing"),
        "{err}"
    );
}

#[test]
fn a_busy_machine_or_a_wide_spread_is_flagged() {
    let mut c = calibration();
    c.load_before = Some(2.5);
    c.figures[1].q1 = c.figures[1].median;
    c.figures[1].q3 = c.figures[1].median * 2;
    let w = c.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("load average 2.50 before"), "{w:?}");
    assert!(
        w[1].starts_with("verify: rounds spread 100% (interquartile"),
        "{w:?}"
    );
    assert!(c.profile_toml().contains("# WARNING: verify"));
}

#[test]
fn measure_reports_the_median_round_per_operation() {
    let f = measure("noop", 5, 10, || {
        std::hint::black_box(0u64);
    });
    assert!(f.fastest <= f.q1 && f.q1 <= f.median && f.median <= f.q3 && f.q3 <= f.slowest);
    assert_eq!(f.name, "noop");
}

/// `CostModel::default()` is the shipped profile, figure for figure, so the
/// built-in default is traceable to the calibrate run that wrote the file.
#[test]
fn the_default_cost_model_is_the_shipped_profile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = root.join("bench-configs/costs/default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let shipped: CostModel = table["cost"].clone().try_into().unwrap();
    assert_eq!(shipped, CostModel::default());
}
