#!/usr/bin/env bash
# bench/run.sh: raxx-console measured side by side with Unleash Edge and unleash-server 8
# (issues 9 and 18).
#
# One command: builds (release), installs the peers outside the repository when missing
# (bench/peers.sh), sets up databases, consoles and the peers, runs workloads 1–10, tears
# everything down and prints a Markdown table (also written to $BENCH_OUT) and the scaling
# chart (SVG, beside the table).
# Every load run is bounded (wrk -d), all traffic goes to 127.0.0.1, nothing here runs in
# the test suite. See bench/README.md for what each workload measures.
#
# Knobs (environment):
#   BENCH_DURATION=5       seconds per measured wrk run (after BENCH_WARMUP seconds of warm-up)
#   BENCH_WARMUP=1
#   BENCH_CONNECTIONS=16   fixed concurrency of workloads 1 and 2
#   BENCH_AUDIT_ROWS="1000000 10000000"   audit log sizes of workload 4 ("" skips it)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1 servers on one core, wrk/pgbench on the other
#   BENCH_PG=postgres://postgres@127.0.0.1:5432   a PostgreSQL with trust auth
#   BENCH_PEERS=../peers   where the peers are installed (outside the repository; bench/peers.sh)
#   UNLEASH_DIR=$BENCH_PEERS/unleash8   where `npm install unleash-server@8.2.0` goes
#   BENCH_SKIP_EDGE=1      run without Unleash Edge (its first build takes 20–40 minutes)
#   BENCH_SCALE="1 10 100 1000 10000"  flags per app of workload 7
#   BENCH_SCALE_DURATION=5 seconds per point of workloads 7–10 (after 1 s of warm-up)
#   BENCH_APPS=1000 BENCH_KEYS=10000   workload 8's apps and client keys
#   BENCH_SKIP_BUILD=1     use the existing target/release binaries
#   BENCH_COOLDOWN=90      after the build, wait up to this long for the 1-minute load to drop below 1
#   BENCH_SKIP_UNLEASH=1   run without the peer
#   BENCH_OUT=FILE         where to write the table (default: $WORK/table.md, printed path)
#   BENCH_WORKLOADS="1 2 3 4 5 6 7 8 9 10"   run only some (figures of the others show as missing)
#   BENCH_KEEP=1           keep the work folder (logs, flags files, raw wrk output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
DUR=${BENCH_DURATION:-5}
WARM=${BENCH_WARMUP:-1}
CONC=${BENCH_CONNECTIONS:-16}
AUDIT_ROWS=${BENCH_AUDIT_ROWS-"1000000 10000000"}
# Filter kinds of workload 4 (the viewer's filters, issue 17).
AUDIT_KINDS=${BENCH_AUDIT_KINDS-"newest actor action_time actor_email action_part target_typed text_common text_rare reads_hidden"}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PEERS=${BENCH_PEERS:-$(dirname "$ROOT")/peers}
UNLEASH_DIR=${UNLEASH_DIR:-$PEERS/unleash8}
UNLEASH_VERSION=${UNLEASH8_VERSION:-8.2.0}
EDGE_BIN=$PEERS/edge/bin/unleash-edge
SCALE=${BENCH_SCALE:-"1 10 100 1000 10000"}
SDUR=${BENCH_SCALE_DURATION:-5}
N_APPS=${BENCH_APPS:-1000}
N_KEYS=${BENCH_KEYS:-10000}
# Most flags one app may have (raxx_core::flags::file::MAX_FLAGS): bigger sizes run on Edge only.
MAX_FLAGS=1000
WORK=$(mktemp -d /tmp/raxx-bench.XXXXXX)
OUT=${BENCH_OUT:-$WORK/table.md}
RES=$WORK/results.env
TAG=$$
P_SQLITE=18181 P_PG=18182 P_AUDIT=18183 P_APPS=18184 P_UNLEASH=18242 P_EDGE=18243
P_MI=(18191 18192 18193)
EDGE_TOKEN="*:development.raxx-bench-edge-$TAG"
UNLEASH_FRONTEND="default:development.raxx-bench-frontend-$TAG"
UNLEASH_ADMIN="*:*.raxx-bench-admin-$TAG"
UNLEASH_CLIENT="default:development.raxx-bench-client-$TAG"
UNLEASH_PASSWORD="Bench-$TAG-pw!"
: >"$RES"

PIDS=()
DBS=()

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
set_res() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }
res() { local v; v=$(grep -E "^$1=" "$RES" | tail -1 | cut -d= -f2-); printf '%s' "${v:-}"; }
psql_pg() { psql "$PG/postgres" -v ON_ERROR_STOP=1 -qAt "$@"; }
export PGOPTIONS='-c client_min_messages=warning'
want() { [[ " ${BENCH_WORKLOADS:-1 2 3 4 5 6 7 8 9 10} " == *" $1 "* ]]; }

# Only the servers this script started: the pid must still be one of ours (no pid reuse).
ours() {
    local c
    c=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $c == "$BIN serve --config $WORK/"* || $c == *unleash-server/dist/server.js* || $c == "$EDGE_BIN --port $P_EDGE "* ]]
}

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do
        ours "$pid" && kill "$pid" 2>/dev/null
    done
    sleep 1
    for pid in "${PIDS[@]}"; do
        ours "$pid" && kill -9 "$pid" 2>/dev/null
    done
    for db in "${DBS[@]}"; do
        psql_pg -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
        log "work folder kept: $WORK"
    else
        find "$WORK" -mindepth 1 ! -name table.md -delete 2>/dev/null
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_db() { # name → creates it and remembers to drop it
    psql_pg -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
    DBS+=("$1")
}
drop_db() { psql_pg -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The server's RSS plus its children's (unleash-server is one node process; raxx-console one).
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ------------------------------------------------------------------ preflight and build
for tool in cargo wrk psql pgbench taskset curl jq awk python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y wrk postgresql-client jq util-linux curl python3)"
done
psql_pg -c 'select 1' >/dev/null || die "no PostgreSQL at $PG (trust auth expected)"
for port in $P_SQLITE $P_PG $P_AUDIT $P_APPS $P_UNLEASH $P_EDGE "${P_MI[@]}"; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then die "port $port is already in use"; fi
done

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release -q -p raxx-console -p raxx-bench) || die "cargo build failed"
fi
BIN=${BENCH_BIN:-$ROOT/target/release/raxx-console}
RB=$ROOT/target/release/raxx-bench
[[ -x $BIN && -x $RB ]] || die "release binaries missing: $BIN $RB"

# ------------------------------------------------------------------ the peers: install
# Before the cool-down: the Edge build (first run only) is the longest step of all.
UNLEASH=0
UNLEASH_WHY=""
UNLEASH_NODE=""
if [[ ${BENCH_SKIP_UNLEASH:-0} == 1 ]]; then
    UNLEASH_WHY="skipped (BENCH_SKIP_UNLEASH=1)"
elif ! command -v npm >/dev/null; then
    UNLEASH_WHY="npm is not installed"
elif ! BENCH_PEERS=$PEERS UNLEASH8_VERSION=$UNLEASH_VERSION bash "$BENCH/peers.sh" unleash >"$WORK/peers-unleash.log" 2>&1; then
    UNLEASH_WHY="installing unleash-server@$UNLEASH_VERSION failed: $(tail -1 "$WORK/peers-unleash.log")"
else
    UNLEASH_NODE=$(cat "$UNLEASH_DIR/node-path")
    UNLEASH=1
fi
EDGE=0
EDGE_WHY=""
EDGE_VERSION=""
if [[ ${BENCH_SKIP_EDGE:-0} == 1 ]]; then
    EDGE_WHY="skipped (BENCH_SKIP_EDGE=1)"
elif ! command -v node >/dev/null; then
    EDGE_WHY="node is not installed (it converts the flags file into Edge's bootstrap file)"
else
    if [[ ! -x $EDGE_BIN ]]; then log "building Unleash Edge into $PEERS/edge (first run only; 20–40 minutes)"; fi
    if BENCH_PEERS=$PEERS bash "$BENCH/peers.sh" edge >"$WORK/peers-edge.log" 2>&1 && [[ -x $EDGE_BIN ]]; then
        EDGE=1
        EDGE_VERSION=$(cat "$PEERS/edge/VERSION")
    else
        EDGE_WHY="building unleash-edge failed: $(tail -1 "$WORK/peers-edge.log")"
    fi
fi

# Let the build's load decay (up to BENCH_COOLDOWN seconds, until the 1-minute load is < 1).
for _ in $(seq 1 $(( ${BENCH_COOLDOWN:-90} / 5 ))); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l >= 1.0) }' || break
    sleep 5
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before measuring: $LOAD_START; work folder $WORK"

# ------------------------------------------------------------------ flags files and configs
"$RB" flags --app bench-5 --count 5 >"$WORK/flags-5.json"
"$RB" flags --app bench-50 --count 50 >"$WORK/flags-50.json"
"$RB" flags --app bench-350 --count 350 >"$WORK/flags-350.json"
"$RB" flags --app bench-w --count 5 >"$WORK/flags-w0.json"
"$RB" flags --app bench-w --count 5 --flip 1 >"$WORK/flags-w1.json"
printf '{"context":{"targetingKey":"user-4711","email":"ann@example.com","plan":"pro","appVersion":"2.5.1"}}' >"$WORK/ctx.json"
# The same context for Unleash: Edge's POST /api/frontend takes the context itself,
# unleash-server's takes it under "context"; userId is the stickiness (targetingKey's role).
printf '{"userId":"user-4711","properties":{"email":"ann@example.com","plan":"pro","appVersion":"2.5.1"}}' >"$WORK/edge-ctx.json"
printf '{"context":{"userId":"user-4711","properties":{"email":"ann@example.com","plan":"pro","appVersion":"2.5.1"}}}' >"$WORK/unleash-ctx.json"
# Workload 7: one app per size; workload 9: two files that differ in a flag without rules
# (f0003-sample-rate's default), so every apply changes what OFREP answers.
for n in $SCALE; do "$RB" flags --app "bench-s$n" --count "$n" >"$WORK/flags-s$n.json"; done
jq -c '.flags["f0003-sample-rate"].default = "high"' "$WORK/flags-w0.json" >"$WORK/flags-p1.json"
cp "$WORK/flags-w0.json" "$WORK/flags-p0.json"

DB_PG=bench_console_$TAG
DB_RAW=bench_raw_$TAG
DB_UNLEASH=bench_unleash_$TAG

write_config() { # file port database_url
    local n i
    cat >"$1" <<EOF
public_url = "http://staging.localhost:$2"
listen = "127.0.0.1:$2"
database_url = "$3"

[groups.bench]
members = ["bench@raxx.test"]
grants = [{ role = "console-flag-reader", env_scope = "staging" }, { role = "console-audit-user", env_scope = "staging" }]

[[apps]]
name = "bench-5"
env = "staging"

[[apps]]
name = "bench-50"
env = "staging"

[[apps]]
name = "bench-350"
env = "staging"

[[apps]]
name = "bench-w"
env = "staging"
EOF
    for n in $SCALE; do printf '\n[[apps]]\nname = "bench-s%s"\nenv = "staging"\n' "$n" >>"$1"; done
    for i in $(seq -w 0 31); do printf '\n[[apps]]\nname = "bench-m%s"\nenv = "staging"\n' "$i" >>"$1"; done
}

setup_console() { # name port database_url → keys in results
    local name=$1 port=$2 url=$3 cfg=$WORK/$1.toml
    write_config "$cfg" "$port" "$url"
    "$BIN" migrate --config "$cfg" >"$WORK/$name-setup.log" 2>&1 || die "$name: migrate failed (see $WORK/$name-setup.log)"
    for f in 5 50 350 w0; do
        "$BIN" flags apply --config "$cfg" "$WORK/flags-$f.json" >>"$WORK/$name-setup.log" 2>&1 ||
            die "$name: flags apply $f failed (see $WORK/$name-setup.log)"
    done
    set_res "$name.key5" "$("$BIN" keys create --app bench-5 --kind client --config "$cfg" 2>>"$WORK/$name-setup.log" | tail -1)"
    set_res "$name.key350" "$("$BIN" keys create --app bench-350 --kind client --config "$cfg" 2>>"$WORK/$name-setup.log" | tail -1)"
    set_res "$name.deploy" "$("$BIN" keys create --app bench-w --kind deploy --config "$cfg" 2>>"$WORK/$name-setup.log" | tail -1)"
    set_res "$name.keyw" "$("$BIN" keys create --app bench-w --kind client --config "$cfg" 2>>"$WORK/$name-setup.log" | tail -1)"
}

start_raxx() { # name port → pid in results, start-up time
    local name=$1 port=$2
    local line
    line=$("$RB" start --ready "http://127.0.0.1:$port/readyz" --log "$WORK/$name.log" --pid-out "$WORK/$name.pid" -- \
        taskset -c "$SCPU" "$BIN" serve --config "$WORK/$name.toml") || die "$name did not start (see $WORK/$name.log)"
    PIDS+=("$(cat "$WORK/$name.pid")")
    set_res "$name.pid" "$(cat "$WORK/$name.pid")"
    set_res "$name.start_ms" "$(sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$line")"
}

# A session cookie for bench@raxx.test: login-link, then POST its token (what the link's
# confirmation page does) with the console's Host.
session_cookie() { # name port
    local name=$1 port=$2 url
    url=$("$BIN" login-link --email bench@raxx.test --config "$WORK/$name.toml" 2>>"$WORK/$name-setup.log" | tail -1)
    curl -s -o /dev/null -D - -H "Host: staging.localhost:$port" --data-urlencode "token=${url##*/}" "http://127.0.0.1:$port/auth/link" |
        tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(raxx_console[^;]*\).*/\1/p' | head -1
}

# wrk_run KEY URL [VAR=value …]: warm-up, then one measured run; RESULT fields → results.
wrk_run() {
    local key=$1 url=$2
    shift 2
    local c=${WRK_CONNECTIONS:-$CONC}
    env "$@" taskset -c "$CCPU" wrk -t1 -c"$c" -d"${WARM}s" -s "$BENCH/wrk/bench.lua" "$url" >/dev/null 2>&1 || true
    env "$@" taskset -c "$CCPU" wrk -t1 -c"$c" -d"${DUR}s" --timeout 10s -s "$BENCH/wrk/bench.lua" "$url" >"$WORK/wrk-$key.txt" 2>&1 ||
        die "wrk $key failed: $(tail -3 "$WORK/wrk-$key.txt")"
    local line
    line=$(grep '^RESULT' "$WORK/wrk-$key.txt") || die "wrk $key printed no RESULT"
    for f in $line; do
        [[ $f == RESULT ]] && continue
        set_res "$key.${f%%=*}" "${f#*=}"
    done
    local errs=$(($(res "$key.err_status") + $(res "$key.err_connect") + $(res "$key.err_read") + $(res "$key.err_timeout")))
    set_res "$key.load" "$(cut -d' ' -f1 /proc/loadavg)"
    log "$key: $(res "$key.rps") req/s, p50 $(res "$key.p50_us") µs, p99 $(res "$key.p99_us") µs, errors $errs (load $(res "$key.load"))"
    if [[ $errs -gt 0 ]]; then set_res "$key.errors" "$errs"; fi
}

expect_status() { # what want curl-args… (fails the run when a workload is misconfigured)
    local what=$1 want=$2
    shift 2
    local got
    got=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' "$@")
    [[ $got == "$want" ]] || die "$what answered $got, not $want: $(head -c 300 "$WORK/probe.out")"
}

# ================================================================== set-up
log "setting up raxx-console on SQLite and PostgreSQL"
new_db "$DB_PG"
setup_console sqlite $P_SQLITE "sqlite://$WORK/sqlite/console.db"
setup_console pg $P_PG "$PG/$DB_PG"
if want 7; then
    log "set-up for workload 7: apps of $SCALE flags (PostgreSQL)"
    for n in $SCALE; do
        [[ $n -le $MAX_FLAGS ]] || continue
        "$BIN" flags apply --config "$WORK/pg.toml" "$WORK/flags-s$n.json" >>"$WORK/pg-setup.log" 2>&1 || die "flags apply of $n flags failed (see $WORK/pg-setup.log)"
        set_res "pg.keys$n" "$("$BIN" keys create --app "bench-s$n" --kind client --config "$WORK/pg.toml" 2>>"$WORK/pg-setup.log" | tail -1)"
    done
fi
if want 10; then
    log "set-up for workload 10: 32 apps with a deploy key each, login links"
    : >"$WORK/multi-apps.txt"
    for i in $(seq -w 0 31); do
        echo "bench-m$i $("$BIN" keys create --app "bench-m$i" --kind deploy --config "$WORK/pg.toml" 2>>"$WORK/pg-setup.log" | tail -1)" >>"$WORK/multi-apps.txt"
    done
fi

# Workload 6 (start-up, idle RSS): each server started on a migrated database, idle 5 s.
start_raxx sqlite $P_SQLITE
start_raxx pg $P_PG
sleep 5
for s in sqlite pg; do set_res "$s.idle_rss_kb" "$(rss_kb "$(res $s.pid)")"; done

UNLEASH_PID=""
start_unleash() { # log-name → UNLEASH_PID and UNLEASH_START_MS (no subshell: PIDS must see it)
    local line
    line=$("$RB" start --ready "http://127.0.0.1:$P_UNLEASH/health" --log "$WORK/$1.log" --pid-out "$WORK/unleash.pid" -- \
        env TZ=UTC NODE_ENV=production DATABASE_URL="$PG/$DB_UNLEASH" DATABASE_SSL=false \
        HTTP_HOST=127.0.0.1 HTTP_PORT=$P_UNLEASH CHECK_VERSION=false SEND_TELEMETRY=false \
        SDK_API_RATE_LIMIT_PER_MINUTE=1000000000 TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE=1000000000 \
        LOG_LEVEL=warn INIT_ADMIN_API_TOKENS="$UNLEASH_ADMIN" INIT_BACKEND_API_TOKENS="$UNLEASH_CLIENT" \
        INIT_FRONTEND_API_TOKENS="$UNLEASH_FRONTEND" \
        UNLEASH_DEFAULT_ADMIN_USERNAME=admin UNLEASH_DEFAULT_ADMIN_PASSWORD="$UNLEASH_PASSWORD" \
        taskset -c "$SCPU" "$UNLEASH_NODE" "$UNLEASH_DIR/node_modules/unleash-server/dist/server.js") || return 1
    UNLEASH_PID=$(cat "$WORK/unleash.pid")
    PIDS+=("$UNLEASH_PID")
    UNLEASH_START_MS=$(sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$line")
}
stop_pid() {
    ours "$1" || return 0
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do ours "$1" || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}

if [[ $UNLEASH == 1 ]]; then
    log "starting unleash-server $UNLEASH_VERSION (first start migrates its database)"
    new_db "$DB_UNLEASH"
    if start_unleash unleash-first &&
        node "$BENCH/unleash/load-flags.mjs" "http://127.0.0.1:$P_UNLEASH" "$UNLEASH_ADMIN" "$WORK/flags-5.json" >"$WORK/unleash-load.log" 2>&1; then
        stop_pid "$UNLEASH_PID"
        if start_unleash unleash; then
            set_res unleash.start_ms "$UNLEASH_START_MS"
            set_res unleash.pid "$UNLEASH_PID"
            sleep 5
            set_res unleash.idle_rss_kb "$(rss_kb "$UNLEASH_PID")"
        else
            UNLEASH=0 UNLEASH_WHY="unleash-server did not restart: $(tail -2 "$WORK/unleash.log" | tr '\n' ' ')"
        fi
    else
        UNLEASH=0
        UNLEASH_WHY="unleash-server did not start or take the flags: $(tail -2 "$WORK/unleash-first.log" "$WORK/unleash-load.log" 2>/dev/null | tr '\n' ' ')"
    fi
fi
[[ $UNLEASH == 1 ]] || log "the peer is missing: $UNLEASH_WHY"

# ================================================================== workload 1: OFREP bulk
log "workload 1: OFREP bulk evaluation (c=$CONC, ${DUR}s per run)"
ofrep_args() { # backend port flags → wrk env
    local key
    key=$(res "$1.key$3")
    printf '%s\n' BENCH_METHOD=POST "BENCH_BODY=$WORK/ctx.json" "BENCH_H1=Host: staging.localhost:$2" \
        "BENCH_H2=Authorization: Bearer $key" "BENCH_H3=Content-Type: application/json"
}
etag_of() { # backend port flags
    local key
    key=$(res "$1.key$3")
    curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$2/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$2" \
        -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json" |
        tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p'
}
unleash_features() { curl -s -D - -o /dev/null "http://127.0.0.1:$P_UNLEASH/api/client/features" -H "Authorization: $UNLEASH_CLIENT" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p'; }

for n in $(want 1 && echo 5 350); do
    if [[ $n == 350 && $UNLEASH == 1 ]]; then
        log "loading 345 more flags into unleash"
        node "$BENCH/unleash/load-flags.mjs" "http://127.0.0.1:$P_UNLEASH" "$UNLEASH_ADMIN" "$WORK/flags-350.json" 5 >>"$WORK/unleash-load.log" 2>&1 ||
            die "loading flags into unleash failed: $(tail -2 "$WORK/unleash-load.log")"
        got=$(curl -s "http://127.0.0.1:$P_UNLEASH/api/client/features" -H "Authorization: $UNLEASH_CLIENT" | jq '.features | length')
        [[ $got == 350 ]] || die "unleash serves $got flags, not 350"
    fi
    for backend in sqlite pg; do
        port=$([[ $backend == sqlite ]] && echo $P_SQLITE || echo $P_PG)
        mapfile -t args < <(ofrep_args $backend "$port" $n)
        expect_status "OFREP $backend $n" 200 -X POST "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$port" \
            -H "Authorization: Bearer $(res $backend.key$n)" -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json"
        got=$(jq '.flags | length' "$WORK/probe.out")
        [[ $got == "$n" ]] || die "OFREP $backend answered $got flags, not $n"
        wrk_run "w1.$backend.$n.full" "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" "${args[@]}"
        etag=$(etag_of $backend "$port" $n)
        expect_status "OFREP $backend $n If-None-Match" 304 -X POST "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$port" \
            -H "Authorization: Bearer $(res $backend.key$n)" -H 'Content-Type: application/json' -H "If-None-Match: $etag" --data-binary @"$WORK/ctx.json"
        wrk_run "w1.$backend.$n.etag" "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" "${args[@]}" "BENCH_H4=If-None-Match: $etag"
    done
    if [[ $UNLEASH == 1 ]]; then
        uargs=("BENCH_H1=Authorization: $UNLEASH_CLIENT")
        wrk_run "w1.unleash.$n.full" "http://127.0.0.1:$P_UNLEASH/api/client/features" "${uargs[@]}"
        etag=$(unleash_features)
        expect_status "unleash client features If-None-Match" 304 "http://127.0.0.1:$P_UNLEASH/api/client/features" \
            -H "Authorization: $UNLEASH_CLIENT" -H "If-None-Match: $etag"
        wrk_run "w1.unleash.$n.etag" "http://127.0.0.1:$P_UNLEASH/api/client/features" "${uargs[@]}" "BENCH_H2=If-None-Match: $etag"
    fi
done

# ------------------------------------------------------------------ workload 1: Unleash Edge beside it
start_edge() { # bootstrap-file log-name → EDGE_PID
    local line
    line=$("$RB" start --ready "http://127.0.0.1:$P_EDGE/internal-backstage/health" --log "$WORK/$2.log" --pid-out "$WORK/edge.pid" -- \
        env RUST_LOG=warn taskset -c "$SCPU" "$EDGE_BIN" --port $P_EDGE --interface 127.0.0.1 --workers 2 \
        offline --bootstrap-file "$1" --frontend-tokens "$EDGE_TOKEN" --client-tokens "$EDGE_TOKEN") || return 1
    EDGE_PID=$(cat "$WORK/edge.pid")
    PIDS+=("$EDGE_PID")
    set_res "$2.start_ms" "$(sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$line")"
}
edge_args() { printf '%s\n' BENCH_METHOD=POST "BENCH_BODY=$WORK/edge-ctx.json" "BENCH_H1=Authorization: $EDGE_TOKEN" "BENCH_H2=Content-Type: application/json"; }
# edge_check N OFREP-PORT OFREP-KEY: both servers answer the same values for the bench
# context (tools.py compare), or the run stops before timing anything.
edge_check() {
    local n=$1 port=$2 key=$3
    curl -s -X POST "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$port" -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json" >"$WORK/check-ofrep-$n.json"
    expect_status "Edge /api/frontend ($n flags)" 200 -X POST "http://127.0.0.1:$P_EDGE/api/frontend/all" -H "Authorization: $EDGE_TOKEN" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/edge-ctx.json"
    cp "$WORK/probe.out" "$WORK/check-edge-$n.json"
    python3 "$BENCH/tools.py" compare --ofrep "$WORK/check-ofrep-$n.json" --edge "$WORK/check-edge-$n.json" --count "$n" >"$WORK/check-$n.txt" 2>&1 ||
        die "raxx-console and Edge answer different values for the bench context at $n flags: $(cat "$WORK/check-$n.txt")"
    set_res "check.$n" "$(head -1 "$WORK/check-$n.txt")"
    log "$(head -1 "$WORK/check-$n.txt")"
}
if want 1; then
    log "workload 1: the HTTP floor (/healthz)"
    for backend in sqlite pg; do
        port=$([[ $backend == sqlite ]] && echo $P_SQLITE || echo $P_PG)
        expect_status "/healthz $backend" 200 "http://127.0.0.1:$port/healthz"
        wrk_run "w1.$backend.healthz" "http://127.0.0.1:$port/healthz"
    done
fi
if want 1 && [[ $EDGE == 1 ]]; then
    log "workload 1: Unleash Edge $EDGE_VERSION, offline mode, the same flags"
    for n in 5 350; do
        node "$BENCH/unleash/to-bootstrap.mjs" "$WORK/flags-$n.json" >"$WORK/edge-$n.json" || die "to-bootstrap.mjs failed"
        start_edge "$WORK/edge-$n.json" "edge-$n" || die "Edge did not start (see $WORK/edge-$n.log)"
        [[ $n == 5 ]] && { sleep 5; set_res edge.idle_rss_kb "$(rss_kb "$EDGE_PID")"; }
        edge_check "$n" $P_PG "$(res pg.key$n)"
        mapfile -t args < <(edge_args)
        wrk_run "w1.edge.$n.full" "http://127.0.0.1:$P_EDGE/api/frontend" "${args[@]}"
        if [[ $n == 5 ]]; then
            expect_status "Edge health" 200 "http://127.0.0.1:$P_EDGE/internal-backstage/health"
            wrk_run "w1.edge.healthz" "http://127.0.0.1:$P_EDGE/internal-backstage/health"
        fi
        set_res "edge.$n.rss_kb" "$(rss_kb "$EDGE_PID")"
        set_res "edge.$n.peak_rss_kb" "$(hwm_kb "$EDGE_PID")"
        stop_pid "$EDGE_PID"
    done
fi
if want 1 && [[ $UNLEASH == 1 ]]; then
    log "workload 1: unleash-server's frontend API (the same evaluation work as OFREP bulk)"
    expect_status "unleash /api/frontend" 200 -X POST "http://127.0.0.1:$P_UNLEASH/api/frontend" -H "Authorization: $UNLEASH_FRONTEND" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/unleash-ctx.json"
    wrk_run "w1.unleash.350.frontend" "http://127.0.0.1:$P_UNLEASH/api/frontend" BENCH_METHOD=POST "BENCH_BODY=$WORK/unleash-ctx.json" \
        "BENCH_H1=Authorization: $UNLEASH_FRONTEND" "BENCH_H2=Content-Type: application/json"
fi

# p99 at half the maximum rate: connections × (1000 / 10 ms) ≈ half the measured rate.
want 1 && log "workload 1: p99 at half the maximum rate"
for backend in $(want 1 && echo sqlite pg); do
    port=$([[ $backend == sqlite ]] && echo $P_SQLITE || echo $P_PG)
    for n in 5 350; do
        for mode in full etag; do
            max=$(res "w1.$backend.$n.$mode.rps")
            conns=$(awk -v r="$max" 'BEGIN { c = int(r / 2 / 100 + 0.5); if (c < 1) c = 1; print c }')
            mapfile -t args < <(ofrep_args $backend "$port" $n)
            if [[ $mode == etag ]]; then args+=("BENCH_H4=If-None-Match: $(etag_of $backend "$port" $n)"); fi
            WRK_CONNECTIONS=$conns wrk_run "w1.$backend.$n.$mode.half" "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" \
                "${args[@]}" BENCH_DELAY_MS=10
        done
    done
done

# ================================================================== workload 2: authenticated page
want 2 && log "workload 2: an authenticated page with a 50-row table"
for backend in $(want 2 && echo sqlite pg); do
    port=$([[ $backend == sqlite ]] && echo $P_SQLITE || echo $P_PG)
    cookie=$(session_cookie $backend "$port")
    [[ -n $cookie ]] || die "$backend: no session cookie from the login link"
    set_res "$backend.cookie" "$cookie"
    expect_status "$backend flags page" 200 "http://127.0.0.1:$port/apps/bench-50/flags" -H "Host: staging.localhost:$port" -H "Cookie: $cookie"
    rows=$(grep -oE 'f00[0-4][0-9]-[a-z-]+' "$WORK/probe.out" | sort -u | wc -l)
    [[ $rows -ge 50 ]] || die "$backend flags page shows $rows flag rows, not 50"
    wrk_run "w2.$backend" "http://127.0.0.1:$port/apps/bench-50/flags" "BENCH_H1=Host: staging.localhost:$port" "BENCH_H2=Cookie: $cookie"
done
if [[ $UNLEASH == 1 ]] && want 2; then
    ucookie=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$P_UNLEASH/auth/simple/login" -H 'Content-Type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$UNLEASH_PASSWORD\"}" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(unleash-session=[^;]*\).*/\1/p' | head -1)
    [[ -n $ucookie ]] || die "unleash: no session cookie from /auth/simple/login"
    uurl="http://127.0.0.1:$P_UNLEASH/api/admin/search/features?project=IS%3Adefault&limit=50"
    expect_status "unleash admin search" 200 "$uurl" -H "Cookie: $ucookie"
    got=$(jq '.features | length' "$WORK/probe.out")
    [[ $got == 50 ]] || die "unleash admin search answered $got features, not 50"
    wrk_run "w2.unleash" "$uurl" "BENCH_H1=Cookie: $ucookie"
fi

if [[ $UNLEASH == 1 ]] && ! want 1; then
    node "$BENCH/unleash/load-flags.mjs" "http://127.0.0.1:$P_UNLEASH" "$UNLEASH_ADMIN" "$WORK/flags-350.json" 5 >>"$WORK/unleash-load.log" 2>&1 ||
        die "loading flags into unleash failed"
fi

# Workload 6: RSS after sustained load (workloads 1 and 2).
for s in sqlite pg; do
    set_res "$s.loaded_rss_kb" "$(rss_kb "$(res $s.pid)")"
    set_res "$s.peak_rss_kb" "$(hwm_kb "$(res $s.pid)")"
done
if [[ $UNLEASH == 1 ]]; then
    set_res unleash.loaded_rss_kb "$(rss_kb "$UNLEASH_PID")"
    set_res unleash.peak_rss_kb "$(hwm_kb "$UNLEASH_PID")"
    stop_pid "$UNLEASH_PID"
fi
stop_pid "$(res sqlite.pid)"

# ================================================================== workload 3: audited writes
if want 3; then
log "workload 3: audited writes (flags apply over the API) beside raw single-row inserts"
new_db "$DB_RAW"
psql "$PG/$DB_RAW" -v ON_ERROR_STOP=1 -q -c "CREATE TABLE raw_insert (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, context TEXT NOT NULL)"
cat >"$WORK/raw-insert.sql" <<'EOF'
INSERT INTO raw_insert (at, actor, action, context) VALUES (1, 'bench', 'flag.apply', '{"selected_env":"staging"}');
EOF
deploy=$(res pg.deploy)
wargs=(BENCH_METHOD=PUT "BENCH_BODY=$WORK/flags-w0.json" "BENCH_BODY_B=$WORK/flags-w1.json" "BENCH_H1=Host: staging.localhost:$P_PG"
    "BENCH_H2=Authorization: Bearer $deploy" "BENCH_H3=Content-Type: application/json")
expect_status "flags apply over the API" 200 -X PUT "http://127.0.0.1:$P_PG/api/v1/apps/bench-w/flags" -H "Host: staging.localhost:$P_PG" \
    -H "Authorization: Bearer $deploy" -H 'Content-Type: application/json' --data-binary @"$WORK/flags-w1.json"
audit_before=$(psql "$PG/$DB_PG" -qAt -c "select count(*) from console_audit_log where action = 'flag.apply'")
for c in 1 8 32; do
    WRK_CONNECTIONS=$c wrk_run "w3.apply.$c" "http://127.0.0.1:$P_PG/api/v1/apps/bench-w/flags" "${wargs[@]}"
    taskset -c "$CCPU" pgbench -n -M prepared -c "$c" -j 1 -T "$DUR" -f "$WORK/raw-insert.sql" "$PG/$DB_RAW" >"$WORK/pgbench-$c.txt" 2>&1 ||
        die "pgbench failed: $(tail -3 "$WORK/pgbench-$c.txt")"
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench-$c.txt" | head -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$WORK/pgbench-$c.txt")
    set_res "w3.raw.$c.tps" "$tps"
    set_res "w3.raw.$c.lat_ms" "$lat"
    log "raw insert c=$c: $tps tx/s, latency average $lat ms"
done
audit_after=$(psql "$PG/$DB_PG" -qAt -c "select count(*) from console_audit_log where action = 'flag.apply'")
set_res w3.audit_rows "$((audit_after - audit_before))"
"$BIN" audit verify --config "$WORK/pg.toml" >"$WORK/pg-verify.log" 2>&1 && set_res w3.verify ok || set_res w3.verify FAILED
drop_db "$DB_RAW"
fi

# ================================================================== workload 10: writes to 32 apps, sign-in beside them
login_links() { # name port count file: one-time sign-in tokens
    : >"$4"
    for _ in $(seq 1 "$3"); do
        url=$("$BIN" login-link --email bench@raxx.test --config "$WORK/$1.toml" 2>>"$WORK/$1-setup.log" | tail -1)
        echo "${url##*/}" >>"$4"
    done
}
if want 10; then
    log "workload 10: sign-in alone, then beside 32 clients applying flags to 32 apps"
    login_links pg $P_PG 30 "$WORK/links-idle.txt"
    python3 "$BENCH/tools.py" signin --port $P_PG --tokens "$WORK/links-idle.txt" --max-seconds "$SDUR" >"$WORK/signin-idle.txt" 2>&1 ||
        die "sign-in failed: $(tail -2 "$WORK/signin-idle.txt")"
    for f in $(grep '^RESULT' "$WORK/signin-idle.txt"); do [[ $f == RESULT || $f == signin ]] || set_res "w10.idle.${f%%=*}" "${f#*=}"; done
    login_links pg $P_PG 80 "$WORK/links-busy.txt"
    audit_before=$(psql "$PG/$DB_PG" -qAt -c "select count(*) from console_audit_log where action = 'flag.apply'")
    margs=(BENCH_METHOD=PUT "BENCH_BODY=$WORK/flags-w0.json" "BENCH_BODY_B=$WORK/flags-w1.json" "BENCH_H1=Host: staging.localhost:$P_PG"
        "BENCH_H3=Content-Type: application/json" "BENCH_MULTI=$WORK/multi-apps.txt")
    # Sign-ins start after wrk's warm-up and stop before its measured run ends.
    (sleep "$((WARM + 1))"; python3 "$BENCH/tools.py" signin --port $P_PG --tokens "$WORK/links-busy.txt" --max-seconds "$((DUR > 3 ? DUR - 2 : 1))" >"$WORK/signin-busy.txt" 2>&1) &
    signin_job=$!
    WRK_CONNECTIONS=32 wrk_run "w10.apply32" "http://127.0.0.1:$P_PG/api/v1/apps/bench-m00/flags" "${margs[@]}"
    wait "$signin_job" || log "sign-in under load: $(tail -1 "$WORK/signin-busy.txt") (reported in the table)"
    for f in $(grep '^RESULT' "$WORK/signin-busy.txt"); do [[ $f == RESULT || $f == signin ]] || set_res "w10.busy.${f%%=*}" "${f#*=}"; done
    audit_after=$(psql "$PG/$DB_PG" -qAt -c "select count(*) from console_audit_log where action = 'flag.apply'")
    set_res w10.audit_rows "$((audit_after - audit_before))"
    "$BIN" audit verify --config "$WORK/pg.toml" >"$WORK/pg-verify10.log" 2>&1 && set_res w10.verify ok || set_res w10.verify FAILED
    log "sign-in alone p99 $(res w10.idle.p99_ms) ms; beside 32 writers p99 $(res w10.busy.p99_ms) ms (n=$(res w10.busy.n))"
fi

# ================================================================== workload 7: 1 to 10,000 flags per app
if want 7; then
    log "workload 7: OFREP bulk from 1 to 10,000 flags per app (${SDUR}s per point)"
    : >"$WORK/scale.dat"
    for n in $SCALE; do
      key=$(res "pg.keys$n")
      rrps="-"
      if [[ $n -le $MAX_FLAGS ]]; then
        expect_status "OFREP $n flags" 200 -X POST "http://127.0.0.1:$P_PG/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$P_PG" \
            -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json"
        [[ $(jq '.flags | length' "$WORK/probe.out") == "$n" ]] || die "OFREP answered $(jq '.flags | length' "$WORK/probe.out") flags, not $n"
        set_res "w7.raxx.$n.body" "$(stat -c %s "$WORK/probe.out")"
        mapfile -t args < <(ofrep_args pg $P_PG "s$n")
        DUR=$SDUR WARM=1 wrk_run "w7.raxx.$n" "http://127.0.0.1:$P_PG/ofrep/v1/evaluate/flags" "${args[@]}"
        rrps=$(res "w7.raxx.$n.rps")
      fi
        erps="-"
        if [[ $EDGE == 1 ]]; then
            node "$BENCH/unleash/to-bootstrap.mjs" "$WORK/flags-s$n.json" >"$WORK/edge-s$n.json" || die "to-bootstrap.mjs failed"
            start_edge "$WORK/edge-s$n.json" "edge-s$n" || die "Edge did not start with $n flags (see $WORK/edge-s$n.log)"
            [[ $n -le $MAX_FLAGS ]] && edge_check "$n" $P_PG "$key"
            curl -s -o "$WORK/probe.out" -X POST "http://127.0.0.1:$P_EDGE/api/frontend" -H "Authorization: $EDGE_TOKEN" \
                -H 'Content-Type: application/json' --data-binary @"$WORK/edge-ctx.json"
            set_res "w7.edge.$n.body" "$(stat -c %s "$WORK/probe.out")"
            mapfile -t args < <(edge_args)
            DUR=$SDUR WARM=1 wrk_run "w7.edge.$n" "http://127.0.0.1:$P_EDGE/api/frontend" "${args[@]}"
            set_res "w7.edge.$n.rss_kb" "$(rss_kb "$EDGE_PID")"
            stop_pid "$EDGE_PID"
            erps=$(res "w7.edge.$n.rps")
        fi
        echo "$n $rrps $erps" >>"$WORK/scale.dat"
    done
    CHART=${OUT%.md}-scale.svg
    python3 "$BENCH/tools.py" chart --data "$WORK/scale.dat" --out "$CHART" --label-b "Unleash Edge $EDGE_VERSION /api/frontend"
    set_res w7.chart "$CHART"
    set_res w7.raxx_rss_kb "$(rss_kb "$(res pg.pid)")"
fi
stop_pid "$(res pg.pid)"

# ================================================================== workload 9: three instances on one PostgreSQL
if want 9; then
    log "workload 9: three serve processes on one PostgreSQL"
    mi_urls=()
    for i in 0 1 2; do
        port=${P_MI[$i]}
        write_config "$WORK/mi$i.toml" "$port" "$PG/$DB_PG"
        start_raxx "mi$i" "$port"
        mi_urls+=("http://127.0.0.1:$port/ofrep/v1/evaluate/flags")
    done
    key=$(res pg.key5)
    for i in 0 1 2; do
        port=${P_MI[$i]}
        expect_status "OFREP on instance $i" 200 -X POST "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$port" \
            -H "Authorization: Bearer $key" -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json"
    done
    # Summed throughput: one wrk per instance at the same time (each c=CONC/3), all on the client core.
    wpids=()
    for i in 0 1 2; do
        port=${P_MI[$i]}
        mapfile -t args < <(ofrep_args pg "$port" 5)
        (env "${args[@]}" taskset -c "$CCPU" wrk -t1 -c$(( (CONC + 2) / 3 )) -d"${SDUR}s" --timeout 10s -s "$BENCH/wrk/bench.lua" "${mi_urls[$i]}" >"$WORK/wrk-w9.$i.txt" 2>&1) &
        wpids+=($!)
    done
    for p in "${wpids[@]}"; do wait "$p" || die "wrk on an instance failed"; done
    sum=0
    for i in 0 1 2; do
        r=$(grep '^RESULT' "$WORK/wrk-w9.$i.txt" | tr ' ' '\n' | sed -n 's/^rps=//p')
        set_res "w9.rps.$i" "$r"
        sum=$(awk -v a="$sum" -v b="$r" 'BEGIN { print a + b }')
        e=$(grep '^RESULT' "$WORK/wrk-w9.$i.txt" | tr ' ' '\n' | awk -F= '/^err_/ { s += $2 } END { print s + 0 }')
        [[ $e == 0 ]] || set_res "w9.$i.errors" "$e"
    done
    set_res w9.rps_sum "$sum"
    log "three instances: $sum req/s summed"
    python3 "$BENCH/tools.py" propagate --apply-port "${P_MI[0]}" --read-ports "${P_MI[1]},${P_MI[2]}" --app bench-w \
        --deploy-key "$(res pg.deploy)" --client-key "$(res pg.keyw)" --body-a "$WORK/flags-p1.json" --body-b "$WORK/flags-p0.json" \
        --flag f0003-sample-rate --ctx "$WORK/ctx.json" --rounds 200 --max-seconds "$((SDUR * 3))" >"$WORK/propagate.txt" 2>&1 ||
        die "propagation failed: $(tail -2 "$WORK/propagate.txt")"
    for f in $(grep '^RESULT' "$WORK/propagate.txt"); do [[ $f == RESULT || $f == propagate ]] || set_res "w9.prop.${f%%=*}" "${f#*=}"; done
    log "propagation to the two other instances: p50 $(res w9.prop.p50_ms) ms, p99 $(res w9.prop.p99_ms) ms (n=$(res w9.prop.n))"
    for i in 0 1 2; do stop_pid "$(res "mi$i.pid")"; done
fi

# ================================================================== workload 8: 1,000 apps, 10,000 keys
if want 8; then
    log "workload 8: $N_APPS apps with $N_KEYS client keys in the key cache"
    DB_APPS=bench_apps_$TAG
    new_db "$DB_APPS"
    cfg=$WORK/apps.toml
    { printf 'public_url = "http://staging.localhost:%s"\nlisten = "127.0.0.1:%s"\ndatabase_url = "%s"\n' $P_APPS $P_APPS "$PG/$DB_APPS"
      for i in $(seq 0 $((N_APPS - 1))); do printf '\n[[apps]]\nname = "scale-%04d"\nenv = "staging"\n' "$i"; done; } >"$cfg"
    "$BIN" migrate --config "$cfg" >"$WORK/apps-setup.log" 2>&1 || die "migrate (workload 8) failed"
    # Keys straight into the table (a fixture, like workload 4's COPY): only the SHA-256 of
    # each secret is stored, as the console does; one deploy key per app applies its flags.
    psql "$PG/$DB_APPS" -v ON_ERROR_STOP=1 -q -c "
        INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by)
        SELECT format('scale-%s', lpad((i % $N_APPS)::text, 4, '0')), 'client', 'bench-' || i,
               encode(sha256(convert_to('rxc_bench${TAG}_' || i, 'UTF8')), 'hex'), 0, 'bench'
        FROM generate_series(0, $((N_KEYS - 1))) i;
        INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by)
        SELECT format('scale-%s', lpad(i::text, 4, '0')), 'deploy', 'bench-deploy',
               encode(sha256(convert_to('rxd_bench${TAG}_' || i, 'UTF8')), 'hex'), 0, 'bench'
        FROM generate_series(0, $((N_APPS - 1))) i;
        UPDATE console_app_keys SET token_id = id;" || die "inserting keys failed"
    for i in $(seq 0 $((N_APPS - 1))); do printf 'scale-%04d rxd_bench%s_%s\n' "$i" "$TAG" "$i"; done >"$WORK/apps-deploy.txt"
    for i in $(seq 0 $((N_KEYS - 1))); do echo "rxc_bench${TAG}_$i"; done >"$WORK/apps-keys.txt"
    head -n "$N_APPS" "$WORK/apps-keys.txt" >"$WORK/apps-keys-first.txt"
    start_raxx apps $P_APPS
    python3 "$BENCH/tools.py" apply-many --port $P_APPS --keys "$WORK/apps-deploy.txt" --flags "$WORK/flags-5.json" >"$WORK/apps-apply.txt" 2>&1 ||
        die "applying flags to $N_APPS apps failed: $(tail -2 "$WORK/apps-apply.txt")"
    # Restart: the caches start empty, the database holds the apps' flags and keys.
    stop_pid "$(res apps.pid)"
    start_raxx apps $P_APPS
    sleep 2
    set_res w8.rss0_kb "$(rss_kb "$(res apps.pid)")"
    python3 "$BENCH/tools.py" fill --port $P_APPS --keys "$WORK/apps-keys-first.txt" --ctx "$WORK/ctx.json" >"$WORK/apps-fill1.txt" 2>&1 ||
        die "OFREP with the first key of each app failed: $(tail -2 "$WORK/apps-fill1.txt")"
    set_res w8.rss1_kb "$(rss_kb "$(res apps.pid)")"
    python3 "$BENCH/tools.py" fill --port $P_APPS --keys "$WORK/apps-keys.txt" --ctx "$WORK/ctx.json" >"$WORK/apps-fill2.txt" 2>&1 ||
        die "OFREP with all $N_KEYS keys failed: $(tail -2 "$WORK/apps-fill2.txt")"
    set_res w8.rss2_kb "$(rss_kb "$(res apps.pid)")"
    set_res w8.peak_kb "$(hwm_kb "$(res apps.pid)")"
    log "workload 8: RSS $(res w8.rss0_kb) → $(res w8.rss1_kb) ($N_APPS apps) → $(res w8.rss2_kb) kB ($N_KEYS keys)"
    stop_pid "$(res apps.pid)"
    drop_db "$DB_APPS"
fi

# ================================================================== workload 4: audit log queries
audit_round() { # rows
    local rows=$1 db=bench_audit_${1}_$TAG name=audit$1 cfg head_id head_hash end_ms
    log "workload 4: audit log at $rows rows: generating and loading"
    new_db "$db"
    cfg=$WORK/$name.toml
    write_config "$cfg" $P_AUDIT "$PG/$db"
    "$BIN" migrate --config "$cfg" >"$WORK/$name-setup.log" 2>&1 || die "migrate $db failed"
    read -r head_id head_hash < <(psql "$PG/$db" -qAt -F' ' -c "select last_id, last_hash from console_audit_head")
    # Bulk load: secondary indexes and the primary key are rebuilt after COPY (same definitions).
    psql "$PG/$db" -qAt -c "select indexdef from pg_indexes where tablename = 'console_audit_log' and indexname <> 'console_audit_log_pkey'" >"$WORK/$name-indexes.sql"
    psql "$PG/$db" -qAt -c "select 'DROP INDEX ' || indexname || ';' from pg_indexes where tablename = 'console_audit_log' and indexname <> 'console_audit_log_pkey'" |
        psql "$PG/$db" -q -v ON_ERROR_STOP=1 >/dev/null
    psql "$PG/$db" -q -v ON_ERROR_STOP=1 -c "ALTER TABLE console_audit_log DROP CONSTRAINT console_audit_log_pkey"
    end_ms=$(($(date +%s) * 1000 - 60000))
    local t0=$SECONDS
    "$RB" audit-rows --count "$rows" --after-id "$head_id" --after-hash "$head_hash" --end-ms $end_ms --head-out "$WORK/$name.head" |
        psql "$PG/$db" -q -v ON_ERROR_STOP=1 -c "COPY console_audit_log (id, at, actor, session_id, action, target_type, target_id, target_app, outcome, reason, context, request_id, ip, prev_hash, hash) FROM STDIN"
    read -r head_id head_hash <"$WORK/$name.head"
    { echo "SET maintenance_work_mem = '512MB';"
      echo "ALTER TABLE console_audit_log ADD PRIMARY KEY (id);"
      sed 's/$/;/' "$WORK/$name-indexes.sql"
      echo "UPDATE console_audit_head SET last_id = $head_id, last_hash = '$head_hash' WHERE one = 1;"
      echo "VACUUM (ANALYZE) console_audit_log;"
      echo "CHECKPOINT;"; } | psql "$PG/$db" -q -v ON_ERROR_STOP=1 >/dev/null
    set_res "w4.$rows.load_s" "$((SECONDS - t0))"
    set_res "w4.$rows.size" "$(psql "$PG/$db" -qAt -c "select pg_size_pretty(pg_total_relation_size('console_audit_log'))")"
    log "loaded $rows rows in $((SECONDS - t0)) s ($(res "w4.$rows.size") with indexes)"

    start_raxx "$name" $P_AUDIT
    local cookie since until
    cookie=$(session_cookie "$name" $P_AUDIT)
    [[ -n $cookie ]] || die "$name: no session cookie"
    since=$((end_ms - 90 * 86400000))
    until=$((since + 86400000))
    local -A q=(
        [newest]="limit=50"
        [actor]="actor=17&limit=50"
        [action_time]="action=token.rotate&since=$since&until=$until&limit=50"
        [actor_email]="actor=bench%40raxx.test&limit=50"
        [action_part]="action=rotate&limit=50"
        [target_typed]="target=flag%20f0042-checkout%20(raxx-api-staging)&limit=50"
        [text_common]="q=checkout&limit=50"
        [text_rare]="q=cus_012345&limit=50"
        [reads_hidden]="reads=hide&limit=50"
    )
    local -A sql=(
        [newest]="SELECT * FROM console_audit_log WHERE 1 = 1 ORDER BY id DESC LIMIT 50"
        [actor]="SELECT * FROM console_audit_log WHERE 1 = 1 AND actor = '17' ORDER BY id DESC LIMIT 50"
        [action_time]="SELECT * FROM console_audit_log WHERE 1 = 1 AND action = 'token.rotate' AND at >= $since AND at < $until ORDER BY id DESC LIMIT 50"
        [actor_email]="SELECT * FROM console_audit_log WHERE 1 = 1 AND actor IN ('bench@raxx.test', '1') ORDER BY id DESC LIMIT 50"
        [action_part]="SELECT * FROM console_audit_log WHERE 1 = 1 AND action IN ('token.rotate') ORDER BY id DESC LIMIT 50"
        [target_typed]="SELECT * FROM console_audit_log WHERE 1 = 1 AND ((target_id = 'f0042-checkout' AND target_type = 'flag' AND target_app = 'raxx-api-staging')) ORDER BY id DESC LIMIT 50"
        [text_common]="SELECT * FROM console_audit_log WHERE 1 = 1 AND (action || ' ' || COALESCE(target_type, '') || ' ' || COALESCE(target_id, '') || ' ' || COALESCE(reason, '')) ILIKE '%checkout%' ESCAPE '\\' ORDER BY id DESC LIMIT 50"
        [text_rare]="SELECT * FROM console_audit_log WHERE 1 = 1 AND (action || ' ' || COALESCE(target_type, '') || ' ' || COALESCE(target_id, '') || ' ' || COALESCE(reason, '')) ILIKE '%cus\\_012345%' ESCAPE '\\' ORDER BY id DESC LIMIT 50"
        [reads_hidden]="SELECT * FROM console_audit_log WHERE 1 = 1 AND NOT (outcome = 'allowed' AND action IN ('audit.view', 'audit.export', 'flag.view', 'customer.view', 'customer.search')) ORDER BY id DESC LIMIT 50"
    )
    for k in $AUDIT_KINDS; do
        expect_status "audit API $k" 200 "http://127.0.0.1:$P_AUDIT/api/v1/audit?${q[$k]}" -H "Host: staging.localhost:$P_AUDIT" -H "Cookie: $cookie"
        set_res "w4.$rows.$k.entries" "$(jq '.entries | length' "$WORK/probe.out")"
        WRK_CONNECTIONS=1 wrk_run "w4.$rows.$k" "http://127.0.0.1:$P_AUDIT/api/v1/audit?${q[$k]}" \
            "BENCH_H1=Host: staging.localhost:$P_AUDIT" "BENCH_H2=Cookie: $cookie"
        # The query alone, as the store sends it (per-statement latencies from pgbench's log).
        echo "${sql[$k]};" >"$WORK/q-$k.sql"
        (cd "$WORK" && taskset -c "$CCPU" pgbench -n -M prepared -c 1 -j 1 -T "$DUR" -l --log-prefix="pgb-$rows-$k" -f "q-$k.sql" "$PG/$db" >/dev/null 2>&1) ||
            die "pgbench query $k failed"
        set_res "w4.$rows.$k.sql_p50_us" "$(cat "$WORK"/pgb-"$rows"-"$k".* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.5)+1]}')"
        set_res "w4.$rows.$k.sql_p99_us" "$(cat "$WORK"/pgb-"$rows"-"$k".* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99)+1; if (i>NR) i=NR; print a[i]}')"
        rm -f "$WORK"/pgb-"$rows"-"$k".*
        log "audit $rows $k: SQL alone p50 $(res "w4.$rows.$k.sql_p50_us") µs, p99 $(res "w4.$rows.$k.sql_p99_us") µs"
    done
    if [[ $rows -le 1000000 ]]; then
        "$BIN" audit verify --config "$cfg" >"$WORK/$name-verify.log" 2>&1 && set_res "w4.$rows.verify" ok || set_res "w4.$rows.verify" FAILED
    fi
    stop_pid "$(res "$name.pid")"
    drop_db "$db"
}
if want 4; then for rows in $AUDIT_ROWS; do audit_round "$rows"; done; fi

# ================================================================== workload 5: passkeys
if want 5; then
    log "workload 5: passkey assertion verification"
    line=$(taskset -c "$SCPU" "$RB" passkey --iterations 5000 --warmup 500) || die "passkey bench failed"
    for f in $line; do [[ $f == RESULT || $f == passkey ]] || set_res "w5.${f%%=*}" "${f#*=}"; done
fi

# ================================================================== workload 6: sizes
set_res raxx.binary_bytes "$(stat -c %s "$BIN")"
if [[ $UNLEASH == 1 ]]; then
    set_res unleash.install_bytes "$(du -sb "$UNLEASH_DIR/node_modules" | cut -f1)"
    set_res unleash.node_bytes "$(stat -c %s "$(readlink -f "$(command -v node)")")"
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ================================================================== the table
fmt_int() { awk -v x="$1" 'BEGIN { if (x == "") { print "—"; exit } s = sprintf("%.0f", x); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o "," } print o }'; }
fmt_ms() { awk -v x="$1" 'BEGIN { if (x == "") print "—"; else if (x < 10000) printf "%.2f ms", x / 1000; else printf "%.1f ms", x / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.1f×", a / b }'; }
ok() { # ok A OP B [FACTOR]: is A OP B×FACTOR? "not measured" when a figure is missing
    if [[ -z $1 || -z $3 ]]; then echo "not measured"; return; fi
    if awk -v a="$1" -v b="$3" -v f="${4:-1}" -v op="$2" 'BEGIN { b *= f; r = (op == ">=") ? a >= b : (op == "<=") ? a <= b : (op == "<") ? a < b : a > b; exit !r }'; then
        echo "met"
    else
        echo "**missed**"
    fi
}
perf() { printf '%s req/s · p50 %s · p99 %s' "$(fmt_int "$(res "$1.rps")")" "$(fmt_ms "$(res "$1.p50_us")")" "$(fmt_ms "$(res "$1.p99_us")")"; }

{
    echo "Run: \`bash bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average (1/5/15 min) $LOAD_START when measuring began and $LOAD_END at the end;"
    echo "servers on core $SCPU, wrk/pgbench on core $CCPU; ${DUR}s per run after ${WARM}s warm-up; workloads 1–2 at $CONC connections."
    [[ $UNLEASH == 1 ]] || echo "**The peer did not run: $UNLEASH_WHY**"
    echo
    [[ $EDGE == 1 ]] || echo "**Unleash Edge did not run: $EDGE_WHY**"
    for n in $(want 1 && echo 5 350) $(want 7 && echo "$SCALE"); do
        c=$(res "check.$n")
        [[ -n $c ]] && echo "Before timing, at $n flags: $c (tools.py compare; raxx-console's OFREP against Edge's /api/frontend/all, same context)."
    done
    echo
    echo "| # | workload | raxx-console | peer | ratio | target |"
    echo "|---|---|---|---|---|---|"
    for backend in pg sqlite; do
        bname=$([[ $backend == pg ]] && echo PostgreSQL || echo SQLite)
        for n in 5 350; do
            k="w1.$backend.$n.full"
            f=$([[ $n == 5 ]] && echo 2 || echo 10)
            if [[ $EDGE == 1 ]]; then
                echo "| 1 | OFREP bulk, $n flags, 200, $bname vs Edge \`POST /api/frontend\` | $(perf "$k") | $(perf "w1.edge.$n.full") (Edge $EDGE_VERSION) | $(ratio "$(res "$k.rps")" "$(res "w1.edge.$n.full.rps")") | ≥${f}× Edge: $(ok "$(res "$k.rps")" ">=" "$(res "w1.edge.$n.full.rps")" "$f") |"
            else
                echo "| 1 | OFREP bulk, $n flags, 200, $bname vs Edge | $(perf "$k") | — | — | ≥${f}× Edge: not measured |"
            fi
        done
        k="w1.$backend.healthz"
        echo "| 1 | HTTP floor: \`/healthz\`, $bname vs Edge \`/internal-backstage/health\` | $(perf "$k") | $(perf w1.edge.healthz) | $(ratio "$(res "$k.rps")" "$(res w1.edge.healthz.rps)") | ≥1× Edge: $(ok "$(res "$k.rps")" ">=" "$(res w1.edge.healthz.rps)") |"
        echo "| 1 | 304 (\`If-None-Match\`, 5 flags) against our own floor, $bname | $(perf "w1.$backend.5.etag") | /healthz $(fmt_int "$(res "$k.rps")") req/s | $(awk -v a="$(res "w1.$backend.5.etag.rps")" -v b="$(res "$k.rps")" 'BEGIN { if (b > 0) printf "%.2f of floor", a / b; else print "—" }') | ≥0.8 of floor: $(ok "$(res "w1.$backend.5.etag.rps")" ">=" "$(res "$k.rps")" 0.8) |"
    done
    if [[ $UNLEASH == 1 ]]; then
        echo "| 1 | OFREP bulk, 350 flags, PostgreSQL vs unleash-server $UNLEASH_VERSION \`POST /api/frontend\` (same work) | $(perf w1.pg.350.full) | $(perf w1.unleash.350.frontend) | $(ratio "$(res w1.pg.350.full.rps)" "$(res w1.unleash.350.frontend.rps)") | |"
    fi
    for n in 5 350; do
        for mode in full etag; do
            label=$([[ $mode == full ]] && echo "200" || echo "If-None-Match → 304")
            u="w1.unleash.$n.$mode"
            urps=$(res "$u.rps")
            for backend in pg sqlite; do
                k="w1.$backend.$n.$mode"
                if [[ $UNLEASH == 1 ]]; then
                    target="≥10×: $(ok "$(res "$k.rps")" ">=" "$urps" 10)"
                    echo "| 1 | OFREP bulk, $n flags, $label, $([[ $backend == pg ]] && echo PostgreSQL || echo SQLite) | $(perf "$k") | $(perf "$u") (unleash-server $UNLEASH_VERSION client features) | $(ratio "$(res "$k.rps")" "$urps") | $target |"
                else
                    echo "| 1 | OFREP bulk, $n flags, $label, $([[ $backend == pg ]] && echo PostgreSQL || echo SQLite) | $(perf "$k") | — | — | ≥10× peer: not measured |"
                fi
            done
        done
    done
    for backend in pg sqlite; do
        for n in 5 350; do
            for mode in full etag; do
                k="w1.$backend.$n.$mode.half"
                echo "| 1 | half max rate: $n flags, $([[ $mode == full ]] && echo 200 || echo 304), $([[ $backend == pg ]] && echo PostgreSQL || echo SQLite) | $(perf "$k") | | | p99 < 5 ms: $(ok "$(res "$k.p99_us")" "<" 5000) |"
            done
        done
    done
    for backend in pg sqlite; do
        k=w2.$backend
        if [[ $UNLEASH == 1 ]]; then u="$(perf w2.unleash) (admin search, 50 rows, JSON)"; r=$(ratio "$(res "$k.rps")" "$(res w2.unleash.rps)"); else u="—"; r="—"; fi
        echo "| 2 | flags page, 50-row table, session, $([[ $backend == pg ]] && echo PostgreSQL || echo SQLite) | $(perf "$k") | $u | $r | ≥5,000 req/s: $(ok "$(res "$k.rps")" ">=" 5000) |"
    done
    for c in 1 8 32; do
        k=w3.apply.$c
        raw=$(res "w3.raw.$c.tps")
        echo "| 3 | audited write (flags apply, PUT), $c client(s), PostgreSQL | $(perf "$k") | raw insert (pgbench): $(fmt_int "$raw") tx/s | $(awk -v a="$(res "$k.rps")" -v b="$raw" 'BEGIN { if (b > 0) printf "%.2f of raw", a / b; else print "—" }') | ≥0.5 of raw: $(ok "$(res "$k.rps")" ">=" "$raw" 0.5) |"
    done
    for rows in $AUDIT_ROWS; do
        for k in $AUDIT_KINDS; do
            kk="w4.$rows.$k"
            desc=$(case $k in newest) echo "newest page";; actor) echo "filter by actor";; action_time) echo "action + 1-day range";;
                actor_email) echo "actor by email";; action_part) echo "action by part of its name (rotate)";; target_typed) echo "target as shown (flag f0042-checkout (app))";;
                text_common) echo "free text, common word";; text_rare) echo "free text, rare word (trigram index)";; reads_hidden) echo "reads hidden (viewer default)";; esac)
            tgt=""
            if [[ $rows -ge 10000000 ]]; then tgt="p99 < 50 ms: $(ok "$(res "$kk.p99_us")" "<" 50000)"; fi
            echo "| 4 | audit API, $(fmt_int "$rows") rows, $desc ($(res "$kk.entries") rows) | p50 $(fmt_ms "$(res "$kk.p50_us")") · p99 $(fmt_ms "$(res "$kk.p99_us")") (HTTP, incl. its audit.view row); SQL alone p99 $(fmt_ms "$(res "$kk.sql_p99_us")") | | | $tgt |"
        done
    done
    for c in $(want 10 && echo 32); do
        echo "| 10 | audited writes to 32 apps (one per client), 32 clients, PostgreSQL | $(perf w10.apply32) | one app, 32 clients: $(fmt_int "$(res w3.apply.32.rps)") req/s | $(ratio "$(res w10.apply32.rps)" "$(res w3.apply.32.rps)") of one app | information: the chain-head ceiling, writes/s |"
    done
    want 10 && echo "| 10 | sign-in (\`POST /auth/link\`), alone | p50 $(res w10.idle.p50_ms) ms · p99 $(res w10.idle.p99_ms) ms (n=$(res w10.idle.n)) | | | |"
    want 10 && echo "| 10 | sign-in beside 32 clients writing to 32 apps | p50 $(res w10.busy.p50_ms) ms · p99 $(res w10.busy.p99_ms) ms (n=$(res w10.busy.n), failed $(res w10.busy.failed): $(res w10.busy.failed_as)) | | | information |"
    for n in $(want 7 && echo "$SCALE"); do
        rb=$(res "w7.raxx.$n.body")
        eb=$(res "w7.edge.$n.body")
        bpf() { awk -v b="$1" -v n="$2" 'BEGIN { if (b == "") print "—"; else printf "%.0f B/flag", b / n }'; }
        if [[ $n -gt $MAX_FLAGS ]]; then
            echo "| 7 | OFREP bulk, $(fmt_int "$n") flags per app, PostgreSQL | — (an app holds at most $(fmt_int $MAX_FLAGS) flags: \`MAX_FLAGS\`; the file is refused) | $(perf "w7.edge.$n") · $(bpf "$eb" "$n") (Edge) | | |"
            continue
        fi
        echo "| 7 | OFREP bulk, $(fmt_int "$n") flag(s) per app, PostgreSQL | $(perf "w7.raxx.$n") · $(bpf "$rb" "$n") | $(perf "w7.edge.$n") · $(bpf "$eb" "$n") (Edge) | $(ratio "$(res "w7.raxx.$n.rps")" "$(res "w7.edge.$n.rps")") | |"
    done
    if want 8; then
        per_app=$(awk -v a="$(res w8.rss0_kb)" -v b="$(res w8.rss1_kb)" -v n="$N_APPS" 'BEGIN { printf "%.1f", (b - a) / n }')
        per_key=$(awk -v a="$(res w8.rss1_kb)" -v b="$(res w8.rss2_kb)" -v n="$((N_KEYS - N_APPS))" 'BEGIN { printf "%.2f", (b - a) / n }')
        echo "| 8 | $(fmt_int "$N_APPS") apps (5 flags each), $(fmt_int "$N_KEYS") client keys, all in the caches | RSS $(mb "$(res w8.rss2_kb)") MB (idle $(mb "$(res w8.rss0_kb)") MB, peak $(mb "$(res w8.peak_kb)") MB); $per_app kB per app, $per_key kB per key | | | ≤100 MB: $(ok "$(res w8.rss2_kb)" "<=" 102400) |"
    fi
    if want 9; then
        echo "| 9 | OFREP bulk, 5 flags, three \`serve\` processes on one PostgreSQL (one server core for all three), summed | $(fmt_int "$(res w9.rps_sum)") req/s ($(fmt_int "$(res w9.rps.0)") + $(fmt_int "$(res w9.rps.1)") + $(fmt_int "$(res w9.rps.2)")) | one process: $(fmt_int "$(res w1.pg.5.full.rps)") req/s | | information |"
        echo "| 9 | a flags apply on one instance seen by OFREP on the two others | p50 $(res w9.prop.p50_ms) ms · p99 $(res w9.prop.p99_ms) ms · max $(res w9.prop.max_ms) ms (n=$(res w9.prop.n)) | | | p99 < 100 ms: $(ok "$(res w9.prop.p99_ms)" "<" 100) |"
    fi
    echo "| 5 | passkey assertion verification (\`finish_passkey_authentication\`) | p50 $(res w5.p50_us) µs · p99 $(res w5.p99_us) µs · mean $(res w5.mean_us) µs | | | retired (issue 18): information |"
    for s in pg sqlite; do
        u="—"
        r="—"
        t="≤30 MB: $(ok "$(res $s.idle_rss_kb)" "<=" 30720)"
        if [[ $UNLEASH == 1 ]]; then
            u="$(mb "$(res unleash.idle_rss_kb)") MB"
            r=$(awk -v a="$(res $s.idle_rss_kb)" -v b="$(res unleash.idle_rss_kb)" 'BEGIN { printf "1/%.1f", b / a }')
            t="$t; ≤1/5 of peer: $(ok "$(res $s.idle_rss_kb)" "<=" "$(res unleash.idle_rss_kb)" 0.2)"
        fi
        echo "| 6 | idle RSS, $([[ $s == pg ]] && echo PostgreSQL || echo SQLite) | $(mb "$(res $s.idle_rss_kb)") MB | $u | $r | $t |"
    done
    [[ $EDGE == 1 ]] && echo "| 6 | Unleash Edge: idle RSS (5 flags); after load at 5 / 350 flags | | $(mb "$(res edge.idle_rss_kb)") MB; $(mb "$(res edge.5.rss_kb)") / $(mb "$(res edge.350.rss_kb)") MB (peak $(mb "$(res edge.350.peak_rss_kb)") MB) | | |"
    for s in pg sqlite; do
        u="—"
        [[ $UNLEASH == 1 ]] && u="$(mb "$(res unleash.loaded_rss_kb)") MB (peak $(mb "$(res unleash.peak_rss_kb)") MB)"
        echo "| 6 | RSS after workloads 1–2, $([[ $s == pg ]] && echo PostgreSQL || echo SQLite) | $(mb "$(res $s.loaded_rss_kb)") MB (peak $(mb "$(res $s.peak_rss_kb)") MB) | $u | | |"
    done
    u="—"
    [[ $UNLEASH == 1 ]] && u="$(res unleash.start_ms) ms"
    echo "| 6 | start-up to ready, migrated database, PostgreSQL | $(res pg.start_ms) ms | $u | $(ratio "$(res unleash.start_ms)" "$(res pg.start_ms)") faster | |"
    echo "| 6 | start-up to ready, SQLite | $(res sqlite.start_ms) ms | | | |"
    u="—"
    [[ $UNLEASH == 1 ]] && u="node_modules $(mb $(($(res unleash.install_bytes) / 1024))) MB + node $(mb $(($(res unleash.node_bytes) / 1024))) MB"
    echo "| 6 | binary size | $(mb $(($(res raxx.binary_bytes) / 1024))) MB | $u | | |"
    echo
    echo "Checks: workload 3 wrote $(res w3.audit_rows) flag.apply audit rows; \`audit verify\` after workload 3: $(res w3.verify)$(for rows in $AUDIT_ROWS; do v=$(res "w4.$rows.verify"); [[ -n $v ]] && printf '; after loading %s rows: %s' "$(fmt_int "$rows")" "$v"; done)."
    errs=$(grep -E '\.errors=' "$RES" | tr '\n' ' ' || true)
    if [[ -n $errs ]]; then echo "Runs with errors (non-2xx/3xx, timeouts): $errs"; fi
    echo "1-minute load average at the end of the measured runs (2 cores; this run alone keeps about 2 busy: a server core and a client core; above 3 means others were compiling): $(grep -E '^w[0-9][^=]*\.load=' "$RES" | sed 's/\.load=/ /' | sort -k2 -n | awk '{n[NR]=$1; l[NR]=$2; if ($2 >= 3) busy = busy (busy ? ", " : "") $1 " " $2} END {printf "median %s, max %s (%s)", l[int((NR+1)/2)], l[NR], n[NR]; if (busy) printf "; busy (≥3) during: %s", busy}')."
    for rows in $AUDIT_ROWS; do echo "Audit log at $(fmt_int "$rows") rows: $(res "w4.$rows.size") with indexes, generated and loaded in $(res "w4.$rows.load_s") s."; done
    want 10 && echo "Workload 10 wrote $(res w10.audit_rows) flag.apply audit rows to 32 apps; \`audit verify\` afterwards: $(res w10.verify)."
    [[ -n $(res w7.chart) ]] && echo "Scaling chart (workload 7): $(res w7.chart)"
} >"$OUT"
cat "$OUT"
log "table written to $OUT"
