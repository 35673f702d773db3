//! The transparency log's work on the engine's side (docs/transparency.md): after each pulse,
//! sign a checkpoint of the log (whose entry the append already wrote, in the same
//! transaction), then hand it to the witnesses.
//!
//! - [`Checkpointer`] signs one checkpoint per pulse with the log's own key (not the pulse
//!   key), as a C2SP signed note, and stores it. It runs between the append and the hand-off
//!   to the API, so the pulse that goes out over the stream is already in a signed checkpoint.
//!   A failure is logged and costs nothing else: the next pulse's checkpoint covers this one.
//! - [`submit`] runs beside the engine (a task of its own, woken when a checkpoint is stored):
//!   for each configured witness it sends the newest checkpoint with the consistency proof
//!   from the size that witness last cosigned (C2SP tlog-witness `add-checkpoint`), checks the
//!   cosignature it answers and stores it. A slow or dead witness delays nobody but itself.
//!   Where each witness stands is read from the stored cosignatures and corrected by its 409s.

use lavabeacon_store::{Store, StoreError};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::{KeyKind, Note, NoteSignature, VerifierKey};
use lavabeacon_tlog::witness::{self, AddCheckpoint};
use lavabeacon_tlog::NoteSigner;
use std::sync::Arc;
use std::time::Duration;

/// Why a checkpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    /// The log's key could not sign.
    #[error("the log's key could not sign: {0}")]
    Sign(String),
    /// The configuration cannot make a log (a bad origin).
    #[error("{0}")]
    Config(String),
}

/// Signs checkpoints of the log with its key.
pub struct Checkpointer {
    origin: String,
    key: Arc<dyn NoteSigner>,
    vkey: VerifierKey,
}

impl Checkpointer {
    /// The log called `origin` (its checkpoints' first line and its key's name), signing with
    /// `key`.
    pub fn new(origin: &str, key: Arc<dyn NoteSigner>) -> Result<Checkpointer, LogError> {
        let vkey = VerifierKey::new(origin, KeyKind::Ed25519, key.public_key())
            .map_err(|e| LogError::Config(format!("the log's origin {origin:?}: {e}")))?;
        Ok(Checkpointer {
            origin: origin.to_string(),
            key,
            vkey,
        })
    }

    /// The log's verifier key.
    pub fn vkey(&self) -> &VerifierKey {
        &self.vkey
    }

    /// Signs and stores a checkpoint of the log as it is now, unless one of this size is
    /// stored already. Returns the size signed.
    pub async fn checkpoint(&self, store: &dyn Store) -> Result<Option<u64>, LogError> {
        let log = store.log()?;
        let size = log.size().await?;
        if let Some((newest, _)) = log.checkpoint(None).await? {
            if newest >= size {
                return Ok(None);
            }
        }
        let root = log.root(size).await?;
        let body = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        }
        .body();
        let key = self.key.clone();
        let message = body.clone().into_bytes();
        // The token may block: off the async threads.
        let signature = tokio::task::spawn_blocking(move || key.sign(&message))
            .await
            .map_err(|e| LogError::Sign(format!("the signing thread failed: {e}")))?
            .map_err(LogError::Sign)?;
        let note = Note {
            text: body,
            signatures: vec![NoteSignature {
                name: self.vkey.name.clone(),
                key_id: self.vkey.key_id,
                signature: signature.to_vec(),
            }],
        };
        let note = String::from_utf8(note.to_bytes()).expect("a note is UTF-8");
        log.put_checkpoint(size, &note).await?;
        Ok(Some(size))
    }
}

/// The engine's hook: the checkpointer and who to wake when a checkpoint is stored.
pub(crate) struct LogHook {
    pub checkpointer: Checkpointer,
    pub stored: tokio::sync::watch::Sender<u64>,
}

impl LogHook {
    /// Signs the checkpoint after a pulse; failures are logged, never the engine's, and a
    /// token or database that does not answer is given up on after [`CHECKPOINT_LIMIT`], so
    /// the next slot is never held up by the log.
    pub(crate) async fn after_pulse(&self, store: &dyn Store) {
        let signed =
            tokio::time::timeout(CHECKPOINT_LIMIT, self.checkpointer.checkpoint(store)).await;
        match signed {
            Ok(Ok(Some(size))) => {
                self.stored.send_replace(size);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(
                "no checkpoint this period (the next one covers this pulse too): {e}"
            ),
            Err(_) => tracing::warn!(
                "no checkpoint this period: not signed and stored within {} s (the next one covers this pulse too)",
                CHECKPOINT_LIMIT.as_secs()
            ),
        }
    }
}

/// A witness the log submits its checkpoints to.
#[derive(Debug, Clone)]
pub struct WitnessPeer {
    /// Its cosignature key (`cosignature/v1`, type 0x04); its name names it in the store.
    pub key: VerifierKey,
    /// Its submission prefix: `<prefix>/add-checkpoint` is where checkpoints go.
    pub url: String,
}

/// How long a checkpoint may take after a pulse before the engine goes on without it.
const CHECKPOINT_LIMIT: Duration = Duration::from_secs(2);

/// How long one submission may take.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Submits each new checkpoint to every witness until `wake` closes, each witness on a task of
/// its own (a slow one delays no other): woken (with the size) when a checkpoint was stored,
/// each takes the newest one, so a backlog costs one submission.
pub async fn submit(
    store: Arc<dyn Store>,
    witnesses: Vec<WitnessPeer>,
    wake: tokio::sync::watch::Receiver<u64>,
) {
    let agent = ureq::AgentBuilder::new()
        .timeout(SUBMIT_TIMEOUT)
        .redirects(0)
        .build();
    let tasks: Vec<_> = witnesses
        .into_iter()
        .map(|w| tokio::spawn(submit_to(store.clone(), agent.clone(), w, wake.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// One witness's loop.
async fn submit_to(
    store: Arc<dyn Store>,
    agent: ureq::Agent,
    w: WitnessPeer,
    mut wake: tokio::sync::watch::Receiver<u64>,
) {
    // Where the witness stands, as far as we know: read from the store, corrected by 409s.
    let mut known: Option<u64> = None;
    loop {
        if let Err(e) = submit_one(&store, &agent, &w, &mut known).await {
            tracing::warn!(witness = %w.key.name, "cosignature not obtained: {e}");
        }
        if wake.changed().await.is_err() {
            return;
        }
    }
}

/// One witness, the newest checkpoint: at most two tries (the second from the size a 409 said).
async fn submit_one(
    store: &Arc<dyn Store>,
    agent: &ureq::Agent,
    w: &WitnessPeer,
    known: &mut Option<u64>,
) -> Result<(), String> {
    let log = store.log().map_err(|e| e.to_string())?;
    let Some((size, note)) = log.checkpoint(None).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let mut old = match *known {
        Some(s) => s,
        None => log
            .cosigned_size(&w.key.name)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(0),
    };
    if old == size {
        let cosigned = log.cosignatures(size).await.map_err(|e| e.to_string())?;
        if cosigned.iter().any(|(name, _)| name == &w.key.name) {
            return Ok(());
        }
    }
    for _ in 0..2 {
        if old > size {
            return Err(format!(
                "the witness has cosigned a tree of {old} entries, larger than this log's newest checkpoint ({size}): \
                 it was shown another log under this origin — investigate"
            ));
        }
        let proof = log
            .consistency_proof(old, size)
            .await
            .map_err(|e| e.to_string())?;
        let body = AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note.clone().into_bytes(),
        }
        .to_bytes();
        let url = format!("{}/add-checkpoint", w.url.trim_end_matches('/'));
        let agent = agent.clone();
        let answer = tokio::task::spawn_blocking(move || post(&agent, &url, &body))
            .await
            .map_err(|e| format!("the submitting thread failed: {e}"))?;
        match answer {
            Ok((200, bytes)) => {
                let line = accept_cosignature(&note, &bytes, &w.key)?;
                log.put_cosignature(size, &w.key.name, &line)
                    .await
                    .map_err(|e| e.to_string())?;
                *known = Some(size);
                tracing::debug!(witness = %w.key.name, size, "checkpoint cosigned");
                return Ok(());
            }
            Ok((409, bytes)) => {
                let theirs = witness::parse_size_body(&bytes)
                    .ok_or("a 409 whose body is not a tree size")?;
                tracing::info!(
                    witness = %w.key.name,
                    "the witness last cosigned size {theirs}, not {old}: sending from there"
                );
                old = theirs;
                *known = Some(theirs);
            }
            Ok((status, bytes)) => {
                return Err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim()
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Err("the witness moved on twice while we submitted".into())
}

/// The witness's answer checked: exactly a cosignature by its key that verifies on this
/// checkpoint. Returns the line to store.
fn accept_cosignature(note: &str, body: &[u8], key: &VerifierKey) -> Result<String, String> {
    let lines = witness::parse_cosign_response(body).map_err(|e| format!("the answer: {e}"))?;
    let mut n = Note::parse(note.as_bytes()).map_err(|e| format!("our own checkpoint: {e}"))?;
    let mine: Vec<NoteSignature> = lines
        .into_iter()
        .filter(|s| s.name == key.name && s.key_id == key.key_id)
        .collect();
    let Some(first) = mine.first().cloned() else {
        return Err("the answer holds no cosignature by the witness's key".into());
    };
    n.signatures = vec![first.clone()];
    lavabeacon_tlog::cosignature::verify(&n, key)
        .map_err(|e| format!("the cosignature does not verify: {e}"))?;
    let line = lavabeacon_tlog::note::signature_line(&first.name, first.key_id, &first.signature);
    Ok(line)
}

/// One POST: (status, body) for any answer, Err for no answer.
fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let answer = agent
        .post(url)
        .set("Content-Type", "text/plain; charset=utf-8")
        .send_bytes(body);
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{url}: {e}")),
    };
    let status = response.status();
    let mut bytes = Vec::new();
    use std::io::Read;
    response
        .into_reader()
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    Ok((status, bytes))
}
