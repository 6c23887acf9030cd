//! `bftbench ledger`: a replica's data directory read offline.
//!
//! `verify` re-checks one directory: every stored value against its
//! checksum and redb's page checksums, the hash chain from genesis (slots 1,
//! 2, 3, … each naming the previous block as parent, resuming after each
//! snapshot the replica installed), that the directory belongs to a replica
//! of the cluster, that no request is ordered twice, and optionally that
//! every request a client saw committed is in it (a ledger that skipped
//! slots by a snapshot does not hold the requests of those slots: the
//! ones not found are then reported as skipped, not as a problem).
//! With the cluster file it also re-checks every decision's commit
//! certificate with the cluster's public keys
//! ([`bft_core::Protocol::check_certificate`]: PBFT's q COMMITs or stable
//! checkpoint proof, QBFT's q commit seals, HotStuff's QC). A decision
//! without one (PBFT's state transfer between two checkpoints; QBFT and
//! HotStuff refuse it) must be followed in its hash chain by a certified
//! one, which then certifies it. A certificate proves that a quorum
//! committed the block (HotStuff: voted for it, see its `certificate`
//! module); the slot and parent are checked by the hash chain, and by the
//! certificate itself for PBFT, whose block hash verify recomputes. Snapshot
//! marks carry no certificate of their own.
//!
//! `diff` compares several directories: the common prefix they agree on,
//! how far each is behind the longest, and the first slot where two differ.

use crate::BenchError;
use crate::protocols::BenchProtocol;
use crate::scenario::ProtocolName;
use crate::with_protocol;
use bft_core::{Certified, Committee, Crypto, Decision, RequestId};
use bft_store::{Ledger, LedgerReport};
use std::collections::BTreeSet;
use std::path::Path;

/// Beyond this many, further bad certificates are counted, not described.
const DESCRIBED_CERTIFICATES: usize = 10;

/// What `verify` found; `problems` empty means it passed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verified {
    pub dir: String,
    pub protocol: String,
    pub node: u16,
    pub fsync: String,
    pub clean_shutdown: bool,
    pub slots: u64,
    /// Snapshots the replica installed (each skips the slots before it).
    pub snapshots: u64,
    pub requests: u64,
    /// Of the `--requests`, those not found in a ledger with snapshots:
    /// they may have been ordered in a skipped slot.
    pub skipped_requests: u64,
    /// Requests the `--requests` file named, all found if `problems` is
    /// empty.
    pub expected_requests: Option<u64>,
    /// With `--cluster`: the decisions whose own certificate checked, and
    /// those certified by a later certified decision of their chain.
    pub certificates: Option<CertificateCount>,
    pub problems: Vec<String>,
}

/// What the certificate check counted (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CertificateCount {
    pub quorum: u64,
    pub by_chain: u64,
}

/// Reads and checks `dir` (see the module doc). A directory that cannot be
/// read is an error; what is wrong with a readable one is in `problems`.
pub fn verify(
    dir: &Path,
    cluster: Option<&Path>,
    requests: Option<&Path>,
) -> Result<Verified, BenchError> {
    let ledger = Ledger::read(dir)?;
    let mut problems = Vec::new();
    let mut certificates = None;
    if let Some(file) = cluster {
        let committee = bft_net::ClusterFile::load(file)?.committee()?;
        let n = committee.n();
        if usize::from(ledger.meta.node) >= n {
            problems.push(format!(
                "the directory belongs to replica {}, but {} has replicas 0..{n}",
                ledger.meta.node,
                file.display()
            ));
        }
        let name: ProtocolName =
            ledger
                .meta
                .protocol
                .parse()
                .map_err(|reason| BenchError::Invalid {
                    file: ledger.dir.join(bft_store::FILE_NAME),
                    key: "meta.protocol".into(),
                    value: ledger.meta.protocol.clone(),
                    reason,
                })?;
        let keys = bft_crypto::VerifiedKeys::new(&committee).map_err(|e| BenchError::Invalid {
            file: file.to_path_buf(),
            key: "nodes".into(),
            value: String::new(),
            reason: e.to_string(),
        })?;
        let crypto = bft_crypto::RealCrypto::verifier(keys, bft_crypto::CostModel::default());
        let (count, found) = with_protocol!(name, P => check_certificates::<P>(
            &ledger.decisions,
            &committee,
            &crypto,
        ));
        certificates = Some(count);
        problems.extend(found);
    }
    let mut seen = BTreeSet::new();
    for d in &ledger.decisions {
        for id in &d.requests {
            if !seen.insert(*id) {
                problems.push(format!(
                    "request {}:{} is ordered twice (again at slot {})",
                    id.client, id.number, d.slot
                ));
            }
        }
    }
    let mut expected = None;
    let mut skipped = 0;
    if let Some(file) = requests {
        let ids = read_request_ids(file)?;
        expected = Some(ids.len() as u64);
        let missing: Vec<&RequestId> = ids.iter().filter(|id| !seen.contains(id)).collect();
        if !ledger.snapshots.is_empty() {
            skipped = missing.len() as u64;
        } else if let Some(first) = missing.first() {
            problems.push(format!(
                "{} of the {} requests in {} are not in the ledger (first: {}:{})",
                missing.len(),
                ids.len(),
                file.display(),
                first.client,
                first.number
            ));
        }
    }
    Ok(Verified {
        dir: dir.display().to_string(),
        protocol: ledger.meta.protocol.clone(),
        node: ledger.meta.node,
        fsync: ledger.meta.fsync.as_str().into(),
        clean_shutdown: ledger.meta.clean,
        slots: ledger.tip(),
        snapshots: ledger.snapshots.len() as u64,
        requests: seen.len() as u64,
        skipped_requests: skipped,
        expected_requests: expected,
        certificates,
        problems,
    })
}

/// Checks each decision's certificate in slot order (see the module doc):
/// what it counted, and the problems found.
fn check_certificates<P: BenchProtocol>(
    decisions: &[Decision],
    committee: &Committee,
    crypto: &dyn Crypto,
) -> (CertificateCount, Vec<String>) {
    let mut count = CertificateCount::default();
    let mut problems = Vec::new();
    let mut bad = 0usize;
    // The uncertified slots since the last certified one, as (first, last).
    let mut pending: Option<(u64, u64)> = None;
    let mut previous: Option<u64> = None;
    let unproven = |(first, last): (u64, u64)| {
        format!(
            "slots {first}..={last} carry no certificate and no certified block of their chain follows them"
        )
    };
    for d in decisions {
        if previous.is_some_and(|p| p + 1 != d.slot)
            && let Some(gap) = pending.take()
        {
            problems.push(unproven(gap));
        }
        previous = Some(d.slot);
        match P::check_certificate(d, committee, crypto) {
            Ok(Certified::Quorum) => {
                count.quorum += 1;
                pending = None;
            }
            Ok(Certified::ByChain) => {
                count.by_chain += 1;
                pending = Some((pending.map_or(d.slot, |(first, _)| first), d.slot));
            }
            Err(e) => {
                bad += 1;
                if bad <= DESCRIBED_CERTIFICATES {
                    problems.push(format!(
                        "slot {}: its certificate does not prove its block: {e}",
                        d.slot
                    ));
                }
            }
        }
    }
    if bad > DESCRIBED_CERTIFICATES {
        problems.push(format!(
            "{} more slots with a certificate that does not prove their block",
            bad - DESCRIBED_CERTIFICATES
        ));
    }
    if let Some(gap) = pending {
        problems.push(unproven(gap));
    }
    (count, problems)
}

/// Compares the ledgers of `dirs`, which must all be of one protocol.
pub fn diff(dirs: &[&Path]) -> Result<(Vec<Ledger>, LedgerReport), BenchError> {
    let ledgers = dirs
        .iter()
        .map(|d| Ledger::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = ledgers.first()
        && let Some(other) = ledgers
            .iter()
            .find(|l| l.meta.protocol != first.meta.protocol)
    {
        return Err(BenchError::Unsupported(format!(
            "{} holds a {} ledger and {} a {} one: diff compares one protocol's replicas",
            first.dir.display(),
            first.meta.protocol,
            other.dir.display(),
            other.meta.protocol
        )));
    }
    let blocks: Vec<_> = ledgers.iter().map(Ledger::blocks).collect();
    let report = LedgerReport::compare(&blocks);
    Ok((ledgers, report))
}

/// Writes request ids, one `client:number` per line.
pub fn write_request_ids(path: &Path, ids: &[RequestId]) -> Result<(), BenchError> {
    let mut text = String::with_capacity(ids.len() * 12);
    for id in ids {
        text.push_str(&format!("{}:{}\n", id.client, id.number));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| BenchError::Write {
            file: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| BenchError::Write {
        file: path.to_path_buf(),
        source,
    })
}

/// Reads what [`write_request_ids`] wrote; a bad line is an error naming
/// the file and the line.
pub fn read_request_ids(path: &Path) -> Result<Vec<RequestId>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line
            .split_once(':')
            .and_then(|(c, n)| Some((c.trim().parse().ok()?, n.trim().parse().ok()?)));
        let Some((client, number)) = parsed else {
            return Err(BenchError::Invalid {
                file: path.to_path_buf(),
                key: format!("line {}", i + 1),
                value: line.to_string(),
                reason: "expected client:number".into(),
            });
        };
        ids.push(RequestId { client, number });
    }
    Ok(ids)
}
