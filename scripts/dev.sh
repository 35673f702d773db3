#!/usr/bin/env bash
# Starts a development beacon on http://localhost:8080: SQLite under ./data, a SoftHSM2 dev
# token, the web page and the API.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
if ! target/release/lavabeacon --help | grep -q '^  serve'; then
    echo "dev.sh: this build has the verifier only (lavabeacon verify); the beacon service" >&2
    echo "dev.sh: (store, HSM signer, engine, API) is not built yet, so there is nothing to start." >&2
    exit 1
fi
exec target/release/lavabeacon serve --dev
