//! In-process QUIC runs persist like the simulator does: by default each
//! replica writes to a data directory (a temporary one, removed after the
//! run) and the record says so; `[storage] persist = false` keeps nothing.

use bftbench::scenario::Scenario;
use std::path::Path;

fn quic(persist: bool) -> bftbench::record::Record {
    let text = format!(
        "protocol = \"qbft\"\nnodes = 4\nruntime = \"quic\"\nduration = \"5s\"\n\
         [load]\nmode = \"closed\"\nclients = 1\noutstanding = 1\ntx_size = 64\ntotal = 20\n\
         [storage]\npersist = {persist}\nfsync = \"always\"\n"
    );
    let s = Scenario::parse(&text, Path::new("quic-store.toml")).unwrap();
    bftbench::run::run(&s, &mut |_| {}).unwrap()
}

#[test]
fn a_quic_run_persists_by_default_and_the_record_says_how() {
    let r = quic(true);
    assert_eq!(r.requests_committed, 20);
    assert_eq!(
        (r.store.as_str(), r.fsync.as_deref()),
        ("redb", Some("always"))
    );
    let r = quic(false);
    assert_eq!(r.requests_committed, 20);
    assert_eq!((r.store.as_str(), r.fsync.as_deref()), ("none", None));
}

/// A QUIC run's record carries the process's peak resident memory, reset
/// at the run's start (at least the few MiB a tokio runtime with four
/// replicas holds), and the resident memory at that start, which the peak
/// cannot be below. The simulator's has neither.
#[test]
fn a_quic_record_carries_its_runs_peak_memory() {
    let r = quic(false);
    let peak = r.peak_rss_bytes.expect("Linux reports VmHWM");
    assert!(peak > 1 << 20, "{peak} bytes");
    let start = r.start_rss_bytes.expect("Linux reports VmRSS");
    assert!(
        0 < start && start <= peak,
        "{start} at the start, {peak} at the peak"
    );
    let sim = Scenario::parse(
        "protocol = \"qbft\"\nnodes = 4\nduration = \"1s\"\n",
        Path::new("sim.toml"),
    )
    .unwrap();
    assert_eq!(
        bftbench::run::run(&sim, &mut |_| {})
            .unwrap()
            .peak_rss_bytes,
        None
    );
    assert_eq!(
        bftbench::run::run(&sim, &mut |_| {})
            .unwrap()
            .start_rss_bytes,
        None
    );
}

/// Each second of an in-process QUIC run: its completions (adding up to
/// every committed request) and the process's memory, sampled once a
/// second.
#[test]
fn a_quic_record_counts_each_second_and_samples_memory() {
    let text = "protocol = \"pbft\"\nnodes = 4\nruntime = \"quic\"\nduration = \"4s\"\n\
         [load]\nmode = \"open\"\nrate = 50\nclients = 2\ntx_size = 64\n\
         [storage]\npersist = false\n";
    let s = Scenario::parse(text, Path::new("quic-series.toml")).unwrap();
    let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
    let completed: u64 = r.over_time.iter().map(|p| p.completed).sum();
    assert_eq!(completed, r.requests_committed);
    assert!(r.over_time.len() >= 4, "{:?}", r.over_time);
    let sampled = r.over_time.iter().filter(|p| p.rss_bytes.is_some()).count();
    assert!(sampled >= 2, "{:?}", r.over_time);
}
