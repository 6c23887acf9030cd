//! In-process QUIC runs persist like the simulator does: by default each
//! replica writes to a data directory (a temporary one, removed after the
//! run) and the record says so; `[storage] persist = false` keeps nothing.

use bftbench::scenario::Scenario;
use std::path::Path;

fn quic(persist: bool) -> bftbench::record::Record {
    let text = format!(
        "protocol = \"qbft\"\nnodes = 4\nruntime = \"quic\"\nduration = \"5s\"\n\
         [load]\nmode = \"closed\"\nclients = 1\noutstanding = 1\ntx_size = 64\ntotal = 20\n\
         [storage]\npersist = {persist}\nfsync = \"always\"\n"
    );
    let s = Scenario::parse(&text, Path::new("quic-store.toml")).unwrap();
    bftbench::run::run(&s, &mut |_| {}).unwrap()
}

#[test]
fn a_quic_run_persists_by_default_and_the_record_says_how() {
    let r = quic(true);
    assert_eq!(r.requests_committed, 20);
    assert_eq!(
        (r.store.as_str(), r.fsync.as_deref()),
        ("redb", Some("always"))
    );
    let r = quic(false);
    assert_eq!(r.requests_committed, 20);
    assert_eq!((r.store.as_str(), r.fsync.as_deref()), ("none", None));
}
