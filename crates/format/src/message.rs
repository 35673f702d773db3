//! The signed message M and the values derived from it (spec §2): the one place that decides
//! which bytes are signed and hashed. The signer and every verifier call [`signed_message`].

use crate::hash::{sha3_512, sha512, Hash512};
use crate::pulse::Pulse;

/// The signed message M of a pulse, byte for byte as NIST defines it:
///
/// ```text
/// M = S(uri) ‖ S(version) ‖ u32(cipherSuite) ‖ u32(period) ‖ H(certificateId)
///   ‖ u64(chainIndex) ‖ u64(pulseIndex) ‖ S(timeStamp) ‖ H(localRandomValue)
///   ‖ [H(external.sourceId) ‖ u32(external.statusCode) ‖ H(external.value)]…
///   ‖ H(listValues[0].value) ‖ … ‖ H(precommitmentValue) ‖ u32(statusCode)
/// ```
/// where S(x) and H(x) are a 4-byte big-endian length followed by the bytes. CLCERT's list of
/// external values is serialised one object after another.
pub fn signed_message(p: &Pulse) -> Vec<u8> {
    let mut m = Vec::with_capacity(message_len(p));
    write_signed_message(p, &mut m);
    m
}

/// Appends M to `out` (lets hot loops reuse one buffer).
pub fn write_signed_message(p: &Pulse, out: &mut Vec<u8>) {
    put_str(out, &p.uri);
    put_str(out, &p.version);
    out.extend_from_slice(&p.cipher_suite.to_be_bytes());
    out.extend_from_slice(&p.period.to_be_bytes());
    put_hash(out, &p.certificate_id);
    out.extend_from_slice(&p.chain_index.to_be_bytes());
    out.extend_from_slice(&p.pulse_index.to_be_bytes());
    put_str(out, &p.time_stamp);
    put_hash(out, &p.local_random_value);
    for e in p.external.as_slice() {
        put_hash(out, &e.source_id);
        out.extend_from_slice(&e.status_code.to_be_bytes());
        put_hash(out, &e.value);
    }
    for l in &p.list_values {
        put_hash(out, &l.value);
    }
    put_hash(out, &p.precommitment_value);
    out.extend_from_slice(&p.status_code.to_be_bytes());
}

/// The length of M, without building it.
pub fn message_len(p: &Pulse) -> usize {
    let s = |x: &str| 4 + x.len();
    s(&p.uri)
        + s(&p.version)
        + 8
        + 68
        + 16
        + s(&p.time_stamp)
        + 68
        + p.external.as_slice().len() * (68 + 4 + 68)
        + p.list_values.len() * 68
        + 68
        + 4
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths above u32::MAX cannot occur: parsing caps every input line far below that.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_hash(out: &mut Vec<u8>, h: &Hash512) {
    out.extend_from_slice(&64u32.to_be_bytes());
    out.extend_from_slice(&h.0);
}

/// outputValue as NIST computes it: SHA-512(M ‖ signature).
pub fn output_value(message: &[u8], signature: &[u8]) -> Hash512 {
    sha512(&[message, signature])
}

/// outputValue as INMETRO computes it: SHA-512(M ‖ u32(len(signature)) ‖ signature).
pub fn output_value_inmetro(message: &[u8], signature: &[u8]) -> Hash512 {
    sha512(&[message, &(signature.len() as u32).to_be_bytes(), signature])
}

/// The precommitment published one pulse ahead: SHA-512 of the next localRandomValue's bytes.
pub fn precommitment(next_local_random_value: &Hash512) -> Hash512 {
    sha512(&[&next_local_random_value.0])
}

/// certificateId: SHA-512 of the certificate's DER encoding.
pub fn certificate_id(der: &[u8]) -> Hash512 {
    sha512(&[der])
}

/// CLCERT's `hashedMessage`: SHA3-512(M).
pub fn hashed_message(message: &[u8]) -> Hash512 {
    sha3_512(&[message])
}
