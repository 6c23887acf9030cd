//! The virtual CPU time each crypto operation costs, and the meter that adds it
//! up between two `take_cpu()` calls.
//!
//! Both `RealCrypto` and `ModelCrypto` charge these *model* figures, never the
//! wall time they actually spent: a simulator run with real crypto therefore
//! advances virtual time exactly like the same run with model crypto, and stays
//! deterministic whatever the machine's load.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Virtual CPU time per crypto operation, and per event a replica handles:
/// what the simulator charges (a scenario's `[cost]` table, or a cost
/// profile `bftbench calibrate` wrote). In scenario files each field is a
/// humantime string (`sign = "18us"`); missing fields take the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// One Ed25519 signature.
    #[serde(with = "humantime_serde")]
    pub sign: Duration,
    /// One Ed25519 verification.
    #[serde(with = "humantime_serde")]
    pub verify: Duration,
    /// Per signature in an Ed25519 batch verification.
    #[serde(with = "humantime_serde")]
    pub batch_verify_per_sig: Duration,
    /// One BLS partial signature (hash to G1 + scalar multiplication).
    #[serde(with = "humantime_serde")]
    pub bls_sign: Duration,
    /// One BLS verification of a single signer's signature (two pairings).
    #[serde(with = "humantime_serde")]
    pub bls_verify: Duration,
    /// Decoding and subgroup-checking one BLS signature, no pairing.
    #[serde(with = "humantime_serde")]
    pub bls_check: Duration,
    /// Per partial signature added into an aggregate.
    #[serde(with = "humantime_serde")]
    pub bls_aggregate_per_sig: Duration,
    /// Verifying one aggregate: one flat figure whatever the signer count (the
    /// pairing dominates; the public-key additions are folded in, see
    /// `Default`).
    #[serde(with = "humantime_serde")]
    pub bls_verify_aggregate: Duration,
    /// Per event a replica handles, besides crypto: decoding, the protocol's
    /// state update, encoding what it sends. Charged by the simulator per
    /// event (the crypto meter never charges it).
    #[serde(with = "humantime_serde")]
    pub handling: Duration,
    /// Moving one frame from one QUIC endpoint to another on the same
    /// machine, both ends together (QUIC, TLS, UDP and the kernel's
    /// loopback), less its per-byte part. Charged only when the simulated
    /// replicas share a machine's cores (`[machine] cores`): half to the
    /// sender's event, half to the receiver's.
    #[serde(with = "humantime_serde")]
    pub transport_per_message: Duration,
    /// The per-byte part of moving a frame, per KiB of frame (charged with
    /// `transport_per_message`).
    #[serde(with = "humantime_serde")]
    pub transport_per_kib: Duration,
    /// A load-generating client's own work per request, besides moving its
    /// frames and signing it (`sign` more in a signed run): issuing,
    /// encoding, and counting replies until f+1 distinct replicas
    /// answered. Charged only on a shared machine.
    #[serde(with = "humantime_serde")]
    pub client_per_request: Duration,
    /// One write to the replica's store: its durable state and the step's
    /// decisions, committed to its data directory (`bft-store`, a redb
    /// transaction) with no sync: CPU, charged once per step that changed
    /// the durable state.
    #[serde(with = "humantime_serde")]
    pub store_write: Duration,
    /// Forcing that write to the disk (the commit's `fdatasync`), charged besides
    /// `store_write` when `[storage] fsync = "always"`: the replica waits
    /// for the disk, busy but not using a core.
    #[serde(with = "humantime_serde")]
    pub store_fsync: Duration,
}

impl CostModel {
    /// Free crypto: for tests that count messages only.
    pub const fn zero() -> CostModel {
        CostModel {
            sign: Duration::ZERO,
            verify: Duration::ZERO,
            batch_verify_per_sig: Duration::ZERO,
            bls_sign: Duration::ZERO,
            bls_verify: Duration::ZERO,
            bls_check: Duration::ZERO,
            bls_aggregate_per_sig: Duration::ZERO,
            bls_verify_aggregate: Duration::ZERO,
            handling: Duration::ZERO,
            transport_per_message: Duration::ZERO,
            transport_per_kib: Duration::ZERO,
            client_per_request: Duration::ZERO,
            store_write: Duration::ZERO,
            store_fsync: Duration::ZERO,
        }
    }

    /// CPU of moving one frame of `bytes` bytes, both ends together.
    pub fn frame(&self, bytes: u64) -> Duration {
        let per_kib = u64::try_from(self.transport_per_kib.as_nanos()).unwrap_or(u64::MAX);
        let nanos = per_kib.saturating_mul(bytes) / 1024;
        self.transport_per_message + Duration::from_nanos(nanos)
    }
}

/// `store_write` and `store_fsync` of the default profile: a write to a
/// real data directory (1 KiB state, one decision of 16 requests), and what
/// fsync adds to it, from the same two calibrate runs as
/// [`CostModel::default`] (38.7 and 39.0 µs; 143.6 and 144.1 µs more with
/// fsync). The previous figures (50 and 360 µs, 2026-12-03) had a spread
/// of 27-54 % within a run on this VM's disk.
const STORE_WRITE_NS: u64 = 38_838;
const STORE_FSYNC_NS: u64 = 143_886;

impl Default for CostModel {
    /// `bftbench calibrate` on this workbench's 2-core machine, idle, twice
    /// a minute apart on 2026-12-05 at b250dd1 (load average 0.28 -> 0.44,
    /// then 0.44 -> 0.45): each figure the mean of the two runs' medians of
    /// 15 rounds; the runs agreed within 5 % on every crypto figure, 2-3 %
    /// on transport per KiB and 11 % on transport per message (0.12 and
    /// 0.14 µs). The same figures are `bench-configs/costs/default.toml` (a
    /// test checks they agree). Sized figures are taken at n = 64:
    /// `batch_verify_per_sig` = one batch of 64 / 64,
    /// `bls_aggregate_per_sig` = aggregating 64 / 64, `bls_verify_aggregate`
    /// = a cold verification of a 63-of-64 aggregate. `handling` is the wall
    /// time per simulator event with free crypto (median of the three
    /// protocols), an upper bound on decode + state update + encode.
    ///
    /// The previous defaults (2026-12-02, measured idle too) were 1.5-1.8x
    /// these crypto figures: this VM's speed moves between days, so a
    /// profile holds for the machine and the day it was taken (`bftbench
    /// calibrate` prints `default/here` to check). Their transport cost per
    /// message (2.3 µs) was taken before small frames shared a chunk on the
    /// wire.
    fn default() -> CostModel {
        let ns = Duration::from_nanos;
        CostModel {
            sign: ns(11_771),
            verify: ns(28_644),
            batch_verify_per_sig: ns(13_096),
            bls_sign: ns(101_742),
            bls_verify: ns(530_419),
            bls_check: ns(37_847),
            bls_aggregate_per_sig: ns(9_616),
            bls_verify_aggregate: ns(607_132),
            handling: ns(1_308),
            transport_per_message: ns(130),
            transport_per_kib: ns(1_956),
            client_per_request: ns(86),
            store_write: ns(STORE_WRITE_NS),
            store_fsync: ns(STORE_FSYNC_NS),
        }
    }
}

/// Nanoseconds of virtual CPU charged since the last `take`. Atomic because
/// `Crypto` is `Sync` and takes `&self`.
#[derive(Debug, Default)]
pub(crate) struct CpuMeter {
    nanos: AtomicU64,
}

impl CpuMeter {
    /// Adds `count` times `cost` (saturating: a meter never wraps).
    pub(crate) fn charge(&self, cost: Duration, count: usize) {
        let one = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
        let total = one.saturating_mul(u64::try_from(count).unwrap_or(u64::MAX));
        // fetch_update never fails with a closure returning Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(total))
            });
    }

    /// Returns what was charged and resets the meter to zero.
    pub(crate) fn take(&self) -> Duration {
        Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_adds_and_resets() {
        let m = CpuMeter::default();
        m.charge(Duration::from_nanos(7), 3);
        m.charge(Duration::from_micros(1), 1);
        assert_eq!(m.take(), Duration::from_nanos(1021));
        assert_eq!(m.take(), Duration::ZERO);
    }

    #[test]
    fn meter_saturates_instead_of_wrapping() {
        let m = CpuMeter::default();
        m.charge(Duration::MAX, 2);
        m.charge(Duration::from_nanos(5), 1);
        assert_eq!(m.take(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn zero_is_all_zero() {
        let z = CostModel::zero();
        assert_eq!(z.sign + z.verify + z.bls_verify_aggregate, Duration::ZERO);
        assert_ne!(CostModel::default(), z);
    }
}
