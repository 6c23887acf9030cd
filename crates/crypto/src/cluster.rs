//! A whole committee with each node's `Crypto`, for the simulator and tests.

use crate::clients::ClientKeys;
use crate::keys::{SecretKeys, VerifiedKeys};
use crate::model::{ModelCrypto, ModelSecrets, model_member};
use crate::{CostModel, CryptoError, RealCrypto};
use bft_core::{Committee, CoreError, Crypto, CryptoKind, NodeId};
use std::sync::Arc;

/// A committee and each member's crypto, indexed by `NodeId`.
pub type Cluster = (Arc<Committee>, Vec<Arc<dyn Crypto>>);

/// The committee of `n` nodes for `seed` and each node's crypto, in id order.
///
/// - `Real`: keys from [`SecretKeys::from_seed`], every proof of possession
///   verified once by [`VerifiedKeys::new`], the verified keys shared by all
///   nodes through one `Arc`.
/// - `Model`: no curve math at all; members carry hash-derived placeholder
///   keys of the real sizes, and one set of model secrets is shared.
///
/// Either way, client keys derive from `seed` too ([`ClientKeys::seeded`],
/// [`crate::ClientSigner::seeded`]).
///
/// Errors: `n` outside `4..=65535` (via `Committee::new`).
pub fn cluster(
    n: usize,
    seed: u64,
    kind: CryptoKind,
    cost: CostModel,
) -> Result<Cluster, CryptoError> {
    let ids = node_ids(n)?;
    match kind {
        CryptoKind::Real => real_cluster(&ids, seed, cost),
        CryptoKind::Model => model_cluster(&ids, seed, cost),
    }
}

fn node_ids(n: usize) -> Result<Vec<NodeId>, CryptoError> {
    (0..n)
        .map(|i| {
            u16::try_from(i)
                .map(NodeId)
                .map_err(|_| CryptoError::Committee(CoreError::CommitteeTooLarge { n }))
        })
        .collect()
}

fn real_cluster(ids: &[NodeId], seed: u64, cost: CostModel) -> Result<Cluster, CryptoError> {
    let secrets: Vec<SecretKeys> = ids
        .iter()
        .map(|&id| SecretKeys::from_seed(seed, id))
        .collect();
    let members = ids
        .iter()
        .zip(&secrets)
        .map(|(&id, s)| s.member(id))
        .collect();
    let committee = Arc::new(Committee::new(members)?);
    let keys = VerifiedKeys::new(&committee)?;
    let clients = Arc::new(ClientKeys::seeded(seed));
    let cryptos = ids
        .iter()
        .zip(secrets)
        .map(|(&id, secret)| {
            RealCrypto::new(Arc::clone(&keys), id, secret, cost)
                .map(|c| Arc::new(c.with_clients(Arc::clone(&clients))) as Arc<dyn Crypto>)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((committee, cryptos))
}

fn model_cluster(ids: &[NodeId], seed: u64, cost: CostModel) -> Result<Cluster, CryptoError> {
    let members = ids.iter().map(|&id| model_member(seed, id)).collect();
    let committee = Arc::new(Committee::new(members)?);
    let secrets = Arc::new(ModelSecrets::new(ids.len(), seed));
    let cryptos = ids
        .iter()
        .map(|&id| {
            Arc::new(ModelCrypto::with_secrets(Arc::clone(&secrets), id, cost)) as Arc<dyn Crypto>
        })
        .collect();
    Ok((committee, cryptos))
}

/// `count` (message, aggregate) pairs over the first `n` of `nodes`, each
/// over another message and alternating between two signer sets of n − 1
/// (all but the last, all but the first): with more pairs than any cache
/// holds, verifying them in turn measures a cold aggregate verification, the
/// cost a leader pays for a fresh QC. Used by the crypto bench and
/// `bftbench calibrate`.
///
/// `n` is capped at `nodes.len()`. Errors: what `bls_aggregate` returns
/// (`EmptyAggregate` for n below 2).
pub fn fresh_aggregates(
    nodes: &[Arc<dyn Crypto>],
    n: usize,
    count: usize,
    domain: &'static str,
) -> Result<Vec<(Vec<u8>, bft_core::AggregateSignature)>, CoreError> {
    let n = n.min(nodes.len());
    let Some(first) = nodes.first() else {
        return Err(CoreError::EmptyAggregate);
    };
    let id = |i: usize| NodeId(u16::try_from(i).unwrap_or(u16::MAX));
    (0..count as u64)
        .map(|k| {
            let msg = k.to_le_bytes().to_vec();
            let signers = if k % 2 == 0 {
                0..n.saturating_sub(1)
            } else {
                1..n
            };
            let parts: Vec<_> = signers
                .filter_map(|i| Some((id(i), nodes.get(i)?.bls_sign(domain, &msg))))
                .collect();
            first.bls_aggregate(&parts).map(|agg| (msg, agg))
        })
        .collect()
}
