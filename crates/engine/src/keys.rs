//! The signing keys over the years: which key signs which slot, and the keys to open what
//! earlier keys sealed.
//!
//! The schedule is in the store ([`lavabeacon_store::KeySwitch`], written by `lavabeacon keys
//! rotate|switch`), so every engine, leader or standby, follows the same one: the first slot at
//! or after a switch's time is signed with its key, the pulse before it with the old one, and
//! the two link as any two pulses do (same chain, consecutive indexes); a switch that names a
//! higher chain starts that chain there instead (statusCode 1). Keys are opened by label
//! through a [`KeyRing`] the binary gives (the HSM); without one, a schedule that names another
//! key stops the signing at its time (the development software key does not rotate).
//!
//! A value sealed for the next pulse was sealed by the key in effect when it was made, so a
//! restart right after a switch opens it with [`Unsealing`]: every key this engine has opened,
//! tried in turn.

use crate::error::EngineError;
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::suite::{PulseSigner, SignError};
use lavabeacon_signer::{Signer, SignerError};
use lavabeacon_store::{KeySwitch, Store};
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Opens a signing key by its label, with its certificate: the HSM, for the engine.
pub trait KeyRing: Send + Sync {
    /// The key labelled `label`, signing with the certificate `certificate_der` (its key must
    /// be the certificate's), self-tested. Blocking (an HSM call).
    fn open(&self, label: &str, certificate_der: &[u8]) -> Result<Arc<dyn Signer>, SignerError>;
}

/// How long a key that would not open is not tried again (a retired one never will).
const RETRY_OPEN_MS: u128 = 60_000;

/// The keys an engine has opened, by certificate id, and the ring to open more.
pub(crate) struct Keys {
    ring: Option<Arc<dyn KeyRing>>,
    opened: HashMap<Hash512, Arc<dyn Signer>>,
    /// Keys that would not open, and when that was.
    failed: HashMap<Hash512, std::time::Instant>,
}

impl Keys {
    /// The key the engine starts with, and no ring yet.
    pub(crate) fn new(first: &Arc<dyn Signer>) -> Keys {
        let mut keys = Keys {
            ring: None,
            opened: HashMap::new(),
            failed: HashMap::new(),
        };
        keys.add(first.clone());
        keys
    }

    /// A key opened elsewhere (tried for unsealing, used when the schedule names it).
    pub(crate) fn add(&mut self, key: Arc<dyn Signer>) {
        self.opened.insert(key.certificate().id, key);
    }

    pub(crate) fn set_ring(&mut self, ring: Arc<dyn KeyRing>) {
        self.ring = Some(ring);
    }

    /// The signer `switch` names: one opened before, or opened now through the ring with the
    /// certificate the store holds.
    pub(crate) async fn signer_for(
        &mut self,
        store: &dyn Store,
        switch: &KeySwitch,
    ) -> Result<Arc<dyn Signer>, EngineError> {
        if let Some(s) = self.opened.get(&switch.certificate_id) {
            return Ok(s.clone());
        }
        let unavailable = |why: String| EngineError::Key {
            label: switch.key_label.clone(),
            why,
        };
        let Some(ring) = self.ring.clone() else {
            return Err(unavailable(
                "this engine has no HSM to open scheduled keys (software keys do not rotate)"
                    .into(),
            ));
        };
        let der = store
            .certificate(&switch.certificate_id)
            .await?
            .ok_or_else(|| {
                unavailable(format!(
                    "its certificate {} is not in the database",
                    switch.certificate_id.short()
                ))
            })?;
        let label = switch.key_label.clone();
        let signer = tokio::task::spawn_blocking(move || ring.open(&label, &der))
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .map_err(|e| unavailable(e.to_string()))?;
        if signer.certificate().id != switch.certificate_id {
            return Err(unavailable(
                "the key opened does not carry the scheduled certificate".into(),
            ));
        }
        self.opened.insert(switch.certificate_id, signer.clone());
        Ok(signer)
    }

    /// Opens, as far as it can, the keys of `switches` (those that may have sealed a value
    /// still pending); a key that will not open is left out (a retired one cannot) and not
    /// tried again for a minute.
    pub(crate) async fn open_all(&mut self, store: &dyn Store, switches: &[KeySwitch]) {
        for s in switches {
            let recently_failed = self
                .failed
                .get(&s.certificate_id)
                .is_some_and(|t| t.elapsed().as_millis() < RETRY_OPEN_MS);
            if self.opened.contains_key(&s.certificate_id) || recently_failed {
                continue;
            }
            if let Err(e) = self.signer_for(store, s).await {
                tracing::debug!("key {} not opened for unsealing: {e}", s.key_label);
                self.failed
                    .insert(s.certificate_id, std::time::Instant::now());
            }
        }
    }

    /// Every key opened, `first` first: what [`Unsealing`] tries.
    pub(crate) fn unsealing(&self, first: &Arc<dyn Signer>) -> Unsealing {
        let mut keys = vec![first.clone()];
        keys.extend(
            self.opened
                .values()
                .filter(|s| s.certificate().id != first.certificate().id)
                .cloned(),
        );
        Unsealing(keys)
    }
}

/// The signer a restart opens sealed values with: the first key for everything, and every key
/// in turn for [`Signer::unseal`], so that a value sealed by the key before a switch still
/// opens after it.
pub(crate) struct Unsealing(Vec<Arc<dyn Signer>>);

impl PulseSigner for Unsealing {
    fn cipher_suite(&self) -> u32 {
        self.0[0].cipher_suite()
    }
    fn certificate_id(&self) -> Hash512 {
        self.0[0].certificate_id()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.0[0].sign(message)
    }
}

impl Signer for Unsealing {
    fn certificate(&self) -> &Certificate {
        self.0[0].certificate()
    }
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.0[0].seal(aad, plaintext)
    }
    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let mut failure = None;
        for key in &self.0 {
            match key.unseal(aad, sealed) {
                Ok(v) => return Ok(v),
                // The first key's answer decides what a failure of all means.
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| SignerError::Unseal("no key".into())))
    }
    fn random(&self, out: &mut [u8]) -> Result<(), SignerError> {
        self.0[0].random(out)
    }
    fn is_test(&self) -> bool {
        self.0[0].is_test()
    }
}
