#!/usr/bin/env bash
# bench/run.sh: raxx-console measured side by side with unleash-server 7.5.1 (issue 9).
#
# One command: builds (release), sets up databases, consoles and the peer, runs workloads
# 1–6, tears everything down and prints a Markdown table (also written to $BENCH_OUT).
# Every load run is bounded (wrk -d), all traffic goes to 127.0.0.1, nothing here runs in
# the test suite. See bench/README.md for what each workload measures.
#
# Knobs (environment):
#   BENCH_DURATION=10      seconds per measured wrk run (after BENCH_WARMUP seconds of warm-up)
#   BENCH_WARMUP=2
#   BENCH_CONNECTIONS=16   fixed concurrency of workloads 1 and 2
#   BENCH_AUDIT_ROWS="1000000 10000000"   audit log sizes of workload 4 ("" skips it)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1 servers on one core, wrk/pgbench on the other
#   BENCH_PG=postgres://postgres@127.0.0.1:5432   a PostgreSQL with trust auth
#   UNLEASH_DIR=/tmp/raxx-bench-unleash   where `npm install unleash-server@7.5.1` goes
#   BENCH_SKIP_BUILD=1     use the existing target/release binaries
#   BENCH_COOLDOWN=90      after the build, wait up to this long for the 1-minute load to drop below 1
#   BENCH_SKIP_UNLEASH=1   run without the peer
#   BENCH_OUT=FILE         where to write the table (default: $WORK/table.md, printed path)
#   BENCH_WORKLOADS="1 2 3 4 5 6"   run only some (figures of the others show as missing)
#   BENCH_KEEP=1           keep the work folder (logs, flags files, raw wrk output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
DUR=${BENCH_DURATION:-10}
WARM=${BENCH_WARMUP:-2}
CONC=${BENCH_CONNECTIONS:-16}
AUDIT_ROWS=${BENCH_AUDIT_ROWS-"1000000 10000000"}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
UNLEASH_DIR=${UNLEASH_DIR:-/tmp/raxx-bench-unleash}
UNLEASH_VERSION=7.5.1
WORK=$(mktemp -d /tmp/raxx-bench.XXXXXX)
OUT=${BENCH_OUT:-$WORK/table.md}
RES=$WORK/results.env
TAG=$$
P_SQLITE=18181 P_PG=18182 P_AUDIT=18183 P_UNLEASH=18242
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
want() { [[ " ${BENCH_WORKLOADS:-1 2 3 4 5 6} " == *" $1 "* ]]; }

# Only the servers this script started: the pid must still be one of ours (no pid reuse).
ours() {
    local c
    c=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $c == "$BIN serve --config $WORK/"* || $c == *unleash-server/dist/server.js* ]]
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
for tool in cargo wrk psql pgbench taskset curl jq awk; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y wrk postgresql-client jq util-linux curl)"
done
psql_pg -c 'select 1' >/dev/null || die "no PostgreSQL at $PG (trust auth expected)"
for port in $P_SQLITE $P_PG $P_AUDIT $P_UNLEASH; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then die "port $port is already in use"; fi
done

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release -q -p raxx-console -p raxx-bench) || die "cargo build failed"
fi
BIN=${BENCH_BIN:-$ROOT/target/release/raxx-console}
RB=$ROOT/target/release/raxx-bench
[[ -x $BIN && -x $RB ]] || die "release binaries missing: $BIN $RB"
# Let the build's load decay (up to BENCH_COOLDOWN seconds, until the 1-minute load is < 1).
for _ in $(seq 1 $(( ${BENCH_COOLDOWN:-90} / 5 ))); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l >= 1.0) }' || break
    sleep 5
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before measuring: $LOAD_START; work folder $WORK"

# ------------------------------------------------------------------ the peer: install
UNLEASH=0
UNLEASH_WHY=""
if [[ ${BENCH_SKIP_UNLEASH:-0} == 1 ]]; then
    UNLEASH_WHY="skipped (BENCH_SKIP_UNLEASH=1)"
elif ! command -v node >/dev/null; then
    UNLEASH_WHY="node is not installed"
else
    if [[ $(jq -r .version "$UNLEASH_DIR/node_modules/unleash-server/package.json" 2>/dev/null) != "$UNLEASH_VERSION" ]]; then
        log "installing unleash-server@$UNLEASH_VERSION into $UNLEASH_DIR (outside the repository)"
        mkdir -p "$UNLEASH_DIR"
        if ! (cd "$UNLEASH_DIR" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
            npm install --no-audit --no-fund --ignore-scripts "unleash-server@$UNLEASH_VERSION" >"$WORK/npm.log" 2>&1); then
            UNLEASH_WHY="npm install unleash-server@$UNLEASH_VERSION failed: $(tail -1 "$WORK/npm.log")"
        fi
    fi
    [[ -z $UNLEASH_WHY ]] && UNLEASH=1
fi

# ------------------------------------------------------------------ flags files and configs
"$RB" flags --app bench-5 --count 5 >"$WORK/flags-5.json"
"$RB" flags --app bench-50 --count 50 >"$WORK/flags-50.json"
"$RB" flags --app bench-350 --count 350 >"$WORK/flags-350.json"
"$RB" flags --app bench-w --count 5 >"$WORK/flags-w0.json"
"$RB" flags --app bench-w --count 5 --flip 1 >"$WORK/flags-w1.json"
printf '{"context":{"targetingKey":"user-4711","email":"ann@example.com","plan":"pro","appVersion":"2.5.1"}}' >"$WORK/ctx.json"

DB_PG=bench_console_$TAG
DB_RAW=bench_raw_$TAG
DB_UNLEASH=bench_unleash_$TAG

write_config() { # file port database_url
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
        LOG_LEVEL=warn INIT_ADMIN_API_TOKENS="$UNLEASH_ADMIN" INIT_BACKEND_API_TOKENS="$UNLEASH_CLIENT" \
        UNLEASH_DEFAULT_ADMIN_USERNAME=admin UNLEASH_DEFAULT_ADMIN_PASSWORD="$UNLEASH_PASSWORD" \
        taskset -c "$SCPU" node "$UNLEASH_DIR/node_modules/unleash-server/dist/server.js") || return 1
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
stop_pid "$(res pg.pid)"

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
    )
    local -A sql=(
        [newest]="SELECT * FROM console_audit_log WHERE 1 = 1 ORDER BY id DESC LIMIT 50"
        [actor]="SELECT * FROM console_audit_log WHERE 1 = 1 AND actor = '17' ORDER BY id DESC LIMIT 50"
        [action_time]="SELECT * FROM console_audit_log WHERE 1 = 1 AND action = 'token.rotate' AND at >= $since AND at < $until ORDER BY id DESC LIMIT 50"
    )
    for k in newest actor action_time; do
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
    echo "| # | workload | raxx-console | unleash-server $UNLEASH_VERSION | ratio | target |"
    echo "|---|---|---|---|---|---|"
    for n in 5 350; do
        for mode in full etag; do
            label=$([[ $mode == full ]] && echo "200" || echo "If-None-Match → 304")
            u="w1.unleash.$n.$mode"
            urps=$(res "$u.rps")
            for backend in pg sqlite; do
                k="w1.$backend.$n.$mode"
                if [[ $UNLEASH == 1 ]]; then
                    target="≥10×: $(ok "$(res "$k.rps")" ">=" "$urps" 10)"
                    echo "| 1 | OFREP bulk, $n flags, $label, $([[ $backend == pg ]] && echo PostgreSQL || echo SQLite) | $(perf "$k") | $(perf "$u") (client features) | $(ratio "$(res "$k.rps")" "$urps") | $target |"
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
        for k in newest actor action_time; do
            kk="w4.$rows.$k"
            desc=$(case $k in newest) echo "newest page";; actor) echo "filter by actor";; action_time) echo "action + 1-day range";; esac)
            tgt=""
            if [[ $rows -ge 10000000 ]]; then tgt="p99 < 50 ms: $(ok "$(res "$kk.p99_us")" "<" 50000)"; fi
            echo "| 4 | audit API, $(fmt_int "$rows") rows, $desc ($(res "$kk.entries") rows) | p50 $(fmt_ms "$(res "$kk.p50_us")") · p99 $(fmt_ms "$(res "$kk.p99_us")") (HTTP, incl. its audit.view row); SQL alone p99 $(fmt_ms "$(res "$kk.sql_p99_us")") | | | $tgt |"
        done
    done
    echo "| 5 | passkey assertion verification (\`finish_passkey_authentication\`) | p50 $(res w5.p50_us) µs · p99 $(res w5.p99_us) µs · mean $(res w5.mean_us) µs | | | ≤100 µs (median): $(ok "$(res w5.p50_us)" "<=" 100) |"
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
} >"$OUT"
cat "$OUT"
log "table written to $OUT"
