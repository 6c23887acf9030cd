//! A replica restarted from its store: how soon it commits again and how
//! fast it gains on the cluster, per protocol, in the simulator.
//!
//! Replica 2 of 4 (not the first leader) crashes at t = 1 s and restarts
//! from what it had written at 1 s + DOWN. Sampled every millisecond of
//! virtual time after the restart:
//! - *first commit*: from the restart to the first slot it commits;
//! - *caught up*: from the restart to when its committed slot reaches the
//!   slowest other replica's at that moment;
//! - *catch-up rate*: the slots it gained over that time, per second;
//! - *cluster rate*: the slots replica 0 committed over the same time, per
//!   second; the ratio is how many times faster the lagging replica moves
//!   than the tip.
//!
//! `cargo run --release -p bftbench --example restart [RATE] [DOWN_MS]`
//! (defaults 5000 tx/s and 1000 ms): model crypto with the default cost
//! profile (store writes charged, fsync never), uniform 1-5 ms links,
//! 128-byte requests open loop from 16 clients, batches of up to 100 or
//! 5 ms. Deterministic: the same command prints the same table.

use bft_core::{Adversarial, NodeId, Time};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const CRASH_AT: Duration = Duration::from_secs(1);
const STEP: Duration = Duration::from_millis(1);
const HORIZON: Duration = Duration::from_secs(20);
const LAGGING: NodeId = NodeId(2);

struct Recovery {
    behind_at_restart: u64,
    first_commit: Option<Duration>,
    caught_up: Option<Duration>,
    catch_up_rate: f64,
    cluster_rate: f64,
    violations: usize,
}

fn scenario(protocol: ProtocolName, rate: f64, down: Duration) -> anyhow::Result<Scenario> {
    let text = format!("protocol = \"{protocol}\"\nnodes = 4\nseed = 1\nduration = \"10m\"\n");
    let mut s = Scenario::parse(&text, Path::new("restart.toml"))?;
    s.load = LoadConfig::open(rate, 16, 128);
    s.batch = bft_core::BatchConfig {
        max_size: 100,
        max_delay: Duration::from_millis(5),
    };
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    s.faults = vec![Fault {
        node: LAGGING,
        kind: FaultKind::Crash { amnesia: false },
        start: CRASH_AT,
        end: Some(CRASH_AT + down),
    }];
    Ok(s)
}

fn recover<P: Adversarial>(
    s: &Scenario,
    proto: P::Config,
    down: Duration,
) -> anyhow::Result<Recovery> {
    let mut sim = Simulation::<P>::new(sim_config(s), proto)?;
    let committed = |sim: &Simulation<P>, id: u16| sim.node(NodeId(id)).status().committed;
    let others = |sim: &Simulation<P>| {
        [0u16, 1, 3]
            .map(|i| committed(sim, i))
            .into_iter()
            .min()
            .unwrap_or(0)
    };
    let restart = Time::from_duration(CRASH_AT + down);
    sim.run_until(restart);
    let mut t = restart.saturating_add(STEP);
    sim.run_until(t);
    let (resumed, tip0) = (committed(&sim, LAGGING.0), committed(&sim, 0));
    let behind_at_restart = others(&sim).saturating_sub(resumed);
    let (mut first_commit, mut caught_up) = (None, None);
    let horizon = Time::from_duration(CRASH_AT + down + HORIZON);
    while t < horizon && caught_up.is_none() {
        t = t.saturating_add(STEP);
        sim.run_until(t);
        let mine = committed(&sim, LAGGING.0);
        if first_commit.is_none() && mine > resumed {
            first_commit = Some(t.since(restart));
        }
        if mine >= others(&sim) {
            caught_up = Some(t.since(restart));
        }
    }
    let span = t.since(restart).as_secs_f64();
    let gained = committed(&sim, LAGGING.0).saturating_sub(resumed) as f64;
    let cluster = committed(&sim, 0).saturating_sub(tip0) as f64;
    Ok(Recovery {
        behind_at_restart,
        first_commit,
        caught_up,
        catch_up_rate: gained / span,
        cluster_rate: cluster / span,
        violations: sim.report().violations.len(),
    })
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().map_or(Ok(5000.0), |a| a.parse())?;
    let down = Duration::from_millis(args.next().map_or(Ok(1000), |a| a.parse())?);
    println!(
        "rate {rate} tx/s, replica 2 of 4 down {} ms from t = 1 s",
        down.as_millis()
    );
    println!(
        "| protocol | slots behind at restart | first commit | caught up | catch-up rate | cluster rate | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for protocol in [
        ProtocolName::Pbft,
        ProtocolName::Qbft,
        ProtocolName::Hotstuff,
    ] {
        let s = scenario(protocol, rate, down)?;
        let r = bftbench::with_protocol!(protocol, P => recover::<P>(&s, P::config(&s), down))?;
        anyhow::ensure!(r.violations == 0, "{protocol}: the oracle found violations");
        // No ratio when the cluster committed nothing meanwhile (waiting
        // out a round the crashed replica should have led).
        let ratio = if r.cluster_rate > 0.0 {
            format!("{:.1}", r.catch_up_rate / r.cluster_rate)
        } else {
            "– (cluster idle)".into()
        };
        println!(
            "| {protocol} | {} | {} | {} | {:.0} slots/s | {:.0} slots/s | {ratio} |",
            r.behind_at_restart,
            ms(r.first_commit),
            ms(r.caught_up),
            r.catch_up_rate,
            r.cluster_rate,
        );
    }
    Ok(())
}
