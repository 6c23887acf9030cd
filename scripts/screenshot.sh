#!/usr/bin/env bash
# A headless-Chromium screenshot of the report bftbench compare writes:
#   scripts/screenshot.sh [results/index.html] [results/index.png]
# Installs Debian's chromium when it is missing (root, apt). The page leaves
# its height in a data-height attribute once loaded; the screenshot covers
# the whole page at 1300 CSS pixels wide, scaled by 0.6 to keep the file small.
set -euo pipefail
cd "$(dirname "$0")/.."
page=${1:-results/index.html}
out=${2:-results/index.png}
[ -f "$page" ] || { echo "no $page: run bftbench compare first" >&2; exit 1; }
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "chromium is missing: apt-get install chromium (as root)" >&2; exit 1
  fi
fi
url="file://$(realpath "$page")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)
height=$(chromium "${flags[@]}" --dump-dom "$url" 2>/dev/null | grep -o 'data-height="[0-9]*"' | grep -o '[0-9]*' || true)
height=${height:-8000}
chromium "${flags[@]}" --force-device-scale-factor=0.6 --window-size="1300,$height" \
  --screenshot="$(realpath -m "$out")" "$url" 2>/dev/null
echo "$out: 1300 x $height CSS pixels at scale 0.6"
