//! One replica driven directly through `Protocol::handle` with hand-built
//! blocks, QCs and votes, signed with real BLS keys: the rejections, the
//! safety rules inside the state machine, the leader's vote aggregation and
//! the pacemaker.

use bft_core::{
    Action, BlsSignature, Committee, Digest, GENESIS, Height, Input, NodeId, Protocol, Rejection,
    Request, SignerBitmap, Time, View,
};
use bft_crypto::{CostModel, SecretKeys, VerifiedKeys};
use bft_hotstuff::rules::verify_qc;
use bft_hotstuff::{Block, HotStuff, HotStuffError, Message, NewView, QuorumCert, Timer, Vote};

use crate::common::{Signer, genesis as genesis_block, request};
use std::time::Duration;

mod blocks;
mod chain;
mod pacemaker;
mod qc;
mod votes;

type Actions = Vec<Action<Message, Timer>>;

impl Signer {
    /// Delivers `link`'s block as a proposal from its view's leader.
    fn propose(&self, r: &mut HotStuff, link: &Link) -> (Result<(), HotStuffError>, Actions) {
        let leader = self.committee.leader(link.view);
        deliver(r, leader.0, Message::Proposal(link.block.clone()))
    }

    /// A block at `view` on top of `parent` (certified by a fresh quorum QC
    /// unless it is genesis).
    fn child(&self, parent: &Link, view: u64, batch: Vec<Request>) -> Link {
        let justify = if parent.hash == GENESIS {
            QuorumCert::genesis()
        } else {
            self.qc(parent.view, parent.hash, &self.quorum())
        };
        let block = Block {
            parent: parent.hash,
            view: View(view),
            height: Height(parent.height + 1),
            batch,
            justify,
        };
        Link {
            hash: block.hash(),
            view,
            height: parent.height + 1,
            block,
        }
    }
}

/// A block with its hash.
#[derive(Clone)]
struct Link {
    hash: Digest,
    view: u64,
    height: u64,
    block: Block,
}

/// A NEW-VIEW for `view` carrying the genesis QC and no vote.
fn new_view(view: u64) -> Message {
    Message::NewView(NewView {
        view: View(view),
        high_qc: QuorumCert::genesis(),
        last_vote: None,
    })
}

/// NEW-VIEWs broadcast by `r` (pacemaker rule 1: to everyone).
fn new_views_broadcast(out: &Actions) -> Vec<u64> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::NewView(nv)) | Action::Rebroadcast(Message::NewView(nv)) => {
                Some(nv.view.0)
            }
            _ => None,
        })
        .collect()
}

/// `r`'s view timer expires in `view`, and NEW-VIEW(view)s from `peers`
/// complete the n−f that end it (pacemaker rule 2).
fn fail_view(r: &mut HotStuff, view: u64, peers: &[u16]) {
    let (_, out) = step(r, Input::Timeout(Timer::View));
    assert_eq!(new_views_broadcast(&out), vec![view]);
    for &p in peers {
        must(deliver(r, p, new_view(view)));
    }
    assert_eq!(r.view(), View(view + 1));
}

fn genesis() -> Link {
    Link {
        hash: GENESIS,
        view: 0,
        height: 0,
        block: genesis_block(),
    }
}

fn step(r: &mut HotStuff, input: Input<Message, Timer>) -> (Result<(), HotStuffError>, Actions) {
    let mut out = Vec::new();
    let result = r.handle(Time(1), input, &mut out);
    (result, out)
}

fn deliver(r: &mut HotStuff, from: u16, msg: Message) -> (Result<(), HotStuffError>, Actions) {
    step(
        r,
        Input::Message {
            from: NodeId(from),
            msg,
        },
    )
}

/// Asserts the input was accepted; returns its actions.
fn must((result, out): (Result<(), HotStuffError>, Actions)) -> Actions {
    assert_eq!(result, Ok(()));
    out
}

fn reason(result: Result<(), HotStuffError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.reason(),
    }
}

fn votes_sent(out: &Actions) -> Vec<(NodeId, Vote)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                msg: Message::Vote(v),
            } => Some((*to, v.clone())),
            _ => None,
        })
        .collect()
}

fn proposals_sent(out: &Actions) -> Vec<Block> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Proposal(b)) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn commits(out: &Actions) -> Vec<bft_core::Decision> {
    out.iter()
        .filter_map(|a| match a {
            Action::Commit(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn block_requests(out: &Actions) -> Vec<(u16, Digest)> {
    block_requests_above(out)
        .into_iter()
        .map(|(to, block, _)| (to, block))
        .collect()
}

/// The BLOCK-REQUESTs in `out`: to whom, for which block, above which
/// height.
fn block_requests_above(out: &Actions) -> Vec<(u16, Digest, Height)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Resend {
                to,
                msg: Message::BlockRequest { block, above },
            } => Some((to.0, *block, *above)),
            _ => None,
        })
        .collect()
}

/// The timers `out` arms, in order.
fn timers(out: &Actions) -> Vec<(Timer, Duration)> {
    out.iter()
        .filter_map(|a| match a {
            Action::SetTimer { timer, after } => Some((*timer, *after)),
            _ => None,
        })
        .collect()
}
