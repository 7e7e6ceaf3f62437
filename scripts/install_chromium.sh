#!/usr/bin/env bash
# Make a Chromium available to Playwright, idempotently. In order:
#   1. one already there: $AESOP_CHROMIUM, or chromium / chromium-browser / google-chrome on PATH;
#   2. Debian's `chromium` package, where apt-get exists and we are root (or have sudo);
#   3. Playwright's own build (`playwright install chromium`), which needs its download host.
set -euo pipefail
PY=${1:-.venv/bin/python}

if [ -n "${AESOP_CHROMIUM:-}" ]; then
  if [ -x "$AESOP_CHROMIUM" ]; then echo "chromium: $AESOP_CHROMIUM (AESOP_CHROMIUM)"; exit 0; fi
  echo "AESOP_CHROMIUM=$AESOP_CHROMIUM is not an executable" >&2; exit 1
fi
for name in chromium chromium-browser google-chrome; do
  if path=$(command -v "$name"); then echo "chromium: $path"; exit 0; fi
done
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"; }
  if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
    echo "installing Debian's chromium package"
    if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; then
      echo "chromium: $(command -v chromium)"; exit 0
    fi
    echo "apt-get could not install chromium; trying Playwright's build" >&2
  fi
fi
echo "installing Playwright's Chromium"
"$PY" -m playwright install chromium
