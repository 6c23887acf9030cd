//! What a Byzantine HotStuff replica does to the messages its honest core
//! emits ([`bft_core::Adversarial`]), and how long after the network heals
//! every honest replica must commit again.

use crate::config::HotStuffConfig;
use crate::replica::HotStuff;
use crate::types::Message;
use bft_core::{Adversarial, Attack, TamperContext};
use std::time::Duration;

impl Adversarial for HotStuff {
    fn tamper(attack: Attack, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
        let _ = (attack, msg, ctx);
        None
    }

    fn liveness_bound(cfg: &HotStuffConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }
}

/// Views after the heal within which the leader schedule is guaranteed to
/// contain a decisive run, for a committee of `n`.
///
/// A commit needs a direct 3-chain (Algorithm 4: b'' → b' → b with views
/// v, v+1, v+2) whose three blocks are proposed by honest leaders, plus one
/// more view whose leader forms QC(v+2) (from the votes, or from the last
/// votes carried by NEW-VIEWs when that leader is the faulty one) and
/// proposes it: 4 views. The rotation names all n members; with at most f
/// faulty, the 2f+1 honest ones of a cyclic rotation of length n fall into
/// at most f runs, so some run is ≥ ⌈(2f+1)/f⌉ ≥ 3 long. A window of 2n
/// consecutive views contains a whole cycle including any run that wraps
/// around, so 2n views then the 4 of the run itself bound the wait; one
/// more view lets replicas that were in different views at the heal
/// synchronise (every pending timer fires within one capped timeout).
pub fn decisive_views(n: usize) -> u64 {
    2 * n as u64 + 5
}

/// The liveness bound: [`decisive_views`]`(n)` views, each lasting at most
/// the capped view timer `max_view_timeout` (a view that succeeds ends
/// earlier, on its QC).
///
/// `bound = (2n + 5) · max_view_timeout`. Generous (it assumes every view
/// fails at the cap) but finite; with the defaults (30 s cap) at n = 4 it
/// is 390 s of simulated time.
pub fn liveness_bound(cfg: &HotStuffConfig, n: usize) -> Duration {
    let views = u32::try_from(decisive_views(n)).unwrap_or(u32::MAX);
    cfg.max_view_timeout.saturating_mul(views)
}
