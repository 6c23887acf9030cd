#!/usr/bin/env bash
# A fuzz campaign with fresh seeds: `bftbench fuzz` for each protocol, committee
# size and mode, one run each, a line per run appended to
# results/fuzz/campaigns.csv. CI's fuzz tests use fixed seeds so CI is
# deterministic; only seeds nobody has used before can find the next bug, so
# every run here draws a new one (from /dev/urandom, never one already in the
# CSV) and records it, so any line can be re-run exactly.
#
#   scripts/fuzz-campaign.sh                       # the whole campaign (hours)
#   PROTOCOLS=hotstuff NODES=4 MODES=faults SCENARIOS=100000 scripts/fuzz-campaign.sh
#
# Settings (environment):
#   PROTOCOLS  pbft,qbft,hotstuff      NODES  4,7      MODES  faults,twins
#   SCENARIOS  scenarios per run; default per size and mode: n = 4 faults
#              1 000 000, n = 4 twins 100 000, n = 7 faults 100 000,
#              n = 7 twins 10 000
#   MINUTES    time box per run (stops early; the line records what ran)
#   THREADS    worker threads (default: all cores)
#   BFTBENCH   the binary (default: builds and uses target/release/bftbench)
#   REVISION   the git revision BFTBENCH was built from (default: HEAD, with
#              +dirty for uncommitted changes under crates/); set it when
#              the checkout moves on while a copied binary runs
#
# Faults are drawn from the whole scenario schema (`bftbench fuzz` picks any
# behaviour in bft_sim::BEHAVIOURS, plus partitions and a favoured leader);
# a violation is shrunk and its minimal scenario written to
# results/fuzz/findings/, and the run goes on (--keep-going).
set -euo pipefail
cd "$(dirname "$0")/.."

csv=results/fuzz/campaigns.csv
findings=results/fuzz/findings
mkdir -p "$(dirname "$csv")"
header="date,revision,protocol,n,mode,seed,scenarios,scenarios_per_minute,violations,threads,load_average"
[ -s "$csv" ] || echo "$header" > "$csv"

if [ -z "${BFTBENCH:-}" ]; then
  cargo build --release -p bftbench --quiet
  BFTBENCH=target/release/bftbench
fi
threads=${THREADS:-$(nproc)}
revision=${REVISION:-$(git rev-parse --short HEAD)}
if [ -z "${REVISION:-}" ] && ! git diff --quiet HEAD -- crates; then revision="$revision+dirty"; fi

fresh_seed() {
  local seed
  while :; do
    seed=$(( $(od -An -N6 -tu8 /dev/urandom | tr -d ' ') ))
    # Not a seed CI or an earlier campaign used (CI's are below 1000).
    if [ "$seed" -ge 1000 ] && ! cut -d, -f6 "$csv" | grep -qx "$seed"; then
      echo "$seed"; return
    fi
  done
}

default_scenarios() { # n mode
  case "$1/$2" in
    4/faults) echo 1000000 ;;
    4/twins) echo 100000 ;;
    */faults) echo 100000 ;;
    *) echo 10000 ;;
  esac
}

IFS=, read -r -a protocols <<< "${PROTOCOLS:-pbft,qbft,hotstuff}"
IFS=, read -r -a sizes <<< "${NODES:-4,7}"
IFS=, read -r -a modes <<< "${MODES:-faults,twins}"
status=0
for protocol in "${protocols[@]}"; do
  for n in "${sizes[@]}"; do
    for mode in "${modes[@]}"; do
      seed=$(fresh_seed)
      scenarios=${SCENARIOS:-$(default_scenarios "$n" "$mode")}
      args=(fuzz --protocol "$protocol" --nodes "$n" --seed "$seed" --scenarios "$scenarios"
            --threads "$threads" --keep-going --out-dir "$findings")
      [ "$mode" = twins ] && args+=(--twins)
      [ -n "${MINUTES:-}" ] && args+=(--minutes "$MINUTES")
      echo "== $BFTBENCH ${args[*]}" >&2
      out=$(mktemp)
      rc=0
      "$BFTBENCH" "${args[@]}" | tee "$out" || rc=$?
      # The summary line: "<protocol> n=<n> <mode>: <runs> scenarios in <s>s (<r>/s, <m>/min, ...), <v> violating"
      line=$(grep -E "^$protocol n=$n .*scenarios in" "$out" | tail -1)
      rm -f "$out"
      if [ -z "$line" ] || [ "$rc" -gt 1 ]; then
        echo "fuzz run failed (exit $rc); nothing recorded" >&2; status=2; continue
      fi
      runs=$(sed -E 's/.*: ([0-9]+) scenarios in.*/\1/' <<< "$line")
      per_min=$(sed -E 's/.*, ([0-9]+)\/min,.*/\1/' <<< "$line")
      violations=$(sed -E 's/.*, ([0-9]+) violating.*/\1/' <<< "$line")
      load=$(cut -d' ' -f1 /proc/loadavg)
      echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),$revision,$protocol,$n,$mode,$seed,$runs,$per_min,$violations,$threads,$load" >> "$csv"
      [ "$violations" = 0 ] || status=1
    done
  done
done
exit "$status"
