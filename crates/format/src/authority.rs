//! The operator's certificate authorities (`verify --ca FILE`): whether a pulse certificate was
//! issued by one of them. A certificate chains when its issuer name is an authority's subject
//! name (compared as RFC 4514 text) and its signature verifies under that authority's key (RSA PKCS#1 v1.5 with SHA-256,
//! -384 or -512, ECDSA P-256 or P-384, or Ed25519: what CAs sign with; `ring` checks it). One
//! level: the authority given signs the pulse certificate (give an intermediate CA to trust
//! it). An authority's own validity is returned so the verifier can hold every pulse to it
//! too.

use crate::cert::{pem_blocks, CertError, CertLoadError, Certificate};
use der::{Decode, Encode};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use std::path::Path;

/// One authority: its name, key and validity, read from its certificate.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Its subject, RFC 4514 style: what an issuer name is compared with.
    pub subject: String,
    key_algorithm: String,
    curve: Option<String>,
    key: Vec<u8>,
    /// Start of its validity, Unix seconds.
    pub not_before: i64,
    /// End of its validity, Unix seconds.
    pub not_after: i64,
}

/// The authorities a verifier holds certificates to.
#[derive(Debug, Clone, Default)]
pub struct Authorities {
    cas: Vec<Authority>,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn seconds(t: &x509_cert::time::Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

impl Authority {
    /// Reads an authority from its certificate (DER). Any key type a CA may have is kept; an
    /// unsupported one is only refused when it would have to verify a signature.
    pub fn from_der(der: &[u8]) -> Result<Authority, CertError> {
        let cert =
            x509_cert::Certificate::from_der(der).map_err(|e| CertError::BadDer(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
            .map(|o| o.to_string());
        Ok(Authority {
            subject: tbs.subject.to_string(),
            key_algorithm: spki.algorithm.oid.to_string(),
            curve,
            key: spki
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| CertError::BadDer("public key bit string has unused bits".into()))?
                .to_vec(),
            not_before: seconds(&tbs.validity.not_before),
            not_after: seconds(&tbs.validity.not_after),
        })
    }

    /// The `ring` algorithm for a certificate signature algorithm `oid` under this key.
    fn algorithm(&self, oid: &str) -> Result<&'static dyn VerificationAlgorithm, String> {
        let curve = self.curve.as_deref();
        Ok(match (self.key_algorithm.as_str(), curve, oid) {
            (OID_RSA, _, "1.2.840.113549.1.1.11") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (OID_RSA, _, "1.2.840.113549.1.1.12") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (OID_RSA, _, "1.2.840.113549.1.1.13") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (OID_EC, Some(OID_P256), "1.2.840.10045.4.3.2") => &signature::ECDSA_P256_SHA256_ASN1,
            (OID_EC, Some(OID_P256), "1.2.840.10045.4.3.3") => &signature::ECDSA_P256_SHA384_ASN1,
            (OID_EC, Some(OID_P384), "1.2.840.10045.4.3.2") => &signature::ECDSA_P384_SHA256_ASN1,
            (OID_EC, Some(OID_P384), "1.2.840.10045.4.3.3") => &signature::ECDSA_P384_SHA384_ASN1,
            (OID_ED25519, _, OID_ED25519) => &signature::ED25519,
            (key, curve, sig) => {
                return Err(format!(
                    "signature algorithm {sig} under a {key} key{} is not supported",
                    curve.map(|c| format!(" on curve {c}")).unwrap_or_default()
                ))
            }
        })
    }
}

impl Authorities {
    /// Authorities from PEM or DER bytes (a bundle may hold several).
    pub fn from_bytes(bytes: &[u8]) -> Result<Authorities, CertError> {
        let cas = pem_blocks(bytes)?
            .iter()
            .map(|der| Authority::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        if cas.is_empty() {
            return Err(CertError::NotACertificate);
        }
        Ok(Authorities { cas })
    }

    /// Authorities from a PEM or DER file.
    pub fn load_file(path: &Path) -> Result<Authorities, CertLoadError> {
        let shown = || path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CertLoadError::Io {
            path: shown(),
            source,
        })?;
        Authorities::from_bytes(&bytes).map_err(|source| CertLoadError::Cert {
            path: shown(),
            source,
        })
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// The authority that issued `cert`, its signature checked; `Err` says why none did.
    pub fn issuer_of(&self, cert: &Certificate) -> Result<&Authority, String> {
        let parsed = x509_cert::Certificate::from_der(&cert.der).map_err(|e| e.to_string())?;
        let tbs = &parsed.tbs_certificate;
        // Compared as text, not as DER: a CA tool may write the issuer's name with other
        // string types than the CA's certificate has (rcgen writes UTF8String), which RFC 5280
        // name matching ignores.
        let issuer = tbs.issuer.to_string();
        let signed = tbs.to_der().map_err(|e| e.to_string())?;
        let sig = parsed
            .signature
            .as_bytes()
            .ok_or("the signature bit string has unused bits")?;
        let oid = parsed.signature_algorithm.oid.to_string();
        let mut why = format!(
            "its issuer ({}) is none of the authorities given",
            tbs.issuer
        );
        for ca in self.cas.iter().filter(|ca| ca.subject == issuer) {
            match ca.algorithm(&oid) {
                Ok(alg) => match UnparsedPublicKey::new(alg, &ca.key).verify(&signed, sig) {
                    Ok(()) => return Ok(ca),
                    Err(_) => {
                        why = format!("its signature does not verify under {}'s key", ca.subject)
                    }
                },
                Err(e) => why = e,
            }
        }
        Err(why)
    }
}
