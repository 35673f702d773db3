#!/usr/bin/env bash
# The full test suite. Installs what the tests need on Debian (when run as root or with sudo),
# then runs every test of the workspace. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install Rust first (https://rustup.rs)" >&2
    exit 1
fi

cargo test --workspace --locked
