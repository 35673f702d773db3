//! The fresh key that signs a generated chain, and its certificate: self-signed, valid ten
//! years, its subject marked TEST ONLY as every software key's is, so that nobody can take a
//! generated chain for a beacon's.
//!
//! The signer crate issues the beacon's own certificates (also from an HSM); this one is
//! issued here because the auditor's tools must not depend on the HSM stack.

use lavabeacon_format::cert::{Certificate, TEST_ONLY};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::suite::{Ed25519KeySigner, PulseSigner, RsaKeySigner};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, KeyUsagePurpose, RemoteKeyPair,
    SignatureAlgorithm,
};
use std::time::{Duration, UNIX_EPOCH};

/// What signs the pulses, and the certificate that names its key.
pub(super) struct Identity {
    pub signer: Box<dyn PulseSigner + Sync>,
    pub certificate: Certificate,
}

/// Signs a certificate's to-be-signed bytes.
type SignFn = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// A key as rcgen asks for it to sign a certificate.
struct CertKey {
    /// Ed25519: the 32-byte key; RSA: the PKCS#1 RSAPublicKey DER.
    public_key: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
    sign: SignFn,
}

impl RemoteKeyPair for CertKey {
    fn public_key(&self) -> &[u8] {
        &self.public_key
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        (self.sign)(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

fn failed(e: &dyn std::fmt::Display) -> String {
    format!("making the test key: {e}")
}

/// A fresh key of `suite`: `ed25519` (cipherSuite 2), or `rsa`
/// ([`lavabeacon_format::suite::RSA_KEY_BITS`], the size a bare `rsa` means everywhere),
/// `rsa-2048`, `rsa-3072`, `rsa-4096` (cipherSuite 0). Its certificate is valid from
/// `valid_from` (the chain's first pulse) until ten years after `valid_until` (its last pulse
/// or now), both Unix milliseconds: a verifier holds every pulse to its certificate's validity.
pub(super) fn fresh(suite: &str, valid_from: i64, valid_until: i64) -> Result<Identity, String> {
    let validity = Validity {
        from: valid_from,
        until: valid_until,
    };
    match suite {
        "ed25519" => ed25519(validity),
        // RSA-2048 by default: about a thousand pulses a second, the signatures being the cost.
        "rsa" => rsa(lavabeacon_format::suite::RSA_KEY_BITS, validity),
        "rsa-2048" => rsa(2048, validity),
        "rsa-3072" => rsa(3072, validity),
        "rsa-4096" => rsa(4096, validity),
        other => Err(format!(
            "--suite {other:?}: use ed25519, rsa (4096 bits), rsa-2048, rsa-3072 or rsa-4096"
        )),
    }
}

/// The span a generated certificate covers, Unix milliseconds.
#[derive(Clone, Copy)]
struct Validity {
    from: i64,
    until: i64,
}

fn ed25519(validity: Validity) -> Result<Identity, String> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let for_cert = key.clone();
    let certificate = self_signed(
        CertKey {
            public_key: key.verifying_key().to_bytes().to_vec(),
            algorithm: &rcgen::PKCS_ED25519,
            sign: Box::new(move |m| {
                Ok(ed25519_dalek::Signer::sign(&for_cert, m)
                    .to_bytes()
                    .to_vec())
            }),
        },
        validity,
    )?;
    Ok(Identity {
        signer: Box::new(Ed25519KeySigner::new(key, certificate.id)),
        certificate,
    })
}

fn rsa(bits: usize, validity: Validity) -> Result<Identity, String> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).map_err(|e| failed(&e))?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| failed(&e))?;
    let public_key = key
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| failed(&e))?
        .as_bytes()
        .to_vec();
    // The pulse signer's operation (PKCS#1 v1.5, SHA-512) signs the certificate too.
    let for_cert =
        RsaKeySigner::from_pkcs8(pkcs8.as_bytes(), Hash512::ZERO).map_err(|e| failed(&e))?;
    let certificate = self_signed(
        CertKey {
            public_key,
            algorithm: &rcgen::PKCS_RSA_SHA512,
            sign: Box::new(move |m| for_cert.sign(m).map_err(|e| e.to_string())),
        },
        validity,
    )?;
    let signer =
        RsaKeySigner::from_pkcs8(pkcs8.as_bytes(), certificate.id).map_err(|e| failed(&e))?;
    Ok(Identity {
        signer: Box::new(signer),
        certificate,
    })
}

/// The TEST ONLY certificate of `key`, signed by the key itself.
fn self_signed(key: CertKey, validity: Validity) -> Result<Certificate, String> {
    let e = |e: rcgen::Error| failed(&e);
    let kp = KeyPair::from_remote(Box::new(key)).map_err(e)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("lavabeacon generated chain {TEST_ONLY}"),
    );
    dn.push(DnType::OrganizationName, "lavabeacon");
    params.distinguished_name = dn;
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    params.not_before = at(validity.from).into();
    params.not_after = (at(validity.until) + Duration::from_secs(10 * 365 * 86_400)).into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let der = params.self_signed(&kp).map_err(e)?.der().to_vec();
    Certificate::from_der(&der).map_err(|e| failed(&e))
}
