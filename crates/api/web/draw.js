// Verifies a registered draw in the browser (docs/draws.md), from what the registry serves:
// the spec's id (SHA-512 of its RFC 8785 canonical JSON), the receipt's signature and timing,
// the deciding pulse (verify.js) and, for lavabeacon-v1, the selection made again here. RFC
// 3797 needs MD5, which WebCrypto does not have: its selection is listed as not checked.

import { verify, verifySignatureOver, sha512, hexToBytes, bytesToHex } from "./verify.js";
import { parseCertificate } from "./x509.js";

const utf8 = new TextEncoder();

/// RFC 8785 canonical JSON of plain JSON values. Strings and numbers are written as
/// ECMAScript's JSON.stringify writes them, which is how RFC 8785 defines them; object keys are
/// sorted by UTF-16 code units, which is how Array.prototype.sort compares strings.
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error("not JSON: a non-finite number");
  return JSON.stringify(value);
}

const TWO64 = 1n << 64n;

/// lavabeacon-v1's stream: HMAC-SHA-512(outputValue, "lavabeacon-v1\0" ‖ drawId ‖ u64be(i)).
class Stream {
  constructor(key, drawId) {
    this.key = key;
    this.drawId = drawId;
    this.counter = 0n;
    this.words = [];
  }

  static async open(outputValue, drawId) {
    const key = await crypto.subtle.importKey("raw", outputValue, { name: "HMAC", hash: "SHA-512" }, false, ["sign"]);
    return new Stream(key, drawId);
  }

  async word() {
    if (!this.words.length) {
      const data = new Uint8Array(14 + 64 + 8);
      data.set(utf8.encode("lavabeacon-v1\0"), 0);
      data.set(this.drawId, 14);
      new DataView(data.buffer).setBigUint64(78, this.counter);
      this.counter++;
      const block = new DataView(await crypto.subtle.sign("HMAC", this.key, data));
      for (let i = 0; i < 8; i++) this.words.push(block.getBigUint64(i * 8));
    }
    return this.words.shift();
  }

  /// Uniform in [0, n), 1 ≤ n ≤ 2^64, by rejection.
  async uniform(n) {
    const zone = TWO64 - (TWO64 % n);
    for (;;) {
      const x = await this.word();
      if (x < zone) return x % n;
    }
  }
}

async function selectV1(spec, outputValue, drawId) {
  const stream = await Stream.open(outputValue, drawId);
  const size = spec.pool?.entries ? spec.pool.entries.length : spec.pool?.count ?? 0;
  const picks = [];
  const integers = [];
  if (spec.operation === "pick" || spec.operation === "shuffle") {
    const remaining = Array.from({ length: size }, (_, i) => i + 1);
    for (let j = 0; j < Math.min(spec.count, size); j++) {
      const at = Number(await stream.uniform(BigInt(remaining.length)));
      picks.push(remaining.splice(at, 1)[0]);
    }
  } else if (spec.operation === "weighted") {
    const remaining = spec.weights.map((w, i) => [i + 1, BigInt(w)]);
    for (let j = 0; j < Math.min(spec.count, remaining.length); j++) {
      let r = await stream.uniform(remaining.reduce((a, [, w]) => a + w, 0n));
      const at = remaining.findIndex(([, w]) => (r < w ? true : ((r -= w), false)));
      picks.push(remaining.splice(at, 1)[0][0]);
    }
  } else if (spec.operation === "integers") {
    const min = BigInt(spec.range.min);
    const span = BigInt(spec.range.max) - min + 1n;
    for (let j = 0; j < spec.count; j++) integers.push(String(min + (await stream.uniform(span))));
  }
  return { picks, integers };
}

/// The checks of a registered draw: `draw` is GET /draws/{id}, `result` GET
/// /draws/{id}/result (or null before its pulse), `certificate` the PEM of the receipt's key.
export async function verifyDraw({ draw, result, certificate, pulseCertificate, previous }) {
  const checks = [];
  const add = (id, label, state, detail) => checks.push({ id, label, state, detail });
  const { spec, receipt } = draw;
  const id = bytesToHex(await sha512(utf8.encode(canonical(spec)))).toLowerCase();
  add("drawId", "The spec is the one the id names", id === draw.drawId ? "ok" : "failed",
    id === draw.drawId ? `SHA-512 of the spec's canonical JSON is ${id.slice(0, 16)}…` : `the spec hashes to ${id.slice(0, 16)}…, not ${draw.drawId.slice(0, 16)}…`);

  // The receipt: signed by the beacon, for this spec, two periods ahead.
  let cert = null;
  try {
    cert = certificate ? parseCertificate(certificate) : null;
  } catch (e) {
    add("receipt", "The beacon's receipt", "failed", `its certificate cannot be read: ${e.message}`);
  }
  if (cert) {
    const unsigned = { ...receipt };
    delete unsigned.signatureValue;
    const message = utf8.encode("lavabeacon draw receipt v1\n" + canonical(unsigned));
    const certId = bytesToHex(await sha512(cert.der)).toLowerCase();
    const sig = certId !== receipt.certificateId
      ? { state: "failed", detail: "the certificate served is not the one the receipt names" }
      : await verifySignatureOver(receipt.cipherSuite, cert, message, receipt.signatureValue ?? "");
    const ahead = Date.parse(receipt.targetTime) - Date.parse(receipt.registeredAt);
    const timely = ahead >= 2 * receipt.periodMs;
    const same = receipt.drawId === draw.drawId && receipt.targetTime === spec.targetTime;
    const state = sig.state === "ok" && timely && same ? "ok" : sig.state === "not-checked" && timely && same ? "not-checked" : "failed";
    add("receipt", "The beacon's receipt", state,
      `signature ${sig.detail}; registered ${receipt.registeredAt}, ${Math.floor(ahead / receipt.periodMs)} periods before the target` +
      (timely ? "" : " (less than two: no proof)") + (same ? "" : "; it names another draw or target time"));
  } else if (!checks.some((c) => c.id === "receipt")) {
    add("receipt", "The beacon's receipt", "not-checked", "the certificate it names is not served");
  }

  if (!result) {
    add("pulse", "The pulse that decides it", "not-checked", `not published yet: it is the pulse of ${spec.targetTime}`);
    add("selection", "The selection", "not-checked", "made once that pulse is published");
    return finish(checks);
  }
  const pulse = result.pulse;
  const pv = await verify({ pulse, certificate: pulseCertificate, previous, manifest: null });
  const t = Date.parse(pulse.timeStamp);
  const target = Date.parse(spec.targetTime);
  const decides = t === target || (t > target && previous && Date.parse(previous.timeStamp) < target);
  const sameBeacon = pulse.uri.startsWith(spec.beacon.baseUri.replace(/\/$/, "") + "/") && pulse.chainIndex === spec.beacon.chainIndex;
  const failedPulse = pv.checks.filter((c) => c.state === "failed").map((c) => c.label);
  add("pulse", "The pulse that decides it", pv.state === "ok" && decides && sameBeacon ? "ok" : "failed",
    pv.state !== "ok" ? `pulse ${pulse.chainIndex}-${pulse.pulseIndex} does not verify: ${failedPulse.join(", ") || "its signature could not be checked"}`
      : !decides ? `pulse ${pulse.timeStamp} is not the pulse of the target time ${spec.targetTime}`
      : !sameBeacon ? "the pulse is not of the beacon and chain the spec names"
      : `pulse ${pulse.chainIndex}-${pulse.pulseIndex} (${pulse.timeStamp}) verifies and is the pulse of the target time`);

  if (spec.method !== "lavabeacon-v1") {
    add("selection", "The selection", "not-checked", "RFC 3797 hashes with MD5, which WebCrypto does not have: lavabeacon draw verify makes it again");
    return finish(checks);
  }
  const again = await selectV1(spec, hexToBytes(pulse.outputValue), hexToBytes(draw.drawId));
  const served = {
    picks: (result.selection.picks ?? []).map((p) => p.index),
    integers: result.selection.integers ?? [],
  };
  const same = JSON.stringify(again) === JSON.stringify(served);
  add("selection", "The selection", same ? "ok" : "failed",
    same ? "made again here from the pulse's outputValue: the same" : "made again here, it differs from the one served");
  return finish(checks);
}

function finish(checks) {
  const failed = checks.some((c) => c.state === "failed");
  const essential = ["drawId", "receipt", "pulse"].every((id) => checks.find((c) => c.id === id)?.state === "ok");
  return { state: failed ? "failed" : essential ? "ok" : "unverified", checks };
}
