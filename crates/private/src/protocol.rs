//! The signed request, version 1: the one definition of what a client signs and how the server
//! checks it. The server, the `lavabeacon bytes` client and the examples in
//! `docs/private-bytes.md` all build the string to sign with [`string_to_sign`].
//!
//! A request carries the client's custom header and these four:
//! `Lavabeacon-Key-Id`, `Lavabeacon-Date` (Unix seconds), `Lavabeacon-Nonce` (16 to 64
//! base64url characters) and `Lavabeacon-Signature: v1=<base64 of HMAC-SHA256(key, S)>`, where
//! S is nine lines joined with `\n` (no newline at the end): the tag `lavabeacon-private-v1`,
//! the method in upper case, the `Host` header as sent in lower case, the path as sent, the
//! query string as sent (without `?`), the date, the nonce, the key id, and the lower-case hex
//! SHA-256 of the body.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The first line of every string to sign.
pub const TAG: &str = "lavabeacon-private-v1";
/// The header naming the key that signed.
pub const KEY_ID: &str = "Lavabeacon-Key-Id";
/// The header holding the client's clock, in Unix seconds.
pub const DATE: &str = "Lavabeacon-Date";
/// The header holding a value never used twice within the date window.
pub const NONCE: &str = "Lavabeacon-Nonce";
/// The header holding `v1=` and the signature.
pub const SIGNATURE: &str = "Lavabeacon-Signature";
/// The scheme named in `WWW-Authenticate` when a request is not authenticated.
pub const SCHEME: &str = "Lavabeacon-HMAC";
/// How far a request's date may be from the server's clock, either way.
pub const DATE_WINDOW_SECS: i64 = 60;
/// The shortest and longest nonce.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Bytes of an HMAC key.
pub const KEY_BYTES: usize = 32;

/// The parts of a request that are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    pub method: &'a str,
    /// The `Host` header as sent (the string to sign has it in lower case).
    pub host: &'a str,
    /// The path as sent, percent-encoding and all.
    pub path: &'a str,
    /// The query string as sent, without the `?`; empty if there is none.
    pub query: &'a str,
    /// `Lavabeacon-Date` as sent.
    pub date: &'a str,
    /// `Lavabeacon-Nonce` as sent.
    pub nonce: &'a str,
    /// `Lavabeacon-Key-Id` as sent.
    pub key_id: &'a str,
    /// The request body (empty for GET).
    pub body: &'a [u8],
}

/// The string to sign, S.
pub fn string_to_sign(r: &Signed) -> String {
    let body = hex::encode(Sha256::digest(r.body));
    [
        TAG,
        &r.method.to_ascii_uppercase(),
        &r.host.to_ascii_lowercase(),
        r.path,
        r.query,
        r.date,
        r.nonce,
        r.key_id,
        &body,
    ]
    .join("\n")
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The `Lavabeacon-Signature` value for `r` under `key`: `v1=` and the base64 HMAC-SHA256.
pub fn sign(key: &[u8], r: &Signed) -> String {
    let mut m = mac(key);
    m.update(string_to_sign(r).as_bytes());
    format!("v1={}", STANDARD.encode(m.finalize().into_bytes()))
}

/// Whether `header` (a `Lavabeacon-Signature` value) is `key`'s signature of `r`. The
/// comparison takes the same time whichever byte differs.
pub fn verify(key: &[u8], r: &Signed, header: &str) -> bool {
    let Some(b64) = header.trim().strip_prefix("v1=") else {
        return false;
    };
    let Ok(given) = STANDARD.decode(b64) else {
        return false;
    };
    let mut m = mac(key);
    m.update(string_to_sign(r).as_bytes());
    m.verify_slice(&given).is_ok()
}

/// Whether `nonce` has the allowed length and only base64url characters.
pub fn nonce_is_valid(nonce: &str) -> bool {
    NONCE_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A `Lavabeacon-Date` value: decimal Unix seconds, nothing else.
pub fn parse_date(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A fresh nonce: 24 random bytes as 32 base64url characters.
pub fn new_nonce() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE.encode(b)
}

/// An HMAC key as the clients file and the credentials show it: base64url with padding (so
/// every standard library decodes it as it is).
pub fn encode_key(key: &[u8]) -> String {
    URL_SAFE.encode(key)
}

/// An HMAC key from its base64url form (padding optional).
pub fn decode_key(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let trimmed = text.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Signed<'static> {
        Signed {
            method: "get",
            host: "Beacon.Example.ORG",
            path: "/private/v1/bytes",
            query: "n=32&format=hex",
            date: "1796140982",
            nonce: "bm9uY2Utbm9uY2Utbm9uY2U",
            key_id: "alice.1",
            body: b"",
        }
    }

    #[test]
    fn the_string_to_sign_has_nine_lines_with_method_upper_and_host_lower() {
        let s = string_to_sign(&request());
        let lines: Vec<&str> = s.split('\n').collect();
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[0], TAG);
        assert_eq!(lines[1], "GET");
        assert_eq!(lines[2], "beacon.example.org");
        assert_eq!(lines[4], "n=32&format=hex");
        // SHA-256 of the empty string.
        assert_eq!(
            lines[8],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(!s.ends_with('\n'));
    }

    #[test]
    fn a_signature_verifies_and_any_change_to_a_signed_part_breaks_it() {
        let key = [7u8; KEY_BYTES];
        let r = request();
        let sig = sign(&key, &r);
        assert!(sig.starts_with("v1="));
        assert!(verify(&key, &r, &sig));
        assert!(!verify(&[8u8; KEY_BYTES], &r, &sig));
        let changed = [
            Signed {
                path: "/private/v1/bytes/",
                ..r.clone()
            },
            Signed {
                query: "n=33&format=hex",
                ..r.clone()
            },
            Signed {
                date: "1796140983",
                ..r.clone()
            },
            Signed {
                nonce: "bm9uY2Utbm9uY2Utbm9uY2X",
                ..r.clone()
            },
            Signed {
                key_id: "alice.2",
                ..r.clone()
            },
            Signed {
                method: "POST",
                ..r.clone()
            },
            Signed {
                body: b"x",
                ..r.clone()
            },
        ];
        for c in &changed {
            assert!(
                !verify(&key, c, &sig),
                "{c:?} verified with the original signature"
            );
        }
        // The host's case is not signed; the path's is.
        assert!(verify(
            &key,
            &Signed {
                host: "beacon.example.org",
                ..r.clone()
            },
            &sig
        ));
        assert!(!verify(
            &key,
            &Signed {
                path: "/PRIVATE/v1/bytes",
                ..r.clone()
            },
            &sig
        ));
        assert!(!verify(&key, &r, "v2=abc"));
        assert!(!verify(&key, &r, "v1=not base64!"));
    }

    #[test]
    fn nonces_and_dates_are_read_strictly() {
        assert!(nonce_is_valid(&new_nonce()));
        assert!(nonce_is_valid(&"a".repeat(16)));
        assert!(nonce_is_valid(&"a".repeat(64)));
        assert!(!nonce_is_valid(&"a".repeat(15)));
        assert!(!nonce_is_valid(&"a".repeat(65)));
        assert!(!nonce_is_valid("aaaaaaaaaaaaaaa="));
        assert!(!nonce_is_valid("aaaaaaaa/aaaaaaa"));
        assert_eq!(parse_date("1796140982"), Some(1_796_140_982));
        for bad in ["", "-1", "+5", "1.5", " 12", "1e9", "9999999999999"] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_round_trip_through_their_text_form_with_or_without_padding() {
        let key: Vec<u8> = (0..32).collect();
        let text = encode_key(&key);
        assert!(text.ends_with('='));
        assert_eq!(decode_key(&text).unwrap().as_slice(), key.as_slice());
        assert_eq!(
            decode_key(text.trim_end_matches('=')).unwrap().as_slice(),
            key.as_slice()
        );
        assert!(decode_key("not*base64").is_none());
    }
}
