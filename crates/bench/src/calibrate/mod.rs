//! `bftbench calibrate`: measures on this machine every cost the simulator
//! charges (each [`CostModel`] field) and writes them as a cost profile that
//! a scenario names with `[cost] profile = "FILE"`.
//!
//! Method, per figure: warm up for [`WARM_UP`], size a round to last about
//! [`ROUND`], time [`Calibration::rounds`] rounds, and keep the median round's
//! time per operation. The spread, the interquartile range of the rounds over
//! the median, says how steady the machine was (robust to one preempted
//! round, which a shared VM has now and then); the load average before and
//! after says whether something else ran. A figure is flagged when its spread exceeds
//! [`MAX_SPREAD`] or the 1-minute load average exceeds [`MAX_LOAD`]: take it
//! again on an idle machine.
//!
//! What each figure times, with real crypto through the same `Crypto` calls
//! the protocols make (domain digest included), on a 200-byte message:
//! - `sign`, `verify`: one Ed25519 signature / verification;
//! - `batch_verify_per_sig`: a batch of 64 Ed25519 verifications / 64;
//! - `bls_sign`, `bls_verify`, `bls_check`: one BLS partial signature, its
//!   verification, its decoding and subgroup check;
//! - `bls_aggregate_per_sig`: aggregating 64 partial signatures / 64;
//! - `bls_verify_aggregate`: a cold verification of a 63-of-64 aggregate
//!   (each one over another message and signer set, so no cache helps);
//! - `handling`: wall time per simulator event of a fault-free run with free
//!   crypto (model crypto, zero costs), the median over PBFT, QBFT and
//!   HotStuff at n = 4. It includes the simulator's own queueing, so it is
//!   an upper bound on a replica's decode + state update + encode;
//! - `transport_per_message`, `transport_per_kib`: process CPU (all threads,
//!   kernel included, from `/proc/self/task/*/schedstat`) per frame carried
//!   over a loopback QUIC link with the cluster's TLS and transport
//!   settings, both ends together, fitted from 64- and 8 192-byte frames;
//! - `client_per_request`: the load generator's own work per request
//!   (issue, encode 512 bytes, count four replies);
//! - `store_write`: one write to a replica's data directory (`bft-store`,
//!   the QUIC runtime's store) in the system's temporary directory: a
//!   1 KiB durable state and one decision of 16 requests, `fsync = never`;
//! - `store_fsync`: the same write with `fsync = always`, less the write
//!   under `never`.

use crate::BenchError;

mod store;
use bft_core::{BlsSignature, CryptoKind, NodeId, Signature, SignedItem};
use bft_crypto::{CostModel, cluster, fresh_aggregates};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use store::storage_figures;

pub const WARM_UP: Duration = Duration::from_millis(200);
pub const ROUND: Duration = Duration::from_millis(40);
/// Above this spread a figure is flagged as noisy.
pub const MAX_SPREAD: f64 = 0.10;
/// Above this 1-minute load average the machine is flagged as busy.
pub const MAX_LOAD: f64 = 1.0;

const DOMAIN: &str = "bftbench/calibrate/v1";
const MSG: &[u8] = &[7u8; 200];
/// Signatures per batch, aggregate and QC.
const SIZE: usize = 64;

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The `CostModel` field it sets.
    pub name: &'static str,
    pub median: Duration,
    /// First and third quartile of the rounds.
    pub q1: Duration,
    pub q3: Duration,
    pub fastest: Duration,
    pub slowest: Duration,
}

impl Figure {
    /// (q3 − q1) / median.
    pub fn spread(&self) -> f64 {
        let m = self.median.as_secs_f64();
        if m == 0.0 {
            return 0.0;
        }
        (self.q3.as_secs_f64() - self.q1.as_secs_f64()) / m
    }
}

/// A whole calibration: the figures, and the machine's state around it.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub rounds: usize,
    pub figures: Vec<Figure>,
    /// Not a cost: the one-way latency of a lone 200-byte frame over the
    /// loopback QUIC link (both ends' tasks waking), wall clock. A
    /// simulated twin of a loopback cluster takes it as its `[network]`
    /// delay.
    pub loopback_latency: Option<Figure>,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    pub cores: usize,
    pub git_rev: String,
    pub date: String,
}

/// The 1-minute load average (Linux `/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Times `op`, which performs `per_call` operations, over `rounds` rounds
/// of wall-clock time.
pub fn measure(name: &'static str, rounds: usize, per_call: usize, op: impl FnMut()) -> Figure {
    let start = Instant::now();
    Figure::of(name, samples(rounds, per_call, || start.elapsed(), op))
}

/// The time per operation of each of `rounds` rounds of `op` (which performs
/// `per_call` operations), by `clock`, after a warm-up; each round is sized
/// to last about [`ROUND`].
fn samples(
    rounds: usize,
    per_call: usize,
    clock: impl Fn() -> Duration,
    mut op: impl FnMut(),
) -> Vec<Duration> {
    let start = clock();
    let mut calls = 0u64;
    while clock().saturating_sub(start) < WARM_UP || calls == 0 {
        op();
        calls += 1;
    }
    let per = clock().saturating_sub(start).as_secs_f64() / calls as f64;
    let iters = ((ROUND.as_secs_f64() / per.max(1e-9)).ceil() as u64).max(1);
    (0..rounds.max(1))
        .map(|_| {
            let t = clock();
            for _ in 0..iters {
                op();
            }
            let ops = u32::try_from(iters.saturating_mul(per_call as u64)).unwrap_or(u32::MAX);
            clock().saturating_sub(t) / ops.max(1)
        })
        .collect()
}

impl Figure {
    /// Median, quartiles and extremes of per-round samples.
    fn of(name: &'static str, mut samples: Vec<Duration>) -> Figure {
        if samples.is_empty() {
            samples.push(Duration::ZERO);
        }
        samples.sort_unstable();
        let at = |q: usize| samples[(samples.len() - 1) * q / 4];
        Figure {
            name,
            median: at(2),
            q1: at(1),
            q3: at(3),
            fastest: samples[0],
            slowest: samples[samples.len() - 1],
        }
    }
}

/// CPU time of every thread of this process so far: the sum of each
/// thread's run time in `/proc/self/task/*/schedstat` (nanoseconds, user
/// and kernel). Threads that exited are missing, so read it around work
/// whose threads live throughout (a tokio runtime's workers).
pub fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn id(i: usize) -> NodeId {
    NodeId(u16::try_from(i).unwrap_or(u16::MAX))
}

/// The crypto figures, in `CostModel` field order.
fn crypto_figures(rounds: usize) -> Result<Vec<Figure>, BenchError> {
    let (_, nodes) = cluster(SIZE, 1, CryptoKind::Real, CostModel::zero())
        .map_err(|e| BenchError::Unsupported(format!("calibrate: cannot make keys: {e}")))?;
    let me = &nodes[0];
    let sigs: Vec<Signature> = nodes.iter().map(|n| n.sign(DOMAIN, MSG)).collect();
    let parts: Vec<(NodeId, BlsSignature)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (id(i), n.bls_sign(DOMAIN, MSG)))
        .collect();
    let items: Vec<SignedItem<'_>> = (0..SIZE)
        .map(|i| SignedItem {
            signer: id(i),
            domain: DOMAIN,
            msg: MSG,
            sig: &sigs[i],
        })
        .collect();
    let fresh = fresh_aggregates(&nodes, SIZE, 80, DOMAIN)
        .map_err(|e| BenchError::Unsupported(format!("calibrate: aggregate: {e}")))?;
    let mut next = fresh.iter().cycle();
    let part = parts[1].1;
    Ok(vec![
        measure("sign", rounds, 1, || {
            black_box(me.sign(DOMAIN, black_box(MSG)));
        }),
        measure("verify", rounds, 1, || {
            let _ = black_box(me.verify(id(1), DOMAIN, black_box(MSG), &sigs[1]));
        }),
        measure("batch_verify_per_sig", rounds, SIZE, || {
            let _ = black_box(me.verify_batch(black_box(&items)));
        }),
        measure("bls_sign", rounds, 1, || {
            black_box(me.bls_sign(DOMAIN, black_box(MSG)));
        }),
        measure("bls_verify", rounds, 1, || {
            let _ = black_box(me.bls_verify(id(1), DOMAIN, black_box(MSG), &part));
        }),
        measure("bls_check", rounds, 1, || {
            let _ = black_box(me.bls_check(black_box(&part)));
        }),
        measure("bls_aggregate_per_sig", rounds, SIZE, || {
            let _ = black_box(me.bls_aggregate(black_box(&parts)));
        }),
        measure("bls_verify_aggregate", rounds, 1, || {
            if let Some((msg, agg)) = next.next() {
                let _ = black_box(me.bls_verify_aggregate(DOMAIN, msg, black_box(agg)));
            }
        }),
    ])
}

/// Wall time per event of a fault-free simulated run with free crypto, per
/// protocol; the median of the three.
fn handling_figure(rounds: usize) -> Result<Figure, BenchError> {
    use crate::scenario::{ProtocolName, Scenario};
    let mut per_protocol = Vec::new();
    for protocol in [
        ProtocolName::Pbft,
        ProtocolName::Qbft,
        ProtocolName::Hotstuff,
    ] {
        let text = format!(
            "protocol = \"{protocol}\"\nnodes = 4\nduration = \"2s\"\ncrypto = \"model\"\n\
             [load]\nmode = \"closed\"\nclients = 4\noutstanding = 8\ntotal = 2000\n\
             [cost]\nsign = \"0s\"\nverify = \"0s\"\nbatch_verify_per_sig = \"0s\"\n\
             bls_sign = \"0s\"\nbls_verify = \"0s\"\nbls_check = \"0s\"\n\
             bls_aggregate_per_sig = \"0s\"\nbls_verify_aggregate = \"0s\"\nhandling = \"0s\"\n"
        );
        let path = Path::new("(calibrate)");
        let s = Scenario::parse(&text, path)?;
        let mut events = 0u64;
        let mut fig = measure("handling", rounds, 1, || {
            if let Ok(r) = crate::run::run(&s, &mut |_| {}) {
                events = r.events.max(1);
            }
        });
        let per_event = |d: Duration| d / u32::try_from(events.max(1)).unwrap_or(u32::MAX);
        for d in [
            &mut fig.median,
            &mut fig.q1,
            &mut fig.q3,
            &mut fig.fastest,
            &mut fig.slowest,
        ] {
            *d = per_event(*d);
        }
        per_protocol.push(fig);
    }
    per_protocol.sort_by_key(|f| f.median);
    Ok(per_protocol.swap_remove(1))
}

/// Frame body sizes the transport figures are fitted from.
const SMALL_FRAME: usize = 64;
const LARGE_FRAME: usize = 8192;
/// Frames per `carry` call: one full write batch.
const FRAMES: usize = bft_net::transport::WRITE_BATCH;

/// `transport_per_message` and `transport_per_kib`: the process CPU (every
/// thread, kernel included) of carrying frames of 64 and 8 192 body bytes
/// over a loopback QUIC link ([`bft_net::pipe::FramePipe`]) on a 2-worker
/// tokio runtime, per frame, fitted as a line in the frame's wire size. The
/// small-frame rounds run first, then the large ones; round i of each gives
/// the i-th fitted point.
fn transport_figures(rounds: usize) -> Result<Vec<Figure>, BenchError> {
    let fail = |e: String| BenchError::Unsupported(format!("calibrate: transport: {e}"));
    let (rt, mut pipe) = loopback_pipe(fail)?;
    let clock = || process_cpu().unwrap_or_default();
    if process_cpu().is_none() {
        return Err(fail("cannot read /proc/self/task/*/schedstat".into()));
    }
    let mut failed = None;
    let mut per_frame = |size: usize| {
        samples(rounds, FRAMES, clock, || {
            if let Err(e) = rt.block_on(pipe.carry(FRAMES, size, FRAMES)) {
                failed = Some(e.to_string());
            }
        })
    };
    let small = per_frame(SMALL_FRAME);
    let large = per_frame(LARGE_FRAME);
    if let Some(e) = failed {
        return Err(fail(e));
    }
    let (ws, wl) = (
        bft_core::codec::wire_len(SMALL_FRAME) as f64,
        bft_core::codec::wire_len(LARGE_FRAME) as f64,
    );
    let (mut fixed, mut per_kib) = (Vec::new(), Vec::new());
    for (s, l) in small.iter().zip(&large) {
        let slope = (l.as_secs_f64() - s.as_secs_f64()).max(0.0) / (wl - ws);
        let base = (s.as_secs_f64() - slope * ws).max(0.0);
        fixed.push(Duration::from_secs_f64(base));
        per_kib.push(Duration::from_secs_f64(slope * 1024.0));
    }
    Ok(vec![
        Figure::of("transport_per_message", fixed),
        Figure::of("transport_per_kib", per_kib),
    ])
}

/// A 2-worker tokio runtime (as the QUIC cluster runs on) and a connected
/// loopback link on it; `fail` words the error.
fn loopback_pipe(
    fail: impl Fn(String) -> BenchError,
) -> Result<(tokio::runtime::Runtime, bft_net::pipe::FramePipe), BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let pipe = rt
        .block_on(bft_net::pipe::FramePipe::open())
        .map_err(|e| fail(e.to_string()))?;
    Ok((rt, pipe))
}

/// The loopback latency: lone 200-byte frames one after another over the
/// link of [`transport_figures`], wall clock per frame.
fn latency_figure(rounds: usize) -> Result<Figure, BenchError> {
    let fail = |e: String| BenchError::Unsupported(format!("calibrate: latency: {e}"));
    let (rt, mut pipe) = loopback_pipe(fail)?;
    let mut failed = None;
    let fig = measure("loopback_latency", rounds, 1, || {
        if let Err(e) = rt.block_on(pipe.one(200)) {
            failed = Some(e.to_string());
        }
    });
    match failed {
        Some(e) => Err(fail(e)),
        None => Ok(fig),
    }
}

/// `client_per_request`: what the load generator does per request besides
/// moving frames and signing (charged apart as `sign`), timed on its own
/// code: issue an id, encode a 512-byte unsigned request, and count replies from the n = 4 replicas (completion at f+1
/// distinct ones; the rest are late).
fn client_figure(rounds: usize) -> Figure {
    use bft_core::{Request, codec};
    use bft_sim::clients::Clients;
    use bft_sim::{LoadConfig, LoadMode};
    let load = LoadConfig {
        mode: LoadMode::Open { rate: 1e9 },
        clients: 16,
        tx_size: 512,
        total: None,
        warmup: Duration::ZERO,
        signed: true,
        max_pending: None,
    };
    let mut clients = Clients::new(load, 2);
    let payload = bytes::Bytes::from(vec![0u8; 512]);
    let mut k = 0u32;
    measure("client_per_request", rounds, 1, || {
        k = k.wrapping_add(1);
        let now = bft_core::Time(u64::from(k));
        if let bft_sim::clients::Issue::Send(id) = clients.issue(k % 16, now) {
            let req = Request::unsigned(id, payload.clone());
            let _ = black_box(codec::encode(&req, codec::DEFAULT_MAX_FRAME));
            for r in 0..4u16 {
                let _ = black_box(clients.reply(id, NodeId(r), now));
            }
        }
    })
}

/// Runs every measurement.
pub fn calibrate(rounds: usize) -> Result<Calibration, BenchError> {
    let load_before = load_average();
    let mut figures = crypto_figures(rounds)?;
    figures.push(handling_figure(rounds)?);
    figures.extend(transport_figures(rounds)?);
    figures.push(client_figure(rounds));
    figures.extend(storage_figures(rounds)?);
    let loopback_latency = Some(latency_figure(rounds)?);
    let env = crate::record::Environment::current();
    Ok(Calibration {
        rounds,
        figures,
        loopback_latency,
        load_before,
        load_after: load_average(),
        cores: env.cores,
        git_rev: env.git_rev,
        date: utc_date(),
    })
}

/// Today's UTC date and time, from the system clock.
fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let t = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}Z", t / 3600, t / 60 % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (era * 400 + yoe + i64::from(m <= 2), m, d)
}

impl Calibration {
    /// Why these figures should not be trusted, if anything says so.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for (when, load) in [("before", self.load_before), ("after", self.load_after)] {
            if let Some(l) = load.filter(|&l| l > MAX_LOAD) {
                w.push(format!(
                    "load average {l:.2} {when} the run (above {MAX_LOAD}): something else was running; calibrate again on an idle machine"
                ));
            }
        }
        for f in &self.figures {
            if f.spread() > MAX_SPREAD {
                w.push(format!(
                    "{}: rounds spread {:.0}% (interquartile, above {:.0}%): the machine was not steady",
                    f.name,
                    f.spread() * 100.0,
                    MAX_SPREAD * 100.0
                ));
            }
        }
        w
    }

    /// The figures as a `CostModel`.
    pub fn cost_model(&self) -> CostModel {
        let mut text = String::new();
        for f in &self.figures {
            let _ = writeln!(text, "{} = \"{}ns\"", f.name, f.median.as_nanos());
        }
        toml::from_str(&text).unwrap_or_default()
    }

    /// A human table: figure, median, fastest and slowest round, spread.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<24}{:>12}{:>12}{:>12}{:>9}",
            "figure", "median", "fastest", "slowest", "IQR/med"
        );
        for f in &self.figures {
            let _ = writeln!(
                out,
                "{:<24}{:>12}{:>12}{:>12}{:>8.1}%",
                f.name,
                micros(f.median),
                micros(f.fastest),
                micros(f.slowest),
                f.spread() * 100.0
            );
        }
        if let Some(l) = &self.loopback_latency {
            let _ = writeln!(
                out,
                "{:<24}{:>12}{:>12}{:>12}{:>8.1}%  (not a cost: one-way, wall clock)",
                l.name,
                micros(l.median),
                micros(l.fastest),
                micros(l.slowest),
                l.spread() * 100.0
            );
        }
        let load = |l: Option<f64>| l.map_or("unknown".into(), |l| format!("{l:.2}"));
        let _ = writeln!(
            out,
            "{} rounds each; {} cores; load average {} before, {} after",
            self.rounds,
            self.cores,
            load(self.load_before),
            load(self.load_after)
        );
        out
    }

    /// The cost profile file: a `[cost]` table a scenario can name, with
    /// how and when it was measured in comments.
    pub fn profile_toml(&self) -> String {
        let load = |l: Option<f64>| l.map_or("unknown".into(), |l| format!("{l:.2}"));
        let mut out = format!(
            "# Cost profile written by `bftbench calibrate` on {} at git {}:\n\
             # {} cores, load average {} before and {} after; each figure the median\n\
             # of {} rounds (spread = interquartile range / median).\n\
             # Name it from a scenario: [cost] profile = \"<this file>\".\n[cost]\n",
            self.date,
            self.git_rev,
            self.cores,
            load(self.load_before),
            load(self.load_after),
            self.rounds
        );
        for f in &self.figures {
            let _ = writeln!(
                out,
                "{} = \"{}ns\"  # {} µs, spread {:.1}%",
                f.name,
                f.median.as_nanos(),
                micros(f.median),
                f.spread() * 100.0
            );
        }
        if let Some(l) = &self.loopback_latency {
            let _ = writeln!(
                out,
                "# Not a cost: a lone 200-byte frame's one-way latency over loopback QUIC,\n\
                 # {} µs (spread {:.1}%), the [network] delay of a simulated loopback twin.",
                micros(l.median),
                l.spread() * 100.0
            );
        }
        for w in self.warnings() {
            let _ = writeln!(out, "# WARNING: {w}");
        }
        out
    }
}

fn micros(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}
