//! One QBFT replica driven directly through `handle` with hand-built,
//! really signed messages: the normal case step by step, and every way a
//! proposal for round > 0 must be rejected.

use crate::common::{
    Actions, Signer, block1, broadcast_kinds, broadcast_prepares, deliver, request,
};
use bft_core::{Action, CryptoKind, GENESIS, Input, NodeId, Protocol, Rejection, Time};
use bft_qbft::messages::{Block, PreparePayload, QbftMessage, RoundChangePayload, Signed};
use bft_qbft::{Qbft, QbftConfig, QbftError, QbftTimer};

mod normal;
mod proposals;
mod relay;
mod round_change;

fn at(ms: u64) -> Time {
    Time::from_duration(std::time::Duration::from_millis(ms))
}

fn give_request(replica: &mut Qbft, number: u64) -> Actions {
    let mut out = Vec::new();
    replica
        .handle(at(0), Input::Request(request(number)), &mut out)
        .unwrap();
    out
}

fn fire_round_timer(replica: &mut Qbft) -> Actions {
    let mut out = Vec::new();
    replica
        .handle(at(500), Input::Timeout(QbftTimer::Round), &mut out)
        .unwrap();
    out
}

fn decisions(out: &Actions) -> Vec<bft_core::Decision> {
    out.iter()
        .filter_map(|a| match a {
            Action::Commit(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

/// Unprepared ROUND-CHANGE payloads for (1, `round`) from `signers`.
fn unprepared_rcs(net: &Signer, signers: &[u16], round: u64) -> Vec<Signed<RoundChangePayload>> {
    signers
        .iter()
        .map(|&s| net.rc_payload(s, 1, round, None))
        .collect()
}

/// Delivers `msg` from the round-1 proposer (node 1) to node 3 at height 1
/// and returns what happened.
fn offer_to_node3(net: &Signer, msg: QbftMessage) -> (Result<(), QbftError>, Actions, Qbft) {
    let mut replica = net.replica(3);
    let from = match &msg {
        QbftMessage::Proposal(p) => p.signed.author.0,
        _ => 1,
    };
    let (r, out) = deliver(&mut replica, from, msg);
    (r, out, replica)
}

fn assert_rejected(result: (Result<(), QbftError>, Actions, Qbft), reason: &str) {
    let (r, out, replica) = result;
    let err = r.expect_err("proposal must be rejected");
    assert_eq!(err.reason(), reason, "{err}");
    assert!(
        broadcast_prepares(&out).is_empty(),
        "no PREPARE for a rejected proposal"
    );
    assert_eq!(replica.round(), 0, "a rejected proposal moves nobody");
}

/// Decides height 1 at `replica` (not node 0) with the proposal from node 0
/// and prepares/commits from `others` (plus its own).
fn decide_height_1(net: &Signer, replica: &mut Qbft, others: [u16; 2]) -> bft_core::Digest {
    let block = block1(0, 1);
    let d = block.hash();
    deliver(replica, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    for s in others {
        deliver(replica, s, QbftMessage::Prepare(net.prepare(s, 1, 0, d)))
            .0
            .unwrap();
    }
    for s in others {
        deliver(replica, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    assert_eq!(replica.height(), 2);
    d
}
