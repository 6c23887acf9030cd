//! A data directory keeps what was written, refuses what it should refuse,
//! and names the file and what is wrong when it is damaged.

use bft_core::LedgerEntry;
use bft_core::{Decision, Digest, GENESIS, RequestId, Store};
use bft_store::{
    ChainFault, DataDir, Fsync, Ledger, LedgerReport, Owner, SnapshotMark, StoreError, check_chain,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A durable state that names no batch.
fn st(state: &[u8]) -> bft_core::StateWrite {
    bft_core::StateWrite::whole(state.to_vec())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bft-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn owner() -> Owner {
    Owner {
        protocol: "pbft".into(),
        node: 2,
    }
}

/// Slots `from..=to` of a chain whose blocks are derived from their slot.
fn chain(from: u64, to: u64) -> Vec<Decision> {
    let block = |s: u64| {
        if s == 0 {
            GENESIS
        } else {
            Digest::of("test/block", &[&s.to_le_bytes()])
        }
    };
    (from..=to)
        .map(|slot| Decision {
            slot,
            view: 0,
            block: block(slot),
            parent: block(slot - 1),
            requests: vec![RequestId {
                client: 1,
                number: slot,
            }],
            request_digests: vec![Digest::of("test/request", &[&slot.to_le_bytes()])],
            certificate: bytes::Bytes::from(slot.to_le_bytes().to_vec()),
        })
        .collect()
}

/// Decisions as the ledger entries a store writes.
fn commits(decisions: Vec<Decision>) -> Vec<LedgerEntry> {
    decisions.into_iter().map(LedgerEntry::Commit).collect()
}

/// The block of `slot` in [`chain`].
fn block_at(slot: u64) -> Digest {
    chain(slot, slot)[0].block
}

fn blocks(decisions: &[Decision]) -> BTreeMap<u64, Digest> {
    decisions.iter().map(|d| (d.slot, d.block)).collect()
}

fn open(dir: &Path, fsync: Fsync) -> Result<(DataDir, bft_store::Opened), StoreError> {
    DataDir::open(dir, &owner(), fsync)
}

#[test]
fn what_was_written_is_read_back_after_reopening() {
    let dir = scratch("roundtrip");
    let (mut store, opened) = open(&dir, Fsync::Always).expect("new directory");
    assert!(opened.state.is_none());
    assert_eq!(opened.committed_tip, 0);
    store
        .write(Some(&st(b"state one")), &commits(chain(1, 3)))
        .expect("write");
    store
        .write(None, &commits(chain(4, 5)))
        .expect("ledger only");
    store
        .write(Some(&st(b"state two")), &[])
        .expect("state only");
    drop(store);
    let (store, opened) = open(&dir, Fsync::Always).expect("reopen");
    assert_eq!(
        opened.state.as_ref().map(|s| &s.state[..]),
        Some(&b"state two"[..])
    );
    assert_eq!(opened.committed_tip, 5);
    assert_eq!(store.committed_tip().expect("tip"), 5);
    drop(store);
    let ledger = Ledger::read(&dir).expect("read offline");
    assert_eq!(ledger.decisions, chain(1, 5));
    assert_eq!(
        (ledger.meta.protocol.as_str(), ledger.meta.node),
        ("pbft", 2)
    );
    assert_eq!(ledger.meta.fsync, Fsync::Always);
    assert!(!ledger.meta.clean, "dropped without close");
    check_chain(&ledger.decisions, &ledger.snapshots).expect("a chain");
}

#[test]
fn batches_are_written_once_read_back_with_the_state_and_removed_when_dropped() {
    let dir = scratch("batches");
    let (a, b) = (Digest([1; 32]), Digest([2; 32]));
    let write = |state: &'static [u8], batches: Vec<(Digest, Option<&'static [u8]>)>| {
        bft_core::StateWrite {
            state: bytes::Bytes::from_static(state),
            batches: batches
                .into_iter()
                .map(|(d, b)| (d, b.map(bytes::Bytes::from_static)))
                .collect(),
        }
    };
    let (mut store, _) = open(&dir, Fsync::Never).expect("new directory");
    store
        .write(Some(&write(b"one", vec![(a, Some(b"batch a"))])), &[])
        .expect("write");
    store
        .write(Some(&write(b"two", vec![(b, Some(b"batch b"))])), &[])
        .expect("write");
    drop(store);
    let (mut store, opened) = open(&dir, Fsync::Never).expect("reopen");
    let stored = opened.state.expect("a state");
    assert_eq!(&stored.state[..], b"two");
    let held: Vec<(Digest, &[u8])> = stored.batches.iter().map(|(d, b)| (*d, &b[..])).collect();
    assert_eq!(held, [(a, &b"batch a"[..]), (b, &b"batch b"[..])]);
    store
        .write(Some(&write(b"three", vec![(a, None)])), &[])
        .expect("write");
    drop(store);
    let (store, opened) = open(&dir, Fsync::Never).expect("reopen");
    let stored = opened.state.expect("a state");
    assert_eq!(stored.batches.keys().collect::<Vec<_>>(), [&b]);
    drop(store);
    assert_eq!(Ledger::read(&dir).expect("read").meta.batches, 1);
}

#[test]
fn a_batch_that_vanished_is_an_error_naming_the_table() {
    let dir = scratch("batch-vanished");
    let (mut store, _) = open(&dir, Fsync::Never).expect("new directory");
    let write = bft_core::StateWrite {
        state: bytes::Bytes::from_static(b"s"),
        batches: [(Digest([3; 32]), Some(bytes::Bytes::from_static(b"b")))].into(),
    };
    store.write(Some(&write), &[]).expect("write");
    drop(store);
    {
        let db = redb::Database::open(dir.join(bft_store::FILE_NAME)).expect("redb");
        let tx = db.begin_write().expect("tx");
        {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("batches");
            let mut table = tx.open_table(def).expect("table");
            table.remove([3u8; 32].as_slice()).expect("remove");
        }
        tx.commit().expect("commit");
    }
    let err = open(&dir, Fsync::Never).err().expect("refused");
    assert!(
        matches!(&err, StoreError::Vanished { table, .. } if table == "batches"),
        "{err}"
    );
    assert!(err.to_string().contains("replica.redb"), "{err}");
}

#[test]
fn a_decision_already_stored_is_accepted_again_and_a_different_one_is_refused() {
    let dir = scratch("conflict");
    let (mut store, _) = open(&dir, Fsync::Always).expect("new");
    store.write(None, &commits(chain(1, 4))).expect("write");
    store
        .write(None, &commits(chain(3, 6)))
        .expect("overlap that agrees");
    let mut other = chain(5, 5);
    other[0].view = 9;
    let e = store
        .write(None, &commits(other))
        .expect_err("a different slot 5");
    assert!(e.to_string().contains("slot 5 differs"), "{e}");
    let e = store.write(None, &commits(chain(8, 8))).expect_err("gap");
    assert!(e.to_string().contains("ends at slot 6; slot 8"), "{e}");
}

#[test]
fn a_directory_of_another_replica_or_protocol_is_refused() {
    let dir = scratch("owner");
    drop(open(&dir, Fsync::Always).expect("new"));
    let other = Owner {
        protocol: "pbft".into(),
        node: 3,
    };
    let e = DataDir::open(&dir, &other, Fsync::Always)
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .ends_with("meta.node is \"2\", expected \"3\""),
        "{e}"
    );
    let other = Owner {
        protocol: "hotstuff".into(),
        node: 2,
    };
    let e = DataDir::open(&dir, &other, Fsync::Always)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("meta.protocol is \"pbft\""), "{e}");
}

#[test]
fn a_second_process_cannot_open_a_directory_in_use() {
    let dir = scratch("in-use");
    let (_store, _) = open(&dir, Fsync::Always).expect("new");
    let e = open(&dir, Fsync::Always).err().expect("refused");
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    let e = Ledger::read(&dir).expect_err("refused");
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
}

#[test]
fn a_directory_left_without_a_clean_close_opens_with_what_was_written() {
    let dir = scratch("never");
    let (mut store, _) = open(&dir, Fsync::Never).expect("new");
    store
        .write(Some(&st(b"s")), &commits(chain(1, 2)))
        .expect("write");
    store.close().expect("clean close");
    drop(store);
    let (mut store, opened) = open(&dir, Fsync::Never).expect("reopens");
    assert_eq!(opened.state.as_ref().map(|s| &s.state[..]), Some(&b"s"[..]));
    store
        .write(Some(&st(b"t")), &commits(chain(3, 3)))
        .expect("write");
    drop(store); // as a killed process would: no close
    assert!(!Ledger::read(&dir).expect("reads").meta.clean);
    let (_, opened) = open(&dir, Fsync::Always).expect("reopens");
    assert_eq!(opened.state.as_ref().map(|s| &s.state[..]), Some(&b"t"[..]));
    assert_eq!(opened.committed_tip, 3);
}

#[test]
fn fsync_always_forces_every_write_to_the_disk_and_never_forces_none() {
    for (fsync, name) in [(Fsync::Always, "sync-always"), (Fsync::Never, "sync-never")] {
        let dir = scratch(name);
        let (mut store, _) = open(&dir, fsync).expect("new");
        let at_open = store.syncs();
        for slot in 1..=10 {
            store
                .write(Some(&st(b"s")), &commits(chain(slot, slot)))
                .expect("write");
        }
        let per_write = (store.syncs() - at_open) as f64 / 10.0;
        match fsync {
            Fsync::Always => assert!(per_write >= 1.0, "{per_write} syncs per write"),
            Fsync::Never => assert_eq!(store.syncs(), 0),
        }
    }
}

#[test]
fn a_missing_directory_is_an_error_for_the_offline_reader() {
    let dir = scratch("missing");
    let e = Ledger::read(&dir).expect_err("nothing there");
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("replica.redb"), "{e}");
}

/// Writes a directory whose state holds a recognisable 4 KiB pattern and
/// returns the file and the pattern's offset in it.
fn directory_with_marked_state(name: &str) -> (PathBuf, PathBuf, usize) {
    let dir = scratch(name);
    let marker: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut store, _) = open(&dir, Fsync::Always).expect("new");
    store
        .write(Some(&st(&marker)), &commits(chain(1, 20)))
        .expect("write");
    store.close().expect("close");
    let file = dir.join(bft_store::FILE_NAME);
    let bytes = std::fs::read(&file).expect("read file");
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the state is stored as written");
    (dir, file, at)
}

#[test]
fn a_bit_flipped_in_the_state_is_an_error_naming_the_file() {
    let (dir, file, at) = directory_with_marked_state("bit-flip");
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[at + 1000] ^= 0x10;
    std::fs::write(&file, &bytes).expect("write back");
    let e = open(&dir, Fsync::Always).err().expect("refused");
    let text = e.to_string();
    // redb's page checksums see it first; ours (per value) are the second
    // line, for what a page checksum cannot see.
    assert!(matches!(e, StoreError::Damaged { .. }), "{text}");
    assert!(
        text.starts_with(&format!("{}: damaged", file.display())),
        "{text}"
    );
    assert!(text.contains("corrupted"), "{text}");
    let e = Ledger::read(&dir).expect_err("refused offline too");
    assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
}

#[test]
fn a_truncated_file_is_an_error_naming_the_file() {
    let (dir, file, _) = directory_with_marked_state("truncated");
    let len = std::fs::metadata(&file).expect("stat").len();
    for keep in [0, 100, len / 2] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open");
        f.set_len(keep).expect("truncate");
        drop(f);
        let e = open(&dir, Fsync::Always).err().expect("refused");
        let text = e.to_string();
        assert!(text.contains("replica.redb"), "kept {keep}: {text}");
        assert!(
            matches!(e, StoreError::Damaged { .. } | StoreError::Corrupt { .. }),
            "kept {keep}: {text}"
        );
    }
}

#[test]
fn ledgers_that_agree_share_a_prefix_and_a_fork_is_located() {
    let a = chain(1, 10);
    let b = chain(1, 7);
    let mut c = chain(1, 9);
    c[5].block = Digest::of("test/other", &[]);
    let report = LedgerReport::compare(&[blocks(&a), blocks(&b)]);
    assert_eq!(report.tips, vec![10, 7]);
    assert_eq!(report.common, 7);
    assert_eq!(report.fork, None);
    let report = LedgerReport::compare(&[blocks(&a), blocks(&b), blocks(&c)]);
    assert_eq!(report.common, 5);
    let fork = report.fork.expect("slot 6 differs");
    assert_eq!(fork.slot, 6);
    assert_eq!(fork.groups, vec![vec![0, 1], vec![2]]);
    assert!(
        check_chain(&c, &BTreeMap::new()).is_err(),
        "c's slot 7 no longer extends slot 6"
    );
    assert!(check_chain(&chain(2, 4), &BTreeMap::new()).is_err());
}

/// A replica that installed a snapshot: its ledger holds slots 1–3, then
/// resumes after the snapshot's block at slot 10. It reads back, checks as
/// a chain, agrees with a full ledger; a snapshot of another block is a
/// fork, one that does not lead to the next decision a broken chain, one
/// below the tip is refused, and decisions lost before it are found.
#[test]
fn a_ledger_resumes_after_an_installed_snapshot() {
    let dir = scratch("snapshot");
    let (mut store, _) = open(&dir, Fsync::Always).expect("new");
    let mut entries = commits(chain(1, 3));
    entries.push(LedgerEntry::Snapshot {
        slot: 10,
        block: block_at(10),
    });
    entries.extend(commits(chain(11, 12)));
    store.write(Some(&st(b"s")), &entries).expect("write");
    let e = store
        .write(
            None,
            &[LedgerEntry::Snapshot {
                slot: 12,
                block: block_at(12),
            }],
        )
        .expect_err("not above the tip");
    assert!(e.to_string().contains("slot 12"), "{e}");
    drop(store);
    let (_, opened) = open(&dir, Fsync::Always).expect("reopens");
    assert_eq!(opened.committed_tip, 12);
    let ledger = Ledger::read(&dir).expect("reads");
    let mark = SnapshotMark {
        after: 3,
        block: block_at(10),
    };
    assert_eq!(ledger.snapshots, BTreeMap::from([(10, mark)]));
    assert_eq!(ledger.tip(), 12);
    assert_eq!(
        check_chain(&ledger.decisions, &ledger.snapshots),
        Ok((12, block_at(12)))
    );
    let full = blocks(&chain(1, 12));
    let report = LedgerReport::compare(&[full.clone(), ledger.blocks()]);
    assert_eq!((report.common, report.fork), (12, None));
    let mut wrong = ledger.blocks();
    wrong.insert(10, Digest::of("test/other", &[]));
    let report = LedgerReport::compare(&[full, wrong]);
    assert_eq!(report.fork.map(|f| f.slot), Some(10));
    let elsewhere = BTreeMap::from([(
        10,
        SnapshotMark {
            block: block_at(9),
            ..mark
        },
    )]);
    assert!(check_chain(&ledger.decisions, &elsewhere).is_err());
    // Decisions lost just before the snapshot are not hidden by it.
    let mut lost = ledger.decisions.clone();
    lost.remove(2);
    assert_eq!(
        check_chain(&lost, &ledger.snapshots),
        Err(ChainFault::SnapshotMisplaced {
            slot: 10,
            after: 3,
            tip: 2
        })
    );
}

/// A bit flipped anywhere in the file: the directory opens with exactly
/// what was written (the bit was in unused space) or is refused with an
/// error naming the file. Never a panic, never a different state or ledger.
#[test]
fn a_bit_flipped_anywhere_is_refused_or_harmless() {
    let (dir, file, _) = directory_with_marked_state("flip-sweep");
    let good = std::fs::read(&file).expect("read");
    let (mut refused, mut harmless) = (0, 0);
    for at in (0..good.len()).step_by(23) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&file, &bytes).expect("write");
        match open(&dir, Fsync::Always) {
            Ok((store, opened)) => {
                drop(store);
                let state = opened.state.expect("state");
                assert_eq!(state.state.len(), 4096, "flip at {at}");
                assert_eq!(opened.committed_tip, 20, "flip at {at}");
                let ledger = Ledger::read(&dir).expect("a harmless flip reads");
                assert_eq!(ledger.decisions, chain(1, 20), "flip at {at}");
                harmless += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("replica.redb"), "flip at {at}: {e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 100 && harmless > 100,
        "{refused} refused, {harmless} harmless"
    );
}
