//! State sync from any distance, measured: a replica cut off for 60 s of
//! virtual time under load (5 000 tx/s unless told), per protocol (the setting of the test
//! `conformance::state_sync`: n = 4, model crypto with the default cost
//! model, 1–5 ms links, batches of up to 1 000 cut every 5 ms, node 0 the
//! favoured leader, node 3 cut off from 1 s to 61 s, load until 66 s).
//!
//! Printed per protocol (all virtual time, stepped by 10 ms after the heal):
//! how far behind the replica was at the heal (slots); how long after the
//! heal it reached the tip the others had at the heal (the backlog), and
//! so the catch-up rate, slots gained on the cluster per second, against
//! the cluster's own commit rate during the partition; when it was first
//! at the cluster's tip; the snapshots it installed; and the catch-up
//! traffic of all four replicas (`Protocol::CATCH_UP_KINDS`).
//!
//! `cargo run --release -p bftbench --example state_sync [-- RATE |
//! PROTOCOL=RATE ...]` prints a Markdown table: at 5 000 tx/s, at RATE
//! for every protocol, or each named protocol at its own rate (issue 18's
//! aim is taken at half each protocol's saturation rate in this setting,
//! `bftbench saturate bench-configs/recovery/state-sync.toml`).

use anyhow::Context;
use bft_core::{BatchConfig, NodeId, Time};
use bft_sim::{LoadConfig, NetworkConfig, Partition, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{LeadersTable, Placement, ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const CUT: Duration = Duration::from_secs(1);
const HEAL: Duration = Duration::from_secs(61);
const LOAD_ENDS: u64 = 66;
const STEP: Duration = Duration::from_millis(10);
const ME: NodeId = NodeId(3);

const DEFAULT_RATE: u64 = 5_000;

fn scenario(protocol: ProtocolName, rate: u64) -> anyhow::Result<Scenario> {
    let text = format!("protocol = \"{protocol}\"\nnodes = 4\nseed = 11\nduration = \"90s\"\n");
    let mut s = Scenario::parse(&text, Path::new("state-sync.toml"))?;
    s.load = LoadConfig::open(rate as f64, 16, 64)
        .unsigned()
        .with_total(rate * LOAD_ENDS);
    s.batch = BatchConfig {
        max_size: 1_000,
        max_delay: Duration::from_millis(5),
    };
    s.leaders = Some(LeadersTable {
        placement: Placement::Fixed,
        node: Some(NodeId(0)),
        weight: Some(1_000),
        prefix: Vec::new(),
    });
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    s.network
        .partitions
        .push(Partition::between(CUT, HEAL, &[&[ME.0]]));
    Ok(s)
}

struct Row {
    behind: u64,
    cluster_rate: f64,
    backlog_s: Option<f64>,
    at_tip_s: Option<f64>,
    snapshots: u64,
    catch_up: (u64, u64),
}

fn measure<P: BenchProtocol>(s: &Scenario) -> anyhow::Result<Row> {
    let mut sim = Simulation::<P>::new(sim_config(s), P::config(s))?;
    let slot = |sim: &Simulation<P>, id: NodeId| sim.node(id).status().committed;
    let others = |sim: &Simulation<P>| (0..3).map(|i| slot(sim, NodeId(i))).max().unwrap_or(0);
    sim.run_until(Time::from_duration(CUT));
    let at_cut = others(&sim);
    sim.run_until(Time::from_duration(HEAL));
    let tip_at_heal = others(&sim);
    let mine_at_heal = slot(&sim, ME);
    let (mut backlog_s, mut at_tip_s) = (None, None);
    let mut t = HEAL;
    while t < Duration::from_secs(90) && (backlog_s.is_none() || at_tip_s.is_none()) {
        t += STEP;
        sim.run_until(Time::from_duration(t));
        let mine = slot(&sim, ME);
        let since = (t - HEAL).as_secs_f64();
        if backlog_s.is_none() && mine >= tip_at_heal {
            backlog_s = Some(since);
        }
        if at_tip_s.is_none() && mine >= others(&sim) {
            at_tip_s = Some(since);
        }
    }
    sim.run();
    let mut catch_up = (0, 0);
    for i in 0..4 {
        let stats = sim.node(NodeId(i)).stats();
        for kind in P::CATCH_UP_KINDS {
            if let Some(k) = stats.sent.get(kind) {
                catch_up.0 += k.count;
                catch_up.1 += k.bytes;
            }
        }
    }
    Ok(Row {
        behind: tip_at_heal.saturating_sub(mine_at_heal),
        cluster_rate: (tip_at_heal - at_cut) as f64 / (HEAL - CUT).as_secs_f64(),
        backlog_s,
        at_tip_s,
        snapshots: sim.node(ME).stats().snapshots_installed,
        catch_up,
    })
}

fn secs(s: Option<f64>) -> String {
    s.map_or("never".into(), |s| format!("{s:.2} s"))
}

/// Each protocol's offered rate from the arguments: none (all at
/// [`DEFAULT_RATE`]), one number (all at it), or `PROTOCOL=RATE` pairs
/// (only those protocols).
fn rates(args: &[String]) -> anyhow::Result<Vec<(ProtocolName, u64)>> {
    let all = ProtocolName::ALL;
    match args {
        [] => Ok(all.map(|p| (p, DEFAULT_RATE)).to_vec()),
        [rate] if !rate.contains('=') => {
            let rate = rate.parse().with_context(|| format!("rate {rate:?}"))?;
            Ok(all.map(|p| (p, rate)).to_vec())
        }
        pairs => pairs
            .iter()
            .map(|pair| {
                let (name, rate) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair:?}: expected PROTOCOL=RATE"))?;
                let protocol = name.parse().map_err(anyhow::Error::msg)?;
                let rate = rate.parse().with_context(|| format!("rate {rate:?}"))?;
                Ok((protocol, rate))
            })
            .collect(),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rates = rates(&args)?;
    println!(
        "| protocol | offered (tx/s) | behind at the heal (slots) | cluster commits (slots/s) | backlog caught up after | catch-up rate (slots/s gained) | ratio | first at the tip after | snapshots installed | catch-up messages | catch-up bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (protocol, offered) in rates {
        let s = scenario(protocol, offered)?;
        let r = bftbench::with_protocol!(protocol, P => measure::<P>(&s))?;
        // Gained on the tip: the backlog in the time it took, less what
        // the cluster added meanwhile is already in "reached the tip of
        // the heal"; the rate is the backlog over that time.
        let rate = r
            .backlog_s
            .map(|t| r.behind as f64 / t.max(STEP.as_secs_f64()));
        println!(
            "| {protocol} | {offered} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            r.behind,
            r.cluster_rate,
            secs(r.backlog_s),
            rate.map_or("–".into(), |x| format!("{x:.0}")),
            rate.map_or("–".into(), |x| format!("{:.1}×", x / r.cluster_rate)),
            secs(r.at_tip_s),
            r.snapshots,
            r.catch_up.0,
            r.catch_up.1,
        );
    }
    Ok(())
}
