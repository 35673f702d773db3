//! C2SP tlog-witness (c2sp.org/tlog-witness): the `add-checkpoint` request a log sends a
//! witness, and the witness's decision on it, as pure functions over bytes and the witness's
//! state. The HTTP layer reads the body, calls [`decide`], and on success stores the new
//! checkpoint (atomically with the check that the stored state is still [`Accepted::old`]),
//! signs [`Accepted::signed_message`] and answers with [`cosign_response`]; on refusal it answers
//! [`WitnessRefusal::status`] with [`WitnessRefusal::body`].
//!
//! The request body:
//!
//! ```text
//! old <size>\n
//! <base64 hash>\n      (0 to 63 consistency proof lines)
//! \n
//! <the signed checkpoint note>
//! ```

use crate::checkpoint::{parse_decimal, parse_hash, Checkpoint};
use crate::note::{Note, NoteError, NoteSignature, VerifierKey, MAX_NOTE_BYTES};
use crate::{cosignature, merkle, Hash};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The most consistency proof lines a request may carry: the spec forbids clients to send more.
pub const MAX_PROOF_LINES: usize = 63;

/// The largest `add-checkpoint` body accepted: the largest note plus the old-size line and 63
/// proof lines (45 bytes each), rounded up. The spec sets no limit; the HTTP layer should cap
/// the body it reads at this (or less: a checkpoint with a few Ed25519 signatures is under
/// 1 kB, and sunlight caps the whole body at 128 KiB).
pub const MAX_BODY_BYTES: usize = MAX_NOTE_BYTES + 4096;

/// The content type of a 409 response, whose body is the witness's size and a newline.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The content type of the other responses (the spec names none; this is what Go's net/http,
/// and so the reference witness, sends for text).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the log believes the witness last cosigned (0 for none).
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// Parses a request body: `old <decimal without leading zeros>\n`, at most
    /// [`MAX_PROOF_LINES`] lines of standard base64 of 32 bytes, a blank line, the note (parsed
    /// later, by [`decide`]). Everything else is [`WitnessRefusal::Malformed`] (400); more than
    /// [`MAX_BODY_BYTES`] is [`WitnessRefusal::TooLarge`].
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, WitnessRefusal> {
        if body.len() > MAX_BODY_BYTES {
            return Err(WitnessRefusal::TooLarge(body.len()));
        }
        let bad = |why: &str| WitnessRefusal::Malformed(why.to_owned());
        // No header line is empty, so the first blank line ends the header.
        let split = body
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no blank line after the old size and proof"))?;
        let header = std::str::from_utf8(&body[..split])
            .map_err(|_| bad("the old size and proof lines are not UTF-8"))?;
        let mut lines = header.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line is not \"old <size>\""))?;
        let old_size = parse_decimal(old)
            .ok_or_else(|| bad("the old size is not a decimal number without leading zeros"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            proof.push(parse_hash(l).ok_or_else(|| {
                WitnessRefusal::Malformed(format!("the proof line {l:?} is not a base64 hash"))
            })?);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: body[split + 2..].to_vec(),
        })
    }

    /// The request body, as a log sends it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size);
        for h in &self.proof {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// Why a witness refuses to cosign, each with the status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessRefusal {
    /// 400: the body, the note or the checkpoint is malformed, or the old size is larger than
    /// the checkpoint's.
    #[error("bad request: {0}")]
    Malformed(String),
    /// 413: the body is larger than [`MAX_BODY_BYTES`] (the spec sets no limit; refusing is
    /// ours, and 413 is what HTTP calls it).
    #[error("the body is {0} bytes, more than the {MAX_BODY_BYTES} accepted")]
    TooLarge(usize),
    /// 404: the witness does not know the checkpoint's origin.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// 403: no valid signature by the log's key, or one by the log's key (name and id) that
    /// does not verify.
    #[error("forbidden: {0}")]
    BadSignature(String),
    /// 409: the old size is not the size the witness last cosigned for the origin (0 if it
    /// never did). The body tells the log the witness's size.
    #[error("conflict: the witness's size is {size}")]
    Conflict {
        /// The size of the latest checkpoint the witness cosigned for this origin, or 0.
        size: u64,
    },
    /// 422: the checkpoint is not consistent with what the witness cosigned: the proof does
    /// not verify, a proof was sent from size 0, the same size came with another root, or an
    /// empty tree with a root other than SHA-256 of nothing.
    #[error("unprocessable: {0}")]
    BadProof(String),
}

impl WitnessRefusal {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            WitnessRefusal::Malformed(_) => 400,
            WitnessRefusal::TooLarge(_) => 413,
            WitnessRefusal::UnknownOrigin(_) => 404,
            WitnessRefusal::BadSignature(_) => 403,
            WitnessRefusal::Conflict { .. } => 409,
            WitnessRefusal::BadProof(_) => 422,
        }
    }

    /// The response's content type and body. A 409's body is the witness's size in decimal and
    /// a newline, of type `text/x.tlog.size`, as the spec requires (the log reads it to retry);
    /// the others are the reason as text.
    pub fn body(&self) -> (&'static str, Vec<u8>) {
        match self {
            WitnessRefusal::Conflict { size } => {
                (SIZE_CONTENT_TYPE, format!("{size}\n").into_bytes())
            }
            other => (TEXT_CONTENT_TYPE, format!("{other}\n").into_bytes()),
        }
    }
}

/// A checkpoint the witness may cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint, as understood.
    pub checkpoint: Checkpoint,
    /// The note as sent (the log's signature verified; other lines unverified).
    pub note: Note,
    /// The state the decision was made against: the size and root last cosigned, `None` if
    /// never. Storing the new checkpoint must be conditional on the state still being this
    /// (compare-and-swap): two requests decided at once must not both be stored, or the witness
    /// could roll its own view back (the race the spec describes).
    pub old: Option<(u64, Hash)>,
}

impl Accepted {
    /// The message to sign for a `cosignature/v1` at `timestamp` (POSIX seconds, non-zero, at
    /// most 2^63 − 1): over the checkpoint as the witness understood it, which strict parsing
    /// makes the very text the log signed.
    pub fn signed_message(&self, timestamp: u64) -> Vec<u8> {
        cosignature::signed_message(&self.checkpoint.body(), timestamp)
    }
}

/// The witness's decision on a request, in the order the spec gives the checks:
///
/// 1. the note or its checkpoint text is malformed → 400;
/// 2. `logs` has no key for the origin → 404;
/// 3. the note has no valid signature by that key, or a line by it that does not verify → 403;
/// 4. the old size is larger than the checkpoint's → 400;
/// 5. the old size is not the size last cosigned (`state`, 0 if `None`) → 409 with that size;
/// 6. a checkpoint of size 0 whose root is not SHA-256 of nothing → 422;
/// 7. old size 0 with a non-empty proof, or a proof that does not verify from the stored root
///    → 422; the same size with another root → 422.
///
/// `logs` gives the log's Ed25519 note key by origin; `state` the size and root the witness
/// last cosigned for an origin. Nothing is stored here.
pub fn decide(
    req: &AddCheckpoint,
    logs: &dyn Fn(&str) -> Option<VerifierKey>,
    state: &dyn Fn(&str) -> Option<(u64, Hash)>,
) -> Result<Accepted, WitnessRefusal> {
    let note = Note::parse(&req.checkpoint)
        .map_err(|e| WitnessRefusal::Malformed(format!("the checkpoint note: {e}")))?;
    let checkpoint =
        Checkpoint::parse(&note.text).map_err(|e| WitnessRefusal::Malformed(e.to_string()))?;
    let origin = checkpoint.origin.clone();
    let key = logs(&origin).ok_or_else(|| WitnessRefusal::UnknownOrigin(origin.clone()))?;
    note.verify(&key)
        .map_err(|e| WitnessRefusal::BadSignature(e.to_string()))?;
    if req.old_size > checkpoint.size {
        return Err(WitnessRefusal::Malformed(format!(
            "the old size {} is larger than the checkpoint's {}",
            req.old_size, checkpoint.size
        )));
    }
    let old = state(&origin);
    let known = old.map_or(0, |(size, _)| size);
    if req.old_size != known {
        return Err(WitnessRefusal::Conflict { size: known });
    }
    if checkpoint.size == 0 && checkpoint.root != merkle::empty_root() {
        return Err(WitnessRefusal::BadProof(
            "a checkpoint of size 0 must have the empty tree's root".into(),
        ));
    }
    match old {
        // From the empty tree every tree follows: nothing to prove, and nothing may be sent.
        _ if req.old_size == 0 => {
            if !req.proof.is_empty() {
                return Err(WitnessRefusal::BadProof(
                    "a proof from size 0 must be empty".into(),
                ));
            }
        }
        Some((size, old_root)) => {
            if size == checkpoint.size && old_root != checkpoint.root {
                return Err(WitnessRefusal::BadProof(format!(
                    "size {size} was cosigned with another root"
                )));
            }
            merkle::verify_consistency(
                size,
                checkpoint.size,
                &old_root,
                &checkpoint.root,
                &req.proof,
            )
            .map_err(|e| WitnessRefusal::BadProof(format!("consistency proof: {e}")))?;
        }
        None => unreachable!("old size {} matched an absent state", req.old_size),
    }
    Ok(Accepted {
        origin,
        checkpoint,
        note,
        old,
    })
}

/// The body of a 200 response: the witness's cosignature lines (each `— <name> <base64>\n`,
/// as [`cosignature::line`] makes them), one after the other. The spec names no content type;
/// [`TEXT_CONTENT_TYPE`] is what the reference witness sends.
pub fn cosign_response(lines: &[String]) -> Vec<u8> {
    debug_assert!(lines
        .iter()
        .all(|l| l.starts_with('\u{2014}') && l.ends_with('\n')));
    lines.concat().into_bytes()
}

/// Reads a witness's 200 body (the log's side): one or more signature lines, parsed with the
/// note's rules. The caller verifies them by appending them to the checkpoint note.
pub fn parse_cosign_response(body: &[u8]) -> Result<Vec<NoteSignature>, NoteError> {
    // A note whose text is one newline and whose signature block is the body: the same rules,
    // and the same limits, as for the lines of any note.
    let mut bytes = b"\n\n".to_vec();
    bytes.extend_from_slice(body);
    let note = Note::parse(&bytes)?;
    // A blank line inside the body would have moved the split past some lines.
    if note.text != "\n" {
        return Err(NoteError::NoSignatureBlock);
    }
    Ok(note.signatures)
}

/// Reads a 409 body (the log's side): the witness's size, `<decimal>\n`.
pub fn parse_size_body(body: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(body).ok()?;
    parse_decimal(s.strip_suffix('\n')?)
}

/// The origin's name in the monitoring API's path
/// (`GET <monitoring prefix>/<origin hash>/checkpoint`): SHA-256 of the origin, lowercase hex.
pub fn origin_hash(origin: &str) -> String {
    Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
