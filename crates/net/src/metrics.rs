//! Prometheus metrics of one replica, with `prometheus-client` (the official
//! Rust client): one [`Registry`] per replica, no global recorder, so the
//! replicas of an in-process cluster never mix.
//!
//! The core's `Node<P>` is the one place that counts protocol traffic; this
//! module only copies ITS figures (`MsgStats`, `Status`) and the runner's
//! own counters into the registry. The replica task refreshes them at most
//! every [`REFRESH_EVERY`] while it is busy, whenever a scrape asks (so a
//! scrape of an idle replica is exact), and once more when it stops. Nothing
//! here takes a lock per message.
//!
//! Every series carries the constant label `node="<id>"`. Names as exposed
//! (OpenMetrics adds `_total` to counters):
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `bft_decisions_total` | counter | | committed slots (`Status::committed`) |
//! | `bft_view` | gauge | | current view / round (`Status::view`) |
//! | `bft_view_changes_total` | counter | | completed view/round changes |
//! | `bft_messages_sent_total` | counter | `kind` | protocol messages sent (core's count: a broadcast is n−1) |
//! | `bft_message_bytes_sent_total` | counter | `kind` | their wire bytes |
//! | `bft_messages_received_total` | counter | `kind` | protocol messages received and decoded |
//! | `bft_message_bytes_received_total` | counter | `kind` | their wire bytes |
//! | `bft_rejected_total` | counter | `reason` | inputs rejected, by reason |
//! | `bft_commit_latency_seconds` | histogram | | request arrival at this replica → its commit here |
//! | `bft_commit_latency_untracked_total` | counter | | arrivals evicted from the bounded pending map (never measured) |
//! | `bft_queue_depth` | gauge | `queue` | `inbound` (peer frames) and `clients` (client events) waiting for the node task |
//! | `bft_outbound_queue_depth` | gauge | `peer` | frames queued for each peer link |
//! | `bft_outbound_queue_bytes` | gauge | `peer` | body bytes of the frames queued or being written on each peer link (at most `LINK_QUEUE_BYTES`) |
//! | `bft_dropped_total` | counter | `cause` | `overload` (peer queue full), `reply-overload` (client reply queue full), `link` (lost in a broken write) |
//! | `bft_client_replies_total` | counter | | reply entries sent to clients (one per request id) |
//! | `bft_client_reply_bytes_total` | counter | | their wire bytes |
//! | `bft_retained_entries` | gauge | | entries held in logs/pools (`Status::retained`) |
//! | `bft_node_task_cpu_seconds_total` | counter | | CPU of the node task while handling events |

use bft_core::{MsgStats, NodeId, RequestId, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How often a busy replica task copies its counters into the registry.
pub const REFRESH_EVERY: Duration = Duration::from_millis(100);
/// Requests whose arrival time a replica remembers for the latency
/// histogram; beyond it the oldest is evicted and counted.
pub const MAX_PENDING_ARRIVALS: usize = 1 << 16;
/// Latency observations buffered in the node task between refreshes.
const MAX_BUFFERED_LATENCIES: usize = 1 << 14;

/// Upper bounds of the commit-latency buckets, seconds: 0.5 ms … ~33 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 17)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

/// The registry of one replica and handles to its metrics. Shared (in an
/// `Arc`) by the replica task, which writes, and the HTTP endpoint, which
/// encodes.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    decisions: Counter,
    view: Gauge,
    view_changes: Counter,
    messages_sent: Family<KindLabel, Counter>,
    bytes_sent: Family<KindLabel, Counter>,
    messages_received: Family<KindLabel, Counter>,
    bytes_received: Family<KindLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    commit_latency: Histogram,
    latency_untracked: Counter,
    queue_depth: Family<QueueLabel, Gauge>,
    outbound_queue_depth: Family<PeerLabel, Gauge>,
    outbound_queue_bytes: Family<PeerLabel, Gauge>,
    dropped: Family<CauseLabel, Counter>,
    client_replies: Counter,
    client_reply_bytes: Counter,
    retained: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
}

/// What the runner knows besides the core's counters, copied at a refresh.
#[derive(Clone, Debug, Default)]
pub struct RunnerFigures {
    pub inbound_depth: usize,
    pub clients_depth: usize,
    /// Frames queued per peer id (None for this replica itself).
    pub outbound_depths: Vec<Option<usize>>,
    /// Their body bytes, per peer id, until their write is over.
    pub outbound_bytes: Vec<Option<usize>>,
    pub dropped_overload: u64,
    pub dropped_replies: u64,
    pub dropped_link: u64,
    pub client_messages: u64,
    pub client_bytes: u64,
    pub cpu_s: f64,
}

impl NodeMetrics {
    /// An empty registry for replica `id`.
    pub fn new(id: NodeId) -> NodeMetrics {
        let labels = [(Cow::Borrowed("node"), Cow::Owned(id.0.to_string()))];
        let mut registry = Registry::with_prefix_and_labels("bft", labels.into_iter());
        let m = NodeMetrics {
            registry: Registry::default(),
            decisions: Counter::default(),
            view: Gauge::default(),
            view_changes: Counter::default(),
            messages_sent: Family::default(),
            bytes_sent: Family::default(),
            messages_received: Family::default(),
            bytes_received: Family::default(),
            rejected: Family::default(),
            commit_latency: Histogram::new(latency_buckets()),
            latency_untracked: Counter::default(),
            queue_depth: Family::default(),
            outbound_queue_depth: Family::default(),
            outbound_queue_bytes: Family::default(),
            dropped: Family::default(),
            client_replies: Counter::default(),
            client_reply_bytes: Counter::default(),
            retained: Gauge::default(),
            cpu_seconds: Counter::default(),
        };
        let r = &mut registry;
        r.register("decisions", "Committed slots", m.decisions.clone());
        r.register("view", "Current view or round", m.view.clone());
        r.register(
            "view_changes",
            "Completed view or round changes",
            m.view_changes.clone(),
        );
        r.register(
            "messages_sent",
            "Protocol messages sent, by kind (a broadcast counts n-1)",
            m.messages_sent.clone(),
        );
        r.register(
            "message_bytes_sent",
            "Wire bytes of protocol messages sent, by kind",
            m.bytes_sent.clone(),
        );
        r.register(
            "messages_received",
            "Protocol messages received and decoded, by kind",
            m.messages_received.clone(),
        );
        r.register(
            "message_bytes_received",
            "Wire bytes of protocol messages received, by kind",
            m.bytes_received.clone(),
        );
        r.register("rejected", "Inputs rejected, by reason", m.rejected.clone());
        r.register_with_unit(
            "commit_latency",
            "Time from a request's arrival at this replica to its commit here",
            Unit::Seconds,
            m.commit_latency.clone(),
        );
        r.register(
            "commit_latency_untracked",
            "Request arrivals evicted from the bounded pending map, never measured",
            m.latency_untracked.clone(),
        );
        r.register(
            "queue_depth",
            "Events waiting for the node task: inbound (peer frames), clients",
            m.queue_depth.clone(),
        );
        r.register(
            "outbound_queue_depth",
            "Frames queued for a peer link",
            m.outbound_queue_depth.clone(),
        );
        r.register_with_unit(
            "outbound_queue",
            "Body bytes queued for a peer link, until their write is over",
            Unit::Bytes,
            m.outbound_queue_bytes.clone(),
        );
        r.register(
            "dropped",
            "Frames or replies dropped: overload, reply-overload, link",
            m.dropped.clone(),
        );
        r.register(
            "client_replies",
            "Reply entries sent to clients, one per request id",
            m.client_replies.clone(),
        );
        r.register(
            "client_reply_bytes",
            "Wire bytes of replies sent to clients",
            m.client_reply_bytes.clone(),
        );
        r.register(
            "retained_entries",
            "Entries held in the replica's logs and pools",
            m.retained.clone(),
        );
        r.register_with_unit(
            "node_task_cpu",
            "CPU of the node task while handling events",
            Unit::Seconds,
            m.cpu_seconds.clone(),
        );
        NodeMetrics { registry, ..m }
    }

    /// The OpenMetrics text exposition of this replica's registry.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Copies the core's counters and status and the runner's figures.
    pub fn refresh(&self, stats: &MsgStats, status: &Status, runner: &RunnerFigures) {
        set_counter(&self.decisions, status.committed);
        self.view.set(saturating_i64(status.view));
        set_counter(&self.view_changes, status.view_changes);
        self.retained.set(saturating_i64(status.retained as u64));
        for (kind, c) in stats.sent.iter() {
            set_counter(
                &self.messages_sent.get_or_create(&KindLabel { kind }),
                c.count,
            );
            set_counter(&self.bytes_sent.get_or_create(&KindLabel { kind }), c.bytes);
        }
        for (kind, c) in stats.received.iter() {
            let label = KindLabel { kind };
            set_counter(&self.messages_received.get_or_create(&label), c.count);
            set_counter(&self.bytes_received.get_or_create(&label), c.bytes);
        }
        for (reason, n) in stats.rejected.iter() {
            set_counter(&self.rejected.get_or_create(&ReasonLabel { reason }), *n);
        }
        let depth = |queue| self.queue_depth.get_or_create(&QueueLabel { queue });
        depth("inbound").set(saturating_i64(runner.inbound_depth as u64));
        depth("clients").set(saturating_i64(runner.clients_depth as u64));
        set_per_peer(&self.outbound_queue_depth, &runner.outbound_depths);
        set_per_peer(&self.outbound_queue_bytes, &runner.outbound_bytes);
        let dropped = |cause| self.dropped.get_or_create(&CauseLabel { cause });
        set_counter(&dropped("overload"), runner.dropped_overload);
        set_counter(&dropped("reply-overload"), runner.dropped_replies);
        set_counter(&dropped("link"), runner.dropped_link);
        set_counter(&self.client_replies, runner.client_messages);
        set_counter(&self.client_reply_bytes, runner.client_bytes);
        let cpu_delta = runner.cpu_s - self.cpu_seconds.get();
        if cpu_delta > 0.0 {
            self.cpu_seconds.inc_by(cpu_delta);
        }
    }

    /// Records commit latencies (seconds) and newly evicted arrivals.
    pub fn observe_latencies(&self, latencies: &[f64], evicted: u64) {
        for l in latencies {
            self.commit_latency.observe(*l);
        }
        self.latency_untracked.inc_by(evicted);
    }
}

/// Raises a counter to `value` (the source is monotonic; a lower value,
/// which cannot happen, leaves it unchanged).
/// Sets each peer's gauge in `family` from `values`, indexed by peer id
/// (None: no link, this replica itself).
fn set_per_peer(family: &Family<PeerLabel, Gauge>, values: &[Option<usize>]) {
    for (peer, v) in values.iter().enumerate() {
        let (Some(v), Ok(peer)) = (v, u16::try_from(peer)) else {
            continue;
        };
        family
            .get_or_create(&PeerLabel { peer })
            .set(saturating_i64(*v as u64));
    }
}

fn set_counter(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Arrival times of requests not yet committed here, bounded: when full,
/// the oldest arrival is evicted (and counted).
#[derive(Debug)]
pub struct Arrivals {
    by_id: BTreeMap<RequestId, Instant>,
    by_age: BTreeSet<(Instant, RequestId)>,
    capacity: usize,
    /// Evicted since the last [`Arrivals::take_evicted`].
    evicted: u64,
}

impl Arrivals {
    pub fn new(capacity: usize) -> Arrivals {
        Arrivals {
            by_id: BTreeMap::new(),
            by_age: BTreeSet::new(),
            capacity,
            evicted: 0,
        }
    }

    /// Remembers the first arrival of `id` (a copy arriving again keeps the
    /// first time).
    pub fn arrive(&mut self, id: RequestId, at: Instant) {
        if self.capacity == 0 || self.by_id.contains_key(&id) {
            return;
        }
        if self.by_id.len() >= self.capacity
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.by_id.remove(&oldest);
            self.evicted += 1;
        }
        self.by_id.insert(id, at);
        self.by_age.insert((at, id));
    }

    /// How long `id` waited since it arrived, forgetting it; None if it
    /// never arrived here (or was evicted).
    pub fn commit(&mut self, id: RequestId, at: Instant) -> Option<Duration> {
        let arrived = self.by_id.remove(&id)?;
        self.by_age.remove(&(arrived, id));
        Some(at.saturating_duration_since(arrived))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }
}

/// The replica task's side: metrics handles plus what it buffers between
/// refreshes.
#[derive(Debug)]
pub struct MetricsState {
    pub metrics: std::sync::Arc<NodeMetrics>,
    pub arrivals: Arrivals,
    latencies: Vec<f64>,
    last_refresh: Instant,
}

impl MetricsState {
    pub fn new(metrics: std::sync::Arc<NodeMetrics>) -> MetricsState {
        MetricsState {
            metrics,
            arrivals: Arrivals::new(MAX_PENDING_ARRIVALS),
            latencies: Vec::new(),
            last_refresh: Instant::now(),
        }
    }

    /// Notes that `ids` committed at `at`.
    pub fn committed(&mut self, ids: &[RequestId], at: Instant) {
        for id in ids {
            if let Some(d) = self.arrivals.commit(*id, at) {
                self.latencies.push(d.as_secs_f64());
            }
        }
        if self.latencies.len() >= MAX_BUFFERED_LATENCIES {
            self.flush_latencies();
        }
    }

    fn flush_latencies(&mut self) {
        let evicted = self.arrivals.take_evicted();
        self.metrics.observe_latencies(&self.latencies, evicted);
        self.latencies.clear();
    }

    /// True when the last refresh is [`REFRESH_EVERY`] old.
    pub fn due(&self) -> bool {
        self.last_refresh.elapsed() >= REFRESH_EVERY
    }

    /// Copies everything into the registry.
    pub fn refresh(&mut self, stats: &MsgStats, status: &Status, runner: &RunnerFigures) {
        self.flush_latencies();
        self.metrics.refresh(stats, status, runner);
        self.last_refresh = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(number: u64) -> RequestId {
        RequestId { client: 0, number }
    }

    #[test]
    fn arrivals_evict_the_oldest_and_count_it() {
        let t0 = Instant::now();
        let mut a = Arrivals::new(2);
        a.arrive(rid(1), t0);
        a.arrive(rid(2), t0 + Duration::from_millis(1));
        a.arrive(rid(1), t0 + Duration::from_millis(5));
        a.arrive(rid(3), t0 + Duration::from_millis(2));
        assert_eq!(a.len(), 2);
        assert_eq!(a.take_evicted(), 1);
        assert_eq!(a.take_evicted(), 0);
        assert_eq!(a.commit(rid(1), t0 + Duration::from_millis(9)), None);
        assert_eq!(
            a.commit(rid(2), t0 + Duration::from_millis(9)),
            Some(Duration::from_millis(8))
        );
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn refresh_exports_the_core_figures() {
        let m = NodeMetrics::new(NodeId(3));
        let mut stats = MsgStats::default();
        stats.sent.entry("prepare").count = 6;
        stats.sent.entry("prepare").bytes = 600;
        *stats.rejected.entry("bad-signature") += 2;
        let status = Status {
            view: 1,
            committed: 5,
            view_changes: 1,
            retained: 7,
        };
        let runner = RunnerFigures {
            outbound_depths: vec![Some(0), Some(4), None, Some(1)],
            outbound_bytes: vec![Some(0), Some(2048), None, Some(512)],
            ..RunnerFigures::default()
        };
        m.refresh(&stats, &status, &runner);
        m.refresh(&stats, &status, &runner);
        let text = m.encode();
        for line in [
            "bft_decisions_total{node=\"3\"} 5",
            "bft_view{node=\"3\"} 1",
            "bft_messages_sent_total{node=\"3\",kind=\"prepare\"} 6",
            "bft_message_bytes_sent_total{node=\"3\",kind=\"prepare\"} 600",
            "bft_rejected_total{node=\"3\",reason=\"bad-signature\"} 2",
            "bft_outbound_queue_depth{node=\"3\",peer=\"1\"} 4",
            "bft_outbound_queue_bytes{node=\"3\",peer=\"1\"} 2048",
            "bft_retained_entries{node=\"3\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("peer=\"2\""), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
