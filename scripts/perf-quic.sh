#!/usr/bin/env bash
# Issue 19's loopback figures: bench-configs/perf/quic-n4.toml (n = 4 over
# QUIC on 127.0.0.1, 512-byte unsigned requests, 16 open-loop clients,
# batches of up to 2000 / 5 ms, 60 s measured after 10 s of warm-up) for
# each protocol at each rate, one run at a time, with the load average
# before each run. Records and a summary go to OUT.
#
#   scripts/perf-quic.sh                                   # 50 000 tx/s, all three
#   RATES="50000 100000" PROTOCOLS=hotstuff scripts/perf-quic.sh
#   FLAME=1 PROTOCOLS=hotstuff scripts/perf-quic.sh         # + a flame graph
#
# Settings (environment):
#   PROTOCOLS  "pbft qbft hotstuff"   RATES  "50000"   DURATION  (the file's 70s)
#   OUT        results/perf/<git revision>
#   BFTBENCH   the binary (default: builds target/release/bftbench)
#   FLAME=1    record each run with `perf record` (cpu-clock, 49 Hz, DWARF
#              call graphs) and draw OUT/<run>.svg with inferno
#              (`cargo install inferno` if it is missing)
#
# Measure on an idle machine: nothing else building or running.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOCOLS=${PROTOCOLS:-"pbft qbft hotstuff"}
RATES=${RATES:-50000}
rev=$(git rev-parse --short HEAD)
OUT=${OUT:-results/perf/$rev}
mkdir -p "$OUT"
if [ -z "${BFTBENCH:-}" ]; then
  cargo build --release -p bftbench --locked --quiet
  BFTBENCH=target/release/bftbench
fi
if [ "${FLAME:-0}" = 1 ]; then
  command -v perf >/dev/null || { echo "FLAME=1 needs perf (Debian: apt-get install linux-perf)" >&2; exit 1; }
  command -v inferno-flamegraph >/dev/null || cargo install inferno --locked --quiet
fi

summary="$OUT/summary.txt"
for proto in $PROTOCOLS; do
  for rate in $RATES; do
    name="$proto-r$rate"
    args=(run bench-configs/perf/quic-n4.toml --protocol "$proto" --rate "$rate" --out "$OUT/$name.json")
    [ -n "${DURATION:-}" ] && args+=(--duration "$DURATION")
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== $name (load average $load): $BFTBENCH ${args[*]}" | tee -a "$summary"
    if [ "${FLAME:-0}" = 1 ]; then
      perf record -e cpu-clock -F 49 --call-graph dwarf,8192 -o "$OUT/$name.perf.data" -- \
        "$BFTBENCH" "${args[@]}" > "$OUT/$name.txt"
      perf script -i "$OUT/$name.perf.data" 2>/dev/null | inferno-collapse-perf \
        | inferno-flamegraph --title "$name ($rev)" > "$OUT/$name.svg"
      rm -f "$OUT/$name.perf.data"
    else
      "$BFTBENCH" "${args[@]}" > "$OUT/$name.txt"
    fi
    grep -E "requests committed|latency ms|view changes|rejected inputs" "$OUT/$name.txt" | sed 's/^/   /' | tee -a "$summary" || true
  done
done
echo "records and summary in $OUT"
