//! One pulse, [`Engine::step`]: the next slot (one period after the last pulse, or the first
//! boundary not in the past), its value gathered one pulse ahead, committed to and sealed, and
//! the pulse published at its timestamp — never before, and not at all past the late
//! tolerance. The loop around it is [`crate::run`].

use crate::combine::SourceSet;
use crate::commitment::{keep_next, recover_next, recover_prepared, resume_builder, Recovered};
use crate::keys::{KeyRing, Keys};
use crate::source::external::ExternalBeacon;
use crate::source::{EntropySource, PrivateMaterial};
use lavabeacon_format::builder::{BuildError, ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::Slots;
use lavabeacon_format::Pulse;
use lavabeacon_signer::Signer;
use lavabeacon_store::{key_switch_followed, KeySwitch, Leadership, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

// What a caller of `step` handles, at hand beside the engine.
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::error::EngineError;

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
    /// Secret material from the fresh samples this pulse's step took, for the private-bytes
    /// generator; never published (`None` when the step reused samples taken before).
    pub private_material: Option<PrivateMaterial>,
}

impl Published {
    /// How long after its timestamp the pulse became public, in microseconds.
    pub fn latency_us(&self) -> i64 {
        self.published_at_us - self.pulse.time_ms().unwrap_or(0) * 1000
    }
}

/// How long before its certificate expires the engine starts warning, unless told otherwise
/// ([`Engine::with_expiry_warning`]).
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// How often an expiry warning is repeated in the log.
const EXPIRY_WARNING_EVERY_MS: i64 = 3_600_000;

/// How long an append may take before the engine stops waiting for its answer (the store's own
/// timeouts end it well before, normally).
const APPEND_LIMIT: Duration = Duration::from_secs(10);

/// The engine. Its chain state (head, skip-list state, the sealed next value) is a cache of
/// what the store holds: [`Engine::step`] re-reads it after any failure.
pub struct Engine {
    store: Arc<dyn Store>,
    /// The key that signs the next slot: the configured one, or the one the key schedule
    /// names ([`crate::keys`]).
    signer: Arc<dyn Signer>,
    /// Every key opened, and the ring that opens scheduled ones.
    keys: Keys,
    /// The chain configured; the key schedule may move the engine to a higher one.
    configured_chain: u64,
    /// Warn this long before the certificate expires.
    expiry_warning: Duration,
    /// When the last expiry warning was logged, Unix ms.
    warned_expiry_ms: Option<i64>,
    /// With no pulse in this chain yet: the newest stored pulse's time (of any chain), which a
    /// new chain's first slot must come after.
    newest_stored_ms: Option<i64>,
    sources: SourceSet,
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
    /// The state above must be read from the store before the next attempt.
    stale: bool,
    /// The slot the last attempt was for, Unix ms.
    slot: Option<i64>,
    /// The transparency log's checkpoints, when the log has a key.
    log: Option<crate::log::LogHook>,
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
        let sources = SourceSet::new(sources, cfg.source_timeout, cfg.full_credit_bits);
        Engine {
            builder: ChainBuilder::new_chain(cfg.params.clone()),
            store,
            keys: Keys::new(&signer),
            configured_chain: cfg.params.chain_index,
            expiry_warning: DEFAULT_EXPIRY_WARNING,
            warned_expiry_ms: None,
            newest_stored_ms: None,
            signer,
            sources,
            cfg,
            clock,
            leader,
            last: None,
            next: None,
            prepared: None,
            commitment_lost: false,
            stale: true,
            slot: None,
            log: None,
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

    /// Reads the chain state and the sealed next value from the store, after the key schedule
    /// has said which chain (and key) is in effect now.
    async fn reload(&mut self) -> Result<(), EngineError> {
        let switches = self.store.key_switches().await?;
        if let Some(s) = self.switch_at(&switches, self.clock.now_ms()).cloned() {
            self.signer = self.keys.signer_for(self.store.as_ref(), &s).await?;
            self.cfg.params.chain_index = s.chain;
        }
        self.reload_state(&switches).await
    }

    /// Reads the state of the chain in `cfg` and its sealed next value, with the key already
    /// chosen (a scheduled chain switch chooses it for a slot still ahead, so this must not
    /// choose again for now).
    async fn reload_state(&mut self, switches: &[KeySwitch]) -> Result<(), EngineError> {
        let (builder, last) =
            match resume_builder(self.store.as_ref(), self.cfg.params.clone()).await? {
                Some((b, last)) => (b, Some(last)),
                None => (ChainBuilder::new_chain(self.cfg.params.clone()), None),
            };
        // What is pending was sealed by the key that signed the last pulse, or by one
        // scheduled lately (an attempt for the slot after it): open those too.
        let now = self.clock.now_ms();
        let mut sealers: Vec<KeySwitch> = switches
            .iter()
            .filter(|s| s.at_ms >= now - 3 * i64::from(self.cfg.params.period_ms))
            .cloned()
            .collect();
        if let Some(t) = last.as_ref().and_then(|l| l.time_ms().ok()) {
            sealers.extend(self.switch_at(switches, t).cloned());
        }
        self.keys.open_all(self.store.as_ref(), &sealers).await;
        let unsealing = self.keys.unsealing(&self.signer);
        let (next, commitment_lost) = match &last {
            None => (None, false),
            Some(l) => match recover_next(self.store.as_ref(), &unsealing, l).await? {
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
            recover_prepared(self.store.as_ref(), &unsealing, chain, after_next).await?
        } else {
            None
        };
        // A new chain starts after everything stored, whatever chain that is in.
        self.newest_stored_ms = match &last {
            Some(_) => None,
            None => self.store.last().await?.and_then(|p| p.time_ms().ok()),
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

    /// The signer (its certificate names the key every pulse is signed with).
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
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

    /// Opens the keys the key schedule names with `ring` (the HSM); without one, a schedule
    /// naming another key stops the engine signing at its time (rotation needs an HSM).
    pub fn with_key_ring(mut self, ring: Arc<dyn KeyRing>) -> Self {
        self.keys.set_ring(ring);
        self
    }

    /// Also tries `key` when opening a sealed value (the configured key, when the schedule
    /// names another: it may have sealed the value a restart finds).
    pub fn with_unsealing_key(mut self, key: Arc<dyn Signer>) -> Self {
        self.keys.add(key);
        self
    }

    /// Keeps the transparency log's checkpoints: one signed after each pulse. The receiver
    /// is told the size of each checkpoint stored (for [`crate::log::submit`]).
    pub fn with_log(
        mut self,
        checkpointer: crate::log::Checkpointer,
    ) -> (Self, tokio::sync::watch::Receiver<u64>) {
        let (stored, wake) = tokio::sync::watch::channel(0);
        self.log = Some(crate::log::LogHook {
            checkpointer,
            stored,
        });
        (self, wake)
    }

    /// After a pulse: its checkpoint (when the log is on). Never fails the engine.
    pub async fn after_pulse(&self) {
        if let Some(hook) = &self.log {
            hook.after_pulse(self.store.as_ref()).await;
        }
    }

    /// Warns in the log (hourly) from `lead` before the signing certificate expires (default
    /// [`DEFAULT_EXPIRY_WARNING`]).
    pub fn with_expiry_warning(mut self, lead: Duration) -> Self {
        self.expiry_warning = lead;
        self
    }

    /// The switch of `switches` in effect at `time_ms`, unless the configuration has moved on
    /// to a later chain than it names (the operator started one by configuration).
    fn switch_at<'s>(&self, switches: &'s [KeySwitch], time_ms: i64) -> Option<&'s KeySwitch> {
        key_switch_followed(switches, time_ms, self.configured_chain)
    }

    /// Takes the key (and chain) the schedule names for slot `t`. Whether the chain changed
    /// (then the state has been read again for the new chain, and the slot must be chosen
    /// again).
    async fn follow_schedule(&mut self, t: i64) -> Result<bool, EngineError> {
        let switches = self.store.key_switches().await?;
        let Some(s) = self.switch_at(&switches, t).cloned() else {
            return Ok(false);
        };
        if s.certificate_id != self.signer.certificate().id {
            let signer = self.keys.signer_for(self.store.as_ref(), &s).await?;
            tracing::info!(
                "key {} (certificate {}) signs from {} on, as scheduled",
                s.key_label,
                s.certificate_id.short(),
                lavabeacon_format::time::format_time_stamp(s.at_ms).unwrap_or_default()
            );
            self.signer = signer;
        }
        if s.chain != self.cfg.params.chain_index {
            tracing::info!(
                "chain {} starts as scheduled (chain {} ends)",
                s.chain,
                self.cfg.params.chain_index
            );
            let ended = self.cfg.params.chain_index;
            self.cfg.params.chain_index = s.chain;
            self.reload_state(&switches).await?;
            // The values the ended chain committed to will never be published: nothing needs
            // them sealed any more. (A failure costs nothing but a row.)
            if let Err(e) = self.store.drop_pending_secrets(ended, u64::MAX).await {
                tracing::warn!("chain {ended}: dropping its sealed values: {e}");
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Slot `t` lies within the signing certificate's validity; warns (hourly) when it ends
    /// within the warning lead time.
    fn check_certificate(&mut self, t: i64) -> Result<(), EngineError> {
        let cert = self.signer.certificate();
        if t < cert.not_before.saturating_mul(1000) || t > cert.not_after.saturating_mul(1000) {
            return Err(EngineError::Certificate {
                time_ms: t,
                certificate: cert.id.short(),
                not_before: cert.not_before,
                not_after: cert.not_after,
            });
        }
        let left_ms = cert.not_after.saturating_mul(1000) - t;
        let lead_ms = self.expiry_warning.as_millis() as i64;
        let due = self
            .warned_expiry_ms
            .is_none_or(|w| t - w >= EXPIRY_WARNING_EVERY_MS);
        if left_ms < lead_ms && due {
            self.warned_expiry_ms = Some(t);
            tracing::warn!(
                certificate = cert.id.short(),
                "the signing certificate expires in {} h ({}): rotate a new key in (lavabeacon keys rotate)",
                left_ms / 3_600_000,
                lavabeacon_format::time::format_time_stamp(cert.not_after * 1000).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Fills each pulse's `external` field from another beacon's newest pulse.
    pub fn with_external(mut self, external: ExternalBeacon) -> Self {
        self.sources.set_external(external);
        self
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
            None => match self.newest_stored_ms {
                Some(t) => first_free.max(t + period),
                None => first_free,
            },
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
        let mut t = self.next_slot();
        self.slot = Some(t);
        if self.follow_schedule(t).await? {
            t = self.next_slot();
            self.slot = Some(t);
            self.follow_schedule(t).await?;
        }
        self.check_certificate(t)?;
        let chain = self.cfg.params.chain_index;
        let index = self.last.as_ref().map_or(1, |l| l.pulse_index + 1);
        // Private material from every gather of this step (fresh samples only).
        let mut material = Vec::new();
        let (value, manifest) = match &self.next {
            Some((v, m)) => (Hash512(**v), m.clone()),
            None => {
                let (v, m, secret) = self
                    .sources
                    .gather(chain, index)
                    .await
                    .map_err(EngineError::NoEntropy)?;
                material.push(secret);
                (v, Some(m))
            }
        };
        let (next_value, next_manifest) = match self.prepared.take() {
            Some((v, m)) => (Hash512(*v), m),
            None => {
                let (v, m, secret) = self
                    .sources
                    .gather(chain, index + 1)
                    .await
                    .map_err(EngineError::NoEntropy)?;
                material.push(secret);
                (v, m)
            }
        };
        let mut input = NextPulse::new(t, value, precommitment(&next_value));
        input.commitment_lost = self.commitment_lost && self.last.is_some();
        let mut manifest = manifest;
        if let Some((external, entry)) = self.sources.external(t).await {
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
        // One reading of the engine's clock for both: the pulse became public when it was stored.
        let published_at_us = self.clock.now_us();
        let published_at_ms = published_at_us.div_euclid(1000);
        if published_at_ms - t > tolerance {
            tracing::warn!(
                "pulse {chain}/{index} was stored {} ms after its timestamp, over the tolerance of {tolerance} ms: the database was that slow",
                published_at_ms - t
            );
        }
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
            private_material: (!material.is_empty()).then(|| PrivateMaterial::combine(&material)),
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
