//! `Node`'s part in durability: the durable state is announced ahead of
//! every output of the step that changed it, it reads back into a replica
//! that continues from it, and the audit catches a protocol that changed
//! its durable state without `Action::Persist`.

use bft_core::{
    Action, BatchConfig, CryptoKind, Input, NodeContext, NodeId, NodeInput, Output, Protocol,
    Rejection, Request, RequestId, Status, Time, WireMessage,
};
use bft_crypto::CostModel;
use serde::{Deserialize, Serialize};

/// Counts requests and broadcasts the count; persists it unless its config
/// says to forget.
struct Counter {
    count: u64,
    forget_to_persist: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Count(u64);

impl WireMessage for Count {
    fn kind(&self) -> &'static str {
        "count"
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Rejection for Never {
    fn reason(&self) -> &'static str {
        "never"
    }
}

impl Protocol for Counter {
    const NAME: &'static str = "counter";
    type Message = Count;
    type Timer = ();
    type Config = bool;
    type Error = Never;
    type Durable = u64;

    fn new(_: NodeContext, forget_to_persist: &bool) -> Counter {
        Counter {
            count: 0,
            forget_to_persist: *forget_to_persist,
        }
    }
    fn durable(&self) -> u64 {
        self.count
    }
    fn client_requests(_: &Count) -> &[Request] {
        &[]
    }
    /// It commits nothing.
    fn check_certificate(
        _: &bft_core::Decision,
        _: &bft_core::Committee,
        _: &dyn bft_core::Crypto,
    ) -> Result<bft_core::Certified, Never> {
        Ok(bft_core::Certified::ByChain)
    }
    fn recover(ctx: NodeContext, cfg: &bool, count: u64) -> Counter {
        Counter {
            count,
            ..Counter::new(ctx, cfg)
        }
    }
    fn handle(
        &mut self,
        _: Time,
        input: Input<Count, ()>,
        out: &mut Vec<Action<Count, ()>>,
    ) -> Result<(), Never> {
        if let Input::Request(_) = input {
            self.count += 1;
            out.push(Action::Broadcast(Count(self.count)));
            if !self.forget_to_persist {
                out.push(Action::Persist);
            }
        }
        Ok(())
    }
    fn status(&self) -> Status {
        Status::default()
    }
    fn is_view_timeout(_: &()) -> bool {
        false
    }
}

fn ctx() -> NodeContext {
    let (committee, cryptos) =
        bft_crypto::cluster(4, 1, CryptoKind::Model, CostModel::zero()).unwrap();
    NodeContext {
        id: NodeId(0),
        committee,
        crypto: cryptos[0].clone(),
        batch: BatchConfig::default(),
    }
}

/// Client 0's request `number`, signed with its key for `ctx()`'s seed.
fn request(number: u64) -> NodeInput<'static, ()> {
    let mut req = Request::unsigned(RequestId { client: 0, number }, bytes::Bytes::new());
    bft_crypto::ClientSigner::seeded(CryptoKind::Model, 1, 0).sign(&mut req);
    NodeInput::Request(req)
}

#[test]
fn the_durable_state_comes_ahead_of_the_steps_sends_and_reads_back() {
    let mut node = bft_core::Node::<Counter>::new(ctx(), &false).with_durability_audit();
    let mut out = Vec::new();
    node.step(Time(1), request(0), &mut out);
    assert!(matches!(out[0], Output::Persist), "{out:?}");
    assert_eq!(out.len(), 4, "the mark, then three sends: {out:?}");
    node.step(Time(2), request(1), &mut out);
    assert!(matches!(out[4], Output::Persist), "{out:?}");
    let state = node.durable_state().unwrap();
    let restarted = bft_core::Node::<Counter>::recover(ctx(), &false, &state).unwrap();
    assert_eq!(restarted.protocol().count, 2);
    assert!(bft_core::Node::<Counter>::recover(ctx(), &false, &[0xff; 12]).is_err());
}

#[test]
#[should_panic(expected = "changed its durable state without Action::Persist on request")]
fn the_audit_catches_a_change_that_was_not_persisted() {
    let mut node = bft_core::Node::<Counter>::new(ctx(), &true).with_durability_audit();
    node.step(Time(1), request(0), &mut Vec::new());
}
