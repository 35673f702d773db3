//! Each pulse's source manifest, matched to it as the verifier hands the pulses on: manifests
//! come in pulse order, so each is checked when its pulse comes and none is held longer.

use super::feed::ManifestLine;
use lavabeacon_format::chain::Facts;
use lavabeacon_format::manifest::check_published;
use lavabeacon_format::Problem;
use std::cmp::Ordering;
use std::sync::mpsc::Receiver;

/// The manifests of a feed, consumed in pulse order.
pub(super) struct ManifestQueue {
    incoming: Receiver<ManifestLine>,
    /// Received but not yet matched: it belongs to a later pulse.
    next: Option<ManifestLine>,
    /// How many were checked.
    pub checked: u64,
}

impl ManifestQueue {
    /// The queue of `incoming`.
    pub fn new(incoming: Receiver<ManifestLine>) -> Self {
        ManifestQueue {
            incoming,
            next: None,
            checked: 0,
        }
    }

    /// Checks the manifest of the pulse `f`, if it has one. Manifests of pulses not replayed
    /// (before a window) are passed over; the queue waits only until it knows whether one for
    /// `f` comes.
    pub fn check(&mut self, f: &Facts) -> Option<Problem> {
        let key = (f.chain, f.index);
        loop {
            if self.next.is_none() {
                // None once every manifest has come.
                self.next = self.incoming.recv().ok();
            }
            let (chain, index, _) = self.next.as_ref()?;
            match (*chain, *index).cmp(&key) {
                Ordering::Less => self.next = None,
                Ordering::Greater => return None,
                Ordering::Equal => {
                    let line = self.next.take().expect("matched");
                    if line.2.is_empty() {
                        // The mark: no manifest for this pulse.
                        return None;
                    }
                    self.checked += 1;
                    return check_published(&line.2, f).err().map(|p| *p);
                }
            }
        }
    }
}
