//! Leader replacements: the one definition of a view change the simulator
//! reports, the same for every protocol.
//!
//! A leader replacement starts at the first honest replica's view timeout
//! ([`bft_core::Protocol::is_view_timeout`]: PBFT's request timer, QBFT's
//! round timer, HotStuff's view timer) and completes at the first decision
//! an honest replica commits in a later view or round than the one that
//! timed out. Its cost is everything every replica sent in between: the
//! view-change messages, the new leader's proposal with whatever
//! justification it carries (QBFT's round-change certificate inside the
//! round-r PROPOSAL), and the votes of the first decision. Retransmissions
//! and catch-up traffic in that window (`Action::Resend`/`Rebroadcast`) are
//! counted apart. A timeout while one is open belongs to it; one that never
//! completes (the run ends first) is not counted.

use bft_core::{KindCount, Time};
use serde::Serialize;
use std::time::Duration;

/// What the completed leader replacements of a run cost, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Replacements {
    /// Completed leader replacements.
    pub count: u64,
    /// Protocol messages and wire bytes sent during them, retransmissions
    /// and catch-up not included.
    pub messages: u64,
    pub bytes: u64,
    /// Retransmissions and catch-up sent during them.
    pub retransmitted: u64,
    pub retransmitted_bytes: u64,
    /// Their total duration, first timeout to first decision.
    pub time: Duration,
}

/// Traffic totals over all replicas at one instant: everything sent, and
/// the retransmitted part of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sent: KindCount,
    pub resent: KindCount,
}

#[derive(Clone, Copy, Debug)]
struct Open {
    at: Time,
    /// The view or round that timed out.
    view: u64,
    totals: Totals,
}

/// Follows a run's timeouts and decisions (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    open: Option<Open>,
    done: Replacements,
}

impl Tracker {
    /// An honest replica in `view` timed out at `at`, the run having sent
    /// `totals` so far. Opens a replacement unless one is open.
    pub fn timeout(&mut self, at: Time, view: u64, totals: Totals) {
        if self.open.is_none() {
            self.open = Some(Open { at, view, totals });
        }
    }

    /// An honest replica decided in `view` at `at`, the run having sent
    /// `totals` so far. Completes the open replacement if `view` is later
    /// than the one that timed out.
    pub fn decided(&mut self, at: Time, view: u64, totals: Totals) {
        let Some(open) = self.open.filter(|o| view > o.view) else {
            return;
        };
        self.open = None;
        let sent = totals.sent.count.saturating_sub(open.totals.sent.count);
        let sent_bytes = totals.sent.bytes.saturating_sub(open.totals.sent.bytes);
        let resent = totals.resent.count.saturating_sub(open.totals.resent.count);
        let resent_bytes = totals.resent.bytes.saturating_sub(open.totals.resent.bytes);
        let d = &mut self.done;
        d.count += 1;
        d.messages += sent.saturating_sub(resent);
        d.bytes += sent_bytes.saturating_sub(resent_bytes);
        d.retransmitted += resent;
        d.retransmitted_bytes += resent_bytes;
        d.time += at.since(open.at);
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    pub fn completed(&self) -> Replacements {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(sent: u64, resent: u64) -> Totals {
        Totals {
            sent: KindCount {
                count: sent,
                bytes: sent * 10,
            },
            resent: KindCount {
                count: resent,
                bytes: resent * 10,
            },
        }
    }

    fn ms(x: u64) -> Time {
        Time::from_duration(Duration::from_millis(x))
    }

    #[test]
    fn a_replacement_runs_from_the_first_timeout_to_a_decision_in_a_later_view() {
        let mut t = Tracker::default();
        t.decided(ms(5), 3, totals(1, 0)); // nothing open: ignored
        t.timeout(ms(100), 0, totals(10, 0));
        t.timeout(ms(110), 0, totals(13, 0)); // a second timeout joins it
        t.decided(ms(120), 0, totals(20, 0)); // same view: still open
        t.decided(ms(300), 1, totals(50, 4));
        t.decided(ms(310), 1, totals(60, 4)); // closed already
        assert_eq!(
            t.completed(),
            Replacements {
                count: 1,
                messages: 36,
                bytes: 360,
                retransmitted: 4,
                retransmitted_bytes: 40,
                time: Duration::from_millis(200),
            }
        );
        t.timeout(ms(400), 1, totals(60, 4)); // never completes
        assert_eq!(t.completed().count, 1);
    }
}
