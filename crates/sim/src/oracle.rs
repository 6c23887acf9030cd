//! The safety oracle: after every commit by an honest replica it checks
//!
//! - **agreement**: no two honest replicas commit different blocks in a slot
//!   (with contiguity below, this is prefix consistency of the ledgers);
//! - **total order**: each replica commits slots 1, 2, 3, … with no gap;
//! - **hash chain**: each decision's parent is the replica's previous block;
//! - **at most once**: a request appears in one slot only, once;
//! - **certificate**: each decision's commit certificate, if it carries one,
//!   proves that a quorum committed its block
//!   ([`bft_core::Protocol::check_certificate`], with the committee's public
//!   keys and no replica's state), so what a replica writes to its ledger
//!   can be re-checked offline;
//! - **validity**: only requests a client submitted are committed, each
//!   with the payload the client signed (its [`bft_core::Request::digest`],
//!   not its id alone: a leader that commits its own payload under a real
//!   request id violates it). An empty decision is a view-change null and is
//!   allowed.
//!
//! Violations are collected, not panicked on, so a run can report its seed and
//! everything that went wrong.
//!
//! Its sets are lookup-only and keyed by ids the simulator itself generates,
//! so they use the fast Fx hash (no iteration order can leak, and there is
//! no adversary choosing keys to collide).

use bft_core::{Committee, Crypto, Decision, Digest, GENESIS, NodeId, Protocol, RequestId};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct Oracle {
    /// First block committed at each slot.
    slots: Slots,
    /// Slot each request was committed in.
    request_slot: FxHashMap<RequestId, u64>,
    /// Every request a client submitted, with the digest it signed.
    submitted: FxHashMap<RequestId, Digest>,
    /// Per replica: last committed (slot, block).
    heads: Vec<(u64, Digest)>,
    /// What certificates are checked with, if they are.
    certificates: Option<Certificates>,
    violations: Vec<String>,
}

/// The committee's public keys and a crypto instance of the oracle's own
/// (its verifications charge no replica's clock), and the certificates
/// that passed: replicas often hold the same certificate for a slot (one
/// QC, one set of seals), and each is checked once.
#[derive(Debug)]
struct Certificates {
    committee: Arc<Committee>,
    crypto: Arc<dyn Crypto>,
    passed: FxHashSet<Digest>,
    /// Certificates that failed so far: a planted bug (a smaller quorum)
    /// fails every one of them, and only the first few are described so
    /// that the violations it causes besides stay visible.
    failed: usize,
}

/// Failed certificates described, at most.
const DESCRIBED_CERTIFICATES: usize = 10;

/// Beyond this many, further violations are counted but not described.
const MAX_DESCRIBED: usize = 100;

impl Oracle {
    pub fn new(n: usize) -> Oracle {
        Oracle {
            slots: Slots::default(),
            request_slot: FxHashMap::default(),
            submitted: FxHashMap::default(),
            heads: vec![(0, GENESIS); n],
            certificates: None,
            violations: Vec::new(),
        }
    }

    /// Also checks every decision's certificate against `committee`, with
    /// `crypto`, an instance no replica uses (None: certificates are not
    /// checked).
    pub fn checking_certificates(
        mut self,
        committee: Arc<Committee>,
        crypto: Option<Arc<dyn Crypto>>,
    ) -> Oracle {
        let Some(crypto) = crypto else {
            return self;
        };
        self.certificates = Some(Certificates {
            committee,
            crypto,
            passed: FxHashSet::default(),
            failed: 0,
        });
        self
    }

    /// Checks the certificate of decision `d` by honest replica `node`
    /// (nothing if certificates are not checked, see
    /// [`Oracle::checking_certificates`]).
    pub fn certificate<P: Protocol>(&mut self, node: NodeId, d: &Decision) {
        let Some(c) = self.certificates.as_mut() else {
            return;
        };
        let key = Digest::of(
            "bftbench/oracle/certificate/v1",
            &[
                &d.slot.to_le_bytes(),
                &d.view.to_le_bytes(),
                d.block.as_bytes(),
                d.parent.as_bytes(),
                &d.certificate,
            ],
        );
        if c.passed.contains(&key) {
            return;
        }
        match P::check_certificate(d, &c.committee, c.crypto.as_ref()) {
            Ok(_) => {
                c.passed.insert(key);
            }
            Err(e) => {
                c.failed += 1;
                if c.failed <= DESCRIBED_CERTIFICATES {
                    self.violation(format!(
                        "certificate: {node:?} committed slot {} with a certificate that does not prove it: {e}",
                        d.slot
                    ));
                } else if c.failed == DESCRIBED_CERTIFICATES + 1 {
                    self.violation(
                        "certificate: … further failed certificates not described".into(),
                    );
                }
            }
        }
    }

    /// A client submitted request `id` with digest `digest`.
    pub fn submitted(&mut self, id: RequestId, digest: Digest) {
        self.submitted.insert(id, digest);
    }

    /// Honest replica `node` installed a snapshot of the committed state
    /// at `slot` (block `block`): its ledger resumes there. Checked like a
    /// commit of that slot (agreement with what the others committed
    /// there, and forward only); the slots it skipped are not its to check.
    pub fn install_snapshot(&mut self, node: NodeId, slot: u64, block: Digest) {
        let Some(&(last_slot, _)) = self.heads.get(node.index()) else {
            self.violation(format!("snapshot at unknown replica {node:?}"));
            return;
        };
        if slot <= last_slot {
            self.violation(format!(
                "total order: {node:?} installed a snapshot at slot {slot} after committing slot {last_slot}"
            ));
        }
        match self.slots.get(slot) {
            Some(first) if first != block => self.violation(format!(
                "agreement: {node:?} installed a snapshot of {block:?} at slot {slot}, another honest replica committed {first:?}"
            )),
            Some(_) => {}
            None => self.slots.insert(slot, block),
        }
        if let Some(head) = self.heads.get_mut(node.index()) {
            *head = (slot, block);
        }
    }

    /// Checks one decision by honest replica `node`.
    pub fn commit(&mut self, node: NodeId, d: &Decision) {
        let Some(&(last_slot, last_block)) = self.heads.get(node.index()) else {
            self.violation(format!("commit by unknown replica {node:?}"));
            return;
        };
        if d.slot != last_slot + 1 {
            self.violation(format!(
                "total order: {node:?} committed slot {} after slot {last_slot}",
                d.slot
            ));
        }
        if d.parent != last_block {
            self.violation(format!(
                "hash chain: {node:?} slot {} has parent {:?}, its previous block is {:?}",
                d.slot, d.parent, last_block
            ));
        }
        match self.slots.get(d.slot) {
            Some(first) if first != d.block => self.violation(format!(
                "agreement: {node:?} committed {:?} at slot {}, another honest replica {:?}",
                d.block, d.slot, first
            )),
            Some(_) => {}
            None => self.slots.insert(d.slot, d.block),
        }
        self.check_requests(node, d);
        if let Some(head) = self.heads.get_mut(node.index()) {
            *head = (d.slot, d.block);
        }
    }

    fn check_requests(&mut self, node: NodeId, d: &Decision) {
        for r in repeated(&d.requests) {
            self.violation(format!(
                "at most once: {r:?} twice in slot {} at {node:?}",
                d.slot
            ));
        }
        if d.request_digests.len() != d.requests.len() {
            self.violation(format!(
                "validity: {node:?} slot {} names {} requests but {} digests",
                d.slot,
                d.requests.len(),
                d.request_digests.len()
            ));
        }
        for (&r, committed) in d.requests.iter().zip(&d.request_digests) {
            match self.submitted.get(&r) {
                None => self.violation(format!(
                    "validity: {node:?} committed {r:?}, never submitted"
                )),
                Some(signed) if signed != committed => self.violation(format!(
                    "validity: {node:?} committed {r:?} with payload digest {committed:?} at slot {}, its client signed {signed:?}",
                    d.slot
                )),
                Some(_) => {}
            }
            match self.request_slot.get(&r) {
                Some(&s) if s != d.slot => self.violation(format!(
                    "at most once: {node:?} committed {r:?} at slot {}, already committed at slot {s}",
                    d.slot
                )),
                Some(_) => {}
                None => {
                    self.request_slot.insert(r, d.slot);
                }
            }
        }
    }

    fn violation(&mut self, what: String) {
        if self.violations.len() < MAX_DESCRIBED {
            self.violations.push(what);
        } else if self.violations.len() == MAX_DESCRIBED {
            self.violations
                .push("… further violations not described".into());
        }
    }

    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Last committed slot of each replica.
    pub fn heads(&self) -> impl Iterator<Item = u64> + '_ {
        self.heads.iter().map(|(s, _)| *s)
    }
}

/// First block committed at each slot: slots 1, 2, 3, … in a vector (honest
/// replicas commit them contiguously, so this is the common case, and a
/// lookup per commit is an index, not a tree search), anything else (a gap,
/// slot 0) in an ordered map until the slots below it fill in.
#[derive(Debug, Default)]
struct Slots {
    /// `dense[i]` is slot i + 1.
    dense: Vec<Digest>,
    sparse: BTreeMap<u64, Digest>,
}

impl Slots {
    fn get(&self, slot: u64) -> Option<Digest> {
        match slot
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.dense.get(i))
        {
            Some(d) => Some(*d),
            None => self.sparse.get(&slot).copied(),
        }
    }

    /// Records `slot`'s first block (the caller checked it has none).
    fn insert(&mut self, slot: u64, block: Digest) {
        if slot != self.dense.len() as u64 + 1 {
            self.sparse.insert(slot, block);
            return;
        }
        self.dense.push(block);
        while let Some(next) = self.sparse.remove(&(self.dense.len() as u64 + 1)) {
            self.dense.push(next);
        }
    }
}

/// Each request id that occurs more than once in `requests` (once per
/// extra occurrence). Decisions are small, so a short list is checked
/// pairwise without allocating; a long one is sorted.
fn repeated(requests: &[RequestId]) -> Vec<RequestId> {
    if requests.len() <= 16 {
        return requests
            .iter()
            .enumerate()
            .filter(|(i, r)| requests[..*i].contains(r))
            .map(|(_, r)| *r)
            .collect();
    }
    let mut sorted = requests.to_vec();
    sorted.sort_unstable();
    sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest client 0 signed for request `number`.
    fn signed(number: u64) -> Digest {
        Digest::of("test/payload", &[&number.to_le_bytes()])
    }

    fn decision(slot: u64, parent: Digest, tag: &[u8], reqs: &[u64]) -> Decision {
        Decision {
            slot,
            view: 0,
            block: Digest::of("test", &[&slot.to_le_bytes(), tag]),
            parent,
            requests: reqs
                .iter()
                .map(|&number| RequestId { client: 0, number })
                .collect(),
            request_digests: reqs.iter().map(|&number| signed(number)).collect(),
            certificate: bytes::Bytes::new(),
        }
    }

    fn oracle_with_requests(n: usize, reqs: u64) -> Oracle {
        let mut o = Oracle::new(n);
        for number in 0..reqs {
            o.submitted(RequestId { client: 0, number }, signed(number));
        }
        o
    }

    /// A real request id committed with a payload its client never signed
    /// (a leader's swap) is a validity violation, though the id was
    /// submitted.
    #[test]
    fn a_swapped_payload_under_a_submitted_id_is_caught() {
        let mut o = oracle_with_requests(1, 2);
        let mut d = decision(1, GENESIS, b"a", &[0, 1]);
        d.request_digests[1] = Digest::of("test/payload", &[b"made up"]);
        o.commit(NodeId(0), &d);
        assert_eq!(o.violations().len(), 1, "{:?}", o.violations());
        assert!(
            o.violations()[0].starts_with("validity") && o.violations()[0].contains("c0#1"),
            "{:?}",
            o.violations()
        );
    }

    #[test]
    fn consistent_ledgers_pass() {
        let mut o = oracle_with_requests(2, 3);
        let d1 = decision(1, GENESIS, b"a", &[0, 1]);
        let d2 = decision(2, d1.block, b"b", &[2]);
        for node in [NodeId(0), NodeId(1)] {
            o.commit(node, &d1);
            o.commit(node, &d2);
        }
        assert!(o.violations().is_empty(), "{:?}", o.violations());
    }

    #[test]
    fn a_snapshot_resumes_the_ledger_where_the_others_committed() {
        let mut o = oracle_with_requests(2, 3);
        let d1 = decision(1, GENESIS, b"a", &[0]);
        let d2 = decision(2, d1.block, b"b", &[1]);
        let d3 = decision(3, d2.block, b"c", &[2]);
        for d in [&d1, &d2, &d3] {
            o.commit(NodeId(0), d);
        }
        o.install_snapshot(NodeId(1), 2, d2.block);
        o.commit(NodeId(1), &d3);
        assert!(o.violations().is_empty(), "{:?}", o.violations());
        // Going back, or installing another block than the one committed.
        o.install_snapshot(NodeId(1), 3, d3.block);
        assert!(
            o.violations()[0].starts_with("total order"),
            "{:?}",
            o.violations()
        );
        o.install_snapshot(NodeId(1), 4, d3.block);
        o.commit(NodeId(0), &decision(4, d3.block, b"d", &[]));
        assert!(
            o.violations()[1].starts_with("agreement"),
            "{:?}",
            o.violations()
        );
    }

    #[test]
    fn planted_fork_is_caught() {
        let mut o = oracle_with_requests(2, 2);
        o.commit(NodeId(0), &decision(1, GENESIS, b"a", &[0]));
        o.commit(NodeId(1), &decision(1, GENESIS, b"b", &[1]));
        assert_eq!(o.violations().len(), 1);
        assert!(o.violations()[0].starts_with("agreement"));
    }

    #[test]
    fn gap_broken_chain_double_commit_and_invented_request_are_caught() {
        let mut o = oracle_with_requests(1, 2);
        let d1 = decision(1, GENESIS, b"a", &[0]);
        o.commit(NodeId(0), &d1);
        o.commit(NodeId(0), &decision(3, d1.block, b"c", &[]));
        assert!(o.violations().iter().any(|v| v.starts_with("total order")));
        o.commit(NodeId(0), &decision(4, GENESIS, b"d", &[]));
        assert!(o.violations().iter().any(|v| v.starts_with("hash chain")));
        let head = o.heads[0].1;
        o.commit(NodeId(0), &decision(5, head, b"e", &[0]));
        assert!(
            o.violations()
                .iter()
                .any(|v| v.contains("already committed at slot 1"))
        );
        let head = o.heads[0].1;
        o.commit(NodeId(0), &decision(6, head, b"f", &[99]));
        assert!(o.violations().iter().any(|v| v.starts_with("validity")));
    }

    #[test]
    fn slots_out_of_order_and_slot_zero_keep_their_first_block() {
        let d = |i: u8| Digest([i; 32]);
        let mut slots = Slots::default();
        for (slot, block) in [(3, d(3)), (0, d(9)), (1, d(1)), (5, d(5)), (2, d(2))] {
            assert_eq!(slots.get(slot), None);
            slots.insert(slot, block);
        }
        assert_eq!(
            slots.dense,
            vec![d(1), d(2), d(3)],
            "3 moved in once 2 came"
        );
        for (slot, block) in [(0, d(9)), (1, d(1)), (2, d(2)), (3, d(3)), (5, d(5))] {
            assert_eq!(slots.get(slot), Some(block), "slot {slot}");
        }
        assert_eq!(slots.get(4), None);
        assert_eq!(slots.get(u64::MAX), None);
        // Agreement is still checked on a slot far ahead.
        let mut o = oracle_with_requests(2, 0);
        o.commit(NodeId(0), &decision(7, GENESIS, b"a", &[]));
        o.commit(NodeId(1), &decision(7, GENESIS, b"b", &[]));
        assert!(o.violations().iter().any(|v| v.starts_with("agreement")));
    }

    #[test]
    fn repeated_lists_each_extra_occurrence_short_and_long() {
        let id = |n| RequestId {
            client: 1,
            number: n,
        };
        assert_eq!(repeated(&[id(1), id(2), id(1), id(1)]), vec![id(1), id(1)]);
        assert!(repeated(&[id(1), id(2)]).is_empty());
        let mut long: Vec<RequestId> = (0..40).map(id).collect();
        assert!(repeated(&long).is_empty());
        long.push(id(7));
        long.push(id(39));
        assert_eq!(repeated(&long), vec![id(7), id(39)]);
    }
}
