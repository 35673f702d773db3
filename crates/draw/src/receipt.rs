//! The registry's receipt: the beacon's signed statement that it held a draw's spec at a
//! given time, when the pulse that decides it was still at least two periods away.
//!
//! ```text
//! signed message = "lavabeacon draw receipt v1\n" ‖ RFC 8785 canonical JSON of the receipt
//!                  without its signatureValue
//! ```
//!
//! It is signed with the beacon's pulse key, under the cipher suite of its pulses. It can never
//! be taken for a pulse signature: a pulse's signed message starts with the 4-byte length of its
//! uri, and these bytes ("lava" = 1,818,326,625) would name a uri of 1.8 GB, which no verifier
//! reads; and no receipt message is a valid pulse message, nor the reverse.

use crate::spec::{canonical, DrawSpec};
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::suite::verify_signature;
use lavabeacon_format::time::parse_time_stamp;
use lavabeacon_format::Hash512;
use serde::{Deserialize, Serialize};

/// What starts every receipt's signed message.
pub const DOMAIN: &[u8] = b"lavabeacon draw receipt v1\n";

/// The receipt format's version.
pub const VERSION: u32 = 1;

/// The newest pulse the beacon had published when it registered the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewestPulse {
    /// Its chain.
    pub chain_index: u64,
    /// Its index.
    pub pulse_index: u64,
    /// Its time.
    pub time_stamp: String,
    /// Its outputValue (hex, upper case).
    pub output_value: String,
}

/// A receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receipt {
    /// [`VERSION`].
    pub version: u32,
    /// The draw's id (hex, lower case).
    pub draw_id: String,
    /// When the beacon registered it (RFC 3339, milliseconds).
    pub registered_at: String,
    /// The spec's targetTime.
    pub target_time: String,
    /// The beacon's period then, in milliseconds.
    pub period_ms: u64,
    /// The newest pulse then.
    pub newest: NewestPulse,
    /// The certificate of the key that signed (hex, lower case).
    pub certificate_id: String,
    /// The cipher suite of the signature (that of the beacon's pulses).
    pub cipher_suite: u32,
    /// The signature over [`Receipt::message`] (hex, upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_value: Option<String>,
}

impl Receipt {
    /// The signed message: [`DOMAIN`] and the canonical JSON of the receipt without its
    /// signature.
    pub fn message(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature_value = None;
        [DOMAIN, &canonical(&unsigned)].concat()
    }

    /// Why this receipt does not show that `spec` was registered in time, signed by a key of
    /// `certs` (nothing when it does).
    pub fn problems(&self, spec: &DrawSpec, certs: &CertificateSet) -> Vec<String> {
        let mut problems = Vec::new();
        if self.version != VERSION {
            problems.push(format!("receipt version {} is unknown", self.version));
        }
        if self.draw_id != spec.id_hex() {
            problems.push(format!(
                "the receipt is for draw {}, not this spec ({})",
                self.draw_id,
                spec.id_hex()
            ));
        }
        if self.target_time != spec.target_time {
            problems.push(format!(
                "the receipt's targetTime {} is not the spec's {}",
                self.target_time, spec.target_time
            ));
        }
        let registered = parse_time_stamp(&self.registered_at);
        let target = parse_time_stamp(&self.target_time);
        let newest = parse_time_stamp(&self.newest.time_stamp);
        match (registered, target, newest) {
            (Ok(r), Ok(t), Ok(n)) => {
                let period = i64::try_from(self.period_ms).unwrap_or(i64::MAX);
                if t < r.saturating_add(period.saturating_mul(2)) {
                    problems.push(format!(
                        "registered at {} for a pulse at {}: less than two periods ({} ms each) ahead, when the beacon may already know its value",
                        self.registered_at, self.target_time, self.period_ms
                    ));
                }
                if n > r {
                    problems.push(format!(
                        "the newest pulse named ({}) is after the registration ({})",
                        self.newest.time_stamp, self.registered_at
                    ));
                }
            }
            _ => problems.push("the receipt's times cannot be read".into()),
        }
        let signature = self.signature_value.as_deref().map(hex::decode);
        let certificate = hex::decode(&self.certificate_id)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .and_then(|id| certs.get(&Hash512::from(id)));
        match (signature, certificate) {
            (None, _) => problems.push("the receipt is not signed".into()),
            (Some(Err(_)), _) => problems.push("the receipt's signatureValue is not hex".into()),
            (Some(Ok(_)), None) => problems.push(format!(
                "the receipt is signed with certificate {}, which was not given",
                self.certificate_id
            )),
            (Some(Ok(sig)), Some(cert)) => {
                if let Err(e) = verify_signature(self.cipher_suite, &self.message(), &sig, cert) {
                    problems.push(format!("the receipt's signature: {e}"));
                }
            }
        }
        problems
    }

    /// The draw's entry in the beacon's transparency log ([`log_entry`] of this receipt).
    /// `None` when the receipt is unsigned, or its drawId or signatureValue is not the hex it
    /// must be.
    pub fn log_entry(&self) -> Option<Vec<u8>> {
        let id = <[u8; 64]>::try_from(hex::decode(&self.draw_id).ok()?).ok()?;
        let signature = hex::decode(self.signature_value.as_deref()?).ok()?;
        Some(log_entry(&id, &self.message(), &signature))
    }
}

/// A registered draw's entry in the beacon's transparency log (docs/transparency.md):
/// `lavabeacon_tlog::entry::Entry::Draw` of the draw's id and SHA-512(`message` ‖ `signature`),
/// the receipt's signed message ([`Receipt::message`]) and its signature bytes. Hashing the
/// receipt as signed, rather than its JSON, makes the log commit to exactly what the key
/// signed, whatever spelling the JSON is served in.
pub fn log_entry(draw_id: &[u8; 64], message: &[u8], signature: &[u8]) -> Vec<u8> {
    let receipt = *lavabeacon_format::hash::sha512(&[message, signature]).as_bytes();
    lavabeacon_tlog::entry::Entry::Draw {
        id: *draw_id,
        receipt,
    }
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BeaconRef, Pool};
    use lavabeacon_format::cert::parse_certificates;
    use lavabeacon_format::suite::PulseSigner;
    use lavabeacon_format::time::format_time_stamp;
    use lavabeacon_signer::software::SoftwareSigner;
    use lavabeacon_signer::Signer;

    fn spec(target_ms: i64) -> DrawSpec {
        DrawSpec {
            version: 1,
            title: "receipt test".into(),
            method: "lavabeacon-v1".into(),
            operation: "pick".into(),
            pool: Some(Pool::Entries {
                entries: vec!["a".into(), "b".into()],
            }),
            count: 1,
            weights: None,
            range: None,
            sources: None,
            beacon: BeaconRef {
                base_uri: "https://beacon.example.org/beacon/2.0".into(),
                chain_index: 1,
                certificate_id: "ab".repeat(64),
            },
            target_time: format_time_stamp(target_ms).unwrap(),
        }
    }

    /// A receipt for `spec` registered at `registered_ms`, signed by a software key; and the
    /// certificates to check it with.
    fn signed(spec: &DrawSpec, registered_ms: i64) -> (Receipt, CertificateSet) {
        let signer = SoftwareSigner::new(&[9; 32], None).unwrap();
        let mut receipt = Receipt {
            version: VERSION,
            draw_id: spec.id_hex(),
            registered_at: format_time_stamp(registered_ms).unwrap(),
            target_time: spec.target_time.clone(),
            period_ms: 60_000,
            newest: NewestPulse {
                chain_index: 1,
                pulse_index: 7,
                time_stamp: format_time_stamp(registered_ms - registered_ms % 60_000).unwrap(),
                output_value: "CD".repeat(64),
            },
            certificate_id: signer.certificate_id().to_hex_lower(),
            cipher_suite: signer.cipher_suite(),
            signature_value: None,
        };
        receipt.signature_value = Some(hex::encode_upper(signer.sign(&receipt.message()).unwrap()));
        let mut certs = CertificateSet::new();
        for c in parse_certificates(signer.certificate().to_pem().as_bytes()).unwrap() {
            certs.add(c);
        }
        (receipt, certs)
    }

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn a_receipt_signed_in_time_for_its_spec_verifies() {
        let s = spec(T + 120_000);
        let (r, certs) = signed(&s, T);
        assert_eq!(r.problems(&s, &certs), Vec::<String>::new());
        assert!(r
            .message()
            .starts_with(b"lavabeacon draw receipt v1\n{\"certificateId\":"));
    }

    #[test]
    fn a_changed_receipt_or_another_spec_fails_with_the_reason() {
        let s = spec(T + 120_000);
        let (r, certs) = signed(&s, T);
        let mut later = r.clone();
        later.registered_at = format_time_stamp(T + 1).unwrap();
        assert!(later
            .problems(&s, &certs)
            .iter()
            .any(|p| p.contains("signature")));
        let mut other = s.clone();
        other.count = 2;
        assert!(r
            .problems(&other, &certs)
            .iter()
            .any(|p| p.contains("not this spec")));
        assert!(r
            .problems(&s, &CertificateSet::new())
            .iter()
            .any(|p| p.contains("was not given")));
    }

    #[test]
    fn a_registration_less_than_two_periods_ahead_is_no_proof() {
        let s = spec(T + 119_999);
        let (r, certs) = signed(&s, T);
        let problems = r.problems(&s, &certs);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("less than two periods"));
    }

    #[test]
    fn a_receipts_log_entry_commits_to_the_draw_and_the_signed_receipt() {
        let s = spec(T + 120_000);
        let (r, _) = signed(&s, T);
        let entry = r.log_entry().unwrap();
        let signature = hex::decode(r.signature_value.as_deref().unwrap()).unwrap();
        let digest = lavabeacon_format::hash::sha512(&[&r.message(), &signature]);
        assert_eq!(
            lavabeacon_tlog::entry::Entry::parse(&entry),
            Some(lavabeacon_tlog::entry::Entry::Draw {
                id: s.id(),
                receipt: *digest.as_bytes(),
            })
        );
        let mut unsigned = r.clone();
        unsigned.signature_value = None;
        assert_eq!(unsigned.log_entry(), None);
    }
}
