//! Every record's metrics mean the same thing for every protocol. Here:
//! messages per committed request in the setting where each block carries
//! one request, and the cost of one leader replacement (a view change), each
//! against the protocol's formula, exactly.

use bftbench::record::Record;
use bftbench::scenario::Scenario;
use std::path::Path;

/// Requests committed per run; PBFT's checkpoint interval is 128, so one
/// checkpoint falls inside.
const REQUESTS: u64 = 200;

/// Runs a scenario given as text; it must stay safe.
fn run(text: &str) -> Record {
    let path = Path::new("metrics-test.toml");
    let s = Scenario::parse(text, path).unwrap();
    s.validate(path).unwrap();
    let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
    assert!(r.safety_violations.is_empty(), "{:?}", r.safety_violations);
    r
}

/// Fault-free, 8 requests in flight, batch size 1: every block is full.
fn pipelined(protocol: &str, n: usize) -> Record {
    let text = format!(
        r#"
protocol = "{protocol}"
nodes = {n}
duration = "10s"
seed = 1
crypto = "model"
[load]
mode = "closed"
clients = 1
outstanding = 8
tx_size = 128
total = {REQUESTS}
[batch]
max_size = 1
max_delay = "1ms"
[network]
model = "fixed"
delay = "1ms"
"#
    );
    let r = run(&text);
    assert_eq!(r.requests_committed, REQUESTS, "{protocol} n={n}");
    assert_eq!(
        r.empty_decisions, 0,
        "{protocol} n={n}: every block is full"
    );
    assert_eq!(
        r.retransmitted_messages, 0,
        "{protocol} n={n}: nothing lost"
    );
    r
}

fn count(r: &Record, kind: &str) -> u64 {
    r.messages_by_kind.get(kind).map_or(0, |k| k.count)
}

/// Per request, PBFT sends PRE-PREPARE (n−1), PREPARE ((n−1)·(n−1): every
/// backup to every other replica) and COMMIT (n·(n−1)): 2n(n−1). Each of
/// the ⌊R/128⌋ checkpoints costs n·(n−1) CHECKPOINTs more.
#[test]
fn pbft_sends_2n_n_minus_1_messages_per_request() {
    for n in [4u64, 5, 7, 10] {
        let r = pipelined("pbft", n as usize);
        let m = n - 1;
        assert_eq!(count(&r, "pre-prepare"), m * REQUESTS, "n={n}");
        assert_eq!(count(&r, "prepare"), m * m * REQUESTS, "n={n}");
        assert_eq!(count(&r, "commit"), n * m * REQUESTS, "n={n}");
        assert_eq!(count(&r, "checkpoint"), n * m * (REQUESTS / 128), "n={n}");
        let agreement = (2 * n * m * REQUESTS) as f64;
        let total = agreement + (n * m * (REQUESTS / 128)) as f64;
        assert_eq!(r.messages_per_request, total / REQUESTS as f64, "n={n}");
    }
}

/// Per request, QBFT sends PROPOSAL (n−1), PREPARE and COMMIT (n·(n−1)
/// each: every replica broadcasts): (n−1)(2n+1).
#[test]
fn qbft_sends_n_minus_1_times_2n_plus_1_messages_per_request() {
    for n in [4u64, 5, 7, 10] {
        let r = pipelined("qbft", n as usize);
        let m = n - 1;
        assert_eq!(count(&r, "proposal"), m * REQUESTS, "n={n}");
        assert_eq!(count(&r, "prepare"), n * m * REQUESTS, "n={n}");
        assert_eq!(count(&r, "commit"), n * m * REQUESTS, "n={n}");
        assert_eq!(
            r.messages_per_request,
            (m * (2 * n + 1)) as f64,
            "n={n}: nothing else is sent"
        );
    }
}

/// Per block, chained HotStuff sends PROPOSAL (n−1) and VOTE (n−1, to the
/// next leader): 2(n−1), one request per block here. The last request's
/// block commits only once three more blocks extend it (the three-chain
/// rule), so a run of R requests proposes R + 3 blocks, the last three
/// empty and not yet committed: 2(n−1)(R+3)/R per request, 2(n−1) in the
/// steady state.
#[test]
fn hotstuff_sends_2_n_minus_1_messages_per_block() {
    for n in [4u64, 5, 7, 10] {
        let r = pipelined("hotstuff", n as usize);
        let m = n - 1;
        let blocks = REQUESTS + 3;
        assert_eq!(count(&r, "proposal"), m * blocks, "n={n}");
        assert_eq!(count(&r, "vote"), m * blocks, "n={n}");
        assert_eq!(r.decisions, REQUESTS, "n={n}");
        assert_eq!(
            r.messages_per_request,
            (2 * m * blocks) as f64 / REQUESTS as f64,
            "n={n}"
        );
    }
}

/// n = 7, replica `crashed` down from the start, one request in flight at a
/// time, a fixed 1 ms network: every honest replica times out together.
fn crashed_leader(protocol: &str, crashed: u16) -> Record {
    let text = format!(
        r#"
protocol = "{protocol}"
nodes = 7
duration = "3s"
seed = 1
crypto = "model"
[load]
mode = "closed"
clients = 1
outstanding = 1
tx_size = 128
total = 1
[batch]
max_size = 1
max_delay = "1ms"
[network]
model = "fixed"
delay = "1ms"
[[faults]]
node = {crashed}
behaviour = "crash"
at = "0s"
"#
    );
    let r = run(&text);
    assert_eq!(r.requests_committed, 1, "{protocol}");
    r
}

/// One leader replacement at n = 7 (f = 2, 6 live replicas), counted from
/// the first honest timeout to the first decision in a later view, all
/// three protocols by the same definition:
///
/// - PBFT, primary 0 down: 6 VIEW-CHANGEs to 6 peers (36), NEW-VIEW (6),
///   then the request in view 1: PRE-PREPARE (6), PREPAREs from the 5 live
///   backups (30), COMMITs from all 6 (36): 114.
/// - QBFT, the round-0 proposer 0 down: 6 ROUND-CHANGEs to 6 peers (36),
///   the round-1 PROPOSAL with its round-change justification inside (6),
///   PREPAREs and COMMITs from all 6 (36 + 36): 114.
/// - Chained HotStuff, leader 1 of view 1 down: 6 NEW-VIEWs to 6 peers
///   (36), then the four blocks of views 2–5 a commit needs (4 · 6), the
///   votes for the first three (3 · 5: the next leader's own vote is not
///   sent) and the vote the first replica to commit sends in the same step
///   as its commit (1): 76.
#[test]
fn one_leader_replacement_at_n_7_costs_each_protocols_formula() {
    let n: u64 = 7;
    let live = n - 1;
    for (protocol, crashed, want) in [
        (
            "pbft",
            0,
            live * live + live + live + (live - 1) * live + live * live,
        ),
        ("qbft", 0, live * live + live + live * live + live * live),
        ("hotstuff", 1, live * live + 4 * live + 3 * (live - 1) + 1),
    ] {
        let r = crashed_leader(protocol, crashed);
        assert_eq!(r.view_changes, Some(1), "{protocol}");
        assert_eq!(r.view_change_messages, Some(want), "{protocol}");
        assert_eq!(r.view_change_retransmitted, Some(0), "{protocol}");
    }
    assert_eq!(
        (114, 114, 76),
        (
            live * live + live + live + (live - 1) * live + live * live,
            live * live + live + live * live + live * live,
            live * live + 4 * live + 3 * (live - 1) + 1
        )
    );
}

/// Replicas that are not the first leader crash: nobody times out, no
/// leader is replaced.
#[test]
fn a_crashed_non_leader_causes_no_leader_replacement() {
    for (protocol, crashed) in [("qbft", 1), ("hotstuff", 0)] {
        let r = crashed_leader(protocol, crashed);
        assert_eq!(r.view_changes, Some(0), "{protocol}");
        assert_eq!(r.view_change_messages, Some(0), "{protocol}");
        assert_eq!(r.view_change_s, None, "{protocol}");
    }
}

/// n = 7, replica 0 (the first leader) crashes at 1 s for good under steady
/// closed-loop load, every protocol from the same 200 ms base timeout (the
/// compare suite's crashed-leader setting).
fn crashed_under_load(protocol: &str, timeout_ms: u64) -> Record {
    run(&crashed_under_load_text(protocol, timeout_ms))
}

fn crashed_under_load_text(protocol: &str, timeout_ms: u64) -> String {
    let timeouts = format!(
        "[pbft]\nview_change_timeout = \"{timeout_ms}ms\"\n[qbft]\nround_timeout = \"{timeout_ms}ms\"\n\
         [hotstuff]\nview_timeout = \"{timeout_ms}ms\"\n"
    );
    format!(
        r#"
protocol = "{protocol}"
nodes = 7
duration = "8s"
seed = 1
crypto = "model"
[load]
mode = "closed"
clients = 1
outstanding = 1
tx_size = 128
[batch]
max_size = 1
max_delay = "1ms"
[network]
model = "fixed"
delay = "1ms"
[[faults]]
node = 0
behaviour = "crash"
at = "1s"
{timeouts}"#
    )
}

/// The crash bound, `Σ_(i=0..=T) t0 · 2^i + 1 s` with t0 = 200 ms, plus 20
/// one-way delays of 1 ms: PBFT and QBFT wait out T = 1 silent leader
/// (0.6 + 1.02 = 1.62 s), chained HotStuff T = 2 (its 3-chain may pass the
/// crashed leader twice: 1.4 + 1.02 = 2.42 s); checked window after
/// window to the end of the run, and every protocol is live.
#[test]
fn a_crashed_leader_is_replaced_within_each_protocols_crash_bound() {
    // Plus 20 one-way delays of 1 ms.
    for (protocol, bound) in [("pbft", 1.62), ("qbft", 1.62), ("hotstuff", 2.42)] {
        let r = crashed_under_load(protocol, 200);
        let l = r.liveness.as_ref().unwrap();
        assert!(l.checked, "{protocol}: {}", l.skipped);
        assert!(l.failures.is_empty(), "{protocol}: {:?}", l.failures);
        assert!(
            (l.bound_s - bound).abs() < 1e-9,
            "{protocol}: {}",
            l.bound_s
        );
        assert!(l.rule.starts_with("crash only"), "{protocol}: {}", l.rule);
        assert!(r.view_changes.unwrap_or(0) >= 1, "{protocol}");
    }
}

/// The bound is tight enough to mean something: with timeouts ten times
/// longer (2 s), recovery is ten times slower than the bound computed from
/// 200 ms allows, and the check over that bound fails.
#[test]
fn a_recovery_ten_times_slower_fails_the_crash_bound() {
    use bft_core::{Adversarial, Time};
    let path = Path::new("metrics-test.toml");
    for protocol in ["pbft", "qbft", "hotstuff"] {
        let slow = crashed_under_load(protocol, 2_000);
        assert!(
            slow.liveness.as_ref().unwrap().failures.is_empty(),
            "{protocol} live with its own bound"
        );
        let fast_bound = crashed_under_load(protocol, 200).liveness.unwrap().bound_s;
        // The slow configuration's run, checked against the fast bound
        // window after window, as `bftbench run` checks a crash.
        let s = Scenario::parse(&crashed_under_load_text(protocol, 2_000), path).unwrap();
        let cfg = bftbench::run::sim_config(&s);
        let bound = std::time::Duration::from_secs_f64(fast_bound);
        let heal = Time::from_duration(std::time::Duration::from_secs(1));
        let window = (heal, bound, Time::from_duration(s.duration));
        fn check<P: Adversarial>(
            cfg: bft_sim::SimConfig,
            proto: P::Config,
            (heal, bound, end): (Time, std::time::Duration, Time),
        ) -> Vec<String> {
            let mut sim = bft_sim::Simulation::<P>::new(cfg, proto).unwrap();
            bftbench::run::check_every_window(&mut sim, heal, bound, end)
        }
        let failures = match protocol {
            "pbft" => check::<bft_pbft::Pbft>(cfg, s.pbft.clone(), window),
            "qbft" => check::<bft_qbft::Qbft>(cfg, s.qbft.clone(), window),
            _ => check::<bft_hotstuff::HotStuff>(cfg, s.hotstuff.clone(), window),
        };
        assert!(
            !failures.is_empty(),
            "{protocol}: ten times slower passed the {fast_bound} s bound"
        );
    }
}

/// Regression (fresh-seed campaign at fc0774f, `bftbench fuzz --protocol
/// hotstuff --nodes 7 --seed 55234649612933`, case 6760): replicas 1 and 3
/// crash, two leaders apart in the rotation. The first crash bound waited
/// out only the longest run of crashed leaders, twice (4.06 s); chained
/// HotStuff timed out on both, more than once, before a run of four honest
/// views committed, and stalled longer. Its bound now waits out twice the
/// crashed leaders of a rotation (T = 4, 12.56 s), and it is live within it.
#[test]
fn two_crashed_hotstuff_leaders_apart_at_n_7_recover_within_the_crash_bound() {
    let r = run(r#"
protocol = "hotstuff"
nodes = 7
duration = "30s"
seed = 4307445215356401399
crypto = "model"
[load]
mode = "open"
rate = 50.0
clients = 2
tx_size = 32
[batch]
max_size = 4
max_delay = "2ms"
[network]
model = "uniform"
min = "1ms"
max = "3ms"
[[faults]]
node = 1
behaviour = "crash"
at = "528ms"
[[faults]]
node = 3
behaviour = "crash"
at = "293ms"
[hotstuff]
view_timeout = "500ms"
max_view_timeout = "4s"
"#);
    let l = r.liveness.unwrap();
    assert!(l.checked, "{}", l.skipped);
    assert!(
        (l.bound_s - 12.56).abs() < 1e-9,
        "{} ({})",
        l.bound_s,
        l.rule
    );
    assert!(l.failures.is_empty(), "{:?}", l.failures);
}
