#!/usr/bin/env bash
# The full test suite. Installs and starts what the tests need on Debian (as root, or with
# sudo): libclang (to build the camera support), the sqlite3 client, Chromium (the explorer's
# browser tests), SoftHSM2, a PostgreSQL
# server, xmllint (NIST's XML schema) and, for the contract tests (scripts/conformance.sh), a
# Python virtualenv with schemathesis from PyPI. Under CI=true a component that cannot be had fails the run;
# elsewhere the tests that need it are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
need_cargo
need_libclang || { say "libclang is needed to build the camera support"; exit 1; }
need sqlite3 sqlite3 || { say "sqlite3 is needed by the store tests"; exit 1; }
# node and npm: an existing NIST-beacon client (an npm package) checks our pulses.
if ! { need nodejs node && need npm npm; }; then
    if [ "${CI:-}" = true ]; then
        say "CI=true and node/npm cannot be installed"
        exit 1
    fi
    say "node/npm not installed: the NIST client check will be skipped"
fi
# Chromium: the explorer's browser tests (tests/explorer.rs) drive Debian's /usr/bin/chromium with
# playwright-core, which npm installs from tests/browser/package-lock.json.
if [ ! -x /usr/bin/chromium ] && ! install_pkg chromium; then
    if [ "${CI:-}" = true ]; then
        say "CI=true and Chromium cannot be installed"
        exit 1
    fi
    say "Chromium not installed: the explorer's browser tests will be skipped"
fi
# SoftHSM2: the signer's tests run against a real token (made in a temporary directory).
if ! need softhsm2 softhsm2-util || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
    if [ "${CI:-}" = true ]; then
        say "CI=true and SoftHSM2 is not installed"
        exit 1
    fi
    say "SoftHSM2 not installed: the HSM tests will be skipped"
fi

# PostgreSQL: the store's contract tests run against a real server.
export LAVABEACON_TEST_POSTGRES="${LAVABEACON_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_ok() { psql "$LAVABEACON_TEST_POSTGRES" -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_ok; then
    need postgresql pg_ctlcluster && need postgresql-client psql || true
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
            say "creating a PostgreSQL cluster"
            pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -1)" main >/dev/null 2>&1 || true
        fi
        version=$(ls /etc/postgresql | sort -n | tail -1)
        conf=/etc/postgresql/$version/main
        # Local test server: trust on loopback, as on this project's machines.
        if [ -f "$conf/pg_hba.conf" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
            sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
        fi
        say "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 ||
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1 || true
        for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
    fi
fi
if pg_ok; then
    say "PostgreSQL reachable at $LAVABEACON_TEST_POSTGRES"
    # Databases left behind by tests that panicked.
    psql "$LAVABEACON_TEST_POSTGRES" -Atqc "select datname from pg_database where datname like 'lbtest_%'" |
        while read -r db; do psql "$LAVABEACON_TEST_POSTGRES" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; done
elif [ "${CI:-}" = true ]; then
    say "CI=true and PostgreSQL is not reachable at $LAVABEACON_TEST_POSTGRES"
    exit 1
else
    say "PostgreSQL not reachable: its tests will be skipped"
fi

# The fault-injection and replica tests (tests/faults/, tests/replica.rs) run PostgreSQL
# clusters of their own: they need the server programs (initdb, pg_ctl, pg_basebackup), the
# `postgres` user the package makes (as root, initdb runs as that user), mount for a tmpfs and
# wrk for the flood bench.
pg_bin_ok() { ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if ! pg_bin_ok || ! id postgres >/dev/null 2>&1; then
    install_pkg postgresql || true
fi
if ! pg_bin_ok; then
    if [ "${CI:-}" = true ]; then
        say "CI=true and the PostgreSQL server programs (initdb, pg_ctl, pg_basebackup) cannot be installed"
        exit 1
    fi
    say "PostgreSQL server programs not installed: the fault and replica tests will skip them"
fi
need wrk wrk || say "wrk not installed: cargo bench --bench faults needs it"
# xmllint validates every XML answer against NIST's beacon-2.0.xsd (tests/vectors/nist-schema/).
if ! need libxml2-utils xmllint; then
    if [ "${CI:-}" = true ]; then say "CI=true and xmllint (libxml2-utils) cannot be installed"; exit 1; fi
    say "xmllint not installed: XML answers will not be validated against NIST's schema"
fi
# The private-bytes examples (docs/examples) run against a real server: curl with openssl, and
# Python (node is installed above).
for tool in curl:curl openssl:openssl python3:python3; do
    if ! need "${tool%%:*}" "${tool##*:}"; then
        if [ "${CI:-}" = true ]; then say "CI=true and ${tool##*:} cannot be installed"; exit 1; fi
        say "${tool##*:} not installed: the private-bytes example test will fail"
    fi
done

# The format crate must build without the server stack, so auditors can read and build it alone.
server_deps=$(cargo tree -p lavabeacon-format -e normal --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(tokio|sqlx|actix-web|actix-rt|cryptoki|nokhwa)$' || true)
if [ -n "$server_deps" ]; then
    say "crates/format depends on server crates: $server_deps"
    exit 1
fi
# The draws crate is for auditors too: no server stack either.
draw_deps=$(cargo tree -p lavabeacon-draw -e normal --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(tokio|sqlx|actix-web|actix-rt|cryptoki|nokhwa)$' || true)
if [ -n "$draw_deps" ]; then
    say "crates/draw depends on server crates: $draw_deps"
    exit 1
fi
# The transparency log's formats are for witnesses and auditors too: no server stack.
tlog_deps=$(cargo tree -p lavabeacon-tlog -e normal --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(tokio|sqlx|actix-web|actix-rt|cryptoki|nokhwa)$' || true)
if [ -n "$tlog_deps" ]; then
    say "crates/tlog depends on server crates: $tlog_deps"
    exit 1
fi
# The private-bytes crate holds secrets and no server: no web server, database, HSM or camera.
private_deps=$(cargo tree -p lavabeacon-private -e normal --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(tokio|sqlx|actix-web|actix-rt|cryptoki|nokhwa)$' || true)
if [ -n "$private_deps" ]; then
    say "crates/private depends on server crates: $private_deps"
    exit 1
fi
# The auditor's tools must build with Rust alone (`cargo install --path crates/audit`): no web
# server, HSM or camera stack, and nothing that runs bindgen (which needs libclang; it is a
# build dependency, hence `-e normal,build`).
audit_deps=$(cargo tree -p lavabeacon-audit -e normal,build --prefix none --locked | sed 's/ .*//' | sort -u |
    grep -E '^(actix.*|bindgen|clang-sys|cryptoki.*|nokhwa.*|lavabeacon-(signer|engine|api))$' || true)
if [ -n "$audit_deps" ]; then
    say "crates/audit depends on crates an auditor's machine cannot build alone: $audit_deps"
    exit 1
fi

# Every test of the workspace, then the API's contract tests, then one closing line counting
# them all (cargo prints one summary per test binary; the last of those may well be a crate
# with no doc tests).
log=$(mktemp)
conformance_log=$(mktemp)
trap 'rm -f "$log" "$conformance_log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Contract tests (scripts/conformance.sh): schemathesis against a real `serve` and a real `api`,
# on the binary cargo test has just built. It runs even when a test failed, so one CI run
# reports both. Each server's run counts as one test in the closing line, and its own line
# ("conformance: ...") says what failed. Exit 77 is its skip, for a machine without Python or
# PyPI outside CI; under CI=true it fails instead, and a 77 would be counted as a failure.
set +e
LAVABEACON_BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/lavabeacon ./scripts/conformance.sh 2>&1 |
    tee "$conformance_log"
conformance=${PIPESTATUS[0]}
set -e
if [ "$conformance" = 77 ] && [ "${CI:-}" != true ]; then
    echo "conformance: 0 passed, 0 failed, 2 skipped" | tee -a "$conformance_log"
elif [ "$conformance" != 0 ]; then
    # Whatever it counted, a non-zero exit is a failure (a set-up failure counts no run).
    grep -q '^conformance: [0-9]* passed, [1-9]' "$conformance_log" ||
        echo "conformance: 0 passed, 1 failed" | tee -a "$conformance_log"
    [ "$status" != 0 ] || status=1
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     /^conformance: [0-9]+ passed, [0-9]+ failed/ { c = $0 }
     END { if (c != "") { split(c, w, /[ ,]+/); p += w[2]; f += w[4]; if (w[6] != "") s += w[6] }
           printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log" "$conformance_log"
exit "$status"
