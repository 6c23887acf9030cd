#!/usr/bin/env bash
# The test command: formatting, lints as errors, then every test in the
# workspace. The README and .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test --workspace"
cargo test --workspace --locked
scripts/netns-selftest.sh   # WAN emulation self-test; skips itself cleanly without root, ip or tc
