//! Client keys: the signer a load generator signs requests with, and the
//! public side a replica verifies them against (see `bft_core::client_auth`).
//!
//! Where client keys come from:
//! - the simulator and in-process runs derive client `c`'s key from the
//!   run's seed ([`ClientSigner::seeded`], [`ClientKeys::Seeded`]), for
//!   clients `0..MAX_SEEDED_CLIENTS`;
//! - a cluster of separate processes lists one Ed25519 public key per
//!   client in its cluster file (`[[clients]]`, client `c` is entry `c`)
//!   and each client holds its secret in a key file
//!   ([`ClientSigner::from_secret`], [`ClientKeys::Listed`]);
//! - a replica's HTTP ingress signs the requests it takes in with the
//!   node's own Ed25519 key, under a client id of its own
//!   (`bft_core::INGRESS_CLIENT_BASE`), so a cluster file's listed keys
//!   also hold each member's key for its ingress
//!   ([`crate::SecretKeys::ingress_signer`], [`ClientKeys::with_ingress`]).
//!
//! Signing costs the client, not a replica, and the simulator does not
//! model client CPU: signing is never charged. Verifying is, at the
//! replica ([`crate::CostModel::verify`]).

use crate::model::{message_digest, sign_tag};
use bft_core::{
    CLIENT_REQUEST_DOMAIN, CoreError, CryptoKind, Digest, Ed25519PublicKey, Request, RequestId,
    Signature,
};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// Clients with a seed-derived key: ids `0..MAX_SEEDED_CLIENTS`. Larger ids
/// are unknown (a bound on what a replica derives and caches).
pub const MAX_SEEDED_CLIENTS: u32 = 1 << 16;

const CLIENT_ED25519_CONTEXT: &str =
    "bftbench 2026-12 client ed25519 secret from (seed, client) v1";
const CLIENT_MODEL_CONTEXT: &str =
    "bftbench 2026-12 model crypto: client secret from (seed, client) v1";

fn derive_client(context: &str, seed: u64, client: u32) -> [u8; 32] {
    let mut input = [0u8; 12];
    input[..8].copy_from_slice(&seed.to_le_bytes());
    input[8..].copy_from_slice(&client.to_le_bytes());
    blake3::derive_key(context, &input)
}

/// What signs one client's requests.
#[derive(Clone)]
pub enum ClientSigner {
    Real(SigningKey),
    /// The model crypto's keyed tag (see `ModelCrypto`).
    Model([u8; 32]),
}

impl ClientSigner {
    /// Client `client`'s key in the run seeded with `seed`.
    pub fn seeded(kind: CryptoKind, seed: u64, client: u32) -> ClientSigner {
        match kind {
            CryptoKind::Real => ClientSigner::Real(SigningKey::from_bytes(&derive_client(
                CLIENT_ED25519_CONTEXT,
                seed,
                client,
            ))),
            CryptoKind::Model => {
                ClientSigner::Model(derive_client(CLIENT_MODEL_CONTEXT, seed, client))
            }
        }
    }

    /// A real key from its 32-byte secret (a client key file).
    pub fn from_secret(secret: &[u8; 32]) -> ClientSigner {
        ClientSigner::Real(SigningKey::from_bytes(secret))
    }

    /// The signature of `req` as it stands (id and payload).
    pub fn signature(&self, req: &Request) -> Signature {
        let digest = req.digest();
        match self {
            ClientSigner::Real(key) => {
                let signed = Digest::of(CLIENT_REQUEST_DOMAIN, &[&digest.0]);
                Signature(key.sign(signed.as_bytes()).to_bytes())
            }
            ClientSigner::Model(secret) => {
                sign_tag(secret, &message_digest(CLIENT_REQUEST_DOMAIN, &digest.0))
            }
        }
    }

    /// Signs `req` in place.
    pub fn sign(&self, req: &mut Request) {
        let signature = self.signature(req);
        req.set_signature(Some(signature));
    }

    /// The public key of a real signer (None for the model).
    pub fn public(&self) -> Option<Ed25519PublicKey> {
        match self {
            ClientSigner::Real(key) => Some(Ed25519PublicKey(key.verifying_key().to_bytes())),
            ClientSigner::Model(_) => None,
        }
    }
}

impl fmt::Debug for ClientSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSigner::Real(_) => f.write_str("ClientSigner::Real(..)"),
            ClientSigner::Model(_) => f.write_str("ClientSigner::Model(..)"),
        }
    }
}

/// The client public keys a replica verifies requests against.
pub enum ClientKeys {
    /// Keys derived from the run's seed (simulator, in-process runs),
    /// computed on first use and kept (at most [`MAX_SEEDED_CLIENTS`]).
    Seeded {
        seed: u64,
        derived: Mutex<BTreeMap<u32, VerifyingKey>>,
    },
    /// Client `c`'s key is `clients[c]` (a cluster file's `[[clients]]`);
    /// an ingress client of node `i` (`RequestId::ingress_node`) signs with
    /// `ingress[i]`, the node's own Ed25519 key.
    Listed {
        clients: Vec<VerifyingKey>,
        ingress: Vec<VerifyingKey>,
    },
}

impl ClientKeys {
    pub fn seeded(seed: u64) -> ClientKeys {
        ClientKeys::Seeded {
            seed,
            derived: Mutex::new(BTreeMap::new()),
        }
    }

    /// Listed keys (no ingress); a key that does not decode to a point is
    /// refused, naming its position.
    pub fn listed(keys: &[Ed25519PublicKey]) -> Result<ClientKeys, crate::CryptoError> {
        Ok(ClientKeys::Listed {
            clients: decode_keys(keys, crate::CryptoError::BadClientKey)?,
            ingress: Vec::new(),
        })
    }

    /// The same keys, and node `i`'s ingress signing with `nodes[i]` (the
    /// members' Ed25519 keys, in id order). Seeded keys have no ingress.
    pub fn with_ingress(
        self,
        nodes: &[Ed25519PublicKey],
    ) -> Result<ClientKeys, crate::CryptoError> {
        match self {
            ClientKeys::Listed { clients, .. } => Ok(ClientKeys::Listed {
                clients,
                ingress: decode_keys(nodes, crate::CryptoError::BadNodeKey)?,
            }),
            seeded @ ClientKeys::Seeded { .. } => Ok(seeded),
        }
    }

    /// Client `client`'s verifying key.
    pub(crate) fn key(&self, client: u32) -> Result<VerifyingKey, CoreError> {
        if let Some(node) = RequestId::ingress_node(client) {
            let ClientKeys::Listed { ingress, .. } = self else {
                return Err(CoreError::UnknownClient(client));
            };
            return ingress
                .get(node.index())
                .copied()
                .ok_or(CoreError::UnknownClient(client));
        }
        match self {
            ClientKeys::Listed { clients, .. } => clients
                .get(client as usize)
                .copied()
                .ok_or(CoreError::UnknownClient(client)),
            ClientKeys::Seeded { seed, derived } => {
                if client >= MAX_SEEDED_CLIENTS {
                    return Err(CoreError::UnknownClient(client));
                }
                let derive = || {
                    SigningKey::from_bytes(&derive_client(CLIENT_ED25519_CONTEXT, *seed, client))
                        .verifying_key()
                };
                let Ok(mut cache) = derived.lock() else {
                    return Ok(derive());
                };
                Ok(*cache.entry(client).or_insert_with(derive))
            }
        }
    }

    /// Verifies client `client`'s Ed25519 signature over `(domain, msg)`.
    #[cfg(test)]
    fn verify(
        &self,
        client: u32,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError> {
        verify_with(&self.key(client)?, client, domain, msg, sig)
    }
}

/// Decodes public keys, refusing one that is not a point (or is weak) with
/// `err` of its position.
fn decode_keys(
    keys: &[Ed25519PublicKey],
    err: fn(usize) -> crate::CryptoError,
) -> Result<Vec<VerifyingKey>, crate::CryptoError> {
    keys.iter()
        .enumerate()
        .map(|(c, k)| {
            VerifyingKey::from_bytes(k.as_bytes())
                .ok()
                .filter(|key| !key.is_weak())
                .ok_or(err(c))
        })
        .collect()
}

/// Verifies `client`'s Ed25519 signature over `(domain, msg)` with `key`.
pub(crate) fn verify_with(
    key: &VerifyingKey,
    client: u32,
    domain: &'static str,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), CoreError> {
    let digest = Digest::of(domain, &[msg]);
    key.verify_strict(
        digest.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig.0),
    )
    .map_err(|_| CoreError::BadClientSignature(client))
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKeys::Seeded { seed, .. } => write!(f, "ClientKeys::Seeded({seed})"),
            ClientKeys::Listed { clients, ingress } => write!(
                f,
                "ClientKeys::Listed({} clients, {} ingresses)",
                clients.len(),
                ingress.len()
            ),
        }
    }
}

/// The model crypto's check of a client tag: the expected tag under the
/// client's seed-derived model secret (the caller has refused clients at or
/// above [`MAX_SEEDED_CLIENTS`]).
pub(crate) fn model_client_verify(
    seed: u64,
    client: u32,
    domain: &'static str,
    msg: &[u8],
    sig: &Signature,
) -> Result<(), CoreError> {
    let secret = derive_client(CLIENT_MODEL_CONTEXT, seed, client);
    if sign_tag(&secret, &message_digest(domain, msg)) == *sig {
        Ok(())
    } else {
        Err(CoreError::BadClientSignature(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CostModel, cluster};
    use bft_core::RequestId;
    use bytes::Bytes;

    fn request(client: u32) -> Request {
        Request::unsigned(RequestId { client, number: 7 }, Bytes::from_static(b"pay"))
    }

    /// For both kinds: a seeded client's signature verifies at every
    /// replica; another client's key, another payload under the same id,
    /// and an unknown client are refused.
    #[test]
    fn seeded_client_signatures_verify_and_forgeries_do_not() {
        for kind in [CryptoKind::Real, CryptoKind::Model] {
            let (_, cryptos) = cluster(4, 9, kind, CostModel::zero()).unwrap();
            let mut req = request(3);
            ClientSigner::seeded(kind, 9, 3).sign(&mut req);
            let check = |r: &Request| {
                cryptos[1].verify_client(
                    r.id().client,
                    CLIENT_REQUEST_DOMAIN,
                    &r.digest().0,
                    &r.signature().copied().unwrap_or_default(),
                )
            };
            check(&req).unwrap();
            let swapped = req.with_payload(Bytes::from_static(b"not what the client signed"));
            assert!(
                matches!(check(&swapped), Err(CoreError::BadClientSignature(3))),
                "{kind:?}"
            );
            let mut other = request(3);
            ClientSigner::seeded(kind, 9, 4).sign(&mut other);
            assert!(
                matches!(check(&other), Err(CoreError::BadClientSignature(3))),
                "{kind:?}"
            );
            let mut unknown = request(MAX_SEEDED_CLIENTS);
            ClientSigner::seeded(kind, 9, MAX_SEEDED_CLIENTS).sign(&mut unknown);
            assert!(
                matches!(check(&unknown), Err(CoreError::UnknownClient(_))),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn listed_keys_verify_their_own_client_only() {
        let a = ClientSigner::from_secret(&[1; 32]);
        let b = ClientSigner::from_secret(&[2; 32]);
        let keys = ClientKeys::listed(&[a.public().unwrap(), b.public().unwrap()]).unwrap();
        let mut req = request(1);
        b.sign(&mut req);
        let d = req.digest();
        let sig = *req.signature().unwrap();
        keys.verify(1, CLIENT_REQUEST_DOMAIN, &d.0, &sig).unwrap();
        assert!(keys.verify(0, CLIENT_REQUEST_DOMAIN, &d.0, &sig).is_err());
        assert!(matches!(
            keys.verify(2, CLIENT_REQUEST_DOMAIN, &d.0, &sig),
            Err(CoreError::UnknownClient(2))
        ));
    }

    /// An ingress client verifies against its node's key only, and only
    /// once the listed keys carry the members' keys.
    #[test]
    fn an_ingress_client_verifies_against_its_nodes_key() {
        let node = |seed| crate::SecretKeys::from_seed(seed, bft_core::NodeId(0));
        let (n0, n1) = (node(1), node(2));
        let public = |k: &crate::SecretKeys| k.member(bft_core::NodeId(0)).ed25519;
        let client = RequestId::ingress_client(bft_core::NodeId(1), 5).unwrap();
        let mut req = request(client);
        n1.ingress_signer().sign(&mut req);
        let (d, sig) = (req.digest(), *req.signature().unwrap());
        let listed = ClientKeys::listed(&[]).unwrap();
        assert!(matches!(
            listed.verify(client, CLIENT_REQUEST_DOMAIN, &d.0, &sig),
            Err(CoreError::UnknownClient(c)) if c == client
        ));
        let keys = listed.with_ingress(&[public(&n0), public(&n1)]).unwrap();
        keys.verify(client, CLIENT_REQUEST_DOMAIN, &d.0, &sig)
            .unwrap();
        let other = RequestId::ingress_client(bft_core::NodeId(0), 5).unwrap();
        assert!(
            keys.verify(other, CLIENT_REQUEST_DOMAIN, &d.0, &sig)
                .is_err()
        );
        let beyond = RequestId::ingress_client(bft_core::NodeId(2), 0).unwrap();
        assert!(matches!(
            keys.verify(beyond, CLIENT_REQUEST_DOMAIN, &d.0, &sig),
            Err(CoreError::UnknownClient(_))
        ));
    }
}
