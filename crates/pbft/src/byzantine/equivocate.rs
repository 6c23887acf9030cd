//! `equivocate` and `fork`: the primary's PRE-PREPARE(v, n) goes to the
//! recipients the attack picks with another batch, properly signed. Rule 1
//! (one pre-prepare per (v, n)) and quorum intersection keep honest
//! replicas from preparing both.

use super::other_batch;
use crate::messages::{PbftMessage, PrePrepare};
use bft_core::{Attack, TamperContext};

/// As primary: PRE-PREPARE(v, n) with another batch, signed, to the
/// recipients the attack picks ([`Attack::forks_to`]: odd ids for
/// `equivocate`, the plan's choice per (v, n) for `fork`); the others get
/// the honest one.
pub(super) fn equivocate(
    attack: Attack,
    msg: &PbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<PbftMessage>> {
    let PbftMessage::PrePrepare(pp) = msg else {
        return None;
    };
    if !attack.forks_to(ctx, pp.view, pp.seq) || ctx.committee.leader(pp.view) != ctx.me {
        return None;
    }
    let batch = other_batch(&pp.batch)?;
    let twin = PrePrepare::signed(ctx.crypto, pp.view, pp.seq, batch);
    Some(vec![PbftMessage::PrePrepare(twin)])
}
