#!/usr/bin/env python3
"""Run a real QUIC bftbench cluster under emulated WAN latency.

One Linux network namespace per replica (<prefix>n<i>) and one for the load
generator (<prefix>c), each with a veth to a hub namespace (<prefix>hub), so
nothing is created in the host's root namespace. Addresses come from the
benchmarking range 198.18.0.0/15 (RFC 2544) only; no namespace has a default
route, so traffic cannot leave the links this script creates.

Latency, jitter and loss per link come from a region matrix
(bench-configs/regions/*.toml: regions, one_way_ms, jitter_ms, loss):

  netem      (default when the kernel has sch_netem) the hub holds a bridge;
             each namespace's egress has an htb root with one netem child
             per destination, chosen by a u32 filter on the destination IP.
  userspace  (fallback when sch_netem is missing) the hub routes instead of
             bridging: policy routing sends every forwarded packet into a TUN
             device, and a small relay process (this script, --relay) holds
             each packet for the (source, destination) delay before writing
             it back. Same matrix, same semantics, a few tens of thousands of
             packets/s at most.

Either way the one-way delay from node i to node j is
one_way_ms[region(i)][region(j)] plus uniform jitter in [0, jitter_ms], and
each packet is dropped with probability loss[region(i)][region(j)].

Root only (exit code 2 with the reason otherwise); --dry-run prints the
commands instead and needs no privileges. Everything is torn down on exit,
on Ctrl-C/SIGTERM and on failure; leftovers of a crashed run with the same
prefix are removed first (also: --teardown).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NET = ipaddress.ip_network("198.18.0.0/15")
NODE_BASE = ipaddress.ip_address("198.18.0.1")  # node i: 198.18.0.1 + i
CLIENT_BASE = ipaddress.ip_address("198.19.0.1")  # client k: 198.19.0.1 + k
HUB_GW = ipaddress.ip_address("198.19.255.254")  # userspace mode: the hub's side
PORT = 7100
BRIDGE = "bftb-br"
TUN = "bftb-tun"
RELAY_TABLE = "100"
EXIT_CANNOT = 2


class CannotRun(Exception):
    """The environment cannot run this (not root, no ip/tc, ...): exit 2."""


class Failed(Exception):
    """Something went wrong during the run: exit 1."""


# ---------------------------------------------------------------- matrix


def load_regions(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise Failed(f"{path}: {e}") from e
    regions = data.get("regions")
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) for r in regions):
        raise Failed(f"{path}: regions must be a non-empty list of names")
    k = len(regions)

    def matrix(key: str, default: float, lo: float, hi: float) -> list[list[float]]:
        m = data.get(key)
        if m is None:
            return [[default] * k for _ in range(k)]
        if not isinstance(m, list) or len(m) != k or any(not isinstance(r, list) or len(r) != k for r in m):
            raise Failed(f"{path}: {key} must be a {k}x{k} matrix, one row per region")
        out = []
        for a, row in enumerate(m):
            for b, v in enumerate(row):
                if not isinstance(v, (int, float)) or not (lo <= float(v) <= hi):
                    raise Failed(f"{path}: {key}[{a}][{b}] = {v!r}: need a number in [{lo}, {hi}]")
            out.append([float(v) for v in row])
        return out

    return {
        "regions": regions,
        "one_way_ms": matrix("one_way_ms", 0.0, 0.0, 60_000.0),
        "jitter_ms": matrix("jitter_ms", 0.0, 0.0, 60_000.0),
        "loss": matrix("loss", 0.0, 0.0, 1.0),
    }


def region_index(m: dict, name: str) -> int:
    name = name.strip()
    if name in m["regions"]:
        return m["regions"].index(name)
    if name.isdigit() and int(name) < len(m["regions"]):
        return int(name)
    raise Failed(f"unknown region {name!r}: the matrix has {', '.join(m['regions'])}")


class Endpoint:
    """One namespace: a replica or the client."""

    def __init__(self, ns: str, hub_if: str, ip: ipaddress.IPv4Address, region: int):
        self.ns, self.hub_if, self.ip, self.region = ns, hub_if, ip, region


def link(m: dict, a: Endpoint, b: Endpoint) -> tuple[float, float, float]:
    """(one-way ms, jitter ms, loss) from a to b."""
    return (
        m["one_way_ms"][a.region][b.region],
        m["jitter_ms"][a.region][b.region],
        m["loss"][a.region][b.region],
    )


# ---------------------------------------------------------------- commands


class Shell:
    """Runs commands, or prints them (one per line, shell-quoted) in dry-run."""

    def __init__(self, dry: bool, verbose: bool):
        self.dry, self.verbose = dry, verbose
        self.log: list[str] = []

    def note(self, text: str) -> None:
        if self.dry or self.verbose:
            print(f"# {text}", flush=True)

    def run(self, argv: list[str], check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess | None:
        line = shlex.join(argv)
        self.log.append(line)
        if self.dry:
            print(line, flush=True)
            return None
        if self.verbose:
            print(f"+ {line}", flush=True)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise Failed(f"`{line}` failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()}")
        if p.returncode != 0 and not quiet and self.verbose:
            print(f"  (exit {p.returncode}: {p.stderr.strip()})", flush=True)
        return p

    def spawn(self, argv: list[str], stdout, stderr, logs: tuple[Path, Path] | None = None) -> subprocess.Popen | None:
        redirect = f" >{shlex.quote(str(logs[0]))} 2>{shlex.quote(str(logs[1]))}" if logs else ""
        line = shlex.join(argv) + redirect + " &"
        self.log.append(line)
        if self.dry:
            print(line, flush=True)
            return None
        if self.verbose:
            print(f"+ {line}", flush=True)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True)


def ns_names(prefix: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(prefix)}(hub|c\d*|n\d+)$")


def existing_namespaces(prefix: str) -> list[str]:
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    pat = ns_names(prefix)
    names = [line.split()[0] for line in p.stdout.splitlines() if line.strip()]
    return [n for n in names if pat.match(n)]


class Topology:
    """Creates and removes the namespaces, links and qdiscs of one run."""

    def __init__(self, sh: Shell, prefix: str, matrix: dict, emulator: str):
        self.sh, self.prefix, self.m, self.emulator = sh, prefix, matrix, emulator
        self.hub = f"{prefix}hub"
        self.endpoints: list[Endpoint] = []
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.relay_cfg: Path | None = None
        self.relay_stats: Path | None = None
        self.reorder = False

    def add_node(self, i: int, region: int) -> Endpoint:
        e = Endpoint(f"{self.prefix}n{i}", f"vn{i}", NODE_BASE + i, region)
        self.endpoints.append(e)
        return e

    def add_client(self, k: int, region: int) -> Endpoint:
        e = Endpoint(f"{self.prefix}c" if k == 0 else f"{self.prefix}c{k}", f"vc{k}", CLIENT_BASE + k, region)
        self.endpoints.append(e)
        return e

    # -- teardown -------------------------------------------------------

    def teardown(self) -> None:
        """Idempotent: stops what we started, then every namespace named
        <prefix>{hub,c,n<i>} (also leftovers of a crashed run)."""
        for name, p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for name, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        if self.sh.dry:
            for ns in [e.ns for e in self.endpoints] + [self.hub]:
                self.sh.run(["ip", "netns", "del", ns], check=False)
            return
        teardown_prefix(self.prefix, self.sh)
        if self.relay_cfg is not None:
            self.relay_cfg.unlink(missing_ok=True)

    def stop_relay(self) -> dict | None:
        """Stops the userspace relay and returns its statistics."""
        for name, p in self.procs:
            if name == "relay" and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.relay_stats and self.relay_stats.exists():
            return json.loads(self.relay_stats.read_text())
        return None

    # -- setup ----------------------------------------------------------

    def setup(self) -> None:
        sh, hub = self.sh, self.hub
        sh.note(f"hub namespace {hub}; emulator: {self.emulator}; addresses from {NET} only, no default routes")
        sh.run(["ip", "netns", "add", hub])
        sh.run(["ip", "-n", hub, "link", "set", "lo", "up"])
        if self.emulator == "netem":
            sh.run(["ip", "-n", hub, "link", "add", BRIDGE, "type", "bridge"])
            sh.run(["ip", "-n", hub, "link", "set", BRIDGE, "up"])
        else:
            for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                        "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"):
                sh.run(["ip", "netns", "exec", hub, "sysctl", "-qw", key])
            sh.run(["ip", "-n", hub, "tuntap", "add", "dev", TUN, "mode", "tun"])
            sh.run(["ip", "-n", hub, "link", "set", TUN, "up"])
        for e in self.endpoints:
            self._endpoint(e)
        if self.emulator == "netem":
            for e in self.endpoints:
                self._netem(e)
        else:
            self._relay()
        # No namespace may reach anything but the others: no default route.
        for e in self.endpoints:
            sh.note(f"{e.ns}: {e.ip} region {self.m['regions'][e.region]}")

    def _endpoint(self, e: Endpoint) -> None:
        sh, hub = self.sh, self.hub
        sh.run(["ip", "netns", "add", e.ns])
        sh.run(["ip", "-n", e.ns, "link", "set", "lo", "up"])
        # Both ends are created inside the hub and the peer moved straight
        # into the node's namespace: the root namespace never sees them.
        sh.run(["ip", "-n", hub, "link", "add", e.hub_if, "type", "veth", "peer", "name", "eth0", "netns", e.ns])
        if self.emulator == "netem":
            sh.run(["ip", "-n", hub, "link", "set", e.hub_if, "master", BRIDGE])
            sh.run(["ip", "-n", hub, "link", "set", e.hub_if, "up"])
            sh.run(["ip", "-n", e.ns, "addr", "add", f"{e.ip}/{NET.prefixlen}", "dev", "eth0"])
            sh.run(["ip", "-n", e.ns, "link", "set", "eth0", "up"])
        else:
            sh.run(["ip", "-n", hub, "addr", "add", f"{HUB_GW}/32", "dev", e.hub_if])
            sh.run(["ip", "-n", hub, "link", "set", e.hub_if, "up"])
            sh.run(["ip", "-n", hub, "route", "add", f"{e.ip}/32", "dev", e.hub_if, "src", str(HUB_GW)])
            sh.run(["ip", "-n", hub, "rule", "add", "iif", e.hub_if, "lookup", RELAY_TABLE, "pref", "100"])
            sh.run(["ip", "-n", e.ns, "addr", "add", f"{e.ip}/32", "dev", "eth0"])
            sh.run(["ip", "-n", e.ns, "link", "set", "eth0", "up"])
            sh.run(["ip", "-n", e.ns, "route", "add", f"{HUB_GW}/32", "dev", "eth0", "scope", "link"])
            sh.run(["ip", "-n", e.ns, "route", "add", str(NET), "via", str(HUB_GW), "dev", "eth0"])

    def _netem(self, src: Endpoint) -> None:
        """htb root on eth0, one class + netem per destination, u32 on dst IP.
        Unclassified traffic (ARP) goes straight through (htb default 0)."""
        sh = self.sh
        tc = ["ip", "netns", "exec", src.ns, "tc"]
        sh.run(tc + ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "0"])
        for k, dst in enumerate(e for e in self.endpoints if e is not src):
            one_way, jitter, loss = link(self.m, src, dst)
            cls = f"1:{k + 1:x}"
            sh.run(tc + ["class", "add", "dev", "eth0", "parent", "1:", "classid", cls, "htb",
                         "rate", "10gbit", "burst", "256k", "cburst", "256k", "quantum", "60000"])
            sh.run(tc + ["qdisc", "add", "dev", "eth0", "parent", cls, "handle", f"{k + 0x10:x}:", "netem"]
                   + netem_args(one_way, jitter, loss, self.reorder))
            sh.run(tc + ["filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1",
                         "u32", "match", "ip", "dst", f"{dst.ip}/32", "flowid", cls])

    def _relay(self) -> None:
        sh, hub = self.sh, self.hub
        links = []
        for a in self.endpoints:
            for b in self.endpoints:
                if a is not b:
                    one_way, jitter, loss = link(self.m, a, b)
                    links.append([str(a.ip), str(b.ip), one_way, jitter, loss])
        cfg = {"tun": TUN, "links": links, "seed": 1, "reorder": self.reorder,
               "stats": str(self.relay_stats) if self.relay_stats else None}
        if sh.dry:
            path = Path(tempfile.gettempdir()) / f"netns-{self.prefix}relay-XXXX.json"
            sh.note(f"write {path}: the {len(links)} directed links (src, dst, one_way_ms, jitter_ms, loss)")
        else:
            fd, name = tempfile.mkstemp(prefix=f"netns-{self.prefix}relay-", suffix=".json")
            os.write(fd, json.dumps(cfg).encode())
            os.close(fd)
            path = self.relay_cfg = Path(name)
        proc = sh.spawn(["ip", "netns", "exec", hub, sys.executable, str(Path(__file__).resolve()), "--relay", str(path)],
                        stdout=subprocess.PIPE, stderr=None)
        if proc is not None:
            self.procs.append(("relay", proc))
            ready, _, _ = select.select([proc.stdout], [], [], 10)
            line = proc.stdout.readline().decode().strip() if ready else ""
            if line != "ready":
                raise Failed(f"the userspace relay did not start (said {line!r}, exit {proc.poll()})")
        # Forwarded packets from the veths go to the relay; what the relay
        # writes back comes in on the TUN and is routed by the main table.
        sh.run(["ip", "-n", hub, "route", "add", "default", "dev", TUN, "table", RELAY_TABLE])


def netem_args(one_way: float, jitter: float, loss: float, reorder: bool = False) -> list[str]:
    # The matrix's jitter is added on top: [one_way, one_way + jitter]. netem's
    # is +/- around the mean (uniform without a distribution table).
    mean_us = round((one_way + jitter / 2) * 1000)
    args = ["limit", "100000", "delay", f"{mean_us}us"]
    if jitter > 0:
        args.append(f"{round(jitter / 2 * 1000)}us")
        if not reorder:
            # With a rate, netem schedules each packet no earlier than the
            # one before it: jitter without reordering the packets of a flow
            # (per-packet reordering makes QUIC declare spurious losses).
            args += ["rate", "10gbit"]
    if loss > 0:
        args += ["loss", f"{loss * 100:.6g}%"]
    return args


def teardown_prefix(prefix: str, sh: Shell) -> None:
    """Stops any process left in our namespaces (by pid) and deletes them."""
    for ns in existing_namespaces(prefix):
        p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        pids = [int(x) for x in p.stdout.split() if x.isdigit()]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if alive(pid)]
                if pids:
                    time.sleep(0.05)
            if not pids:
                break
        sh.run(["ip", "netns", "del", ns], check=False, quiet=True)
    # Key directories and relay configs of a crashed run (secret keys!).
    tmp = Path(tempfile.gettempdir())
    for pattern in (f"netns-{prefix}keys-*", f"netns-{prefix}relay-*"):
        for p in tmp.glob(pattern):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """False once the process is gone or a zombie (its parent may be dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


# ---------------------------------------------------------------- checks


def preflight(emulator: str, prefix: str) -> str:
    """Returns the emulator to use, or raises CannotRun with the reason."""
    if not sys.platform.startswith("linux"):
        raise CannotRun("network namespaces need Linux")
    if os.geteuid() != 0:
        raise CannotRun("needs root (ip netns, veth, tc); run with sudo, or use --dry-run to see the commands")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise CannotRun(f"`{tool}` not found (install iproute2)")
    probe = f"{prefix}probe"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        raise CannotRun(f"`ip netns add` fails here: {p.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", probe, "link", "set", "lo", "up"], capture_output=True)

        def netem_ok() -> tuple[bool, str]:
            q = subprocess.run(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                                "delay", "1ms"], capture_output=True, text=True)
            subprocess.run(["ip", "netns", "exec", probe, "tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
            return q.returncode == 0, q.stderr.strip()

        ok, why = netem_ok()
        if not ok and shutil.which("modprobe"):
            subprocess.run(["modprobe", "sch_netem"], capture_output=True)
            ok, why = netem_ok()
        if emulator in ("netem", "auto") and ok:
            return "netem"
        if emulator == "netem":
            raise CannotRun(f"the netem qdisc does not work here ({why}); the kernel lacks sch_netem and it "
                            "cannot be loaded. Use --emulator userspace (a TUN relay) instead")
        if emulator == "auto":
            print(f"note: netem unavailable ({why}); using the userspace relay", file=sys.stderr)
        if not Path("/dev/net/tun").exists():
            raise CannotRun("no netem and no /dev/net/tun for the userspace relay")
        t = subprocess.run(["ip", "-n", probe, "tuntap", "add", "dev", "probe0", "mode", "tun"],
                           capture_output=True, text=True)
        if t.returncode != 0:
            raise CannotRun(f"no netem and cannot create a TUN device: {t.stderr.strip()}")
        return "userspace"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Lock:
    """One run per prefix at a time."""

    def __init__(self, prefix: str):
        import fcntl

        self.f = open(Path(tempfile.gettempdir()) / f"netns-{prefix}lock", "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise CannotRun(f"another netns-cluster run with prefix {prefix!r} is active") from e


# ---------------------------------------------------------------- signals


def install_signal_handlers() -> None:
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ---------------------------------------------------------------- cluster run


def parse_duration(s) -> float:
    if isinstance(s, (int, float)):
        return float(s)
    total, units = 0.0, {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "us": 1e-6}
    for num, unit in re.findall(r"([\d.]+)\s*([a-z]+)", str(s)):
        total += float(num) * units.get(unit, 1.0)
    return total


def find_bftbench(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()
    for p in (REPO / "target/release/bftbench", REPO / "target/debug/bftbench"):
        if p.exists():
            return p
    return REPO / "target/release/bftbench"


def rewrite_addresses(cluster: Path, ips: list) -> None:
    """keygen puts every node on one IP (ports base+i); give node i its own
    namespace address instead, same port for all."""
    text = cluster.read_text()
    it = iter(ips)
    count = 0

    def sub(mt):
        nonlocal count
        count += 1
        return f'{mt.group(1)}"{next(it)}:{PORT}"'

    new = re.sub(r'^(\s*address\s*=\s*)"[^"]*"', sub, text, flags=re.M)
    if count != len(ips):
        raise Failed(f"{cluster}: found {count} node addresses, expected {len(ips)}")
    cluster.write_text(new)
    got = [n["address"] for n in tomllib.loads(new)["nodes"]]
    if got != [f"{ip}:{PORT}" for ip in ips]:
        raise Failed(f"{cluster}: address rewrite went wrong: {got}")


def run_cluster(args, sh: Shell, m: dict) -> int:
    scen_path = Path(args.scenario).resolve()
    try:
        scenario = tomllib.loads(scen_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise Failed(f"{args.scenario}: {e}") from e
    if scenario.get("runtime", "sim") != "quic":
        print(f"note: {args.scenario} says runtime = {scenario.get('runtime', 'sim')!r}; "
              "the node/client commands run over QUIC anyway", file=sys.stderr)
    n = int(scenario.get("nodes", 4))
    placement = [region_index(m, r) for r in args.placement.split(",") if r.strip()]
    if not placement:
        raise Failed("--placement: name a region for each node")
    if len(placement) != n:
        print(f"note: {len(placement)} placements for {n} nodes: node i sits in placement[i % {len(placement)}]",
              file=sys.stderr)
    client_region = region_index(m, args.client_region)
    bftbench = find_bftbench(args.bftbench)
    if not sh.dry and not bftbench.exists():
        raise Failed(f"{bftbench} not found: build it with `cargo build --release -p bftbench` or pass --bftbench")
    out = Path(args.out).resolve()
    duration = parse_duration(scenario.get("duration", "10s"))

    topo = Topology(sh, args.prefix, m, args.emulator)
    topo.relay_stats = out / "relay-stats.json"
    topo.reorder = args.reorder
    nodes = [topo.add_node(i, placement[i % len(placement)]) for i in range(n)]
    client = topo.add_client(0, client_region)
    if not sh.dry:
        # Leftovers of a crashed run, before anything of ours exists.
        teardown_prefix(args.prefix, sh)
        keys = Path(tempfile.mkdtemp(prefix=f"netns-{args.prefix}keys-"))
    else:
        keys = Path(tempfile.gettempdir()) / f"netns-{args.prefix}keys-XXXX"
    cluster = keys / "cluster.toml"
    status = 1
    files = []
    try:
        if not sh.dry:
            out.mkdir(parents=True, exist_ok=True)
            for stale in ("client.json", "relay-stats.json", "netns-run.json"):
                (out / stale).unlink(missing_ok=True)
        else:
            sh.note(f"remove leftovers: every namespace matching {args.prefix}{{hub,c,n<i>}}")
            sh.note(f"mkdir -p {out}")
        topo.setup()
        sh.run([str(bftbench), "keygen", "--nodes", str(n), "--out-dir", str(keys),
                "--base-addr", f"{nodes[0].ip}:{PORT}"])
        if sh.dry:
            sh.note(f"rewrite {cluster}: node i at 198.18.0.(1+i):{PORT}")
        else:
            rewrite_addresses(cluster, [e.ip for e in nodes])
        node_procs = []
        for i, e in enumerate(nodes):
            so = open(out / f"node-{i}.stdout", "w") if not sh.dry else None
            se = open(out / f"node-{i}.stderr", "w") if not sh.dry else None
            files += [f for f in (so, se) if f]
            p = sh.spawn(["ip", "netns", "exec", e.ns, str(bftbench), "node", "--cluster", str(cluster), "--id", str(i),
                          "--scenario", str(scen_path), "--out", str(out / f"node-{i}.json")], so, se,
                         (out / f"node-{i}.stdout", out / f"node-{i}.stderr"))
            if p is not None:
                topo.procs.append((f"node-{i}", p))
                node_procs.append((i, p))
        if not sh.dry:
            time.sleep(2.0)
            dead = [(i, p.returncode) for i, p in node_procs if p.poll() is not None]
            if dead:
                raise Failed(f"nodes exited early: {dead}; see {out}/node-*.stderr")
        so = open(out / "client.stdout", "w") if not sh.dry else None
        se = open(out / "client.stderr", "w") if not sh.dry else None
        files += [f for f in (so, se) if f]
        started = time.monotonic()
        cp = sh.spawn(["ip", "netns", "exec", client.ns, str(bftbench), "client", "--cluster", str(cluster),
                       "--scenario", str(scen_path), "--out", str(out / "client.json")], so, se,
                      (out / "client.stdout", out / "client.stderr"))
        if cp is None:
            sh.note("wait for the client, then SIGTERM each node (they print their counters) and tear down")
            status = 0
            return 0
        topo.procs.append(("client", cp))
        timeout = max(60.0, 3 * duration + 30)
        try:
            client_rc = cp.wait(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise Failed(f"the client did not finish within {timeout:.0f}s") from e
        wall = time.monotonic() - started
        for i, p in node_procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        node_rcs = {}
        for i, p in node_procs:
            try:
                node_rcs[i] = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                node_rcs[i] = p.wait()
        relay = topo.stop_relay()
        meta = {
            "regions_file": str(args.regions),
            "scenario": str(args.scenario),
            "emulator": args.emulator,
            "reorder": args.reorder,
            "nodes": [{"id": i, "ns": e.ns, "ip": str(e.ip), "region": m["regions"][e.region]}
                      for i, e in enumerate(nodes)],
            "client": {"ns": client.ns, "ip": str(client.ip), "region": m["regions"][client.region]},
            "links_ms": {f"{a.ns}->{b.ns}": link(m, a, b)[0] for a in topo.endpoints for b in topo.endpoints
                         if a is not b},
            "client_exit": client_rc,
            "node_exits": node_rcs,
            "client_wall_s": round(wall, 3),
            "relay": relay,
            "commands": sh.log,
        }
        (out / "netns-run.json").write_text(json.dumps(meta, indent=2) + "\n")
        rec = out / "client.json"
        if client_rc != 0 or not rec.exists():
            raise Failed(f"the client failed (exit {client_rc}); see {out}/client.stderr")
        r = json.loads(rec.read_text())
        lat = r.get("latency_ms", {})
        print(f"{r.get('protocol')} n={n} over {args.emulator} WAN emulation: "
              f"{r.get('requests_committed')}/{r.get('requests_issued')} committed, "
              f"{r.get('throughput_tx_s', 0):.1f} tx/s, latency p50 {lat.get('p50', 0):.1f} ms "
              f"p99 {lat.get('p99', 0):.1f} ms; records in {out}")
        if relay:
            print(f"userspace relay: {relay['forwarded']} packets forwarded, {relay['lost']} dropped by the "
                  f"loss matrix; its own lateness mean {relay['late_mean_ms']:.3f} ms, max {relay['late_max_ms']:.1f} "
                  f"ms, {relay['late_over_1ms']} packets > 1 ms late")
        status = 0
        return 0
    finally:
        for f in files:
            f.close()
        ignore_signals()
        if args.keep and not sh.dry:
            for name, p in topo.procs:
                if p.poll() is None:
                    p.terminate()
            print(f"--keep: namespaces {args.prefix}* and keys in {keys} left in place; "
                  f"remove with {Path(__file__).name} --teardown", file=sys.stderr)
        else:
            topo.teardown()
            if not sh.dry:
                shutil.rmtree(keys, ignore_errors=True)
        if status != 0:
            print(f"run failed; logs in {out}", file=sys.stderr)


# ---------------------------------------------------------------- self-test

SELFTEST_MATRIX = {
    "regions": ["a", "b", "c"],
    "one_way_ms": [[0.5, 20.0, 40.0], [20.0, 0.5, 30.0], [40.0, 30.0, 0.5]],
    "jitter_ms": [[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    "loss": [[0.0] * 3 for _ in range(3)],
}

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
"""

PING = """
import socket, sys, time, statistics
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(2.0)
rtts = []
for k in range(int(sys.argv[3])):
    t = time.monotonic()
    s.sendto(b"bftb%d" % k, (sys.argv[2], 9))
    try:
        d, _ = s.recvfrom(2048)
        rtts.append((time.monotonic() - t) * 1e3)
    except socket.timeout:
        pass
    time.sleep(0.05)
print(" ".join("%.3f" % r for r in rtts))
"""


def self_test(args, sh: Shell) -> int:
    m = SELFTEST_MATRIX
    prefix = args.prefix + "st-"
    topo = Topology(sh, prefix, m, args.emulator)
    topo.reorder = args.reorder
    eps = [topo.add_node(i, i) for i in range(3)]
    ok = True
    try:
        if not sh.dry:
            teardown_prefix(prefix, sh)
        topo.setup()
        for e in eps:
            p = sh.spawn(["ip", "netns", "exec", e.ns, sys.executable, "-c", ECHO, str(e.ip)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if p is not None:
                topo.procs.append((f"echo-{e.ns}", p))
                ready, _, _ = select.select([p.stdout], [], [], 5)
                if not ready or p.stdout.readline().strip() != b"ready":
                    raise Failed(f"UDP echo server in {e.ns} did not start")
        # Isolation: no route to anything outside 198.18.0.0/15.
        for e in eps:
            r = sh.run(["ip", "netns", "exec", e.ns, "ip", "route", "get", "192.0.2.1"], check=False, quiet=True)
            if r is not None:
                leaks = r.returncode == 0
                print(f"isolation {e.ns}: route to 192.0.2.1 {'EXISTS (bad)' if leaks else 'none (good)'}")
                ok &= not leaks
        print(f"{'pair':<22}{'one-way':>9}{'expect RTT':>12}{'median RTT':>12}{'min':>8}{'max':>8}  verdict")
        for a in eps:
            for b in eps:
                if a is b:
                    continue
                r = sh.run(["ip", "netns", "exec", a.ns, sys.executable, "-c", PING, str(a.ip), str(b.ip), "10"])
                if r is None:
                    continue
                rtts = sorted(float(x) for x in r.stdout.split())
                # Mean RTT: both one-way latencies plus half of each jitter.
                expect = link(m, a, b)[0] + link(m, b, a)[0] + (link(m, a, b)[1] + link(m, b, a)[1]) / 2
                if len(rtts) < 8:
                    print(f"{a.ns}->{b.ns}: only {len(rtts)}/10 replies")
                    ok = False
                    continue
                med = rtts[len(rtts) // 2]
                tol = max(3.0, 0.25 * expect)
                good = abs(med - expect) <= tol
                ok &= good
                print(f"{str(a.ip) + '->' + str(b.ip):<22}{link(m, a, b)[0]:>7.1f}ms{expect:>10.1f}ms{med:>10.2f}ms"
                      f"{rtts[0]:>6.1f}ms{rtts[-1]:>6.1f}ms  {'ok' if good else 'OUT OF TOLERANCE'} (+/-{tol:.0f} ms)")
    finally:
        ignore_signals()
        topo.teardown()
    if sh.dry:
        return 0
    left = existing_namespaces(prefix)
    if left:
        print(f"teardown left namespaces behind: {left}")
        ok = False
    print(f"netns self-test ({args.emulator}): {'PASSED' if ok else 'FAILED'}")
    return 0 if ok else 1


# ---------------------------------------------------------------- relay

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def relay_main(cfg_path: str) -> int:
    """Runs inside the hub namespace: delays each packet read from the TUN by
    its link's latency (+ uniform jitter, - loss) and writes it back."""
    import fcntl

    cfg = json.loads(Path(cfg_path).read_text())
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", cfg["tun"].encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    links = {
        (socket.inet_aton(s), socket.inet_aton(d)): (ms / 1e3, jit / 1e3, loss)
        for s, d, ms, jit, loss in cfg["links"]
    }
    rng = random.Random(cfg.get("seed", 1))
    # The relay's lateness adds to every emulated delay: let it preempt the
    # replicas it shares the CPUs with (it sleeps in select otherwise).
    try:
        os.nice(-15)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print("ready", flush=True)
    heap: list = []
    seq = 0
    st = {"forwarded": 0, "lost": 0, "foreign": 0, "late_max_ms": 0.0, "late_sum_ms": 0.0,
          "late_over_1ms": 0, "late_over_5ms": 0, "queued_max": 0}
    try:
        relay_loop(fd, links, rng, heap, seq, st, bool(cfg.get("reorder")))
    finally:
        if cfg.get("stats"):
            n = max(1, st["forwarded"])
            st["late_mean_ms"] = st.pop("late_sum_ms") / n
            Path(cfg["stats"]).write_text(json.dumps(st, indent=2) + "\n")
    return 0


def relay_loop(fd, links, rng, heap, seq, st, reorder: bool) -> None:
    import heapq

    last_due: dict = {}  # per link: packets leave in order unless reorder

    while True:
        now = time.monotonic()
        timeout = max(0.0, heap[0][0] - now) if heap else 1.0
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            now = time.monotonic()
            for _ in range(512):
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if len(pkt) < 20 or pkt[0] >> 4 != 4:
                    continue  # IPv4 only
                spec = links.get((pkt[12:16], pkt[16:20]))
                if spec is None:
                    st["foreign"] += 1
                    continue  # not between our namespaces: dropped
                delay, jitter, loss = spec
                if loss and rng.random() < loss:
                    st["lost"] += 1
                    continue
                if jitter:
                    delay += rng.uniform(0.0, jitter)
                due = now + delay
                if not reorder:
                    key = pkt[12:20]
                    due = max(due, last_due.get(key, 0.0))
                    last_due[key] = due
                heapq.heappush(heap, (due, seq, pkt))
                seq += 1
            st["queued_max"] = max(st["queued_max"], len(heap))
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            due, _, pkt = heapq.heappop(heap)
            try:
                os.write(fd, pkt)
            except OSError:
                continue
            # How late the packet left versus its due time: the relay's own
            # error, which adds to the emulated latency.
            late = (time.monotonic() - due) * 1e3
            st["forwarded"] += 1
            st["late_sum_ms"] += late
            st["late_max_ms"] = max(st["late_max_ms"], late)
            st["late_over_1ms"] += late > 1.0
            st["late_over_5ms"] += late > 5.0


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  sudo scripts/netns-cluster.py --regions bench-configs/regions/five-regions.toml \\\n"
                                        "    --placement us-east-1,eu-west-1,ap-northeast-1,us-west-2 --client-region us-east-1 \\\n"
                                        "    --scenario bench-configs/wan/netns-smoke.toml --out results/wan-netns/")
    ap.add_argument("--regions", help="region matrix TOML (regions, one_way_ms, jitter_ms, loss)")
    ap.add_argument("--placement", help="comma-separated region (name or index) of each node, in id order")
    ap.add_argument("--client-region", default=None, help="region of the load generator (default: node 0's)")
    ap.add_argument("--scenario", help="scenario TOML for `bftbench node`/`client` (protocol, load, duration)")
    ap.add_argument("--bftbench", help="the binary (default: target/release/bftbench, else target/debug)")
    ap.add_argument("--out", default="results/wan-netns", help="directory for node logs/counters and client.json")
    ap.add_argument("--emulator", choices=["auto", "netem", "userspace"], default="auto",
                    help="netem qdiscs, or the TUN relay where sch_netem is missing (auto: netem if it works)")
    ap.add_argument("--prefix", default="bftb-", help="name prefix of the namespaces (default bftb-)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing (no root needed)")
    ap.add_argument("--reorder", action="store_true",
                    help="let jitter reorder the packets of a link (default: order kept, jitter still applied)")
    ap.add_argument("--keep", action="store_true", help="leave namespaces and keys in place after the run")
    ap.add_argument("--self-test", action="store_true", help="3 namespaces, small matrix, check measured RTTs")
    ap.add_argument("--teardown", action="store_true", help="only remove namespaces left by an earlier run")
    ap.add_argument("--verbose", "-v", action="store_true", help="echo each command as it runs")
    ap.add_argument("--relay", metavar="CFG", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.relay:
        return relay_main(args.relay)
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,7}", args.prefix):
        ap.error("--prefix: 1-8 characters of a-z, 0-9, -")
    if args.dry_run:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--dry-run | head` is fine
    sh = Shell(args.dry_run, args.verbose)
    try:
        if not args.dry_run:
            args.emulator = preflight(args.emulator, args.prefix)
            _lock = Lock(args.prefix)  # noqa: F841 (held until exit)
            install_signal_handlers()
        elif args.emulator == "auto":
            args.emulator = "netem"
        if args.teardown:
            if args.dry_run:
                sh.note(f"delete every namespace matching {args.prefix}{{hub,c,n<i>}} (and {args.prefix}st-...)")
                return 0
            teardown_prefix(args.prefix, sh)
            teardown_prefix(args.prefix + "st-", sh)
            return 0
        if args.self_test:
            return self_test(args, sh)
        missing = [f"--{k}" for k in ("regions", "placement", "scenario") if not getattr(args, k)]
        if missing:
            ap.error(f"a cluster run needs {', '.join(missing)} (or --self-test / --teardown)")
        m = load_regions(Path(args.regions))
        if args.client_region is None:
            args.client_region = args.placement.split(",")[0]
        return run_cluster(args, sh, m)
    except CannotRun as e:
        print(f"netns-cluster: cannot run: {e}", file=sys.stderr)
        return EXIT_CANNOT
    except Failed as e:
        print(f"netns-cluster: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"netns-cluster: interrupted ({e}); torn down", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
