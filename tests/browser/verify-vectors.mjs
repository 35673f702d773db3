// Checks the explorer's in-browser verifier (crates/api/web/verify.js, x509.js) against the
// test vectors, in Node 20 with its WebCrypto. Run from the repository root:
//
//     node --test tests/browser/verify-vectors.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";

import {
  verify,
  signedMessage,
  recombine,
  sha512,
  hexToBytes,
  bytesToHex,
} from "../../crates/api/web/verify.js";
import { parseCertificate, pemToDer } from "../../crates/api/web/x509.js";

const vectors = new URL("../vectors/", import.meta.url);
const text = (path) => readFileSync(new URL(path, vectors), "utf8");
const pulseOf = (path) => JSON.parse(text(path)).pulse;

const SUITE2 = "lavabeacon-suite2/";
const NIST = "nist-2018-chain1/";
const suite2 = {
  p1: () => pulseOf(SUITE2 + "pulse-1.json"),
  p2: () => pulseOf(SUITE2 + "pulse-2.json"),
  cert: text(SUITE2 + "certificate.pem"),
};
const nist = {
  p1: () => pulseOf(NIST + "pulse-1.json"),
  p54609: () => pulseOf(NIST + "pulse-54609.json"),
  p54610: () => pulseOf(NIST + "pulse-54610.json"),
  cert: text(NIST + "certificate-5501e3d7.pem"),
};

const ORDER = [
  "certificateId",
  "certificateValidity",
  "signature",
  "outputValue",
  "previous",
  "precommitment",
  "timeStamp",
  "manifest",
  "skipList",
  "issuer",
  "external",
  "sources",
];
const NEVER_CHECKED = ["skipList", "issuer", "external", "sources"];

const stateOf = (result, id) => result.checks.find((c) => c.id === id).state;
const detailOf = (result, id) => result.checks.find((c) => c.id === id).detail;
const idsIn = (result, state) => result.checks.filter((c) => c.state === state).map((c) => c.id);

// Every result lists every check, in order, with a label and a reason.
function assertWellFormed(result) {
  assert.deepEqual(result.checks.map((c) => c.id), ORDER);
  for (const c of result.checks) {
    assert.ok(["ok", "failed", "not-checked"].includes(c.state), `${c.id}: ${c.state}`);
    assert.ok(c.label && typeof c.label === "string", `${c.id} has a label`);
    assert.ok(c.detail && typeof c.detail === "string", `${c.id} has a detail`);
  }
  for (const id of NEVER_CHECKED) assert.equal(stateOf(result, id), "not-checked", id);
}

// A copy of `hex` with the digit at `index` changed.
function flipDigit(hex, index) {
  const d = hex[index] === "0" ? "1" : "0";
  return hex.slice(0, index) + d + hex.slice(index + 1);
}

test("signedMessage gives the exact bytes of the suite-2 vectors", () => {
  for (const n of [1, 2]) {
    const expected = hexToBytes(text(`${SUITE2}pulse-${n}.M.hex`).trim());
    const m = signedMessage(pulseOf(`${SUITE2}pulse-${n}.json`));
    assert.equal(m.length, 804);
    assert.equal(bytesToHex(m), bytesToHex(expected), `pulse ${n}`);
  }
});

test("signedMessage signs the version as given and decodes hex of either case", () => {
  const p = nist.p54610();
  assert.equal(p.version, "Version 2.0");
  const m = signedMessage(p);
  // S(uri) first, then S(version) with NIST's old text.
  const uriLength = new DataView(m.buffer).getUint32(0);
  const version = new TextDecoder().decode(m.subarray(4 + uriLength + 4, 4 + uriLength + 4 + 11));
  assert.equal(version, "Version 2.0");
  const lower = { ...p, localRandomValue: p.localRandomValue.toLowerCase() };
  assert.deepEqual(signedMessage(lower), m);
});

test("signedMessage names the field of a malformed pulse", () => {
  const p = suite2.p2();
  assert.throws(() => signedMessage({ ...p, localRandomValue: "ZZ" }), /localRandomValue/);
  assert.throws(() => signedMessage({ ...p, precommitmentValue: "00" }), /precommitmentValue is 1 bytes/);
  assert.throws(() => signedMessage({ ...p, chainIndex: -1 }), /chainIndex/);
  assert.throws(() => signedMessage({ ...p, external: undefined }), /external/);
});

test("suite 2: pulse 2 with pulse 1 before it verifies, every computable check ok", async () => {
  const result = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "ok");
  for (const id of ["certificateId", "certificateValidity", "signature", "outputValue", "previous", "precommitment", "timeStamp"]) {
    assert.equal(stateOf(result, id), "ok", `${id}: ${detailOf(result, id)}`);
  }
  assert.equal(stateOf(result, "manifest"), "not-checked");
  assert.match(detailOf(result, "manifest"), /no published source manifest/);
  assert.equal(result.certificate.keyAlgorithm, "Ed25519");
  assert.equal(result.certificate.test, true);
});

test("suite 2: pulse 1 alone verifies as the first pulse of its chain", async () => {
  const result = await verify({ pulse: suite2.p1(), certificate: suite2.cert, previous: null, manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "ok");
  assert.equal(stateOf(result, "previous"), "ok");
  assert.equal(detailOf(result, "previous"), "first pulse of chain 1: nothing before it");
  assert.equal(stateOf(result, "precommitment"), "not-checked");
  assert.match(detailOf(result, "precommitment"), /nothing committed to it/);
  assert.equal(stateOf(result, "timeStamp"), "ok");
});

test("NIST: pulse 54610 after 54609 verifies with RSASSA-PKCS1-v1_5 SHA-512", async () => {
  const result = await verify({ pulse: nist.p54610(), certificate: nist.cert, previous: nist.p54609(), manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "ok");
  for (const id of ["certificateId", "certificateValidity", "signature", "outputValue", "previous", "precommitment", "timeStamp"]) {
    assert.equal(stateOf(result, id), "ok", `${id}: ${detailOf(result, id)}`);
  }
  assert.match(detailOf(result, "signature"), /RSASSA-PKCS1-v1_5 SHA-512.*RSA-4096/);
});

test("NIST: chain 1's first pulse verifies alone", async () => {
  const result = await verify({ pulse: nist.p1(), certificate: nist.cert, previous: null, manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "ok");
  assert.equal(detailOf(result, "previous"), "first pulse of chain 1: nothing before it");
});

test("a changed digit of localRandomValue fails signature, outputValue and precommitment", async () => {
  const pulse = suite2.p2();
  pulse.localRandomValue = flipDigit(pulse.localRandomValue, 10);
  const result = await verify({ pulse, certificate: suite2.cert, previous: suite2.p1(), manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "failed");
  assert.deepEqual(idsIn(result, "failed"), ["signature", "outputValue", "precommitment"]);
  assert.match(detailOf(result, "signature"), /does not verify against the certificate's Ed25519 key/);
});

test("a changed digit of an RSA pulse fails it too", async () => {
  const pulse = nist.p54610();
  pulse.timeStamp = "2018-08-30T17:45:00.000Z";
  const result = await verify({ pulse, certificate: nist.cert, previous: nist.p54609(), manifest: null });
  assert.equal(result.state, "failed");
  assert.deepEqual(idsIn(result, "failed"), ["signature", "outputValue", "timeStamp"]);
  assert.match(detailOf(result, "timeStamp"), /statusCode 0 means one period \(60000 ms\).*120000 ms after/);
});

test("a changed digit of signatureValue fails the signature", async () => {
  const pulse = suite2.p2();
  pulse.signatureValue = flipDigit(pulse.signatureValue, 5);
  const result = await verify({ pulse, certificate: suite2.cert, previous: suite2.p1(), manifest: null });
  assert.equal(result.state, "failed");
  assert.equal(stateOf(result, "signature"), "failed");
  // The outputValue hashes the signature, so it no longer matches either.
  assert.deepEqual(idsIn(result, "failed"), ["signature", "outputValue"]);
});

test("the wrong certificate fails certificateId and checks no signature with it", async () => {
  const result = await verify({ pulse: suite2.p2(), certificate: nist.cert, previous: suite2.p1(), manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "failed");
  assert.equal(stateOf(result, "certificateId"), "failed");
  assert.match(detailOf(result, "certificateId"), /SHA-512 of the certificate is 5501e3d7.* but the pulse names ac0aacd1/);
  assert.equal(stateOf(result, "signature"), "not-checked");
  assert.equal(stateOf(result, "certificateValidity"), "not-checked");
});

test("an unreadable certificate fails certificateId", async () => {
  const result = await verify({ pulse: suite2.p2(), certificate: "not a certificate", previous: null, manifest: null });
  assert.equal(result.state, "failed");
  assert.equal(stateOf(result, "certificateId"), "failed");
  assert.match(detailOf(result, "certificateId"), /cannot be read/);
  assert.equal(result.certificate, null);
});

test("without a certificate the pulse is unverified, not ok", async () => {
  const result = await verify({ pulse: suite2.p2(), certificate: null, previous: suite2.p1(), manifest: null });
  assertWellFormed(result);
  assert.equal(result.state, "unverified");
  assert.equal(stateOf(result, "certificateId"), "not-checked");
  assert.equal(stateOf(result, "signature"), "not-checked");
  assert.equal(stateOf(result, "outputValue"), "ok");
  assert.equal(result.certificate, null);
});

test("a WebCrypto that cannot verify leaves the signature not-checked, never ok", async () => {
  const subtle = globalThis.crypto.subtle;
  Object.defineProperty(subtle, "importKey", {
    configurable: true,
    value: async () => {
      throw new Error("Unrecognized name.");
    },
  });
  try {
    const result = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: null });
    assert.equal(stateOf(result, "signature"), "not-checked");
    assert.match(detailOf(result, "signature"), /could not check an Ed25519 signature: Unrecognized name/);
    assert.equal(result.state, "unverified");
  } finally {
    delete subtle.importKey;
  }
  const again = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: null });
  assert.equal(again.state, "ok");
});

test("the previous link: a wrong previous pulse fails, none given is not-checked", async () => {
  // 54609 is of another chain of pulses entirely: wrong index and value.
  const wrong = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: nist.p54609(), manifest: null });
  assert.equal(wrong.state, "failed");
  assert.equal(stateOf(wrong, "previous"), "failed");
  assert.match(detailOf(wrong, "previous"), /pulseIndex is 2 but the previous pulse's is 54609/);
  assert.equal(stateOf(wrong, "precommitment"), "not-checked");

  const none = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: null, manifest: null });
  assert.equal(none.state, "ok"); // the essential checks held; the link is listed as not checked
  assert.equal(stateOf(none, "previous"), "not-checked");
  assert.equal(stateOf(none, "precommitment"), "not-checked");
  assert.match(detailOf(none, "timeStamp"), /gap to the previous pulse was not checked/);
});

test("a chain's first pulse must say so both ways and have empty skip values", async () => {
  const check = async (change) => {
    const pulse = suite2.p1();
    change(pulse);
    const result = await verify({ pulse, certificate: null, previous: null, manifest: null });
    assert.equal(stateOf(result, "previous"), "failed");
    return detailOf(result, "previous");
  };
  assert.match(await check((p) => (p.statusCode = 0)), /pulseIndex 1 .* statusCode is 0/);
  assert.match(await check((p) => (p.pulseIndex = 9)), /statusCode 1 .* pulseIndex is 9/);
  assert.match(await check((p) => (p.listValues[2].value = "1" + p.listValues[2].value.slice(1))), /its day value is not zero/);
  assert.match(await check((p) => (p.listValues[4].uri = "https://x/")), /its year entry has a uri/);
});

test("statusCode 3 leaves the precommitment not-checked, as the pulse states", async () => {
  const pulse = suite2.p2();
  pulse.statusCode = 3;
  const result = await verify({ pulse, certificate: suite2.cert, previous: suite2.p1(), manifest: null });
  assert.equal(stateOf(result, "precommitment"), "not-checked");
  assert.match(detailOf(result, "precommitment"), /statusCode 3/);
  // It is also a signed change, and one period is no gap.
  assert.deepEqual(idsIn(result, "failed"), ["signature", "outputValue", "timeStamp"]);
});

test("other cipher suites: 1 is not checked, others fail", async () => {
  const clcert = { ...suite2.p2(), cipherSuite: 1 };
  const r1 = await verify({ pulse: clcert, certificate: suite2.cert, previous: null, manifest: null });
  assert.equal(stateOf(r1, "signature"), "not-checked");
  assert.equal(stateOf(r1, "outputValue"), "not-checked");
  assert.equal(r1.state, "unverified");

  const r7 = await verify({ pulse: { ...suite2.p2(), cipherSuite: 7 }, certificate: suite2.cert, previous: null, manifest: null });
  assert.equal(stateOf(r7, "signature"), "failed");
  assert.equal(r7.state, "failed");

  // Suite 0 with an Ed25519 certificate: the key does not match the suite.
  const r0 = await verify({ pulse: { ...suite2.p2(), cipherSuite: 0 }, certificate: suite2.cert, previous: null, manifest: null });
  assert.match(detailOf(r0, "signature"), /needs an RSA key but the certificate's key is Ed25519/);
});

test("an Ed25519 certificate with a key of small order is refused", async () => {
  const good = parseCertificate(suite2.cert);
  // Known small-order encodings: the identity, and two points of order 8.
  for (const keyHex of [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  ]) {
    const der = good.der.slice();
    const at = bytesToHex(der).indexOf(bytesToHex(good.spki)) / 2 + good.spki.length - 32;
    der.set(hexToBytes(keyHex), at);
    const pulse = { ...suite2.p2(), certificateId: bytesToHex(await sha512(der)).toLowerCase() };
    const result = await verify({ pulse, certificate: der, previous: null, manifest: null });
    assert.equal(stateOf(result, "certificateId"), "ok");
    assert.equal(stateOf(result, "signature"), "failed", keyHex);
    assert.match(detailOf(result, "signature"), /small order/);
  }
});

// A manifest like the Rust unit test's: two contributing sources and one left out.
function sampleManifest() {
  return {
    version: 1,
    chainIndex: 1,
    pulseIndex: 2,
    sources: [
      { name: "os", status: "ok", creditedBits: 256, digest: "01".repeat(64) },
      { name: "camera", status: "unhealthy: identical frames", creditedBits: 0 },
      { name: "cpu", status: "ok", creditedBits: 64, digest: "02".repeat(64) },
    ],
  };
}

// The combination, computed independently with node:crypto.
function expectedCombination(parts) {
  const h = createHash("sha512");
  h.update("lavabeacon localRandomValue v1");
  const sorted = parts
    .map(([name, digestHex]) => [Buffer.from(name, "utf8"), Buffer.from(digestHex, "hex")])
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  for (const [name, digest] of sorted) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(name.length);
    h.update(len).update(name);
    len.writeUInt32BE(digest.length);
    h.update(len).update(digest);
  }
  return h.digest("hex").toUpperCase();
}

test("recombine combines the contributing sources in byte order of name", async () => {
  const value = await recombine(sampleManifest());
  assert.equal(bytesToHex(value), expectedCombination([["os", "01".repeat(64)], ["cpu", "02".repeat(64)]]));

  // UTF-16 order and UTF-8 byte order differ here: U+FFFF sorts before U+10000 in UTF-8.
  const names = { version: 1, chainIndex: 1, pulseIndex: 1, sources: [
    { name: "\u{10000}", status: "ok", creditedBits: 1, digest: "aa" },
    { name: "\uffff", status: "ok", creditedBits: 1, digest: "BB" },
  ] };
  assert.equal(bytesToHex(await recombine(names)), expectedCombination([["\u{10000}", "aa"], ["\uffff", "bb"]]));
});

test("recombine refuses unknown versions, repeated names and digests that are not hex", async () => {
  await assert.rejects(recombine({ ...sampleManifest(), version: 2 }), /version 2 is unknown/);
  const twice = sampleManifest();
  twice.sources[1].name = "os";
  await assert.rejects(recombine(twice), /source os appears twice/);
  const notHex = sampleManifest();
  notHex.sources[0].digest = "zz";
  await assert.rejects(recombine(notHex), /source os: digest is not hex/);
});

test("the manifest check: a manifest that recombines to another value fails", async () => {
  const result = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: sampleManifest() });
  assert.equal(result.state, "failed");
  assert.deepEqual(idsIn(result, "failed"), ["manifest"]);
  assert.match(detailOf(result, "manifest"), /recombine to .* but localRandomValue is 2E1FA1F0/);

  const elsewhere = { ...sampleManifest(), pulseIndex: 7 };
  const r2 = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: elsewhere });
  assert.match(detailOf(r2, "manifest"), /chain 1 pulse 7, not chain 1 pulse 2/);

  const bad = await verify({ pulse: suite2.p2(), certificate: suite2.cert, previous: suite2.p1(), manifest: { ...sampleManifest(), version: 2 } });
  assert.equal(stateOf(bad, "manifest"), "failed");
  assert.match(detailOf(bad, "manifest"), /cannot be recombined: manifest version 2/);
});

test("the manifest check: a manifest that recombines to localRandomValue is ok", async () => {
  // No vector pulse has a manifest: give pulse 2 the sample's value (its signature then fails,
  // but the manifest check stands alone).
  const manifest = sampleManifest();
  const pulse = { ...suite2.p2(), localRandomValue: bytesToHex(await recombine(manifest)) };
  const result = await verify({ pulse, certificate: suite2.cert, previous: null, manifest });
  assert.equal(stateOf(result, "manifest"), "ok");
  assert.match(detailOf(result, "manifest"), /2 contributing sources \(os, cpu\)/);
});

test("the timeStamp must be exact and a multiple of the period", async () => {
  for (const timeStamp of ["2026-11-21T10:01:00Z", "2026-11-21T10:01:00.000+00:00", "2026-02-30T10:00:00.000Z"]) {
    const result = await verify({ pulse: { ...suite2.p2(), timeStamp }, certificate: null, previous: null, manifest: null });
    assert.equal(stateOf(result, "timeStamp"), "failed", timeStamp);
    assert.match(detailOf(result, "timeStamp"), /YYYY-MM-DDTHH:MM:SS\.000Z/);
  }
  const off = await verify({ pulse: { ...suite2.p2(), timeStamp: "2026-11-21T10:01:30.000Z" }, certificate: null, previous: null, manifest: null });
  assert.match(detailOf(off, "timeStamp"), /not a multiple of the period/);
});

test("parseCertificate reads both certificates", () => {
  const ed = parseCertificate(suite2.cert);
  assert.equal(ed.subject, "CN=lavabeacon test vectors TEST ONLY - NOT FOR SECURITY USE");
  assert.equal(ed.issuer, ed.subject);
  assert.equal(ed.serial, "01");
  assert.equal(ed.keyAlgorithm, "Ed25519");
  assert.equal(ed.rsaBits, undefined);
  assert.equal(ed.test, true);
  assert.equal(ed.notBefore.toISOString(), "1975-01-01T00:00:00.000Z");
  assert.equal(ed.notAfter.toISOString(), "4096-01-01T00:00:00.000Z"); // a GeneralizedTime
  assert.ok(ed.notBefore < ed.notAfter);
  assert.equal(ed.spki.length, 44);

  const rsa = parseCertificate(nist.cert);
  assert.equal(
    rsa.subject,
    "CN=engine.beacon.nist.gov, OU=ITL/CSD, O=National Institute of Standards and Technology, " +
      "L=Gaithersburg, ST=Maryland, C=US",
  );
  assert.equal(rsa.issuer, "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US");
  assert.equal(rsa.serial, "0AB3A70FE0EF937F6B1B0CF7C57E92B5");
  assert.equal(rsa.keyAlgorithm, "RSA");
  assert.equal(rsa.rsaBits, 4096);
  assert.equal(rsa.test, false);
  assert.equal(rsa.notBefore.toISOString(), "2018-01-10T00:00:00.000Z");
  assert.equal(rsa.notAfter.toISOString(), "2019-01-11T12:00:00.000Z");

  // DER in gives the same certificate.
  assert.deepEqual(parseCertificate(rsa.der).subject, rsa.subject);
});

test("PEM is read leniently", () => {
  const der = pemToDer(nist.cert);
  const body = nist.cert.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const lines = body.match(/.{1,64}/g);
  const variants = [
    `-----BEGIN CERTIFICATE-----${lines.join("\r\n")}\r\n-----END CERTIFICATE-----`, // nothing after BEGIN
    `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`, // LF
    `Subject: whatever\n\n-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\ntrailing text`,
    `${nist.cert}\n${suite2.cert}`, // two certificates: the first is read
  ];
  for (const v of variants) assert.deepEqual(pemToDer(v), der);
});

test("malformed certificates are refused with a reason", () => {
  const der = pemToDer(suite2.cert);
  assert.throws(() => parseCertificate("no pem here"), /BEGIN CERTIFICATE/);
  assert.throws(() => parseCertificate("-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----"), /base64/);
  assert.throws(() => parseCertificate(der.subarray(0, der.length - 10)), /runs past|truncated/);
  assert.throws(() => parseCertificate(new Uint8Array([...der, 0])), /follow the certificate/);
  assert.throws(() => parseCertificate(new Uint8Array([0x30, 0x80, 0, 0])), /indefinite/);
  assert.throws(() => parseCertificate(42), /PEM text or DER bytes/);
});
