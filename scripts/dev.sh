#!/usr/bin/env bash
# Starts a development beacon on http://localhost:8080: the web page and the API, the engine
# signing in a SoftHSM2 dev token (made under ./data/hsm on the first run), SQLite in
# ./data/hsm/lavabeacon.db, period 60 s. Sources: os, hsm, cpu and the camera — the real one
# when /dev/video0 exists, else the synthetic camera, which makes this a TEST beacon (so does
# the dev token's TEST certificate): its pulses must not be used for anything that matters.
#
#   ./scripts/dev.sh [serve options, e.g. --period 5s --listen 127.0.0.1:9090]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_cargo
need_libclang || { say "libclang is needed to build lavabeacon (Debian: libclang-dev)"; exit 1; }
[ -e /usr/lib/softhsm/libsofthsm2.so ] || install_pkg softhsm2 || { say "SoftHSM2 is needed for the dev token"; exit 1; }

cargo build --release --locked
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/lavabeacon
LAVABEACON_BIN=$bin softhsm-setup/dev-token.sh ./data/hsm

camera=synthetic-camera
if [ -e /dev/video0 ]; then
    camera=camera
fi
config=./data/hsm/dev.toml
{
    cat ./data/hsm/lavabeacon.toml
    printf '\n[engine]\nsources = ["os", "hsm", "cpu", "%s"]\n' "$camera"
} > "$config"
say "sources: os, hsm, cpu, $camera; listening on the address printed next (default http://localhost:8080)"
exec "$bin" serve --config "$config" "$@"
