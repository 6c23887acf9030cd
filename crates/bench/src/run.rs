//! One scenario, one run: the protocol is a generic parameter chosen from the
//! scenario's `protocol` line.

use crate::BenchError;
use crate::measure::{Measured, latency_cdf, record};
use crate::protocols::BenchProtocol;
use crate::record::{LivenessRecord, NodeRecord, Record};
use crate::scenario::{Runtime, Scenario};
use bft_core::Adversarial;
use bft_sim::{SimConfig, Simulation};
use std::time::{Duration, Instant};

/// Called with the fraction of virtual time done, so a CLI can draw progress.
pub type Progress<'a> = &'a mut dyn FnMut(f64);

/// Runs a scenario to completion and returns its record.
pub fn run(scenario: &Scenario, progress: Progress<'_>) -> Result<Record, BenchError> {
    match scenario.runtime {
        Runtime::Sim => crate::with_protocol!(scenario.protocol, P => {
            run_sim::<P>(scenario, P::config(scenario), progress)
        }),
        Runtime::Quic => crate::with_protocol!(scenario.protocol, P => {
            crate::quic::run_local::<P>(scenario, P::config(scenario))
        }),
    }
}

/// The simulator configuration a scenario describes.
pub fn sim_config(s: &Scenario) -> SimConfig {
    SimConfig {
        nodes: s.nodes,
        seed: s.seed,
        crypto: s.crypto,
        cost: s.cost,
        duration: s.duration,
        network: s.network.clone(),
        load: s.load.clone(),
        batch: s.batch,
        faults: s.faults.clone(),
        // Checked by `Scenario::validate`; an invalid table falls back to
        // round-robin rather than panicking here.
        leaders: s.leader_schedule().ok().flatten(),
        twins: s.twins.clone(),
        keep_ledgers: false,
        machine: s.machine,
        storage: s.storage,
    }
}

/// Message delays a crash bound allows on top of its timeouts and slack:
/// a leader replacement and the commit after it take a few round trips
/// (PBFT: VIEW-CHANGE, NEW-VIEW, PRE-PREPARE, PREPARE, COMMIT, reply;
/// HotStuff twice through four views), well under twenty one-way delays.
const DELAYS: u32 = 20;

/// The replicas a scenario crashes for good and the network's largest
/// one-way delay, if crashing them (benignly, without amnesia, with no
/// restart) is all its faults do and nothing else disturbs a lossless
/// fixed- or uniform-delay network: the case
/// [`bft_core::crash_recovery_bound`] bounds.
fn crashed_for_good(s: &Scenario) -> Option<(Vec<bft_core::NodeId>, Duration)> {
    if s.faults.is_empty()
        || !s.network.partitions.is_empty()
        || s.network.loss > 0.0
        || s.twins.is_some()
    {
        return None;
    }
    let delay = match &s.network.delay {
        bft_sim::DelayModel::Fixed(d) => *d,
        bft_sim::DelayModel::Uniform { max, .. } => *max,
        bft_sim::DelayModel::Regions(_) => return None,
    };
    let crashed = s
        .faults
        .iter()
        .map(|f| match f.kind {
            bft_sim::FaultKind::Crash { amnesia: false } if f.end.is_none() => Some(f.node),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((crashed, delay))
}

/// The liveness check after a crash: the commits already in flight land in
/// the first window whether or not the protocol recovers, so every honest
/// replica must commit again within `bound` of its last progress, window
/// after window from `heal` until a window would pass `end`.
pub fn check_every_window<P: Adversarial>(
    sim: &mut Simulation<P>,
    heal: bft_core::Time,
    bound: Duration,
    end: bft_core::Time,
) -> Vec<String> {
    let mut failures = sim.check_liveness(heal, bound);
    let mut from = sim.now();
    while failures.is_empty() && from.saturating_add(bound) <= end {
        failures = sim.check_liveness(from, bound);
        if sim.now() <= from {
            break;
        }
        from = sim.now();
    }
    failures
}

/// A finished simulation and its liveness verdict.
pub struct Simulated<P: Adversarial> {
    pub sim: Simulation<P>,
    pub report: bft_sim::SimReport,
    pub liveness: LivenessRecord,
}

/// Runs a scenario in the simulator: to the heal time, the liveness check
/// (when the scenario has faults and at most f of them), then to the end.
/// `bftbench run` and `bftbench fuzz` both come here, so a fuzz finding
/// replays exactly with `bftbench run`.
pub fn simulate<P: Adversarial>(
    scenario: &Scenario,
    proto: P::Config,
    progress: Progress<'_>,
) -> Result<Simulated<P>, BenchError> {
    simulate_until::<P>(scenario, proto, progress, Stop::AtDuration)
}

/// Where a simulation stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the scenario's `duration` (what `bftbench run` does).
    AtDuration,
    /// As soon as the liveness check is decided (the fuzzer: a replay with
    /// `bftbench run` runs the same events first, then more).
    AfterLivenessCheck,
}

/// [`simulate`], stopping where `stop` says.
pub fn simulate_until<P: Adversarial>(
    scenario: &Scenario,
    proto: P::Config,
    progress: Progress<'_>,
    stop: Stop,
) -> Result<Simulated<P>, BenchError> {
    let mut sim = Simulation::<P>::new(sim_config(scenario), proto.clone())?;
    let leaders = sim.committee().leaders().clone();
    let crash = crashed_for_good(scenario).and_then(|(crashed, delay)| {
        bft_core::crash_recovery_bound::<P>(&proto, &leaders, &crashed)
            .map(|(bound, rule)| (bound.saturating_add(delay * DELAYS), rule, delay))
    });
    let every_window = crash.is_some();
    let (bound, rule) = match crash {
        Some((bound, rule, delay)) => (
            bound,
            format!(
                "{rule} + {DELAYS} × the network's largest one-way delay {delay:?}; checked in every window to the end"
            ),
        ),
        None => (
            P::liveness_bound_for(&proto, scenario.nodes, &leaders),
            format!(
                "any f faults: {}'s worst-case bound from its capped timeouts",
                P::NAME
            ),
        ),
    };
    let end = bft_core::Time::from_duration(scenario.duration);
    let heal = sim.heal_time();
    let mut liveness = LivenessRecord {
        heal_s: heal.as_secs_f64(),
        bound_s: bound.as_secs_f64(),
        rule,
        ..LivenessRecord::default()
    };
    let disturbed = !scenario.faults.is_empty()
        || !scenario.network.partitions.is_empty()
        || scenario.twins.is_some();
    liveness.skipped = if !disturbed {
        "no fault or partition to heal from".into()
    } else if let Some(k) = scenario.faulty_beyond_f() {
        format!("{k} faulty nodes, more than f = {}", scenario.f())
    } else if heal.saturating_add(bound) > end {
        format!(
            "duration {:?} is shorter than heal {:?} + bound {bound:?}",
            scenario.duration,
            heal.as_duration()
        )
    } else {
        String::new()
    };
    if liveness.skipped.is_empty() {
        liveness.checked = true;
        liveness.failures = if every_window {
            check_every_window(&mut sim, heal, bound, end)
        } else {
            sim.check_liveness(heal, bound)
        };
    }
    const STEPS: u32 = 100;
    let steps = match stop {
        Stop::AfterLivenessCheck if liveness.checked => 0,
        _ => STEPS,
    };
    for step in 1..=steps {
        sim.run_until(bft_core::Time::from_duration(
            scenario.duration * step / STEPS,
        ));
        progress(f64::from(step) / f64::from(STEPS));
    }
    let report = sim.report();
    Ok(Simulated {
        sim,
        report,
        liveness,
    })
}

fn run_sim<P: Adversarial>(
    scenario: &Scenario,
    proto: P::Config,
    progress: Progress<'_>,
) -> Result<Record, BenchError> {
    let started = Instant::now();
    let Simulated {
        sim,
        report: r,
        liveness,
    } = simulate::<P>(scenario, proto, progress)?;

    let measured = Measured {
        runtime: "sim",
        stats: r.stats.clone(),
        decisions: r.max_decisions,
        empty_decisions: r
            .nodes
            .iter()
            .filter(|n| !n.byzantine)
            .max_by_key(|n| n.status.committed)
            .map_or(0, |n| n.empty_decisions),
        requests_issued: r.requests_issued,
        rejected_requests: r.requests_rejected,
        requests_committed: r.requests_committed,
        duration_s: r.end_time.as_secs_f64(),
        throughput_tx_s: r.throughput(scenario.load.warmup),
        latency: r.latency,
        latency_cdf: latency_cdf(sim.latency_histogram()),
        client_messages: r.client_messages,
        client_bytes: r.client_bytes,
        view_changes: r.view_changes,
        replacements: Some(r.replacements),
        violations: r.violations.clone(),
        liveness: Some(liveness),
        nodes: r
            .nodes
            .iter()
            .map(|n| NodeRecord {
                id: n.id.0,
                view: n.status.view,
                committed: n.status.committed,
                view_changes: n.status.view_changes,
                retained: n.status.retained,
                messages_sent: n.sent.count,
                bytes_sent: n.sent.bytes,
                rejected: n.rejected,
                cpu_s: n.cpu.as_secs_f64(),
                faulty: n.faulty,
                byzantine: n.byzantine,
            })
            .collect(),
        events: r.events,
        trace_hash: r.trace_hash.0.iter().map(|b| format!("{b:02x}")).collect(),
        catch_up_kinds: P::CATCH_UP_KINDS,
        store: "model",
        fsync: Some(scenario.storage.fsync.as_str()),
        peak_rss_bytes: None,
        start_rss_bytes: None,
        series: sim.series(),
        wall: started.elapsed(),
    };
    Ok(record(scenario, measured))
}

/// A short human summary of a record.
pub fn summary(r: &Record) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<24}{v}\n"));
    out.push_str(&format!(
        "{} n={} f={} runtime={} crypto={} seed={}\n",
        r.protocol, r.n, r.f, r.runtime, r.crypto, r.seed
    ));
    line(
        &mut out,
        "decisions",
        format!("{} ({:.1}/s)", r.decisions, r.decisions_per_s),
    );
    line(
        &mut out,
        "requests committed",
        format!(
            "{} of {} issued ({:.0} tx/s)",
            r.requests_committed, r.requests_issued, r.throughput_tx_s
        ),
    );
    let l = &r.latency_ms;
    line(
        &mut out,
        "latency ms",
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        ),
    );
    line(
        &mut out,
        "per decision",
        format!(
            "{:.2} messages, {:.0} bytes",
            r.messages_per_decision, r.bytes_per_decision
        ),
    );
    for (kind, k) in &r.messages_by_kind {
        line(
            &mut out,
            &format!("  {kind}"),
            format!(
                "{:>10.2} msgs/decision {:>12.0} B/decision",
                k.per_decision, k.bytes_per_decision
            ),
        );
    }
    let vc = match (r.view_changes, r.view_change_s) {
        (Some(k), Some(s)) => format!("{k} (mean {:.0} ms)", s * 1e3),
        (Some(k), None) => k.to_string(),
        (None, _) => format!(
            "{} by the protocol's own counter (leader replacements are timed in the simulator only)",
            r.protocol_view_changes
        ),
    };
    line(&mut out, "view changes", vc);
    if r.rejected_requests > 0 {
        line(
            &mut out,
            "rejected requests",
            format!(
                "{} refused at the client edge ([load] max_pending)",
                r.rejected_requests
            ),
        );
    }
    if let Some(bytes) = r.peak_rss_bytes {
        line(&mut out, "peak memory", {
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            let start = r
                .start_rss_bytes
                .map(|s| format!("; {:.1} MiB at the start", mib(s)))
                .unwrap_or_default();
            format!("{:.1} MiB resident (the whole process{start})", mib(bytes))
        });
    }
    let rejected: u64 = r.rejected.values().sum();
    line(
        &mut out,
        "rejected inputs",
        format!("{rejected} {:?}", r.rejected),
    );
    let verdict = if r.runtime != "sim" {
        "not checked here (the oracle runs in the simulator)".to_string()
    } else if r.safety_violations.is_empty() {
        "safe (oracle: no violation)".to_string()
    } else {
        format!(
            "{} VIOLATIONS, first: {}",
            r.safety_violations.len(),
            r.safety_violations[0]
        )
    };
    line(&mut out, "safety", verdict);
    if let Some(l) = &r.liveness {
        let verdict = if !l.checked {
            format!("not checked ({})", l.skipped)
        } else if l.failures.is_empty() {
            format!(
                "live (every honest node committed within {:.2}s of the heal at {:.2}s)",
                l.bound_s, l.heal_s
            )
        } else {
            format!("VIOLATED: {}", l.failures[0])
        };
        line(&mut out, "liveness", verdict);
    }
    line(
        &mut out,
        "wall time",
        format!("{:.2}s ({} events)", r.wall_s, r.events),
    );
    out
}
