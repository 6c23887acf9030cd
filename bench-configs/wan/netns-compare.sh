#!/usr/bin/env bash
# The netns half of the five-region comparison: PBFT, QBFT and HotStuff over
# real QUIC, one namespace per replica, round-robin and latency-aware
# leaders, for each n given (default 4). Root only. Output:
# results/wan/<placement>/netns/<protocol>-n<N>/ (client.json, record.json
# for `bftbench plot`, node logs and counters, netns-run.json).
#
#   sudo bench-configs/wan/netns-compare.sh 4 16
set -euo pipefail
cd "$(dirname "$0")/../.."
base=bench-configs/wan/netns-five-regions.toml
for n in "${@:-4}"; do
    for p in pbft qbft hotstuff; do
        for placement in round-robin latency-aware; do
            tmp=$(mktemp -d /tmp/wan-netns-XXXXXX)
            sed -e "s#^regions_file = .*#regions_file = \"$PWD/bench-configs/regions/five-regions.toml\"#" \
                -e "s/^protocol = .*/protocol = \"$p\"/" \
                -e "s/^nodes = .*/nodes = $n/" \
                -e "s/^placement = \"round-robin\"/placement = \"$placement\"/" \
                "$base" >"$tmp/scenario.toml"
            out=results/wan/$placement/netns/$p-n$n
            echo "== $p n=$n $placement -> $out"
            python3 scripts/netns-cluster.py \
                --regions bench-configs/regions/five-regions.toml \
                --placement us-east-1,us-west-2,eu-west-1,ap-northeast-1,sa-east-1 \
                --client-region us-east-1 \
                --bftbench "$PWD/bench-configs/wan/bftbench-with-record.sh" \
                --scenario "$tmp/scenario.toml" --out "$out" ||
                echo "FAILED: $p n=$n $placement (exit $?)"
            rm -rf "$tmp"
        done
    done
done
