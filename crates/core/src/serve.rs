//! How often a replica serves catch-up data to one peer: a state transfer
//! (PBFT's STATE), a fetched chain (HotStuff's BLOCK-RESPONSE), the decided
//! blocks relayed to a lagging peer (QBFT). Each answer is bounded in size
//! by its protocol; [`ServeBudget`] bounds how many a peer gets per unit of
//! time, so a Byzantine peer asking again and again cannot make a replica
//! send unbounded data. A request over budget is refused and counted
//! (`serve-limited` in every protocol); an honest peer asks again after its
//! retry timer, by when the budget has refilled.

use crate::ids::{NodeId, Time};
use std::time::Duration;

/// A token bucket per committee member, in the replica's (virtual or real)
/// time: each peer may take `capacity` answers at once, and gets `refill`
/// more every `period`, never holding more than `capacity`. Memory is one
/// entry per member, whatever the peers send.
#[derive(Clone, Debug)]
pub struct ServeBudget {
    capacity: u32,
    refill: u32,
    period: Duration,
    peers: Vec<Bucket>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u32,
    /// When the bucket was last refilled (whole periods only; the rest of
    /// a period carries over).
    at: Time,
}

impl ServeBudget {
    /// A budget for a committee of `n`, every bucket full at time zero.
    /// A zero `period` refills at once (no limit).
    pub fn new(n: usize, capacity: u32, refill: u32, period: Duration) -> ServeBudget {
        ServeBudget {
            capacity,
            refill,
            period,
            peers: vec![
                Bucket {
                    tokens: capacity,
                    at: Time::ZERO,
                };
                n
            ],
        }
    }

    /// Takes one answer from `peer`'s bucket at `now`: true if it had one,
    /// false (nothing taken) if it is empty or `peer` is no member.
    pub fn try_take(&mut self, peer: NodeId, now: Time) -> bool {
        let (capacity, refill, period) = (self.capacity, self.refill, self.period);
        let Some(bucket) = self.peers.get_mut(peer.index()) else {
            return false;
        };
        bucket.refill(now, capacity, refill, period);
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Answers `peer` could take at `now` (for tests and status).
    pub fn available(&self, peer: NodeId, now: Time) -> u32 {
        self.peers.get(peer.index()).map_or(0, |b| {
            let mut b = *b;
            b.refill(now, self.capacity, self.refill, self.period);
            b.tokens
        })
    }
}

impl Bucket {
    fn refill(&mut self, now: Time, capacity: u32, refill: u32, period: Duration) {
        if period.is_zero() {
            self.tokens = capacity;
            self.at = now;
            return;
        }
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let periods = now.0.saturating_sub(self.at.0) / period_ns;
        if periods == 0 {
            return;
        }
        let added = u64::from(refill).saturating_mul(periods);
        let tokens = u64::from(self.tokens).saturating_add(added);
        self.tokens = u32::try_from(tokens.min(u64::from(capacity))).unwrap_or(capacity);
        self.at = Time(self.at.0.saturating_add(periods.saturating_mul(period_ns)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn a_peer_gets_its_capacity_at_once_then_the_refill_per_period() {
        let mut b = ServeBudget::new(4, 2, 1, Duration::from_millis(100));
        let p = NodeId(3);
        assert!(b.try_take(p, at_ms(0)));
        assert!(b.try_take(p, at_ms(0)));
        assert!(!b.try_take(p, at_ms(50)), "empty until a period passed");
        assert!(b.try_take(p, at_ms(100)));
        assert!(!b.try_take(p, at_ms(150)));
        // Long idle: back to capacity, never above.
        assert_eq!(b.available(p, at_ms(10_000)), 2);
        // Other peers are not charged for p.
        assert_eq!(b.available(NodeId(1), at_ms(150)), 2);
    }

    #[test]
    fn partial_periods_carry_over_and_strangers_get_nothing() {
        let mut b = ServeBudget::new(4, 1, 1, Duration::from_millis(100));
        let p = NodeId(0);
        assert!(b.try_take(p, at_ms(0)));
        assert!(!b.try_take(p, at_ms(99)));
        // At 150 ms one period has passed since 0: one token, refilled as of
        // 100 ms, so the next is due at 200 ms, not 250 ms.
        assert!(b.try_take(p, at_ms(150)));
        assert!(!b.try_take(p, at_ms(199)));
        assert!(b.try_take(p, at_ms(200)));
        assert!(!b.try_take(NodeId(4), at_ms(0)), "not a member");
        assert_eq!(b.available(NodeId(9), at_ms(0)), 0);
    }

    #[test]
    fn a_zero_period_never_limits() {
        let mut b = ServeBudget::new(4, 1, 1, Duration::ZERO);
        for _ in 0..10 {
            assert!(b.try_take(NodeId(2), at_ms(5)));
        }
    }
}
