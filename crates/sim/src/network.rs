//! Message delays, loss and partitions, drawn from the simulation's one RNG.

use crate::config::{DelayModel, NetworkConfig};
use bft_core::{NodeId, Time};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// One end of a link: a replica, or the clients (who all sit together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Replica(NodeId),
    Clients,
}

/// Delay of one message, or `None` if it is lost or cut by a partition.
/// Loss (the network's `loss`, then a region matrix's per-link `loss`) and
/// partitions apply to replica-to-replica traffic only: the load
/// generator's clients are not the system under test. Each loss probability
/// draws from the RNG only when it is above zero, so a matrix without loss
/// replays the same trace as before.
pub fn transit(
    net: &NetworkConfig,
    rng: &mut ChaCha8Rng,
    now: Time,
    from: Endpoint,
    to: Endpoint,
) -> Option<Duration> {
    if let (Endpoint::Replica(a), Endpoint::Replica(b)) = (from, to) {
        if net.loss > 0.0 && rng.gen_bool(net.loss) {
            return None;
        }
        if let DelayModel::Regions(m) = &net.delay {
            let p = m.link_loss(m.region_of(a.index()), m.region_of(b.index()));
            if p > 0.0 && rng.gen_bool(p) {
                return None;
            }
        }
        if partitioned(net, now, a, b) {
            return None;
        }
    }
    Some(delay(&net.delay, rng, from, to))
}

fn delay(model: &DelayModel, rng: &mut ChaCha8Rng, from: Endpoint, to: Endpoint) -> Duration {
    match model {
        DelayModel::Fixed(d) => *d,
        DelayModel::Uniform { min, max } => uniform(rng, *min, *max),
        DelayModel::Regions(m) => {
            let region = |e: Endpoint| match e {
                Endpoint::Replica(id) => m.region_of(id.index()),
                Endpoint::Clients => m.client_region,
            };
            let (a, b) = (region(from), region(to));
            m.one_way(a, b) + uniform(rng, Duration::ZERO, m.jitter_bound(a, b))
        }
    }
}

fn uniform(rng: &mut ChaCha8Rng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let span = u64::try_from((max - min).as_nanos()).unwrap_or(u64::MAX);
    min + Duration::from_nanos(rng.gen_range(0..=span))
}

/// True if a partition active at `now` puts `a` and `b` in different groups.
fn partitioned(net: &NetworkConfig, now: Time, a: NodeId, b: NodeId) -> bool {
    net.partitions.iter().any(|p| {
        let active = now >= Time::from_duration(p.start) && now < Time::from_duration(p.end);
        let group = |x: NodeId| p.groups.iter().position(|g| g.contains(&x));
        active && group(a) != group(b)
    })
}
