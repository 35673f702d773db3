//! HSM keys over PKCS#11 (crate `cryptoki`), tested against SoftHSM2.
//!
//! Facts this code is built around (Debian's SoftHSM 2.6.1): the module is initialised once
//! per process with OS locking (concurrent `C_Initialize` can crash SoftHSM); a `Session` is
//! `Send` but not `Sync`, so signing takes a session from a small pool; Ed25519 keys need
//! `CKA_EC_PARAMS` for Ed25519 exactly (curve25519 parameters make keys that cannot sign);
//! `CKA_EC_POINT` comes back as `04 20` + 32 bytes; a wrong token label is not a PKCS#11
//! error, so this code says it.
//!
//! ## Recovery
//! An HSM that goes away and comes back must not need a restart. SoftHSM reads its token
//! directory only at `C_Initialize`: once its token files vanish, every call fails with
//! `CKR_GENERAL_ERROR` until the module is finalised and initialised again. So when an
//! operation fails with a code that says the device, the token, the session or the login is
//! gone ([`lost`]), the signer recovers and retries: a lost login or session is regained in
//! place (log in again, new sessions); a lost device or token, or a second failure, finalises
//! the module and initialises it again (at most once per [`REINIT_INTERVAL`], so a missing
//! token fails fast), finds the token again by its label (its slot may change), the key
//! handles by their labels (handles change), and checks it is the same key.
//!
//! The module is shared by every key of the process. Its state sits behind a read-write lock:
//! every PKCS#11 call is made under the read lock, re-initialisation takes the write lock, so
//! it never finalises the module under a running operation. Every session, slot and handle is
//! tagged with the module generation it was obtained under and never used under another:
//! a handle from an earlier instance may name someone else's session in the new one. Lock
//! order: module lock, then a key's state lock; the module lock is never taken twice by one
//! thread.

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
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// DER of OID 1.3.101.112 (id-Ed25519), the CKA_EC_PARAMS SoftHSM signs with.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];

/// The least time between two re-initialisations of a module. While the token is missing,
/// calls in between fail at once instead of finalising the module again.
pub const REINIT_INTERVAL: Duration = Duration::from_secs(1);

/// Idle sessions a key keeps.
const POOL: usize = 8;

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

/// What a failed call says is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The login (`CKR_USER_NOT_LOGGED_IN`; key handles invalid because private objects
    /// vanished with it): log in again and find the key again, in the same session.
    Login,
    /// The session (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`): open new sessions.
    Session,
    /// The device, the token or the module (`CKR_GENERAL_ERROR`, `CKR_TOKEN_NOT_PRESENT`,
    /// `CKR_DEVICE_REMOVED`, `CKR_DEVICE_ERROR`, `CKR_CRYPTOKI_NOT_INITIALIZED`…): finalise
    /// the module and initialise it again.
    Device,
}

/// What a PKCS#11 error says is gone, if anything: an HSM that can come back, after which the
/// same call succeeds. `None`: the error is the HSM's answer to the call.
pub fn lost(e: &CkError) -> Option<Loss> {
    let CkError::Pkcs11(rv, _) = e else {
        return None;
    };
    match rv {
        RvError::UserNotLoggedIn | RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => {
            Some(Loss::Login)
        }
        RvError::SessionHandleInvalid | RvError::SessionClosed => Some(Loss::Session),
        RvError::GeneralError
        | RvError::FunctionFailed
        | RvError::DeviceError
        | RvError::DeviceMemory
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::SlotIdInvalid
        | RvError::SessionCount
        | RvError::CryptokiNotInitialized
        | RvError::CantLock => Some(Loss::Device),
        _ => None,
    }
}

/// Why an HSM call did not give a value.
#[derive(Debug)]
enum Fault {
    /// Something is gone: recover and retry. `then` is the error to give if it is still
    /// missing after a full recovery (a key really deleted), instead of "unavailable".
    Lost {
        why: String,
        loss: Loss,
        then: Option<SignerError>,
    },
    /// The HSM's (or the configuration's) answer: retrying will not change it.
    Final(SignerError),
}

impl Fault {
    fn lost(loss: Loss, why: String) -> Fault {
        Fault::Lost {
            why,
            loss,
            then: None,
        }
    }
}

impl From<SignerError> for Fault {
    fn from(e: SignerError) -> Fault {
        Fault::Final(e)
    }
}

impl From<Fault> for SignerError {
    fn from(f: Fault) -> SignerError {
        match f {
            Fault::Lost { then: Some(e), .. } => e,
            Fault::Lost { why, .. } => SignerError::Unavailable(why),
            Fault::Final(e) => e,
        }
    }
}

/// Classifies a failed call made for `what`.
fn ck(what: &str) -> impl Fn(CkError) -> Fault + '_ {
    move |e| match lost(&e) {
        Some(loss) => Fault::lost(loss, format!("{what}: {e}")),
        None => Fault::Final(SignerError::Hsm(format!("{what}: {e}"))),
    }
}

/// Gives up a session after `loss`: one whose handle is invalid may share its number with a
/// new session by now, so it is dropped unclosed; any other is still ours to close.
fn discard(s: Session, loss: Option<Loss>) {
    if loss != Some(Loss::Session) {
        let _ = s.close();
    }
}

/// The error for an HSM's answer to `what`.
fn answer(what: &str) -> impl Fn(CkError) -> SignerError + '_ {
    move |e| SignerError::Hsm(format!("{what}: {e}"))
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// A PKCS#11 module loaded into this process, shared by all its keys. The library stays
/// loaded for the life of the process; it is finalised and initialised again to recover.
struct Module {
    path: PathBuf,
    pkcs11: Pkcs11,
    state: RwLock<ModuleState>,
}

struct ModuleState {
    /// C_Initialize succeeded and no C_Finalize came after it.
    live: bool,
    /// Counts initialisations: what was obtained under one is meaningless under another.
    generation: u64,
    /// When the module was last re-initialised (the rate limit).
    last_reinit: Option<Instant>,
    /// Why the last C_Initialize failed, while not live.
    failure: Option<String>,
}

/// A read hold on an initialised module: while one is held the module is not finalised.
struct Live<'a> {
    module: &'a Module,
    state: RwLockReadGuard<'a, ModuleState>,
}

impl Live<'_> {
    fn p11(&self) -> &Pkcs11 {
        &self.module.pkcs11
    }
    fn generation(&self) -> u64 {
        self.state.generation
    }
}

impl Module {
    /// Loads and initialises a module once per process; later calls get the same one.
    fn get(path: &Path) -> Result<Arc<Module>, SignerError> {
        static LOADED: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());
        let shown = path.display().to_string();
        let err = |reason: String| SignerError::Module {
            path: shown.clone(),
            reason,
        };
        let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = loaded.iter().find(|m| m.path == path) {
            return Ok(m.clone());
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
        match p.initialize(init_args()) {
            Ok(())
            | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
            Err(e) => return Err(err(format!("C_Initialize failed: {e}"))),
        }
        let m = Arc::new(Module {
            path: path.to_path_buf(),
            pkcs11: p,
            state: RwLock::new(ModuleState {
                live: true,
                generation: 0,
                last_reinit: None,
                failure: None,
            }),
        });
        loaded.push(m.clone());
        Ok(m)
    }

    fn read(&self) -> RwLockReadGuard<'_, ModuleState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The initialised module, initialising it again (rate-limited) when an earlier attempt
    /// left it uninitialised.
    fn live(&self) -> Result<Live<'_>, SignerError> {
        let state = self.read();
        if state.live {
            return Ok(Live {
                module: self,
                state,
            });
        }
        let (seen, why) = (state.generation, state.failure.clone());
        drop(state);
        let why = format!(
            "{} is not initialised (C_Initialize failed: {})",
            self.path.display(),
            why.as_deref().unwrap_or("?")
        );
        self.reinit(seen, &why)?;
        let state = self.read();
        if state.live {
            Ok(Live {
                module: self,
                state,
            })
        } else {
            Err(SignerError::Unavailable(format!(
                "{} is not initialised (C_Initialize failed: {})",
                self.path.display(),
                state.failure.as_deref().unwrap_or("?")
            )))
        }
    }

    /// Finalises the module and initialises it again, unless that already happened since
    /// generation `seen` (another thread did it: nothing to do), or happened less than
    /// [`REINIT_INTERVAL`] ago (then fails at once with `why`). Takes the write lock: the
    /// caller must hold no [`Live`].
    fn reinit(&self, seen: u64, why: &str) -> Result<(), SignerError> {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if st.generation != seen {
            return Ok(());
        }
        if let Some(t) = st.last_reinit.filter(|t| t.elapsed() < REINIT_INTERVAL) {
            return Err(SignerError::Unavailable(format!(
                "{why} (the module was re-initialised {} ms ago; the next attempt is allowed \
in {} ms)",
                t.elapsed().as_millis(),
                REINIT_INTERVAL.saturating_sub(t.elapsed()).as_millis()
            )));
        }
        let started = Instant::now();
        st.last_reinit = Some(started);
        if st.live {
            if let Err(e) = self.pkcs11.clone().finalize() {
                tracing::debug!(module = %self.path.display(), "C_Finalize: {e}");
            }
        }
        st.live = false;
        st.generation += 1;
        match self.pkcs11.initialize(init_args()) {
            Ok(())
            | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {
                st.live = true;
                st.failure = None;
                tracing::info!(
                    module = %self.path.display(),
                    generation = st.generation,
                    "PKCS#11 module re-initialised in {} ms",
                    started.elapsed().as_millis()
                );
            }
            Err(e) => {
                tracing::warn!(module = %self.path.display(), "C_Initialize failed: {e}");
                st.failure = Some(e.to_string());
            }
        }
        Ok(())
    }
}

/// Runs `f` under the live module; if it finds something gone, re-initialises the module
/// (rate-limited) and runs it once more. For the paths that open a key, list or make keys.
fn recovering<T>(
    module: &Module,
    f: impl Fn(&Live<'_>) -> Result<T, Fault>,
) -> Result<T, SignerError> {
    let (generation, why) = {
        let live = module.live()?;
        match f(&live) {
            Ok(v) => return Ok(v),
            Err(Fault::Lost { why, .. }) => (live.generation(), why),
            Err(f) => return Err(f.into()),
        }
    };
    tracing::warn!("HSM lost ({why}); re-initialising the PKCS#11 module and retrying");
    module.reinit(generation, &why)?;
    Ok(f(&module.live()?)?)
}

fn find_slot(p: &Pkcs11, cfg: &Pkcs11Config) -> Result<Slot, Fault> {
    let mut labels = Vec::new();
    let mut unreadable = None;
    for slot in p.get_slots_with_token().map_err(ck("listing slots"))? {
        // A slot that cannot be read (another token gone bad) must not hide this one.
        let info = match p.get_token_info(slot) {
            Ok(info) => info,
            Err(e) => {
                unreadable = Some(ck("reading a token")(e));
                continue;
            }
        };
        if info.token_initialized() && info.label() == cfg.token_label {
            return Ok(slot);
        }
        if info.token_initialized() {
            labels.push(format!("{:?}", info.label()));
        }
    }
    if let Some(f @ Fault::Lost { .. }) = unreadable {
        return Err(f);
    }
    Err(Fault::Final(SignerError::UnknownToken {
        label: cfg.token_label.clone(),
        module: cfg.module.display().to_string(),
        available: if labels.is_empty() {
            "none".into()
        } else {
            labels.join(", ")
        },
    }))
}

#[derive(Debug, Clone, Copy)]
struct Handles {
    private: ObjectHandle,
    seal: Option<ObjectHandle>,
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

/// What a key holds under one module generation.
struct KeyState {
    /// The module generation `slot`, `handles` and `sessions` belong to.
    generation: u64,
    slot: Option<Slot>,
    handles: Option<Handles>,
    /// Idle logged-in sessions (opened without close-on-drop: one of an earlier generation is
    /// dropped without C_CloseSession, whose handle may now be another session's).
    sessions: Vec<Session>,
    /// Since when calls fail, for the recovery log line.
    failing_since: Option<Instant>,
}

struct Inner {
    module: Arc<Module>,
    cfg: Pkcs11Config,
    pin: secrecy::SecretString,
    public_key: PublicKeyBytes,
    state: Mutex<KeyState>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the idle sessions if they belong to the module as it is now; never wait for
        // the lock (a re-initialisation closes them all anyway).
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let sessions = std::mem::take(&mut st.sessions);
        if let Ok(m) = self.module.state.try_read() {
            if m.live && m.generation == st.generation {
                for s in sessions {
                    let _ = s.close();
                }
            }
        }
    }
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

fn login(session: &Session, pin: &secrecy::SecretString, token: &str) -> Result<(), Fault> {
    match session.login(UserType::User, Some(pin)) {
        // Login state belongs to the token in this process: another session already logged in.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, Function::Login)) => Ok(()),
        Err(CkError::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            Function::Login,
        )) => Err(Fault::Final(SignerError::WrongPin {
            label: token.to_string(),
        })),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Fault::Final(SignerError::Hsm(
            format!("the PIN of token {token:?} is locked"),
        ))),
        Err(e) => Err(ck(&format!("login to token {token:?}"))(e)),
    }
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

/// Opens a session (without close-on-drop) under `live` and runs `f` on it: on success the
/// session comes back with `f`'s value, on failure it is closed.
fn with_new_session<T>(
    live: &Live<'_>,
    slot: Slot,
    f: impl FnOnce(&Session) -> Result<T, Fault>,
) -> Result<(T, Session), Fault> {
    let s = live
        .p11()
        .open_rw_session_no_drop(slot)
        .map_err(ck("opening a session"))?;
    match f(&s) {
        Ok(v) => Ok((v, s)),
        Err(e) => {
            let _ = s.close();
            Err(e)
        }
    }
}

/// The key's signing key pair, found in a logged-in session: the private key's handles and
/// the public key, checked against the suite.
fn find_key(s: &Session, cfg: &Pkcs11Config) -> Result<(Handles, PublicKeyBytes), Fault> {
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
fn generate_in(s: &Session, cfg: &Pkcs11Config) -> Result<(), Fault> {
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

impl Pkcs11Key {
    /// Opens the configured key: loads the module, finds the token by label, logs in, finds the
    /// key and checks that it fits the configured suite.
    pub fn open(cfg: &Pkcs11Config) -> Result<Pkcs11Key, SignerError> {
        let module = Module::get(&cfg.module)?;
        let (generation, slot, handles, public_key, session, pin) = recovering(&module, |live| {
            let slot = find_slot(live.p11(), cfg)?;
            let pin = cfg.pin.read()?;
            let ((handles, public_key), session) = with_new_session(live, slot, |s| {
                login(s, &pin, &cfg.token_label)?;
                find_key(s, cfg)
            })?;
            Ok((live.generation(), slot, handles, public_key, session, pin))
        })?;
        Ok(Pkcs11Key(Arc::new(Inner {
            module,
            cfg: cfg.clone(),
            pin,
            public_key,
            state: Mutex::new(KeyState {
                generation,
                slot: Some(slot),
                handles: Some(handles),
                sessions: vec![session],
                failing_since: None,
            }),
        })))
    }

    /// Generates the signing key pair and the AES-256 sealing key inside the token (token
    /// objects; private and secret keys sensitive, never extractable; the private key can only
    /// sign), then opens it. Refuses to replace an existing key.
    pub fn generate(cfg: &Pkcs11Config) -> Result<Pkcs11Key, SignerError> {
        let module = Module::get(&cfg.module)?;
        recovering(&module, |live| {
            let slot = find_slot(live.p11(), cfg)?;
            let pin = cfg.pin.read()?;
            let ((), s) = with_new_session(live, slot, |s| {
                login(s, &pin, &cfg.token_label)?;
                generate_in(s, cfg)
            })?;
            let _ = s.close();
            Ok(())
        })?;
        // The module lock is released: open takes it again.
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

    fn state(&self) -> MutexGuard<'_, KeyState> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A logged-in session of the module generation `live` holds, and the key's handles under
    /// it: an idle one from the pool, or a new one (finding the token by label and logging in).
    /// When the handles are unknown (a new generation, or the login was lost), it logs in again
    /// and finds the key again by label, checking that it is the same key.
    fn checkout(&self, live: &Live<'_>) -> Result<(Session, Handles), Fault> {
        let inner = &self.0;
        let (pooled, known, slot) = {
            let mut st = self.state();
            if st.generation != live.generation() {
                // Everything here is from an earlier module instance: forget it, never close it.
                st.sessions.clear();
                st.slot = None;
                st.handles = None;
                st.generation = live.generation();
            }
            (st.sessions.pop(), st.handles, st.slot)
        };
        let (s, slot) = match (pooled, known, slot) {
            (Some(s), Some(h), _) => return Ok((s, h)),
            (Some(s), None, Some(slot)) => (s, slot),
            (pooled, _, slot) => {
                if let Some(s) = pooled {
                    discard(s, None);
                }
                let slot = match slot {
                    Some(slot) => slot,
                    None => find_slot(live.p11(), &inner.cfg).map_err(|f| match f {
                        // The token was there when the key was opened: it is gone, not
                        // misconfigured.
                        Fault::Final(e @ SignerError::UnknownToken { .. }) => {
                            Fault::lost(Loss::Device, e.to_string())
                        }
                        other => other,
                    })?,
                };
                let s = live
                    .p11()
                    .open_rw_session_no_drop(slot)
                    .map_err(ck("opening a session"))?;
                (s, slot)
            }
        };
        let ready = (|| {
            login(&s, &inner.pin, &inner.cfg.token_label)?;
            if let Some(h) = known {
                return Ok(h);
            }
            let (handles, public_key) = find_key(&s, &inner.cfg).map_err(|f| match f {
                // Missing now, after the key was opened: a token still coming back, or a key
                // really deleted; recovery tells which.
                Fault::Final(e @ SignerError::MissingKey { .. }) => Fault::Lost {
                    why: e.to_string(),
                    loss: Loss::Device,
                    then: Some(e),
                },
                other => other,
            })?;
            if public_key != inner.public_key {
                return Err(Fault::Final(SignerError::SelfTest(format!(
                    "the key labelled {:?} in token {:?} is no longer the key this signer was \
opened with",
                    inner.cfg.key_label, inner.cfg.token_label
                ))));
            }
            Ok(handles)
        })();
        match ready {
            Ok(handles) => {
                let mut st = self.state();
                if st.generation == live.generation() {
                    st.slot = Some(slot);
                    st.handles = Some(handles);
                }
                Ok((s, handles))
            }
            Err(f) => {
                let loss = match &f {
                    Fault::Lost { loss, .. } => Some(*loss),
                    Fault::Final(_) => None,
                };
                discard(s, loss);
                Err(f)
            }
        }
    }

    /// Returns a session that works to the pool (or closes it: still under `live`, so the
    /// close reaches the instance it was opened in).
    fn checkin(&self, live: &Live<'_>, s: Session) {
        let extra = {
            let mut st = self.state();
            if st.generation == live.generation() && st.sessions.len() < POOL {
                st.sessions.push(s);
                None
            } else {
                Some(s)
            }
        };
        if let Some(s) = extra {
            let _ = s.close();
        }
    }

    /// After a lost login: find the key again (and log in again) on the next checkout.
    /// After lost sessions: forget the idle ones (unclosed: their handles may be reused).
    fn forget(&self, loss: Loss) {
        let mut st = self.state();
        st.handles = None;
        if loss == Loss::Session {
            st.sessions.clear();
        }
    }

    /// Runs `op` with a logged-in session and the key's handles. When it fails because
    /// something is gone ([`lost`]), it recovers and tries again: a lost login or session is
    /// regained (log in again, new sessions, the key found again by label); a lost device,
    /// token or module, or a second failure, re-initialises the module (at most once per
    /// [`REINIT_INTERVAL`]: otherwise this fails at once), finds the token again by label and
    /// the key by its labels, and tries once more. Any other error is the HSM's answer, given
    /// to `answer`. A failure after that is the caller's to handle (the engine skips the pulse
    /// and records the gap); the next call starts over.
    fn run<T>(
        &self,
        what: &str,
        op: impl Fn(&Session, Handles) -> Result<T, CkError>,
        answer: impl Fn(CkError) -> SignerError,
    ) -> Result<T, SignerError> {
        let inner = &self.0;
        let (mut regained, mut reinitialised) = (false, false);
        loop {
            let (generation, outcome) = {
                let live = match inner.module.live() {
                    Ok(live) => live,
                    Err(SignerError::Unavailable(why)) => {
                        return Err(self.failed(SignerError::Unavailable(format!(
                            "token {:?}: {why}",
                            inner.cfg.token_label
                        ))))
                    }
                    Err(e) => return Err(self.failed(e)),
                };
                let outcome = match self.checkout(&live) {
                    Err(f) => Err(f),
                    Ok((s, h)) => match op(&s, h) {
                        Ok(v) => {
                            self.checkin(&live, s);
                            Ok(v)
                        }
                        Err(e) => match lost(&e) {
                            Some(loss) => {
                                if loss == Loss::Login {
                                    // The session itself is fine: it logs in again next time.
                                    self.checkin(&live, s);
                                } else {
                                    discard(s, Some(loss));
                                }
                                Err(Fault::lost(loss, format!("{what}: {e}")))
                            }
                            None => {
                                self.checkin(&live, s);
                                Err(Fault::Final(answer(e)))
                            }
                        },
                    },
                };
                (live.generation(), outcome)
            };
            // The module lock is released here: reinit takes it for writing.
            let (why, loss, then) = match outcome {
                Ok(v) => {
                    self.succeeded();
                    return Ok(v);
                }
                Err(Fault::Final(e)) => return Err(self.failed(e)),
                Err(Fault::Lost { why, loss, then }) => (why, loss, then),
            };
            let why = format!("token {:?}: {why}", inner.cfg.token_label);
            if reinitialised {
                return Err(self.failed(then.unwrap_or(SignerError::Unavailable(why))));
            }
            if loss != Loss::Device && !regained {
                tracing::warn!(
                    key = %inner.cfg.key_label,
                    "HSM {} lost ({why}); logging in again and retrying",
                    if loss == Loss::Login { "login" } else { "session" },
                );
                self.forget(loss);
                regained = true;
                continue;
            }
            tracing::warn!(
                key = %inner.cfg.key_label,
                "HSM lost ({why}); re-initialising the PKCS#11 module and retrying"
            );
            if let Err(e) = inner.module.reinit(generation, &why) {
                return Err(self.failed(e));
            }
            reinitialised = true;
        }
    }

    /// Notes a failure (for the recovery log line) and passes it on.
    fn failed(&self, e: SignerError) -> SignerError {
        if e.is_transient() {
            self.state().failing_since.get_or_insert_with(Instant::now);
        }
        e
    }

    fn succeeded(&self) {
        let since = self.state().failing_since.take();
        if let Some(t) = since {
            tracing::info!(
                key = %self.0.cfg.key_label,
                token = %self.0.cfg.token_label,
                "HSM available again after {} ms",
                t.elapsed().as_millis()
            );
        }
    }

    /// Signs `m` in the token with the key's suite.
    pub fn sign_raw(&self, m: &[u8]) -> Result<Vec<u8>, SignerError> {
        let suite = self.0.cfg.suite;
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
    let module = Module::get(&cfg.module)?;
    let live = module.live()?;
    let pkcs11 = live.p11();
    match find_slot(pkcs11, cfg) {
        Ok(_) => return Ok(false),
        Err(Fault::Final(SignerError::UnknownToken { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    let mut free = None;
    for slot in pkcs11.get_slots_with_token().map_err(ck("listing slots"))? {
        if !pkcs11
            .get_token_info(slot)
            .map_err(ck("reading a token"))?
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
        .map_err(ck("initialising the token"))?;
    // Closed (on drop) before `live` is released.
    let s = pkcs11
        .open_rw_session(slot)
        .map_err(ck("opening a session"))?;
    s.login(UserType::So, Some(&so))
        .map_err(ck("security officer login"))?;
    s.init_pin(&user).map_err(ck("setting the user PIN"))?;
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
    let module = Module::get(&cfg.module)?;
    recovering(&module, |live| {
        let slot = find_slot(live.p11(), cfg)?;
        let pin = cfg.pin.read()?;
        let (out, s) = with_new_session(live, slot, |s| {
            login(s, &pin, &cfg.token_label)?;
            list_in(s)
        })?;
        let _ = s.close();
        Ok(out)
    })
}

fn list_in(s: &Session) -> Result<Vec<KeyInfo>, Fault> {
    let mut out = Vec::new();
    for (class, name) in [
        (ObjectClass::PRIVATE_KEY, "private"),
        (ObjectClass::PUBLIC_KEY, "public"),
        (ObjectClass::SECRET_KEY, "secret"),
    ] {
        for h in s
            .find_objects(&[Attribute::Class(class)])
            .map_err(ck("listing keys"))?
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
                .map_err(ck("reading a key"))?;
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
