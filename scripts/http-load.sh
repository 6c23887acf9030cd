#!/usr/bin/env bash
# One rate three ways, side by side:
#  1. load from a tool nobody here wrote: oha, at a fixed rate (open loop,
#     --latency-correction), POSTs transactions to node 0's HTTP ingress
#     (`bftbench node --http`) of four `bftbench node` processes on 127.0.0.1;
#  2. a fresh cluster of the same four processes takes the same rate from
#     bftbench's own client, a fifth process (`bftbench client`);
#  3. the same scenario in one process (`bftbench run --runtime quic`), the
#     figure the separate processes are compared with (issue 19: within
#     15 %).
# The latency distributions and throughputs are printed in one table and
# kept in OUT with every output they come from.
#
# What differs between the two, by design: oha's transactions enter at one
# replica, which signs them with its key and forwards them to the three
# others, and oha's latency ends when that replica commits; bftbench's client
# sends each request to all four itself and its latency ends at f+1 replies.
# oha counts its warm-up apart (a first run of WARMUP, discarded), as the
# client's record does (the scenario's warm-up).
#
# Usage: scripts/http-load.sh [PROTOCOL]          (default hotstuff)
# Environment:
#   RATE        transactions per second           (default 5000)
#   DURATION    measured seconds                  (default 30)
#   WARMUP      seconds before measuring          (default 10)
#   CONNECTIONS oha's connections (each carries one request at a time;
#               need about RATE x latency)        (default 1000)
#   SCENARIO    the scenario (protocol, batch, signed) (default bench-configs/perf/quic-n4.toml)
#   OUT         where the outputs go              (default results/http/<git revision>)
#   BFTBENCH    the binary (default: target/release/bftbench, built if missing)
#   OHA         oha (default: on PATH, or installed with `cargo install oha --locked`)
#   STEPS       which of the three to run         (default "oha client inprocess")
# Measure on an idle machine: nothing else building or running.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTO=${1:-hotstuff}
RATE=${RATE:-5000}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-10}
CONNECTIONS=${CONNECTIONS:-1000}
SCENARIO=${SCENARIO:-bench-configs/perf/quic-n4.toml}
rev=$(git rev-parse --short HEAD)
OUT=${OUT:-results/http/$rev}
BIN=${BFTBENCH:-target/release/bftbench}
if [ ! -x "$BIN" ]; then
    echo "== building $BIN"
    cargo build --release --locked -p bftbench
fi
OHA=${OHA:-$(command -v oha || true)}
if [ -z "$OHA" ]; then
    echo "== installing oha (cargo install oha --locked; a few minutes)"
    cargo install oha --locked --quiet
    OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
fi
mkdir -p "$OUT"

work=$(mktemp -d "${TMPDIR:-/tmp}/bftbench-http.XXXXXX")
pids=()
cleanup() {
    for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
# Stops with the nodes' logs kept beside the results.
fail() {
    echo "FAIL: $1" >&2
    for e in "$work"/*/node-*.err; do
        [ -f "$e" ] && cp "$e" "$OUT/$(basename "$(dirname "$e")")-$(basename "$e")"
    done
    echo "node logs copied to $OUT" >&2
    exit 1
}
trap cleanup EXIT

case "$PROTO" in pbft|qbft|hotstuff) ;; *) echo "unknown protocol $PROTO" >&2; exit 2 ;; esac
# oha keeps CONNECTIONS sockets open, each node a few more.
ulimit -n "$(( $(ulimit -Hn) < 65536 ? $(ulimit -Hn) : 65536 ))" 2>/dev/null || true
# The scenario with this protocol, rate and duration (the client's warm-up
# plus measured window).
total=$((WARMUP + DURATION))
sed -e "s/^protocol = .*/protocol = \"$PROTO\"/" \
    -e "s/^rate = .*/rate = $RATE/" \
    -e "s/^duration = .*/duration = \"${total}s\"/" \
    -e "s/^warmup = .*/warmup = \"${WARMUP}s\"/" \
    "$SCENARIO" >"$work/scenario.toml"
"$BIN" validate "$work/scenario.toml" >/dev/null
tx_size=$(sed -n 's/^tx_size = \([0-9]*\).*/\1/p' "$work/scenario.toml")
head -c "${tx_size:-512}" /dev/urandom >"$work/tx.bin"

# Loopback ports of this run (different for concurrent runs); a port in use
# makes a node fail, which the readiness check below reports.
base_port=$((21000 + ($$ % 1000) * 8))
http_port=$((base_port + 4))

# Starts four nodes on fresh keys; node 0 serves the ingress when $2 = http.
start_cluster() {
    local dir=$1 mode=$2
    rm -rf "$dir"
    mkdir -p "$dir"
    "$BIN" keygen --nodes 4 --out-dir "$dir/keys" --base-addr "127.0.0.1:$base_port" >/dev/null
    pids=()
    for i in 0 1 2 3; do
        local extra=(--out "$dir/node-$i.json")
        [ "$mode" = http ] && [ "$i" = 0 ] && extra+=(--http "127.0.0.1:$http_port")
        "$BIN" node --cluster "$dir/keys/cluster.toml" --id "$i" --scenario "$work/scenario.toml" \
            "${extra[@]}" >/dev/null 2>"$dir/node-$i.err" &
        pids+=($!)
    done
}

# Every node still running, or the run fails.
check_alive() {
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a node exited: $1"; done
}

stop_cluster() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== $PROTO at $RATE tx/s, $DURATION s measured after $WARMUP s; scenario $SCENARIO; oha $("$OHA" --version | head -1)"
summary="$OUT/$PROTO-r$RATE.txt"
: >"$summary"
STEPS=${STEPS:-"oha client inprocess"}
step() { [[ " $STEPS " == *" $1 "* ]]; }
oha_out="$OUT/$PROTO-r$RATE.oha.json"
node_out="$OUT/$PROTO-r$RATE.ingress-node.json"
client_out="$OUT/$PROTO-r$RATE.client.json"
inproc="$OUT/$PROTO-r$RATE.inprocess.json"
for f in "$oha_out" "$node_out" "$client_out" "$inproc"; do echo '{}' >"$f"; done

# 1. oha against node 0's ingress.
if step oha; then
start_cluster "$work/http" http
ready=0
for _ in $(seq 100); do
    if curl -sf --max-time 5 -o /dev/null -X POST --data-binary @"$work/tx.bin" \
        "http://127.0.0.1:$http_port/submit"; then
        ready=1
        break
    fi
    sleep 0.2
done
[ "$ready" = 1 ] || fail "node 0's ingress committed nothing within a minute"
check_alive "before oha's run"
oha_args=(-q "$RATE" --latency-correction -c "$CONNECTIONS" -m POST -D "$work/tx.bin"
    --no-tui --output-format json "http://127.0.0.1:$http_port/submit")
"$OHA" -z "${WARMUP}s" "${oha_args[@]}" >/dev/null
echo "oha: load average $(load) before the measured run" | tee -a "$summary"
/usr/bin/time -f "oha used %U s user + %S s system CPU over the measured run" -a -o "$summary" \
    "$OHA" -z "${DURATION}s" "${oha_args[@]}" >"$oha_out"
check_alive "during oha's run"
stop_cluster
cp "$work/http/node-0.json" "$node_out"
sleep 2
fi

# 2. bftbench's own client against a fresh cluster.
if step client; then
start_cluster "$work/client" client
sleep 2
check_alive "before the client's run"
echo "bftbench client: load average $(load) before the run" | tee -a "$summary"
"$BIN" client --cluster "$work/client/keys/cluster.toml" --scenario "$work/scenario.toml" \
    --record "$OUT/$PROTO-r$RATE.client-record.json" >"$client_out" ||
    fail "bftbench client failed"
check_alive "during the client's run"
stop_cluster
sleep 2
fi

# 3. In one process.
if step inprocess; then
    echo "in process: load average $(load) before the run" | tee -a "$summary"
    "$BIN" run "$work/scenario.toml" --out "$inproc" >/dev/null
fi

python3 - "$oha_out" "$client_out" "$node_out" "$inproc" "$RATE" "$DURATION" <<'PY' | tee -a "$summary"
import json, sys
oha, client, node, inproc = (json.load(open(p)) for p in sys.argv[1:5])
rate, duration = int(sys.argv[5]), float(sys.argv[6])
ok = oha.get("statusCodeDistribution", {}).get("200", 0)
# oha's percentiles are over every response, refusals (503/504) included.
lat = {k: (v if v is not None else float("nan")) for k, v in oha.get("latencyPercentiles", {}).items()}
print(f"offered {rate} tx/s over {duration:.0f} s")
print(f"{'load':<18}{'completed tx/s':>15}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}")
if oha:
    print(f"{'oha -> ingress':<18}{ok / duration:>15.0f}" + "".join(
        f"{1e3 * lat.get(k, float('nan')):>10.1f}" for k in ("p50", "p90", "p99", "p99.9")))
if client:
    c = client["latency_ms"]
    print(f"{'bftbench client':<18}{client['throughput_tx_s']:>15.0f}" + "".join(
        f"{c[k]:>10.1f}" for k in ("p50", "p90", "p99", "p999")))
if inproc:
    tput, m = inproc["throughput_tx_s"], inproc["latency_ms"]
    print(f"{'in one process':<18}{tput:>15.0f}" + "".join(
        f"{m[k]:>10.1f}" for k in ("p50", "p90", "p99", "p999")))
if inproc and client:
    print(f"separate processes / one process: throughput {client['throughput_tx_s'] / tput:.3f}, "
          f"p50 {c['p50'] / m['p50']:.2f}x, p99 {c['p99'] / m['p99']:.2f}x")
if oha:
    print("oha status codes:", oha.get("statusCodeDistribution"), "errors:", oha.get("errorDistribution"))
    print("ingress node 0: answers", node.get("http"), "forwarded", node.get("forwarded_requests"),
          "dropped forwards", node.get("dropped_forwards"), "status", node.get("status"),
          "rejected", node.get("rejected"))
PY
echo "== written to $OUT"
