// Private random bytes from a lavabeacon with WebCrypto and fetch: the same code runs in a
// browser (give it the credentials some other way) and in Node.js 20 or later:
//
//   LAVABEACON_URL=https://beacon.example.org LAVABEACON_CREDENTIALS=alice.json \
//       node private-bytes.mjs 32 hex
//
// For a CA of your own, start Node with NODE_EXTRA_CA_CERTS=ca.pem. In a browser the Host is
// the URL's host (with its port when it is not the default); the string to sign is defined in
// docs/private-bytes.md.

const enc = new TextEncoder();
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const b64urlDecode = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

export async function privateBytes(url, creds, n = 32, format = "hex") {
  const base = new URL(url);
  const host = base.host.toLowerCase();
  const path = "/private/v1/bytes";
  const query = `n=${n}&format=${format}`;
  const date = String(Math.floor(Date.now() / 1000));
  const nonceBytes = crypto.getRandomValues(new Uint8Array(24));
  const nonce = b64(nonceBytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const bodyHash = hex(await crypto.subtle.digest("SHA-256", new Uint8Array(0)));
  const toSign = ["lavabeacon-private-v1", "GET", host, path, query, date, nonce, creds.keyId, bodyHash].join("\n");
  const key = await crypto.subtle.importKey("raw", b64urlDecode(creds.hmacKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = b64(await crypto.subtle.sign("HMAC", key, enc.encode(toSign)));
  const answer = await fetch(`${base.protocol}//${host}${path}?${query}`, {
    headers: {
      [creds.header.name]: creds.header.value,
      "Lavabeacon-Key-Id": creds.keyId,
      "Lavabeacon-Date": date,
      "Lavabeacon-Nonce": nonce,
      "Lavabeacon-Signature": `v1=${signature}`,
    },
    cache: "no-store",
  });
  if (!answer.ok) throw new Error(`${answer.status}: ${await answer.text()}`);
  return format === "raw" ? new Uint8Array(await answer.arrayBuffer()) : await answer.text();
}

if (typeof process !== "undefined" && import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import("node:fs");
  const creds = JSON.parse(readFileSync(process.env.LAVABEACON_CREDENTIALS, "utf8"));
  const n = Number(process.argv[2] ?? 32);
  const format = process.argv[3] ?? "hex";
  try {
    const out = await privateBytes(process.env.LAVABEACON_URL, creds, n, format);
    if (format === "raw") process.stdout.write(out);
    else process.stdout.write(out + "\n");
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
