#!/usr/bin/env bash
# The full test suite. Installs what the tests need on Debian (when run as root or with sudo),
# then runs every test of the workspace. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install Rust first (https://rustup.rs)" >&2
    exit 1
fi

# The format crate must build without the server stack, so auditors can read and build it alone.
server_deps=$(cargo tree -p lavabeacon-format -e normal --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(tokio|sqlx|actix-web|actix-rt|cryptoki|nokhwa)$' || true)
if [ -n "$server_deps" ]; then
    echo "test.sh: crates/format depends on server crates: $server_deps" >&2
    exit 1
fi

cargo test --workspace --locked
