//! The store's figures: one write to a real data directory, without and
//! with fsync (see the parent module's documentation).

use super::{Figure, measure};
use crate::BenchError;
use std::time::Duration;

/// `store_write` and `store_fsync` (see the module documentation).
pub(super) fn storage_figures(rounds: usize) -> Result<Vec<Figure>, BenchError> {
    let write = store_writes("store_write", bft_core::Fsync::Never, rounds)?;
    let synced = store_writes("store_fsync", bft_core::Fsync::Always, rounds)?;
    let less = |a: Duration| a.saturating_sub(write.median);
    let fsync = Figure {
        name: "store_fsync",
        median: less(synced.median),
        q1: less(synced.q1),
        q3: less(synced.q3),
        fastest: less(synced.fastest),
        slowest: less(synced.slowest),
    };
    Ok(vec![write, fsync])
}

/// Times `rounds` writes to a fresh data directory under `fsync`: each a
/// 1 KiB state and the next slot's decision of 16 requests.
fn store_writes(
    name: &'static str,
    fsync: bft_core::Fsync,
    rounds: usize,
) -> Result<Figure, BenchError> {
    use bft_core::{Decision, Digest, RequestId, Store};
    let dir = std::env::temp_dir().join(format!(
        "bftbench-calibrate-{}-{}",
        std::process::id(),
        fsync.as_str()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let owner = bft_store::Owner {
        protocol: "calibrate".into(),
        node: 0,
    };
    let (mut store, _) = bft_store::DataDir::open(&dir, &owner, fsync)?;
    let state = bft_core::StateWrite::whole(vec![7u8; 1024]);
    let mut tip = (0u64, bft_core::GENESIS);
    let mut failed = None;
    let figure = measure(name, rounds, 1, || {
        let slot = tip.0 + 1;
        let block = Digest::of("calibrate/block", &[&slot.to_le_bytes()]);
        let d = Decision {
            slot,
            view: 0,
            block,
            parent: tip.1,
            requests: (0..16)
                .map(|number| RequestId {
                    client: 0,
                    number: slot * 16 + number,
                })
                .collect(),
            request_digests: (0..16u64)
                .map(|number| Digest::of("calibrate/request", &[&number.to_le_bytes()]))
                .collect(),
            // The size of a PBFT or QBFT certificate at n = 4: three
            // (replica, 64-byte signature) pairs and a digest.
            certificate: bytes::Bytes::from_static(&[0u8; 232]),
        };
        if let Err(e) = store.write(Some(&state), &[bft_core::LedgerEntry::Commit(d)]) {
            failed.get_or_insert_with(|| e.to_string());
        }
        tip = (slot, block);
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    match failed {
        None => Ok(figure),
        Some(reason) => Err(BenchError::Unsupported(format!(
            "{}: the store's writes failed: {reason}",
            dir.display()
        ))),
    }
}
