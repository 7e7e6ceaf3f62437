#!/usr/bin/env bash
# Make PostgreSQL's server binaries (initdb, pg_ctl) available to the tests, idempotently.
# The tests start their own throwaway server (tests/pgserver.py); nothing here starts one.
#   1. already there: initdb on PATH, or Debian's /usr/lib/postgresql/*/bin;
#   2. Debian's `postgresql` package, where apt-get exists and we are root (or have sudo -n);
#   3. otherwise a message saying how; the PostgreSQL tests are then skipped (failed under CI).
set -euo pipefail

found() {
  command -v initdb >/dev/null 2>&1 && { echo "postgresql: $(command -v initdb)"; return 0; }
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && { echo "postgresql: $bin/initdb"; return 0; }
  return 1
}

found && exit 0
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && SUDO="sudo -n"; }
  if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
    echo "installing Debian's postgresql package (for the tests' own server)"
    if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql; then
      found && exit 0
    fi
    echo "apt-get could not install postgresql" >&2
  fi
fi
cat >&2 <<'MSG'
postgresql: initdb not found, and it cannot be installed from here (needs root or sudo).
  Install PostgreSQL's server: `sudo apt-get install postgresql` (Debian/Ubuntu),
  `brew install postgresql` (macOS), or put a directory holding initdb and pg_ctl on PATH.
  Until then the PostgreSQL store tests are skipped.
MSG
exit 0
