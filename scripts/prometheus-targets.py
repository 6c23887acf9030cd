#!/usr/bin/env python3
"""Print a Prometheus scrape config for the replicas of a bftbench cluster file.

A cluster file (bftbench keygen) holds each node's QUIC address, not its
metrics address: that is `bftbench node --metrics ADDR`. This script assumes
README's convention, node i serving GET /metrics on its address's host at
port METRICS_PORT + i (--same-port: METRICS_PORT on every host), and writes
one static target per node:

  python3 scripts/prometheus-targets.py /tmp/wan-mh/cluster.toml \
      --metrics-port 9300 > dashboards/prometheus.yml
"""

import argparse
import sys
import tomllib

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("cluster", help="cluster.toml written by bftbench keygen")
p.add_argument("--metrics-port", type=int, default=9300)
p.add_argument("--same-port", action="store_true", help="every node on METRICS_PORT (one node per host)")
p.add_argument("--interval", default="1s", help="scrape interval (default 1s)")
a = p.parse_args()

with open(a.cluster, "rb") as f:
    nodes = tomllib.load(f)["nodes"]

print(f"""# Prometheus scrape config for the bftbench dashboard (dashboards/bftbench.json).
# Generated from {a.cluster} by
#   python3 scripts/prometheus-targets.py {a.cluster} --metrics-port {a.metrics_port}{" --same-port" if a.same_port else ""}
# Node i serves GET /metrics (OpenMetrics text) on its cluster-file host, port
# {a.metrics_port}{"" if a.same_port else " + i"} (bftbench node --metrics HOST:PORT). Every series carries node="<id>".
global:
  scrape_interval: {a.interval}
  evaluation_interval: {a.interval}

scrape_configs:
  - job_name: bftbench
    scrape_interval: {a.interval}
    scrape_timeout: {a.interval}
    metrics_path: /metrics
    static_configs:
      - targets:""")
for i, node in enumerate(nodes):
    host, _, quic_port = node["address"].rpartition(":")
    port = a.metrics_port + (0 if a.same_port else i)
    if port > 65535:
        sys.exit(f"node {i}: metrics port {port} > 65535")
    print(f"          - {host}:{port}   # node {node['id']} (QUIC {node['address']})")
