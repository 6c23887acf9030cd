//! The QC rule: signer counts, duplicated signers, wrong view or block,
//! bitmaps, proofs of possession.

use super::*;

#[test]
fn qc_with_fewer_than_n_minus_f_signers_is_rejected() {
    let fx = Signer::new(4);
    let h = Digest([1; 32]);
    let crypto = &*fx.cryptos[0];
    assert_eq!(
        verify_qc(&fx.committee, crypto, &fx.qc(1, h, &[0, 1, 2])),
        Ok(())
    );
    assert_eq!(
        verify_qc(&fx.committee, crypto, &fx.qc(1, h, &[0, 1])),
        Err(HotStuffError::QcTooFewSigners {
            signers: 2,
            quorum: 3
        })
    );
}

/// A bitmap names each signer once, so a duplicate cannot inflate the
/// count; padding a quorum with a second copy of one signer's signature
/// under another signer's bit fails the single aggregate check.
#[test]
fn qc_with_a_duplicated_signer_is_rejected() {
    let fx = Signer::new(4);
    let h = Digest([1; 32]);
    let s0 = fx.sign(0, 1, h);
    let padded = fx.cryptos[0]
        .bls_aggregate(&[
            (NodeId(0), s0),
            (NodeId(1), fx.sign(1, 1, h)),
            (NodeId(2), s0),
        ])
        .unwrap();
    let qc = QuorumCert {
        view: View(1),
        block: h,
        signature: padded,
    };
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[3], &qc),
        Err(HotStuffError::QcBadSignature)
    );
    // And aggregation itself refuses a signer twice.
    assert!(
        fx.cryptos[0]
            .bls_aggregate(&[(NodeId(0), s0), (NodeId(0), s0), (NodeId(1), s0)])
            .is_err()
    );
}

#[test]
fn qc_for_a_different_view_or_block_is_rejected() {
    let fx = Signer::new(4);
    let h = Digest([1; 32]);
    let good = fx.qc(3, h, &[0, 1, 2]);
    let crypto = &*fx.cryptos[3];
    let wrong_view = QuorumCert {
        view: View(4),
        ..good.clone()
    };
    let wrong_block = QuorumCert {
        block: Digest([2; 32]),
        ..good.clone()
    };
    assert_eq!(verify_qc(&fx.committee, crypto, &good), Ok(()));
    for bad in [wrong_view, wrong_block] {
        assert_eq!(
            verify_qc(&fx.committee, crypto, &bad),
            Err(HotStuffError::QcBadSignature)
        );
    }
}

#[test]
fn qc_with_a_bitmap_outside_the_committee_or_a_fake_genesis_is_rejected() {
    let fx = Signer::new(4);
    let h = Digest([1; 32]);
    let mut qc = fx.qc(1, h, &[0, 1, 2]);
    let mut signers = SignerBitmap::new(4);
    for i in [0, 1, 2, 5] {
        signers.insert(NodeId(i));
    }
    qc.signature.signers = signers;
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[0], &qc),
        Err(HotStuffError::QcBadBitmap)
    );
    let fake_genesis = QuorumCert {
        view: View(0),
        block: h,
        ..QuorumCert::genesis()
    };
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[0], &fake_genesis),
        Err(HotStuffError::QcBadGenesis)
    );
}

/// Votes are only ever checked against keys that passed the proof-of-
/// possession check (`VerifiedKeys`, the only way to build real crypto): a
/// committee whose member carries a BLS key without a valid PoP (here, the
/// PoP of another key: the rogue-key setup) is refused outright, so its
/// signatures can never enter a QC.
#[test]
fn bls_key_without_proof_of_possession_is_rejected() {
    let mut members: Vec<_> = (0..4u16)
        .map(|i| SecretKeys::from_seed(9, NodeId(i)).member(NodeId(i)))
        .collect();
    members[3].bls_pop = members[2].bls_pop;
    let committee = Committee::new(members).unwrap();
    let err = VerifiedKeys::new(&committee).err().unwrap();
    assert!(
        matches!(err, bft_crypto::CryptoError::BadProofOfPossession(id) if id == NodeId(3)),
        "{err:?}"
    );
}

#[test]
fn proposal_with_an_under_quorum_qc_gets_no_vote() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    assert_eq!(reason(fx.propose(&mut r, &b1).0), "ok");
    let mut b2 = fx.child(&b1, 2, vec![]);
    b2.block.justify = fx.qc(1, b1.hash, &[1, 2]);
    let (result, out) = deliver(&mut r, 2, Message::Proposal(b2.block.clone()));
    assert_eq!(reason(result), "qc-too-few-signers");
    assert!(votes_sent(&out).is_empty());
    assert!(r.block(&b2.block.hash()).is_none());
}
