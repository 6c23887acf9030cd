//! Replica-level tests: one or a few replicas driven directly through
//! `Protocol::handle` with hand-built, signed messages.

use crate::common::{ONE, Signer, broadcasts, cfg, feed, large_batch, msg, request};
use bft_core::{
    Action, CryptoKind, GENESIS, Input, NodeId, Protocol, Signature, Time, batch_digest,
};
use bft_pbft::{
    NewView, Pbft, PbftConfig, PbftMessage, PbftTimer, PrePrepare, domain, new_view_payload,
    plan_new_view,
};
use std::time::Duration;

mod checkpoints;
mod normal;
mod rejections;
mod retransmission;
mod view_change;

/// Backup 1 of a 4-replica committee in view 0 (primary 0), real crypto.
fn backup() -> (Signer, Pbft) {
    let s = Signer::new(4, CryptoKind::Real);
    let r = s.replica(1, &cfg(), ONE);
    (s, r)
}

fn new_view(s: &Signer, view: u64, v: Vec<bft_pbft::ViewChange>, o: Vec<PrePrepare>) -> NewView {
    let primary = s.primary(view);
    let sig = s.cryptos[primary.index()].sign(domain::NEW_VIEW, &new_view_payload(view, &v, &o));
    NewView {
        view,
        view_changes: v,
        pre_prepares: o,
        sig,
    }
}

/// V for view 2 (primary 2) where replica 0 prepared A at seq 1 in view 0 and
/// replica 3 prepared B at seq 1 in view 1; nobody prepared seq 2; replica 2
/// prepared C at seq 3 in view 0.
fn mixed_views() -> (Signer, Vec<bft_pbft::ViewChange>) {
    let s = Signer::new(4, CryptoKind::Real);
    let a = s.cert(0, 1, vec![request(1, 0)]);
    let b = s.cert(1, 1, vec![request(2, 0)]);
    let c = s.cert(0, 3, vec![request(3, 0)]);
    let v = vec![
        s.view_change(0, 2, vec![a]),
        s.view_change(2, 2, vec![c]),
        s.view_change(3, 2, vec![b]),
    ];
    (s, v)
}

/// NEW-VIEWs `out` sends `to` as retransmissions.
fn new_view_resends(out: &[Action<PbftMessage, PbftTimer>], to: u16) -> usize {
    out.iter()
        .filter(
            |a| matches!(a, Action::Resend { to: t, msg: PbftMessage::NewView(_) } if t.0 == to),
        )
        .count()
}

/// Delivers `m` from `from` to `r` every 10 ms for 10 s of virtual time from
/// `start`; the NEW-VIEWs `r` re-sent to `from`, and whether any was a
/// first-time send.
fn flood(r: &mut Pbft, start: Time, from: u16, m: &PbftMessage) -> (usize, bool) {
    let mut resent = 0;
    let mut fresh = false;
    for k in 0..1000u64 {
        let now = start.saturating_add(Duration::from_millis(10 * k));
        let mut out = Vec::new();
        let _ = r.handle(now, msg(from, m.clone()), &mut out);
        resent += new_view_resends(&out, from);
        fresh |= out.iter().any(|a| {
            matches!(
                a,
                Action::Send {
                    msg: PbftMessage::NewView(_),
                    ..
                }
            )
        });
    }
    (resent, fresh)
}
