// Checks the explorer's transparency-log verifier (crates/api/web/log.js) in Node 20 with its
// WebCrypto: trees, checkpoints and cosignatures are made here with node:crypto, by code written
// apart from the module's, and checked against published RFC 6962 vectors. Run from the
// repository root:
//
//     node --test tests/browser/log-vectors.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign } from "node:crypto";

import {
  verifyLogInclusion,
  rootFromInclusionProof,
  leafHash,
  parseVerifierKey,
  parseNote,
  logChecker,
} from "../../crates/api/web/log.js";

// --- an RFC 6962 tree, written apart from the module -----------------------------------------

const sha256 = (...parts) => createHash("sha256").update(Buffer.concat(parts)).digest();
const leafOf = (entry) => sha256(Buffer.of(0), entry);
const nodeOf = (l, r) => sha256(Buffer.of(1), l, r);

// The largest power of two smaller than n (n ≥ 2), where RFC 6962 splits a tree.
function split(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[n]) of leaf hashes (RFC 6962 §2.1).
function mth(leaves) {
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return nodeOf(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// PATH(m, D[n]) (RFC 6962 §2.1.1): the sibling hashes from the leaf up.
function path(m, leaves) {
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const hexOf = (bytes) => Buffer.from(bytes).toString("hex");
const u64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

// --- keys and notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature) --------------------

const ORIGIN = "beacon.example/log";

function signer(name, type) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  const id = sha256(Buffer.from(name + "\n"), Buffer.of(type), pub).subarray(0, 4);
  return { name, id, privateKey, vkey: `${name}+${hexOf(id)}+${b64(Buffer.concat([Buffer.of(type), pub]))}` };
}

const logSigner = (name = ORIGIN) => signer(name, 0x01);
const witness = (name) => signer(name, 0x04);

const checkpointBody = (size, root, origin = ORIGIN) => `${origin}\n${size}\n${b64(root)}\n`;

// The log's signature line over `body`.
function logLine(key, body) {
  const sig = sign(null, Buffer.from(body), key.privateKey);
  return `\u2014 ${key.name} ${b64(Buffer.concat([key.id, sig]))}\n`;
}

// A witness's cosignature/v1 line over `body` at `time` (stating `stated`, to forge one).
function cosignLine(w, body, time = 1_700_000_000, stated = time) {
  const message = Buffer.concat([Buffer.from(`cosignature/v1\ntime ${time}\n`), Buffer.from(body)]);
  const sig = sign(null, message, w.privateKey);
  return `\u2014 ${w.name} ${b64(Buffer.concat([w.id, u64(stated), sig]))}\n`;
}

const note = (body, ...lines) => `${body}\n${lines.join("")}`;

// A pulse's outputValue, as pulses write it (upper-case hex of 64 bytes).
const outputValue = (i) => createHash("sha512").update(`pulse ${i}`).digest("hex").toUpperCase();

// A log of `size` pulses, signed by `key`, cosigned by `cosigners`.
function makeLog(size, key, cosigners = []) {
  const entries = Array.from({ length: size }, (_, i) => outputValue(i));
  const leaves = entries.map((e) => leafOf(Buffer.from(e, "hex")));
  const root = mth(leaves);
  const body = checkpointBody(size, root);
  const checkpoint = note(body, logLine(key, body), ...cosigners.map((w) => cosignLine(w, body)));
  return { entries, leaves, root, body, checkpoint };
}

function inclusion(log, index) {
  return {
    leafIndex: index,
    treeSize: log.entries.length,
    inclusionProof: path(index, log.leaves).map(b64),
    checkpoint: log.checkpoint,
  };
}

const witnessList = (ws, required) => ({
  witnesses: ws.map((w) => ({ name: w.name, vkey: w.vkey, url: `https://${w.name}/` })),
  required,
});

const KEY = logSigner();
const W1 = witness("witness.one.example");
const W2 = witness("witness.two.example");
const STRANGER = witness("witness.stranger.example");

// --- published vectors -----------------------------------------------------------------------

// The Certificate Transparency project's RFC 6962 reference tree: its eight leaves, the root of
// each prefix, and inclusion proofs of it (certificate-transparency's merkle tests, also
// transparency-dev/merkle's).
const CT_ENTRIES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const CT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const CT_INCLUSION = [
  { index: 0, size: 8, proof: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"] },
  { index: 5, size: 8, proof: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"] },
  { index: 2, size: 3, proof: ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"] },
  { index: 1, size: 2, proof: ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"] },
];

const fromHex = (h) => new Uint8Array(Buffer.from(h, "hex"));

test("leaf hashes, roots and published inclusion proofs of the RFC 6962 reference tree", async () => {
  const leaves = [];
  for (const e of CT_ENTRIES) leaves.push(Buffer.from(await leafHash(fromHex(e))));
  assert.equal(hexOf(leaves[0]), CT_ROOTS[0], "a tree of one leaf has its leaf hash as root");
  for (let n = 1; n <= 8; n++) {
    assert.equal(hexOf(mth(leaves.slice(0, n))), CT_ROOTS[n - 1], `this test's MTH of ${n} leaves`);
    for (let i = 0; i < n; i++) {
      const root = await rootFromInclusionProof(i, n, leaves[i], path(i, leaves.slice(0, n)));
      assert.equal(hexOf(root), CT_ROOTS[n - 1], `entry ${i} of ${n}`);
    }
  }
  for (const { index, size, proof } of CT_INCLUSION) {
    const root = await rootFromInclusionProof(index, size, leaves[index], proof.map(fromHex));
    assert.equal(hexOf(root), CT_ROOTS[size - 1], `published proof of entry ${index} of ${size}`);
  }
});

test("the fixed vector: seven leaves SHA-256(0x00 ‖ u64be(i)) and every proof to their root", async () => {
  const leaves = Array.from({ length: 7 }, (_, i) => leafOf(u64(i)));
  const root = mth(leaves);
  // The same root by Python's hashlib and a recursive MTH of its own.
  assert.equal(hexOf(root), "45cea7edca9543ee5575a5774d0d8fa9321a8be084b3fb657fa4f6d071a3c94c");
  for (let i = 0; i < 7; i++) {
    assert.equal(hexOf(await leafHash(u64(i))), hexOf(leaves[i]));
    const got = await rootFromInclusionProof(i, 7, leaves[i], path(i, leaves));
    assert.equal(hexOf(got), hexOf(root), `entry ${i} of 7`);
  }
});

test("every entry of every tree of 1 to 40 pulses verifies, signed and cosigned", async () => {
  const witnesses = witnessList([W1, W2], 2);
  for (let size = 1; size <= 40; size++) {
    const log = makeLog(size, KEY, [W1, W2]);
    for (let i = 0; i < size; i++) {
      const r = await verifyLogInclusion({ outputValue: log.entries[i], inclusion: inclusion(log, i), logKey: KEY.vkey, witnesses });
      assert.equal(r.state, "ok", `entry ${i} of ${size}: ${r.detail}`);
      assert.equal(
        r.detail,
        `entry ${i} of ${size}, log key ${ORIGIN}, cosigned by 2 of 2 witnesses the beacon names (witness.one.example, witness.two.example)`,
      );
    }
  }
});

test("the proof is refused for a changed hash, a wrong index, a wrong size or the wrong entry", async () => {
  const witnesses = witnessList([], 0);
  for (const size of [2, 3, 7, 8, 13, 40]) {
    const log = makeLog(size, KEY);
    for (let i = 0; i < size; i++) {
      const good = inclusion(log, i);
      const run = (inc, value = log.entries[i]) =>
        verifyLogInclusion({ outputValue: value, inclusion: inc, logKey: KEY.vkey, witnesses });
      // Each hash of the proof in turn, one bit changed.
      for (let h = 0; h < good.inclusionProof.length; h++) {
        const proof = [...good.inclusionProof];
        const bytes = Buffer.from(proof[h], "base64");
        bytes[h % 32] ^= 1;
        proof[h] = b64(bytes);
        const r = await run({ ...good, inclusionProof: proof });
        assert.equal(r.state, "failed", `changed hash ${h} of entry ${i} of ${size}`);
        assert.match(r.detail, /leads to root .* but the checkpoint's root is/);
      }
      // The same proof for the entry next to it.
      for (const j of [i - 1, i + 1]) {
        if (j < 0) continue;
        const r = await run({ ...good, leafIndex: j });
        assert.equal(r.state, "failed", `entry ${i} of ${size} claimed at ${j}: ${r.detail}`);
      }
      // Another pulse's outputValue with this proof.
      const other = await run(good, outputValue(size + i));
      assert.equal(other.state, "failed", other.detail);
      // A hash too many or too few.
      const longer = await run({ ...good, inclusionProof: [...good.inclusionProof, b64(Buffer.alloc(32))] });
      assert.equal(longer.state, "failed");
      assert.match(longer.detail, /more hashes than entry/);
      if (good.inclusionProof.length) {
        const shorter = await run({ ...good, inclusionProof: good.inclusionProof.slice(0, -1) });
        assert.equal(shorter.state, "failed");
        assert.match(shorter.detail, /too few hashes/);
      }
    }
    // The answer's treeSize differs from the checkpoint's.
    const wrongSize = await verifyLogInclusion({
      outputValue: log.entries[0],
      inclusion: { ...inclusion(log, 0), treeSize: size + 1 },
      logKey: KEY.vkey,
      witnesses,
    });
    assert.equal(wrongSize.state, "failed");
    assert.match(wrongSize.detail, new RegExp(`a tree of ${size} entries but the answer says treeSize ${size + 1}`));
  }
});

test("a checkpoint for another tree size, correctly signed, does not take a proof of this one", async () => {
  const log = makeLog(13, KEY);
  const body = checkpointBody(14, log.root);
  const checkpoint = note(body, logLine(KEY, body));
  const r = await verifyLogInclusion({
    outputValue: log.entries[12],
    inclusion: { ...inclusion(log, 12), treeSize: 14, checkpoint },
    logKey: KEY.vkey,
    witnesses: witnessList([], 0),
  });
  assert.equal(r.state, "failed", r.detail);
});

test("an index beyond the tree is refused before any hashing", async () => {
  await assert.rejects(rootFromInclusionProof(5, 5, new Uint8Array(32), []), /entry 5 is not in a tree of 5/);
  await assert.rejects(rootFromInclusionProof(0, 0, new Uint8Array(32), []), /not in a tree of 0/);
});

test("a note signed by another key, or changed after signing, is refused", async () => {
  const log = makeLog(10, KEY);
  const witnesses = witnessList([], 0);
  const run = (checkpoint, logKey = KEY.vkey) =>
    verifyLogInclusion({ outputValue: log.entries[3], inclusion: { ...inclusion(log, 3), checkpoint }, logKey, witnesses });

  // Another key under the log's name: its key id differs, so the log has not signed.
  const impostor = logSigner();
  let r = await run(note(log.body, logLine(impostor, log.body)));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /no signature by the log's key beacon\.example\/log/);

  // Another key passing itself off with the log's key id: the signature does not verify.
  const forged = { ...impostor, id: KEY.id };
  r = await run(note(log.body, logLine(forged, log.body)));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /signature does not verify against the log's key/);

  // The body changed after signing: an extension line added, or the root replaced by that of
  // another tree of ten entries with this pulse at the same place.
  const signed = logLine(KEY, log.body);
  r = await run(note(`${log.body}extra\n`, signed));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /signature does not verify/);
  const otherLeaves = log.leaves.map((l, i) => (i === 3 ? l : leafOf(Buffer.from(outputValue(100 + i), "hex"))));
  r = await run(note(checkpointBody(10, mth(otherLeaves)), signed));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /signature does not verify/);

  // The key /log/key names is another log's entirely.
  const elsewhere = logSigner("other.example/log");
  r = await run(log.checkpoint, elsewhere.vkey);
  assert.equal(r.state, "failed");
  assert.match(r.detail, /origin is beacon\.example\/log but the log's key is named other\.example\/log/);

  // A checkpoint whose origin is not the key's name, signed by that key all the same.
  const body = checkpointBody(10, log.root, "beacon.example/other");
  r = await run(note(body, logLine(KEY, body)));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /origin is beacon\.example\/other/);

  // The unchanged note still passes.
  r = await run(log.checkpoint);
  assert.equal(r.state, "ok", r.detail);
  assert.equal(r.detail, `entry 3 of 10, log key ${ORIGIN}, no witnesses configured`);
});

test("cosignatures: unknown keys do not count, too few are not yet checked, a bad one fails", async () => {
  const run = (cosigners, witnesses, lines = null) => {
    const log = makeLog(9, KEY, cosigners);
    const inc = inclusion(log, 4);
    if (lines) inc.checkpoint = note(log.body, logLine(KEY, log.body), ...lines(log.body));
    return verifyLogInclusion({ outputValue: log.entries[4], inclusion: inc, logKey: KEY.vkey, witnesses });
  };

  // A cosignature by a key the beacon does not name is ignored: here it leaves none.
  let r = await run([STRANGER], witnessList([W1], 1));
  assert.equal(r.state, "not-checked");
  assert.equal(r.detail, `entry 4 of 9, log key ${ORIGIN}, cosigned by 0 of 1 witnesses the beacon names, but the beacon requires 1 (not yet cosigned: look again in a moment)`);
  // And beside a known one it changes nothing.
  r = await run([W1, STRANGER], witnessList([W1], 1));
  assert.equal(r.state, "ok", r.detail);
  assert.match(r.detail, /cosigned by 1 of 1 witnesses the beacon names \(witness\.one\.example\)$/);
  // A known witness's name on a stranger's key: another key id, not counted.
  r = await run([], witnessList([W1], 1), (body) => [cosignLine({ ...STRANGER, name: W1.name }, body)]);
  assert.equal(r.state, "not-checked");
  assert.match(r.detail, /cosigned by 0 of 1 .* requires 1/);

  // Too few: one of two when two are required; enough: one of two when one is.
  r = await run([W2], witnessList([W1, W2], 2));
  assert.equal(r.state, "not-checked");
  assert.match(r.detail, /cosigned by 1 of 2 witnesses the beacon names \(witness\.two\.example\), but the beacon requires 2 \(not yet cosigned/);
  r = await run([W2], witnessList([W1, W2], 1));
  assert.equal(r.state, "ok", r.detail);
  // A witness cosigning twice counts once.
  r = await run([W1, W1], witnessList([W1, W2], 2));
  assert.equal(r.state, "not-checked");
  assert.match(r.detail, /cosigned by 1 of 2/);

  // A cosignature under a named witness's key id that does not verify (another time than it
  // signed) fails the check.
  r = await run([], witnessList([W1], 0), (body) => [cosignLine(W1, body, 1_700_000_000, 1_700_000_001)]);
  assert.equal(r.state, "failed");
  assert.match(r.detail, /cosignature of witness witness\.one\.example does not verify/);

  // More required than named can never be met.
  r = await run([W1], witnessList([W1], 2));
  assert.equal(r.state, "failed");
  assert.match(r.detail, /requires 2, more witnesses than it names/);

  // No witnesses configured: said, and not a failure whatever the note carries.
  r = await run([W1], witnessList([], 1));
  assert.equal(r.state, "ok", r.detail);
  assert.match(r.detail, /no witnesses configured$/);

  // A list that cannot be read, or none at all.
  r = await run([W1], { witnesses: [{ name: "w", vkey: "w+00000000+AA==" }], required: 1 });
  assert.equal(r.state, "failed");
  assert.match(r.detail, /list of witnesses \(\/log\/witnesses\) cannot be read/);
  const log = makeLog(9, KEY, [W1]);
  r = await verifyLogInclusion({ outputValue: log.entries[0], inclusion: inclusion(log, 0), logKey: KEY.vkey, witnesses: null, witnessesError: "/log/witnesses: HTTP 503" });
  assert.equal(r.state, "ok", r.detail);
  assert.match(r.detail, /cosignatures not checked \(\/log\/witnesses: HTTP 503\)$/);
});

test("verifier keys: the key id must match the name and key, the type must be the one asked", async () => {
  const k = await parseVerifierKey(KEY.vkey, 0x01);
  assert.equal(k.name, ORIGIN);
  assert.equal(hexOf(k.keyId), hexOf(KEY.id));
  const [, name, key] = KEY.vkey.match(/^([^+]+)\+[^+]+\+(.+)$/);
  await assert.rejects(parseVerifierKey(`${name}+00000000+${key}`, 0x01), /the key id is 00000000 but/);
  await assert.rejects(parseVerifierKey(`other.example+${hexOf(KEY.id)}+${key}`, 0x01), /the key id is/);
  await assert.rejects(parseVerifierKey(KEY.vkey, 0x04), /type 0x01, not 0x04/);
  await assert.rejects(parseVerifierKey(W1.vkey, 0x01), /type 0x04, not 0x01/);
  await assert.rejects(parseVerifierKey("a b+00000000+AA==", 0x01), /name/);
  const log = makeLog(3, KEY);
  const r = await verifyLogInclusion({ outputValue: log.entries[0], inclusion: inclusion(log, 0), logKey: `${name}+00000000+${key}`, witnesses: witnessList([], 0) });
  assert.equal(r.state, "failed");
  assert.match(r.detail, /the log's key \(\/log\/key\) cannot be read/);
});

test("notes: malformed ones are refused with a reason", () => {
  const log = makeLog(3, KEY);
  assert.equal(parseNote(log.checkpoint).body, log.body);
  assert.throws(() => parseNote(log.body), /no blank line/);
  assert.throws(() => parseNote(`${log.body}\n`), /no signatures/);
  assert.throws(() => parseNote(log.checkpoint.slice(0, -1)), /does not end with a newline/);
  assert.throws(() => parseNote(log.checkpoint.replace("\u2014", "-")), /signature line is malformed/);
  assert.throws(() => parseNote(log.checkpoint.replace("\n", "\r\n")), /control characters/);
});

test("a WebCrypto without Ed25519 leaves the check not-checked, never ok", async () => {
  const log = makeLog(5, KEY);
  const args = { outputValue: log.entries[1], inclusion: inclusion(log, 1), logKey: KEY.vkey, witnesses: witnessList([], 0) };
  const subtle = globalThis.crypto.subtle;
  Object.defineProperty(subtle, "importKey", {
    configurable: true,
    value: async () => {
      throw new Error("Unrecognized name.");
    },
  });
  try {
    const r = await verifyLogInclusion(args);
    assert.equal(r.state, "not-checked");
    assert.match(r.detail, /could not check an Ed25519 signature: Unrecognized name/);
  } finally {
    delete subtle.importKey;
  }
  assert.equal((await verifyLogInclusion(args)).state, "ok");
});

// --- what the explorer asks ------------------------------------------------------------------

// A stand-in for fetch that answers from `routes` (path -> [status, body]) and counts requests.
function server(routes) {
  const asked = [];
  const get = async (path) => {
    asked.push(path);
    const [status, body] = routes[path] ?? [404, { error: { message: "no such route" } }];
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status });
  };
  return { asked, get };
}

const pulseOf = (log, i) => ({ chainIndex: 1, pulseIndex: i + 1, outputValue: log.entries[i] });
const inclusionPath = (p) => `/beacon/2.0/chain/${p.chainIndex}/pulse/${p.pulseIndex}/inclusion`;

test("the explorer's checker: a beacon without a log is asked /log/key once and nothing else", async () => {
  for (const status of [404, 204]) {
    const { asked, get } = server({ "/log/key": [status, ""] });
    const check = logChecker(get);
    const log = makeLog(3, KEY);
    for (const i of [0, 1, 2]) {
      const r = await check(pulseOf(log, i));
      assert.equal(r.id, "logInclusion");
      assert.equal(r.state, "not-checked");
      assert.equal(r.detail, `this beacon keeps no transparency log (/log/key: HTTP ${status})`);
    }
    assert.deepEqual(asked, ["/log/key"]);
  }
});

test("the explorer's checker: key and witnesses once per page, each pulse's inclusion once", async () => {
  const log = makeLog(6, KEY, [W1]);
  const routes = { "/log/key": [200, `${KEY.vkey}\n`], "/log/witnesses": [200, witnessList([W1], 1)] };
  for (const i of [0, 1, 2, 3, 4]) routes[inclusionPath(pulseOf(log, i))] = [200, inclusion(log, i)];
  const { asked, get } = server(routes);
  const check = logChecker(get);
  for (const i of [4, 3, 4, 0]) {
    const r = await check(pulseOf(log, i));
    assert.equal(r.state, "ok", r.detail);
    assert.equal(r.detail, `entry ${i} of 6, log key ${ORIGIN}, cosigned by 1 of 1 witnesses the beacon names (witness.one.example)`);
    assert.equal(r.log.leafIndex, i);
    assert.equal(r.log.origin, ORIGIN);
  }
  // Pulse 6 is not in the log yet: said, not failed.
  const r = await check(pulseOf(log, 5));
  assert.equal(r.state, "not-checked");
  assert.equal(r.detail, "pulse 1-6 is not in the log yet (no such route)");
  assert.deepEqual(asked.filter((p) => p === "/log/key"), ["/log/key"]);
  assert.deepEqual(asked.filter((p) => p === "/log/witnesses"), ["/log/witnesses"]);
  assert.deepEqual(asked.filter((p) => p.endsWith("/inclusion")), [4, 3, 0, 5].map((i) => inclusionPath(pulseOf(log, i))));
});
