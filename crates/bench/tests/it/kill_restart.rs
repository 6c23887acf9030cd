//! scripts/kill-restart.sh as CI runs it: separate `bftbench node
//! --data-dir` processes over QUIC on 127.0.0.1, one killed with SIGKILL
//! mid-run and started again on its directory, for all three protocols.
//! The script checks the behaviour (resumed, committed again, no request
//! the client saw committed lost, verified ledgers, one common prefix);
//! this test fails if the script does.

use std::path::Path;
use std::process::Command;

#[test]
fn a_node_killed_with_sigkill_resumes_from_its_data_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/kill-restart.sh"))
        .env("BFTBENCH", env!("CARGO_BIN_EXE_bftbench"))
        .output()
        .expect("bash runs the script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("kill-restart: all passed (pbft qbft hotstuff)"),
        "scripts/kill-restart.sh failed:\n{stdout}\n{stderr}"
    );
    for proto in ["pbft", "qbft", "hotstuff"] {
        assert!(
            stdout.contains(&format!("[{proto}] node 2 resumed at slot")),
            "{proto}: {stdout}"
        );
    }
}
