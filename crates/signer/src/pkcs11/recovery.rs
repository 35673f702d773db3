//! What a failed PKCS#11 call says is gone ([`Loss`]), how each call site classifies its
//! errors ([`Fault`]), and the one retry of the paths that open, list or make keys. The retry
//! of a key's operations, which also regains sessions and logins, is `Pkcs11Key::run`.

use super::module::{Live, Module};
use crate::SignerError;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;

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
pub(super) enum Fault {
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
    pub(super) fn lost(loss: Loss, why: String) -> Fault {
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
pub(super) fn ck(what: &str) -> impl Fn(CkError) -> Fault + '_ {
    move |e| match lost(&e) {
        Some(loss) => Fault::lost(loss, format!("{what}: {e}")),
        None => Fault::Final(SignerError::Hsm(format!("{what}: {e}"))),
    }
}

/// Gives up a session after `loss`: one whose handle is invalid may share its number with a
/// new session by now, so it is dropped unclosed; any other is still ours to close.
pub(super) fn discard(s: Session, loss: Option<Loss>) {
    if loss != Some(Loss::Session) {
        let _ = s.close();
    }
}

/// The error for an HSM's answer to `what`.
pub(super) fn answer(what: &str) -> impl Fn(CkError) -> SignerError + '_ {
    move |e| SignerError::Hsm(format!("{what}: {e}"))
}

/// Runs `f` under the live module; if it finds something gone, re-initialises the module
/// (rate-limited) and runs it once more. For the paths that open a key, list or make keys.
pub(super) fn recovering<T>(
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
