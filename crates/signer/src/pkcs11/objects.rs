//! The key's objects in a token, found by their labels: the signing key pair (its public
//! half checked against the configured suite) and the `<label>-seal` AES key; and making them.

use super::config::Pkcs11Config;
use super::recovery::{ck, Fault};
use crate::{SignerError, Suite};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// DER of OID 1.3.101.112 (id-Ed25519), the CKA_EC_PARAMS SoftHSM signs with.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];

#[derive(Debug, Clone, Copy)]
pub(super) struct Handles {
    pub(super) private: ObjectHandle,
    pub(super) seal: Option<ObjectHandle>,
}

fn find_handles(s: &Session, cfg: &Pkcs11Config) -> Result<Handles, Fault> {
    let private = find_one(s, ObjectClass::PRIVATE_KEY, &cfg.key_label)?.ok_or_else(|| {
        SignerError::MissingKey {
            key: cfg.key_label.clone(),
            token: cfg.token_label.clone(),
        }
    })?;
    let seal = find_one(
        s,
        ObjectClass::SECRET_KEY,
        &format!("{}-seal", cfg.key_label),
    )?;
    Ok(Handles { private, seal })
}

/// The public half of an HSM key, as a certificate carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyBytes {
    /// The 32-byte Ed25519 key.
    Ed25519([u8; 32]),
    /// RSA modulus and public exponent, big-endian.
    Rsa {
        /// n.
        modulus: Vec<u8>,
        /// e.
        exponent: Vec<u8>,
    },
}

fn find_one(s: &Session, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, Fault> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck("finding a key"))?;
    Ok(found.into_iter().next())
}

/// The key's signing key pair, found in a logged-in session: the private key's handles and
/// the public key, checked against the suite.
pub(super) fn find_key(
    s: &Session,
    cfg: &Pkcs11Config,
) -> Result<(Handles, PublicKeyBytes), Fault> {
    let handles = find_handles(s, cfg)?;
    let public = find_one(s, ObjectClass::PUBLIC_KEY, &cfg.key_label)?.ok_or_else(|| {
        SignerError::MissingKey {
            key: cfg.key_label.clone(),
            token: cfg.token_label.clone(),
        }
    })?;
    Ok((handles, read_public_key(s, public, cfg)?))
}

/// Makes the key pair and the sealing key in a logged-in session; refuses to replace a key.
pub(super) fn generate_in(s: &Session, cfg: &Pkcs11Config) -> Result<(), Fault> {
    if find_one(s, ObjectClass::PRIVATE_KEY, &cfg.key_label)?.is_some() {
        return Err(Fault::Final(SignerError::Config(format!(
            "token {:?} already has a key labelled {:?}; choose another label to rotate",
            cfg.token_label, cfg.key_label
        ))));
    }
    let label = cfg.key_label.as_bytes().to_vec();
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.clone()),
        Attribute::Id(id.to_vec()),
    ];
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label),
        Attribute::Id(id.to_vec()),
    ];
    let mechanism = match cfg.suite {
        Suite::Ed25519 => {
            public.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
            Mechanism::EccEdwardsKeyPairGen
        }
        Suite::Rsa { bits } => {
            public.push(Attribute::ModulusBits(u64::from(bits).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    s.generate_key_pair(&mechanism, &public, &private)
        .map_err(ck("generating the key pair"))?;
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(format!("{}-seal", cfg.key_label).into_bytes()),
            Attribute::Id(id.to_vec()),
        ],
    )
    .map_err(ck("generating the sealing key"))?;
    Ok(())
}

pub(super) fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    &b[n..]
}

fn read_public_key(
    s: &Session,
    public: ObjectHandle,
    cfg: &Pkcs11Config,
) -> Result<PublicKeyBytes, Fault> {
    let attrs = s
        .get_attributes(
            public,
            &[
                AttributeType::KeyType,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(ck("reading the public key"))?;
    let (mut kind, mut point, mut n, mut e) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => n = Some(m),
            Attribute::PublicExponent(x) => e = Some(x),
            _ => {}
        }
    }
    let found = match kind {
        Some(k) if k == KeyType::EC_EDWARDS => "an Ed25519 key".to_string(),
        Some(k) if k == KeyType::RSA => format!(
            "an RSA-{} key",
            n.as_ref().map_or(0, |m| strip_zeros(m).len() * 8)
        ),
        Some(k) => format!("a {k} key"),
        None => "a key of unknown type".into(),
    };
    let mismatch = |needs: &str| SignerError::KeyType {
        key: cfg.key_label.clone(),
        found: found.clone(),
        suite: cfg.suite.name(),
        needs: needs.to_string(),
    };
    match cfg.suite {
        Suite::Ed25519 => {
            let p = point
                .filter(|_| kind == Some(KeyType::EC_EDWARDS))
                .ok_or_else(|| mismatch("an Ed25519 key"))?;
            // DER OCTET STRING 04 20 ‖ key, or the raw 32 bytes from some tokens.
            let raw = match p.as_slice() {
                [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
                raw if raw.len() == 32 => raw,
                _ => {
                    return Err(Fault::Final(SignerError::Hsm(format!(
                        "unexpected Ed25519 public key encoding ({} bytes)",
                        p.len()
                    ))))
                }
            };
            Ok(PublicKeyBytes::Ed25519(raw.try_into().expect("32 bytes")))
        }
        Suite::Rsa { bits } => {
            let (Some(modulus), Some(exponent)) = (n.filter(|_| kind == Some(KeyType::RSA)), e)
            else {
                return Err(mismatch(&format!("an RSA-{bits} key")).into());
            };
            if strip_zeros(&modulus).len() * 8 != bits as usize {
                return Err(mismatch(&format!("an RSA-{bits} key")).into());
            }
            Ok(PublicKeyBytes::Rsa { modulus, exponent })
        }
    }
}
