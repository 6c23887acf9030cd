//! Forged QCs in proposals and NEW-VIEWs, and flipped signature bytes:
//! each rejected by the QC rule or the signature check.

use super::*;

/// Node 1 leads view 5 and proposes b5 on QC(4). Each forgery of that QC is
/// refused by the QC rule; the replica stays in view 5 without voting and
/// still votes for the honest b5 afterwards.
#[test]
fn forged_qcs_in_proposals_are_rejected_by_the_qc_rule() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child_block(&chain[4], 5, vec![request(5)]);
    let honest = Message::Proposal(b5.clone());
    for (forgery, expected) in [
        (Forgery::BelowQuorum, "qc-too-few-signers"),
        (Forgery::DuplicateSigners, "qc-bad-signature"),
        (Forgery::WrongRound, "qc-bad-signature"),
        (Forgery::WrongDigest, "qc-bad-signature"),
    ] {
        let forged = tamper(&fx, Attack::Forge(forgery), 1, 2, &honest);
        assert_eq!(forged.len(), 1);
        assert_ne!(forged[0], honest, "{forgery:?}");
        let (result, out) = deliver(&mut r, 1, forged[0].clone());
        assert_eq!(reason(result), expected, "{forgery:?}");
        assert_eq!(votes_sent(&out), 0, "{forgery:?}");
    }
    assert_eq!(r.view(), View(4), "no forged QC moved the view");
    assert_eq!(reason(deliver(&mut r, 1, honest).0), "ok");
    assert_eq!(
        r.safety_state().last_voted_view,
        View(5),
        "the honest block is still voted for (node 2 is the next leader: in place)"
    );
}

/// A NEW-VIEW for view 5 (to leader(6) = node 2) carrying a forged QC(4):
/// refused by the QC rule; highQC stays genesis.
#[test]
fn forged_qcs_in_new_views_are_rejected_by_the_qc_rule() {
    let fx = Signer::new(4);
    let b4_hash = Digest([4; 32]);
    let honest = Message::NewView(NewView {
        view: View(5),
        high_qc: fx.qc(4, b4_hash, &fx.quorum()),
        last_vote: None,
    });
    for (forgery, expected) in [
        (Forgery::BelowQuorum, "qc-too-few-signers"),
        (Forgery::DuplicateSigners, "qc-bad-signature"),
        (Forgery::WrongRound, "qc-bad-signature"),
        (Forgery::WrongDigest, "qc-bad-signature"),
    ] {
        let mut r = fx.replica(2);
        let forged = tamper(&fx, Attack::Forge(forgery), 1, 2, &honest);
        assert_eq!(reasons(&mut r, 1, forged), [expected], "{forgery:?}");
        assert!(r.high_qc().is_genesis());
    }
    // The genesis QC has nothing to forge: the attack does not apply.
    let genesis_nv = Message::NewView(NewView {
        view: View(5),
        high_qc: QuorumCert::genesis(),
        last_vote: None,
    });
    let ctx = fx.ctx(1, 2);
    assert!(
        <HotStuff as Adversarial>::tamper(Attack::Forge(Forgery::BelowQuorum), &genesis_nv, &ctx)
            .is_none()
    );
}

/// A flipped byte in a proposal's QC, a NEW-VIEW's QC, or a vote: each is
/// rejected; the honest votes still form the QC.
#[test]
fn flipped_signature_bytes_are_rejected() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child_block(&chain[4], 5, vec![request(5)]);
    let bad = tamper(&fx, Attack::BadSignature, 1, 2, &Message::Proposal(b5));
    assert_eq!(reasons(&mut r, 1, bad), ["qc-bad-signature"]);

    let mut r = fx.replica(2);
    let nv = Message::NewView(NewView {
        view: View(5),
        high_qc: fx.qc(4, Digest([4; 32]), &fx.quorum()),
        last_vote: None,
    });
    let bad = tamper(&fx, Attack::BadSignature, 1, 2, &nv);
    assert_eq!(reasons(&mut r, 1, bad), ["qc-bad-signature"]);

    // Votes for b1 (view 1) go to leader(2) = node 2. Node 1's is corrupt;
    // 0, 3 and node 2's own make the quorum without it.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let b1 = chain[1].hash();
    let bad = tamper(&fx, Attack::BadSignature, 1, 2, &fx.vote(1, 1, b1));
    let first = reasons(&mut r, 1, bad);
    assert!(
        first == ["malformed-vote"] || first == ["ok"],
        "a corrupt point is refused at once or kept for the aggregate: {first:?}"
    );
    let mut later = Vec::new();
    for signer in [0u16, 3] {
        later.push(reason(deliver(&mut r, signer, fx.vote(signer, 1, b1)).0));
    }
    if first == ["ok"] {
        assert_eq!(later, ["bad-vote-signature", "ok"]);
        assert_eq!(r.bad_votes_dropped(), 1);
    } else {
        assert_eq!(later, ["ok", "ok"]);
    }
    assert_eq!(r.high_qc().view, View(1), "QC(1) from the honest votes");
}
