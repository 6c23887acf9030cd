#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
//! A sweep writes one record per point and a CSV that parses; plotting the
//! directory gives non-empty PNG and SVG files; every shipped scenario file
//! validates.

use bftbench::scenario::{Overrides, Scenario};
use bftbench::suite::Suite;
use bftbench::sweep;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bftbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SWEEP: &str = r#"
protocol = "pbft"
nodes = 4
duration = "2s"
crypto = "model"
[load]
mode = "closed"
clients = 1
outstanding = 1
total = 12
[batch]
max_size = 1
max_delay = "1ms"
[sweep]
protocol = ["pbft", "hotstuff"]
nodes = [4, 7]
"#;

#[test]
fn sweep_of_two_protocols_by_two_n_writes_records_csv_and_plots() {
    let dir = temp_dir("sweep");
    let file = dir.join("s.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let scenario = Scenario::load(&file, &Overrides::default()).unwrap();
    let points = sweep::points(&scenario, &file).unwrap();
    let records = sweep::run_points(&points, &dir, 2, &|_, _| {}).unwrap();

    let names: Vec<&str> = records.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "pbft-n4.json",
            "pbft-n7.json",
            "hotstuff-n4.json",
            "hotstuff-n7.json"
        ]
    );
    for (file, r) in &records {
        assert!(dir.join(file).is_file());
        assert!(r.safety_violations.is_empty(), "{file}");
        assert!(r.decisions >= 12, "{file}: {}", r.decisions);
    }
    // PBFT's count is exact: 2n(n-1) per decision with one request each.
    assert_eq!(records[0].1.messages_per_decision, 24.0);
    assert_eq!(records[1].1.messages_per_decision, 84.0);

    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5, "header + 4 points");
    let header = &rows[0];
    assert_eq!(header, &sweep::CSV_HEADER.split(',').collect::<Vec<_>>());
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len());
        row[col("messages_per_decision")].parse::<f64>().unwrap();
        row[col("p50_ms")].parse::<f64>().unwrap();
        row[col("n")].parse::<usize>().unwrap();
    }
    assert_eq!(rows[4][col("protocol")], "hotstuff");
    assert_eq!(rows[4][col("n")], "7");

    // Records read back from disk plot the scaling figures.
    let read = sweep::read_records(&dir).unwrap();
    assert_eq!(read.len(), 4);
    let files = bftbench::plot::plot(&read, &dir.join("plots")).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "messages_vs_n.png",
        "messages_vs_n.svg",
        "bytes_vs_n.png",
        "bytes_vs_n.svg",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            bytes.len() > 1000,
            "{} is {} bytes",
            f.display(),
            bytes.len()
        );
        if f.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            assert!(String::from_utf8_lossy(&bytes).contains("<svg"));
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `bftbench validate` accepts every scenario and suite the project ships
/// (cost profiles and region data files are read through a scenario's
/// `[cost] profile` and `[network] regions_file`, and are checked there).
#[test]
fn every_shipped_scenario_and_suite_validates() {
    let root = repo_root().join("bench-configs");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = ["costs", "regions"].iter().any(|d| path.ends_with(d));
            if path.is_dir() && !data {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    for f in &files {
        if let Err(e) = bftbench::suite::validate_file(f) {
            panic!("{}: {e}", f.display());
        }
    }
    let suite = Suite::load(&root.join("compare.toml")).unwrap();
    assert!(suite.sweeps.len() >= 3);
    for s in &suite.sweeps {
        let sc = Scenario::load(&s.scenario, &Overrides::default()).unwrap();
        assert!(sweep::has_axes(&sc.sweep), "{} sweeps something", s.name);
    }
}
