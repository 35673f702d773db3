//! What a key does: sign, random bytes, its attributes, certificates; and
//! [`Pkcs11Signer`], the key with its certificate, which the engine signs and seals with.

use super::key::Pkcs11Key;
use super::objects::{strip_zeros, PublicKeyBytes};
use super::recovery::answer;
use crate::cert::{issue, CaFiles, CertKey, Validity};
use crate::{Signer, SignerError, Suite};
use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use lavabeacon_format::cert::{Certificate, PublicKey};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::suite::{PulseSigner, SignError};
use zeroize::Zeroizing;

/// Security-relevant attributes of the private key, as the token reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyAttributes {
    /// CKA_TOKEN: stored in the token.
    pub token: bool,
    /// CKA_SENSITIVE.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE.
    pub extractable: bool,
    /// CKA_ALWAYS_SENSITIVE.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE.
    pub never_extractable: bool,
    /// CKA_SIGN.
    pub sign: bool,
    /// CKA_DECRYPT.
    pub decrypt: bool,
    /// CKA_UNWRAP.
    pub unwrap: bool,
    /// CKA_DERIVE.
    pub derive: bool,
}

impl Pkcs11Key {
    /// Signs `m` in the token with the key's suite.
    pub fn sign_raw(&self, m: &[u8]) -> Result<Vec<u8>, SignerError> {
        let suite = self.config().suite;
        self.run(
            "signing",
            |s, h| match suite {
                Suite::Ed25519 => s.sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    h.private,
                    m,
                ),
                Suite::Rsa { .. } => s.sign(&Mechanism::Sha512RsaPkcs, h.private, m),
            },
            answer("signing"),
        )
    }

    /// Random bytes from the token's generator (C_GenerateRandom).
    pub fn random(&self, out: &mut [u8]) -> Result<(), SignerError> {
        let n = out.len();
        let bytes = self.run(
            "generating random bytes",
            |s, _| s.generate_random_vec(n as u32),
            answer("generating random bytes"),
        )?;
        out.copy_from_slice(&bytes);
        Ok(())
    }

    /// The private key's attributes, as the token reports them.
    pub fn attributes(&self) -> Result<KeyAttributes, SignerError> {
        let attrs = self.run(
            "reading key attributes",
            |s, h| {
                s.get_attributes(
                    h.private,
                    &[
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                        AttributeType::Sign,
                        AttributeType::Decrypt,
                        AttributeType::Unwrap,
                        AttributeType::Derive,
                    ],
                )
            },
            answer("reading key attributes"),
        )?;
        let mut k = KeyAttributes::default();
        for a in attrs {
            match a {
                Attribute::Token(b) => k.token = b,
                Attribute::Sensitive(b) => k.sensitive = b,
                Attribute::Extractable(b) => k.extractable = b,
                Attribute::AlwaysSensitive(b) => k.always_sensitive = b,
                Attribute::NeverExtractable(b) => k.never_extractable = b,
                Attribute::Sign(b) => k.sign = b,
                Attribute::Decrypt(b) => k.decrypt = b,
                Attribute::Unwrap(b) => k.unwrap = b,
                Attribute::Derive(b) => k.derive = b,
                _ => {}
            }
        }
        Ok(k)
    }

    /// Issues a certificate for this key: self-signed inside the token, or by an operator CA.
    pub fn issue_certificate(
        &self,
        common_name: &str,
        test: bool,
        validity: Validity,
        ca: Option<&CaFiles>,
    ) -> Result<Vec<u8>, SignerError> {
        let key = self.clone();
        let (public_key, algorithm): (Vec<u8>, &'static rcgen::SignatureAlgorithm) =
            match self.public_key() {
                PublicKeyBytes::Ed25519(k) => (k.to_vec(), &rcgen::PKCS_ED25519),
                PublicKeyBytes::Rsa { modulus, exponent } => {
                    use rsa::pkcs1::EncodeRsaPublicKey;
                    let pk = rsa::RsaPublicKey::new(
                        rsa::BigUint::from_bytes_be(modulus),
                        rsa::BigUint::from_bytes_be(exponent),
                    )
                    .map_err(|e| SignerError::Certificate(format!("RSA public key: {e}")))?;
                    let der = pk
                        .to_pkcs1_der()
                        .map_err(|e| SignerError::Certificate(e.to_string()))?;
                    (der.as_bytes().to_vec(), &rcgen::PKCS_RSA_SHA512)
                }
            };
        issue(
            CertKey {
                public_key,
                algorithm,
                sign: Box::new(move |m| key.sign_raw(m)),
            },
            common_name,
            test,
            validity,
            ca,
        )
    }

    /// A signer for this key with its certificate: the certificate must carry this key, and
    /// the self-test must pass.
    pub fn into_signer(self, certificate_der: &[u8]) -> Result<Pkcs11Signer, SignerError> {
        let certificate = Certificate::from_der(certificate_der)
            .map_err(|e| SignerError::Certificate(e.to_string()))?;
        let matches = match (&certificate.key, self.public_key()) {
            (PublicKey::Ed25519(vk), PublicKeyBytes::Ed25519(k)) => vk.as_bytes() == k,
            (PublicKey::Rsa { pkcs1_der, .. }, PublicKeyBytes::Rsa { modulus, .. }) => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                use rsa::traits::PublicKeyParts;
                rsa::RsaPublicKey::from_pkcs1_der(pkcs1_der)
                    .is_ok_and(|k| k.n().to_bytes_be() == strip_zeros(modulus))
            }
            _ => false,
        };
        if !matches {
            return Err(SignerError::SelfTest(format!(
                "certificate {} is not for key {:?} in token {:?}",
                certificate.id.short(),
                self.config().key_label,
                self.config().token_label
            )));
        }
        let test = certificate.subject.contains(crate::TEST_ONLY);
        let signer = Pkcs11Signer {
            key: self,
            certificate,
            test,
        };
        crate::self_test(&signer)?;
        Ok(signer)
    }
}

/// An HSM key with its certificate: the production signer.
pub struct Pkcs11Signer {
    key: Pkcs11Key,
    certificate: Certificate,
    test: bool,
}

impl Pkcs11Signer {
    fn missing_seal_key(&self) -> SignerError {
        let cfg = &self.key.config();
        SignerError::MissingKey {
            key: format!("{}-seal", cfg.key_label),
            token: cfg.token_label.clone(),
        }
    }

    /// The key.
    pub fn key(&self) -> &Pkcs11Key {
        &self.key
    }
}

impl PulseSigner for Pkcs11Signer {
    fn cipher_suite(&self) -> u32 {
        self.key.config().suite.code()
    }
    fn certificate_id(&self) -> Hash512 {
        self.certificate.id
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key
            .sign_raw(message)
            .map_err(|e| SignError(e.to_string()))
    }
}

impl Signer for Pkcs11Signer {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        // SoftHSM builds with assertions crash on empty AAD; there is always some here.
        let aad = if aad.is_empty() {
            b"lavabeacon".as_slice()
        } else {
            aad
        };
        let sealed = self.key.run(
            "sealing",
            |s, h| {
                let Some(key) = h.seal else { return Ok(None) };
                let mut iv = [0u8; 12];
                s.generate_random_slice(&mut iv)?;
                let ct = s.encrypt(
                    &Mechanism::AesGcm(GcmParams::new(&mut iv, aad, 128.into())?),
                    key,
                    plaintext,
                )?;
                Ok(Some([iv.as_slice(), &ct].concat()))
            },
            answer("sealing"),
        )?;
        sealed.ok_or_else(|| self.missing_seal_key())
    }
    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        if sealed.len() < 12 + 16 {
            return Err(SignerError::Unseal(format!(
                "{} bytes is too short",
                sealed.len()
            )));
        }
        let aad = if aad.is_empty() {
            b"lavabeacon".as_slice()
        } else {
            aad
        };
        // A failed authentication is the token's answer (Unseal: the value is lost); an HSM
        // that is gone is not (Unavailable: the value may open later), and is retried.
        let opened = self.key.run(
            "unsealing",
            |s, h| {
                let Some(key) = h.seal else { return Ok(None) };
                let mut iv: [u8; 12] = sealed[..12].try_into().expect("12 bytes");
                let params = GcmParams::new(&mut iv, aad, 128.into())?;
                match s.decrypt(&Mechanism::AesGcm(params), key, &sealed[12..]) {
                    Ok(v) => Ok(Some(Ok(Zeroizing::new(v)))),
                    Err(CkError::Pkcs11(
                        RvError::EncryptedDataInvalid
                        | RvError::EncryptedDataLenRange
                        | RvError::DataInvalid
                        | RvError::DataLenRange,
                        _,
                    )) => Ok(Some(Err(()))),
                    // SoftHSM answers CKR_GENERAL_ERROR both for a GCM tag that does not match
                    // and for token files that are gone: the same key sealing something tells
                    // which.
                    Err(e @ CkError::Pkcs11(RvError::GeneralError, Function::Decrypt)) => {
                        let mut iv = [0u8; 12];
                        s.generate_random_slice(&mut iv)?;
                        let probe = GcmParams::new(&mut iv, b"lavabeacon probe", 128.into())?;
                        match s.encrypt(&Mechanism::AesGcm(probe), key, &[0u8; 16]) {
                            Ok(_) => Ok(Some(Err(()))),
                            Err(_) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            },
            answer("unsealing"),
        )?;
        let opened = opened.ok_or_else(|| self.missing_seal_key())?;
        opened.map_err(|()| {
            SignerError::Unseal(
                "authentication failed (another key, another place, or altered)".into(),
            )
        })
    }
    fn random(&self, out: &mut [u8]) -> Result<(), SignerError> {
        self.key.random(out)
    }
    fn is_test(&self) -> bool {
        self.test
    }
}
