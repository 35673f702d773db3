//! [`Beacon`], the state every handler shares: the store (every call bounded by the store
//! timeout), the newest pulse in memory, what the engine said, the stream limits, the metrics
//! and the shutdown signal. Also [`EngineStatus`] (the engine's view, for `/health`) and
//! [`Served`] (a pulse with its response body made once).

use crate::clock::{now_ms, public};
use crate::error::{self, ApiError};
use crate::limits::{StreamLimits, StreamSlot};
use crate::metrics::Metrics;
use crate::settings::BeaconInfo;
use actix_web::web::Bytes;
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::Pulse;
use lavabeacon_store::{Store, StoreError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// `/health` asks the store itself when nothing else has for this long, milliseconds.
const PROBE_MS: i64 = 500;

/// How long after a failed certificate read the store is not asked again for one.
const CERTIFICATE_RETRY_MS: i64 = 5_000;

/// How often an overdue newest pulse is looked for in the store, milliseconds: one request
/// looks ([`Beacon::time_to_recheck`]), the others meanwhile serve what is in memory.
pub(crate) const RECHECK_MS: i64 = 20;

/// How often the store watcher looks for a pulse while one is due ([`Beacon::watch`]).
pub const WATCH_DUE_MS: u64 = 20;

/// The engine's view, for `/health`: each source's status in the newest pulse, and how the
/// last attempt went. Without an engine (a read-only API node) it stays empty.
#[derive(Debug, Clone, Default)]
pub struct EngineStatus {
    /// The newest manifest the engine made.
    pub manifest: Option<Manifest>,
    /// Why the last slot was skipped, as a public category ("database unavailable", "hsm
    /// unavailable", "no entropy", "late", "disk full"…), if it was.
    pub last_error: Option<&'static str>,
    /// Whether the signer (HSM) answered at its last use: `false` only after a skip the
    /// signer caused.
    pub signer_ok: Option<bool>,
}

/// A pulse ready to serve: the pulse, its JSON response body and ETag, made once, so that
/// `/beacon/last` answers from memory without formatting anything.
#[derive(Debug)]
pub(crate) struct Served {
    pub pulse: Pulse,
    pub time_ms: i64,
    pub body: Bytes,
    pub etag: String,
    /// Its Server-Sent Event, made by the first stream that sends it and shared by the rest
    /// (10,000 subscribers once cost 10,000 formattings of the same pulse).
    pub event: OnceLock<Bytes>,
}

/// What the draw registry needs: the receipt signer, and a store handle that may write.
pub(crate) type DrawRegistry = (Arc<dyn crate::draws::ReceiptSigner>, Arc<dyn Store>);

/// The API's shared state.
pub struct Beacon {
    store: Arc<dyn Store>,
    info: BeaconInfo,
    /// The newest public pulse known, ready to serve.
    last: RwLock<Option<Arc<Served>>>,
    engine: RwLock<EngineStatus>,
    /// The certificate of the newest pulse, read from the store once per certificate:
    /// `/health` and `/metrics` say when it expires.
    certificate: RwLock<Option<Arc<lavabeacon_format::cert::Certificate>>>,
    /// When reading a certificate last failed, Unix ms: not asked again for a while, so that
    /// `/health` answers fast while the database is down.
    certificate_failed_ms: std::sync::atomic::AtomicI64,
    /// Each new newest pulse, for the SSE streams.
    news: broadcast::Sender<Arc<Served>>,
    metrics: Metrics,
    /// When a request last looked in the store for a newer pulse (Unix ms).
    checked_ms: AtomicI64,
    limits: Arc<StreamLimits>,
    stop: watch::Sender<bool>,
    /// When the store last answered or failed to (Unix ms), and whether it answered.
    db_seen_ms: AtomicI64,
    db_ok: AtomicBool,
    /// When `/health` last asked the store itself.
    probed_ms: AtomicI64,
    /// The private-bytes service, when this beacon serves it.
    private: OnceLock<Arc<lavabeacon_private::Service>>,
    /// What signs draw receipts, and the store handle that may write draws (the API's own is
    /// read-only), when this process runs the engine.
    receipts: OnceLock<DrawRegistry>,
    /// The witness of other logs this beacon is, when it is one.
    witness: OnceLock<Arc<crate::witness::Witness>>,
    /// Tiles served already (their bytes never change).
    pub(crate) tiles: crate::log::TileCache,
}

impl Beacon {
    /// The API over `store`.
    pub fn new(store: Arc<dyn Store>, info: BeaconInfo) -> Arc<Beacon> {
        Arc::new(Beacon {
            store,
            tiles: crate::log::TileCache::default(),
            limits: StreamLimits::new(info.max_streams_per_client, info.max_streams),
            info,
            last: RwLock::new(None),
            engine: RwLock::new(EngineStatus::default()),
            certificate: RwLock::new(None),
            certificate_failed_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            news: broadcast::channel(256).0,
            metrics: Metrics::default(),
            checked_ms: AtomicI64::new(0),
            stop: watch::channel(false).0,
            db_seen_ms: AtomicI64::new(i64::MIN),
            db_ok: AtomicBool::new(false),
            probed_ms: AtomicI64::new(i64::MIN),
            private: OnceLock::new(),
            receipts: OnceLock::new(),
            witness: OnceLock::new(),
        })
    }

    /// Serves private random bytes to the clients of `service` at `/private/v1/...` (without
    /// it those paths answer 404). Set once, before the server starts.
    pub fn serve_private(&self, service: Arc<lavabeacon_private::Service>) {
        let _ = self.private.set(service);
    }

    /// Registers draws (`POST /draws`), signing their receipts with `signer` (the beacon's
    /// key, opened for this) and writing them through `writer` (a store opened to write: the
    /// API's own is read-only). An API node without them refuses registrations.
    pub fn register_draws(
        &self,
        signer: Arc<dyn crate::draws::ReceiptSigner>,
        writer: Arc<dyn Store>,
    ) {
        let _ = self.receipts.set((signer, writer));
    }

    /// Makes this beacon a witness of the logs `role` names (C2SP tlog-witness, `POST
    /// /witness/add-checkpoint`; without it that path answers 404), cosigning with `role.key`
    /// and keeping what it cosigned through `writer` (a store opened to write: the API's own is
    /// read-only). Set once, before the server starts. Refuses an invalid key name, a log key
    /// that is not an Ed25519 note key, two keys for one origin, and a second registration.
    pub fn register_witness(
        &self,
        role: crate::witness::WitnessRole,
        writer: Arc<dyn Store>,
    ) -> Result<(), String> {
        let witness = crate::witness::Witness::new(role, writer)?;
        self.witness
            .set(Arc::new(witness))
            .map_err(|_| "a witness is registered already".to_string())
    }

    /// The witness this beacon is, if it is one.
    pub(crate) fn witness(&self) -> Option<&Arc<crate::witness::Witness>> {
        self.witness.get()
    }

    /// What signs draw receipts and writes draws, if this beacon registers them.
    pub(crate) fn draw_registry(&self) -> Option<&DrawRegistry> {
        self.receipts.get()
    }

    /// The private-bytes service, if this beacon serves it.
    pub(crate) fn private(&self) -> Option<&Arc<lavabeacon_private::Service>> {
        self.private.get()
    }

    /// Told by the engine the moment a pulse is stored, `latency_us` after its timestamp:
    /// `/beacon/last` serves it from memory and the stream sends it from then on.
    pub fn published(&self, pulse: &Pulse, manifest: Option<Manifest>, latency_us: i64) {
        self.remember(pulse);
        self.metrics.published(latency_us);
        let mut engine = self.engine.write().expect("engine status lock");
        if manifest.is_some() {
            engine.manifest = manifest;
        }
        engine.last_error = None;
        engine.signer_ok = Some(true);
    }

    /// Told by the engine that a slot was skipped: `category` is what `/health` shows the
    /// public as `lastError` (a short category such as "database unavailable", "hsm
    /// unavailable", "no entropy", "late", "disk full"; the engine logs the cause itself).
    /// Only `signer_failed` marks the HSM failing; any other skip leaves its state as it was.
    pub fn skipped(&self, category: &'static str, signer_failed: bool) {
        self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
        let mut engine = self.engine.write().expect("engine status lock");
        engine.last_error = Some(category);
        if signer_failed {
            engine.signer_ok = Some(false);
        }
    }

    /// Ends every open stream (SSE and bulk) at once and refuses new ones with 503, so that
    /// a graceful stop of the server ([`crate::ServerHandle::stop`]) is not held up by them.
    /// Call it first, then stop the server.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Whether [`Beacon::begin_shutdown`] was called.
    pub fn shutting_down(&self) -> bool {
        *self.stop.borrow()
    }

    /// Watches the store for pulses written elsewhere (another engine, or this one before the
    /// API was told): every `every`, and every [`WATCH_DUE_MS`] while a pulse is due, so that
    /// on a read-only API node the streams and long-polls get a new pulse within tens of
    /// milliseconds of its being stored. Runs until [`Beacon::begin_shutdown`].
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.next_look(every)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            self.refresh_newest().await;
        }
    }

    /// How long the watcher waits before it looks again: [`WATCH_DUE_MS`] from the time of the
    /// slot whose pulse is not here yet until the engine must have given up on it (the late
    /// tolerance, and a second for clocks that differ between hosts); otherwise until the next
    /// slot, but at most `every`.
    fn next_look(&self, every: Duration) -> Duration {
        let now = now_ms();
        let slots = self.slots();
        let slot = slots.at_or_before(now);
        let known = self.cached_last().map_or(i64::MIN, |s| s.time_ms);
        let window = i64::from(self.info.late_tolerance_ms) + 1_000;
        if known < slot && now - slot <= window {
            return Duration::from_millis(WATCH_DUE_MS);
        }
        let until_next = u64::try_from(slot + slots.period_ms() - now).unwrap_or(0);
        every.min(Duration::from_millis(until_next.max(1)))
    }

    /// The beacon's description.
    pub fn info(&self) -> &BeaconInfo {
        &self.info
    }

    /// The beacon's slots (a period of 0 is read as 1 ms, so arithmetic never divides by 0).
    pub(crate) fn slots(&self) -> lavabeacon_format::time::Slots {
        lavabeacon_format::time::Slots::new(self.info().period_ms.max(1)).expect("period ≥ 1")
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Waits for a store call at most [`BeaconInfo::store_timeout_ms`]; no answer by then is
    /// a 503. Each outcome is remembered for `/health`.
    pub(crate) async fn ask<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, ApiError> {
        let limit = Duration::from_millis(u64::from(self.info.store_timeout_ms.max(1)));
        let answer = match tokio::time::timeout(limit, call).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError::unavailable(
                self.store.backend(),
                format!("no answer within {} ms", limit.as_millis()),
            )),
        };
        match &answer {
            Ok(_) => self.db_seen(true),
            Err(e) if error::is_outage(e) => self.db_seen(false),
            Err(_) => {}
        }
        answer.map_err(ApiError::Unavailable)
    }

    fn db_seen(&self, ok: bool) {
        self.db_ok.store(ok, Ordering::Relaxed);
        self.db_seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Asks the store for its newest pulse (one indexed lookup) and keeps it if it is public.
    async fn refresh_newest(&self) {
        if let Ok(Some(p)) = self.ask(self.store.last()).await.map(public) {
            self.remember(&p);
        }
    }

    /// Whether the store answered at its last use, asking it (once, bounded, however many
    /// ask at once) when nobody has for [`PROBE_MS`].
    pub(crate) async fn database_ok(&self) -> bool {
        let now = now_ms();
        let probed = self.probed_ms.load(Ordering::Relaxed);
        if now.saturating_sub(self.db_seen_ms.load(Ordering::Relaxed)) >= PROBE_MS
            && now.saturating_sub(probed) >= PROBE_MS
            && self
                .probed_ms
                .compare_exchange(probed, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // The probe is a lookup worth having anyway: it also refreshes the newest pulse.
            self.refresh_newest().await;
        }
        self.db_ok.load(Ordering::Relaxed)
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Served>> {
        self.news.subscribe()
    }

    /// What a stream selects on to end when the server shuts down.
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// A place for one more stream from `peer`, or a 429 (or a 503 while shutting down).
    pub(crate) fn stream_slot(&self, peer: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        if self.shutting_down() {
            return Err(ApiError::ShuttingDown);
        }
        let slot = self.limits.acquire(peer);
        if slot.is_err() {
            self.metrics.streams_refused.fetch_add(1, Ordering::Relaxed);
        }
        slot
    }

    pub(crate) fn open_streams(&self) -> u32 {
        self.limits.open()
    }

    pub(crate) fn engine_status(&self) -> EngineStatus {
        self.engine.read().expect("engine status lock").clone()
    }

    /// Keeps `pulse` as the newest if it is newer than the one kept, and tells the streams.
    pub(crate) fn remember(&self, pulse: &Pulse) -> Arc<Served> {
        let served = Arc::new(self.served(pulse));
        {
            let mut last = self.last.write().expect("last pulse lock");
            match &*last {
                Some(kept) if kept.time_ms >= served.time_ms => return kept.clone(),
                _ => *last = Some(served.clone()),
            }
        }
        // Nobody listening is fine.
        let _ = self.news.send(served.clone());
        served
    }

    /// Whether this request should look in the store for a newer pulse: one request does, every
    /// [`RECHECK_MS`]; the others meanwhile serve what is in memory.
    pub(crate) fn time_to_recheck(&self, now: i64) -> bool {
        let last = self.checked_ms.load(Ordering::Relaxed);
        now - last >= RECHECK_MS
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The certificate the newest pulse names (read from the store the first time a pulse
    /// names it; `None` while the store cannot say).
    pub(crate) async fn newest_certificate(
        &self,
    ) -> Option<Arc<lavabeacon_format::cert::Certificate>> {
        let id = self.cached_last()?.pulse.certificate_id;
        if let Some(c) = self
            .certificate
            .read()
            .expect("certificate lock")
            .as_ref()
            .filter(|c| c.id == id)
        {
            return Some(c.clone());
        }
        use std::sync::atomic::Ordering;
        let now = crate::clock::now_ms();
        if now.saturating_sub(self.certificate_failed_ms.load(Ordering::Relaxed))
            < CERTIFICATE_RETRY_MS
        {
            return None;
        }
        let found = self
            .ask(self.store.certificate(&id))
            .await
            .ok()
            .flatten()
            .and_then(|der| lavabeacon_format::cert::Certificate::from_der(&der).ok());
        let Some(cert) = found.map(Arc::new) else {
            self.certificate_failed_ms.store(now, Ordering::Relaxed);
            return None;
        };
        *self.certificate.write().expect("certificate lock") = Some(cert.clone());
        Some(cert)
    }

    /// The certificate of the newest pulse if it was read already.
    pub(crate) fn cached_certificate(&self) -> Option<Arc<lavabeacon_format::cert::Certificate>> {
        let id = self.cached_last()?.pulse.certificate_id;
        self.certificate
            .read()
            .expect("certificate lock")
            .clone()
            .filter(|c| c.id == id)
    }

    pub(crate) fn cached_last(&self) -> Option<Arc<Served>> {
        self.last.read().expect("last pulse lock").clone()
    }

    pub(crate) fn served(&self, pulse: &Pulse) -> Served {
        Served {
            pulse: pulse.clone(),
            time_ms: pulse.time_ms().unwrap_or(i64::MAX),
            body: Bytes::from(self.envelope(pulse)),
            etag: etag_of(pulse),
            event: OnceLock::new(),
        }
    }

    /// `{"pulse": {...}}` in NIST field order; a test beacon adds a `lavabeacon` member
    /// beside (never inside) the signed pulse.
    pub(crate) fn envelope(&self, pulse: &Pulse) -> String {
        let line = lavabeacon_format::json::to_json_line(pulse);
        match &self.info.test {
            None => format!("{{\"pulse\":{line}}}"),
            Some(why) => format!(
                "{{\"pulse\":{line},\"lavabeacon\":{}}}",
                serde_json::json!({"test": true, "warning": lavabeacon_format::test_beacon::warning(why)})
            ),
        }
    }

    pub(crate) fn test_warning(&self) -> Option<String> {
        self.info
            .test
            .as_deref()
            .map(lavabeacon_format::test_beacon::warning)
    }
}

/// A pulse's ETag (in its JSON form): its outputValue.
pub(crate) fn etag_of(pulse: &Pulse) -> String {
    format!("\"{}\"", pulse.output_value.to_hex_lower())
}
