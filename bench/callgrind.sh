#!/usr/bin/env bash
# bench/callgrind.sh: instructions per request, counted by valgrind's callgrind (issue 18).
#
#   bash bench/callgrind.sh [BIN]     # default target/release/raxx-console
#
# Wall-clock figures move with whatever else the machine runs; instruction counts do not.
# The console runs under callgrind on SQLite with an app of 5 flags. For each request kind,
# 300 requests warm it up, the counters are zeroed, N requests (CALLGRIND_REQUESTS, 2000)
# go over one keep-alive connection, the counters are dumped: total instructions ÷ N.
# Counted: everything the server process executes meanwhile (hyper, the layers, the handler,
# the allocator, its background tasks), not the client. Prints one RESULT line per kind:
#   healthz            GET /healthz
#   ofrep5             POST /ofrep/v1/evaluate/flags, 5 flags, 200
#   ofrep5_304         the same with If-None-Match: 304
# CALLGRIND_KEEP=DIR keeps each dump (DIR/KIND.callgrind) for `callgrind_annotate --inclusive=yes`.
# Needs valgrind (apt-get install -y valgrind) and python3. Port 18199, 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/raxx-console}
RB=${RB:-$ROOT/target/release/raxx-bench}
N=${CALLGRIND_REQUESTS:-2000}
PORT=18199
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install -y valgrind)" >&2; exit 1; }
[[ -x $BIN && -x $RB ]] || { echo "missing $BIN or $RB (cargo build --release -p raxx-console -p raxx-bench)" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "port $PORT is in use" >&2; exit 1; fi

WORK=$(mktemp -d /tmp/raxx-callgrind.XXXXXX)
VG_PID=""
cleanup() {
    if [[ -n $VG_PID ]] && kill -0 "$VG_PID" 2>/dev/null; then
        kill "$VG_PID" 2>/dev/null || true
        wait "$VG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/c.toml" <<EOF
public_url = "http://staging.localhost:$PORT"
listen = "127.0.0.1:$PORT"
database_url = "sqlite://$WORK/db/console.db"

[[apps]]
name = "bench-5"
env = "staging"
EOF
"$RB" flags --app bench-5 --count 5 >"$WORK/flags.json"
printf '{"context":{"targetingKey":"user-4711","email":"ann@example.com","plan":"pro","appVersion":"2.5.1"}}' >"$WORK/ctx.json"
"$BIN" migrate --config "$WORK/c.toml" >"$WORK/setup.log" 2>&1
"$BIN" flags apply --config "$WORK/c.toml" "$WORK/flags.json" >>"$WORK/setup.log" 2>&1
KEY=$("$BIN" keys create --app bench-5 --kind client --config "$WORK/c.toml" 2>>"$WORK/setup.log" | tail -1)

valgrind --tool=callgrind --instr-atstart=yes --callgrind-out-file="$WORK/cg.out.%p" \
    "$BIN" serve --config "$WORK/c.toml" >"$WORK/serve.log" 2>&1 &
VG_PID=$!
for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
    sleep 0.2
done
curl -s -o /dev/null "http://127.0.0.1:$PORT/readyz" || { echo "the console did not start under valgrind: $(tail -3 "$WORK/serve.log")" >&2; exit 1; }

ETAG=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$PORT/ofrep/v1/evaluate/flags" -H "Host: staging.localhost:$PORT" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' --data-binary @"$WORK/ctx.json" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')

# hit KIND COUNT: COUNT requests of one kind over one keep-alive connection; checks the status.
hit() {
    python3 - "$PORT" "$1" "$2" "$KEY" "$ETAG" "$WORK/ctx.json" <<'EOF'
import http.client, sys
port, kind, n, key, etag, ctx = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], open(sys.argv[6], "rb").read()
c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
h = {"Host": f"staging.localhost:{port}", "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
if kind == "ofrep5_304":
    h["If-None-Match"] = etag
want = 304 if kind == "ofrep5_304" else 200
for _ in range(n):
    if kind == "healthz":
        c.request("GET", "/healthz", headers={"Host": f"staging.localhost:{port}"})
    else:
        c.request("POST", "/ofrep/v1/evaluate/flags", body=ctx, headers=h)
    r = c.getresponse()
    r.read()
    if r.status != want:
        sys.exit(f"{kind}: status {r.status}, not {want}")
EOF
}

for kind in healthz ofrep5 ofrep5_304; do
    hit "$kind" 300
    callgrind_control -z "$VG_PID" >/dev/null 2>&1
    hit "$kind" "$N"
    rm -f "$WORK"/cg.out.*.[0-9]*
    callgrind_control -d "$VG_PID" >/dev/null 2>&1
    sleep 0.5
    dump=$(ls -t "$WORK"/cg.out.* | head -1)
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    echo "RESULT callgrind kind=$kind requests=$N instructions=$total per_request=$((total / N))"
    if [[ -n ${CALLGRIND_KEEP:-} ]]; then mkdir -p "$CALLGRIND_KEEP" && cp "$dump" "$CALLGRIND_KEEP/$kind.callgrind"; fi
    rm -f "$dump"
done
