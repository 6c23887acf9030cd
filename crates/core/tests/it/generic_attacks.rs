//! The attacks written once for every protocol (`bft_core::adversary::edit`),
//! checked on a message type of their own: when each applies, what goes out
//! and in which order.

use bft_core::adversary::edit::{
    MessageEdit, double_vote, inflate_view, mutate, protocol_specific, tamper_generic,
};
use bft_core::{Attack, Committee, Crypto, CryptoKind, Mutation, NodeId, TamperContext, Time};
use bft_crypto::CostModel;

/// A message with every field the edits touch, to check the attacks'
/// own logic (ordering, applicability) apart from any protocol.
#[derive(Clone, Debug, PartialEq)]
struct Msg {
    round: Option<u64>,
    author: NodeId,
    vote: bool,
    digest: u8,
    bad: bool,
    change: bool,
}

impl MessageEdit for Msg {
    fn round(&self) -> Option<u64> {
        self.round
    }
    fn is_own(&self, ctx: &TamperContext<'_>) -> bool {
        self.author == ctx.me
    }
    fn with_round_shifted(
        &self,
        shift: fn(u64) -> Option<u64>,
        _: &TamperContext<'_>,
    ) -> Option<Self> {
        let round = Some(shift(self.round?)?);
        Some(Msg {
            round,
            ..self.clone()
        })
    }
    fn with_stale_digest(&self, _: &TamperContext<'_>) -> Option<Self> {
        Some(Msg {
            digest: 0,
            ..self.clone()
        })
    }
    fn with_author(&self, author: NodeId, _: &TamperContext<'_>) -> Option<Self> {
        Some(Msg {
            author,
            ..self.clone()
        })
    }
    fn conflicting_vote(&self, _: &TamperContext<'_>) -> Option<Self> {
        self.vote.then(|| Msg {
            digest: self.digest + 1,
            ..self.clone()
        })
    }
    fn round_change(&self, round: u64, _: &TamperContext<'_>) -> Option<Self> {
        Some(Msg {
            round: Some(round),
            change: true,
            vote: false,
            ..self.clone()
        })
    }
    fn with_bad_signatures(&self) -> Option<Self> {
        Some(Msg {
            bad: true,
            ..self.clone()
        })
    }
    fn with_payload_swapped(&self, _: &TamperContext<'_>) -> Option<Self> {
        Some(Msg {
            digest: 200,
            ..self.clone()
        })
    }
}

fn vote(author: u16, round: u64) -> Msg {
    Msg {
        round: Some(round),
        author: NodeId(author),
        vote: true,
        digest: 5,
        bad: false,
        change: false,
    }
}

fn with_ctx<T>(to: u16, entropy: u64, f: impl FnOnce(&TamperContext<'_>) -> T) -> T {
    let (committee, cryptos) =
        bft_crypto::cluster(4, 1, CryptoKind::Model, CostModel::zero()).unwrap();
    let committee: &Committee = &committee;
    let crypto: &dyn Crypto = cryptos[0].as_ref();
    f(&TamperContext {
        me: NodeId(0),
        to: NodeId(to),
        now: Time(0),
        committee,
        crypto,
        entropy,
    })
}

#[test]
fn double_vote_sends_both_votes_in_an_order_that_depends_on_the_recipient() {
    let v = vote(0, 3);
    let even = with_ctx(2, 0, |ctx| double_vote(&v, ctx)).unwrap();
    let odd = with_ctx(1, 0, |ctx| double_vote(&v, ctx)).unwrap();
    assert_eq!(even[0], v);
    assert_eq!(even[1].digest, 6);
    assert_eq!(odd, vec![even[1].clone(), even[0].clone()]);
    // Not a vote, or not its own: unchanged.
    let not_vote = Msg {
        vote: false,
        ..v.clone()
    };
    assert_eq!(with_ctx(1, 0, |ctx| double_vote(&not_vote, ctx)), None);
    assert_eq!(with_ctx(1, 0, |ctx| double_vote(&vote(3, 3), ctx)), None);
}

#[test]
fn inflate_view_adds_a_view_change_ahead_of_the_message_round() {
    let v = vote(3, 7);
    let out = with_ctx(1, 0, |ctx| inflate_view(1_000, &v, ctx)).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], v);
    assert!(out[1].change);
    assert_eq!(out[1].round, Some(1_007));
    assert_eq!(with_ctx(1, 0, |ctx| inflate_view(0, &v, ctx)), None);
    let roundless = Msg { round: None, ..v };
    assert_eq!(with_ctx(1, 0, |ctx| inflate_view(5, &roundless, ctx)), None);
}

#[test]
fn mutations_edit_own_messages_only_and_never_wrap_the_round() {
    let v = vote(0, 0);
    let up = with_ctx(1, 0, |ctx| mutate(Mutation::RoundPlusOne, &v, ctx)).unwrap();
    assert_eq!(up[0].round, Some(1));
    assert_eq!(
        with_ctx(1, 0, |ctx| mutate(Mutation::RoundMinusOne, &v, ctx)),
        None,
        "round 0 has no round below"
    );
    let stale = with_ctx(1, 0, |ctx| mutate(Mutation::StaleDigest, &v, ctx)).unwrap();
    assert_eq!(stale[0].digest, 0);
    let relayed = vote(2, 4);
    for m in [
        Mutation::RoundPlusOne,
        Mutation::StaleDigest,
        Mutation::SwapSender,
    ] {
        assert_eq!(with_ctx(1, 0, |ctx| mutate(m, &relayed, ctx)), None);
    }
}

#[test]
fn swap_sender_names_every_other_member_and_never_itself() {
    let v = vote(0, 1);
    let authors: std::collections::BTreeSet<u16> = (0..30)
        .map(|e| {
            let out = with_ctx(1, e, |ctx| mutate(Mutation::SwapSender, &v, ctx)).unwrap();
            out[0].author.0
        })
        .collect();
    assert_eq!(authors.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn swap_payload_edits_own_messages_only() {
    let own = with_ctx(1, 0, |ctx| {
        tamper_generic(Attack::SwapPayload, &vote(0, 2), ctx)
    })
    .unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].digest, 200);
    let relayed = vote(2, 2);
    assert_eq!(
        with_ctx(1, 0, |ctx| tamper_generic(
            Attack::SwapPayload,
            &relayed,
            ctx
        )),
        None
    );
}

#[test]
fn the_protocol_specific_attacks_are_left_to_the_protocol() {
    let v = vote(0, 1);
    for attack in Attack::every() {
        let out = with_ctx(1, 0, |ctx| tamper_generic(attack, &v, ctx));
        assert_eq!(out.is_none(), protocol_specific(attack), "{attack:?}");
    }
}
