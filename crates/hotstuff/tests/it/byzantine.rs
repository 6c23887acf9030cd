//! `<HotStuff as Adversarial>::tamper`: each attack's messages, delivered to
//! an honest replica driven through `Protocol::handle` (real BLS keys), are
//! rejected with the expected reason; the well-signed conflicting ones
//! (equivocation, double votes, view inflation) are then run in the
//! simulator, where no honest replica commits conflicting blocks and memory
//! stays bounded.

use bft_core::{
    Action, Adversarial, Attack, BatchConfig, BlsSignature, Committee, Crypto, CryptoKind, Digest,
    Forgery, ForkChoice, GENESIS, Height, Input, Mutation, NodeContext, NodeId, Protocol,
    Rejection, Request, RequestId, TamperContext, Time, View,
};
use bft_crypto::CostModel;
use bft_hotstuff::{
    Block, HotStuff, HotStuffConfig, HotStuffError, Message, NewView, QuorumCert, Timer,
    VOTE_DOMAIN, Vote, vote_payload,
};
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimConfig, SimReport, Simulation};
use std::sync::Arc;
use std::time::Duration;

type Actions = Vec<Action<Message, Timer>>;

struct Fixture {
    committee: Arc<Committee>,
    cryptos: Vec<Arc<dyn Crypto>>,
}

impl Fixture {
    fn new() -> Fixture {
        let (committee, cryptos) =
            bft_crypto::cluster(4, 5, CryptoKind::Real, CostModel::zero()).unwrap();
        Fixture { committee, cryptos }
    }

    fn replica(&self, id: u16) -> HotStuff {
        HotStuff::new(
            NodeContext {
                id: NodeId(id),
                committee: self.committee.clone(),
                crypto: self.cryptos[usize::from(id)].clone(),
                batch: BatchConfig::default(),
            },
            &HotStuffConfig::default(),
        )
    }

    fn sign(&self, signer: u16, view: u64, block: Digest) -> BlsSignature {
        self.cryptos[usize::from(signer)].bls_sign(VOTE_DOMAIN, &vote_payload(View(view), &block))
    }

    fn vote(&self, signer: u16, view: u64, block: Digest) -> Message {
        Message::Vote(Vote {
            view: View(view),
            block,
            signature: self.sign(signer, view, block),
        })
    }

    fn qc(&self, view: u64, block: Digest) -> QuorumCert {
        let parts: Vec<_> = [0u16, 1, 2]
            .iter()
            .map(|&i| (NodeId(i), self.sign(i, view, block)))
            .collect();
        QuorumCert {
            view: View(view),
            block,
            signature: self.cryptos[0].bls_aggregate(&parts).unwrap(),
        }
    }

    /// A block at `view` on `parent` (hash, view, height), certified by a
    /// quorum QC unless the parent is genesis.
    fn child(&self, parent: &Block, view: u64, batch: Vec<Request>) -> Block {
        let parent_hash = hash(parent);
        let justify = if parent_hash == GENESIS {
            QuorumCert::genesis()
        } else {
            self.qc(parent.view.0, parent_hash)
        };
        Block {
            parent: parent_hash,
            view: View(view),
            height: parent.height.next(),
            batch,
            justify,
        }
    }

    /// The context of Byzantine node `me` sending a copy to `to`.
    fn ctx(&self, me: u16, to: u16) -> TamperContext<'_> {
        TamperContext {
            me: NodeId(me),
            to: NodeId(to),
            now: Time(1),
            committee: &self.committee,
            crypto: &*self.cryptos[usize::from(me)],
            entropy: 42,
        }
    }

    /// Honest blocks of views 1..=`views` delivered to `r` by their
    /// round-robin leaders; returns them (genesis first).
    fn chain(&self, r: &mut HotStuff, views: u64) -> Vec<Block> {
        let mut chain = vec![genesis()];
        for v in 1..=views {
            let b = self.child(chain.last().unwrap(), v, vec![request(v)]);
            let leader = self.committee.leader(v).0;
            assert_eq!(
                reason(deliver(r, leader, Message::Proposal(b.clone())).0),
                "ok"
            );
            chain.push(b);
        }
        chain
    }
}

/// Genesis is stored under [`GENESIS`], not under its own hash.
fn hash(block: &Block) -> Digest {
    if block.view == View(0) {
        GENESIS
    } else {
        block.hash()
    }
}

fn genesis() -> Block {
    Block {
        parent: GENESIS,
        view: View(0),
        height: Height(0),
        batch: vec![],
        justify: QuorumCert::genesis(),
    }
}

fn request(number: u64) -> Request {
    Request {
        id: RequestId { client: 1, number },
        payload: bytes::Bytes::from_static(b"tx"),
    }
}

fn deliver(r: &mut HotStuff, from: u16, msg: Message) -> (Result<(), HotStuffError>, Actions) {
    let mut out = Vec::new();
    let input = Input::Message {
        from: NodeId(from),
        msg,
    };
    let result = r.handle(Time(1), input, &mut out);
    (result, out)
}

fn reason(result: Result<(), HotStuffError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.reason(),
    }
}

fn votes_sent(out: &Actions) -> usize {
    out.iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    msg: Message::Vote(_),
                    ..
                }
            )
        })
        .count()
}

/// `msg` tampered by Byzantine `me` for recipient `to`.
fn tamper(fx: &Fixture, attack: Attack, me: u16, to: u16, msg: &Message) -> Vec<Message> {
    <HotStuff as Adversarial>::tamper(attack, msg, &fx.ctx(me, to)).expect("attack applies")
}

/// Delivers each tampered message from `me`; the rejection reasons.
fn reasons(r: &mut HotStuff, me: u16, msgs: Vec<Message>) -> Vec<&'static str> {
    msgs.into_iter()
        .map(|m| reason(deliver(r, me, m).0))
        .collect()
}

// ---------------------------------------------------------------------------
// Forged certificates
// ---------------------------------------------------------------------------

/// Node 1 leads view 5 and proposes b5 on QC(4). Each forgery of that QC is
/// refused by the QC rule; the replica stays in view 5 without voting and
/// still votes for the honest b5 afterwards.
#[test]
fn forged_qcs_in_proposals_are_rejected_by_the_qc_rule() {
    let fx = Fixture::new();
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child(&chain[4], 5, vec![request(5)]);
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
    let fx = Fixture::new();
    let b4_hash = Digest([4; 32]);
    let honest = Message::NewView(NewView {
        view: View(5),
        high_qc: fx.qc(4, b4_hash),
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

// ---------------------------------------------------------------------------
// Bad signatures
// ---------------------------------------------------------------------------

/// A flipped byte in a proposal's QC, a NEW-VIEW's QC, or a vote: each is
/// rejected; the honest votes still form the QC.
#[test]
fn flipped_signature_bytes_are_rejected() {
    let fx = Fixture::new();
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child(&chain[4], 5, vec![request(5)]);
    let bad = tamper(&fx, Attack::BadSignature, 1, 2, &Message::Proposal(b5));
    assert_eq!(reasons(&mut r, 1, bad), ["qc-bad-signature"]);

    let mut r = fx.replica(2);
    let nv = Message::NewView(NewView {
        view: View(5),
        high_qc: fx.qc(4, Digest([4; 32])),
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

// ---------------------------------------------------------------------------
// Small-scope mutations
// ---------------------------------------------------------------------------

/// View ±1 and a swapped proposer: the block names a view node 1 does not
/// lead (`wrong-proposer`); a re-signed vote for the view ±1 reaches a
/// replica that does not lead the view after it. A NEW-VIEW for the view ±1
/// is a claim like any other ("I gave up on that view"): one sender's moves
/// no one (pacemaker rule 3 needs f+1).
#[test]
fn off_by_one_views_and_swapped_proposers_are_rejected() {
    let fx = Fixture::new();
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = Message::Proposal(fx.child(&chain[4], 5, vec![request(5)]));
    for mutation in [
        Mutation::RoundPlusOne,
        Mutation::RoundMinusOne,
        Mutation::SwapSender,
    ] {
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &b5);
        assert_eq!(reasons(&mut r, 1, m), ["wrong-proposer"], "{mutation:?}");
    }
    // Node 1's vote for b1 goes to node 2 = leader(2).
    let b1 = chain[1].hash();
    let vote = fx.vote(1, 1, b1);
    for mutation in [Mutation::RoundPlusOne, Mutation::RoundMinusOne] {
        let mut r = fx.replica(2);
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &vote);
        let Message::Vote(v) = &m[0] else {
            panic!("a vote")
        };
        // Re-signed: the signature is valid for the mutated view.
        fx.cryptos[2]
            .bls_verify(
                NodeId(1),
                VOTE_DOMAIN,
                &vote_payload(v.view, &v.block),
                &v.signature,
            )
            .unwrap();
        assert_eq!(reasons(&mut r, 1, m), ["not-next-leader"], "{mutation:?}");
    }
    let nv = Message::NewView(NewView {
        view: View(5),
        high_qc: QuorumCert::genesis(),
        last_vote: None,
    });
    for mutation in [Mutation::RoundPlusOne, Mutation::RoundMinusOne] {
        let mut r = fx.replica(2);
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &nv);
        assert_eq!(reasons(&mut r, 1, m), ["ok"], "{mutation:?}");
        assert_eq!(r.view(), View(1), "{mutation:?}");
    }
    // Votes and NEW-VIEWs have no author field to swap.
    let ctx = fx.ctx(1, 2);
    let swap = Attack::Mutate(Mutation::SwapSender);
    assert!(<HotStuff as Adversarial>::tamper(swap, &vote, &ctx).is_none());
    assert!(<HotStuff as Adversarial>::tamper(swap, &nv, &ctx).is_none());
}

/// A stale digest: the proposal becomes a block on genesis. Before any
/// commit it is well-formed but conflicts with the lock, and the vote rule
/// refuses it; after a commit its parent is below the committed block
/// (`parent-below-commit`). The vote names genesis and joins no QC.
#[test]
fn stale_digests_get_no_vote_and_no_qc() {
    let fx = Fixture::new();
    // b3 locks b1; nothing above genesis is committed yet. Node 0 leads view 4.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 3);
    assert_eq!(r.safety_state().locked.view, View(1));
    let b4 = Message::Proposal(fx.child(&chain[3], 4, vec![request(4)]));
    let stale = tamper(&fx, Attack::Mutate(Mutation::StaleDigest), 0, 2, &b4);
    let Message::Proposal(block) = &stale[0] else {
        panic!("a proposal")
    };
    assert_eq!((block.parent, block.height), (GENESIS, Height(1)));
    let refused = r.votes_refused();
    assert_eq!(
        reasons(&mut r, 0, stale),
        ["ok"],
        "well-formed, buffered for view 4"
    );
    // View 3's timer fires (its leader's QC never came), and with nodes 1
    // and 3 giving up too (n−f NEW-VIEW(3)s): into view 4.
    let mut out = Vec::new();
    r.handle(Time(2), Input::Timeout(Timer::View), &mut out)
        .unwrap();
    for from in [1, 3] {
        let nv = NewView {
            view: View(3),
            high_qc: QuorumCert::genesis(),
            last_vote: None,
        };
        let msg = Message::NewView(nv);
        r.handle(
            Time(2),
            Input::Message {
                from: NodeId(from),
                msg,
            },
            &mut out,
        )
        .unwrap();
    }
    assert_eq!(r.view(), View(4));
    assert_eq!(votes_sent(&out), 0);
    assert_eq!(r.votes_refused(), refused + 1, "the vote rule refused it");
    assert_eq!(r.committed_tip().height, Height(0));

    // After b4 commits b1, node 1's stale block for view 5 cannot attach.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = Message::Proposal(fx.child(&chain[4], 5, vec![request(5)]));
    let stale = tamper(&fx, Attack::Mutate(Mutation::StaleDigest), 1, 2, &b5);
    assert_eq!(reasons(&mut r, 1, stale), ["parent-below-commit"]);
    assert_eq!(r.committed_tip().height, Height(1));

    // A stale vote for view 1 at leader(2) = node 2 joins no QC.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let b1 = chain[1].hash();
    let stale = tamper(
        &fx,
        Attack::Mutate(Mutation::StaleDigest),
        1,
        2,
        &fx.vote(1, 1, b1),
    );
    assert_eq!(reasons(&mut r, 1, stale), ["ok"]);
    assert_eq!(reason(deliver(&mut r, 0, fx.vote(0, 1, b1)).0), "ok");
    assert!(r.high_qc().is_genesis(), "node 1's vote is not for b1");
    assert_eq!(reason(deliver(&mut r, 3, fx.vote(3, 1, b1)).0), "ok");
    assert_eq!(r.high_qc().view, View(1));
}

// ---------------------------------------------------------------------------
// Well-signed conflicting messages
// ---------------------------------------------------------------------------

/// The second vote is node 1's own valid signature for another block in
/// the same view: `equivocating-vote`, and it counts for nothing.
#[test]
fn double_votes_are_refused_as_equivocation() {
    let fx = Fixture::new();
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let b1 = chain[1].hash();
    let both = tamper(&fx, Attack::DoubleVote, 1, 2, &fx.vote(1, 1, b1));
    assert_eq!(both.len(), 2);
    let Message::Vote(second) = &both[1] else {
        panic!("a vote")
    };
    assert_eq!(second.view, View(1));
    assert_ne!(second.block, b1);
    fx.cryptos[2]
        .bls_verify(
            NodeId(1),
            VOTE_DOMAIN,
            &vote_payload(second.view, &second.block),
            &second.signature,
        )
        .unwrap();
    assert_eq!(reasons(&mut r, 1, both), ["ok", "equivocating-vote"]);
}

/// Odd recipients get a second, different block for the same view with the
/// same parent and QC; even ones get nothing new. A replica receiving both
/// refuses the second.
#[test]
fn equivocation_sends_odd_recipients_another_block_for_the_view() {
    let fx = Fixture::new();
    let mut r = fx.replica(3);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child(&chain[4], 5, vec![request(5)]);
    let honest = Message::Proposal(b5.clone());
    let ctx = fx.ctx(1, 2);
    assert!(<HotStuff as Adversarial>::tamper(Attack::Equivocate, &honest, &ctx).is_none());
    let other = tamper(&fx, Attack::Equivocate, 1, 3, &honest);
    let Message::Proposal(b5x) = &other[0] else {
        panic!("a proposal")
    };
    assert_eq!(
        (b5x.view, b5x.parent, &b5x.justify, b5x.height),
        (b5.view, b5.parent, &b5.justify, b5.height)
    );
    assert_ne!(b5x.hash(), b5.hash());
    assert_eq!(reasons(&mut r, 1, other), ["ok"]);
    assert_eq!(reasons(&mut r, 1, vec![honest]), ["equivocating-proposal"]);
}

/// `fork(plan)` with the replica's state: over 64 plans, a recipient the
/// plan picks for view 5 gets b5 rebuilt on the QC `depth` below b5's own
/// among those the replica holds (QC(3), or QC(2) for depth 1: after
/// b1..b4 it holds QC(1..=3)), the others get b5; and its own vote for b5
/// goes to that fork exactly when the plan forks to at least half of its
/// peers.
#[test]
fn fork_plan_builds_on_an_older_held_qc_and_votes_with_the_majority() {
    let fx = Fixture::new();
    let mut r = fx.replica(3);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child(&chain[4], 5, vec![request(5)]);
    let proposal = Message::Proposal(b5.clone());
    let own_vote = fx.vote(3, 5, b5.hash());
    let sent = [proposal.clone()];
    let (mut forks, mut votes_moved) = (0, 0);
    for plan in 0..64 {
        let choice = ForkChoice::of(plan, 4, 5, 0);
        let fork_for =
            |to: u16| r.tamper_with_memory(Attack::Fork(plan), &proposal, &sent, &fx.ctx(3, to));
        let mut fork = None;
        for to in 0..3u16 {
            match fork_for(to) {
                None => assert!(!choice.forks_to(NodeId(to)), "plan {plan} to {to}"),
                Some(out) => {
                    assert!(choice.forks_to(NodeId(to)), "plan {plan} to {to}");
                    let [Message::Proposal(f)] = out.as_slice() else {
                        panic!("{out:?}")
                    };
                    let base = &chain[3 - choice.depth];
                    assert_eq!((f.view, f.parent), (View(5), base.hash()));
                    assert_eq!((f.justify.view, f.height), (base.view, base.height.next()));
                    assert_eq!(f.batch, b5.batch);
                    fork = Some(f.hash());
                    forks += 1;
                }
            }
        }
        let peers_forked = choice.forked_among([NodeId(0), NodeId(1), NodeId(2)]);
        let vote = r.tamper_with_memory(Attack::Fork(plan), &own_vote, &sent, &fx.ctx(3, 2));
        if peers_forked >= 2 {
            let Some([Message::Vote(v)]) = vote.as_deref() else {
                panic!("plan {plan}: {vote:?}")
            };
            assert_eq!((v.view, Some(v.block)), (View(5), fork));
            votes_moved += 1;
        } else {
            assert_eq!(vote, None, "plan {plan}");
        }
    }
    assert!(
        forks > 40 && votes_moved > 10,
        "{forks} forks, {votes_moved} votes moved"
    );
}

/// Besides the message, a valid NEW-VIEW far ahead: not buffered (beyond
/// the window only the sender's highest view is kept, one per member), and
/// alone (one sender, not f+1) it moves no one.
#[test]
fn inflated_new_views_move_no_one() {
    let fx = Fixture::new();
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let vote = fx.vote(1, 1, chain[1].hash());
    // 1 + 1_000_000 ≡ 1 (mod 4): its view after is led by node 2.
    let far = tamper(&fx, Attack::InflateView(1_000_000), 1, 2, &vote);
    let retained = r.status().retained;
    assert_eq!(reasons(&mut r, 1, far), ["ok", "ok"]);
    assert_eq!(r.status().retained, retained + 1, "the vote only");
    let near = tamper(&fx, Attack::InflateView(4), 1, 2, &vote);
    assert_eq!(reasons(&mut r, 1, near), ["duplicate-vote", "ok"]);
    assert_eq!(r.view(), View(1));
}

// ---------------------------------------------------------------------------
// In the simulator: every attack by one replica of four
// ---------------------------------------------------------------------------

const REQUESTS: u64 = 20;

fn attacked(attack: Attack, seed: u64) -> (SimReport, Simulation<HotStuff>) {
    let cfg = SimConfig {
        nodes: 4,
        seed,
        duration: Duration::from_secs(120),
        network: NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5)),
        load: LoadConfig::closed(1, 1, 128).with_total(REQUESTS),
        faults: vec![Fault::attack(NodeId(1), attack, Duration::ZERO)],
        ..SimConfig::default()
    };
    let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
    let report = sim.run();
    (report, sim)
}

fn rejected(report: &SimReport, reason: &str) -> u64 {
    report.stats.rejected.get(reason).copied().unwrap_or(0)
}

/// Every attack, by node 1 of 4, over a few seeds: no conflicting commits,
/// every request committed, the attack's signature rejection counted, and
/// the honest replicas' retained state small.
#[test]
fn every_attack_by_one_replica_is_safe_live_and_bounded() {
    let cases: Vec<(Attack, &[&str])> = vec![
        (
            Attack::Equivocate,
            &["equivocating-proposal", "unknown-parent", "ok"],
        ),
        (Attack::DoubleVote, &["equivocating-vote"]),
        (Attack::Forge(Forgery::BelowQuorum), &["qc-too-few-signers"]),
        (
            Attack::Forge(Forgery::DuplicateSigners),
            &["qc-bad-signature"],
        ),
        (Attack::Forge(Forgery::WrongRound), &["qc-bad-signature"]),
        (Attack::Forge(Forgery::WrongDigest), &["qc-bad-signature"]),
        (Attack::InflateView(1000), &["ok"]),
        (Attack::InflateView(3), &["ok"]),
        (Attack::Mutate(Mutation::RoundPlusOne), &["wrong-proposer"]),
        (Attack::Mutate(Mutation::RoundMinusOne), &["wrong-proposer"]),
        (Attack::Mutate(Mutation::StaleDigest), &["ok"]),
        (Attack::Mutate(Mutation::SwapSender), &["wrong-proposer"]),
        (
            Attack::BadSignature,
            &["qc-bad-signature", "bad-vote-signature"],
        ),
    ];
    for (attack, reasons) in cases {
        for seed in 1..=3 {
            let (report, sim) = attacked(attack, seed);
            assert!(
                report.violations.is_empty(),
                "{attack:?} seed {seed}: {:?}",
                report.violations
            );
            assert_eq!(
                report.requests_committed, REQUESTS,
                "{attack:?} seed {seed}"
            );
            let counted: u64 = reasons.iter().map(|r| rejected(&report, r)).sum();
            assert!(
                reasons.contains(&"ok") || counted > 0,
                "{attack:?} seed {seed}: {:?}",
                report.stats.rejected.to_sorted()
            );
            for id in [0u16, 2, 3] {
                let retained = sim.node(NodeId(id)).status().retained;
                assert!(retained < 200, "{attack:?} node {id}: {retained}");
            }
        }
    }
}
