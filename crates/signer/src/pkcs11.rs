//! HSM keys over PKCS#11 (crate `cryptoki`), tested against SoftHSM2.
//!
//! Facts this code is built around (Debian's SoftHSM 2.6.1): the module is initialised once
//! per process with OS locking (concurrent `C_Initialize` can crash SoftHSM); a `Session` is
//! `Send` but not `Sync`, so signing takes a session from a small pool; Ed25519 keys need
//! `CKA_EC_PARAMS` for Ed25519 exactly (curve25519 parameters make keys that cannot sign);
//! `CKA_EC_POINT` comes back as `04 20` + 32 bytes; a wrong token label is not a PKCS#11
//! error, so this code says it.

use crate::cert::{issue, CaFiles, CertKey};
use crate::{PinSource, Signer, SignerError, Suite};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use lavabeacon_format::cert::{Certificate, PublicKey};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::suite::{PulseSigner, SignError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// DER of OID 1.3.101.112 (id-Ed25519), the CKA_EC_PARAMS SoftHSM signs with.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];

/// How to reach a key in a token.
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// Where the user PIN comes from.
    pub pin: PinSource,
    /// The signing key pair's label; the sealing key is labelled `<key_label>-seal`.
    pub key_label: String,
    /// The suite the key must serve.
    pub suite: Suite,
}

/// Loads and initialises a module once per process; later calls get the same context.
fn module(path: &Path) -> Result<Pkcs11, SignerError> {
    static LOADED: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let shown = path.display().to_string();
    let err = |reason: String| SignerError::Module {
        path: shown.clone(),
        reason,
    };
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(p.clone());
    }
    if !path.exists() {
        return Err(err(
            "no such file (install softhsm2, or set the path of your HSM's module)".into(),
        ));
    }
    let p = Pkcs11::new(path).map_err(|e| match e {
        CkError::MissingSymbol(_) => {
            err("is not a PKCS#11 module (it has no C_GetFunctionList)".into())
        }
        other => err(format!("cannot be loaded: {other}")),
    })?;
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
        Err(e) => return Err(err(format!("C_Initialize failed: {e}"))),
    }
    loaded.push((path.to_path_buf(), p.clone()));
    Ok(p)
}

fn hsm(what: &str) -> impl Fn(CkError) -> SignerError + '_ {
    move |e| SignerError::Hsm(format!("{what}: {e}"))
}

fn find_slot(p: &Pkcs11, cfg: &Pkcs11Config) -> Result<Slot, SignerError> {
    let mut labels = Vec::new();
    for slot in p.get_slots_with_token().map_err(hsm("listing slots"))? {
        let info = p.get_token_info(slot).map_err(hsm("reading a token"))?;
        if info.token_initialized() && info.label() == cfg.token_label {
            return Ok(slot);
        }
        if info.token_initialized() {
            labels.push(format!("{:?}", info.label()));
        }
    }
    Err(SignerError::UnknownToken {
        label: cfg.token_label.clone(),
        module: cfg.module.display().to_string(),
        available: if labels.is_empty() {
            "none".into()
        } else {
            labels.join(", ")
        },
    })
}

#[derive(Debug, Clone, Copy)]
struct Handles {
    private: ObjectHandle,
    seal: Option<ObjectHandle>,
}

fn find_handles(s: &Session, cfg: &Pkcs11Config) -> Result<Handles, SignerError> {
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

struct Inner {
    pkcs11: Pkcs11,
    cfg: Pkcs11Config,
    slot: Slot,
    pin: secrecy::SecretString,
    /// Object handles can change when the token logs in again; they are found anew then.
    handles: Mutex<Handles>,
    public_key: PublicKeyBytes,
    /// Idle logged-in sessions; a signer takes one per operation.
    sessions: Mutex<Vec<Session>>,
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

/// A key in a token, ready to sign. Cheap to clone (shared).
#[derive(Clone)]
pub struct Pkcs11Key(Arc<Inner>);

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs11Key({:?} in token {:?}, {})",
            self.0.cfg.key_label,
            self.0.cfg.token_label,
            self.0.cfg.suite.name()
        )
    }
}

fn login(session: &Session, pin: &secrecy::SecretString, token: &str) -> Result<(), SignerError> {
    match session.login(UserType::User, Some(pin)) {
        // Login state belongs to the token in this process: another session already logged in.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, Function::Login)) => Ok(()),
        Err(CkError::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            Function::Login,
        )) => Err(SignerError::WrongPin {
            label: token.to_string(),
        }),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(SignerError::Hsm(format!(
            "the PIN of token {token:?} is locked"
        ))),
        Err(e) => Err(SignerError::Hsm(format!("login to token {token:?}: {e}"))),
    }
}

fn open_session(
    p: &Pkcs11,
    slot: Slot,
    pin: &secrecy::SecretString,
    token: &str,
) -> Result<Session, SignerError> {
    let s = p.open_rw_session(slot).map_err(hsm("opening a session"))?;
    login(&s, pin, token)?;
    Ok(s)
}

fn find_one(
    s: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, SignerError> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(hsm("finding a key"))?;
    Ok(found.into_iter().next())
}

impl Pkcs11Key {
    /// Opens the configured key: loads the module, finds the token by label, logs in, finds the
    /// key and checks that it fits the configured suite.
    pub fn open(cfg: &Pkcs11Config) -> Result<Pkcs11Key, SignerError> {
        let pkcs11 = module(&cfg.module)?;
        let slot = find_slot(&pkcs11, cfg)?;
        let pin = cfg.pin.read()?;
        let s = open_session(&pkcs11, slot, &pin, &cfg.token_label)?;
        let handles = find_handles(&s, cfg)?;
        let public = find_one(&s, ObjectClass::PUBLIC_KEY, &cfg.key_label)?.ok_or_else(|| {
            SignerError::MissingKey {
                key: cfg.key_label.clone(),
                token: cfg.token_label.clone(),
            }
        })?;
        let public_key = read_public_key(&s, public, cfg)?;
        Ok(Pkcs11Key(Arc::new(Inner {
            pkcs11,
            cfg: cfg.clone(),
            slot,
            pin,
            handles: Mutex::new(handles),
            public_key,
            sessions: Mutex::new(vec![s]),
        })))
    }

    /// Generates the signing key pair and the AES-256 sealing key inside the token (token
    /// objects; private and secret keys sensitive, never extractable; the private key can only
    /// sign), then opens it. Refuses to replace an existing key.
    pub fn generate(cfg: &Pkcs11Config) -> Result<Pkcs11Key, SignerError> {
        let pkcs11 = module(&cfg.module)?;
        let slot = find_slot(&pkcs11, cfg)?;
        let pin = cfg.pin.read()?;
        let s = open_session(&pkcs11, slot, &pin, &cfg.token_label)?;
        if find_one(&s, ObjectClass::PRIVATE_KEY, &cfg.key_label)?.is_some() {
            return Err(SignerError::Config(format!(
                "token {:?} already has a key labelled {:?}; choose another label to rotate",
                cfg.token_label, cfg.key_label
            )));
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
            .map_err(hsm("generating the key pair"))?;
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
        .map_err(hsm("generating the sealing key"))?;
        drop(s);
        Pkcs11Key::open(cfg)
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKeyBytes {
        &self.0.public_key
    }

    /// The configuration this key was opened with.
    pub fn config(&self) -> &Pkcs11Config {
        &self.0.cfg
    }

    /// Runs `f` with a logged-in session from the pool. If it fails, the session is dropped, a
    /// fresh one opened (logging in again) and the key handles found anew, and `f` tried once
    /// more: an HSM that restarted or dropped its sessions does not stop the beacon. A second
    /// failure is the caller's to handle (the engine skips the pulse and records the gap).
    fn with_session<T>(
        &self,
        what: &str,
        f: impl Fn(&Session, Handles) -> Result<T, CkError>,
    ) -> Result<T, SignerError> {
        let inner = &self.0;
        let pooled = inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        if let Some(s) = pooled {
            let handles = *inner.handles.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(v) = f(&s, handles) {
                inner
                    .sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(s);
                return Ok(v);
            }
        }
        let s = self.fresh_session()?;
        let handles = find_handles(&s, &inner.cfg)?;
        *inner.handles.lock().unwrap_or_else(|p| p.into_inner()) = handles;
        let v = f(&s, handles).map_err(hsm(what))?;
        let mut pool = inner.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(s);
        }
        Ok(v)
    }

    fn fresh_session(&self) -> Result<Session, SignerError> {
        let inner = &self.0;
        open_session(
            &inner.pkcs11,
            inner.slot,
            &inner.pin,
            &inner.cfg.token_label,
        )
    }

    /// Signs `m` in the token with the key's suite.
    pub fn sign_raw(&self, m: &[u8]) -> Result<Vec<u8>, SignerError> {
        let suite = self.0.cfg.suite;
        self.with_session("signing", |s, h| match suite {
            Suite::Ed25519 => s.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                h.private,
                m,
            ),
            Suite::Rsa { .. } => s.sign(&Mechanism::Sha512RsaPkcs, h.private, m),
        })
    }

    /// Random bytes from the token's generator (C_GenerateRandom).
    pub fn random(&self, out: &mut [u8]) -> Result<(), SignerError> {
        let n = out.len();
        let bytes = self.with_session("generating random bytes", |s, _| {
            s.generate_random_vec(n as u32)
        })?;
        out.copy_from_slice(&bytes);
        Ok(())
    }

    /// The private key's attributes, as the token reports them.
    pub fn attributes(&self) -> Result<KeyAttributes, SignerError> {
        let attrs = self.with_session("reading key attributes", |s, h| {
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
        })?;
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
        years: i32,
        ca: Option<&CaFiles>,
    ) -> Result<Vec<u8>, SignerError> {
        let key = self.clone();
        let (public_key, algorithm): (Vec<u8>, &'static rcgen::SignatureAlgorithm) =
            match &self.0.public_key {
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
            years,
            ca,
        )
    }

    /// A signer for this key with its certificate: the certificate must carry this key, and
    /// the self-test must pass.
    pub fn into_signer(self, certificate_der: &[u8]) -> Result<Pkcs11Signer, SignerError> {
        let certificate = Certificate::from_der(certificate_der)
            .map_err(|e| SignerError::Certificate(e.to_string()))?;
        let matches = match (&certificate.key, &self.0.public_key) {
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
                self.0.cfg.key_label,
                self.0.cfg.token_label
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

/// Initialises a token labelled `cfg.token_label` in a free slot and sets its user PIN (from
/// `cfg.pin`); the security officer PIN comes from `so_pin`. For SoftHSM2 development tokens:
/// real HSMs are initialised with their vendor's tools. Does nothing if the token exists.
/// Returns whether a token was created.
pub fn init_token(cfg: &Pkcs11Config, so_pin: &PinSource) -> Result<bool, SignerError> {
    let pkcs11 = module(&cfg.module)?;
    match find_slot(&pkcs11, cfg) {
        Ok(_) => return Ok(false),
        Err(SignerError::UnknownToken { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut free = None;
    for slot in pkcs11
        .get_slots_with_token()
        .map_err(hsm("listing slots"))?
    {
        if !pkcs11
            .get_token_info(slot)
            .map_err(hsm("reading a token"))?
            .token_initialized()
        {
            free = Some(slot);
            break;
        }
    }
    let slot = free.ok_or_else(|| {
        SignerError::Hsm(format!(
            "{} has no free slot for a new token",
            cfg.module.display()
        ))
    })?;
    let so = so_pin.read()?;
    let user = cfg.pin.read()?;
    pkcs11
        .init_token(slot, &so, &cfg.token_label)
        .map_err(hsm("initialising the token"))?;
    let s = pkcs11
        .open_rw_session(slot)
        .map_err(hsm("opening a session"))?;
    s.login(UserType::So, Some(&so))
        .map_err(hsm("security officer login"))?;
    s.init_pin(&user).map_err(hsm("setting the user PIN"))?;
    Ok(true)
}

/// A key found in a token, for `lavabeacon keys list`.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// CKA_LABEL.
    pub label: String,
    /// `Ed25519`, `RSA-4096`, `AES` …
    pub kind: String,
    /// CKA_CLASS: private, public or secret.
    pub class: String,
    /// For private and secret keys: sensitive and never extractable.
    pub protected: Option<bool>,
}

/// Every key object in the configured token (no key needs to exist yet).
pub fn list_keys(cfg: &Pkcs11Config) -> Result<Vec<KeyInfo>, SignerError> {
    let pkcs11 = module(&cfg.module)?;
    let slot = find_slot(&pkcs11, cfg)?;
    let pin = cfg.pin.read()?;
    let s = open_session(&pkcs11, slot, &pin, &cfg.token_label)?;
    let mut out = Vec::new();
    for (class, name) in [
        (ObjectClass::PRIVATE_KEY, "private"),
        (ObjectClass::PUBLIC_KEY, "public"),
        (ObjectClass::SECRET_KEY, "secret"),
    ] {
        for h in s
            .find_objects(&[Attribute::Class(class)])
            .map_err(hsm("listing keys"))?
        {
            let attrs = s
                .get_attributes(
                    h,
                    &[
                        AttributeType::Label,
                        AttributeType::KeyType,
                        AttributeType::Modulus,
                        AttributeType::Sensitive,
                        AttributeType::NeverExtractable,
                    ],
                )
                .map_err(hsm("reading a key"))?;
            let (mut label, mut kind, mut bits, mut sensitive, mut never) =
                (String::new(), String::from("?"), None, None, None);
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::KeyType(k) if k == KeyType::EC_EDWARDS => kind = "Ed25519".into(),
                    Attribute::KeyType(k) if k == KeyType::RSA => kind = "RSA".into(),
                    Attribute::KeyType(k) if k == KeyType::AES => kind = "AES".into(),
                    Attribute::KeyType(k) => kind = k.to_string(),
                    Attribute::Modulus(m) => bits = Some(strip_zeros(&m).len() * 8),
                    Attribute::Sensitive(b) => sensitive = Some(b),
                    Attribute::NeverExtractable(b) => never = Some(b),
                    _ => {}
                }
            }
            if let (Some(b), "RSA") = (bits, kind.as_str()) {
                kind = format!("RSA-{b}");
            }
            out.push(KeyInfo {
                label,
                kind,
                class: name.into(),
                protected: match (sensitive, never) {
                    (Some(a), Some(b)) => Some(a && b),
                    _ => None,
                },
            });
        }
    }
    Ok(out)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    &b[n..]
}

fn read_public_key(
    s: &Session,
    public: ObjectHandle,
    cfg: &Pkcs11Config,
) -> Result<PublicKeyBytes, SignerError> {
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
        .map_err(hsm("reading the public key"))?;
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
                    return Err(SignerError::Hsm(format!(
                        "unexpected Ed25519 public key encoding ({} bytes)",
                        p.len()
                    )))
                }
            };
            Ok(PublicKeyBytes::Ed25519(raw.try_into().expect("32 bytes")))
        }
        Suite::Rsa { bits } => {
            let (Some(modulus), Some(exponent)) = (n.filter(|_| kind == Some(KeyType::RSA)), e)
            else {
                return Err(mismatch(&format!("an RSA-{bits} key")));
            };
            if strip_zeros(&modulus).len() * 8 != bits as usize {
                return Err(mismatch(&format!("an RSA-{bits} key")));
            }
            Ok(PublicKeyBytes::Rsa { modulus, exponent })
        }
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
        let cfg = &self.key.0.cfg;
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
        self.key.0.cfg.suite.code()
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
        let sealed = self.key.with_session("sealing", |s, h| {
            let Some(key) = h.seal else { return Ok(None) };
            let mut iv = [0u8; 12];
            s.generate_random_slice(&mut iv)?;
            let ct = s.encrypt(
                &Mechanism::AesGcm(GcmParams::new(&mut iv, aad, 128.into())?),
                key,
                plaintext,
            )?;
            Ok(Some([iv.as_slice(), &ct].concat()))
        })?;
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
        // A session of its own, not through with_session: a failed decryption is an answer,
        // not a reason to retry.
        let s = self.key.fresh_session()?;
        let key = find_handles(&s, &self.key.0.cfg)?
            .seal
            .ok_or_else(|| self.missing_seal_key())?;
        let mut iv: [u8; 12] = sealed[..12].try_into().expect("12 bytes");
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(hsm("GCM parameters"))?;
        s.decrypt(&Mechanism::AesGcm(params), key, &sealed[12..])
            .map(Zeroizing::new)
            .map_err(|_| {
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
