//! The machine the simulated replicas run on: the `[machine]` table.
//!
//! **Dedicated** (the default, `cores` unset): every replica runs on a
//! server of its own with one core for its protocol work. It handles one
//! event at a time; its transport, TLS and the load-generating clients run
//! on other cores and are not charged. This models a cluster of separate
//! machines, the setting every simulated figure in `results/` uses unless its
//! scenario says otherwise.
//!
//! **Shared** (`cores = C`): the replicas and the clients share C cores, as
//! the in-process QUIC cluster (`runtime = "quic"`) shares the machine it
//! runs on. A replica still handles one event at a time, and only while one
//! of the C cores is free; each event also pays for the frames it receives
//! and sends (`CostModel::frame`, half at each end, including the replies it
//! sends clients). The load generator is one more serial worker, like the
//! QUIC runtime's one generator task: each request costs it
//! `client_per_request` (plus `sign` when requests are signed) plus half of
//! each copy it sends, each reply frame
//! half its price, done in order whenever a core is free (a request leaves
//! when its work is done; its latency still counts from when it was due,
//! and a reply completes a request when it arrives). Ties for a free core
//! go to whoever has waited since earlier. What it leaves out: the
//! runtime's scheduler and its channel hops, cache effects, and any
//! parallelism inside one replica (the QUIC runtime decodes client requests
//! in reader tasks beside the node task).

use bft_core::{Request, Time};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// `[machine]`: how many cores the whole simulated cluster shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// `None`: each replica on a machine of its own (dedicated). `Some(C)`:
    /// replicas and clients share C cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<usize>,
}

impl Machine {
    /// No `[machine]` table: each replica on a dedicated machine.
    pub fn is_dedicated(&self) -> bool {
        self.cores.is_none()
    }
}

/// Who may wait for a shared core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiter {
    /// A replica instance with events in its inbox.
    Replica(bft_core::NodeId),
    /// The load generator with work in its backlog.
    Generator,
}

/// When each of the shared cores is next free, and who waits for one, first
/// come first served: a freed core goes to the longest waiter, and nobody
/// takes a free core while others wait.
#[derive(Clone, Debug)]
pub(crate) struct CorePool {
    free_at: Vec<Time>,
    waiting: VecDeque<Waiter>,
}

impl CorePool {
    /// The pool of a shared machine; `None` for a dedicated one.
    pub(crate) fn of(machine: &Machine) -> Option<CorePool> {
        let cores = machine.cores?.max(1);
        Some(CorePool {
            free_at: vec![Time::ZERO; cores],
            waiting: VecDeque::new(),
        })
    }

    /// When the first core is free.
    pub(crate) fn earliest(&self) -> Time {
        self.free_at.iter().copied().min().unwrap_or(Time::ZERO)
    }

    /// May `who` start work at `now`? Yes if a core is free and nobody else
    /// waits (or `granted`: a freed core was handed to it); otherwise it
    /// joins the queue (once).
    pub(crate) fn may_run(&mut self, who: Waiter, now: Time, granted: bool) -> bool {
        if self.earliest() <= now && (granted || self.waiting.is_empty()) {
            return true;
        }
        if !self.waiting.contains(&who) {
            self.waiting.push_back(who);
        }
        false
    }

    /// A core freed at `now`: the longest waiter, who now gets it.
    pub(crate) fn grant(&mut self, now: Time) -> Option<Waiter> {
        if self.earliest() > now {
            return None;
        }
        self.waiting.pop_front()
    }

    /// Runs `cpu` of work on the core that frees first, no earlier than
    /// `now`; returns when the work is done.
    pub(crate) fn occupy(&mut self, now: Time, cpu: Duration) -> Time {
        let Some(core) = self.free_at.iter_mut().min_by_key(|t| **t) else {
            return now.saturating_add(cpu);
        };
        let done = (*core).max(now).saturating_add(cpu);
        *core = done;
        done
    }
}

/// One piece of the load generator's work on a shared machine.
#[derive(Debug)]
pub(crate) enum ClientWork {
    /// Issue and send a request to every replica (its CPU given).
    Send(Request, Duration),
    /// Read a reply frame.
    Receive(Duration),
}

impl ClientWork {
    fn cpu(&self) -> Duration {
        match self {
            ClientWork::Send(_, cpu) | ClientWork::Receive(cpu) => *cpu,
        }
    }
}

/// The load generator as a serial worker: its backlog, and when it is next
/// free.
#[derive(Debug, Default)]
pub(crate) struct Generator {
    backlog: VecDeque<ClientWork>,
    busy_until: Time,
    /// A `ClientWake` is in the event queue.
    pub(crate) wake_scheduled: bool,
}

impl Generator {
    pub(crate) fn push(&mut self, work: ClientWork) {
        self.backlog.push_back(work);
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.backlog.is_empty()
    }

    /// When it has finished its current piece.
    pub(crate) fn busy_until(&self) -> Time {
        self.busy_until
    }

    /// Does the next piece of work on a core granted at `now`; returns when
    /// it is done, and the request to send then if the piece was a send.
    pub(crate) fn work(
        &mut self,
        pool: &mut CorePool,
        now: Time,
    ) -> Option<(Time, Option<Request>)> {
        let work = self.backlog.pop_front()?;
        let done = pool.occupy(now, work.cpu());
        self.busy_until = done;
        match work {
            ClientWork::Send(req, _) => Some((done, Some(req))),
            ClientWork::Receive(_) => Some((done, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_takes_the_core_that_frees_first() {
        let mut p = CorePool::of(&Machine { cores: Some(2) }).expect("shared");
        let us = Duration::from_micros;
        assert_eq!(p.occupy(Time::ZERO, us(10)), Time(10_000));
        assert_eq!(p.occupy(Time::ZERO, us(4)), Time(4_000));
        assert_eq!(p.earliest(), Time(4_000));
        // Both busy at 1 µs: the third piece waits for the core free at 4 µs.
        assert_eq!(p.occupy(Time(1_000), us(1)), Time(5_000));
        assert_eq!(p.earliest(), Time(5_000));
    }

    #[test]
    fn a_freed_core_goes_to_the_longest_waiter() {
        use bft_core::NodeId;
        let mut p = CorePool::of(&Machine { cores: Some(1) }).expect("shared");
        let (a, b) = (Waiter::Replica(NodeId(0)), Waiter::Generator);
        assert!(p.may_run(a, Time::ZERO, false));
        p.occupy(Time::ZERO, Duration::from_micros(2));
        assert!(!p.may_run(b, Time(1_000), false));
        assert!(!p.may_run(a, Time(1_500), false));
        assert!(!p.may_run(b, Time(1_600), false), "queued once");
        assert_eq!(p.grant(Time(1_999)), None, "not free yet");
        // Free again, but b waits: a newcomer does not jump the queue.
        assert!(!p.may_run(Waiter::Replica(NodeId(3)), Time(2_000), false));
        assert_eq!(p.grant(Time(2_000)), Some(b));
        assert!(p.may_run(b, Time(2_000), true));
        assert_eq!(p.grant(Time(2_000)), Some(a));
    }

    #[test]
    fn a_dedicated_machine_has_no_pool() {
        assert!(CorePool::of(&Machine::default()).is_none());
        assert!(Machine::default().is_dedicated());
    }
}
