#!/usr/bin/env bash
# Schemathesis against a throwaway staging console: every operation of the served OpenAPI
# document (/api/v1/openapi.json) is called with generated requests, and each answer must
# not be a 5xx, must have a status the document lists for it, its Content-Type and a body
# valid against the listed schema. Four runs, one per kind of caller: no credentials (the
# public routes), an app read key and an app deploy key (the key routes), and a signed-in
# operator with its session cookie, CSRF token and X-Console-Env (every operator route).
#
# Schemathesis is installed with pip into target/schemathesis-venv if it is not on PATH.
# Under CI=true a missing tool (python3, or pip failing) is a failure, never a skip.
#
#   RAXX_BIN=target/debug/raxx-console scripts/schemathesis.sh
#   RAXX_SCHEMATHESIS_EXAMPLES=N (test cases per operation and phase; default 40, about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${RAXX_BIN:-$TARGET/debug/raxx-console}
EXAMPLES=${RAXX_SCHEMATHESIS_EXAMPLES:-40}
VERSION=4.32.5

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "error: $*; CI never skips the schemathesis run" >&2
    exit 1
  fi
  echo "!! $*: schemathesis run skipped" >&2
  exit 0
}

[ -x "$BIN" ] || { echo "error: $BIN is not built (cargo build -p raxx-console)" >&2; exit 1; }

ST=$(command -v schemathesis || true)
if [ -z "$ST" ]; then
  VENV=$TARGET/schemathesis-venv
  if [ ! -x "$VENV/bin/schemathesis" ]; then
    command -v python3 >/dev/null || missing "python3 is not installed"
    python3 -m venv "$VENV" || missing "python3 cannot make a venv (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" \
      || missing "pip could not install schemathesis"
  fi
  ST=$VENV/bin/schemathesis
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/raxx-schemathesis.XXXXXX")
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ORIGIN="http://localhost:$PORT"  # WebAuthn needs a host name, not an IP
APP=raxx-api-staging
CFG=$WORK/console.toml
cat >"$CFG" <<EOF
public_url = "$ORIGIN"
listen = "127.0.0.1:$PORT"
database_url = "sqlite://$WORK/console.db"
admin_emails = ["alice@raxx.test"]
admin_enrol_code = "schemathesis-enrol-code"

[[apps]]
name = "$APP"
env = "staging"
EOF
cat >"$WORK/flags.toml" <<EOF
app = "$APP"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[flags.theme]
type = "string"
variants = { classic = "classic", midnight = "midnight" }
default = "classic"
EOF

run() { "$BIN" --config "$CFG" "$@"; }
run migrate >/dev/null
run flags apply "$WORK/flags.toml" >/dev/null
READ_KEY=$(run keys create --app "$APP" --kind read | tail -n 1)
DEPLOY_KEY=$(run keys create --app "$APP" --kind deploy | tail -n 1)

# The binary itself in the background (not through `run`: $! would be a subshell, and
# killing it would leave the console serving).
"$BIN" --config "$CFG" serve >"$WORK/console.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$ORIGIN/healthz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/console.log" >&2; echo "error: the console did not start" >&2; exit 1; }
  sleep 0.1
done

# Sign in as alice with a login link (the confirmation page's POST), then read the CSRF token.
LINK=$(run login-link --email alice@raxx.test | tail -n 1)
TOKEN=${LINK##*/}
COOKIE=$(curl -sS -o /dev/null -D - -X POST --data-urlencode "token=$TOKEN" "$ORIGIN/auth/link" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n 1)
[ -n "$COOKIE" ] || { echo "error: the login link did not sign in" >&2; exit 1; }
CSRF=$(curl -fsS -H "Cookie: $COOKIE" "$ORIGIN/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')

SCHEMA="$ORIGIN/api/v1/openapi.json"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
st() {
  local what=$1; shift
  printf '\n== schemathesis: %s\n' "$what"
  "$ST" run "$SCHEMA" --checks "$CHECKS" --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" --seed 1 --workers 2 --request-timeout 10 \
    --suppress-health-check all --warnings off --no-color "$@"
}

status=0
st "public routes, no credentials" \
  --include-path-regex '^/(api/v1/openapi\.json|auth/)' || status=1
st "app read key" -H "X-API-Key: $READ_KEY" \
  --include-name 'GET /api/v1/apps/{app}/flags' || status=1
st "app deploy key" -H "X-API-Key: $DEPLOY_KEY" \
  --include-name 'PUT /api/v1/apps/{app}/flags' || status=1
st "signed-in operator (session, CSRF, X-Console-Env)" \
  -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H "X-Console-Env: staging" \
  --exclude-path-regex '^/(api/v1/openapi\.json|auth/)' \
  --exclude-path '/api/v1/apps/{app}/flags' || status=1

if [ "$status" != 0 ]; then
  echo "--- console log (last 50 lines)" >&2
  tail -n 50 "$WORK/console.log" >&2
  echo "error: schemathesis found answers outside the OpenAPI document" >&2
fi
exit "$status"
