#!/usr/bin/env bash
# target/release/bftbench for scripts/netns-cluster.py (--bftbench THIS):
# `client ... --out DIR/client.json` also writes DIR/record.json (`bftbench
# client --record`), the result record `bftbench plot` and summary.csv read.
# Every other command passes through unchanged.
bin="${BFTBENCH:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/bftbench}"
if [ "${1:-}" = client ]; then
    out="" prev=""
    for a in "$@"; do
        [ "$prev" = --out ] && out=$a
        prev=$a
    done
    if [ -n "$out" ]; then
        exec "$bin" "$@" --record "$(dirname "$out")/record.json"
    fi
fi
exec "$bin" "$@"
