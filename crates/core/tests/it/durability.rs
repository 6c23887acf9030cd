//! `Node`'s part in durability: the durable state is announced ahead of
//! every output of the step that changed it, it reads back into a replica
//! that continues from it with the batches it names (each handed to the
//! store once), and the audit catches a protocol that changed its durable
//! state without `Action::Persist`.

use bft_core::{
    Action, BatchConfig, CoreError, CryptoKind, Digest, DurableBatches, Input, NodeContext, NodeId,
    NodeInput, Output, Protocol, Rejection, Request, RequestId, Status, Time, WireMessage,
    batch_digest,
};
use bft_crypto::CostModel;
use serde::{Deserialize, Serialize};

/// Counts requests and broadcasts the count; persists it, and the last two
/// requests as one-request batches named by digest, unless its config says
/// to forget.
struct Counter {
    count: u64,
    last: Vec<Vec<Request>>,
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
    type Durable = (u64, Vec<Digest>);

    fn new(_: NodeContext, forget_to_persist: &bool) -> Counter {
        Counter {
            count: 0,
            last: Vec::new(),
            forget_to_persist: *forget_to_persist,
        }
    }
    fn durable(&self) -> (u64, Vec<Digest>) {
        (
            self.count,
            self.last.iter().map(|b| batch_digest(b)).collect(),
        )
    }
    fn durable_batches((_, named): &(u64, Vec<Digest>)) -> Vec<Digest> {
        named.clone()
    }
    fn durable_batch(&self, digest: &Digest) -> Option<&[Request]> {
        let batch = self.last.iter().find(|b| batch_digest(b) == *digest)?;
        Some(batch.as_slice())
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
    fn recover(
        ctx: NodeContext,
        cfg: &bool,
        (count, named): (u64, Vec<Digest>),
        batches: &DurableBatches,
    ) -> Counter {
        Counter {
            count,
            last: named
                .iter()
                .filter_map(|d| batches.get(d).cloned())
                .collect(),
            ..Counter::new(ctx, cfg)
        }
    }
    fn handle(
        &mut self,
        _: Time,
        input: Input<Count, ()>,
        out: &mut Vec<Action<Count, ()>>,
    ) -> Result<(), Never> {
        if let Input::Request(req) = input {
            self.count += 1;
            self.last.push(vec![req]);
            if self.last.len() > 2 {
                self.last.remove(0);
            }
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
    let stored = node.durable_image().unwrap();
    let restarted = bft_core::Node::<Counter>::recover(ctx(), &false, &stored).unwrap();
    assert_eq!(restarted.protocol().count, 2);
    assert_eq!(restarted.protocol().last, node.protocol().last);
    let garbage = bft_core::StoredState {
        state: bytes::Bytes::from_static(&[0xff; 12]),
        ..stored
    };
    assert!(bft_core::Node::<Counter>::recover(ctx(), &false, &garbage).is_err());
}

#[test]
fn each_batch_is_handed_to_the_store_once_and_dropped_when_nothing_names_it() {
    let mut node = bft_core::Node::<Counter>::new(ctx(), &false);
    let mut out = Vec::new();
    let digest = |number| match request(number) {
        NodeInput::Request(r) => batch_digest(&[r]),
        _ => unreachable!("request() makes requests"),
    };
    node.step(Time(1), request(0), &mut out);
    let first = node.durable_write().unwrap();
    assert_eq!(first.batches.keys().collect::<Vec<_>>(), [&digest(0)]);
    node.step(Time(2), request(1), &mut out);
    let second = node.durable_write().unwrap();
    assert_eq!(
        second.batches.keys().collect::<Vec<_>>(),
        [&digest(1)],
        "0 is stored already"
    );
    assert!(second.batches.values().all(Option::is_some));
    node.step(Time(3), request(2), &mut out);
    let third = node.durable_write().unwrap();
    assert_eq!(
        third.batches.get(&digest(2)).map(Option::is_some),
        Some(true)
    );
    assert_eq!(
        third.batches.get(&digest(0)),
        Some(&None),
        "nothing names 0 any more"
    );
    assert_eq!(third.batches.len(), 2);
    assert!(
        node.durable_write().unwrap().batches.is_empty(),
        "no change, nothing to write"
    );

    // The writes merged, as a writer thread merges those that queued up.
    let mut merged = first;
    merged.merge(second);
    merged.merge(third);
    let stored = bft_core::StoredState {
        state: merged.state,
        batches: merged
            .batches
            .into_iter()
            .filter_map(|(d, b)| Some((d, b?)))
            .collect(),
    };
    assert_eq!(stored.batches.len(), 2);
    assert_eq!(stored, node.durable_image().unwrap());
    let restarted = bft_core::Node::<Counter>::recover(ctx(), &false, &stored).unwrap();
    assert_eq!(restarted.protocol().last, node.protocol().last);
}

#[test]
fn a_batch_missing_from_the_store_or_not_matching_its_digest_is_an_error() {
    let mut node = bft_core::Node::<Counter>::new(ctx(), &false);
    node.step(Time(1), request(0), &mut Vec::new());
    let stored = node.durable_image().unwrap();
    let (&named, _) = stored.batches.iter().next().unwrap();

    let mut missing = stored.clone();
    missing.batches.clear();
    let err = bft_core::Node::<Counter>::recover(ctx(), &false, &missing).err();
    assert!(matches!(err, Some(CoreError::MissingBatch { digest }) if digest == named));

    let mut other = stored.clone();
    let NodeInput::Request(r) = request(7) else {
        unreachable!("request() makes requests")
    };
    other.batches.insert(
        named,
        bft_core::codec::encode(&vec![r], usize::MAX).unwrap(),
    );
    let err = bft_core::Node::<Counter>::recover(ctx(), &false, &other).err();
    assert!(matches!(err, Some(CoreError::BatchDigest { digest }) if digest == named));
}

#[test]
#[should_panic(expected = "changed its durable state without Action::Persist on request")]
fn the_audit_catches_a_change_that_was_not_persisted() {
    let mut node = bft_core::Node::<Counter>::new(ctx(), &true).with_durability_audit();
    node.step(Time(1), request(0), &mut Vec::new());
}
