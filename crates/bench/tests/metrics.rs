#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
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
