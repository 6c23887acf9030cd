//! A client's request: its id, its payload, its client's signature, and its
//! digest computed once.

use crate::bytes_array::Digest;
use crate::crypto::Signature;
use crate::ids::RequestId;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::OnceLock;

/// The domain of a client's signature over [`Request::digest`].
pub const CLIENT_REQUEST_DOMAIN: &str = "bftbench/client-request/v1";

/// A client transaction, signed by its client.
///
/// The signature is client `id.client`'s Ed25519 signature (or the model
/// crypto's tag) over [`Request::digest`] under [`CLIENT_REQUEST_DOMAIN`].
/// A replica checks it before it takes the request into its pool or votes
/// for a proposal carrying it ([`crate::client_auth`]), so a leader cannot
/// commit a payload the client never signed under the client's request id.
/// `None` in runs whose clients do not sign (`[load] signed = false`),
/// where replicas check nothing; a checking replica refuses it.
///
/// The digest is computed on first use and kept: a replica hashes each
/// copy it holds once, however many rules look at it (the client
/// signature check, the batch digest, the decision). The fields are
/// private so that it cannot go stale; another payload is another request
/// ([`Request::with_payload`]).
#[derive(Clone)]
pub struct Request {
    id: RequestId,
    payload: Bytes,
    signature: Option<Signature>,
    digest: OnceLock<Digest>,
}

impl Request {
    /// A request without a signature: what clients of an unsigned run
    /// send, and what tests that drive a protocol core directly use (a
    /// checking [`crate::Node`] refuses it).
    pub fn unsigned(id: RequestId, payload: Bytes) -> Request {
        Request {
            id,
            payload,
            signature: None,
            digest: OnceLock::new(),
        }
    }

    pub fn id(&self) -> RequestId {
        self.id
    }

    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// About what the request takes on the wire: its payload plus 128
    /// bytes for id, signature and framing. For the byte budgets of
    /// catch-up answers, never for counting traffic (the codec counts).
    pub fn approx_wire_bytes(&self) -> usize {
        self.payload.len().saturating_add(128)
    }

    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    /// Sets the client's signature (the digest does not cover it).
    pub fn set_signature(&mut self, signature: Option<Signature>) {
        self.signature = signature;
    }

    /// The same id and signature over another payload: another request,
    /// with its own digest.
    pub fn with_payload(&self, payload: Bytes) -> Request {
        Request {
            id: self.id,
            payload,
            signature: self.signature,
            digest: OnceLock::new(),
        }
    }

    /// Digest of the request, binding id and payload (not the signature).
    pub fn digest(&self) -> Digest {
        *self.digest.get_or_init(|| {
            Digest::of(
                "bftbench/request/v1",
                &[
                    &self.id.client.to_le_bytes(),
                    &self.id.number.to_le_bytes(),
                    &self.payload,
                ],
            )
        })
    }
}

impl PartialEq for Request {
    fn eq(&self, other: &Request) -> bool {
        self.id == other.id && self.payload == other.payload && self.signature == other.signature
    }
}

impl Eq for Request {}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("payload", &self.payload)
            .field("signature", &self.signature)
            .finish()
    }
}

/// The wire form: id, payload, signature, in that order (the digest is
/// never sent; a receiver computes its own).
#[derive(Serialize)]
struct WireRef<'a> {
    id: RequestId,
    payload: &'a Bytes,
    signature: &'a Option<Signature>,
}

#[derive(Deserialize)]
struct Wire {
    id: RequestId,
    payload: Bytes,
    signature: Option<Signature>,
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireRef {
            id: self.id,
            payload: &self.payload,
            signature: &self.signature,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        let w = Wire::deserialize(d)?;
        let mut r = Request::unsigned(w.id, w.payload);
        r.signature = w.signature;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest binds id and payload, not the signature, is the same
    /// computed fresh or kept, and follows a new payload.
    #[test]
    fn the_kept_digest_is_the_digest_of_the_fields() {
        let id = RequestId {
            client: 2,
            number: 9,
        };
        let mut r = Request::unsigned(id, Bytes::from_static(b"pay"));
        let first = r.digest();
        r.set_signature(Some(Signature([1; 64])));
        assert_eq!(r.digest(), first, "the signature is not covered");
        let fresh = Request::unsigned(id, Bytes::from_static(b"pay"));
        assert_eq!(fresh.digest(), first);
        let other = r.with_payload(Bytes::from_static(b"other"));
        assert_ne!(other.digest(), first);
        assert_eq!(other.signature(), r.signature());
        let round_trip: Request =
            postcard::from_bytes(&postcard::to_allocvec(&other).unwrap()).unwrap();
        assert_eq!(round_trip, other);
        assert_eq!(round_trip.digest(), other.digest());
    }
}
