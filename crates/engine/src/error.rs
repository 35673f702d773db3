//! Why an attempt at a pulse failed, and what each failure means to the loop (leadership lost),
//! the public (`/health`'s category) and the HSM's state (the signer failed).

use crate::commitment::CommitmentError;
use lavabeacon_format::builder::BuildError;
use lavabeacon_store::StoreError;
use thiserror::Error;

/// Why a pulse was not published. After any of these the engine re-reads its state from the
/// store before the next attempt, so no error leaves it unable to make the next pulse.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No healthy source gave full credit; the slot is skipped and becomes a gap.
    #[error("no healthy source with full credit: {0}")]
    NoEntropy(String),
    /// The store failed (the pulse was not published).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or unsealing failed.
    #[error(transparent)]
    Commitment(#[from] CommitmentError),
    /// Building or signing the pulse failed (the HSM may be gone; the next pulse records the gap).
    #[error("building the pulse: {0}")]
    Build(#[from] BuildError),
    /// The pulse could not be stored within the late tolerance of its timestamp, so it was not
    /// published (the engine was stalled, or the store too slow).
    #[error("pulse at {time_ms} ms not published: {late_ms} ms after its timestamp, over the tolerance of {tolerance_ms} ms")]
    Late {
        /// The slot's timestamp, Unix ms.
        time_ms: i64,
        /// How late the engine was when it gave up.
        late_ms: i64,
        /// The configured tolerance.
        tolerance_ms: i64,
    },
    /// The slot lies outside the validity of the certificate of the key that would sign it:
    /// nothing is signed; the slot is skipped and becomes a gap until a valid certificate is
    /// rotated in.
    #[error("slot {} lies outside the validity of certificate {certificate} ({} to {}): not signed; rotate a new key in (lavabeacon keys rotate)", fmt_ms(*time_ms), fmt_ms(*not_before * 1000), fmt_ms(*not_after * 1000))]
    Certificate {
        /// The slot's timestamp, Unix ms.
        time_ms: i64,
        /// The certificate (short id).
        certificate: String,
        /// Its validity, Unix seconds.
        not_before: i64,
        /// Its validity, Unix seconds.
        not_after: i64,
    },
    /// The key the schedule names for this slot cannot be opened.
    #[error("key {label}, scheduled for this slot, cannot be used: {why}")]
    Key {
        /// Its label.
        label: String,
        /// Why.
        why: String,
    },
}

fn fmt_ms(ms: i64) -> String {
    lavabeacon_format::time::format_time_stamp(ms).unwrap_or_else(|| ms.to_string())
}

impl EngineError {
    /// A short public word for what failed (`/health`); the full text is for the operator's log.
    pub fn category(&self) -> &'static str {
        match self {
            EngineError::NoEntropy(_) => "no entropy",
            EngineError::Store(e) => e.category(),
            EngineError::Commitment(CommitmentError::Store(e)) => e.category(),
            EngineError::Commitment(CommitmentError::Signer(_)) => "hsm unavailable",
            EngineError::Build(BuildError::Sign(_)) => "hsm unavailable",
            EngineError::Build(_) => "internal error",
            EngineError::Late { .. } => "late",
            EngineError::Certificate {
                time_ms, not_after, ..
            } if *time_ms > not_after.saturating_mul(1000) => "certificate expired",
            EngineError::Certificate { .. } => "certificate not yet valid",
            EngineError::Key { .. } => "key unavailable",
        }
    }

    /// Whether the signer (HSM) is what failed.
    pub fn signer_failed(&self) -> bool {
        matches!(
            self,
            EngineError::Commitment(CommitmentError::Signer(_))
                | EngineError::Build(BuildError::Sign(_))
        )
    }

    /// Whether this engine no longer holds the leader lock (it must acquire it again before
    /// writing).
    pub fn lost_leadership(&self) -> bool {
        matches!(
            self,
            EngineError::Store(StoreError::LostLeadership { .. })
                | EngineError::Commitment(CommitmentError::Store(
                    StoreError::LostLeadership { .. }
                ))
        )
    }
}
