//! The Ed25519 queue: the rules put each Ed25519 signature here instead of checking it, and
//! the verifier checks one part's queue as one batch, which is about 2.5 times as fast as one
//! by one. Only when the batch fails (or in strict mode) is each signature checked alone, to
//! find which.

use crate::suite::ed25519_verify_batch;

/// An Ed25519 signature waiting for its batch.
pub(super) struct Pending {
    /// Which outcome of the part it belongs to.
    pub(super) outcome: usize,
    /// The signed message M (moved here from the rules, not copied).
    pub(super) message: Vec<u8>,
    pub(super) signature: ed25519_dalek::Signature,
    pub(super) key: ed25519_dalek::VerifyingKey,
    /// The certificate's id, for the message of a bad signature (shortened only then: most
    /// signatures are good, and a replay queues one per pulse).
    pub(super) cert_id: crate::hash::Hash512,
}

/// Checks every queued signature and calls `rejected` with each one that does not verify.
/// `strict` checks each alone with `verify_strict` (see [`super::Options::strict`]).
pub(super) fn check_queued(pending: &[Pending], strict: bool, mut rejected: impl FnMut(&Pending)) {
    if pending.is_empty() {
        return;
    }
    let batch_ok = !strict && {
        let batch: Vec<_> = pending
            .iter()
            .map(|j| (j.message.as_slice(), &j.signature, &j.key))
            .collect();
        ed25519_verify_batch(&batch)
    };
    if !batch_ok {
        // Strict mode, or a batch with at least one bad signature: find which.
        for j in pending {
            if j.key.verify_strict(&j.message, &j.signature).is_err() {
                rejected(j);
            }
        }
    }
}
