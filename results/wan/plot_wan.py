#!/usr/bin/env python3
"""The five-region comparison figure and table (no third-party modules).

Reads results/wan/<placement>/sim/summary.csv (bftbench sweep) and
results/wan/<placement>/netns/<protocol>-n<N>/client.json
(scripts/netns-cluster.py via bench-configs/wan/netns-compare.sh), writes
results/wan/table.md, results/wan/wan_p50_p99.svg and the same figure as
results/wan/wan_p50_p99.png (drawn by results/wan/png.py). Bars are p50, whiskers reach p99.

    python3 results/wan/plot_wan.py
"""

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOCOLS = ["pbft", "qbft", "hotstuff"]
PLACEMENTS = ["round-robin", "latency-aware"]


def rows():
    out = []
    for placement in PLACEMENTS:
        f = HERE / placement / "sim" / "summary.csv"
        if f.exists():
            for r in csv.DictReader(f.open()):
                out.append({
                    "protocol": r["protocol"], "n": int(r["n"]), "runtime": "sim",
                    "placement": placement, "rate": float(r["offered_rate"]),
                    "p50": float(r["p50_ms"]), "p99": float(r["p99_ms"]),
                    "tput": float(r["throughput_tx_s"]),
                    "view_changes": int(r["view_changes"]), "relay": None,
                })
    for d in sorted(HERE.glob("*/netns/*-n*")):
        cj = d / "client.json"
        if not cj.exists():
            continue
        c = json.loads(cj.read_text())
        proto, n = d.name.split("-n", 1)
        placement = d.parent.parent.name
        out.append({
            "protocol": proto, "n": int(n), "runtime": "netns (QUIC)",
            "placement": placement, "rate": None,
            "p50": c["latency_ms"]["p50"], "p99": c["latency_ms"]["p99"],
            "tput": c["throughput_tx_s"], "view_changes": None,
            "relay": json.loads((d / "relay-stats.json").read_text()).get("late_mean_ms")
            if (d / "relay-stats.json").exists() else None,
        })
    key = lambda r: (PROTOCOLS.index(r["protocol"]), r["n"], r["runtime"] != "sim",
                     r["rate"] or 0, PLACEMENTS.index(r["placement"]))
    return sorted(out, key=key)


def extra(r):
    if r["runtime"] == "sim":
        return str(r["view_changes"])
    if r["relay"] is None:
        return "-"
    flag = " (relay-bound)" if r["relay"] > 5 else ""
    return f"{r['relay']:.1f}{flag}"


def table(rs):
    lines = ["| protocol | n | runtime | offered tx/s | leaders | p50 ms | p99 ms | throughput tx/s | view changes (sim) / relay lateness mean ms (netns) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        rate = f"{r['rate']:.0f}" if r["rate"] else "200"
        lines.append(f"| {r['protocol']} | {r['n']} | {r['runtime']} | {rate} | {r['placement']} | "
                     f"{r['p50']:.1f} | {r['p99']:.1f} | {r['tput']:.1f} | {extra(r)} |")
    return "\n".join(lines) + "\n"


SERIES = [("sim", "round-robin", "#9ecae1"), ("sim", "latency-aware", "#3182bd"),
          ("netns (QUIC)", "round-robin", "#fdae6b"), ("netns (QUIC)", "latency-aware", "#e6550d")]


def chart_data(rs):
    """What both drawings of the figure show: one group per protocol × n, in
    it one bar per (runtime, placement) at the 200 tx/s load the two runtimes
    share; the y axis is capped at 1.5 s (taller p99s are written on top)."""
    groups = sorted({(r["protocol"], r["n"]) for r in rs},
                    key=lambda g: (PROTOCOLS.index(g[0]), g[1]))
    pick = {(r["protocol"], r["n"], r["runtime"], r["placement"]): r
            for r in rs if r["rate"] in (None, 200.0)}
    ymax = min(max([r["p99"] for r in pick.values()] + [1.0]), 1500.0)
    return SERIES, groups, pick, ymax


def svg(rs):
    series, groups, pick, ymax = chart_data(rs)
    W, H, L, B, T = 1000, 560, 70, 90, 50
    pw, ph = W - L - 20, H - B - T
    gw = pw / max(len(groups), 1)
    bw = gw / (len(series) + 1.5)
    y = lambda v: T + ph - min(v, ymax) / ymax * ph
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="DejaVu Sans, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="25" text-anchor="middle" font-size="16">Five regions, 200 tx/s: p50 (bar) and p99 (whisker) commit latency</text>']
    step = 100 if ymax <= 1000 else 250
    v = 0
    while v <= ymax:
        s.append(f'<line x1="{L}" x2="{L+pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L-6}" y="{y(v)+4:.1f}" text-anchor="end">{v}</text>')
        v += step
    s.append(f'<text x="18" y="{T+ph/2}" transform="rotate(-90 18 {T+ph/2})" text-anchor="middle">latency (ms)</text>')
    for gi, (p, n) in enumerate(groups):
        x0 = L + gi * gw + bw * 0.75
        for si, (rt, pl, colour) in enumerate(series):
            r = pick.get((p, n, rt, pl))
            if not r:
                continue
            x = x0 + si * bw
            s.append(f'<rect x="{x:.1f}" y="{y(r["p50"]):.1f}" width="{bw*0.9:.1f}" height="{T+ph-y(r["p50"]):.1f}" fill="{colour}"/>')
            cx = x + bw * 0.45
            s.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(r["p50"]):.1f}" y2="{y(r["p99"]):.1f}" stroke="black"/>')
            s.append(f'<line x1="{cx-4:.1f}" x2="{cx+4:.1f}" y1="{y(r["p99"]):.1f}" y2="{y(r["p99"]):.1f}" stroke="black"/>')
            if r["p99"] > ymax:
                s.append(f'<text x="{cx:.1f}" y="{T-4}" text-anchor="middle" font-size="10">{r["p99"]:.0f}</text>')
        s.append(f'<text x="{L + gi*gw + gw/2:.1f}" y="{T+ph+18}" text-anchor="middle">{p} n={n}</text>')
    s.append(f'<line x1="{L}" x2="{L+pw}" y1="{T+ph}" y2="{T+ph}" stroke="black"/>')
    for si, (rt, pl, colour) in enumerate(series):
        lx = L + 10 + si * 230
        s.append(f'<rect x="{lx}" y="{H-45}" width="14" height="14" fill="{colour}"/>')
        s.append(f'<text x="{lx+20}" y="{H-33}">{rt}, {pl}</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


def hexrgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


def png(rs, path):
    """The SVG's figure again as a PNG (results/wan/png.py: no modules needed)."""
    from png import Canvas
    series, groups, pick, ymax = chart_data(rs)
    W, H, L, B, T = 1100, 620, 80, 110, 60
    pw, ph = W - L - 20, H - B - T
    gw = pw / max(len(groups), 1)
    bw = gw / (len(series) + 1.5)
    y = lambda v: T + ph - min(v, ymax) / ymax * ph
    c = Canvas(W, H)
    c.text(W / 2, 18, "Five regions, 200 tx/s: p50 (bar), p99 (whisker) commit latency", anchor="middle")
    step = 100 if ymax <= 1000 else 250
    v = 0
    while v <= ymax:
        c.hline(L, L + pw, y(v), (221, 221, 221))
        c.text(L - 8, y(v) - 7, str(v), anchor="end")
        v += step
    c.text(8, T - 30, "latency (ms)")
    for gi, (p, n) in enumerate(groups):
        x0 = L + gi * gw + bw * 0.75
        for si, (rt, pl, colour) in enumerate(series):
            r = pick.get((p, n, rt, pl))
            if not r:
                continue
            x = x0 + si * bw
            c.rect(x, y(r["p50"]), x + bw * 0.9, T + ph, hexrgb(colour))
            cx = x + bw * 0.45
            c.vline(cx, y(r["p99"]), y(r["p50"]), (0, 0, 0), 2)
            c.hline(cx - 5, cx + 5, y(r["p99"]), (0, 0, 0), 2)
            if r["p99"] > ymax:
                c.text(cx, T - 14, f"{r['p99']:.0f}", scale=1, anchor="middle")
        c.text(L + gi * gw + gw / 2, T + ph + 10, f"{p} n={n}", anchor="middle")
    c.hline(L, L + pw, T + ph, (0, 0, 0), 2)
    c.vline(L, T, T + ph, (0, 0, 0), 2)
    for si, (rt, pl, colour) in enumerate(series):
        lx = L + (si % 2) * 480
        ly = H - 70 + (si // 2) * 28
        c.rect(lx, ly, lx + 16, ly + 14, hexrgb(colour))
        c.text(lx + 24, ly, f"{rt}, {pl}")
    bound = sorted({f"{r['protocol']} n={r['n']}" for r in rs if (r["relay"] or 0) > 5})
    if bound:
        c.text(L, H - 14, "netns " + ", ".join(bound) + ": userspace relay saturated (mean lateness above 5 ms per packet)",
               c=(160, 0, 0), scale=1)
    c.save(path)


def main():
    rs = rows()
    (HERE / "table.md").write_text(table(rs))
    (HERE / "wan_p50_p99.svg").write_text(svg(rs))
    import sys
    sys.path.insert(0, str(HERE))
    png(rs, HERE / "wan_p50_p99.png")
    print(table(rs))


if __name__ == "__main__":
    main()
