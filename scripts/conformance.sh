#!/usr/bin/env bash
# Contract tests of the public API: schemathesis, pinned, reads /openapi.json from a running
# beacon and checks every answer against it (every phase, every check) on
#   (a) `lavabeacon serve`: engine and API, a SoftHSM2 dev token, SQLite, a 1 s period;
#   (b) `lavabeacon api`: a read-only API node over the same database.
# The database holds a generated chain 1 (1,000 pulses, a software TEST key) and the chain 2
# that serve writes, so there is history to ask for and a chain that grows during the run.
# The run's settings are in schemathesis.toml at the repository's root.
#
#   ./scripts/conformance.sh [extra schemathesis run options, e.g. --max-examples 10]
#
# LAVABEACON_BIN: the lavabeacon binary to test (default: cargo builds target/debug/lavabeacon).
#
# Exit status: 0 no failure; 1 a failure (or the set-up failed); 77 skipped (Python or PyPI
# cannot be had; never under CI=true, which fails instead). Each run's reports (JUnit XML and a
# cassette of every request) are kept in target/conformance/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# Pinned: a new schemathesis release brings new checks, and CI must not fail on a day nobody
# changed anything. Move it on purpose (and its dependencies in conformance-constraints.txt).
schemathesis_version=4.32.5
target=${CARGO_TARGET_DIR:-$PWD/target}
out=$target/conformance
venv=$out/venv
SKIP=77

# Outside CI a machine without Python or PyPI skips with a message; CI must fail instead, or a
# broken install would quietly turn the contract tests off.
unavailable() {
    if [ "${CI:-}" = true ]; then
        say "CI=true and $*"
        exit 1
    fi
    say "$*: contract tests skipped"
    exit "$SKIP"
}

need curl curl || unavailable "curl cannot be installed"

# The virtualenv is kept between runs and reused while it holds the pinned version with the
# same constraints; otherwise it is made anew.
venv_current() {
    [ -x "$venv/bin/schemathesis" ] &&
        cmp -s scripts/conformance-constraints.txt "$venv/lavabeacon-constraints.txt" &&
        [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" = "schemathesis, version $schemathesis_version" ]
}
if ! venv_current; then
    command -v python3 >/dev/null 2>&1 || install_pkg python3 || unavailable "python3 cannot be installed"
    rm -rf "$venv"
    mkdir -p "$out"
    # Debian's python3 makes virtualenvs only with python3-venv (ensurepip) installed.
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        install_pkg python3-venv || unavailable "python3-venv cannot be installed"
        python3 -m venv "$venv" || unavailable "python3 cannot make a virtualenv"
    fi
    say "installing schemathesis $schemathesis_version in $venv"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check \
        -c scripts/conformance-constraints.txt "schemathesis==$schemathesis_version"; then
        rm -rf "$venv"
        unavailable "schemathesis $schemathesis_version cannot be installed from PyPI"
    fi
    cp scripts/conformance-constraints.txt "$venv/lavabeacon-constraints.txt"
fi
st=$venv/bin/schemathesis

# LAVABEACON_BIN names the binary to test; by default the debug build, which scripts/test.sh
# has just made for the tests (so building it here costs nothing there).
bin=${LAVABEACON_BIN:-}
if [ -z "$bin" ]; then
    need_cargo
    cargo build --locked --bin lavabeacon -q
    bin=$target/debug/lavabeacon
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/lavabeacon-conformance.XXXXXX")
pids=()    # the servers
names=()
helpers=() # schemathesis (its timeout, which passes the signal on) and the tail showing it
cleanup() {
    # Only what this script started, by id.
    for pid in "${helpers[@]}" "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${helpers[@]}" "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# schemathesis runs in the background and is waited for, so that a signal reaches this trap at
# once rather than after the run (bash runs traps only between foreground commands).
trap 'exit 130' INT TERM HUP

# set-up steps print only when they fail
quiet() {
    local log=$work/step.log
    if ! "$@" >"$log" 2>&1; then
        say "failed: $*"
        cat "$log" >&2
        exit 1
    fi
}

# A SoftHSM2 dev token (PINs in files, never on a command line), as scripts/dev.sh makes it.
[ -e /usr/lib/softhsm/libsofthsm2.so ] || install_pkg softhsm2 || { say "SoftHSM2 is needed for serve's token"; exit 1; }
hsm=$work/hsm
quiet env LAVABEACON_BIN="$bin" softhsm-setup/dev-token.sh "$hsm"
db=sqlite:$hsm/lavabeacon.db
# Chain 1: history made by the auditor's generator (a fixed seed for its values; its times end
# at the latest minute boundary and its TEST key is new each time); serve goes on in chain 2
# with the token's key, as a beacon does after a key change.
quiet "$bin" dev generate-chain --pulses 1000 --period 60s --seed 1 --database "$db"
sed 's/^chain = 1$/chain = 2/' "$hsm/lavabeacon.toml" > "$hsm/serve.toml"
grep -q '^chain = 2$' "$hsm/serve.toml" || { say "dev-token.sh's configuration has no 'chain = 1'"; exit 1; }
# An external source, so that its description is served (/beacon/2.0/externalSource/{id}): one
# that never answers (port 9, discard), so every pulse marks it failed (statusCode 2) at once.
cat >>"$hsm/serve.toml" <<'TOML'

[engine.external]
url = "http://127.0.0.1:9/beacon/2.0/pulse/last"
description = "conformance run: an external beacon that never answers (statusCode 2, value zero)"
timeout_ms = 200
TOML

# start NAME ARGS...: starts the binary with ARGS on a fresh port (port 0: the kernel picks a
# free one, so the PostgreSQL on 5432 or another run is never in the way) and sets $url to the
# address it prints.
start() {
    local name=$1
    shift
    # Made before the server starts: the background redirect may come after the first read.
    : >"$work/$name.out"
    "$bin" "$@" --listen 127.0.0.1:0 >"$work/$name.out" 2>"$out/$name.log" &
    pids+=("$!")
    names+=("$name")
    for _ in $(seq 1 300); do
        url=$(sed -n 's/^listening on //p' "$work/$name.out" | head -1)
        [ -n "$url" ] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    say "$name did not start"
    cat "$out/$name.log" >&2
    exit 1
}

start serve serve --config "$hsm/serve.toml" --period 1s
serve_url=$url
# A few pulses of chain 2 before testing, so that chain 2 has a first, a last and a previous.
pulse3() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$serve_url/beacon/2.0/chain/2/pulse/3")" = 200 ]; }
for _ in $(seq 1 300); do pulse3 && break; sleep 0.1; done
pulse3 || { say "serve published no pulse 3 of chain 2 in 30 s"; cat "$out/serve.log" >&2; exit 1; }
start api api --config "$hsm/serve.toml"
api_url=$url

# The run's settings: schemathesis.toml, plus values that exist in this run's chain.
config=$work/schemathesis.toml
{ cat schemathesis.toml; "$venv/bin/python" scripts/conformance-values.py "$serve_url"; } > "$config" ||
    { say "could not read the chain's values from serve"; exit 1; }

# run NAME URL: schemathesis against one server, all phases and all checks, its reports (JUnit
# XML, a cassette of every request, its output) in $out/NAME. It runs there, so that the files
# schemathesis and Hypothesis keep beside them stay out of the work tree. A run that outlives
# its bound is stopped and fails: the settings, not the machine, must keep CI short.
results=()
passed=0
failed=0
run() {
    local name=$1 base=$2 status=0 dir=$out/$1 line
    shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    say "schemathesis against $name at $base"
    : >"$dir/output.txt"
    (cd "$dir" && exec timeout --kill-after=10 "$run_limit" "$st" --config-file "$config" run \
        "$base/openapi.json" --url "$base" --checks all --phases examples,coverage,fuzzing,stateful \
        --report junit,vcr --report-dir "$dir" --no-color "$@" >"$dir/output.txt" 2>&1) &
    helpers=("$!")
    # Its output as it comes, for CI's log; tail ends once schemathesis has, having printed all.
    tail -n +1 -f --pid="${helpers[0]}" "$dir/output.txt" &
    helpers+=("$!")
    wait "${helpers[0]}" || status=$?
    wait "${helpers[1]}" || true
    helpers=()
    # schemathesis's closing line, e.g. "14 failures, 1 warning in 8.23s"; timeout exits 124.
    line=$(grep -E '^=+ .+ =+$' "$dir/output.txt" | tail -1 | sed -E 's/^=+ (.*) =+$/\1/')
    if [ "$status" = 0 ]; then
        results+=("$name passed (${line:-no summary})")
        passed=$((passed + 1))
    elif [ "$status" = 124 ]; then
        results+=("$name FAILED: still running after ${run_limit}s; lower max-examples in schemathesis.toml")
        failed=$((failed + 1))
    else
        results+=("$name FAILED (${line:-exit $status}); reports in $dir")
        failed=$((failed + 1))
    fi
}
# Two runs of this bound stay within CI's five minutes for this script.
run_limit=${LAVABEACON_CONFORMANCE_LIMIT:-130}
run serve "$serve_url" "$@"
run api "$api_url" "$@"

# The servers must have lived through it: a crash would otherwise show only as refused
# connections, which a later phase may not meet.
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        results+=("${names[$i]} died during the run; its log: $out/${names[$i]}.log")
        failed=$((failed + 1))
    fi
done

echo
for r in "${results[@]}"; do echo "conformance: $r"; done
# One run per server; scripts/test.sh adds these to its closing count.
echo "conformance: $passed passed, $failed failed"
[ "$failed" = 0 ]
