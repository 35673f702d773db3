#!/usr/bin/env bash
# Starts a development beacon on http://localhost:8080: SQLite under ./data, a SoftHSM2 dev
# token, the web page and the API.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
if ! target/release/lavabeacon --help | grep -q '^  serve'; then
    echo "dev.sh: this build has no 'lavabeacon serve' yet: the web page and API are not built." >&2
    echo "dev.sh: The engine alone runs with: softhsm-setup/dev-token.sh ./data/hsm &&" >&2
    echo "dev.sh:   target/release/lavabeacon engine --config ./data/hsm/lavabeacon.toml (docs/operations.md)" >&2
    exit 1
fi
exec target/release/lavabeacon serve --dev
