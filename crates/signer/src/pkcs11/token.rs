//! A token: found by its label (its slot may change), logged in to, sessions opened on it;
//! initialising a development token, and listing the keys it holds.

use super::config::Pkcs11Config;
use super::module::{Live, Module};
use super::objects::strip_zeros;
use super::recovery::{ck, recovering, Fault};
use crate::{PinSource, SignerError};
use cryptoki::context::{Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

pub(super) fn find_slot(p: &Pkcs11, cfg: &Pkcs11Config) -> Result<Slot, Fault> {
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

pub(super) fn login(
    session: &Session,
    pin: &secrecy::SecretString,
    token: &str,
) -> Result<(), Fault> {
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

/// Opens a session (without close-on-drop) under `live` and runs `f` on it: on success the
/// session comes back with `f`'s value, on failure it is closed.
pub(super) fn with_new_session<T>(
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

/// What `lavabeacon keys retire` does to a key that no longer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// Its private key may no longer sign (CKA_SIGN false; the objects stay, so what it made
    /// can still be traced to it).
    Disable,
    /// Its private key, public key and sealing key are destroyed.
    Destroy,
}

/// Retires the key labelled `label` in the configured token; returns how many objects were
/// changed. A label with no private key is [`SignerError::MissingKey`].
pub fn retire_key(cfg: &Pkcs11Config, label: &str, how: Retire) -> Result<usize, SignerError> {
    let module = Module::get(&cfg.module)?;
    recovering(&module, |live| {
        let slot = find_slot(live.p11(), cfg)?;
        let pin = cfg.pin.read()?;
        let (n, s) = with_new_session(live, slot, |s| {
            login(s, &pin, &cfg.token_label)?;
            let find = |class: ObjectClass, label: &str| {
                s.find_objects(&[
                    Attribute::Class(class),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map_err(ck("finding the key"))
            };
            let private = find(ObjectClass::PRIVATE_KEY, label)?;
            if private.is_empty() {
                return Err(Fault::Final(SignerError::MissingKey {
                    key: label.to_string(),
                    token: cfg.token_label.clone(),
                }));
            }
            match how {
                Retire::Disable => {
                    for h in &private {
                        s.update_attributes(*h, &[Attribute::Sign(false)])
                            .map_err(ck("marking the key unable to sign"))?;
                    }
                    Ok(private.len())
                }
                Retire::Destroy => {
                    let mut all = private;
                    all.extend(find(ObjectClass::PUBLIC_KEY, label)?);
                    all.extend(find(ObjectClass::SECRET_KEY, &format!("{label}-seal"))?);
                    for h in &all {
                        s.destroy_object(*h).map_err(ck("destroying the key"))?;
                    }
                    Ok(all.len())
                }
            }
        })?;
        let _ = s.close();
        Ok(n)
    })
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
    /// For private keys: whether it may sign (false once `keys retire` disabled it).
    pub can_sign: Option<bool>,
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
                        AttributeType::Sign,
                    ],
                )
                .map_err(ck("reading a key"))?;
            let (mut label, mut kind, mut bits, mut sensitive, mut never, mut sign) =
                (String::new(), String::from("?"), None, None, None, None);
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
                    Attribute::Sign(b) if class == ObjectClass::PRIVATE_KEY => sign = Some(b),
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
                can_sign: sign,
            });
        }
    }
    Ok(out)
}
