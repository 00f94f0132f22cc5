#!/usr/bin/env bash
# Runs the whole test suite on SQLite and PostgreSQL (and the browser suite in headless
# Chromium). PostgreSQL: $RAXX_TEST_PG if set; else the server on 127.0.0.1:5432 (trust,
# database `test`); else a throwaway cluster started with initdb in a temp folder. Under
# CI=true a missing PostgreSQL or Chromium is a failure, never a silent skip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
cleanup() { :; }
trap 'cleanup' EXIT

find_pg_bin() {
  local name=$1
  command -v "$name" 2>/dev/null && return 0
  ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1
}

start_throwaway_pg() {
  local initdb pg_ctl
  initdb=$(find_pg_bin initdb || true)
  pg_ctl=$(find_pg_bin pg_ctl || true)
  [ -n "$initdb" ] && [ -n "$pg_ctl" ] || return 1
  local dir port user
  dir=$(mktemp -d /tmp/raxx-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  user=$(id -un)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: run the cluster as the postgres user (created if missing).
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run=(runuser -u postgres --)
    user=postgres
  fi
  "${run[@]}" "$initdb" -D "$dir/data" -U "$user" --auth=trust >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
  "${run[@]}" "$pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" -l "$dir/pg.log" -w start >/dev/null || { cat "$dir/pg.log"; return 1; }
  cleanup() { "${run[@]}" "$pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
  "${run[@]}" "$(find_pg_bin createdb)" -h 127.0.0.1 -p "$port" -U "$user" test
  export RAXX_TEST_PG="postgres://$user@127.0.0.1:$port/test"
}

if [ -z "${RAXX_TEST_PG:-}" ]; then
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 && \
     psql -h 127.0.0.1 -U postgres -d test -tAc 'select 1' >/dev/null 2>&1; then
    export RAXX_TEST_PG="postgres://postgres@127.0.0.1:5432/test"
  elif start_throwaway_pg; then
    :
  elif [ "${CI:-}" = "true" ]; then
    echo "error: no PostgreSQL reachable and no initdb to start one; CI never skips the PostgreSQL tests" >&2
    exit 1
  else
    echo "!! no PostgreSQL available: the PostgreSQL half of the store and server tests will be skipped" >&2
  fi
fi
log "PostgreSQL for tests: ${RAXX_TEST_PG:-none}"

if [ -z "${RAXX_CHROMIUM:-}" ]; then
  for c in /usr/bin/chromium /usr/bin/chromium-browser; do
    [ -x "$c" ] && export RAXX_CHROMIUM="$c" && break
  done
fi
if [ -z "${RAXX_CHROMIUM:-}" ] && [ "${CI:-}" = "true" ]; then
  echo "error: Chromium is not installed (apt-get install chromium); CI never skips the browser suite" >&2
  exit 1
fi
log "Chromium for the browser suite: ${RAXX_CHROMIUM:-none}"

if command -v promtool >/dev/null; then
  log "promtool check rules deploy/prometheus/alerts.yml"
  promtool check rules deploy/prometheus/alerts.yml
elif [ "${CI:-}" = "true" ]; then
  echo "error: promtool is not installed (apt-get install prometheus); CI never skips the metrics checks" >&2
  exit 1
else
  echo "!! promtool not found: the metrics and alert-rule checks will be skipped (install the prometheus package)" >&2
fi

log "cargo test --workspace"
cargo test --workspace --all-targets --locked -- --test-threads="${RAXX_TEST_THREADS:-4}"

# `cargo test` above built the binary for the CLI's integration tests; build it only if missing.
[ -x "${CARGO_TARGET_DIR:-$PWD/target}/debug/raxx-console" ] || cargo build -p raxx-console --locked

log "schemathesis against the served OpenAPI document (scripts/schemathesis.sh)"
RAXX_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/raxx-console" scripts/schemathesis.sh

log "browser suite: Debian's Chromium driven by playwright-core, against the built binary"
if [ -n "${RAXX_CHROMIUM:-}" ]; then
  export RAXX_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/raxx-console"
  (cd e2e && npm ci --no-audit --no-fund --silent && node --test --test-concurrency=1 tests/)
else
  echo "!! Chromium not found: browser suite skipped (install the chromium package)" >&2
fi
