//! A sweep writes one record per point and a CSV that parses; plotting the
//! directory gives non-empty PNG and SVG files; every shipped scenario file
//! validates; a saturation search finds the knee the simulator's model
//! implies and the plot marks it; the HTML report links only files that
//! exist; a timeline records what the run sent without changing the run.

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
    let files = bftbench::plot::plot(&read, &[], &dir.join("plots")).unwrap();
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
    assert!(
        !names.iter().any(|n| n.starts_with("over_time")),
        "short runs draw nothing over time: {names:?}"
    );
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

/// One replica's CPU per request is what saturates this scenario: with
/// batch size 1 and model crypto every request costs the leader a
/// signature and verifications, so a few thousand requests a second is
/// the most one core gives.
const SATURATE: &str = r#"
protocol = "pbft"
nodes = 4
duration = "1s"
crypto = "model"
[load]
mode = "open"
rate = 1000
clients = 4
tx_size = 64
warmup = "200ms"
[batch]
max_size = 1
max_delay = "1ms"
[network]
model = "fixed"
delay = "1ms"
"#;

#[test]
fn a_saturation_search_brackets_the_knee_and_the_plot_marks_it() {
    use bftbench::saturate::{SearchConfig, read_knees, saturate};
    let dir = temp_dir("saturate");
    let file = dir.join("s.toml");
    std::fs::write(&file, SATURATE).unwrap();
    let s = Scenario::load(&file, &Overrides::default()).unwrap();
    let cfg = SearchConfig {
        start: 1000.0,
        max: 64_000.0,
        p99_ms: 100.0,
        ..SearchConfig::default()
    };
    let (knees, records) = saturate(&s, &file, &cfg, &dir, 1, &|_, _| {}).unwrap();
    assert_eq!(knees.len(), 1);
    let k = &knees[0];
    let (good, bad) = (k.knee_rate.unwrap(), k.first_unsustained.unwrap());
    assert!(bad > good && bad <= good * 1.1 + 100.0, "{good} .. {bad}");
    // Every probe is kept, sustained exactly where the rule says, and the
    // knee is the highest sustained one below the first unsustained.
    assert_eq!(k.probes.len(), records.len());
    for p in &k.probes {
        assert_eq!(
            p.sustained,
            cfg.sustained(p.offered, p.throughput_tx_s, p.p99_ms)
        );
        assert!(dir.join(&p.record).is_file(), "{}", p.record);
        if p.offered <= good {
            assert!(p.sustained, "{} below the knee", p.offered);
        }
        if p.offered >= bad {
            assert!(!p.sustained, "{} above the knee", p.offered);
        }
    }
    // Deterministic: the same search finds the same knee.
    let again = saturate(&s, &file, &cfg, &dir.join("again"), 1, &|_, _| {}).unwrap();
    assert_eq!(again.0[0].probes, k.probes);
    // Read back (both searches' files): the same rates.
    let rates = |k: &bftbench::saturate::Knee| (k.knee_rate, k.first_unsustained, k.probes.len());
    let read = read_knees(&dir);
    assert_eq!(read.len(), 2);
    assert!(read.iter().all(|r| rates(r) == rates(k)));
    let files = bftbench::plot::plot(&records, &knees, &dir).unwrap();
    let svg = std::fs::read_to_string(dir.join("throughput_latency.svg")).unwrap();
    assert!(files.iter().any(|f| f.ends_with("throughput_latency.png")));
    assert!(
        svg.contains(&format!("pbft knee: {}", bftbench::plot::tick_label(good))),
        "the knee is labelled in the plot"
    );
}

#[test]
fn the_report_links_only_files_that_exist() {
    use bftbench::suite::SuiteSweep;
    let dir = temp_dir("html");
    let scenario = dir.join("s.toml");
    std::fs::write(&scenario, SWEEP).unwrap();
    let s = Scenario::load(&scenario, &Overrides::default()).unwrap();
    let points = sweep::points(&s, &scenario).unwrap();
    let records = sweep::run_points(&points, &dir.join("scaling"), 2, &|_, _| {}).unwrap();
    let sweep = SuiteSweep {
        name: "scaling".into(),
        scenario: scenario.clone(),
        about: "two protocols, two n".into(),
        saturate: None,
    };
    let sections = vec![(sweep, records.clone())];
    let all: Vec<_> = records
        .iter()
        .map(|(f, r)| (format!("scaling/{f}"), r.clone()))
        .collect();
    sweep::write_csv(&dir, &all).unwrap();
    let plots = bftbench::plot::plot(&all, &[], &dir).unwrap();
    bftbench::html::copy_scenarios(&dir, &sections).unwrap();
    let page = bftbench::html::Page {
        out_dir: &dir,
        plots: &plots,
        sections: &sections,
        knees: &[],
        agreement: None,
        timelines: None,
        commit: "abc",
        load_average: Some(0.5),
        elapsed_s: 1.0,
    };
    let html = std::fs::read_to_string(bftbench::html::write(&page).unwrap()).unwrap();
    let mut links = 0;
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            if target.starts_with('#') {
                continue;
            }
            assert!(!target.contains("://"), "{target} needs a network");
            assert!(dir.join(target).exists(), "{target} does not exist");
            links += 1;
        }
    }
    // Four records, the scenario, the directory, two plots (PNG and SVG
    // twice each) and summary.csv at least.
    assert!(links >= 12, "{links} links");
    assert!(html.contains("scaling/pbft-n7.json"));
    assert!(html.contains("scaling/s.toml"));
    assert!(html.contains("<script>"), "sortable tables");
}

const TIMELINE: &str = r#"
protocol = "pbft"
nodes = 4
duration = "1.5s"
crypto = "model"
[load]
mode = "closed"
clients = 1
outstanding = 1
tx_size = 64
[batch]
max_size = 1
max_delay = "1ms"
[network]
model = "fixed"
delay = "1ms"
[hotstuff]
view_timeout = "200ms"
[[faults]]
node = 0
behaviour = "crash"
at = "500ms"
"#;

#[test]
fn a_timeline_shows_the_crash_the_view_change_and_who_talks_to_whom() {
    use bftbench::scenario::ProtocolName;
    use bftbench::timeline::{kinds, record, svg, view_change};
    use std::time::Duration;
    let file = Path::new("t.toml");
    let mut s = Scenario::parse(TIMELINE, file).unwrap();
    let (from, to) = (Duration::from_millis(490), Duration::from_millis(1400));
    // PBFT: all-to-all phases, then VIEW-CHANGE and NEW-VIEW.
    let t = record(&s, from, to).unwrap();
    let k = kinds(&t);
    for kind in [
        "pre-prepare",
        "prepare",
        "commit",
        "view-change",
        "new-view",
    ] {
        assert!(k.contains_key(kind), "{kind} in {k:?}");
    }
    let (a, b) = view_change(&t).unwrap();
    // The band is the records' definition: it matches the run's record.
    let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
    assert_eq!(r.view_changes, Some(1));
    let band = (b.0 - a.0) as f64 / 1e9;
    assert!(
        (band - r.view_change_s.unwrap()).abs() < 1e-9,
        "{band} vs {r:?}"
    );
    assert!(
        t.arrows
            .iter()
            .all(|m| m.sent >= bft_core::Time::from_duration(from))
    );
    let doc = svg(&t, 4, "pbft", "caption");
    assert!(doc.matches("<line x1").count() >= t.arrows.len());
    assert!(doc.contains("view change: "));
    // HotStuff: every vote of the normal case goes to one replica, the
    // next leader, so no replica receives votes from the others at once.
    s.protocol = ProtocolName::Hotstuff;
    let t = record(&s, Duration::from_millis(300), Duration::from_millis(490)).unwrap();
    let votes: Vec<_> = t.arrows.iter().filter(|m| m.kind == "vote").collect();
    assert!(votes.len() >= 12, "{} votes", votes.len());
    let sent_at: std::collections::BTreeMap<_, std::collections::BTreeSet<u16>> =
        votes.iter().fold(Default::default(), |mut m, v| {
            m.entry(v.sent.0 / 1_000_000).or_default().insert(v.to.0);
            m
        });
    assert!(sent_at.values().all(|to| to.len() == 1), "{sent_at:?}");
}

#[test]
fn recording_a_timeline_leaves_the_trace_hash_unchanged() {
    use bft_sim::Simulation;
    use std::time::Duration;
    let s = Scenario::parse(TIMELINE, Path::new("t.toml")).unwrap();
    let run = |record: bool| {
        let mut sim =
            Simulation::<bft_pbft::Pbft>::new(bftbench::run::sim_config(&s), s.pbft.clone())
                .unwrap();
        if record {
            sim.record_timeline(Duration::from_millis(400), Duration::from_millis(900));
        }
        sim.run_until(bft_core::Time::from_duration(Duration::from_secs(1)));
        (
            sim.report().trace_hash,
            sim.timeline().map(|t| t.arrows.len()),
        )
    };
    let (plain, none) = run(false);
    let (recorded, some) = run(true);
    assert_eq!(plain, recorded);
    assert_eq!(none, None);
    assert!(some.unwrap_or(0) > 100);
}

/// A run's record counts each second's completions (warm-up included) and
/// their latency: the seconds add up to every committed request, and a run
/// of a minute or more is drawn over time.
#[test]
fn a_minute_long_run_is_counted_per_second_and_drawn_over_time() {
    let s = bftbench::scenario::Scenario::parse(
        "protocol = \"hotstuff\"\nnodes = 4\nduration = \"70s\"\n\
         [load]\nmode = \"open\"\nrate = 200\nclients = 4\ntx_size = 64\nwarmup = \"5s\"\n",
        std::path::Path::new("soak.toml"),
    )
    .unwrap();
    let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
    let seconds = &r.over_time;
    assert!(
        (70..=72).contains(&seconds.len()),
        "{} seconds",
        seconds.len()
    );
    assert_eq!(
        seconds.iter().map(|p| p.completed).sum::<u64>(),
        r.requests_committed
    );
    for (i, p) in seconds.iter().enumerate() {
        assert_eq!(p.t_s, i as f64);
    }
    let steady = &seconds[10..60];
    assert!(
        steady.iter().all(|p| (190..=210).contains(&p.completed)),
        "{steady:?}"
    );
    assert!(
        steady
            .iter()
            .all(|p| p.p50_ms > 0.0 && p.p99_ms >= p.p50_ms),
        "{steady:?}"
    );
    let dir = temp_dir("over-time");
    let files = bftbench::plot::plot(&[("soak".to_string(), r)], &[], &dir).unwrap();
    assert!(
        files.iter().any(|f| f.ends_with("over_time.png")),
        "{files:?}"
    );
}
