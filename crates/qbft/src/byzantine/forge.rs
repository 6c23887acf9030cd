//! `forge(forgery)`: the certificates a QBFT replica's own messages carry
//! (a prepared ROUND-CHANGE's PREPAREs; a PROPOSAL's ROUND-CHANGE set and
//! PREPARE set for r > 0) lose entries, repeat a signer, or are relabelled
//! to another round or digest; the entries keep the signatures their
//! signers made, so they cover something else. Only the outer payload, the
//! Byzantine replica's own, keeps a valid signature.

use super::{conflicting_digest, own};
use crate::messages::{PreparePayload, QbftMessage, Signed};
use bft_core::{Forgery, TamperContext};

/// `forge`: every certificate the message carries is forged — the PREPAREs
/// of a prepared ROUND-CHANGE; the ROUND-CHANGE set and (if re-proposing)
/// the PREPARE set of a PROPOSAL for r > 0. Only the outer payload, ours,
/// keeps a valid signature. `wrong-digest` needs a digest in the
/// certificate, so it applies to PREPARE sets only.
pub(super) fn forge(
    forgery: Forgery,
    msg: &QbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<QbftMessage>> {
    if !own(msg, ctx) {
        return None;
    }
    let q = ctx.committee.quorum_two_thirds();
    match msg {
        QbftMessage::RoundChange(rc) if !rc.prepares.is_empty() => {
            let mut rc = rc.clone();
            forge_prepares(forgery, q, &mut rc.prepares);
            Some(vec![QbftMessage::RoundChange(rc)])
        }
        QbftMessage::Proposal(p) if !p.round_changes.is_empty() => {
            if forgery == Forgery::WrongDigest && p.prepares.is_empty() {
                return None;
            }
            let mut p = p.clone();
            if forgery != Forgery::WrongDigest {
                forge_set(forgery, q, &mut p.round_changes, |rc| {
                    rc.round = rc.round.saturating_add(1);
                });
            }
            forge_prepares(forgery, q, &mut p.prepares);
            Some(vec![QbftMessage::Proposal(p)])
        }
        _ => None,
    }
}

fn forge_prepares(forgery: Forgery, q: usize, prepares: &mut Vec<Signed<PreparePayload>>) {
    match forgery {
        Forgery::WrongDigest => forge_set(forgery, q, prepares, |p| {
            p.digest = conflicting_digest(&p.digest);
        }),
        _ => forge_set(forgery, q, prepares, |p| {
            p.round = p.round.saturating_add(1);
        }),
    }
}

/// One forged certificate: `below-quorum` keeps q − 1 entries,
/// `duplicate-signers` repeats the first signer in place of the last,
/// `wrong-round` / `wrong-digest` re-label every entry with `relabel`
/// (the signatures stay over what was really signed).
fn forge_set<T: Clone>(
    forgery: Forgery,
    q: usize,
    entries: &mut Vec<Signed<T>>,
    relabel: impl Fn(&mut T),
) {
    match forgery {
        Forgery::BelowQuorum => entries.truncate(q.saturating_sub(1)),
        Forgery::DuplicateSigners => {
            if let Some(first) = entries.first().cloned() {
                if entries.len() >= 2 {
                    entries.pop();
                }
                entries.push(first);
            }
        }
        Forgery::WrongRound | Forgery::WrongDigest => {
            for entry in entries.iter_mut() {
                relabel(&mut entry.payload);
            }
        }
    }
}
