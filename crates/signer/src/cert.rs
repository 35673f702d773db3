//! X.509 certificates for pulse keys, signed by the key itself (in the HSM for PKCS#11 keys).

use crate::{SignerError, TEST_ONLY};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, RemoteKeyPair, SignatureAlgorithm,
};
use std::time::{Duration, SystemTime};

/// Signs a certificate's to-be-signed bytes with the key.
pub type SignFn<'a> = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, SignerError> + Send + Sync + 'a>;

/// A key that can sign a certificate: its public key as the certificate carries it, and a
/// signing operation.
pub struct CertKey<'a> {
    /// Ed25519: the 32-byte key; RSA: the PKCS#1 RSAPublicKey DER.
    pub public_key: Vec<u8>,
    /// `rcgen::PKCS_ED25519` or `rcgen::PKCS_RSA_SHA512`.
    pub algorithm: &'static SignatureAlgorithm,
    /// Signs the certificate's to-be-signed bytes.
    pub sign: SignFn<'a>,
}

struct Remote(CertKey<'static>);

impl RemoteKeyPair for Remote {
    fn public_key(&self) -> &[u8] {
        &self.0.public_key
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        (self.0.sign)(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm
    }
}

/// An operator's certificate authority, given as files: its certificate and private key (PEM).
pub struct CaFiles {
    /// The CA certificate (PEM).
    pub certificate_pem: String,
    /// The CA private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// When a certificate is valid: a verifier holds every pulse's timeStamp to it, and the engine
/// never signs outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// When it starts (X.509 keeps whole seconds: a fraction is dropped).
    pub not_before: SystemTime,
    /// When it ends: pulses stamped up to this second, itself included, are inside it (the
    /// engine and the verifier read it so); a fraction is dropped.
    pub not_after: SystemTime,
}

impl Validity {
    /// From now, for `length` (at most [`MAX_YEARS`]: X.509 times end in 9999).
    pub fn from_now(length: Duration) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now,
            not_after: now + length.min(Duration::from_secs(MAX_YEARS * YEAR)),
        }
    }

    /// From now, for `years` years of 365 days (1 to [`MAX_YEARS`]).
    pub fn years(years: u32) -> Validity {
        Validity::from_now(Duration::from_secs(YEAR * u64::from(years.max(1))))
    }
}

/// A year, as validity lengths count it: 365 days of seconds.
const YEAR: u64 = 365 * 86_400;

/// The longest validity issued, in years.
pub const MAX_YEARS: u64 = 100;

impl Validity {}

/// Issues a certificate for `key`, valid as `validity` says: self-signed (inside the HSM for a
/// PKCS#11 key), or signed by an operator CA. `test` puts `TEST ONLY - NOT FOR SECURITY USE` in
/// the subject, as every certificate of a software key or test source must carry.
pub fn issue(
    key: CertKey<'static>,
    common_name: &str,
    test: bool,
    validity: Validity,
    ca: Option<&CaFiles>,
) -> Result<Vec<u8>, SignerError> {
    let err = |what: &str, e: rcgen::Error| SignerError::Certificate(format!("{what}: {e}"));
    let kp = KeyPair::from_remote(Box::new(Remote(key))).map_err(|e| err("the key", e))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| err("parameters", e))?;
    let mut dn = DistinguishedName::new();
    let cn = if test {
        format!("{common_name} {TEST_ONLY}")
    } else {
        common_name.to_string()
    };
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "lavabeacon");
    params.distinguished_name = dn;
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = match ca {
        None => params
            .self_signed(&kp)
            .map_err(|e| err("signing the certificate", e))?,
        Some(ca) => {
            let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|e| err("the CA key", e))?;
            // Only the CA's name and key matter for issuing; this object is never published.
            let issuer = CertificateParams::from_ca_cert_pem(&ca.certificate_pem)
                .map_err(|e| err("the CA certificate", e))?
                .self_signed(&ca_key)
                .map_err(|e| err("the CA certificate", e))?;
            params
                .signed_by(&kp, &issuer, &ca_key)
                .map_err(|e| err("signing with the CA", e))?
        }
    };
    Ok(cert.der().to_vec())
}

/// A self-signed certificate for `key` (see [`issue`]).
pub fn issue_self_signed(
    key: CertKey<'static>,
    common_name: &str,
    test: bool,
    validity: Validity,
) -> Result<Vec<u8>, SignerError> {
    issue(key, common_name, test, validity, None)
}
