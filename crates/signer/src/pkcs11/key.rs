//! [`Pkcs11Key`]: a key in a token, its pool of logged-in sessions, and the one call path
//! (`run`) that recovers a lost login, session, token or device and retries.

use super::config::Pkcs11Config;
use super::module::{Live, Module};
use super::objects::{find_key, generate_in, Handles, PublicKeyBytes};
use super::recovery::{ck, discard, lost, recovering, Fault, Loss};
use super::token::{find_slot, login, with_new_session};
use crate::SignerError;
use cryptoki::error::Error as CkError;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Idle sessions a key keeps.
const POOL: usize = 8;

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
        if self.module.is_current_now(st.generation) {
            for s in sessions {
                let _ = s.close();
            }
        }
    }
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
    pub(super) fn run<T>(
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
}
