#!/usr/bin/env bash
# CI entry for the netns WAN emulation (scripts/netns-cluster.py).
#
# Where this job cannot run it (not root, no ip/tc, `ip netns add` refused),
# it prints "netns self-test skipped: <reason>" and exits 0. Otherwise it
# runs the script's --self-test (3 namespaces, a small latency matrix, RTTs
# measured and checked, everything torn down) and a --dry-run of a five-region
# cluster whose output must mention netem and 198.18., and exits non-zero if
# either fails. Kernels without sch_netem use the script's userspace relay.
set -uo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "netns self-test skipped: $*"
    exit 0
}

[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need CAP_NET_ADMIN)"
command -v ip >/dev/null 2>&1 || skip "\`ip\` (iproute2) not installed"
command -v tc >/dev/null 2>&1 || skip "\`tc\` (iproute2) not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
python3 -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    skip "python3 >= 3.11 (tomllib) needed"

probe="bftb-ci-probe-$$"
if ! err=$(ip netns add "$probe" 2>&1); then
    skip "\`ip netns add\` fails here: $err"
fi
ip netns del "$probe" 2>/dev/null

status=0

echo "== netns-cluster.py --self-test"
python3 scripts/netns-cluster.py --self-test
rc=$?
if [ $rc -eq 2 ]; then
    # The script's own preflight found something this check missed (e.g.
    # neither netem nor a TUN device): it says why above.
    echo "netns self-test skipped: netns-cluster.py cannot run here (see above)"
elif [ $rc -ne 0 ]; then
    echo "FAIL: --self-test exited $rc"
    status=1
fi

echo "== netns-cluster.py --dry-run (five regions)"
dry=$(python3 scripts/netns-cluster.py --dry-run \
    --regions bench-configs/regions/five-regions.toml \
    --placement us-east-1,us-west-2,eu-west-1,ap-northeast-1 \
    --client-region sa-east-1 \
    --scenario bench-configs/wan/netns-smoke.toml 2>&1)
rc=$?
echo "$dry" | tail -n 5
if [ $rc -ne 0 ]; then
    echo "FAIL: --dry-run exited $rc"
    status=1
fi
for want in netem 198.18.; do
    if ! grep -qF -- "$want" <<<"$dry"; then
        echo "FAIL: --dry-run output does not mention $want"
        status=1
    fi
done
if grep -E '(^| )ip (-n [^ ]+ )?(addr|route) add' <<<"$dry" | grep -vE '198\.1[89]\.' >/dev/null; then
    echo "FAIL: --dry-run adds an address or route outside 198.18.0.0/15"
    status=1
fi

left=$(ip netns list | grep -E '^bftb-' || true)
if [ -n "$left" ]; then
    echo "FAIL: namespaces left behind: $left"
    status=1
fi
[ $status -eq 0 ] && echo "netns self-test passed"
exit $status
