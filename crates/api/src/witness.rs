//! The beacon as a witness of other logs (C2SP tlog-witness): `POST /witness/add-checkpoint`
//! takes a log's checkpoint with a consistency proof from the one it last cosigned and answers
//! with a `cosignature/v1` line. The checks are `lavabeacon_tlog::witness::decide`'s; the state
//! (the last size and root cosigned for each log) is in the store, moved forward by
//! compare-and-swap before anything is signed, so neither two requests at once nor a restart can
//! make this witness cosign two trees that are not one the prefix of the other.

use crate::clock::now_ms;
use crate::error::ApiError;
use crate::reply::{Reply, NO_STORE};
use crate::state::Beacon;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use lavabeacon_store::{Log, Store};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::{KeyKind, Note, VerifierKey};
use lavabeacon_tlog::witness::{self, AddCheckpoint, WitnessRefusal, MAX_BODY_BYTES};
use lavabeacon_tlog::{cosignature, NoteSigner};
use std::collections::HashMap;
use std::sync::Arc;

/// What a beacon needs to witness other logs ([`Beacon::register_witness`]).
pub struct WitnessRole {
    /// The witness's key name, on its cosignature lines (conventionally a schemeless URL, e.g.
    /// `beacon.example.org/witness`).
    pub name: String,
    /// Its Ed25519 cosigning key. It must sign nothing but cosignatures: a `cosignature/v1`
    /// message does not name its signer.
    pub key: Arc<dyn NoteSigner>,
    /// The logs it witnesses: each log's Ed25519 note key, named by the log's origin.
    pub logs: Vec<VerifierKey>,
}

impl std::fmt::Debug for WitnessRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessRole")
            .field("name", &self.name)
            .field(
                "logs",
                &self.logs.iter().map(|k| &k.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A registered witness: its role, checked, with its own verifier key made once.
pub(crate) struct Witness {
    name: String,
    key: Arc<dyn NoteSigner>,
    /// Its cosignature key, to check each cosignature before it is handed out.
    own: VerifierKey,
    /// Each log's key by origin.
    logs: HashMap<String, VerifierKey>,
    /// A store handle that may write (the API's own is read-only); also read through, so that
    /// the state a decision is made on is the primary's, never a replica's.
    writer: Arc<dyn Store>,
}

impl Witness {
    /// Checks `role`: a valid key name, log keys that sign notes (Ed25519), one per origin.
    pub(crate) fn new(role: WitnessRole, writer: Arc<dyn Store>) -> Result<Witness, String> {
        let own = VerifierKey::new(&role.name, KeyKind::Cosignature, role.key.public_key())
            .map_err(|e| format!("the witness's key: {e}"))?;
        let mut logs = HashMap::new();
        for k in role.logs {
            if k.kind != KeyKind::Ed25519 {
                return Err(format!(
                    "the key of log {} is not an Ed25519 note key (signature type 0x01)",
                    k.name
                ));
            }
            if let Some(other) = logs.insert(k.name.clone(), k) {
                return Err(format!("two keys for the log {}", other.name));
            }
        }
        Ok(Witness {
            name: role.name,
            key: role.key,
            own,
            logs,
            writer,
        })
    }

    fn log_key(&self, origin: &str) -> Option<VerifierKey> {
        self.logs.get(origin).cloned()
    }

    /// The witness's state through the writer.
    fn state(&self) -> Result<&dyn Log, ApiError> {
        self.writer.log().map_err(ApiError::Unavailable)
    }
}

/// A refusal as the spec answers it: its status, and its body (a 409's is the witness's size).
fn refused(refusal: &WitnessRefusal) -> HttpResponse {
    let (content_type, body) = refusal.body();
    HttpResponse::build(StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST))
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        .content_type(content_type)
        .body(body)
}

/// The request's body, at most [`MAX_BODY_BYTES`] (the largest note and a full proof): read a
/// piece at a time, so a body that is too large is refused before it is all in memory.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<u8>, WitnessRefusal> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > MAX_BODY_BYTES) {
        return Err(WitnessRefusal::TooLarge(n));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| WitnessRefusal::Malformed(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(WitnessRefusal::TooLarge(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The origin of the checkpoint in a request, if it can be read (to fetch that log's state
/// before deciding; `decide` reads the note again and refuses what cannot be read).
fn origin_of(request: &AddCheckpoint) -> Option<String> {
    let note = Note::parse(&request.checkpoint).ok()?;
    Checkpoint::parse(&note.text).ok().map(|c| c.origin)
}

/// At most `n` characters of `s`, for the log: what a request sends can be long.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Logs a refusal: those of requests signed by a log the witness knows (a conflict, a tree
/// inconsistent with what it cosigned) with the checkpoint, which is the log's signed word;
/// anonymous noise (malformed, unknown origin, bad signature) at debug only, as anyone can
/// send it.
fn log_refusal(origin: Option<&str>, request: Option<&AddCheckpoint>, refusal: &WitnessRefusal) {
    let origin = origin.unwrap_or("");
    let old = request.map(|r| r.old_size);
    match refusal {
        WitnessRefusal::BadProof(_) => tracing::warn!(
            origin,
            old_size = old,
            status = refusal.status(),
            reason = %clip(&refusal.to_string(), 300),
            checkpoint = %request.map(|r| clip(&String::from_utf8_lossy(&r.checkpoint), 4096)).unwrap_or_default(),
            "witness: refused a checkpoint the log signed; it is not consistent with what this witness cosigned"
        ),
        WitnessRefusal::Conflict { size } => tracing::info!(
            origin,
            old_size = old,
            witness_size = size,
            "witness: the log's old size is not this witness's (409)"
        ),
        _ => tracing::debug!(
            origin = %clip(origin, 200),
            status = refusal.status(),
            reason = %clip(&refusal.to_string(), 300),
            "witness: refused"
        ),
    }
}

/// `POST /witness/add-checkpoint`.
pub(crate) async fn add_checkpoint(
    beacon: web::Data<Beacon>,
    req: HttpRequest,
    payload: web::Payload,
) -> Reply {
    let Some(w) = beacon.witness().cloned() else {
        if beacon.info().witness_configured {
            return Err(ApiError::NotNow(
                "this beacon's witness is not ready (starting, or its key or database could not \
                 be opened: its operator's log says which)"
                    .into(),
            ));
        }
        return Err(ApiError::NotFound(
            "this beacon is not a witness of other logs".into(),
        ));
    };
    let body = match read_body(&req, payload).await {
        Ok(b) => b,
        Err(refusal) => {
            log_refusal(None, None, &refusal);
            return Ok(refused(&refusal));
        }
    };
    let request = match AddCheckpoint::parse(&body) {
        Ok(r) => r,
        Err(refusal) => {
            log_refusal(None, None, &refusal);
            return Ok(refused(&refusal));
        }
    };
    let origin = origin_of(&request);
    let log = w.state()?;
    // Only a log this witness knows has a state worth a query.
    let state = match origin.as_deref().filter(|o| w.logs.contains_key(*o)) {
        Some(o) => beacon.ask(log.witness_state(o)).await?,
        None => None,
    };
    let decided = witness::decide(&request, &|o| w.log_key(o), &|o| {
        if Some(o) == origin.as_deref() {
            state
        } else {
            None
        }
    });
    let accepted = match decided {
        Ok(a) => a,
        Err(refusal) => {
            log_refusal(origin.as_deref(), Some(&request), &refusal);
            return Ok(refused(&refusal));
        }
    };
    let (size, root) = (accepted.checkpoint.size, accepted.checkpoint.root);
    // Stored before it is signed (the spec: persist, then cosign), and only if nobody moved
    // the state since it was read; else the log learns the size that won.
    if !beacon
        .ask(log.advance_witness(&accepted.origin, accepted.old, (size, root)))
        .await?
    {
        let now = beacon.ask(log.witness_state(&accepted.origin)).await?;
        let refusal = WitnessRefusal::Conflict {
            size: now.map_or(0, |(s, _)| s),
        };
        log_refusal(Some(&accepted.origin), Some(&request), &refusal);
        return Ok(refused(&refusal));
    }
    // POSIX seconds; never 0, which the spec forbids.
    let timestamp = u64::try_from(now_ms().div_euclid(1000)).unwrap_or(0).max(1);
    let message = accepted.signed_message(timestamp);
    let key = w.key.clone();
    // The key may be in an HSM, whose calls block: off the server's threads.
    let signature = web::block(move || key.sign(&message))
        .await
        .map_err(|_| ApiError::NotNow("the witness's key cannot sign now; try again".into()))?
        .map_err(|e| {
            tracing::warn!(origin = %accepted.origin, "witness: signing a cosignature failed: {e}");
            ApiError::NotNow("the witness's key cannot sign now; try again".into())
        })?;
    let line = cosignature::line(&w.name, w.own.key_id, timestamp, &signature);
    // Checked before it is handed out: a token that signed with another key than the one
    // configured would give the log cosignatures no one can verify.
    let check = Note {
        text: accepted.note.text.clone(),
        signatures: witness::parse_cosign_response(line.as_bytes()).unwrap_or_default(),
    };
    if let Err(e) = cosignature::verify(&check, &w.own) {
        tracing::error!(origin = %accepted.origin, "witness: a cosignature just made does not verify with the witness's key: {e}");
        return Err(ApiError::NotNow(
            "the witness's key cannot sign now; try again".into(),
        ));
    }
    tracing::info!(
        origin = %accepted.origin,
        old_size = accepted.old.map_or(0, |(s, _)| s),
        size,
        "witness: cosigned"
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        .content_type(witness::TEXT_CONTENT_TYPE)
        .body(witness::cosign_response(&[line])))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed([u8; 32]);
    impl NoteSigner for Fixed {
        fn public_key(&self) -> [u8; 32] {
            self.0
        }
        fn sign(&self, _: &[u8]) -> Result<[u8; 64], String> {
            Err("no".into())
        }
    }

    fn point() -> [u8; 32] {
        // The Ed25519 base point: a valid public key.
        let mut b = [0x66; 32];
        b[0] = 0x58;
        b
    }

    #[test]
    fn a_role_is_checked_when_registered() {
        let store: Arc<dyn Store> = Arc::new(lavabeacon_store::fake::FakeStore::new());
        let role = |name: &str, logs: Vec<VerifierKey>| WitnessRole {
            name: name.into(),
            key: Arc::new(Fixed(point())),
            logs,
        };
        let log = VerifierKey::new("example.com/log", KeyKind::Ed25519, point()).unwrap();
        let w = Witness::new(role("w.example/1", vec![log.clone()]), store.clone()).unwrap();
        assert_eq!(
            w.own.key_id,
            lavabeacon_tlog::note::key_id("w.example/1", KeyKind::Cosignature, &point())
        );
        assert!(Witness::new(role("bad name", vec![]), store.clone()).is_err());
        assert!(Witness::new(role("w", vec![log.clone(), log.clone()]), store.clone()).is_err());
        let cosigner = VerifierKey::new("example.com/log", KeyKind::Cosignature, point()).unwrap();
        assert!(Witness::new(role("w", vec![cosigner]), store).is_err());
    }
}
