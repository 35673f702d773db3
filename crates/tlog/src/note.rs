//! C2SP signed-note (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, and
//! one or more signature lines `— <name> <base64(key id ‖ signature)>`; verifier keys (`vkey`s)
//! `<name>+<hex key id>+<base64(type ‖ public key)>`; key ids
//! `SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]`.
//!
//! Parsing is strict (anything the spec forbids is refused rather than repaired) because a note
//! is what a witness or verifier decides on: two parsers that disagree about where the text ends
//! or which line is whose could be made to accept different statements from the same bytes.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The most signature lines a note may carry. The spec asks verifiers to accept at least 16 and
/// to cap them somewhere; 100 is where Go's x/mod/sumdb/note, the reference, stops, so no note
/// that the reference accepts is refused here for its number of signatures.
pub const MAX_SIGNATURES: usize = 100;

/// The largest note accepted, in bytes. 100 signatures of post-quantum size (ML-DSA-44
/// cosignatures are 3.3 kB of base64) stay under it; anything larger is an attempt to make the
/// parser work, not a checkpoint.
pub const MAX_NOTE_BYTES: usize = 512 * 1024;

/// What starts every signature line: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Standard padded base64 that ignores the unused bits of the last character, for the
/// signatures of signature lines only. Go's encoding/base64, which the reference note parser
/// and witness use, ignores them; refusing them would turn a signature that merely fails to
/// verify into a malformed note (400 rather than 403 at a witness, where the reference's test
/// vectors expect 403). The bits carry nothing, so the signature checked is the same either way.
const SIG_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why a note, a signature line or a verifier key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_BYTES`].
    #[error("the note is {0} bytes, more than the {MAX_NOTE_BYTES} accepted")]
    TooLarge(usize),
    /// The note is not UTF-8.
    #[error("the note is not UTF-8")]
    NotUtf8,
    /// The note holds an ASCII control character other than a newline (a `\r`, a tab…).
    #[error("the note holds the control character {0:#04x}")]
    ControlCharacter(u8),
    /// No blank line followed by signature lines ending in a newline.
    #[error("the note has no signature block (a blank line, then signature lines)")]
    NoSignatureBlock,
    /// A signature line that is not `— <name> <base64>` with at least 5 decoded bytes.
    #[error("malformed signature line: {0}")]
    BadSignatureLine(String),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A key name that is empty, or holds a space, a `+` or a control character.
    #[error("invalid key name {0:?}")]
    BadName(String),
    /// A verifier key string that is not `<name>+<hex8>+<base64(type ‖ key)>`.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
    /// A verifier key of a signature type this crate does not verify.
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedKeyType(u8),
    /// A verifier key whose key id is not the one its name, type and key give.
    #[error("the verifier key's id {given} is not {computed}, the id of its name and key")]
    KeyIdMismatch {
        /// The id written in the vkey, hex.
        given: String,
        /// The id computed from name, type and key, hex.
        computed: String,
    },
    /// The key is of the wrong kind for this check (an Ed25519 note key given to check a
    /// cosignature, or the reverse).
    #[error("a {got:?} key cannot check a {want:?} signature")]
    WrongKeyKind {
        /// The kind the check needs.
        want: KeyKind,
        /// The kind of key given.
        got: KeyKind,
    },
    /// No signature line carries both the key's name and its id.
    #[error("the note has no signature by {name}+{key_id}")]
    NotSigned {
        /// The key's name.
        name: String,
        /// The key's id, hex.
        key_id: String,
    },
    /// A signature line by the key (same name and id) does not verify.
    #[error("the signature by {name}+{key_id} does not verify: {why}")]
    InvalidSignature {
        /// The key's name.
        name: String,
        /// The key's id, hex.
        key_id: String,
        /// What was wrong.
        why: &'static str,
    },
}

/// A signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key's name.
    pub name: String,
    /// The key id: the first four bytes of the decoded signature.
    pub key_id: [u8; 4],
    /// The signature proper: the decoded bytes after the key id (never empty).
    pub signature: Vec<u8>,
}

/// A signed note: its text and its signature lines, none of them verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The note text, the signed bytes: every line up to the last blank line, ending in `\n`.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note, refusing everything the spec forbids: more than
    /// [`MAX_NOTE_BYTES`], invalid UTF-8, control characters other than `\n`, no blank line
    /// before the signatures, a signature block not ending in `\n`, a line not of the form
    /// `— <name> <base64>` (standard padded base64 of at least 5 bytes), an invalid
    /// name, more than [`MAX_SIGNATURES`] lines. The text ends at the *last* blank line, as the
    /// spec says, so the text itself may hold blank lines.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(bytes.len()));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_controls(s)?;
        let split = s.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, block) = (&s[..split + 1], &s[split + 2..]);
        if block.is_empty() || !block.ends_with('\n') {
            return Err(NoteError::NoSignatureBlock);
        }
        let mut signatures = Vec::new();
        for line in block[..block.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note's bytes: the text, a blank line, the signature lines. For a note that
    /// [`Note::parse`] returned these are the bytes it was parsed from, unless a signature's
    /// base64 had unused bits set (they are written as zeros here).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.text.len() + 1 + 100 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&signature_line(&s.name, s.key_id, &s.signature));
        }
        out.into_bytes()
    }

    /// The signature lines made with `key`: those with both its name and its id. Lines that
    /// share only one of the two are another key's, which the spec says to ignore.
    pub fn signatures_by<'a>(
        &'a self,
        key: &'a VerifierKey,
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures
            .iter()
            .filter(move |s| s.name == key.name && s.key_id == key.key_id)
    }

    /// Checks the note's Ed25519 signature by `key` (a [`KeyKind::Ed25519`] key) over the text.
    /// Every line by the key must verify, not just one: the spec says a note with a failing
    /// signature from a known key should be rejected whole. Verification is `verify_strict`
    /// (canonical encodings, no small-order keys), stricter than RFC 8032 requires.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        if key.kind != KeyKind::Ed25519 {
            return Err(NoteError::WrongKeyKind {
                want: KeyKind::Ed25519,
                got: key.kind,
            });
        }
        let vk = key.verifying_key()?;
        let mut any = false;
        for s in self.signatures_by(key) {
            let sig = <[u8; 64]>::try_from(s.signature.as_slice())
                .map_err(|_| key.invalid("an Ed25519 signature is 64 bytes"))?;
            vk.verify_strict(self.text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| key.invalid("Ed25519 verification failed"))?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(key.not_signed())
        }
    }
}

/// Refuses the control characters the spec forbids: everything below U+0020 but `\n`.
fn check_controls(s: &str) -> Result<(), NoteError> {
    match s.bytes().find(|&b| b < 0x20 && b != b'\n') {
        Some(b) => Err(NoteError::ControlCharacter(b)),
        None => Ok(()),
    }
}

/// Parses one signature line without its newline.
fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let bad = |why: &str| NoteError::BadSignatureLine(format!("{line:?}: {why}"));
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
    // The name holds no space, so the first space ends it; a second space would be in the
    // base64, which then fails to decode.
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| bad("no space between name and signature"))?;
    check_name(name)?;
    let raw = SIG_BASE64
        .decode(b64)
        .map_err(|_| bad("the signature is not standard base64"))?;
    if raw.len() < 5 {
        return Err(bad("the signature is shorter than a key id and one byte"));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: raw[..4].try_into().expect("4 bytes"),
        signature: raw[4..].to_vec(),
    })
}

/// Checks a key name: non-empty, no Unicode space (`char::is_whitespace` is the same set as
/// Go's `unicode.IsSpace`, which the reference uses), no `+` (it separates a vkey's parts), and
/// no control character (a note may not hold one, so such a name could never sign).
pub fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || (c as u32) < 0x20)
    {
        return Err(NoteError::BadName(name.to_owned()));
    }
    Ok(())
}

/// A signature line, newline included: `— <name> <base64(key id ‖ signature)>\n`. `signature`
/// is what follows the key id (for a cosignature, the timestamp and the Ed25519 signature).
pub fn signature_line(name: &str, key_id: [u8; 4], signature: &[u8]) -> String {
    let mut raw = Vec::with_capacity(4 + signature.len());
    raw.extend_from_slice(&key_id);
    raw.extend_from_slice(signature);
    format!("{SIG_PREFIX}{name} {}\n", STANDARD.encode(raw))
}

/// The signature types this crate knows, by their signed-note type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// 0x01: Ed25519 over the note text (a log's checkpoint signature).
    Ed25519,
    /// 0x04: C2SP tlog-cosignature `cosignature/v1`, a timestamped Ed25519 signature (a
    /// witness's cosignature).
    Cosignature,
}

impl KeyKind {
    /// The signature type byte: 0x01 or 0x04.
    pub fn byte(self) -> u8 {
        match self {
            KeyKind::Ed25519 => 0x01,
            KeyKind::Cosignature => 0x04,
        }
    }

    /// The kind of a type byte; `None` for types this crate does not verify.
    pub fn from_byte(b: u8) -> Option<KeyKind> {
        match b {
            0x01 => Some(KeyKind::Ed25519),
            0x04 => Some(KeyKind::Cosignature),
            _ => None,
        }
    }
}

/// The key id of a key: the first four bytes of SHA-256(name ‖ "\n" ‖ type ‖ public key), as
/// the signed-note spec recommends and tlog-cosignature requires.
pub fn key_id(name: &str, kind: KeyKind, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind.byte()]);
    h.update(public_key);
    h.finalize()[..4].try_into().expect("4 bytes")
}

/// A verifier key: who signs (name and key id) and the Ed25519 public key that checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key's name, as on its signature lines.
    pub name: String,
    /// What the key signs: notes, or cosignatures.
    pub kind: KeyKind,
    /// The Ed25519 public key (RFC 8032 encoding).
    pub public_key: [u8; 32],
    /// The key id, [`key_id`] of the three above.
    pub key_id: [u8; 4],
}

impl VerifierKey {
    /// A key from its parts, with its id computed. Refuses an invalid name, and a public key
    /// that is not an Ed25519 point (it could never verify anything).
    pub fn new(name: &str, kind: KeyKind, public_key: [u8; 32]) -> Result<VerifierKey, NoteError> {
        check_name(name)?;
        VerifyingKey::from_bytes(&public_key).map_err(|_| {
            NoteError::BadVerifierKey("the public key is not an Ed25519 point".into())
        })?;
        Ok(VerifierKey {
            name: name.to_owned(),
            kind,
            key_id: key_id(name, kind, &public_key),
            public_key,
        })
    }

    /// Parses a vkey, `<name>+<hex key id>+<base64(type ‖ key)>`: the id must be 8 lowercase hex
    /// digits (the spec's hex encoding) and must be the id of the name, type and key, the type
    /// 0x01 or 0x04, the key 32 bytes of a valid point.
    pub fn parse(vkey: &str) -> Result<VerifierKey, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(format!("{vkey:?}: {why}"));
        // The name and the hex id hold no '+'; the base64 may.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not three parts separated by +"));
        };
        check_name(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the key id is not 8 lowercase hex digits"));
        }
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| bad("the key is not standard base64"))?;
        let (&type_byte, key) = raw.split_first().ok_or_else(|| bad("no key"))?;
        let kind = KeyKind::from_byte(type_byte).ok_or(NoteError::UnsupportedKeyType(type_byte))?;
        let public_key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
        let k = VerifierKey::new(name, kind, public_key)?;
        let computed = to_hex(&k.key_id);
        if computed != hex {
            return Err(NoteError::KeyIdMismatch {
                given: hex.to_owned(),
                computed,
            });
        }
        Ok(k)
    }

    /// The key as a vkey string.
    pub fn to_vkey(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.kind.byte());
        raw.extend_from_slice(&self.public_key);
        format!(
            "{}+{}+{}",
            self.name,
            to_hex(&self.key_id),
            STANDARD.encode(raw)
        )
    }

    /// The Ed25519 key (checked again: the fields are public and may have been changed).
    pub(crate) fn verifying_key(&self) -> Result<VerifyingKey, NoteError> {
        VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| NoteError::BadVerifierKey("the public key is not an Ed25519 point".into()))
    }

    pub(crate) fn invalid(&self, why: &'static str) -> NoteError {
        NoteError::InvalidSignature {
            name: self.name.clone(),
            key_id: to_hex(&self.key_id),
            why,
        }
    }

    pub(crate) fn not_signed(&self) -> NoteError {
        NoteError::NotSigned {
            name: self.name.clone(),
            key_id: to_hex(&self.key_id),
        }
    }
}

/// Lowercase hex.
fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_and_keeps_blank_lines_in_its_text() {
        let text = "a\n\nb\n";
        let bytes = format!("{text}\n{}", signature_line("n", [1, 2, 3, 4], &[5; 64]));
        let n = Note::parse(bytes.as_bytes()).unwrap();
        assert_eq!(n.text, text);
        assert_eq!(n.signatures.len(), 1);
        assert_eq!(n.to_bytes(), bytes.as_bytes());
    }

    #[test]
    fn names_refuse_spaces_plus_and_controls() {
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{3000}", "a\u{1}", "a\tb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("example.com/log-1").unwrap();
        check_name("ünïcode").unwrap();
    }
}
