//! The Ed25519 keys that sign notes: the log's (checkpoints) and the witness's (cosignatures).
//! In the signer's token, next to the pulse key, each under its own label and made there the
//! first time it is asked for (so a new deployment needs no extra step); with the development
//! software signer, a key file under the data directory.

use crate::config::{Config, SignerKind};
use lavabeacon_signer::pkcs11::{Pkcs11Key, PublicKeyBytes};
use lavabeacon_signer::Suite;
use lavabeacon_tlog::NoteSigner;
use std::sync::Arc;

/// The note key labelled `label`, opened (or made) where the pulse key lives.
pub fn open(c: &Config, label: &str) -> Result<Arc<dyn NoteSigner>, String> {
    match c.signer.kind {
        SignerKind::Pkcs11 => {
            let mut cfg = c.signer.pkcs11()?;
            cfg.key_label = label.to_string();
            cfg.suite = Suite::Ed25519;
            // Made only when opening failed and no key has the label: `generate` refuses to
            // replace one, so a transient failure never makes a second key.
            let key = match Pkcs11Key::open(&cfg) {
                Ok(k) => k,
                Err(open_error) => match Pkcs11Key::generate(&cfg) {
                    Ok(k) => {
                        tracing::info!("made the Ed25519 key {label:?} in the token");
                        k
                    }
                    Err(_) => return Err(format!("the key {label:?}: {open_error}")),
                },
            };
            Ok(Arc::new(HsmNoteKey(key)))
        }
        SignerKind::Software => software(c, label),
    }
}

/// A note key in the token.
struct HsmNoteKey(Pkcs11Key);

impl NoteSigner for HsmNoteKey {
    fn public_key(&self) -> [u8; 32] {
        match self.0.public_key() {
            PublicKeyBytes::Ed25519(k) => *k,
            // `open` asked for Ed25519; the signer checks the suite when it opens a key.
            PublicKeyBytes::Rsa { .. } => unreachable!("an Ed25519 key was opened"),
        }
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], String> {
        let s = self.0.sign_raw(message).map_err(|e| e.to_string())?;
        s.as_slice()
            .try_into()
            .map_err(|_| format!("the token gave a {}-byte Ed25519 signature", s.len()))
    }
}

/// A development key file (`<data_dir>/keys/<label>.ed25519`, 32 bytes, mode 0600).
fn software(c: &Config, label: &str) -> Result<Arc<dyn NoteSigner>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = c.beacon.data_dir.join("keys");
    let path = dir.join(format!("{label}.ed25519"));
    let seed: [u8; 32] = match std::fs::read(&path) {
        Ok(b) => b
            .as_slice()
            .try_into()
            .map_err(|_| format!("{}: not a 32-byte key", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let seed: [u8; 32] = rand::random();
            use std::io::Write;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(&seed))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            seed
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(Arc::new(SoftwareNoteKey(
        ed25519_dalek::SigningKey::from_bytes(&seed),
    )))
}

struct SoftwareNoteKey(ed25519_dalek::SigningKey);

impl NoteSigner for SoftwareNoteKey {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], String> {
        use ed25519_dalek::Signer;
        Ok(self.0.sign(message).to_bytes())
    }
}
