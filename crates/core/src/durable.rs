//! A durable state as a store holds it: the state, encoded whole at every
//! write, and the batches it names by digest
//! ([`Protocol::durable_batches`]), each encoded and written once.
//!
//! The state is rewritten at every change, so a protocol keeps it small by
//! naming its batches (up to thousands of requests each) rather than holding
//! them; [`write`] hands a store only the batches it does not hold yet and
//! the ones nothing names any more, so each batch crosses the disk once.

use crate::CoreError;
use crate::bytes_array::Digest;
use crate::codec;
use crate::protocol::{NodeContext, Protocol, Request, batch_digest};
use crate::store::{DurableBatches, StateWrite, StoredState};
use std::collections::{BTreeMap, BTreeSet};

/// The next write of `protocol`'s durable state, given the batches the store
/// holds (`stored`, updated to what it holds after this write).
pub(crate) fn write<P: Protocol>(
    protocol: &P,
    stored: &mut BTreeSet<Digest>,
) -> Result<StateWrite, CoreError> {
    let durable = protocol.durable();
    let state = codec::encode(&durable, usize::MAX)?;
    let named: BTreeSet<Digest> = P::durable_batches(&durable).into_iter().collect();
    let mut batches = BTreeMap::new();
    for digest in named.difference(stored) {
        batches.insert(*digest, Some(encode_batch(protocol, digest)?));
    }
    for digest in stored.difference(&named) {
        batches.insert(*digest, None);
    }
    *stored = named;
    Ok(StateWrite { state, batches })
}

/// `protocol`'s durable state with every batch it names: what a model store
/// holds after the last write.
pub(crate) fn image<P: Protocol>(protocol: &P) -> Result<StoredState, CoreError> {
    let durable = protocol.durable();
    let state = codec::encode(&durable, usize::MAX)?;
    let batches = P::durable_batches(&durable)
        .into_iter()
        .map(|digest| Ok((digest, encode_batch(protocol, &digest)?)))
        .collect::<Result<_, CoreError>>()?;
    Ok(StoredState { state, batches })
}

/// The batches `durable` names, taken from the live `protocol` (for tests
/// that restart a core without a store), each checked against its digest.
pub fn batches_of<P: Protocol>(
    protocol: &P,
    durable: &P::Durable,
) -> Result<DurableBatches, CoreError> {
    P::durable_batches(durable)
        .into_iter()
        .map(|digest| Ok((digest, held_batch(protocol, &digest)?.to_vec())))
        .collect()
}

/// The first of `batches` whose [`batch_digest`] is `digest`: how a
/// protocol that holds whole blocks finds the batch its durable state names
/// ([`Protocol::durable_batch`]).
pub fn batch_named<'a>(
    batches: impl IntoIterator<Item = &'a [Request]>,
    digest: &Digest,
) -> Option<&'a [Request]> {
    batches.into_iter().find(|b| batch_digest(b) == *digest)
}

/// A protocol restarted from what a store held, and the batches that store
/// holds. Every batch the state names must be there and hash to its name.
pub(crate) fn restore<P: Protocol>(
    ctx: NodeContext,
    cfg: &P::Config,
    stored: &StoredState,
) -> Result<(P, BTreeSet<Digest>), CoreError> {
    let durable: P::Durable = codec::decode(&stored.state, usize::MAX)?;
    let mut batches = DurableBatches::new();
    for digest in P::durable_batches(&durable) {
        let bytes = stored
            .batches
            .get(&digest)
            .ok_or(CoreError::MissingBatch { digest })?;
        let batch: Vec<Request> = codec::decode(bytes, usize::MAX)?;
        if batch_digest(&batch) != digest {
            return Err(CoreError::BatchDigest { digest });
        }
        batches.insert(digest, batch);
    }
    // Batches held but not named are dropped at the next write.
    let held = stored.batches.keys().copied().collect();
    Ok((P::recover(ctx, cfg, durable, &batches), held))
}

fn encode_batch<P: Protocol>(protocol: &P, digest: &Digest) -> Result<bytes::Bytes, CoreError> {
    codec::encode(&held_batch(protocol, digest)?, usize::MAX)
}

/// The batch the protocol holds under `digest`; one that does not hash to
/// that digest is an error here, not a store that fails at the restart.
fn held_batch<'a, P: Protocol>(
    protocol: &'a P,
    digest: &Digest,
) -> Result<&'a [Request], CoreError> {
    let batch = protocol
        .durable_batch(digest)
        .ok_or(CoreError::UnheldBatch { digest: *digest })?;
    if batch_digest(batch) != *digest {
        return Err(CoreError::BatchDigest { digest: *digest });
    }
    Ok(batch)
}
