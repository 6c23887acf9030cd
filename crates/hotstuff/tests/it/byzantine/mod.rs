//! `<HotStuff as Adversarial>::tamper`: each attack's messages, delivered to
//! an honest replica driven through `Protocol::handle` (real BLS keys), are
//! rejected with the expected reason; the well-signed conflicting ones
//! (equivocation, double votes, view inflation) are then run in the
//! simulator, where no honest replica commits conflicting blocks and memory
//! stays bounded.

use bft_core::{
    Action, Adversarial, Attack, Digest, Forgery, ForkChoice, GENESIS, Height, Input, Mutation,
    NodeId, Protocol, Rejection, Request, TamperContext, Time, View,
};
use bft_hotstuff::{
    Block, HotStuff, HotStuffConfig, HotStuffError, Message, NewView, QuorumCert, Timer,
    VOTE_DOMAIN, vote_payload,
};
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimConfig, SimReport, Simulation};

use crate::common::{Signer, genesis, request};
use std::time::Duration;

mod conflicting;
mod forgeries;
mod mutations;
mod simulated;

type Actions = Vec<Action<Message, Timer>>;

impl Signer {
    /// A block at `view` on `parent` (hash, view, height), certified by a
    /// quorum QC unless the parent is genesis.
    fn child_block(&self, parent: &Block, view: u64, batch: Vec<Request>) -> Block {
        let parent_hash = hash(parent);
        let justify = if parent_hash == GENESIS {
            QuorumCert::genesis()
        } else {
            self.qc(parent.view.0, parent_hash, &self.quorum())
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
            let b = self.child_block(chain.last().unwrap(), v, vec![request(v)]);
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
fn tamper(fx: &Signer, attack: Attack, me: u16, to: u16, msg: &Message) -> Vec<Message> {
    <HotStuff as Adversarial>::tamper(attack, msg, &fx.ctx(me, to)).expect("attack applies")
}

/// Delivers each tampered message from `me`; the rejection reasons.
fn reasons(r: &mut HotStuff, me: u16, msgs: Vec<Message>) -> Vec<&'static str> {
    msgs.into_iter()
        .map(|m| reason(deliver(r, me, m).0))
        .collect()
}

/// Requests each simulated attack run must commit (`simulated`).
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
