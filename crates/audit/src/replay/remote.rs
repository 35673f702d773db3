//! A running beacon as a source: pulses through its bulk route, manifests through the chains'
//! bulk sources route (each paged by `Link: rel="next"`, on a thread of its own), and
//! certificates fetched when a pulse first names them.

use super::feed::Feed;
use super::Window;
use crate::layout::manifest_key;
use lavabeacon_format::cert::{Certificate, CertificateSet};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::input::{InputError, Item, Location};
use lavabeacon_format::verify::{CertLookup, Input};
use lavabeacon_store::{redact, redact_urls};
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, RwLock};

/// Reads the beacon at `base` (no trailing slash).
pub(super) fn feed(base: &str, window: Window) -> Result<Feed, String> {
    let last: serde_json::Value = ureq::get(&format!("{base}/beacon/last"))
        .call()
        // ureq names the URL: shown without its password.
        .map_err(|e| redact_urls(&e.to_string()))?
        .into_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| format!("{}/beacon/last: not a pulse", redact(base)))?;
    let newest_chain = last["pulse"]["chainIndex"].as_u64().unwrap_or(1);
    let total = last["pulse"]["pulseIndex"].as_u64();
    let name: Arc<str> = Arc::from(redact(base).as_str());

    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Input, InputError>>(8192);
    let to = if window.to == i64::MAX {
        String::new()
    } else {
        format!("&to={}", window.to)
    };
    let first = format!("/beacon/2.0/pulses?from={}{to}", window.from.max(0));
    let (pulses_base, source) = (base.to_string(), name.clone());
    std::thread::spawn(move || {
        let mut line = 0;
        let r = page_through(&pulses_base, first, |text| {
            line += 1;
            let location = Location {
                source: source.clone(),
                line,
            };
            tx.send(Ok(Input::Item(Item::Record { location, text })))
                .is_ok()
        });
        if let Err(e) = r {
            let _ = tx.send(Err(InputError {
                name: source.to_string(),
                source: std::io::Error::other(e),
            }));
        }
    });

    let (mtx, mrx) = std::sync::mpsc::sync_channel(4096);
    let manifests_base = base.to_string();
    std::thread::spawn(move || {
        for chain in 1..=newest_chain {
            let first = format!("/beacon/2.0/chain/{chain}/sources?from=1");
            let _ = page_through(&manifests_base, first, |m| match manifest_key(&m) {
                Some((c, i)) => mtx.send((c, i, m)).is_ok(),
                None => true,
            });
        }
    });
    Ok(Feed {
        items: Box::new(rx.into_iter()),
        manifests: mrx,
        total,
        name: name.to_string(),
    })
}

/// Follows `Link: <…>; rel="next"` answers of a bulk route from `first`, handing on each line
/// until `each` says stop.
fn page_through(
    base: &str,
    first: String,
    mut each: impl FnMut(String) -> bool,
) -> Result<(), String> {
    let mut next = Some(first);
    while let Some(path) = next.take() {
        let url = format!("{base}{path}");
        let resp = ureq::get(&url)
            .call()
            .map_err(|e| redact_urls(&e.to_string()))?;
        next = resp
            .header("Link")
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split('>').next())
            .map(str::to_string);
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let line = line.map_err(|e| format!("{}: {e}", redact(&url)))?;
            if !line.is_empty() && !each(line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Certificates fetched from the beacon when a pulse first names them, each checked against
/// the id it was fetched by (SHA-512 of its DER) before it is trusted.
pub(super) struct FetchedCerts {
    base: String,
    known: CertificateSet,
    fetched: RwLock<HashMap<Hash512, Option<Arc<Certificate>>>>,
}

impl FetchedCerts {
    /// Those of the beacon at `base` (no trailing slash), besides `known`.
    pub(super) fn new(base: &str, known: CertificateSet) -> Self {
        FetchedCerts {
            base: base.to_string(),
            known,
            fetched: RwLock::new(HashMap::new()),
        }
    }
}

impl CertLookup for FetchedCerts {
    fn get(&self, id: &Hash512) -> Option<Arc<Certificate>> {
        if let Some(c) = self.known.get(id) {
            return Some(c.clone());
        }
        if let Some(c) = self.fetched.read().expect("cert cache").get(id) {
            return c.clone();
        }
        let url = format!("{}/beacon/2.0/certificate/{}", self.base, id.to_hex_lower());
        let got = ureq::get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .and_then(|pem| lavabeacon_format::cert::parse_certificates(pem.as_bytes()).ok())
            .and_then(|v| v.into_iter().find(|c| c.id == *id))
            .map(Arc::new);
        self.fetched
            .write()
            .expect("cert cache")
            .insert(*id, got.clone());
        got
    }
}
