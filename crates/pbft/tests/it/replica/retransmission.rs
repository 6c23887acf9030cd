//! Retransmission bounds and the configuration table.

use super::*;

#[test]
fn config_is_the_pbft_table_and_impossible_values_name_their_key() {
    let cfg: PbftConfig =
        toml::from_str("checkpoint_interval = 64\nwindow = 128\nview_change_timeout = \"150ms\"")
            .unwrap();
    assert_eq!(cfg.checkpoint_interval, 64);
    assert_eq!(cfg.window, 128);
    assert_eq!(cfg.view_change_timeout, Duration::from_millis(150));
    assert_eq!(cfg.pool_capacity, PbftConfig::default().pool_capacity);
    assert!(
        toml::from_str::<PbftConfig>("windw = 3").is_err(),
        "unknown key"
    );
    assert_eq!(
        <Pbft as Protocol>::check_config(&PbftConfig::default()),
        Ok(())
    );
    let bad = |c: PbftConfig| <Pbft as Protocol>::check_config(&c).unwrap_err().key;
    let d = PbftConfig::default;
    assert_eq!(
        bad(PbftConfig {
            window: 10,
            checkpoint_interval: 20,
            ..d()
        }),
        "window"
    );
    assert_eq!(
        bad(PbftConfig {
            checkpoint_interval: 0,
            ..d()
        }),
        "checkpoint_interval"
    );
    assert_eq!(
        bad(PbftConfig {
            view_change_timeout: Duration::ZERO,
            ..d()
        }),
        "view_change_timeout"
    );
    assert_eq!(
        bad(PbftConfig {
            pool_capacity: 0,
            ..d()
        }),
        "pool_capacity"
    );
}

/// The rate limit on NEW-VIEW answers: with timeout T = 200 ms, the k-th
/// answer to one requester comes at least T·2^k after the one before, so in
/// a 10 s view answers go out at 0, 0.2, 0.6, 1.4, 3.0 and 6.2 s: six,
/// however often it asks (here every 10 ms, a thousand times); at most
/// 1 + log2(1 + D/T) in a view of length D. Only the
/// primary answers a stale normal-case message with its NEW-VIEW; a backup
/// that accepted it relays it only to a replica that asks (its VIEW-CHANGE
/// for the current view, again).
#[test]
fn a_replica_asking_every_10_ms_draws_logarithmically_many_new_views() {
    let s = Signer::new(4, CryptoKind::Real);
    let v: Vec<_> = [0u16, 1, 3]
        .iter()
        .map(|&i| s.view_change(i, 1, vec![]))
        .collect();
    let nv = new_view(&s, 1, v, vec![]);
    let start = Time::from_duration(Duration::from_secs(1));
    let d = batch_digest(&[request(1, 0)]);
    let stale = PbftMessage::Prepare(s.prepare(3, 0, 1, d));
    let ask = PbftMessage::ViewChange(s.view_change(3, 1, vec![]));

    // Backup 2 holds NEW-VIEW(1), relayed: stale PREPAREs draw nothing.
    let mut backup = s.replica(2, &cfg(), ONE);
    assert_eq!(
        feed(&mut backup, msg(1, PbftMessage::NewView(nv.clone()))).1,
        None
    );
    assert_eq!(flood(&mut backup, start, 3, &stale), (0, false));
    // Repeated VIEW-CHANGE(1)s ask for it: six answers in 10 s.
    let mut backup = s.replica(2, &cfg(), ONE);
    assert_eq!(
        feed(&mut backup, msg(1, PbftMessage::NewView(nv.clone()))).1,
        None
    );
    assert_eq!(flood(&mut backup, start, 3, &ask), (6, false));

    // Primary 1 of view 1, once it sent NEW-VIEW(1): stale PREPAREs draw
    // its NEW-VIEW. It changed view itself (joining on f+1 VIEW-CHANGEs), so
    // its timeout doubled to T = 400 ms: answers at 0, 0.4, 1.2, 2.8 and
    // 6.0 s, five.
    let mut primary = s.replica(1, &cfg(), ONE);
    for i in [0u16, 2, 3] {
        let vc = s.view_change(i, 1, vec![]);
        let _ = feed(&mut primary, msg(i, PbftMessage::ViewChange(vc)));
    }
    assert_eq!(primary.status().view, 1, "primary 1 entered view 1");
    assert_eq!(flood(&mut primary, start, 3, &stale), (5, false));
}

/// A NEW-VIEW at n = 64 after a crash, as the compare suite's crashed
/// primary produces it: 2f+1 = 43 VIEW-CHANGEs, each with a prepared
/// certificate (pre-prepare and 42 PREPAREs) for the 128 slots since the
/// stable checkpoint. About 21 MB: more than the old 16 MiB frame cap, so
/// the new primary could not send it and PBFT never changed view at n = 64;
/// it must fit the frame cap.
#[test]
fn a_new_view_at_n_64_fits_in_one_frame() {
    use bft_core::codec::{DEFAULT_MAX_FRAME, encode};
    let s = Signer::new(64, CryptoKind::Model);
    let certs: Vec<_> = (1..=128)
        .map(|seq| s.cert(0, seq, vec![request(1, seq)]))
        .collect();
    let v: Vec<_> = (1..=43u16)
        .map(|i| s.view_change(i, 1, certs.clone()))
        .collect();
    let o: Vec<PrePrepare> = plan_new_view(&v)
        .entries
        .into_iter()
        .map(|(seq, digest)| s.pre_prepare_by_digest(1, seq, digest))
        .collect();
    let nv = PbftMessage::NewView(new_view(&s, 1, v, o));
    let body = encode(&nv, DEFAULT_MAX_FRAME).expect("fits one frame");
    assert!(body.len() > 16 << 20, "{} bytes", body.len());
}
