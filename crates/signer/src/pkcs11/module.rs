//! The PKCS#11 module: loaded once per process and shared by every key, finalised and
//! initialised again to recover a lost device (at most once per [`REINIT_INTERVAL`]).

use crate::SignerError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// The least time between two re-initialisations of a module. While the token is missing,
/// calls in between fail at once instead of finalising the module again.
pub const REINIT_INTERVAL: Duration = Duration::from_secs(1);

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// A PKCS#11 module loaded into this process, shared by all its keys. The library stays
/// loaded for the life of the process; it is finalised and initialised again to recover.
pub(super) struct Module {
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
pub(super) struct Live<'a> {
    module: &'a Module,
    state: RwLockReadGuard<'a, ModuleState>,
}

impl Live<'_> {
    pub(super) fn p11(&self) -> &Pkcs11 {
        &self.module.pkcs11
    }
    pub(super) fn generation(&self) -> u64 {
        self.state.generation
    }
}

impl Module {
    /// Loads and initialises a module once per process; later calls get the same one.
    pub(super) fn get(path: &Path) -> Result<Arc<Module>, SignerError> {
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

    /// Whether `generation` is the live one, answered only if that needs no waiting for the
    /// lock (false otherwise): for closing sessions on drop, which must never block.
    pub(super) fn is_current_now(&self, generation: u64) -> bool {
        self.state
            .try_read()
            .is_ok_and(|m| m.live && m.generation == generation)
    }

    fn read(&self) -> RwLockReadGuard<'_, ModuleState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The initialised module, initialising it again (rate-limited) when an earlier attempt
    /// left it uninitialised.
    pub(super) fn live(&self) -> Result<Live<'_>, SignerError> {
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
    pub(super) fn reinit(&self, seen: u64, why: &str) -> Result<(), SignerError> {
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
