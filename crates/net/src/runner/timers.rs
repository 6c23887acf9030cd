//! Pending timers: the simulator's semantics (a `SetTimer` for a key
//! replaces the pending one, `CancelTimer` removes it, a timer fires at most
//! once), on wall-clock deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Pending timers: by key (for replace/cancel) and by deadline (to fire).
pub(super) struct Timers<T: Ord + Copy> {
    by_key: BTreeMap<T, (Instant, u64)>,
    queue: BTreeSet<(Instant, u64, T)>,
    next_generation: u64,
}

impl<T: Ord + Copy> Timers<T> {
    pub(super) fn new() -> Self {
        Timers {
            by_key: BTreeMap::new(),
            queue: BTreeSet::new(),
            next_generation: 0,
        }
    }

    /// Arms `timer` at `at`, replacing a pending one with the same key.
    pub(super) fn set(&mut self, timer: T, at: Instant) {
        self.next_generation += 1;
        let generation = self.next_generation;
        if let Some((old_at, old_gen)) = self.by_key.insert(timer, (at, generation)) {
            self.queue.remove(&(old_at, old_gen, timer));
        }
        self.queue.insert((at, generation, timer));
    }

    pub(super) fn cancel(&mut self, timer: T) {
        if let Some((at, generation)) = self.by_key.remove(&timer) {
            self.queue.remove(&(at, generation, timer));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _, _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (at, _, _) = self.queue.first()?;
        if *at > now {
            return None;
        }
        let (_, _, timer) = self.queue.pop_first()?;
        self.by_key.remove(&timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_replaces_and_cancel_removes() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        t.set(1u8, t0 + Duration::from_millis(10));
        t.set(1u8, t0 + Duration::from_millis(30));
        t.set(2u8, t0 + Duration::from_millis(20));
        t.set(3u8, t0 + Duration::from_millis(5));
        t.cancel(3u8);
        assert_eq!(
            t.pop_due(t0 + Duration::from_millis(15)),
            None,
            "1 was moved to 30ms"
        );
        assert_eq!(t.pop_due(t0 + Duration::from_millis(25)), Some(2));
        assert_eq!(t.pop_due(t0 + Duration::from_millis(40)), Some(1));
        assert_eq!(
            t.pop_due(t0 + Duration::from_millis(40)),
            None,
            "fires once"
        );
        assert_eq!(t.next_deadline(), None);
    }
}
