// Reads the X.509 certificate a beacon pulse names, just far enough to verify the pulse:
// its DER (whose SHA-512 is the pulse's certificateId), names, validity and public key.
//
// A plain ES module with no dependencies, for browsers and Node alike. It is a reader, not a
// validator: it does not check the certificate's own signature or its issuer (a browser has no
// list of beacon certificate authorities); `lavabeacon verify --ca` does that.

// The marker the development token writes into its certificates' subjects.
const TEST_MARKER = "TEST ONLY - NOT FOR SECURITY USE";

const OID_RSA = "1.2.840.113549.1.1.1";
const OID_ED25519 = "1.3.101.112";

// Short names of the attributes beacon certificates use; others are shown by OID.
const ATTRIBUTE_NAMES = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "1.2.840.113549.1.9.1": "emailAddress",
};

// Universal tags this reader needs.
const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
  VERSION: 0xa0, // [0] EXPLICIT, constructed
};

/**
 * The DER bytes of the first CERTIFICATE block of PEM text. Read leniently, as NIST served
 * theirs: CRLF line ends, no line break after the BEGIN line, no final newline, other text or
 * other blocks around it.
 */
export function pemToDer(text) {
  if (typeof text !== "string") throw new Error("PEM must be text");
  const begin = "-----BEGIN CERTIFICATE-----";
  const end = "-----END CERTIFICATE-----";
  const start = text.indexOf(begin);
  if (start < 0) throw new Error("no -----BEGIN CERTIFICATE----- line in the PEM text");
  const stop = text.indexOf(end, start + begin.length);
  if (stop < 0) throw new Error("the PEM certificate has no -----END CERTIFICATE----- line");
  const body = text.slice(start + begin.length, stop).replace(/\s+/g, "");
  if (body.length === 0) throw new Error("the PEM certificate block is empty");
  if (body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
    throw new Error("the PEM certificate block is not valid base64");
  }
  const binary = atob(body);
  const der = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) der[i] = binary.charCodeAt(i);
  return der;
}

/**
 * Reads a certificate from PEM text or DER bytes (Uint8Array or ArrayBuffer).
 * Returns { der, subject, issuer, serial, notBefore, notAfter, spki, keyAlgorithm, rsaBits, test }
 * and throws an Error saying what is wrong when the input is not a certificate.
 */
export function parseCertificate(pemOrDer) {
  let der;
  if (typeof pemOrDer === "string") der = pemToDer(pemOrDer);
  else if (pemOrDer instanceof Uint8Array) der = pemOrDer;
  else if (pemOrDer instanceof ArrayBuffer) der = new Uint8Array(pemOrDer);
  else throw new Error("a certificate must be PEM text or DER bytes");

  const cert = readElement(der, 0, "certificate");
  expectTag(cert, TAG.SEQUENCE, "certificate");
  // certificateId is the SHA-512 of exactly these bytes: nothing may follow the certificate.
  if (cert.end !== der.length) {
    throw new Error(`certificate: ${der.length - cert.end} bytes follow the certificate's DER`);
  }
  const [tbs] = children(der, cert, "certificate", 3);
  expectTag(tbs, TAG.SEQUENCE, "tbsCertificate");

  const fields = children(der, tbs, "tbsCertificate");
  // The version is optional ([0] EXPLICIT); when absent the certificate is v1.
  let i = fields[0] && fields[0].tag === TAG.VERSION ? 1 : 0;
  if (fields.length < i + 6) throw new Error("tbsCertificate: too few fields");
  const serialEl = fields[i++];
  i++; // the signature algorithm, repeated outside tbsCertificate: not needed here
  const issuerEl = fields[i++];
  const validityEl = fields[i++];
  const subjectEl = fields[i++];
  const spkiEl = fields[i++];

  expectTag(serialEl, TAG.INTEGER, "serialNumber");
  const [notBeforeEl, notAfterEl] = children(der, expectTag(validityEl, TAG.SEQUENCE, "validity"), "validity", 2);
  const key = readPublicKey(der, expectTag(spkiEl, TAG.SEQUENCE, "subjectPublicKeyInfo"));
  const subject = readName(der, subjectEl, "subject");

  return {
    der,
    subject,
    issuer: readName(der, issuerEl, "issuer"),
    serial: serialHex(content(der, serialEl)),
    notBefore: readTime(der, notBeforeEl, "notBefore"),
    notAfter: readTime(der, notAfterEl, "notAfter"),
    spki: der.slice(spkiEl.start, spkiEl.end),
    keyAlgorithm: key.algorithm,
    rsaBits: key.rsaBits,
    test: subject.includes(TEST_MARKER),
  };
}

// --- DER ------------------------------------------------------------------------------------

// One tag-length-value element at `offset`: { tag, start, contentStart, end } (end exclusive).
function readElement(bytes, offset, what) {
  if (offset + 2 > bytes.length) throw new Error(`${what}: truncated DER`);
  const tag = bytes[offset];
  // Certificates use only low tag numbers; the high-number form would need more parsing.
  if ((tag & 0x1f) === 0x1f) throw new Error(`${what}: unsupported high tag number`);
  let length = bytes[offset + 1];
  let contentStart = offset + 2;
  if (length === 0x80) throw new Error(`${what}: indefinite length is not DER`);
  if (length > 0x80) {
    const count = length & 0x7f;
    // Four length bytes describe 4 GiB, far beyond any certificate.
    if (count > 4) throw new Error(`${what}: length of ${count} bytes is too long`);
    if (contentStart + count > bytes.length) throw new Error(`${what}: truncated DER length`);
    length = 0;
    for (let k = 0; k < count; k++) length = length * 256 + bytes[contentStart + k];
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > bytes.length) throw new Error(`${what}: element runs past the end of the DER`);
  return { tag, start: offset, contentStart, end };
}

// The elements inside a constructed element; `count`, when given, is the least expected.
function children(bytes, parent, what, count = 0) {
  const out = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const el = readElement(bytes, offset, what);
    if (el.end > parent.end) throw new Error(`${what}: element runs past its container`);
    out.push(el);
    offset = el.end;
  }
  if (out.length < count) throw new Error(`${what}: expected ${count} elements, found ${out.length}`);
  return out;
}

function content(bytes, el) {
  return bytes.subarray(el.contentStart, el.end);
}

function expectTag(el, tag, what) {
  if (!el || el.tag !== tag) {
    const found = el ? `tag 0x${el.tag.toString(16).padStart(2, "0")}` : "nothing";
    throw new Error(`${what}: expected tag 0x${tag.toString(16).padStart(2, "0")}, found ${found}`);
  }
  return el;
}

function readOid(bytes, el, what) {
  const b = content(bytes, expectTag(el, TAG.OID, what));
  if (b.length === 0) throw new Error(`${what}: empty OID`);
  // The first byte packs the first two arcs; the rest are base-128 with continuation bits.
  const arcs = [];
  let value = 0n;
  for (let k = 0; k < b.length; k++) {
    value = (value << 7n) | BigInt(b[k] & 0x7f);
    if (b[k] & 0x80) {
      if (k === b.length - 1) throw new Error(`${what}: truncated OID`);
      continue;
    }
    if (arcs.length === 0) {
      const first = value < 40n ? 0n : value < 80n ? 1n : 2n;
      arcs.push(first, value - first * 40n);
    } else {
      arcs.push(value);
    }
    value = 0n;
  }
  return arcs.join(".");
}

// --- names ----------------------------------------------------------------------------------

// A Name as RFC 4514 writes it (most specific first): "CN=engine.beacon.nist.gov, O=…, C=US".
function readName(bytes, el, what) {
  expectTag(el, TAG.SEQUENCE, what);
  const rdns = children(bytes, el, what).map((set) => {
    expectTag(set, TAG.SET, what);
    return children(bytes, set, what)
      .map((atv) => {
        const [typeEl, valueEl] = children(bytes, expectTag(atv, TAG.SEQUENCE, what), what, 2);
        const oid = readOid(bytes, typeEl, what);
        return `${ATTRIBUTE_NAMES[oid] || oid}=${escapeValue(readString(bytes, valueEl))}`;
      })
      .join("+");
  });
  return rdns.reverse().join(", ");
}

function readString(bytes, el) {
  const b = content(bytes, el);
  switch (el.tag) {
    case TAG.UTF8_STRING:
      return new TextDecoder("utf-8").decode(b);
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      return latin1(b);
    case TAG.T61_STRING:
      // T61 is in practice UTF-8 or Latin-1 text; take UTF-8 when it decodes.
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(b);
      } catch {
        return latin1(b);
      }
    case TAG.BMP_STRING:
      return new TextDecoder("utf-16be").decode(b);
    case TAG.UNIVERSAL_STRING: {
      let s = "";
      for (let k = 0; k + 3 < b.length; k += 4) {
        s += String.fromCodePoint(((b[k] << 24) | (b[k + 1] << 16) | (b[k + 2] << 8) | b[k + 3]) >>> 0);
      }
      return s;
    }
    default:
      // RFC 4514's form for a value that is not a string: '#' and the hex of its DER.
      return "#" + hex(bytes.subarray(el.start, el.end));
  }
}

function latin1(b) {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

// Escapes what would make "A=x, B=y" ambiguous (RFC 4514 §2.4).
function escapeValue(s) {
  if (s.startsWith("#") && /^#[0-9A-F]+$/.test(s)) return s; // already the hex form
  return s
    .replace(/[,+"\\<>;=]/g, "\\$&")
    .replace(/^([ #])/, "\\$1")
    .replace(/ $/, "\\ ");
}

// --- validity -------------------------------------------------------------------------------

function readTime(bytes, el, what) {
  const text = latin1(content(bytes, el));
  let m;
  let year;
  if (el.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    // RFC 5280: two-digit years 50–99 are 19xx, 00–49 are 20xx.
    if (m) year = Number(m[1]) + (Number(m[1]) >= 50 ? 1900 : 2000);
  } else if (el.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
    if (m) year = Number(m[1]);
  } else {
    throw new Error(`${what}: expected UTCTime or GeneralizedTime`);
  }
  if (!m) throw new Error(`${what}: unreadable time "${text}"`);
  const [month, day, hour, minute, second] = m.slice(2, 7).map(Number);
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC would read years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 || minute > 59 || second > 59
  ) {
    throw new Error(`${what}: no such time "${text}"`);
  }
  return date;
}

// --- the public key -------------------------------------------------------------------------

function readPublicKey(bytes, spkiEl) {
  const parts = children(bytes, spkiEl, "subjectPublicKeyInfo");
  // Exactly two: the key's bit string then ends the SubjectPublicKeyInfo.
  if (parts.length !== 2) throw new Error("subjectPublicKeyInfo: expected 2 elements");
  const [algEl, keyEl] = parts;
  const [oidEl] = children(bytes, expectTag(algEl, TAG.SEQUENCE, "key algorithm"), "key algorithm", 1);
  const oid = readOid(bytes, oidEl, "key algorithm");
  const bits = content(bytes, expectTag(keyEl, TAG.BIT_STRING, "subjectPublicKey"));
  if (bits.length === 0 || bits[0] !== 0) throw new Error("subjectPublicKey: not a whole number of bytes");
  const key = bits.subarray(1);

  if (oid === OID_ED25519) {
    if (key.length !== 32) throw new Error(`Ed25519 key: ${key.length} bytes, not 32`);
    return { algorithm: "Ed25519", rsaBits: undefined };
  }
  if (oid === OID_RSA) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    const seq = readElement(key, 0, "RSA key");
    const [modulusEl] = children(key, expectTag(seq, TAG.SEQUENCE, "RSA key"), "RSA key", 2);
    const n = content(key, expectTag(modulusEl, TAG.INTEGER, "RSA modulus"));
    let k = 0;
    while (k < n.length && n[k] === 0) k++;
    if (k === n.length) throw new Error("RSA key: modulus is zero");
    // The key size is the modulus' bit length: whole bytes after the first, plus its used bits.
    const rsaBits = (n.length - k - 1) * 8 + (32 - Math.clz32(n[k]));
    return { algorithm: "RSA", rsaBits };
  }
  return { algorithm: `other:${oid}`, rsaBits: undefined };
}

// The serial number in upper-case hex, without the sign byte DER adds before a high bit.
function serialHex(b) {
  const trimmed = b.length > 1 && b[0] === 0 ? b.subarray(1) : b;
  return hex(trimmed);
}

function hex(b) {
  let s = "";
  for (const c of b) s += c.toString(16).padStart(2, "0");
  return s.toUpperCase();
}
