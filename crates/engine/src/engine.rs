//! The schedule: one pulse every period, its value gathered one pulse ahead, committed to,
//! sealed, and the pulse published at its timestamp — never before.

use crate::commitment::{
    keep_next, recover_next, recover_prepared, resume_builder, CommitmentError, Recovered,
};
use crate::external::ExternalBeacon;
use crate::source::EntropySource;
use lavabeacon_format::builder::{BuildError, ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::manifest::{combine, ExternalEntry, Manifest, SourceEntry};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::pulse::External;
use lavabeacon_format::time::Slots;
use lavabeacon_format::Pulse;
use lavabeacon_signer::Signer;
use lavabeacon_store::{Leadership, Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use zeroize::Zeroizing;

pub use crate::clock::{Clock, ManualClock, SystemClock};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The chain: base URI, chain index, period.
    pub params: ChainParams,
    /// A pulse needs at least one healthy source credited this many bits.
    pub full_credit_bits: u32,
    /// A source that takes longer is left out of the pulse.
    pub source_timeout: Duration,
    /// A pulse that cannot be stored within this long after its timestamp is not published:
    /// its slot is skipped and the next pulse marks the gap. This bounds how long a value
    /// the engine prepared stays unpublished in the operator's hands
    /// ([`EngineConfig::default_late_tolerance`]).
    pub late_tolerance: Duration,
}

impl EngineConfig {
    /// The late-slot tolerance unless configured: a tenth of the period, at most 5 s.
    pub fn default_late_tolerance(period_ms: u32) -> Duration {
        Duration::from_millis(u64::from(period_ms / 10).min(5_000))
    }
}

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

/// A published pulse, with the moment it became public.
#[derive(Debug, Clone)]
pub struct Published {
    /// The pulse.
    pub pulse: Pulse,
    /// Its source manifest.
    pub manifest: Option<Manifest>,
    /// The clock when it was stored (never before its timestamp), Unix milliseconds.
    pub published_at_ms: i64,
    /// The same, Unix microseconds (for latency metrics).
    pub published_at_us: i64,
}

type SharedSource = Arc<Mutex<Box<dyn EntropySource>>>;

/// How long an append may take before the engine stops waiting for its answer (the store's own
/// timeouts end it well before, normally).
const APPEND_LIMIT: Duration = Duration::from_secs(10);

/// The engine. Its chain state (head, skip-list state, the sealed next value) is a cache of
/// what the store holds: [`Engine::step`] re-reads it after any failure.
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
    /// The value already sealed for the pulse after next by an earlier attempt, reused so that
    /// a pulse stored without our knowing (an append that answered too late) stays consistent.
    prepared: Option<(Zeroizing<[u8; 64]>, Manifest)>,
    commitment_lost: bool,
    external: Option<Arc<ExternalBeacon>>,
    /// The state above must be read from the store before the next attempt.
    stale: bool,
    /// The slot the last attempt was for, Unix ms.
    slot: Option<i64>,
}

impl Engine {
    /// An engine for the chain in `store`; its state is read from the store at the first
    /// [`Engine::step`] (so a store that is down now costs slots, not the engine).
    pub fn new(
        store: Arc<dyn Store>,
        signer: Arc<dyn Signer>,
        sources: Vec<Box<dyn EntropySource>>,
        cfg: EngineConfig,
        clock: Arc<dyn Clock>,
        leader: Option<Leadership>,
    ) -> Engine {
        let sources = sources
            .into_iter()
            .map(|s| (s.name().to_string(), Arc::new(Mutex::new(s))))
            .collect();
        Engine {
            builder: ChainBuilder::new_chain(cfg.params.clone()),
            store,
            signer,
            sources,
            cfg,
            clock,
            leader,
            last: None,
            next: None,
            prepared: None,
            commitment_lost: false,
            external: None,
            stale: true,
            slot: None,
        }
    }

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
        let mut e = Engine::new(store, signer, sources, cfg, clock, leader);
        e.reload().await?;
        Ok(e)
    }

    /// Reads the chain state and the sealed next value from the store.
    async fn reload(&mut self) -> Result<(), EngineError> {
        let (builder, last) =
            match resume_builder(self.store.as_ref(), self.cfg.params.clone()).await? {
                Some((b, last)) => (b, Some(last)),
                None => (ChainBuilder::new_chain(self.cfg.params.clone()), None),
            };
        let (next, commitment_lost) = match &last {
            None => (None, false),
            Some(l) => match recover_next(self.store.as_ref(), self.signer.as_ref(), l).await? {
                Recovered::Kept(v, m) => (Some((v, m)), false),
                Recovered::Lost(why) => {
                    tracing::warn!(
                        "the value pulse {} committed to is lost ({why}): the next pulse carries statusCode 3",
                        l.pulse_index
                    );
                    (None, true)
                }
            },
        };
        let chain = self.cfg.params.chain_index;
        let after_next = last.as_ref().map_or(2, |l| l.pulse_index + 2);
        let prepared = if next.is_some() || last.is_none() {
            recover_prepared(self.store.as_ref(), self.signer.as_ref(), chain, after_next).await?
        } else {
            None
        };
        self.builder = builder;
        self.last = last;
        self.next = next;
        self.prepared = prepared;
        self.commitment_lost = commitment_lost;
        self.stale = false;
        Ok(())
    }

    /// The store this engine writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The chain parameters.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Replaces the leader lock (after it was lost and acquired again); the state is read
    /// from the store again, since another engine may have written meanwhile.
    pub fn set_leader(&mut self, leader: Option<Leadership>) {
        self.leader = leader;
        self.stale = true;
    }

    /// The timestamp of the slot the last [`Engine::step`] was for.
    pub fn attempted_slot(&self) -> Option<i64> {
        self.slot
    }

    /// The newest pulse this engine knows of.
    pub fn last(&self) -> Option<&Pulse> {
        self.last.as_ref()
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

    /// The beacon's slots (the configuration is checked to have a period above 0).
    fn slots(&self) -> Slots {
        Slots::new(self.cfg.params.period_ms.max(1)).expect("period ≥ 1")
    }

    /// The next slot: one period after the last pulse, or the first period boundary not in the
    /// past; a lost commitment needs a gap (statusCode 3 says so).
    fn next_slot(&self) -> i64 {
        let slots = self.slots();
        let period = slots.period_ms();
        let first_free = slots.at_or_after(self.clock.now_ms());
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

    /// Prepares, signs and publishes the next pulse at its timestamp. On any error the slot is
    /// not published and the state is re-read from the store before the next attempt.
    pub async fn step(&mut self) -> Result<Published, EngineError> {
        if self.stale {
            self.slot = None;
            self.reload().await?;
        }
        let r = self.try_step().await;
        if r.is_err() {
            self.stale = true;
        }
        r
    }

    async fn try_step(&mut self) -> Result<Published, EngineError> {
        if let Some(l) = &self.leader {
            l.check().await?;
        }
        let t = self.next_slot();
        self.slot = Some(t);
        let chain = self.cfg.params.chain_index;
        let index = self.last.as_ref().map_or(1, |l| l.pulse_index + 1);
        let (value, manifest) = match &self.next {
            Some((v, m)) => (Hash512(**v), m.clone()),
            None => {
                let (v, m) = self.gather(chain, index).await?;
                (v, Some(m))
            }
        };
        let (next_value, next_manifest) = match self.prepared.take() {
            Some((v, m)) => (Hash512(*v), m),
            None => self.gather(chain, index + 1).await?,
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
        let (builder, pulse) = tokio::task::spawn_blocking(move || {
            builder.next(input, signer.as_ref()).map(|p| (builder, p))
        })
        .await
        .map_err(|e| EngineError::Build(BuildError::BadState(e.to_string())))??;
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
        let tolerance = self.cfg.late_tolerance.as_millis() as i64;
        let now = self.clock.now_ms();
        if now - t > tolerance {
            return Err(EngineError::Late {
                time_ms: t,
                late_ms: now - t,
                tolerance_ms: tolerance,
            });
        }
        let manifest_json = manifest
            .as_ref()
            .map(|m| serde_json::to_string(m).expect("manifest serialises"));
        // The append is awaited to its end, never dropped: a dropped append may still commit
        // (SQLite runs it on a worker thread of its own), and the engine must know which
        // happened. One that fails may still have committed: the head says so.
        let appended = tokio::time::timeout(
            APPEND_LIMIT,
            self.store
                .append(&pulse, manifest_json.as_deref(), self.leader.as_ref()),
        )
        .await;
        let failure = match appended {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(EngineError::Store(e)),
            Err(_) => Some(EngineError::Store(StoreError::unavailable(
                self.store.backend(),
                format!(
                    "the append did not answer within {} s",
                    APPEND_LIMIT.as_secs()
                ),
            ))),
        };
        if let Some(e) = failure {
            if !self.stored(&pulse).await {
                return Err(e);
            }
            tracing::warn!(
                "pulse {chain}/{index}: the store reported a failure ({e}) but holds the pulse: it is published"
            );
        }
        let stored_ms = self.clock.now_ms();
        if stored_ms - t > tolerance {
            tracing::warn!(
                "pulse {chain}/{index} was stored {} ms after its timestamp, over the tolerance of {tolerance} ms: the database was that slow",
                stored_ms - t
            );
        }
        let published_at_ms = self.clock.now_ms();
        let published_at_us = self.clock.now_us();
        // Housekeeping: a secret left behind is dropped with the next pulse's, and is no
        // secret any more once its pulse is public.
        if let Err(e) = self.store.drop_pending_secrets(chain, index).await {
            tracing::warn!("pulse {chain}/{index}: dropping its published secret: {e}");
        }
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

    /// Whether the store's head of the chain is `pulse` (after an append that reported an error
    /// or gave up, the database may still have committed it).
    async fn stored(&self, pulse: &Pulse) -> bool {
        let head = tokio::time::timeout(
            Duration::from_secs(2),
            self.store.last_in_chain(pulse.chain_index),
        )
        .await;
        matches!(head, Ok(Ok(Some(h))) if h.pulse_index == pulse.pulse_index && h.output_value == pulse.output_value)
    }
}
