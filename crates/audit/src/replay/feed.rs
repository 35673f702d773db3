//! Sources of pulses for the verifier, each with the manifests of its pulses in the same
//! order: an export file (this module), a database (this module) or a beacon's API
//! ([`super::remote`]).

use super::Window;
use crate::layout;
use lavabeacon_format::cert::{Certificate, CertificateSet};
use lavabeacon_format::input::{read_items, InputError, Item, Location};
use lavabeacon_format::verify::Input;
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// Pulses for the verifier, as text or already parsed.
pub(super) type Items = Box<dyn Iterator<Item = Result<Input, InputError>> + Send>;

/// A pulse's source manifest: (chainIndex, pulseIndex, manifest JSON). An empty JSON is a mark
/// that every manifest up to that pulse has been sent.
pub(super) type ManifestLine = layout::ManifestLine;

/// Pulses and their manifests, in pulse order.
pub(super) struct Feed {
    pub items: Items,
    pub manifests: Receiver<ManifestLine>,
    /// How many pulses there are, when the source says.
    pub total: Option<u64>,
    /// The source's name in messages (passwords hidden).
    pub name: String,
}

/// Reads an export: pulses from `path`, manifests from beside it.
pub(super) fn from_file(path: &Path, window: Window) -> Result<Feed, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let windowed = window != Window::ALL;
    let items = read_items(&name, file).filter_map(move |r| match r {
        // A window needs each pulse's time: parse here, and hand the pulse on parsed.
        Ok(Item::Record { location, text }) if windowed => {
            match lavabeacon_format::json::parse_pulse(&text) {
                Ok(p) => {
                    let t = p.time_ms().unwrap_or(i64::MIN);
                    window
                        .contains(t)
                        .then(|| Ok(Input::Pulse(Box::new(p), location)))
                }
                Err(_) => Some(Ok(Input::Item(Item::Record { location, text }))),
            }
        }
        other => Some(other.map(Input::Item)),
    });
    // Bounded: the reader waits for the checker rather than holding a whole file of manifests.
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    if let Some(manifests) = layout::read_manifests(path)? {
        std::thread::spawn(move || {
            for m in manifests {
                if tx.send(m).is_err() {
                    return;
                }
            }
        });
    }
    Ok(Feed {
        items: Box::new(items),
        manifests: rx,
        total: None,
        name,
    })
}

/// Reads a database: pulses by time, and each batch's manifests sent just before it. Its
/// certificates are added to `certs`.
pub(super) fn from_database(
    url: &str,
    window: Window,
    certs: &mut CertificateSet,
) -> Result<Feed, String> {
    let rt = crate::runtime();
    let store = rt
        .block_on(lavabeacon_store::open_with(
            url,
            lavabeacon_store::Role::Audit,
        ))
        .map_err(|e| format!("database: {e}"))?;
    for der in rt
        .block_on(store.certificates())
        .map_err(|e| e.to_string())?
    {
        if let Ok(c) = Certificate::from_der(&der) {
            certs.add(c);
        }
    }
    let total = rt.block_on(store.counts()).ok().map(|c| c.pulses);
    // A page of the store's at most: the store reads faster than the verifier checks, so
    // whatever this holds is held all the time (it was most of a replay's memory at 8,192).
    let (tx, rx) = std::sync::mpsc::sync_channel(2048);
    let (mtx, mrx) = std::sync::mpsc::channel();
    let name: Arc<str> = Arc::from(lavabeacon_store::redact(url).as_str());
    let source = name.clone();
    std::thread::spawn(move || rt.block_on(stream_database(store, window, source, tx, mtx)));
    Ok(Feed {
        items: Box::new(rx.into_iter()),
        manifests: mrx,
        total,
        name: name.to_string(),
    })
}

/// Sends the pulses of `window`, in batches, each batch's manifests first.
async fn stream_database(
    store: Arc<dyn Store>,
    window: Window,
    source: Arc<str>,
    tx: SyncSender<Result<Input, InputError>>,
    manifests: std::sync::mpsc::Sender<ManifestLine>,
) {
    use futures_util::StreamExt;
    let to = window.to.saturating_add(1).min(i64::MAX - 1);
    let mut pulses = store.range_by_time(window.from.max(0), to).chunks(4096);
    let mut line = 0usize;
    while let Some(batch) = pulses.next().await {
        let batch = match batch.into_iter().collect::<Result<Vec<Pulse>, _>>() {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(InputError {
                    name: source.to_string(),
                    source: std::io::Error::other(e.to_string()),
                }));
                return;
            }
        };
        send_manifests_of(store.as_ref(), &batch, &manifests).await;
        for p in batch {
            line += 1;
            let location = Location {
                source: source.clone(),
                line,
            };
            if tx.send(Ok(Input::Pulse(Box::new(p), location))).is_err() {
                return;
            }
        }
    }
}

/// The manifests of a batch of pulses, then a mark saying "nothing more up to here", so the
/// checker never waits for what comes after these pulses.
async fn send_manifests_of(
    store: &dyn Store,
    batch: &[Pulse],
    manifests: &std::sync::mpsc::Sender<ManifestLine>,
) {
    use futures_util::StreamExt;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return;
    };
    if first.chain_index == last.chain_index {
        let mut m =
            store.manifests_by_index(first.chain_index, first.pulse_index, last.pulse_index);
        while let Some(Ok(line)) = m.next().await {
            let _ = manifests.send(line);
        }
    } else {
        // A batch across chains: one pulse at a time.
        for p in batch {
            if let Ok(Some(m)) = store.manifest(p.chain_index, p.pulse_index).await {
                let _ = manifests.send((p.chain_index, p.pulse_index, m));
            }
        }
    }
    let _ = manifests.send((last.chain_index, last.pulse_index, String::new()));
}
