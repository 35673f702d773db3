//! One pulse's value: every source sampled on a blocking thread and cut off at the source
//! timeout, the healthy ones combined into the value with
//! `lavabeacon_format::manifest::combine` (the very function auditors recompute it with), and
//! the manifest saying what each source did. The other beacon's pulse for the `external` field
//! is fetched the same way: off the async threads, cut off at the same timeout.

use crate::source::external::ExternalBeacon;
use crate::source::{EntropySource, PrivateMaterial};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::manifest::{combine, ExternalEntry, Manifest, SourceEntry};
use lavabeacon_format::pulse::External;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A source shared with the blocking thread that samples it: a sample cut off at the timeout
/// may still be running there when the next pulse asks again.
type SharedSource = Arc<Mutex<Box<dyn EntropySource>>>;

/// The engine's sources and the other beacon, with the rules for one pulse's sampling.
pub(crate) struct SourceSet {
    sources: Vec<(String, SharedSource)>,
    external: Option<Arc<ExternalBeacon>>,
    /// A source (or the other beacon) slower than this is left out of the pulse.
    timeout: Duration,
    /// A pulse needs at least one healthy source credited this many bits.
    full_credit_bits: u32,
}

impl SourceSet {
    pub(crate) fn new(
        sources: Vec<Box<dyn EntropySource>>,
        timeout: Duration,
        full_credit_bits: u32,
    ) -> SourceSet {
        SourceSet {
            sources: sources
                .into_iter()
                .map(|s| (s.name().to_string(), Arc::new(Mutex::new(s))))
                .collect(),
            external: None,
            timeout,
            full_credit_bits,
        }
    }

    /// Fills each pulse's `external` field from `external`'s newest pulse from now on.
    pub(crate) fn set_external(&mut self, external: ExternalBeacon) {
        self.external = Some(Arc::new(external));
    }

    /// The other beacon's newest pulse for our pulse at `t_ms`; `None` when none is configured.
    pub(crate) async fn external(&self, t_ms: i64) -> Option<(External, ExternalEntry)> {
        let ext = self.external.clone()?;
        let job = tokio::task::spawn_blocking({
            let ext = ext.clone();
            move || ext.fetch(t_ms)
        });
        Some(match tokio::time::timeout(self.timeout, job).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => ext.failed(&e.to_string()),
            Err(_) => ext.failed("timeout"),
        })
    }

    /// Samples every source and combines the healthy ones into the value of pulse `index` of
    /// `chain`, with its manifest and the private material of the same samples (never
    /// published). Fails, with each source's status, when no healthy source was credited full
    /// entropy.
    pub(crate) async fn gather(
        &self,
        chain: u64,
        index: u64,
    ) -> Result<(Hash512, Manifest, PrivateMaterial), String> {
        let mut secrets = Vec::new();
        let mut entries = Vec::new();
        let mut digests: Vec<(String, [u8; 64])> = Vec::new();
        let mut full = false;
        for (name, source) in &self.sources {
            let s = source.clone();
            let job = tokio::task::spawn_blocking(move || match s.try_lock() {
                Ok(mut src) => Some(src.collect()),
                Err(_) => None, // still busy with an earlier, timed-out sample
            });
            let status = match tokio::time::timeout(self.timeout, job).await {
                Err(_) => Err("timeout".to_string()),
                Ok(Err(e)) => Err(format!("failed: {e}")),
                Ok(Ok(None)) => Err("busy: an earlier sample has not finished".into()),
                Ok(Ok(Some(Err(e)))) => Err(e.to_string()),
                Ok(Ok(Some(Ok(c)))) => Ok(c),
            };
            match status {
                Ok(c) => {
                    full |= c.credited_bits >= self.full_credit_bits;
                    entries.push(SourceEntry {
                        name: name.clone(),
                        status: "ok".into(),
                        credited_bits: c.credited_bits,
                        digest: Some(Hash512(c.digest).to_hex_lower()),
                    });
                    digests.push((name.clone(), c.digest));
                    secrets.push(c.secret);
                }
                Err(why) => entries.push(SourceEntry {
                    name: name.clone(),
                    status: why,
                    credited_bits: 0,
                    digest: None,
                }),
            }
        }
        let manifest = Manifest {
            version: 1,
            chain_index: chain,
            pulse_index: index,
            sources: entries,
            external: None,
        };
        if !full {
            return Err(manifest
                .sources
                .iter()
                .map(|s| format!("{}: {}", s.name, s.status))
                .collect::<Vec<_>>()
                .join("; "));
        }
        let parts: Vec<(&str, &[u8])> = digests.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        Ok((
            combine(&parts),
            manifest,
            PrivateMaterial::combine(&secrets),
        ))
    }
}
