//! Client signatures on requests: the check every [`crate::Node`] runs, the
//! same for every protocol.
//!
//! **Rule.** A replica takes a request into its pool, or lets its protocol
//! see a proposal carrying it ([`crate::Protocol::client_requests`]), only
//! if the request carries its client's signature over
//! [`Request::digest`] (which binds the id and the payload) under
//! [`crate::CLIENT_REQUEST_DOMAIN`]. A request that fails is refused, and a
//! proposal carrying one is dropped whole, counted under
//! [`BAD_CLIENT_SIGNATURE`] or [`UNKNOWN_CLIENT`]. So a Byzantine leader
//! cannot commit a payload of its own under a real client's request id:
//! honest replicas do not vote for it.
//!
//! **Cost.** Each digest is verified once per replica: a verified digest is
//! remembered, so the copy a client sends and the copy in the leader's
//! proposal cost one verification, not two. A remembered digest is accepted
//! whatever signature bytes a later copy carries, since the content is what
//! the client signed. The memory is bounded: at most `capacity` digests,
//! the oldest forgotten first (a forgotten one is verified again if it
//! comes back). Lookups only, never iterated, so hash order cannot leak.

use crate::CoreError;
use crate::bytes_array::Digest;
use crate::crypto::Crypto;
use crate::protocol::{CLIENT_REQUEST_DOMAIN, Request};
use std::collections::{HashSet, VecDeque};

/// The reason a request with a wrong or missing signature is rejected
/// under.
pub const BAD_CLIENT_SIGNATURE: &str = "bad-client-signature";
/// The reason a request from a client the cluster has no key for is
/// rejected under.
pub const UNKNOWN_CLIENT: &str = "unknown-client";

/// Digests remembered by default: more than a replica's pool holds at the
/// loads this workbench drives, about 4 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 16;

/// One replica's verified-digest memory.
#[derive(Debug)]
pub struct ClientAuth {
    verified: HashSet<Digest>,
    order: VecDeque<Digest>,
    capacity: usize,
    /// Accept every request unchecked: unsigned runs
    /// (`[load] signed = false`) and the mutant `skip-client-signatures`.
    skip: bool,
}

impl Default for ClientAuth {
    fn default() -> Self {
        ClientAuth::new(DEFAULT_CAPACITY)
    }
}

impl ClientAuth {
    pub fn new(capacity: usize) -> ClientAuth {
        ClientAuth {
            verified: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            skip: false,
        }
    }

    /// Every request accepted without its signature being checked: for
    /// runs whose clients do not sign (`[load] signed = false`), and the
    /// planted bug the oracle's validity control must catch.
    pub fn unchecked() -> ClientAuth {
        ClientAuth {
            skip: true,
            ..ClientAuth::default()
        }
    }

    /// Checks one request; on failure returns the reason label.
    pub fn check(&mut self, crypto: &dyn Crypto, req: &Request) -> Result<(), &'static str> {
        if self.skip {
            return Ok(());
        }
        let digest = req.digest();
        if self.verified.contains(&digest) {
            return Ok(());
        }
        let Some(signature) = req.signature() else {
            return Err(BAD_CLIENT_SIGNATURE);
        };
        crypto
            .verify_client(req.id().client, CLIENT_REQUEST_DOMAIN, &digest.0, signature)
            .map_err(|e| match e {
                CoreError::UnknownClient(_) => UNKNOWN_CLIENT,
                _ => BAD_CLIENT_SIGNATURE,
            })?;
        self.remember(digest);
        Ok(())
    }

    /// Checks every request of a batch, stopping at the first failure.
    pub fn check_all(&mut self, crypto: &dyn Crypto, reqs: &[Request]) -> Result<(), &'static str> {
        reqs.iter().try_for_each(|r| self.check(crypto, r))
    }

    fn remember(&mut self, digest: Digest) {
        if self.verified.insert(digest) {
            self.order.push_back(digest);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.verified.remove(&old);
            }
        }
    }

    /// Digests remembered (for memory bounds).
    pub fn retained(&self) -> usize {
        self.order.len()
    }
}
