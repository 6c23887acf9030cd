//! The admission policy at the client edge (`[load] max_pending`): past
//! saturation a client keeps at most that many requests pending and
//! refuses the rest itself, counted in the record as `rejected_requests`.
//! The same `Clients` code drives the simulator
//! and the QUIC load generator.

use bftbench::record::Record;
use bftbench::scenario::Scenario;
use std::path::Path;

fn run(protocol: &str, max_pending: Option<u32>) -> Record {
    let policy = max_pending.map_or(String::new(), |m| format!("max_pending = {m}\n"));
    let text = format!(
        "protocol = \"{protocol}\"\nnodes = 4\nduration = \"1s\"\nseed = 7\n\
         [load]\nmode = \"open\"\nrate = 4000\nclients = 4\ntx_size = 64\n{policy}"
    );
    let s = Scenario::parse(&text, Path::new("admission.toml")).unwrap();
    bftbench::run::run(&s, &mut |_| {}).unwrap()
}

/// Every scheduled request is either sent or refused, and when the run
/// ends at most each client's window (4 · 4) is still pending; at 1 000
/// tx/s per client (a few milliseconds each) some are refused, and without
/// a policy none.
#[test]
fn a_client_refuses_past_its_window_and_keeps_at_most_its_window_pending() {
    for protocol in ["pbft", "qbft", "hotstuff"] {
        let open = run(protocol, None);
        assert_eq!(open.rejected_requests, 0, "{protocol}");
        let bounded = run(protocol, Some(4));
        assert!(bounded.rejected_requests > 0, "{protocol}: {bounded:?}");
        assert_eq!(
            bounded.requests_issued + bounded.rejected_requests,
            open.requests_issued,
            "{protocol}: the same schedule, each request sent or refused"
        );
        assert!(
            bounded.requests_issued - bounded.requests_committed <= 4 * 4,
            "{protocol}: at the end at most each client's window is pending \
             ({} issued, {} committed)",
            bounded.requests_issued,
            bounded.requests_committed
        );
        assert!(bounded.safety_violations.is_empty(), "{protocol}");
    }
}

/// `max_pending` is an open-loop setting and at least 1.
#[test]
fn max_pending_is_refused_where_it_means_nothing() {
    let parse = |load: &str| {
        Scenario::parse(
            &format!("protocol = \"pbft\"\nnodes = 4\n[load]\n{load}"),
            Path::new("admission.toml"),
        )
    };
    let closed = parse("mode = \"closed\"\nmax_pending = 4\n")
        .unwrap_err()
        .to_string();
    assert!(closed.contains("max_pending"), "{closed}");
    let zero = parse("mode = \"open\"\nrate = 100\nmax_pending = 0\n")
        .unwrap_err()
        .to_string();
    assert!(zero.contains("max_pending = 0"), "{zero}");
}
