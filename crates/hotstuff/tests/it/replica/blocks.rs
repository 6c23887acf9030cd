//! Proposal and block checks, fetching unknown parents, and the bounded
//! orphan store.

use super::*;

#[test]
fn proposal_checks_reject_bad_blocks() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let g = genesis();
    let b1 = fx.child(&g, 1, vec![request(0)]);

    let (res, _) = deliver(&mut r, 2, Message::Proposal(b1.block.clone()));
    assert_eq!(reason(res), "wrong-proposer");

    let far = fx.child(&g, 1 + 16 + 4, vec![]);
    let (res, _) = deliver(&mut r, 1, Message::Proposal(far.block));
    assert_eq!(reason(res), "view-too-far", "view inflation moves no one");
    assert_eq!(r.view(), View(1));

    let mut mismatch = b1.block.clone();
    mismatch.parent = Digest([9; 32]);
    let (res, _) = deliver(&mut r, 1, Message::Proposal(mismatch));
    assert_eq!(reason(res), "justify-mismatch");

    let mut tall = b1.block.clone();
    tall.height = Height(5);
    let (res, _) = deliver(&mut r, 1, Message::Proposal(tall));
    assert_eq!(reason(res), "bad-height");

    let (res, out) = fx.propose(&mut r, &b1);
    assert_eq!(reason(res), "ok");
    assert_eq!(votes_sent(&out).len(), 1, "votes for a valid block");

    let (res, _) = fx.propose(&mut r, &b1);
    assert_eq!(reason(res), "duplicate-block");

    let other = fx.child(&g, 1, vec![request(1)]);
    let (res, out) = fx.propose(&mut r, &other);
    assert_eq!(reason(res), "equivocating-proposal");
    assert!(votes_sent(&out).is_empty(), "never a second vote in a view");
}

/// A block carrying more requests than the batch `max_size` (1 here) is
/// rejected as `oversized-block` before anything else: not stored, no vote.
/// Without the check a Byzantine leader's huge block is voted on and kept.
#[test]
fn oversized_block_is_rejected_and_gets_no_vote() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let big = fx.child(&genesis(), 1, vec![request(0), request(1)]);
    let (res, out) = fx.propose(&mut r, &big);
    assert_eq!(reason(res), "oversized-block");
    assert!(votes_sent(&out).is_empty());
    assert!(r.block(&big.hash).is_none());
    // The view is not burnt: the leader's valid block is still voted on.
    let ok = fx.child(&genesis(), 1, vec![request(0)]);
    let (res, out) = fx.propose(&mut r, &ok);
    assert_eq!(reason(res), "ok");
    assert_eq!(votes_sent(&out).len(), 1);
}

/// A block whose parent never arrived is held, the parent is fetched from
/// one of its voters, and once it arrives the held block is processed and
/// voted on.
#[test]
fn unknown_parent_is_fetched_then_the_block_is_voted_on() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let (res, out) = fx.propose(&mut r, &b2);
    assert_eq!(reason(res), "unknown-parent");
    let asked: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Resend {
                to,
                msg: Message::BlockRequest { block, .. },
            } => Some((*to, *block)),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].1, b1.hash);
    let peer = asked[0].0.0;

    let (res, _) = deliver(
        &mut r,
        3,
        Message::BlockResponse(vec![fx.child(&genesis(), 1, vec![]).block]),
    );
    assert_eq!(reason(res), "unsolicited-block");

    let (res, out) = deliver(&mut r, peer, Message::BlockResponse(vec![b1.block.clone()]));
    assert_eq!(reason(res), "ok");
    let votes = votes_sent(&out);
    assert_eq!(votes.len(), 1);
    assert_eq!((votes[0].1.view, votes[0].1.block), (View(2), b2.hash));
}

/// A proposal that overtook its parent on the way asks for the parent
/// alone, not for the ancestors already held: the request names the
/// highest block held below the parent's height.
#[test]
fn a_parent_fetch_asks_only_above_the_blocks_held() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![request(1)]);
    let b3 = fx.child(&b2, 3, vec![]);
    let b4 = fx.child(&b3, 4, vec![]);
    must(fx.propose(&mut r, &b1));
    must(fx.propose(&mut r, &b2));
    let (res, out) = fx.propose(&mut r, &b4);
    assert_eq!(reason(res), "unknown-parent");
    let asked: Vec<(Digest, Height)> = block_requests_above(&out)
        .into_iter()
        .map(|(_, block, above)| (block, above))
        .collect();
    assert_eq!(asked, vec![(b3.hash, b2.block.height)]);
}

/// The block held below the parent may be on another fork: the answer then
/// does not link, and the fetch of the fetched block's parent asks above the
/// committed tip, so the next answer links.
#[test]
fn a_fetched_block_that_does_not_link_asks_above_the_committed_tip() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let fork = fx.child(&b1, 2, vec![request(5)]);
    let b2 = fx.child(&b1, 3, vec![request(1)]);
    let b3 = fx.child(&b2, 4, vec![]);
    let b4 = fx.child(&b3, 5, vec![]);
    must(fx.propose(&mut r, &b1));
    must(fx.propose(&mut r, &fork));
    let (res, out) = fx.propose(&mut r, &b4);
    assert_eq!(reason(res), "unknown-parent");
    let asked = block_requests_above(&out);
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].1, asked[0].2), (b3.hash, fork.block.height));
    let (_, out) = deliver(
        &mut r,
        asked[0].0,
        Message::BlockResponse(vec![b3.block.clone()]),
    );
    let asked = block_requests_above(&out);
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].1, asked[0].2), (b2.hash, Height(0)));
}

/// The server's side: a BLOCK-REQUEST is answered with the block and its
/// ancestors above the request's height only, the requested block always.
#[test]
fn a_block_request_is_served_down_to_its_height() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let b3 = fx.child(&b2, 3, vec![]);
    for b in [&b1, &b2, &b3] {
        must(fx.propose(&mut r, b));
    }
    let mut served = |above: u64| -> Vec<Digest> {
        let (res, out) = deliver(
            &mut r,
            2,
            Message::BlockRequest {
                block: b3.hash,
                above: Height(above),
            },
        );
        assert_eq!(reason(res), "ok");
        out.iter()
            .filter_map(|a| match a {
                Action::Resend {
                    msg: Message::BlockResponse(chain),
                    ..
                } => Some(chain.iter().map(Block::hash).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert_eq!(served(0), vec![b3.hash, b2.hash, b1.hash]);
    assert_eq!(served(1), vec![b3.hash, b2.hash]);
    assert_eq!(served(2), vec![b3.hash]);
    assert_eq!(served(3), vec![b3.hash], "the requested block always");
}

/// n = 10, replica 0 (leads views 10, 20). b1..b5 commit b1 and b2, and b1
/// is pruned. The Byzantine leader of view 19 (node 9, inside the window)
/// then floods proposals whose parent we lack:
/// - 70 with the genuine but old QC(b1) and height u64::MAX (its parent is
///   committed and pruned, it can never be adopted): rejected before the
///   pairing check, nothing held;
/// - 40 with fresh QCs over unknown blocks and a plausible height: held,
///   but at most the sender's share of the orphan pool (64 / n = 6), each
///   eviction releasing its fetch.
///
/// Afterwards an honest proposal whose parent we missed is still held, its
/// parent fetched, and voted on. Before the fix the 64 orphan slots stayed
/// full for ever and the honest block was dropped: no vote.
#[test]
fn byzantine_orphan_flood_stays_bounded_and_honest_orphans_still_get_voted() {
    let fx = Signer::new(10);
    let mut r = fx.replica(0);
    let chain: Vec<Link> = (1..=5).fold(vec![genesis()], |mut c, v| {
        let next = fx.child(c.last().unwrap(), v, vec![]);
        c.push(next);
        c
    });
    for b in &chain[1..] {
        must(fx.propose(&mut r, b));
    }
    assert_eq!(r.committed_tip().hash, chain[2].hash);
    assert!(r.block(&chain[1].hash).is_none(), "b1 pruned");

    let old_qc = fx.qc(1, chain[1].hash, &fx.quorum());
    for k in 0..70 {
        let block = Block {
            parent: chain[1].hash,
            view: View(19),
            height: Height(u64::MAX),
            batch: vec![request(100 + k)],
            justify: old_qc.clone(),
        };
        let (res, out) = deliver(&mut r, 9, Message::Proposal(block));
        assert_eq!(reason(res), "parent-below-commit");
        assert!(block_requests(&out).is_empty(), "no fetch for it");
    }
    for k in 0..40u8 {
        let block = Block {
            parent: Digest([k; 32]),
            view: View(19),
            height: Height(6),
            batch: vec![],
            justify: fx.qc(4, Digest([k; 32]), &fx.quorum()),
        };
        let (res, _) = deliver(&mut r, 9, Message::Proposal(block));
        assert_eq!(reason(res), "unknown-parent");
    }
    assert!(r.orphans_len() <= 6, "orphans held: {}", r.orphans_len());
    assert!(r.fetching_len() <= 6, "fetches held: {}", r.fetching_len());
    assert_eq!(r.view(), View(5));

    // Honest: b6 (view 6) never reached us; b7 (view 7) extends it.
    let b6 = fx.child(&chain[5], 6, vec![]);
    let b7 = fx.child(&b6, 7, vec![]);
    let (res, out) = fx.propose(&mut r, &b7);
    assert_eq!(reason(res), "unknown-parent");
    let asked = block_requests(&out);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].1, b6.hash);
    let (res, out) = deliver(
        &mut r,
        asked[0].0,
        Message::BlockResponse(vec![b6.block.clone()]),
    );
    assert_eq!(reason(res), "ok");
    let votes = votes_sent(&out);
    assert_eq!(votes.len(), 1, "the honest orphan is voted on");
    assert_eq!((votes[0].1.view, votes[0].1.block), (View(7), b7.hash));
}

/// A block whose QC hits the verification cache is stored with the copy we
/// verified: the cache checks (view, block) only and the block hash does
/// not cover the signature. Fuzz finding (n = 7, node 1 corrupting every
/// signature it sent, node 0 omitting to node 6): the honest replicas had
/// verified QC(6) before node 1's block of view 8 arrived with a corrupted
/// copy of it, stored those bytes, and served them to node 6, which could
/// never verify them and never voted again.
#[test]
fn a_block_is_stored_with_the_qc_copy_we_verified() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![]);
    let b2 = fx.child(&b1, 2, vec![]);
    must(fx.propose(&mut r, &b1));
    must(fx.propose(&mut r, &b2));
    // Another block on b1, its (cached) QC(1) with one byte flipped.
    let mut forged = fx.child(&b1, 3, vec![]);
    let mut bytes = forged.block.justify.signature.signature.0;
    bytes[47] ^= 1;
    forged.block.justify.signature.signature = BlsSignature(bytes);
    assert!(verify_qc(&fx.committee, &*fx.cryptos[0], &forged.block.justify).is_err());
    assert_eq!(
        forged.block.hash(),
        forged.hash,
        "the hash ignores the signature"
    );
    must(fx.propose(&mut r, &forged));
    let (_, out) = deliver(
        &mut r,
        2,
        Message::BlockRequest {
            block: forged.hash,
            above: Height(0),
        },
    );
    let served: Vec<&Block> = out
        .iter()
        .filter_map(|a| match a {
            Action::Resend {
                msg: Message::BlockResponse(chain),
                ..
            } => chain.first(),
            _ => None,
        })
        .collect();
    assert_eq!(served.len(), 1);
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[2], &served[0].justify),
        Ok(())
    );
}

/// Serve budget: a peer asking for blocks again and again has 64 requests
/// answered at once (as many as an honest replica may have outstanding),
/// then 64 more per base view timeout; the rest are refused as
/// `serve-limited`, so it cannot make a replica send unbounded data.
/// Another peer is not charged for it.
#[test]
fn repeated_block_requests_are_served_within_the_peers_budget() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let b1 = fx.child(&genesis(), 1, vec![]);
    must(fx.propose(&mut r, &b1));
    let timeout = bft_hotstuff::HotStuffConfig::default().view_timeout;
    let mut ask = |from: u16, at: Time| {
        let mut out = Vec::new();
        let msg = Message::BlockRequest {
            block: b1.hash,
            above: Height(0),
        };
        let result = r.handle(
            at,
            Input::Message {
                from: NodeId(from),
                msg,
            },
            &mut out,
        );
        reason(result)
    };
    let t0 = Time(1);
    let answers: Vec<&str> = (0..70).map(|_| ask(3, t0)).collect();
    assert!(answers[..64].iter().all(|&a| a == "ok"), "{answers:?}");
    assert!(
        answers[64..].iter().all(|&a| a == "serve-limited"),
        "{answers:?}"
    );
    assert_eq!(ask(2, t0), "ok", "replica 2 has its own budget");
    let later = t0.saturating_add(timeout);
    let refilled: Vec<&str> = (0..65).map(|_| ask(3, later)).collect();
    assert_eq!(refilled.iter().filter(|&&a| a == "ok").count(), 64);
    assert_eq!(refilled[64], "serve-limited");
}
