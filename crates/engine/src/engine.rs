//! The schedule: one pulse every period, its value gathered one pulse ahead, committed to,
//! sealed, and the pulse published at its timestamp — never before.

use crate::commitment::{keep_next, recover_next, resume_builder, CommitmentError, Recovered};
use crate::external::ExternalBeacon;
use crate::source::EntropySource;
use futures_util::future::BoxFuture;
use lavabeacon_format::builder::{BuildError, ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::manifest::{combine, ExternalEntry, Manifest, SourceEntry};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::pulse::External;
use lavabeacon_format::Pulse;
use lavabeacon_signer::Signer;
use lavabeacon_store::{Leadership, Store, StoreError};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use zeroize::Zeroizing;

/// Where the engine gets the time: the only thing in the beacon that reads the wall clock is
/// [`SystemClock`]; tests use [`ManualClock`] and run hours of pulses in milliseconds.
pub trait Clock: Send + Sync {
    /// Now, Unix milliseconds.
    fn now_ms(&self) -> i64;
    /// Returns at `t_ms` or later.
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left_us = t_ms * 1000 - now_us();
                if left_us <= 0 {
                    return;
                }
                if left_us > 3_000 {
                    tokio::time::sleep(Duration::from_micros(left_us as u64 - 2_000)).await;
                } else {
                    // The last milliseconds on a blocking thread: tokio's timer works in whole
                    // milliseconds and would publish up to 1–2 ms late.
                    let d = Duration::from_micros(left_us as u64);
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
                }
            }
        })
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A clock for tests: time moves only when someone sleeps (to the time they asked for) or
/// when the test advances it.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `t_ms`.
    pub fn new(t_ms: i64) -> Self {
        ManualClock(AtomicI64::new(t_ms))
    }
    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()> {
        self.0.fetch_max(t_ms, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The chain: base URI, chain index, period.
    pub params: ChainParams,
    /// A pulse needs at least one healthy source credited this many bits.
    pub full_credit_bits: u32,
    /// A source that takes longer is left out of the pulse.
    pub source_timeout: Duration,
}

/// Why a pulse was not published.
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
}

/// A published pulse, with the moment it became public.
#[derive(Debug, Clone)]
pub struct Published {
    /// The pulse.
    pub pulse: Pulse,
    /// Its source manifest.
    pub manifest: Option<Manifest>,
    /// The clock when it was stored (never before its timestamp), Unix milliseconds.
    pub published_at_ms: i64,
    /// The same, Unix microseconds by the wall clock (for latency metrics).
    pub published_at_us: i64,
}

type SharedSource = Arc<Mutex<Box<dyn EntropySource>>>;

/// The engine.
pub struct Engine {
    store: Arc<dyn Store>,
    signer: Arc<dyn Signer>,
    sources: Vec<(String, SharedSource)>,
    cfg: EngineConfig,
    clock: Arc<dyn Clock>,
    leader: Option<Leadership>,
    builder: ChainBuilder,
    last: Option<Pulse>,
    next: Option<(Zeroizing<[u8; 64]>, Option<Manifest>)>,
    commitment_lost: bool,
    external: Option<Arc<ExternalBeacon>>,
}

impl Engine {
    /// Starts (or resumes) the chain in `store`: the chain state and the sealed next value come
    /// from the store; a value that cannot be recovered makes the next pulse statusCode 3.
    pub async fn start(
        store: Arc<dyn Store>,
        signer: Arc<dyn Signer>,
        sources: Vec<Box<dyn EntropySource>>,
        cfg: EngineConfig,
        clock: Arc<dyn Clock>,
        leader: Option<Leadership>,
    ) -> Result<Engine, EngineError> {
        let (builder, last) = match resume_builder(store.as_ref(), cfg.params.clone()).await? {
            Some((b, last)) => (b, Some(last)),
            None => (ChainBuilder::new_chain(cfg.params.clone()), None),
        };
        let (next, commitment_lost) = match &last {
            None => (None, false),
            Some(l) => match recover_next(store.as_ref(), signer.as_ref(), l).await? {
                Recovered::Kept(v, m) => (Some((v, m)), false),
                Recovered::Lost(_) => (None, true),
            },
        };
        let sources = sources
            .into_iter()
            .map(|s| (s.name().to_string(), Arc::new(Mutex::new(s))))
            .collect();
        Ok(Engine {
            store,
            signer,
            sources,
            cfg,
            clock,
            leader,
            builder,
            last,
            next,
            commitment_lost,
            external: None,
        })
    }

    /// Fills each pulse's `external` field from another beacon's newest pulse.
    pub fn with_external(mut self, external: ExternalBeacon) -> Self {
        self.external = Some(Arc::new(external));
        self
    }

    /// The other beacon's newest pulse for our pulse at `t`, fetched off the async threads
    /// and cut off at the source timeout like any source.
    async fn external(&self, t: i64) -> Option<(External, ExternalEntry)> {
        let ext = self.external.clone()?;
        let job = tokio::task::spawn_blocking({
            let ext = ext.clone();
            move || ext.fetch(t)
        });
        Some(
            match tokio::time::timeout(self.cfg.source_timeout, job).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => ext.failed(&e.to_string()),
                Err(_) => ext.failed("timeout"),
            },
        )
    }

    /// Samples every source (each on a blocking thread, cut off at the timeout) and combines
    /// the healthy ones into a value, with its manifest.
    async fn gather(&self, chain: u64, index: u64) -> Result<(Hash512, Manifest), EngineError> {
        let mut entries = Vec::new();
        let mut digests: Vec<(String, [u8; 64])> = Vec::new();
        let mut full = false;
        for (name, source) in &self.sources {
            let s = source.clone();
            let job = tokio::task::spawn_blocking(move || match s.try_lock() {
                Ok(mut src) => Some(src.collect()),
                Err(_) => None, // still busy with an earlier, timed-out sample
            });
            let status = match tokio::time::timeout(self.cfg.source_timeout, job).await {
                Err(_) => Err("timeout".to_string()),
                Ok(Err(e)) => Err(format!("failed: {e}")),
                Ok(Ok(None)) => Err("busy: an earlier sample has not finished".into()),
                Ok(Ok(Some(Err(e)))) => Err(e.to_string()),
                Ok(Ok(Some(Ok(c)))) => Ok(c),
            };
            match status {
                Ok(c) => {
                    full |= c.credited_bits >= self.cfg.full_credit_bits;
                    entries.push(SourceEntry {
                        name: name.clone(),
                        status: "ok".into(),
                        credited_bits: c.credited_bits,
                        digest: Some(Hash512(c.digest).to_hex_lower()),
                    });
                    digests.push((name.clone(), c.digest));
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
            let why = manifest
                .sources
                .iter()
                .map(|s| format!("{}: {}", s.name, s.status))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(EngineError::NoEntropy(why));
        }
        let parts: Vec<(&str, &[u8])> = digests.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        Ok((combine(&parts), manifest))
    }

    /// The next slot: one period after the last pulse, or the first period boundary not in the
    /// past; a lost commitment needs a gap (statusCode 3 says so).
    fn next_slot(&self) -> i64 {
        let period = i64::from(self.cfg.params.period_ms);
        let now = self.clock.now_ms();
        let first_free = (now + period - 1).div_euclid(period) * period;
        match &self.last {
            None => first_free,
            Some(l) => {
                let after = l.time_ms().unwrap_or(0) + period;
                let t = after.max(first_free);
                if self.commitment_lost && t == after {
                    t + period
                } else {
                    t
                }
            }
        }
    }

    /// Prepares, signs and publishes the next pulse at its timestamp.
    pub async fn step(&mut self) -> Result<Published, EngineError> {
        let t = self.next_slot();
        let chain = self.cfg.params.chain_index;
        let index = self.last.as_ref().map_or(1, |l| l.pulse_index + 1);
        let (value, manifest) = match self.next.take() {
            Some((v, m)) => (Hash512(*v), m),
            None => {
                let (v, m) = self.gather(chain, index).await?;
                (v, Some(m))
            }
        };
        let gathered = self.gather(chain, index + 1).await;
        let (next_value, next_manifest) = match gathered {
            Ok(g) => g,
            Err(e) => {
                // Keep this pulse's value: it is still committed to.
                self.next = Some((Zeroizing::new(value.0), manifest));
                return Err(e);
            }
        };
        let mut input = NextPulse::new(t, value, precommitment(&next_value));
        input.commitment_lost = self.commitment_lost && self.last.is_some();
        let mut manifest = manifest;
        if let Some((external, entry)) = self.external(t).await {
            input.external = external;
            if let Some(m) = manifest.as_mut() {
                m.external = Some(Box::new(entry));
            }
        }
        let signer = self.signer.clone();
        let mut builder = self.builder.clone();
        let built = tokio::task::spawn_blocking(move || {
            builder.next(input, signer.as_ref()).map(|p| (builder, p))
        })
        .await
        .map_err(|e| EngineError::Build(BuildError::BadState(e.to_string())))?;
        let (builder, pulse) = match built {
            Ok(b) => b,
            Err(e) => {
                self.next = Some((Zeroizing::new(value.0), manifest));
                return Err(e.into());
            }
        };
        keep_next(
            self.store.as_ref(),
            self.signer.as_ref(),
            chain,
            index + 1,
            &next_value,
            Some(&next_manifest),
        )
        .await?;
        self.clock.sleep_until(t).await;
        let manifest_json = manifest
            .as_ref()
            .map(|m| serde_json::to_string(m).expect("manifest serialises"));
        self.store
            .append(&pulse, manifest_json.as_deref(), self.leader.as_ref())
            .await?;
        let published_at_ms = self.clock.now_ms();
        let published_at_us = now_us();
        self.store.drop_pending_secrets(chain, index).await?;
        self.builder = builder;
        self.last = Some(pulse.clone());
        self.next = Some((Zeroizing::new(next_value.0), Some(next_manifest)));
        self.commitment_lost = false;
        Ok(Published {
            pulse,
            manifest,
            published_at_ms,
            published_at_us,
        })
    }
}
