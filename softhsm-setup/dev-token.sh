#!/usr/bin/env bash
# A SoftHSM2 development token for lavabeacon, in a directory of your choosing (never the
# system token directory): the token, its PINs (files, mode 0600), the Ed25519 signing key and
# sealing key generated inside it, a TEST ONLY certificate, and a ready lavabeacon.toml.
# Idempotent: run it again and it keeps what is there.
#
#   softhsm-setup/dev-token.sh ./data/hsm [--suite ed25519|rsa-3072|rsa-4096]
#
# LAVABEACON_BIN names the lavabeacon binary to use (default: build target/release/lavabeacon).
set -euo pipefail

usage() { echo "usage: $0 DIR [--suite ed25519|rsa-3072|rsa-4096]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1
suite=ed25519
if [ $# -ge 2 ]; then
    [ "$2" = --suite ] && [ $# -eq 3 ] || usage
    suite=$3
fi
case "$suite" in ed25519|rsa-3072|rsa-4096) ;; *) usage ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "dev-token: $*" >&2; }

module=/usr/lib/softhsm/libsofthsm2.so
if [ ! -e "$module" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    say "installing softhsm2"
    $sudo apt-get update -qq >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi

bin=${LAVABEACON_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release --locked -q)
    bin=${CARGO_TARGET_DIR:-$root/target}/release/lavabeacon
fi

mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
umask 077
conf=$dir/softhsm2.conf
[ -f "$conf" ] || printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" > "$conf"
# PINs are made here and kept in files; they never appear on a command line.
newpin() { [ -s "$1" ] || od -An -N6 -tu2 /dev/urandom | tr -dc 0-9 | head -c 12 > "$1"; }
newpin "$dir/user.pin"
newpin "$dir/so.pin"
# A PIN file others can read is refused by the signer; older dev tokens had 0644 files.
chmod 600 "$dir/user.pin" "$dir/so.pin"

toml=$dir/lavabeacon.toml
if [ ! -f "$toml" ]; then
    cat > "$toml" <<TOML
# Written by softhsm-setup/dev-token.sh: a development beacon with a SoftHSM2 token.
[beacon]
base_uri = "http://localhost:8080/beacon/2.0"
chain = 1
period_ms = 60000
data_dir = "."

[database]
url = "sqlite:./lavabeacon.db"

[signer]
kind = "pkcs11"
suite = "$suite"
module = "$module"
token_label = "lavabeacon-dev"
key_label = "pulse-key"
pin_file = "./user.pin"
certificate = "./pulse-key.pem"
softhsm_conf = "./softhsm2.conf"
TOML
fi

"$bin" keys init-token --config "$toml" --so-pin-file "$dir/so.pin" >&2
if ! "$bin" keys list --config "$toml" | grep -q '^pulse-key .*private'; then
    "$bin" keys generate --config "$toml" >&2
fi
if [ ! -s "$dir/pulse-key.pem" ]; then
    "$bin" cert issue --config "$toml" --test --name "lavabeacon dev token" >&2
fi
say "ready: $toml"
