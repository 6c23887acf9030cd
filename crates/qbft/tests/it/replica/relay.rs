//! Relays to lagging replicas and the blocks kept for them.

use super::*;

/// Only a DECIDED block may come from another member than its author:
/// a PROPOSAL or COMMIT forwarded by someone else is `author-not-sender`
/// (helpers send DECIDED; nothing honest forwards the others), and the same
/// messages from their authors are accepted.
#[test]
fn proposals_and_commits_are_accepted_from_their_authors_only() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut lagging = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    let proposal = || net.proposal(0, 0, &block, vec![], vec![]);
    let (r, _) = deliver(&mut lagging, 1, proposal());
    assert_eq!(r.err().map(|e| e.reason()), Some("author-not-sender"));
    let (r, _) = deliver(&mut lagging, 1, net.commit(0, 1, 0, d));
    assert_eq!(r.err().map(|e| e.reason()), Some("author-not-sender"));
    deliver(&mut lagging, 0, proposal()).0.unwrap();
    let mut out = Vec::new();
    for s in [0, 1, 2] {
        let (r, o) = deliver(&mut lagging, s, net.commit(s, 1, 0, d));
        r.unwrap();
        out.extend(o);
    }
    assert_eq!(decisions(&out).len(), 1);
    assert_eq!(lagging.height(), 2);
}

#[test]
fn stale_round_change_is_answered_once_by_designated_helpers_with_the_decided_height() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut helper = net.replica(1);
    let d = decide_height_1(&net, &mut helper, [0, 2]);
    // Node 3 is still at height 1; its f+1 = 2 successors 0 and 1 help.
    let (r, out) = deliver(&mut helper, 3, net.round_change(3, 1, 1, None, &[]));
    r.unwrap();
    let sent: Vec<(u16, &'static str)> = out
        .iter()
        .filter_map(|a| match a {
            Action::Resend { to, msg } => Some((to.0, bft_core::WireMessage::kind(msg))),
            _ => None,
        })
        .collect();
    // One DECIDED with the archived heights: each block and its q commit
    // seals.
    assert_eq!(sent, vec![(3, "decided")]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Resend { msg: QbftMessage::Decided(c), .. }
            if c.len() == 1 && c[0].digest == d && c[0].seals.len() == 3
    )));
    // The same announcement again: nothing more.
    let (_, out) = deliver(&mut helper, 3, net.round_change(3, 1, 1, None, &[]));
    assert!(out.is_empty());
    // Node 2's successors are 3 and 0: node 1 does not answer it.
    let (_, out) = deliver(&mut helper, 2, net.round_change(2, 1, 1, None, &[]));
    assert!(out.is_empty());
}

/// Review finding 6: node 1 learns block V first from ROUND-CHANGEs for
/// round 1 that carry it prepared in round 0 (no PROPOSAL), then re-proposes
/// it as proposer of (1, 1) and decides it in round 1. A lagging peer asking
/// for height 1 must be sent the block itself, not only seals it could
/// never use.
#[test]
fn height_decided_on_a_block_first_seen_in_a_round_change_is_relayed_with_its_block() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut helper = net.replica(1);
    let block = block1(0, 1);
    let d = block.hash();
    for s in [0, 2, 3] {
        let rc = net.round_change(s, 1, 1, Some((0, &block)), &[0, 2, 3]);
        deliver(&mut helper, s, rc).0.unwrap();
    }
    assert_eq!(helper.round(), 1, "node 1 leads round 1");
    for s in [0, 2] {
        deliver(
            &mut helper,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 1, d)),
        )
        .0
        .unwrap();
    }
    for s in [0, 2] {
        deliver(&mut helper, s, net.commit(s, 1, 1, d)).0.unwrap();
    }
    assert_eq!(helper.height(), 2, "decided V in round 1");
    // Node 0 is still at height 1; node 1 is one of its f+1 helpers.
    let (r, out) = deliver(&mut helper, 0, net.round_change(0, 1, 2, None, &[]));
    r.unwrap();
    let relayed_block = out.iter().any(|a| {
        matches!(
            a,
            Action::Resend { to, msg: QbftMessage::Decided(c) }
                if to.0 == 0 && c.first().is_some_and(|c| c.block.hash() == d && c.round == 1)
        )
    });
    assert!(relayed_block, "the decided block is relayed with its seals");
}

/// Review finding 1, second route: node 3 holds q COMMITs for block V of
/// round 0 but not V, and has moved on to round 40; the Byzantine proposer of
/// rounds 4, 8, …, 36 (node 0) floods it with 18 validly signed stale
/// blocks, more than the 16 kept. When V's PROPOSAL finally arrives (late,
/// from its author), the COMMITs pointing to it must keep it over the
/// flood, so node 3 decides.
#[test]
fn committed_block_is_kept_and_decided_despite_a_flood_of_later_round_blocks() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut lagging = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    for s in [1, 2] {
        let rc = net.round_change(s, 1, 40, None, &[]);
        deliver(&mut lagging, s, rc).0.unwrap();
    }
    assert_eq!(lagging.round(), 40);
    for s in [0, 1, 2] {
        deliver(&mut lagging, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    for round in (4..40).step_by(4) {
        for number in [1_000 + 2 * round, 1_001 + 2 * round] {
            let stale = net.proposal(0, round, &block1(0, number), vec![], vec![]);
            deliver(&mut lagging, 0, stale).0.unwrap();
        }
    }
    assert_eq!(lagging.height(), 1);
    let late = net.proposal(0, 0, &block, vec![], vec![]);
    let (r, out) = deliver(&mut lagging, 0, late);
    r.unwrap();
    assert_eq!(decisions(&out).len(), 1, "V decided");
    assert_eq!(lagging.height(), 2);
    assert_eq!(lagging.tip_hash(), d);
}

/// Serve budget: a peer announcing ever higher rounds of a decided height
/// would draw a relay for each (every round is new); it gets
/// `SERVE_BURST` (2) at once, then one per half base round timeout, and the
/// rest are refused as `serve-limited`, so it cannot make a replica send
/// unbounded data. An honest lagging replica announces at most one round
/// per round timeout and is never held back.
#[test]
fn announcing_ever_higher_rounds_draws_relays_within_the_peers_budget() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut helper = net.replica(1);
    decide_height_1(&net, &mut helper, [0, 2]);
    let half = QbftConfig::default().round_timeout / 2;
    let mut announce = |round: u64, at: Time| {
        let rc = net.round_change(3, 1, round, None, &[]);
        let (out, result) = bft_testkit::feed_at(&mut helper, at, bft_testkit::msg(3, rc));
        let relayed = out
            .iter()
            .filter(|a| matches!(a, Action::Resend { .. }))
            .count();
        (relayed, result.err().map(|e| e.reason()))
    };
    let t0 = Time::from_duration(std::time::Duration::from_millis(1));
    let got: Vec<_> = (1..=5).map(|round| announce(round, t0)).collect();
    assert_eq!(
        got,
        [
            (1, None),
            (1, None),
            (0, Some("serve-limited")),
            (0, Some("serve-limited")),
            (0, Some("serve-limited")),
        ]
    );
    assert_eq!(announce(6, t0.saturating_add(half)), (1, None));
    assert_eq!(
        announce(7, t0.saturating_add(half)),
        (0, Some("serve-limited"))
    );
}

/// A DECIDED message (catch-up: a block with its commit seals) decides the
/// lagging replica's height once its q seals verify; one that is short,
/// repeats a signer, carries a bad seal, seals another block or does not
/// extend the chain is refused with the reason, and decides nothing.
#[test]
fn a_decided_block_is_applied_only_with_q_valid_seals_over_it() {
    let net = Signer::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let d = block.hash();
    let seal = |s: u16| {
        bft_qbft::messages::signed_commit(net.crypto(s), 1, 0, d)
            .payload
            .seal
    };
    let cert = |seals: Vec<(u16, bft_core::Signature)>, block: &Block| {
        QbftMessage::Decided(vec![bft_qbft::CommitCertificate {
            block: block.clone(),
            digest: block.hash(),
            round: 0,
            seals: seals.into_iter().map(|(s, x)| (NodeId(s), x)).collect(),
        }])
    };
    let good: Vec<_> = [0, 1, 2].map(|s| (s, seal(s))).to_vec();
    let cases: Vec<(QbftMessage, &str)> = vec![
        (cert(good[..2].to_vec(), &block), "insufficient-seals"),
        (
            cert(vec![good[0], good[1], good[1]], &block),
            "duplicate-signer",
        ),
        (
            cert(vec![good[0], good[1], (2, good[2].1.corrupted())], &block),
            "bad-signature",
        ),
        (cert(good.clone(), &block1(0, 2)), "bad-signature"),
        (
            cert(
                good.clone(),
                &Block {
                    parent: d,
                    ..block.clone()
                },
            ),
            "wrong-parent",
        ),
    ];
    let mut lagging = net.replica(3);
    for (msg, reason) in cases {
        let (r, out) = deliver(&mut lagging, 1, msg);
        assert_eq!(r.err().map(|e| e.reason()), Some(reason));
        assert!(decisions(&out).is_empty());
    }
    assert_eq!(lagging.height(), 1);
    let (r, out) = deliver(&mut lagging, 1, cert(good, &block));
    r.unwrap();
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].block, d);
    assert_eq!(lagging.height(), 2);
    assert_eq!(lagging.last_certificate().map(|c| c.digest), Some(d));
}

/// The ROUND-CHANGEs a replica multicast or rebroadcast in `out`, as
/// (height, round).
fn announced_round_changes(out: &Actions) -> Vec<(u64, u64)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(QbftMessage::RoundChange(rc))
            | Action::Rebroadcast(QbftMessage::RoundChange(rc)) => {
                Some((rc.signed.payload.height, rc.signed.payload.round))
            }
            _ => None,
        })
        .collect()
}

/// Behind rule: a replica at height 1 that hears from f+1 = 2 peers at
/// height 3 announces its round change at once (the relay it earns is its
/// catch-up) instead of waiting out its round timer; one peer, or any
/// number at height 2 (the ordinary race at a height's end), moves it not.
/// Regression: a QBFT replica restarted over QUIC waited up to its round's
/// timeout (800 ms in a late round) before asking, so its first commit came
/// 970 ms after its restart (scripts/kill-restart.sh).
#[test]
fn a_replica_two_heights_behind_f_plus_1_peers_asks_for_the_relay_at_once() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut lagging = net.replica(3);
    give_request(&mut lagging, 1);
    let d = block1(0, 1).hash();
    for s in [0, 1, 2] {
        let (_, out) = deliver(&mut lagging, s, net.commit(s, 2, 0, d));
        assert!(announced_round_changes(&out).is_empty(), "one height ahead");
    }
    let (_, out) = deliver(&mut lagging, 0, net.commit(0, 3, 0, d));
    assert!(announced_round_changes(&out).is_empty(), "f peers only");
    let (_, out) = deliver(&mut lagging, 1, net.commit(1, 3, 0, d));
    assert_eq!(announced_round_changes(&out), vec![(1, 1)]);
    assert_eq!(lagging.round(), 1);
    // Once per height: more peers ahead change nothing.
    let (_, out) = deliver(&mut lagging, 2, net.commit(2, 4, 0, d));
    assert!(announced_round_changes(&out).is_empty(), "fired once");
}

/// One relay carries every archived height above the lagging replica: cut
/// off while heights 1-3 are decided, node 3 announces a round change and
/// each of its f+1 = 2 helpers answers with one DECIDED holding all three,
/// which it applies in order. Before, a relay was one DECIDED per height and
/// at most `future_height_window` (8) heights, so a replica behind a cluster
/// under load gained on it slowly (`conformance::state_sync`: QBFT reached
/// the tip only once the load stopped).
#[test]
fn one_relay_carries_every_archived_height_above_the_lagging_replica() {
    let net = Signer::new(4, CryptoKind::Real);
    let batch = bft_core::BatchConfig {
        max_size: 1,
        max_delay: std::time::Duration::ZERO,
    };
    let mut cluster: bft_testkit::Net<Qbft> =
        bft_testkit::Net::new(&net.committee, &net.cryptos, &QbftConfig::default(), batch);
    let lagging = NodeId(3);
    cluster.drop = Some(Box::new(move |_, to, _| to == lagging));
    // Heights 1-3 are proposed by nodes 0, 1 and 2.
    for number in 0..3 {
        cluster.request_all(&request(number));
        cluster.run();
    }
    assert!(cluster.ledgers[..3].iter().all(|l| l.len() == 3));
    assert!(cluster.ledgers[3].is_empty());
    cluster.drop = None;
    cluster.fire(QbftTimer::Round, &[lagging]);
    assert_eq!(cluster.sent("decided"), 2, "one relay from each helper");
    assert_eq!(
        cluster.ledgers[3]
            .iter()
            .map(|d| d.slot)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    cluster.assert_safe();
}

/// A relay longer than any helper's archive, or empty, is refused before
/// any of it is looked at.
#[test]
fn a_relay_longer_than_the_archive_or_empty_is_refused() {
    let net = Signer::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let cert = bft_qbft::CommitCertificate {
        digest: block.hash(),
        block,
        round: 0,
        seals: Vec::new(),
    };
    let relay = vec![cert; bft_qbft::messages::RELAY_HEIGHTS + 1];
    let mut lagging = net.replica(3);
    let (r, out) = deliver(&mut lagging, 1, QbftMessage::Decided(relay));
    assert_eq!(r.err().map(|e| e.reason()), Some("oversized-relay"));
    assert!(decisions(&out).is_empty());
    let (r, _) = deliver(&mut lagging, 1, QbftMessage::Decided(Vec::new()));
    assert_eq!(r.err().map(|e| e.reason()), Some("empty-relay"));
}
