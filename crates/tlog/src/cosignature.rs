//! C2SP tlog-cosignature `cosignature/v1` (c2sp.org/tlog-cosignature): a witness's timestamped
//! Ed25519 signature on a checkpoint, carried as one more signature line of the checkpoint's
//! note. The key id uses signature type 0x04 ([`KeyKind::Cosignature`]); the line's bytes after
//! the key id are the timestamp (u64, big-endian) and the 64-byte signature; the signed message
//! is `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint text.
//!
//! A v1 cosignature states: "as of this time, the largest consistent tree head I have seen for
//! this origin has this root". The message does not name the cosigner, so a cosigner's Ed25519
//! key must be used by that cosigner only.

use crate::note::{self, KeyKind, Note, NoteError, VerifierKey};
use ed25519_dalek::Signature;

/// The first line of the signed message: domain separation from every other use of the key.
pub const HEADER: &str = "cosignature/v1\n";

/// The largest timestamp the spec allows (2^63 − 1), so it survives signed 64-bit readers.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The message a cosigner signs: `cosignature/v1\ntime <timestamp>\n` and the checkpoint's note
/// text (with its extension lines and final newline, without signature lines). `timestamp` is
/// POSIX seconds and must not exceed [`MAX_TIMESTAMP`]; [`verify`] refuses larger ones.
pub fn signed_message(checkpoint_body: &str, timestamp: u64) -> Vec<u8> {
    format!("{HEADER}time {timestamp}\n{checkpoint_body}").into_bytes()
}

/// A cosignature's signature bytes as a note signature line carries them (before base64):
/// key id ‖ timestamp (u64 big-endian) ‖ Ed25519 signature, 76 bytes.
pub fn encode(key_id: [u8; 4], timestamp: u64, signature: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(76);
    out.extend_from_slice(&key_id);
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(signature);
    out
}

/// The cosignature's signature line, newline included: `— <name> <base64(encode(…))>\n`.
pub fn line(name: &str, key_id: [u8; 4], timestamp: u64, signature: &[u8; 64]) -> String {
    note::signature_line(name, key_id, &encode(key_id, timestamp, signature)[4..])
}

/// Checks the note's cosignature by `key` (a [`KeyKind::Cosignature`] key) and returns its
/// timestamp. Every line by the key (same name and id) must be 72 bytes after the key id, carry a
/// timestamp ≤ [`MAX_TIMESTAMP`] and verify (`verify_strict`) over [`signed_message`] of the
/// note's text; with several, the latest timestamp is returned. Whether the timestamp is in
/// the future, or the text a checkpoint, is the caller's policy.
pub fn verify(note: &Note, key: &VerifierKey) -> Result<u64, NoteError> {
    if key.kind != KeyKind::Cosignature {
        return Err(NoteError::WrongKeyKind {
            want: KeyKind::Cosignature,
            got: key.kind,
        });
    }
    let vk = key.verifying_key()?;
    let mut latest = None;
    for s in note.signatures_by(key) {
        let raw = <&[u8; 72]>::try_from(s.signature.as_slice())
            .map_err(|_| key.invalid("a cosignature/v1 is 72 bytes after the key id"))?;
        let timestamp = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if timestamp > MAX_TIMESTAMP {
            return Err(key.invalid("the timestamp exceeds 2^63 - 1"));
        }
        let sig = Signature::from_bytes(raw[8..].try_into().expect("64 bytes"));
        vk.verify_strict(&signed_message(&note.text, timestamp), &sig)
            .map_err(|_| key.invalid("Ed25519 verification failed"))?;
        latest = latest.max(Some(timestamp));
    }
    latest.ok_or_else(|| key.not_signed())
}
