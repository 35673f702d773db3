//! A software Ed25519 key: for development beacons and tests only. Its certificate always says
//! `TEST ONLY - NOT FOR SECURITY USE`, and a beacon using it marks itself as test.

use crate::cert::{issue_self_signed, CertKey, Validity};
use crate::{Signer, SignerError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::SigningKey;
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::suite::{PulseSigner, SignError};
use rand::RngCore;
use std::path::Path;
use zeroize::Zeroizing;

/// A software Ed25519 signer with its certificate and a sealing key derived from its seed.
pub struct SoftwareSigner {
    key: SigningKey,
    seal_key: Zeroizing<[u8; 32]>,
    certificate: Certificate,
}

impl SoftwareSigner {
    /// A signer for `seed`, with `certificate_der` if given (it must be for this key), or a
    /// freshly issued self-signed TEST certificate.
    pub fn new(
        seed: &[u8; 32],
        certificate_der: Option<&[u8]>,
    ) -> Result<SoftwareSigner, SignerError> {
        let key = SigningKey::from_bytes(seed);
        let mut seal_key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha512>::new(Some(b"lavabeacon"), seed)
            .expand(b"lavabeacon seal key v1", seal_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA512 length");
        let der = match certificate_der {
            Some(d) => d.to_vec(),
            // From 1970: a software key is a TEST key (its certificate says so), made to build
            // test chains of any date, past ones included.
            None => self_signed(
                &key,
                Validity {
                    not_before: std::time::UNIX_EPOCH,
                    not_after: Validity::years(10).not_after,
                },
            )?,
        };
        let certificate =
            Certificate::from_der(&der).map_err(|e| SignerError::Certificate(e.to_string()))?;
        let signer = SoftwareSigner {
            key,
            seal_key,
            certificate,
        };
        crate::self_test(&signer)?;
        Ok(signer)
    }

    /// A signer for `seed` with a fresh self-signed TEST certificate valid as `validity` says
    /// (tests of what happens at a certificate's ends).
    pub fn with_validity(
        seed: &[u8; 32],
        validity: Validity,
    ) -> Result<SoftwareSigner, SignerError> {
        let der = self_signed(&SigningKey::from_bytes(seed), validity)?;
        SoftwareSigner::new(seed, Some(&der))
    }

    /// Loads the key seed from `dir/software-key.seed` and its certificate from
    /// `dir/software-key.pem`, creating both (the seed with mode 0600) the first time.
    pub fn load_or_create(dir: &Path) -> Result<SoftwareSigner, SignerError> {
        let io = |p: &Path, e: std::io::Error| SignerError::Config(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let seed_path = dir.join("software-key.seed");
        let cert_path = dir.join("software-key.pem");
        if !seed_path.exists() {
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(seed.as_mut());
            write_private(&seed_path, seed.as_ref()).map_err(|e| io(&seed_path, e))?;
        }
        let bytes = Zeroizing::new(std::fs::read(&seed_path).map_err(|e| io(&seed_path, e))?);
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SignerError::Config(format!(
                "{} must hold exactly 32 bytes",
                seed_path.display()
            ))
        })?;
        let cert = match std::fs::read(&cert_path) {
            Ok(pem) => Some(
                lavabeacon_format::cert::pem_blocks(&pem)
                    .map_err(|e| SignerError::Certificate(format!("{}: {e}", cert_path.display())))?
                    .remove(0),
            ),
            Err(_) => None,
        };
        let signer = SoftwareSigner::new(&seed, cert.as_deref())?;
        if cert.is_none() {
            std::fs::write(&cert_path, signer.certificate.to_pem())
                .map_err(|e| io(&cert_path, e))?;
        }
        Ok(signer)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)?.write_all(bytes)
}

impl PulseSigner for SoftwareSigner {
    fn cipher_suite(&self) -> u32 {
        2
    }
    fn certificate_id(&self) -> Hash512 {
        self.certificate.id
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(ed25519_dalek::Signer::sign(&self.key, message)
            .to_bytes()
            .to_vec())
    }
}

impl Signer for SoftwareSigner {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        let cipher = Aes256Gcm::new_from_slice(self.seal_key.as_ref()).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SignerError::Hsm("sealing failed".into()))?;
        Ok([nonce.as_slice(), &ct].concat())
    }
    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        if sealed.len() < 12 + 16 {
            return Err(SignerError::Unseal(format!(
                "{} bytes is too short",
                sealed.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(self.seal_key.as_ref()).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                SignerError::Unseal(
                    "authentication failed (another key, another place, or altered)".into(),
                )
            })
    }
    fn random(&self, out: &mut [u8]) -> Result<(), SignerError> {
        rand::rngs::OsRng.fill_bytes(out);
        Ok(())
    }
    fn is_test(&self) -> bool {
        true
    }
}

/// A self-signed TEST certificate for `key` (DER).
fn self_signed(key: &SigningKey, validity: Validity) -> Result<Vec<u8>, SignerError> {
    let k = key.clone();
    issue_self_signed(
        CertKey {
            public_key: key.verifying_key().to_bytes().to_vec(),
            algorithm: &rcgen::PKCS_ED25519,
            sign: Box::new(move |m| Ok(ed25519_dalek::Signer::sign(&k, m).to_bytes().to_vec())),
        },
        "lavabeacon software key",
        true,
        validity,
    )
}
