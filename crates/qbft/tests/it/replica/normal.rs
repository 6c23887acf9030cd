//! The normal case: quorums, proposing, PREPARE and COMMIT, commit
//! certificates.

use super::*;

#[test]
fn quorum_sizes_are_two_thirds_ceiling_for_n_4_to_7() {
    for (n, q) in [(4, 3), (5, 4), (6, 4), (7, 5)] {
        let net = Signer::new(n, CryptoKind::Model);
        assert_eq!(net.committee.quorum_two_thirds(), q, "n = {n}");
    }
}

#[test]
fn round0_proposer_proposes_prepares_and_arms_round_timer_on_request() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut leader = net.replica(0);
    assert_eq!(
        leader.proposer_of(0),
        NodeId(0),
        "proposer(1, 0) rotates from genesis to 0"
    );
    let out = give_request(&mut leader, 1);
    assert_eq!(broadcast_kinds(&out), vec!["proposal", "prepare"]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::SetTimer {
            timer: QbftTimer::Round,
            ..
        }
    )));
}

#[test]
fn backup_prepares_commits_on_q_prepares_and_decides_on_q_commits() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut backup = net.replica(2);
    let block = block1(0, 1);
    let d = block.hash();
    let (r, out) = deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]));
    r.unwrap();
    assert_eq!(
        broadcast_prepares(&out),
        vec![PreparePayload {
            height: 1,
            round: 0,
            digest: d
        }]
    );
    // Own prepare + node 0's: 2 < q = 3, no commit yet.
    let (r, out) = deliver(
        &mut backup,
        0,
        QbftMessage::Prepare(net.prepare(0, 1, 0, d)),
    );
    r.unwrap();
    assert!(broadcast_kinds(&out).is_empty());
    let (r, out) = deliver(
        &mut backup,
        1,
        QbftMessage::Prepare(net.prepare(1, 1, 0, d)),
    );
    r.unwrap();
    assert_eq!(broadcast_kinds(&out), vec!["commit"]);
    assert_eq!(backup.prepared(), Some((0, d)));
    // Own commit + one: not yet; the third decides.
    let (r, out) = deliver(&mut backup, 0, net.commit(0, 1, 0, d));
    r.unwrap();
    assert!(decisions(&out).is_empty());
    let (r, out) = deliver(&mut backup, 3, net.commit(3, 1, 0, d));
    r.unwrap();
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].slot, 1);
    assert_eq!(decided[0].block, d);
    assert_eq!(decided[0].parent, GENESIS);
    assert_eq!(decided[0].requests, vec![request(1).id()]);
    assert_eq!(backup.height(), 2);
    let cert = backup.last_certificate().unwrap();
    assert_eq!(cert.seals.len(), 3);
    cert.verify(net.crypto(2), &net.committee).unwrap();
    // The next height's round-0 proposer rotates from block 1's proposer.
    assert_eq!(backup.proposer_of(0), NodeId(1));
    // A late commit for the decided height is dropped, not counted against it.
    let (r, out) = deliver(&mut backup, 1, net.commit(1, 1, 0, d));
    assert!(r.is_ok() && out.iter().all(|a| !matches!(a, Action::Commit(_))));
}

#[test]
fn commit_certificate_rejects_tampered_or_short_seals() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut backup = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    for s in [0, 1] {
        deliver(
            &mut backup,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d)),
        )
        .0
        .unwrap();
    }
    for s in [0, 1] {
        deliver(&mut backup, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    let cert = backup.last_certificate().unwrap().clone();
    cert.verify(net.crypto(0), &net.committee).unwrap();
    let mut short = cert.clone();
    short.seals.pop();
    assert!(matches!(
        short.verify(net.crypto(0), &net.committee),
        Err(QbftError::InsufficientSeals { got: 2, need: 3 })
    ));
    let mut forged = cert.clone();
    forged.seals[0].1 = forged.seals[1].1;
    assert_eq!(
        forged.verify(net.crypto(0), &net.committee),
        Err(QbftError::BadSignature)
    );
    let mut other_block = cert;
    other_block.block.requests.clear();
    assert_eq!(
        other_block.verify(net.crypto(0), &net.committee),
        Err(QbftError::DigestMismatch)
    );
}

#[test]
fn n6_quorum_is_four_so_three_commits_do_not_decide() {
    let net = Signer::new(6, CryptoKind::Model);
    let mut backup = net.replica(5);
    let block = block1(0, 1);
    let d = block.hash();
    deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    // Own prepare + 2 others = 3 = 2f+1 at n = 6, but q = 4.
    for s in [0, 1] {
        let (r, out) = deliver(
            &mut backup,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d)),
        );
        r.unwrap();
        assert!(
            broadcast_kinds(&out).is_empty(),
            "3 prepares must not commit at n = 6"
        );
    }
    let (_, out) = deliver(
        &mut backup,
        2,
        QbftMessage::Prepare(net.prepare(2, 1, 0, d)),
    );
    assert_eq!(broadcast_kinds(&out), vec!["commit"]);
    // Own commit + 2 = 3: no decision; the 4th decides.
    for s in [0, 1] {
        let (_, out) = deliver(&mut backup, s, net.commit(s, 1, 0, d));
        assert!(
            decisions(&out).is_empty(),
            "3 commits must not decide at n = 6"
        );
    }
    let (_, out) = deliver(&mut backup, 2, net.commit(2, 1, 0, d));
    assert_eq!(decisions(&out).len(), 1);
}
