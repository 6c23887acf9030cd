//! Recovery after the first leader crashes, per protocol and committee size.
//!
//! The figure is the *stall*: the longest stretch of virtual time in the
//! 10 s after the crash in which the slowest honest replica committed
//! nothing (HotStuff's rotation reaches the crashed leader's views only
//! every n views, and PBFT finishes the slots already pre-prepared before
//! it notices, so the stall need not start at the crash). Without a crash
//! it is the normal gap between commits. Also printed: the view/round changes
//! it took (the most any honest replica made).
//!
//! `cargo run --release -p bftbench --example recovery` prints a Markdown
//! table (model crypto with the default cost model, uniform 1–5 ms links,
//! 100 requests/s open loop in batches of up to 32, node 0 — the first
//! leader of all three protocols — crashes for good at t = 1 s). The
//! view/round changes column counts all of them in those 10 s: QBFT and
//! HotStuff rotate leaders, so the crashed node's turns keep costing one.

use bft_core::{Adversarial, NodeId, Time};
use bft_sim::{Fault, LoadConfig, NetworkConfig, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const CRASH_AT: Duration = Duration::from_secs(1);
const STEP: Duration = Duration::from_millis(1);
const HORIZON: Duration = Duration::from_secs(10);

fn scenario(protocol: ProtocolName, n: usize, crash: bool) -> anyhow::Result<Scenario> {
    let text = format!("protocol = \"{protocol}\"\nnodes = {n}\nseed = 1\nduration = \"10m\"\n");
    let mut s = Scenario::parse(&text, Path::new("recovery.toml"))?;
    s.load = LoadConfig::open(100.0, 4, 128);
    // Batches of up to 32 keep n = 64 out of saturation (PBFT's O(n²)
    // verifications per decision would otherwise queue up).
    s.batch = bft_core::BatchConfig {
        max_size: 32,
        max_delay: Duration::from_millis(5),
    };
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    if crash {
        s.faults = vec![Fault::crash(NodeId(0), CRASH_AT)];
    }
    Ok(s)
}

/// (longest stall after the crash time, view changes)
fn stall<P: Adversarial>(s: &Scenario, proto: P::Config) -> anyhow::Result<(Duration, u64)> {
    let mut sim = Simulation::<P>::new(sim_config(s), proto)?;
    let honest: Vec<NodeId> = (1..s.nodes).map(|i| NodeId(i as u16)).collect();
    let slowest = |sim: &Simulation<P>| {
        honest
            .iter()
            .map(|&id| sim.node(id).status().committed)
            .min()
            .unwrap_or(0)
    };
    let mut t = Time::from_duration(CRASH_AT);
    sim.run_until(t);
    let (mut last, mut last_change, mut longest) = (slowest(&sim), t, Duration::ZERO);
    let horizon = Time::from_duration(CRASH_AT + HORIZON);
    while t < horizon {
        t = t.saturating_add(STEP);
        sim.run_until(t);
        let now = slowest(&sim);
        if now > last {
            longest = longest.max(t.since(last_change));
            (last, last_change) = (now, t);
        }
    }
    longest = longest.max(t.since(last_change));
    Ok((longest, sim.report().view_changes))
}

fn measure(s: &Scenario) -> anyhow::Result<(Duration, u64)> {
    bftbench::with_protocol!(s.protocol, P => stall::<P>(s, P::config(s)))
}

fn main() -> anyhow::Result<()> {
    println!(
        "| protocol | n | stall after the leader crash | view/round changes | stall without a crash |"
    );
    println!("|---|---|---|---|---|");
    for protocol in [
        ProtocolName::Pbft,
        ProtocolName::Qbft,
        ProtocolName::Hotstuff,
    ] {
        for n in [4, 16, 64] {
            let (crashed, vcs) = measure(&scenario(protocol, n, true)?)?;
            let (normal, _) = measure(&scenario(protocol, n, false)?)?;
            println!(
                "| {protocol} | {n} | {:.3} s | {vcs} | {:.3} s |",
                crashed.as_secs_f64(),
                normal.as_secs_f64()
            );
        }
    }
    Ok(())
}
