#!/usr/bin/env bash
# A replica killed with SIGKILL mid-run and started again on its data
# directory, as a user would do it: four `bftbench node --data-dir`
# processes and one `bftbench client` on 127.0.0.1; node 2 is killed with
# SIGKILL while the load runs and started again on the same directory.
#
# It checks that the restarted node resumed from its directory and committed
# again, that the others never stopped, that every request the client saw
# committed is in all four ledgers (`bftbench ledger verify --requests`),
# and that the four ledgers are one common prefix (`bftbench ledger diff`).
# Exit 0 when all of that holds for every protocol, 1 otherwise.
#
# The outage is short by default (DOWN=1 s, with 40 ms batches: some
# 25-100 decisions), so the restarted node catches up from what its peers
# keep in memory (PBFT 256 batches below the stable checkpoint, QBFT 64
# heights, HotStuff 256 blocks). With DOWN=15 the others commit past those
# archives while it is down, and it installs a snapshot first (CI runs the
# default; bft-net's durable::*_past_the_archives_* tests cover the
# snapshot path in process). It prints the restarted node's time from its
# restart to its first commit and the snapshots it installed
# (results/recovery/README.md has the figures).
#
# Usage: scripts/kill-restart.sh [PROTOCOL...]   (default: pbft qbft hotstuff)
# Environment: BFTBENCH (the binary; default target/release/bftbench, built
# if missing), KEEP=1 keeps the work directory, RATE (default 400 tx/s),
# DOWN (seconds the node stays down, default 1; the load runs 6 s more
# than the outage and its first 3 s, at least 10 s).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${BFTBENCH:-target/release/bftbench}
if [ ! -x "$BIN" ]; then
    echo "== building $BIN"
    cargo build --release --locked -p bftbench || exit 1
fi
protocols=("$@")
[ ${#protocols[@]} -gt 0 ] || protocols=(pbft qbft hotstuff)
RATE=${RATE:-400}
DOWN=${DOWN:-1}
if ! [[ $DOWN =~ ^[0-9]+$ ]]; then
    echo "DOWN=$DOWN: expected whole seconds (0, 1, 15, ...)" >&2
    exit 2
fi
LOAD_S=$((DOWN + 9 > 10 ? DOWN + 9 : 10))
KILLED=2

work=$(mktemp -d "${TMPDIR:-/tmp}/bftbench-kill-restart.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail=0
problem() {
    echo "FAIL ($1): $2"
    fail=1
}

# Free-looking loopback ports, different for concurrent runs.
base_port=$((20000 + ($$ % 1500) * 8))

# Starts node $2 of the cluster in $1, its JSON to $3; sets node_pid[$2].
start_node() {
    "$BIN" node --cluster "$1/keys/cluster.toml" --id "$2" --scenario "$1/scenario.toml" \
        --data-dir "$1/data/node-$2" >"$3" 2>>"$1/node-$2.err" &
    pids+=($!)
    node_pid[$2]=$!
}

run_one() {
    local proto=$1 dir="$work/$1"
    mkdir -p "$dir"
    local port=$base_port
    base_port=$((base_port + 4))
    "$BIN" keygen --nodes 4 --out-dir "$dir/keys" --base-addr "127.0.0.1:$port" --seed 7 >/dev/null ||
        { problem "$proto" "keygen failed"; return; }
    cat >"$dir/scenario.toml" <<TOML
protocol = "$proto"
nodes = 4
runtime = "quic"
duration = "${LOAD_S}s"
seed = 1
crypto = "real"

[load]
mode = "open"
rate = $RATE
clients = 4
tx_size = 128

[batch]
max_size = 100
max_delay = "40ms"

# A replica learns it is behind from the CHECKPOINTs after its restart (the
# ones sent while it was down are lost): with K = 16 it learns within a
# second.
[pbft]
checkpoint_interval = 16
TOML
    node_pid=()
    for i in 0 1 2 3; do
        start_node "$dir" "$i" "$dir/node-$i.json"
    done
    sleep 1
    "$BIN" client --cluster "$dir/keys/cluster.toml" --scenario "$dir/scenario.toml" \
        --committed "$dir/committed.txt" --out "$dir/client.json" >/dev/null 2>"$dir/client.err" &
    local client=$!
    pids+=("$client")
    sleep 3
    kill -9 "${node_pid[KILLED]}"
    wait "${node_pid[KILLED]}" 2>/dev/null
    echo "[$proto] node $KILLED killed with SIGKILL at ~3 s into the load"
    sleep "$DOWN"
    start_node "$dir" "$KILLED" "$dir/node-$KILLED-restarted.json"
    echo "[$proto] node $KILLED started again on $dir/data/node-$KILLED"
    wait "$client" || problem "$proto" "the client exited non-zero (see $dir/client.err)"
    # Let the restarted node finish catching up before everyone stops.
    sleep 3
    for i in 0 1 2 3; do kill -TERM "${node_pid[i]}" 2>/dev/null; done
    for i in 0 1 2 3; do
        wait "${node_pid[i]}" || problem "$proto" "node $i exited non-zero (see $dir/node-$i.err)"
    done

    local committed
    committed=$(wc -l <"$dir/committed.txt" 2>/dev/null || echo 0)
    [ "$committed" -gt 0 ] || problem "$proto" "the client saw nothing committed"
    python3 - "$dir" "$KILLED" "$proto" <<'PY' || fail=1
import json, sys
d, killed, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ok = True
for i in range(4):
    name = f"node-{i}-restarted.json" if i == killed else f"node-{i}.json"
    node = json.load(open(f"{d}/{name}"))
    committed, resumed = node["status"]["committed"], node["resumed_at"]
    if i == killed:
        if resumed is None or resumed == 0:
            print(f"FAIL ({proto}): node {i} did not resume from its directory (resumed_at {resumed})"); ok = False
        elif committed <= resumed:
            print(f"FAIL ({proto}): node {i} resumed at {resumed} and committed nothing after"); ok = False
        else:
            first = node["first_commit_s"]
            snapshots = node.get("snapshots_installed", 0)
            print(f"[{proto}] node {i} resumed at slot {resumed}, committed up to {committed}; "
                  f"first commit {first * 1e3:.0f} ms after its restart; "
                  f"{snapshots} snapshot(s) installed")
    elif resumed is not None:
        print(f"FAIL ({proto}): node {i} restarted, but only node {killed} was killed"); ok = False
sys.exit(0 if ok else 1)
PY
    # The nodes that never stopped hold every request the client saw
    # committed. The restarted one may end a little behind: the load stops,
    # and a replica learns of the last decisions it missed only from later
    # traffic (PBFT: the next checkpoint), so it is checked for a sound
    # chain, and `ledger diff` for being a prefix of the others.
    for i in 0 1 2 3; do
        local want=(--requests "$dir/committed.txt")
        [ "$i" -ne "$KILLED" ] || want=()
        "$BIN" ledger verify "$dir/data/node-$i" --cluster "$dir/keys/cluster.toml" "${want[@]}" |
            sed "s/^/[$proto] /"
        [ "${PIPESTATUS[0]}" -eq 0 ] || problem "$proto" "ledger verify failed for node $i"
    done
    "$BIN" ledger diff "$dir"/data/node-{0,1,2,3} | sed "s/^/[$proto] /"
    [ "${PIPESTATUS[0]}" -eq 0 ] || problem "$proto" "ledger diff found a fork"
    echo "[$proto] the client saw $committed requests committed"
}

for p in "${protocols[@]}"; do
    run_one "$p"
done
if [ $fail -eq 0 ]; then echo "kill-restart: all passed (${protocols[*]})"; else echo "kill-restart: FAILED"; fi
exit $fail
