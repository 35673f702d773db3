#!/usr/bin/env python3
"""Private random bytes from a lavabeacon, with Python's standard library only.

    LAVABEACON_URL=https://beacon.example.org LAVABEACON_CREDENTIALS=alice.json \
        python3 private-bytes.py 32 hex

LAVABEACON_CA (optional): a CA certificate (PEM) to trust instead of the system's.
The string to sign is defined in docs/private-bytes.md.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def fetch(url, credentials, n=32, form="hex", ca=None):
    creds = json.load(open(credentials))
    key = base64.urlsafe_b64decode(creds["hmacKey"])
    base = urllib.parse.urlsplit(url)
    host = base.netloc.lower()  # sent as the Host header, port included when given
    path = "/private/v1/bytes"
    query = f"n={n}&format={form}"
    date = str(int(time.time()))
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
    to_sign = "\n".join([
        "lavabeacon-private-v1", "GET", host, path, query, date, nonce,
        creds["keyId"], hashlib.sha256(b"").hexdigest(),
    ])
    signature = base64.b64encode(
        hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    request = urllib.request.Request(f"{base.scheme}://{host}{path}?{query}", headers={
        "Host": host,
        creds["header"]["name"]: creds["header"]["value"],
        "Lavabeacon-Key-Id": creds["keyId"],
        "Lavabeacon-Date": date,
        "Lavabeacon-Nonce": nonce,
        "Lavabeacon-Signature": "v1=" + signature,
    })
    context = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        return answer.read()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    form = sys.argv[2] if len(sys.argv) > 2 else "hex"
    try:
        body = fetch(os.environ["LAVABEACON_URL"], os.environ["LAVABEACON_CREDENTIALS"],
                     n, form, os.environ.get("LAVABEACON_CA"))
    except urllib.error.HTTPError as e:
        sys.exit(f"{e.code}: {e.read().decode(errors='replace')}")
    sys.stdout.buffer.write(body + (b"" if form == "raw" else b"\n"))
