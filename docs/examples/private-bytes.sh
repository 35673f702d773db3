#!/usr/bin/env bash
# Private random bytes from a lavabeacon with curl and openssl:
#
#   LAVABEACON_URL=https://beacon.example.org LAVABEACON_CREDENTIALS=alice.json \
#       ./private-bytes.sh 32 hex
#
# LAVABEACON_CA (optional): a CA certificate (PEM) to trust. The credentials file is the one
# line `lavabeacon clients add` printed. The string to sign is defined in docs/private-bytes.md.
set -euo pipefail
n=${1:-32}
format=${2:-hex}
creds=$(cat "$LAVABEACON_CREDENTIALS")
field() { printf '%s' "$creds" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
key_id=$(field keyId)
hmac_key=$(field hmacKey)
header_name=$(printf '%s' "$creds" | sed -n 's/.*"header":{"name":"\([^"]*\)".*/\1/p')
header_value=$(printf '%s' "$creds" | sed -n 's/.*"header":{[^}]*"value":"\([^"]*\)".*/\1/p')

url=${LAVABEACON_URL%/}
scheme=${url%%://*}
host=$(printf '%s' "${url#*://}" | cut -d/ -f1 | tr 'A-Z' 'a-z')
path=/private/v1/bytes
query="n=$n&format=$format"
date=$(date +%s)
nonce=$(openssl rand -base64 24 | tr '+/' '-_' | tr -d '=\n')
body_hash=$(printf '' | openssl dgst -sha256 -r | cut -d' ' -f1)
key_hex=$(printf '%s' "$hmac_key" | tr '_-' '/+' | base64 -d | od -An -tx1 | tr -d ' \n')
to_sign=$(printf 'lavabeacon-private-v1\nGET\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
    "$host" "$path" "$query" "$date" "$nonce" "$key_id" "$body_hash")
signature=$(printf '%s' "$to_sign" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64 | tr -d '\n')

ca=()
[ -n "${LAVABEACON_CA:-}" ] && ca=(--cacert "$LAVABEACON_CA")
curl --fail-with-body --silent --show-error "${ca[@]}" \
    -H "Host: $host" \
    -H "$header_name: $header_value" \
    -H "Lavabeacon-Key-Id: $key_id" \
    -H "Lavabeacon-Date: $date" \
    -H "Lavabeacon-Nonce: $nonce" \
    -H "Lavabeacon-Signature: v1=$signature" \
    "$scheme://$host$path?$query"
[ "$format" = raw ] || echo
