// Verifies one beacon pulse with WebCrypto alone, in a browser or in Node 20 and later.
//
// The rules are those of docs/pulse-format.md (NIST Randomness Beacon 2.0 format): the signed
// message M (§2), the cipher suites (§3), certificates (§4), statusCode (§5) and the rules
// between consecutive pulses (§7). `verify` lists every check it knows, always in the same
// order, and says for each whether it was made: a check reads "ok" only when it was computed
// here and held. What a browser cannot check is listed as "not-checked" with the reason, so
// that nobody takes a green pulse for more than it is. `lavabeacon verify` checks the rest.
//
// A plain ES module with no dependencies and no build step.

import { parseCertificate } from "./x509.js";

// Why WebCrypto may be missing: browsers offer crypto.subtle only to secure pages.
const NO_WEBCRYPTO =
  "WebCrypto is not available here (a browser offers it only on https:// or localhost pages)";

// What starts the source combination (crates/format/src/manifest.rs, DOMAIN).
const MANIFEST_DOMAIN = "lavabeacon localRandomValue v1";

// Every hash field of a pulse is a SHA-512 value (§2).
const HASH_BYTES = 64;

// §4: the RSA key sizes a pulse may be signed with.
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 4096;

// The checks an essential "ok" needs: without all three, nothing says the pulse is genuine.
const ESSENTIAL = ["certificateId", "signature", "outputValue"];

const utf8 = new TextEncoder();

// --- bytes ----------------------------------------------------------------------------------

/** The bytes of hex text, either case; throws on an odd length or a non-hex character. */
export function hexToBytes(text) {
  if (typeof text !== "string") throw new Error("expected hex text");
  if (text.length % 2 !== 0) throw new Error("hex text of odd length");
  if (!/^[0-9a-fA-F]*$/.test(text)) throw new Error("not hex text");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Upper-case hex, as pulses carry every hash but certificateId. */
export function bytesToHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s.toUpperCase();
}

/** SHA-512 of bytes, by WebCrypto. */
export async function sha512(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) throw new Error(NO_WEBCRYPTO);
  return new Uint8Array(await subtle.digest("SHA-512", bytes));
}

/** The bytes of `parts`, one after the other. */
export function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Whether two byte arrays are equal (in time independent of where they differ). */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

// The start of a hash, enough for a person to tell two apart in a message.
function short(bytes, lower = false) {
  const hex = bytesToHex(bytes.subarray(0, 8));
  return (lower ? hex.toLowerCase() : hex) + "…";
}

// --- the signed message ---------------------------------------------------------------------

// Collects M's fields in order, checking each as it goes so that a malformed pulse is named by
// the field at fault rather than signed as something else.
class MessageWriter {
  constructor() {
    this.parts = [];
  }

  u32(value, name) {
    if (!Number.isSafeInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Error(`${name} must be a whole number from 0 to 4294967295`);
    }
    this.parts.push(u32(value));
  }

  u64(value, name) {
    const ok =
      (Number.isSafeInteger(value) && value >= 0) ||
      (typeof value === "bigint" && value >= 0n && value < 1n << 64n);
    if (!ok) throw new Error(`${name} must be a whole number from 0`);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    this.parts.push(out);
  }

  // S(str): the UTF-8 bytes with their length. The text is signed exactly as given: NIST's
  // early pulses say "Version 2.0", and normalising it would break their signatures.
  str(value, name) {
    if (typeof value !== "string") throw new Error(`${name} must be text`);
    const bytes = utf8.encode(value);
    this.parts.push(u32(bytes.length), bytes);
  }

  // H(hex): the decoded bytes with their length. Never the hex text itself.
  hash(value, name) {
    const bytes = decodeHash(value, name);
    this.parts.push(u32(bytes.length), bytes);
  }

  bytes() {
    return concat(this.parts);
  }
}

// A hash field's 64 bytes; throws naming the field when it is missing, not hex or not 64 bytes.
function decodeHash(value, name) {
  if (typeof value !== "string") throw new Error(`${name} is missing or not text`);
  let bytes;
  try {
    bytes = hexToBytes(value);
  } catch (e) {
    throw new Error(`${name} is not hex (${e.message})`);
  }
  if (bytes.length !== HASH_BYTES) {
    throw new Error(`${name} is ${bytes.length} bytes, not ${HASH_BYTES}`);
  }
  return bytes;
}

/**
 * M, the exact bytes a pulse's signature covers (§2). Throws an Error naming the field when the
 * pulse is malformed.
 */
export function signedMessage(pulse) {
  if (!pulse || typeof pulse !== "object") throw new Error("a pulse must be an object");
  const w = new MessageWriter();
  w.str(pulse.uri, "uri");
  w.str(pulse.version, "version");
  w.u32(pulse.cipherSuite, "cipherSuite");
  w.u32(pulse.period, "period");
  w.hash(pulse.certificateId, "certificateId");
  w.u64(pulse.chainIndex, "chainIndex");
  w.u64(pulse.pulseIndex, "pulseIndex");
  w.str(pulse.timeStamp, "timeStamp");
  w.hash(pulse.localRandomValue, "localRandomValue");

  const external = pulse.external;
  if (Array.isArray(external)) {
    // CLCERT's form (§8); its suite 1 is not checked here, so neither is its message.
    throw new Error("external is a list (CLCERT's form); this verifier reads one external object");
  }
  if (!external || typeof external !== "object") throw new Error("external is missing");
  w.hash(external.sourceId, "external.sourceId");
  w.u32(external.statusCode, "external.statusCode");
  w.hash(external.value, "external.value");

  // Only the values are signed; their uri and type are not.
  if (!Array.isArray(pulse.listValues)) throw new Error("listValues is missing or not a list");
  pulse.listValues.forEach((entry, i) => {
    w.hash(entry && entry.value, `listValues[${i}].value`);
  });

  w.hash(pulse.precommitmentValue, "precommitmentValue");
  w.u32(pulse.statusCode, "statusCode");
  return w.bytes();
}

// --- the source manifest --------------------------------------------------------------------

// Orders names as Rust orders their UTF-8 bytes (JavaScript's own < compares UTF-16 units,
// which differs for characters beyond U+FFFF).
function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * The localRandomValue a source manifest's contributing sources combine to (version 1):
 * SHA-512("lavabeacon localRandomValue v1" ‖ for each source with a digest, in ascending byte
 * order of name: u32(len(name)) ‖ name ‖ u32(len(digest)) ‖ digest). Throws on an unknown
 * version, a source named twice, or a digest that is not hex.
 */
export async function recombine(manifest) {
  if (typeof manifest === "string") manifest = JSON.parse(manifest);
  if (!manifest || typeof manifest !== "object") throw new Error("the manifest is not an object");
  if (manifest.version !== 1) {
    throw new Error(`manifest version ${manifest.version} is unknown (this verifier knows version 1)`);
  }
  if (!Array.isArray(manifest.sources)) throw new Error("the manifest has no list of sources");

  const seen = new Set();
  const contributions = [];
  for (const source of manifest.sources) {
    const name = source && source.name;
    if (typeof name !== "string") throw new Error("a source has no name");
    // Every source counts for duplicates, contributing or not, as in the Rust code.
    if (seen.has(name)) throw new Error(`source ${name} appears twice`);
    seen.add(name);
    if (source.digest == null) continue; // left out of this pulse: it did not contribute
    let digest;
    try {
      digest = hexToBytes(source.digest);
    } catch {
      throw new Error(`source ${name}: digest is not hex`);
    }
    contributions.push({ name: utf8.encode(name), digest });
  }
  contributions.sort((a, b) => compareBytes(a.name, b.name));

  const parts = [utf8.encode(MANIFEST_DOMAIN)];
  for (const { name, digest } of contributions) {
    parts.push(u32(name.length), name, u32(digest.length), digest);
  }
  return sha512(concat(parts));
}

// --- Ed25519 keys of small order ------------------------------------------------------------

// §4 refuses Ed25519 keys of small order: with one, a signature says nothing about who made it.
// A point has small order (1, 2, 4 or 8) exactly when its y coordinate is one of five values;
// they are derived here rather than copied, from the curve -x² + y² = 1 + d·x²·y² mod p.
const P = 2n ** 255n - 19n;
let smallOrderYs = null;

function modP(a) {
  return ((a % P) + P) % P;
}

function powP(base, exp) {
  let result = 1n;
  base = modP(base);
  for (; exp > 0n; exp >>= 1n) {
    if (exp & 1n) result = (result * base) % P;
    base = (base * base) % P;
  }
  return result;
}

// A square root mod p (p ≡ 5 mod 8), or null when there is none.
function sqrtP(a) {
  a = modP(a);
  let r = powP(a, (P + 3n) / 8n);
  if ((r * r) % P === a) return r;
  r = (r * powP(2n, (P - 1n) / 4n)) % P; // times √-1
  return (r * r) % P === a ? r : null;
}

function smallOrderYValues() {
  if (smallOrderYs) return smallOrderYs;
  const inv = (a) => powP(a, P - 2n);
  const d = modP(-121665n * inv(121666n));
  // Order 1 and 2: y = 1 and y = -1. Order 4: y = 0 (x = ±√-1).
  const ys = new Set([1n, P - 1n, 0n]);
  // Order 8: P doubles to an order-4 point, so y(2P) = (x² + y²)/(1 - d·x²·y²) = 0, i.e.
  // x² = -y²; on the curve that gives d·y⁴ + 2y² - 1 = 0, so y² = (-1 ± √(1 + d)) / d.
  const s = sqrtP(1n + d);
  for (const root of [s, P - s]) {
    const y2 = modP((root - 1n) * inv(d));
    const y = sqrtP(y2);
    if (y !== null && sqrtP(P - y2) !== null) ys.add(y).add(P - y);
  }
  smallOrderYs = ys;
  return ys;
}

// Whether a 32-byte Ed25519 public key encodes a point of small order (non-canonical
// encodings included: y is read mod p).
function isSmallOrderEd25519(key) {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? key[i] & 0x7f : key[i]);
  return smallOrderYValues().has(modP(y));
}

// The raw 32 key bytes of an Ed25519 SubjectPublicKeyInfo: x509.js checks that its bit string
// of 32 bytes is the last thing in it.
function ed25519KeyBytes(spki) {
  return spki.subarray(spki.length - 32);
}

// --- time -----------------------------------------------------------------------------------

// Milliseconds of a timeStamp in the one form the format allows, or null.
function parseTimeStamp(text) {
  if (typeof text !== "string") return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/.test(text)) return null;
  const ms = Date.parse(text);
  // The round trip refuses dates that do not exist, such as February 30th.
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== text) return null;
  return ms;
}

function isoSeconds(date) {
  return date.toISOString().replace(".000Z", "Z");
}

// --- verification ---------------------------------------------------------------------------

const ok = (detail) => ({ state: "ok", detail });
const failed = (detail) => ({ state: "failed", detail });
const notChecked = (detail) => ({ state: "not-checked", detail });

// Accepts the API's {"pulse": {...}} envelope too, though the pulse itself is expected.
function unwrap(p) {
  if (p && typeof p === "object" && !("uri" in p) && p.pulse && typeof p.pulse === "object") {
    return p.pulse;
  }
  return p;
}

function keyName(cert) {
  return cert.keyAlgorithm === "RSA" ? `RSA-${cert.rsaBits}` : cert.keyAlgorithm;
}

async function checkCertificateId(c) {
  if (c.certificateGiven === false) {
    return notChecked("no certificate was given, so the signature cannot be checked either");
  }
  if (c.certError) return failed(`the certificate cannot be read: ${c.certError}`);
  let named;
  try {
    named = decodeHash(c.pulse.certificateId, "certificateId");
  } catch (e) {
    return failed(`the pulse's ${e.message}`);
  }
  const actual = await sha512(c.cert.der);
  if (!equalBytes(actual, named)) {
    return failed(`SHA-512 of the certificate is ${short(actual, true)} but the pulse names ${short(named, true)}`);
  }
  const test = c.cert.test ? " (a test certificate: TEST ONLY - NOT FOR SECURITY USE)" : "";
  return ok(`SHA-512 of the certificate is ${short(actual, true)}, as the pulse names${test}`);
}

function checkCertificateValidity(c) {
  const reason = certificateUnusable(c);
  if (reason) return notChecked(reason);
  if (c.time === null) return notChecked("the pulse's timeStamp cannot be read");
  const { notBefore, notAfter } = c.cert;
  const range = `${isoSeconds(notBefore)} to ${isoSeconds(notAfter)}`;
  if (c.time < notBefore.getTime()) {
    return failed(`${c.pulse.timeStamp} is before the certificate's validity (${range})`);
  }
  if (c.time > notAfter.getTime()) {
    return failed(`${c.pulse.timeStamp} is after the certificate's validity (${range})`);
  }
  return ok(`${c.pulse.timeStamp} is within the certificate's validity (${range})`);
}

// Why the given certificate cannot stand for the pulse's signer, or null when it can.
function certificateUnusable(c) {
  if (c.certificateGiven === false) return "no certificate was given";
  if (c.certError) return "the certificate cannot be read";
  const id = c.results.certificateId;
  if (id.state === "failed") return "the certificate given is not the one the pulse names";
  if (id.state !== "ok") return "the certificate could not be matched to the pulse (certificateId not checked)";
  return null;
}

async function checkSignature(c) {
  const suite = c.pulse.cipherSuite;
  if (suite === 1) {
    return notChecked(
      "cipherSuite 1 (RSA-PSS with a Sloth slow hash, CLCERT) needs SHA3-512, which WebCrypto lacks: " +
        "run lavabeacon verify",
    );
  }
  if (suite !== 0 && suite !== 2) {
    return failed(`cipherSuite ${JSON.stringify(suite)} is not one of 0 (RSA), 1 (CLCERT) or 2 (Ed25519)`);
  }
  if (c.messageError) return failed(`the pulse cannot be read: ${c.messageError}`);
  if (c.signatureError) return failed(`signatureValue ${c.signatureError}`);
  const reason = certificateUnusable(c);
  if (reason) return notChecked(reason);

  const cert = c.cert;
  const wanted = suite === 0 ? "RSA" : "Ed25519";
  if (cert.keyAlgorithm !== wanted) {
    return failed(`cipherSuite ${suite} needs an ${wanted} key but the certificate's key is ${keyName(cert)}`);
  }
  let algorithm;
  let scheme;
  if (suite === 0) {
    if (cert.rsaBits < RSA_MIN_BITS || cert.rsaBits > RSA_MAX_BITS) {
      return failed(`the certificate's key is RSA-${cert.rsaBits}; cipherSuite 0 needs 2048 to 4096 bits`);
    }
    algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" };
    scheme = "RSASSA-PKCS1-v1_5 SHA-512 signature";
  } else {
    if (c.signature.length !== 64) {
      return failed(`an Ed25519 signature is 64 bytes; signatureValue is ${c.signature.length}`);
    }
    if (isSmallOrderEd25519(ed25519KeyBytes(cert.spki))) {
      return failed("the certificate's Ed25519 key is of small order, which proves nothing about the signer");
    }
    algorithm = { name: "Ed25519" };
    scheme = "Ed25519 signature";
  }

  let valid;
  try {
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (!subtle) throw new Error(NO_WEBCRYPTO);
    const key = await subtle.importKey("spki", cert.spki, algorithm, false, ["verify"]);
    valid = await subtle.verify(algorithm, key, c.signature, c.message);
  } catch (e) {
    // A browser without Ed25519, for one: that is no evidence either way.
    return notChecked(`this browser could not check an ${scheme}: ${e && e.message ? e.message : e}`);
  }
  return valid
    ? ok(`${scheme} verifies against the certificate's ${keyName(cert)} key`)
    : failed(`signature does not verify against the certificate's ${keyName(cert)} key`);
}

async function checkOutputValue(c) {
  if (c.pulse.cipherSuite === 1) {
    return notChecked("cipherSuite 1 (CLCERT) derives outputValue by SHA3-512 and Sloth, which WebCrypto lacks");
  }
  if (c.messageError) return failed(`the pulse cannot be read: ${c.messageError}`);
  if (c.signatureError) return failed(`signatureValue ${c.signatureError}`);
  let stated;
  try {
    stated = decodeHash(c.pulse.outputValue, "outputValue");
  } catch (e) {
    return failed(e.message);
  }
  const computed = await sha512(concat([c.message, c.signature]));
  if (equalBytes(computed, stated)) return ok(`SHA-512(M ‖ signature) is ${short(computed)}, as outputValue says`);
  let hint = "";
  // INMETRO hashes the signature with its length (§8): say so rather than leave it a mystery.
  const inmetro = await sha512(concat([c.message, u32(c.signature.length), c.signature]));
  if (equalBytes(inmetro, stated)) {
    hint = "; it is SHA-512(M ‖ u32(length) ‖ signature), INMETRO's rule, which lavabeacon verify checks";
  }
  return failed(`SHA-512(M ‖ signature) is ${short(computed)} but outputValue is ${short(stated)}${hint}`);
}

function isAllZero(bytes) {
  return bytes.every((b) => b === 0);
}

function checkPrevious(c) {
  const p = c.pulse;
  if (c.first) {
    if (p.pulseIndex !== 1) {
      return failed(`statusCode 1 marks a chain's first pulse, but pulseIndex is ${p.pulseIndex}, not 1`);
    }
    if (p.statusCode !== 1) {
      return failed(`pulseIndex 1 is a chain's first pulse, but statusCode is ${p.statusCode}, not 1`);
    }
    if (!Array.isArray(p.listValues)) return failed("listValues is missing or not a list");
    for (const [i, entry] of p.listValues.entries()) {
      const name = (entry && entry.type) || `listValues[${i}]`;
      let value;
      try {
        value = decodeHash(entry && entry.value, `listValues[${i}].value`);
      } catch (e) {
        return failed(e.message);
      }
      if (!isAllZero(value)) return failed(`first pulse of chain ${p.chainIndex}, but its ${name} value is not zero`);
      if (entry.uri != null) return failed(`first pulse of chain ${p.chainIndex}, but its ${name} entry has a uri`);
    }
    return ok(`first pulse of chain ${p.chainIndex}: nothing before it`);
  }
  if (!c.previous) {
    return notChecked(`the previous pulse (chain ${p.chainIndex}, pulse ${p.pulseIndex - 1}) was not given`);
  }

  const prev = c.previous;
  const problems = [];
  if (prev.chainIndex !== p.chainIndex) {
    problems.push(`the previous pulse is of chain ${prev.chainIndex}, this one of chain ${p.chainIndex}`);
  }
  if (prev.pulseIndex + 1 !== p.pulseIndex) {
    problems.push(`pulseIndex is ${p.pulseIndex} but the previous pulse's is ${prev.pulseIndex}`);
  }
  const entries = Array.isArray(p.listValues) ? p.listValues : [];
  const link = entries.find((e) => e && e.type === "previous");
  let named = null;
  let output = null;
  if (!link) {
    problems.push("listValues has no entry of type previous");
  } else {
    try {
      named = decodeHash(link.value, "the previous value");
      output = decodeHash(prev.outputValue, "the previous pulse's outputValue");
      if (!equalBytes(named, output)) {
        problems.push(`the previous value is ${short(named)} but the previous pulse's outputValue is ${short(output)}`);
      }
    } catch (e) {
      problems.push(e.message);
    }
  }
  if (problems.length) return failed(problems.join("; "));
  return ok(`follows pulse ${prev.pulseIndex} of chain ${prev.chainIndex} and names its outputValue ${short(output)}`);
}

async function checkPrecommitment(c) {
  const p = c.pulse;
  if (p.cipherSuite === 1) return notChecked("cipherSuite 1 (CLCERT) commits by SHA3-512, which WebCrypto lacks");
  if (c.first) return notChecked(`first pulse of chain ${p.chainIndex}: nothing committed to it`);
  if (p.statusCode === 3) {
    return notChecked("statusCode 3: the pulse states that the previous pulse's precommitment could not be honoured");
  }
  if (!c.previous) return notChecked("the previous pulse was not given");
  if (!c.consecutive) return notChecked("the pulse given as previous is not the one before this pulse");
  let value;
  let committed;
  try {
    value = decodeHash(p.localRandomValue, "localRandomValue");
    committed = decodeHash(c.previous.precommitmentValue, "the previous pulse's precommitmentValue");
  } catch (e) {
    return failed(e.message);
  }
  const hash = await sha512(value);
  if (!equalBytes(hash, committed)) {
    return failed(`SHA-512 of localRandomValue is ${short(hash)} but the previous pulse committed to ${short(committed)}`);
  }
  return ok(`SHA-512 of localRandomValue is ${short(hash)}, as the previous pulse committed to`);
}

function checkTimeStamp(c) {
  const p = c.pulse;
  const problems = [];
  const notes = [];
  if (c.time === null) {
    problems.push(`timeStamp ${JSON.stringify(p.timeStamp)} is not a UTC time of the form YYYY-MM-DDTHH:MM:SS.000Z`);
  }
  const periodOk = Number.isSafeInteger(p.period) && p.period > 0;
  if (!periodOk) problems.push(`period ${JSON.stringify(p.period)} is not a positive number of milliseconds`);
  if (c.time !== null && periodOk) {
    if (c.time % p.period !== 0) problems.push(`timeStamp is not a multiple of the period (${p.period} ms)`);
    else notes.push(`a multiple of the ${p.period} ms period`);
  }
  // CLCERT's status codes (101–103) do not state gaps the NIST way (§8).
  const clcert = p.cipherSuite === 1;
  if (!clcert && ![0, 1, 2, 3].includes(p.statusCode)) {
    problems.push(`statusCode ${JSON.stringify(p.statusCode)} is not one of 0, 1, 2, 3`);
  }

  if (c.first) {
    notes.push("the first pulse of its chain, so no gap to check");
  } else if (!c.previous) {
    notes.push("the gap to the previous pulse was not checked (it was not given)");
  } else if (!c.consecutive) {
    notes.push("the gap was not checked (the pulse given as previous is not the one before it)");
  } else if (clcert) {
    notes.push("the gap was not checked (CLCERT's status codes do not state gaps)");
  } else {
    const before = parseTimeStamp(c.previous.timeStamp);
    if (before === null) {
      problems.push("the previous pulse's timeStamp cannot be read");
    } else if (c.time !== null && periodOk) {
      const gap = c.time - before;
      if (p.statusCode === 0) {
        if (gap === p.period) notes.push("one period after the previous pulse");
        else problems.push(`statusCode 0 means one period (${p.period} ms) after the previous pulse, but it is ${gap} ms after`);
      } else if (p.statusCode === 2 || p.statusCode === 3) {
        if (gap > p.period) notes.push(`${gap} ms after the previous pulse, a gap as statusCode ${p.statusCode} says`);
        else problems.push(`statusCode ${p.statusCode} means more than one period (${p.period} ms) after the previous pulse, but it is ${gap} ms after`);
      }
    }
  }
  if (problems.length) return failed(problems.join("; "));
  return ok(`${p.timeStamp}: ${notes.join("; ")}`);
}

async function checkManifest(c) {
  if (c.manifest == null) return notChecked("this pulse has no published source manifest");
  const p = c.pulse;
  let manifest = c.manifest;
  let value;
  try {
    if (typeof manifest === "string") manifest = JSON.parse(manifest);
    value = await recombine(manifest);
  } catch (e) {
    if (e.message === NO_WEBCRYPTO) throw e; // not the manifest's fault: not checked
    return failed(`the source manifest cannot be recombined: ${e.message}`);
  }
  const problems = [];
  if (manifest.chainIndex !== p.chainIndex || manifest.pulseIndex !== p.pulseIndex) {
    problems.push(
      `the manifest is of chain ${manifest.chainIndex} pulse ${manifest.pulseIndex}, ` +
        `not chain ${p.chainIndex} pulse ${p.pulseIndex}`,
    );
  }
  try {
    const local = decodeHash(p.localRandomValue, "localRandomValue");
    if (!equalBytes(value, local)) {
      problems.push(`the manifest's sources recombine to ${short(value)} but localRandomValue is ${short(local)}`);
    }
  } catch (e) {
    problems.push(e.message);
  }
  if (problems.length) return failed(problems.join("; "));
  const names = manifest.sources.filter((s) => s.digest != null).map((s) => s.name);
  return ok(`the ${names.length} contributing sources (${names.join(", ")}) recombine to localRandomValue`);
}

// In the order they are reported; the last four are never computed here, and say why.
const CHECKS = [
  ["certificateId", "Certificate is the one the pulse names", checkCertificateId],
  ["certificateValidity", "Certificate valid at the pulse's time", checkCertificateValidity],
  ["signature", "Signature", checkSignature],
  ["outputValue", "Output value", checkOutputValue],
  ["previous", "Link to the previous pulse", checkPrevious],
  ["precommitment", "Previous pulse's precommitment honoured", checkPrecommitment],
  ["timeStamp", "Time stamp", checkTimeStamp],
  ["manifest", "Source manifest recombines", checkManifest],
  [
    "skipList",
    "Hour, day, month and year links",
    () =>
      notChecked(
        "the hour, day, month and year values need the first pulse of each period; " +
          "lavabeacon verify --chain checks them",
      ),
  ],
  [
    "issuer",
    "Certificate issuer",
    () =>
      notChecked(
        "a browser has no list of beacon certificate authorities: compare the certificateId with " +
          "the one the operator publishes, or run lavabeacon verify --ca",
      ),
  ],
  [
    "external",
    "External value",
    () => notChecked("the external value is another beacon's output; check it against that beacon"),
  ],
  [
    "sources",
    "Entropy sources really sampled",
    () =>
      notChecked(
        "that the sources were really sampled cannot be checked from outside; the precommitment " +
          "shows the value was fixed a period before it was published",
      ),
  ],
];

/**
 * Verifies one pulse. `pulse` is the pulse object; `certificate` the PEM text of the certificate
 * it names (or null); `previous` the pulse before it in the same chain (or null); `manifest` its
 * source manifest (or null).
 *
 * Returns { state, checks, certificate }: state is "failed" when any check failed, "ok" when
 * none failed and certificateId, signature and outputValue all held, and "unverified" when none
 * failed but one of those three could not be made. checks lists every check, always in the same
 * order, as { id, label, state: "ok" | "failed" | "not-checked", detail }. certificate is the
 * parsed certificate, or null.
 */
export async function verify({ pulse, certificate = null, previous = null, manifest = null } = {}) {
  const p = unwrap(pulse);
  if (!p || typeof p !== "object") throw new TypeError("verify: pulse must be a pulse object");

  const c = {
    pulse: p,
    previous: previous == null ? null : unwrap(previous),
    manifest,
    certificateGiven: certificate != null,
    results: {},
  };
  try {
    c.message = signedMessage(p);
  } catch (e) {
    c.messageError = e.message;
  }
  try {
    c.signature = hexToBytes(p.signatureValue);
    if (c.signature.length === 0) c.signatureError = "is empty";
  } catch (e) {
    c.signatureError = `is not hex (${e.message})`;
  }
  if (certificate != null) {
    try {
      c.cert = parseCertificate(certificate);
    } catch (e) {
      c.certError = e.message;
    }
  }
  c.time = parseTimeStamp(p.timeStamp);
  // §5: index 1 and statusCode 1 go together; either one claims the chain starts here.
  c.first = p.pulseIndex === 1 || p.statusCode === 1;
  c.consecutive =
    !!c.previous &&
    typeof c.previous === "object" &&
    c.previous.chainIndex === p.chainIndex &&
    c.previous.pulseIndex + 1 === p.pulseIndex;

  const checks = [];
  for (const [id, label, run] of CHECKS) {
    let result;
    try {
      result = await run(c);
    } catch (e) {
      // Something this code did not foresee (or no WebCrypto): no evidence either way.
      result = notChecked(`could not be checked: ${e && e.message ? e.message : e}`);
    }
    c.results[id] = result;
    checks.push({ id, label, state: result.state, detail: result.detail });
  }

  let state;
  if (checks.some((k) => k.state === "failed")) state = "failed";
  else if (ESSENTIAL.every((id) => c.results[id].state === "ok")) state = "ok";
  else state = "unverified";
  return { state, checks, certificate: c.cert || null };
}

/**
 * Whether `signatureHex` is `cert`'s signature over `message` under cipher suite `suite`
 * (0: RSASSA-PKCS1-v1_5 with SHA-512, 2: Ed25519), as pulses are signed: for the registry's
 * draw receipts, whose message is domain-separated from any pulse's. Returns { state, detail }
 * with state "ok", "failed" or "not-checked" (no WebCrypto, or the algorithm missing).
 */
export async function verifySignatureOver(suite, cert, message, signatureHex) {
  let signature;
  try {
    signature = hexToBytes(signatureHex);
  } catch (e) {
    return { state: "failed", detail: `the signature is not hex: ${e.message}` };
  }
  const wanted = suite === 0 ? "RSA" : suite === 2 ? "Ed25519" : null;
  if (!wanted) return { state: "failed", detail: `cipherSuite ${suite} is not 0 or 2` };
  if (cert.keyAlgorithm !== wanted) {
    return { state: "failed", detail: `cipherSuite ${suite} needs an ${wanted} key, the certificate's is ${keyName(cert)}` };
  }
  if (wanted === "Ed25519" && isSmallOrderEd25519(ed25519KeyBytes(cert.spki))) {
    return { state: "failed", detail: "the certificate's Ed25519 key is of small order" };
  }
  const algorithm = wanted === "RSA" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" } : { name: "Ed25519" };
  try {
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (!subtle) throw new Error(NO_WEBCRYPTO);
    const key = await subtle.importKey("spki", cert.spki, algorithm, false, ["verify"]);
    return (await subtle.verify(algorithm, key, signature, message))
      ? { state: "ok", detail: `verifies against the certificate's ${keyName(cert)} key` }
      : { state: "failed", detail: `does not verify against the certificate's ${keyName(cert)} key` };
  } catch (e) {
    return { state: "not-checked", detail: `this browser could not check it: ${e && e.message ? e.message : e}` };
  }
}
