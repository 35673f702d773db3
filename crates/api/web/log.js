// Checks that a pulse is in the beacon's transparency log, with WebCrypto alone, in a browser or
// in Node 20 and later.
//
// The formats are C2SP's: a checkpoint (tlog-checkpoint) in a signed note (signed-note), signed
// by the log's Ed25519 key and cosigned by witnesses (tlog-cosignature), over an RFC 6962 tree
// of SHA-256 hashes whose entries are the pulses' 64-byte outputValues. The inclusion proof is
// checked as RFC 9162 §2.1.3.2 says. The log key and the witness keys come from the beacon
// itself: the page can show that the pulse is in the tree those keys signed, not that the keys
// are the right ones; that takes keys learnt elsewhere (docs/explorer.md).
//
// A plain ES module with no dependencies and no build step.

// Why WebCrypto may be missing: browsers offer crypto.subtle only to secure pages.
const NO_WEBCRYPTO =
  "WebCrypto is not available here (a browser offers it only on https:// or localhost pages)";

const LABEL = "Included in the transparency log";

// signed-note key types: the first byte of a verifier key, hashed into its key id.
const KEY_ED25519 = 0x01; // a note signature (the log's)
const KEY_COSIGNATURE = 0x04; // a cosignature/v1 (a witness's)

// A pulse's entry is its outputValue, a SHA-512 value.
const ENTRY_BYTES = 64;
const HASH_BYTES = 32;

// Answers to inclusion requests kept, so that walking back to a pulse asks nothing again.
const KEPT_ANSWERS = 64;

import { concat, equalBytes } from "./verify.js";

const utf8 = new TextEncoder();

// --- bytes ----------------------------------------------------------------------------------

function hex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

// The start of a hash, enough for a person to tell two apart in a message.
function short(bytes) {
  return hex(bytes.subarray(0, 8)) + "…";
}

function hexToBytes(text, what) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new Error(`${what} is not hex`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Standard base64 with padding, as C2SP's formats write it. */
export function toBase64(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * The bytes of standard base64 with padding; throws naming `what` for anything else. Only the
 * one canonical spelling is read (unused bits zero), so a note cannot be changed by respelling.
 */
export function fromBase64(text, what = "the value") {
  const form = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  if (typeof text !== "string" || !form.test(text)) throw new Error(`${what} is not standard base64`);
  const out = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (toBase64(out) !== text) throw new Error(`${what} is not canonical base64`);
  return out;
}

function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw new Error(NO_WEBCRYPTO);
  return s;
}

async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

// --- the tree (RFC 6962, RFC 9162 §2.1) -----------------------------------------------------

/** A leaf's hash: SHA-256(0x00 ‖ entry). */
export async function leafHash(entry) {
  return sha256(concat([Uint8Array.of(0), entry]));
}

/** An interior node's hash: SHA-256(0x01 ‖ left ‖ right). */
export async function nodeHash(left, right) {
  return sha256(concat([Uint8Array.of(1), left, right]));
}

/**
 * The root an inclusion proof leads to from the leaf hash at `leafIndex` in a tree of
 * `treeSize` leaves: RFC 9162 §2.1.3.2, step by step. Throws when the index, the size and the
 * number of hashes cannot make a proof. BigInt throughout: JavaScript's bit operators cut
 * numbers to 32 bits, and a log may outgrow that.
 */
export async function rootFromInclusionProof(leafIndex, treeSize, leaf, proof) {
  const index = BigInt(leafIndex);
  const size = BigInt(treeSize);
  // 1. An index beyond the tree has no proof.
  if (index < 0n || index >= size) throw new Error(`entry ${index} is not in a tree of ${size}`);
  // 2, 3.
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  // 4.
  for (const p of proof) {
    // a. More hashes than the path has.
    if (sn === 0n) throw new Error(`the proof has more hashes than entry ${index} of ${size} needs`);
    // b.
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      // ii. A right edge of an incomplete tree: climb past the levels it has no sibling on.
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    // c.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. Fewer hashes than the path has: the proof stops below the root.
  if (sn !== 0n) throw new Error(`the proof has too few hashes for entry ${index} of ${size}`);
  return r;
}

// --- signed notes (C2SP signed-note) --------------------------------------------------------

// A key name: non-empty, no white space, no "+" (which separates a verifier key's fields).
function validName(name) {
  return typeof name === "string" && name.length > 0 && !/[\s+]/u.test(name);
}

async function keyId(name, type, key) {
  const digest = await sha256(concat([utf8.encode(name + "\n"), Uint8Array.of(type), key]));
  return digest.subarray(0, 4);
}

/**
 * A verifier key `<name>+<8 hex key id>+<base64(type ‖ 32-byte Ed25519 key)>` of the given
 * type (0x01 a note signer, 0x04 a cosigner), its key id checked against its name and key.
 * Returns { name, keyId, key }; throws saying what is wrong.
 */
export async function parseVerifierKey(text, type = KEY_ED25519) {
  if (typeof text !== "string") throw new Error("the key is not text");
  // Split at the first two "+" only: base64 has "+" of its own.
  const m = text.trim().match(/^([^+]*)\+([^+]*)\+(.*)$/s);
  if (!m) throw new Error("the key is not of the form name+keyid+key");
  const [, name, idHex, keyText] = m;
  if (!validName(name)) throw new Error("the key's name is empty or has white space");
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new Error("the key id is not 8 hex digits");
  const bytes = fromBase64(keyText, "the key");
  if (bytes.length !== 33) throw new Error(`the key is ${bytes.length} bytes, not 33 (a type byte and an Ed25519 key)`);
  if (bytes[0] !== type) {
    throw new Error(`the key is of type 0x${hex(bytes.subarray(0, 1))}, not 0x${hex([type])}`);
  }
  const key = bytes.subarray(1);
  const id = await keyId(name, type, key);
  if (hex(id) !== idHex.toLowerCase()) throw new Error(`the key id is ${idHex} but the name and key make ${hex(id)}`);
  return { name, keyId: id, key };
}

/**
 * A signed note's parts: { body, signatures: [{ name, keyId, signature }] }. body is the text
 * the signatures cover (up to and including the last newline before the blank line), split as
 * Go's note package splits it, at the last blank line. Throws on anything malformed.
 */
export function parseNote(text) {
  if (typeof text !== "string") throw new Error("the checkpoint is not text");
  // signed-note: UTF-8 text with no control characters but newlines.
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) throw new Error("the checkpoint has control characters");
  if (!text.endsWith("\n")) throw new Error("the checkpoint does not end with a newline");
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw new Error("the checkpoint has no blank line before its signatures");
  const body = text.slice(0, split + 1);
  if (split + 2 === text.length) throw new Error("the checkpoint has no signatures");
  const signatures = [];
  for (const line of text.slice(split + 2, -1).split("\n")) {
    const m = line.match(/^\u2014 (\S+) (\S+)$/u);
    if (!m || !validName(m[1])) throw new Error(`a signature line is malformed: ${JSON.stringify(line)}`);
    const bytes = fromBase64(m[2], `the signature of ${m[1]}`);
    if (bytes.length < 5) throw new Error(`the signature of ${m[1]} is too short`);
    signatures.push({ name: m[1], keyId: bytes.subarray(0, 4), signature: bytes.subarray(4) });
  }
  return { body, signatures };
}

/**
 * A checkpoint's body (C2SP tlog-checkpoint): { origin, treeSize (a BigInt), rootHash,
 * extensions }. Throws on anything malformed.
 */
export function parseCheckpoint(body) {
  const lines = body.split("\n");
  lines.pop(); // the body ends with a newline
  if (lines.length < 3) throw new Error("the checkpoint has fewer than three lines");
  if (lines.some((l) => l === "")) throw new Error("the checkpoint has an empty line");
  const [origin, size, root, ...extensions] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error(`the checkpoint's tree size ${JSON.stringify(size)} is not a decimal number`);
  const rootHash = fromBase64(root, "the checkpoint's root hash");
  if (rootHash.length !== HASH_BYTES) throw new Error(`the checkpoint's root hash is ${rootHash.length} bytes, not 32`);
  return { origin, treeSize: BigInt(size), rootHash, extensions };
}

// Ed25519 by WebCrypto: true or false, or throws when this WebCrypto cannot check it at all.
async function ed25519Verify(key, signature, message) {
  const s = subtle();
  const k = await s.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
  return s.verify({ name: "Ed25519" }, k, signature, message);
}

// Thrown (and reported as not checked) when the browser cannot check an Ed25519 signature.
class CannotCheck extends Error {}

async function verifies(key, signature, message) {
  try {
    return await ed25519Verify(key, signature, message);
  } catch (e) {
    // A browser without Ed25519, for one: that is no evidence either way.
    throw new CannotCheck(`this browser could not check an Ed25519 signature: ${e && e.message ? e.message : e}`);
  }
}

// --- the check ------------------------------------------------------------------------------

const ok = (detail) => ({ state: "ok", detail });
const failed = (detail) => ({ state: "failed", detail });
const notChecked = (detail) => ({ state: "not-checked", detail });

// The beacon's witnesses from the answer of /log/witnesses ({ witnesses: [{ name, vkey, url }],
// required }), each read into { name, keyId, key }. Throws on an unreadable list.
async function readWitnesses(answer) {
  if (!answer || typeof answer !== "object" || !Array.isArray(answer.witnesses)) {
    throw new Error("it has no list of witnesses");
  }
  const required = answer.required ?? 0;
  if (!Number.isSafeInteger(required) || required < 0) throw new Error("required is not a whole number");
  const witnesses = [];
  for (const w of answer.witnesses) {
    let key;
    try {
      key = await parseVerifierKey(w && w.vkey, KEY_COSIGNATURE);
    } catch (e) {
      throw new Error(`witness ${w && w.name}: ${e.message}`);
    }
    if (w.name !== undefined && w.name !== key.name) {
      throw new Error(`witness ${w.name} has a key named ${key.name}`);
    }
    witnesses.push(key);
  }
  return { witnesses, required };
}

/**
 * Checks that `outputValue` (hex, a pulse's) is in the log: `inclusion` is the answer of
 * /beacon/2.0/chain/{c}/pulse/{p}/inclusion, `logKey` the verifier key /log/key serves,
 * `witnesses` the answer of /log/witnesses (or null with `witnessesError` saying why there is
 * none). Returns { state: "ok" | "failed" | "not-checked", detail, log }, log being what was
 * read ({ leafIndex, treeSize, origin, rootHash, keyName, keyId, checkpoint, cosigners,
 * witnesses, witnessesError }), or null when nothing could be.
 */
export async function verifyLogInclusion({ outputValue, inclusion, logKey, witnesses = null, witnessesError = null }) {
  try {
    return await checkInclusion({ outputValue, inclusion, logKey, witnesses, witnessesError });
  } catch (e) {
    if (e instanceof CannotCheck) return { ...notChecked(e.message), log: null };
    // Something this code did not foresee (or no WebCrypto): no evidence either way.
    return { ...notChecked(`could not be checked: ${e && e.message ? e.message : e}`), log: null };
  }
}

async function checkInclusion({ outputValue, inclusion, logKey, witnesses, witnessesError }) {
  const fail = (detail, log = null) => ({ ...failed(detail), log });
  let entry;
  try {
    entry = hexToBytes(outputValue, "outputValue");
  } catch (e) {
    return fail(e.message);
  }
  if (entry.length !== ENTRY_BYTES) return fail(`outputValue is ${entry.length} bytes, not ${ENTRY_BYTES}`);

  let key;
  try {
    key = await parseVerifierKey(logKey, KEY_ED25519);
  } catch (e) {
    return fail(`the log's key (/log/key) cannot be read: ${e.message}`);
  }

  if (!inclusion || typeof inclusion !== "object") return fail("the inclusion answer is not an object");
  const { leafIndex, treeSize, inclusionProof, checkpoint } = inclusion;
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0) return fail("leafIndex is not a whole number");
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) return fail("treeSize is not a whole number");
  if (!Array.isArray(inclusionProof)) return fail("inclusionProof is not a list");
  const proof = [];
  for (const [i, h] of inclusionProof.entries()) {
    let bytes;
    try {
      bytes = fromBase64(h, `inclusionProof[${i}]`);
    } catch (e) {
      return fail(e.message);
    }
    if (bytes.length !== HASH_BYTES) return fail(`inclusionProof[${i}] is ${bytes.length} bytes, not 32`);
    proof.push(bytes);
  }

  let note;
  let cp;
  try {
    note = parseNote(checkpoint);
    cp = parseCheckpoint(note.body);
  } catch (e) {
    return fail(`the checkpoint cannot be read: ${e.message}`);
  }
  const log = {
    leafIndex,
    treeSize,
    origin: cp.origin,
    rootHash: toBase64(cp.rootHash),
    keyName: key.name,
    keyId: hex(key.keyId),
    checkpoint,
    cosigners: [], // the witnesses whose cosignature verified
    witnesses: [], // the witnesses the beacon names
    witnessesError: null, // why they are not known
  };
  const where = `entry ${leafIndex} of ${treeSize}`;

  if (cp.treeSize !== BigInt(treeSize)) {
    return fail(`the checkpoint is of a tree of ${cp.treeSize} entries but the answer says treeSize ${treeSize}`, log);
  }
  // C2SP: the log's key is named by its origin, so a checkpoint of another log cannot pass
  // for this one's even when the same key signs both.
  if (cp.origin !== key.name) {
    return fail(`the checkpoint's origin is ${cp.origin} but the log's key is named ${key.name}`, log);
  }

  // The log's own signature: its name and key id. Other lines are other signers' (witnesses,
  // or ones this page does not know), which signed-note lets a verifier ignore.
  const body = utf8.encode(note.body);
  const own = note.signatures.filter((s) => s.name === key.name && equalBytes(s.keyId, key.keyId));
  if (!own.length) return fail(`the checkpoint has no signature by the log's key ${key.name} (${hex(key.keyId)})`, log);
  for (const s of own) {
    if (s.signature.length !== 64 || !(await verifies(key.key, s.signature, body))) {
      return fail(`the checkpoint's signature does not verify against the log's key ${key.name}`, log);
    }
  }

  let root;
  try {
    root = await rootFromInclusionProof(leafIndex, treeSize, await leafHash(entry), proof);
  } catch (e) {
    return fail(`the inclusion proof does not fit: ${e.message}`, log);
  }
  if (!equalBytes(root, cp.rootHash)) {
    return fail(`the inclusion proof of ${where} leads to root ${short(root)}, but the checkpoint's root is ${short(cp.rootHash)}`, log);
  }

  // Witnesses: each cosignature by a key the beacon names, counted once per witness.
  const done = `${where}, log key ${key.name}`;
  if (witnesses === null) {
    log.witnessesError = witnessesError ?? "no list of witnesses";
    return { ...ok(`${done}; cosignatures not checked (${log.witnessesError})`), log };
  }
  let list;
  try {
    list = await readWitnesses(witnesses);
  } catch (e) {
    return fail(`${done}, but the beacon's list of witnesses (/log/witnesses) cannot be read: ${e.message}`, log);
  }
  log.witnesses = list.witnesses.map((w) => w.name);
  if (!list.witnesses.length) return { ...ok(`${done}, no witnesses configured`), log };

  for (const w of list.witnesses) {
    const lines = note.signatures.filter((s) => s.name === w.name && equalBytes(s.keyId, w.keyId));
    if (!lines.length) continue;
    for (const s of lines) {
      // cosignature/v1: an 8-byte time, then the signature over the time and the body.
      if (s.signature.length !== 8 + 64) return fail(`the cosignature of witness ${w.name} is not 76 bytes`, log);
      const time = new DataView(s.signature.buffer, s.signature.byteOffset).getBigUint64(0);
      const message = concat([utf8.encode(`cosignature/v1\ntime ${time}\n`), body]);
      if (!(await verifies(w.key, s.signature.subarray(8), message))) {
        return fail(`the cosignature of witness ${w.name} does not verify against the key the beacon names for it`, log);
      }
    }
    log.cosigners.push(w.name);
  }
  const n = log.cosigners.length;
  const names = n ? ` (${log.cosigners.join(", ")})` : "";
  const cosigned = `cosigned by ${n} of ${list.witnesses.length} witnesses the beacon names${names}`;
  if (list.required > list.witnesses.length) {
    return fail(`${done}, ${cosigned}, but the beacon requires ${list.required}, more witnesses than it names`, log);
  }
  if (n < list.required) {
    // Not yet is not wrong: witnesses cosign a checkpoint a moment after the log signs it, and
    // the newest checkpoint is the one served. Nothing failed; the cosignatures are not there.
    return { ...notChecked(`${done}, ${cosigned}, but the beacon requires ${list.required} (not yet cosigned: look again in a moment)`), log };
  }
  return { ...ok(`${done}, ${cosigned}`), log };
}

// --- asking the beacon ----------------------------------------------------------------------

// Why a fetch failed, for a detail: the API's own message when it gives one.
async function why(r) {
  try {
    return (await r.json()).error?.message ?? `HTTP ${r.status}`;
  } catch {
    return `HTTP ${r.status}`;
  }
}

/**
 * The check of a pulse's log inclusion, as the explorer makes it: returns a function of a pulse
 * that resolves to { id: "logInclusion", label, state, detail, log }. /log/key and
 * /log/witnesses are asked once (by this function's lifetime: the page's), and only while the
 * log key answered 200 is a pulse's inclusion asked, once per pulse: a beacon without a log gets
 * no request that answers 404 on every pulse.
 */
export function logChecker(get = (path, init) => globalThis.fetch(path, init)) {
  let key = null; // Promise of { key } | { off } | { error }
  let witnesses = null; // Promise of { answer } | { error }
  const answers = new Map(); // "chain-pulse" -> an inclusion answer (200 only)

  const logKey = () =>
    (key ??= get("/log/key", { headers: { Accept: "text/plain" } }).then(async (r) => {
      // 204 or 404: this beacon keeps no log (said so, never failed).
      if (r.status === 204 || r.status === 404) return { off: `this beacon keeps no transparency log (/log/key: HTTP ${r.status})` };
      if (!r.ok) return { error: `/log/key: ${await why(r)}` };
      return { key: await r.text() };
    }, (e) => ({ error: `/log/key could not be fetched: ${e.message}` })));

  const logWitnesses = () =>
    (witnesses ??= get("/log/witnesses", { headers: { Accept: "application/json" } }).then(async (r) => {
      if (!r.ok) return { error: `/log/witnesses: ${await why(r)}` };
      return { answer: await r.json() };
    }, (e) => ({ error: `/log/witnesses could not be fetched: ${e.message}` })));

  async function inclusionOf(p) {
    const id = `${p.chainIndex}-${p.pulseIndex}`;
    if (answers.has(id)) return { answer: answers.get(id) };
    const path = `/beacon/2.0/chain/${p.chainIndex}/pulse/${p.pulseIndex}/inclusion`;
    let r;
    try {
      r = await get(path, { headers: { Accept: "application/json" } });
    } catch (e) {
      return { error: `the inclusion proof could not be fetched: ${e.message}` };
    }
    if (r.status === 404) return { error: `pulse ${id} is not in the log yet (${await why(r)})` };
    if (!r.ok) return { error: `the inclusion proof could not be fetched: ${await why(r)}` };
    const answer = await r.json();
    answers.set(id, answer);
    if (answers.size > KEPT_ANSWERS) answers.delete(answers.keys().next().value);
    return { answer };
  }

  return async function check(p) {
    const result = (r) => ({ id: "logInclusion", label: LABEL, log: null, ...r });
    try {
      const k = await logKey();
      if (k.off) return result(notChecked(k.off));
      if (k.error) return result(notChecked(k.error));
      const [inc, wit] = await Promise.all([inclusionOf(p), logWitnesses()]);
      if (inc.error) return result(notChecked(inc.error));
      return result(await verifyLogInclusion({
        outputValue: p.outputValue,
        inclusion: inc.answer,
        logKey: k.key,
        witnesses: wit.answer ?? null,
        witnessesError: wit.error ?? null,
      }));
    } catch (e) {
      return result(notChecked(`could not be checked: ${e && e.message ? e.message : e}`));
    }
  };
}
