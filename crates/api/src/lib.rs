//! The public beacon over HTTP. Handlers are thin: extract and parse, ask the store (or the
//! cached last pulse), and map the one error type ([`ApiError`]) to a status in one place.
//!
//! A pulse whose time has not come is never served, whoever wrote it to the store: every
//! answer is checked against the wall clock.
//!
//! New pulses reach the API two ways: the engine in the same process tells it at once
//! ([`Beacon::published`]), and a watcher polls the store ([`Beacon::watch`]) so that a
//! read-only API node, or a standby, serves what another engine writes.
//!
//! It never waits long and no client can starve it: every store call a request makes is
//! bounded ([`BeaconInfo::store_timeout_ms`], then 503), `/health` answers from memory and one
//! cheap lookup, long answers (SSE catch-up, bulk) read the store a page at a time and hold no
//! database connection while they wait on a client, and each client may hold only so many of
//! them open ([`BeaconInfo::max_streams_per_client`], then 429). [`Beacon::begin_shutdown`]
//! ends every stream at once, so the server stops within [`SHUTDOWN_TIMEOUT_SECS`].

#![warn(missing_docs)]

mod bulk;
pub mod error;
mod limits;
pub mod metrics;
mod openapi;
mod page;
mod routes;
mod stream;
pub mod xml;

/// Stops a running server ([`serve`]).
pub use actix_web::dev::ServerHandle;
pub use error::ApiError;
pub use openapi::{openapi, Param, RouteDoc};
pub use routes::ROUTES;

use actix_web::web::Bytes;
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::Pulse;
use lavabeacon_store::{Store, StoreError};
use limits::{StreamLimits, StreamSlot};
use metrics::Metrics;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// What the API says about the beacon it serves, and how it protects itself. Make one with
/// [`BeaconInfo::new`] and set the fields that differ from the defaults:
///
/// ```
/// let mut info = lavabeacon_api::BeaconInfo::new(60_000);
/// info.test = Some("software signing key".into());
/// assert_eq!(info.late_tolerance_ms, 5_000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BeaconInfo {
    /// The period, in milliseconds.
    pub period_ms: u32,
    /// Why this is a test beacon (a software key, the synthetic camera…), or `None`.
    /// A test beacon says so in every response.
    pub test: Option<String>,
    /// Periods covered by one answer of the bulk route ([`DEFAULT_BULK_PERIODS`]).
    pub bulk_max_periods: u32,
    /// How long after its timestamp a pulse may still be published: the engine publishes a
    /// pulse within this of its timestamp or skips the slot. `/health` turns "degraded" once
    /// the pulse of the current period is more than this overdue. Default
    /// [`default_late_tolerance_ms`]: a tenth of the period, at most 5 s.
    pub late_tolerance_ms: u32,
    /// Open streams (SSE and bulk answers) allowed per client address (default
    /// [`DEFAULT_STREAMS_PER_CLIENT`]); more get a 429.
    pub max_streams_per_client: u32,
    /// Open streams allowed in all (default [`DEFAULT_MAX_STREAMS`]); more get a 429.
    pub max_streams: u32,
    /// How long a request waits for the store before it answers 503 (default
    /// [`DEFAULT_STORE_TIMEOUT_MS`]): while the database is down every request fails fast.
    pub store_timeout_ms: u32,
}

impl BeaconInfo {
    /// A beacon of period `period_ms` with every other setting at its default.
    pub fn new(period_ms: u32) -> BeaconInfo {
        BeaconInfo {
            period_ms,
            test: None,
            bulk_max_periods: DEFAULT_BULK_PERIODS,
            late_tolerance_ms: default_late_tolerance_ms(period_ms),
            max_streams_per_client: DEFAULT_STREAMS_PER_CLIENT,
            max_streams: DEFAULT_MAX_STREAMS,
            store_timeout_ms: DEFAULT_STORE_TIMEOUT_MS,
        }
    }
}

/// The late tolerance of a beacon of period `period_ms` unless configured otherwise: a tenth
/// of the period, at most 5 s.
pub fn default_late_tolerance_ms(period_ms: u32) -> u32 {
    (period_ms / 10).min(5_000)
}

/// Periods one bulk answer covers unless configured otherwise (20,000: two weeks of 60-second
/// pulses, about 40 MB).
pub const DEFAULT_BULK_PERIODS: u32 = bulk::MAX_PERIODS;

/// Open streams per client unless configured otherwise.
pub const DEFAULT_STREAMS_PER_CLIENT: u32 = 8;

/// Open streams in all unless configured otherwise.
pub const DEFAULT_MAX_STREAMS: u32 = 512;

/// How long a request waits for the store unless configured otherwise, milliseconds.
pub const DEFAULT_STORE_TIMEOUT_MS: u32 = 1_000;

/// How long an open connection may delay [`serve`]'s graceful stop: after this the server
/// closes it (an SSE client that never reads, a slow download).
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// `/health` asks the store itself when nothing else has for this long, milliseconds.
const PROBE_MS: i64 = 500;

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

/// A pulse ready to serve: the pulse, its JSON response body and ETag, made once.
#[derive(Debug)]
pub(crate) struct Served {
    pub pulse: Pulse,
    pub time_ms: i64,
    pub body: Bytes,
    pub etag: String,
}

/// The API's shared state.
pub struct Beacon {
    store: Arc<dyn Store>,
    info: BeaconInfo,
    last: RwLock<Option<Arc<Served>>>,
    engine: RwLock<EngineStatus>,
    news: broadcast::Sender<Arc<Served>>,
    metrics: Metrics,
    checked_ms: AtomicI64,
    limits: Arc<StreamLimits>,
    stop: watch::Sender<bool>,
    /// When the store last answered or failed to (Unix ms), and whether it answered.
    db_seen_ms: AtomicI64,
    db_ok: AtomicBool,
    /// When `/health` last asked the store itself.
    probed_ms: AtomicI64,
}

impl Beacon {
    /// The API over `store`.
    pub fn new(store: Arc<dyn Store>, info: BeaconInfo) -> Arc<Beacon> {
        Arc::new(Beacon {
            store,
            limits: StreamLimits::new(info.max_streams_per_client, info.max_streams),
            info,
            last: RwLock::new(None),
            engine: RwLock::new(EngineStatus::default()),
            news: broadcast::channel(256).0,
            metrics: Metrics::default(),
            checked_ms: AtomicI64::new(0),
            stop: watch::channel(false).0,
            db_seen_ms: AtomicI64::new(i64::MIN),
            db_ok: AtomicBool::new(false),
            probed_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// Told by the engine the moment a pulse is stored, `latency_us` after its timestamp:
    /// `/beacon/last` serves it from memory and the stream sends it from then on.
    pub fn published(&self, pulse: &Pulse, manifest: Option<Manifest>, latency_us: i64) {
        self.remember(pulse);
        self.metrics.published(latency_us);
        let mut e = self.engine.write().expect("engine status lock");
        if manifest.is_some() {
            e.manifest = manifest;
        }
        e.last_error = None;
        e.signer_ok = Some(true);
    }

    /// Told by the engine that a slot was skipped: `category` is what `/health` shows the
    /// public as `lastError` (a short category such as "database unavailable", "hsm
    /// unavailable", "no entropy", "late", "disk full"; the engine logs the cause itself).
    /// Only `signer_failed` marks the HSM failing; any other skip leaves its state as it was.
    pub fn skipped(&self, category: &'static str, signer_failed: bool) {
        self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
        let mut e = self.engine.write().expect("engine status lock");
        e.last_error = Some(category);
        if signer_failed {
            e.signer_ok = Some(false);
        }
    }

    /// Ends every open stream (SSE and bulk) at once and refuses new ones with 503, so that
    /// a graceful stop of the server ([`ServerHandle::stop`]) is not held up by them. Call it
    /// first, then stop the server.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Whether [`Beacon::begin_shutdown`] was called.
    pub fn shutting_down(&self) -> bool {
        *self.stop.borrow()
    }

    /// Watches the store for pulses written elsewhere (another engine, or this one before the
    /// API was told), every `every`. Runs until [`Beacon::begin_shutdown`].
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Ok(Some(p)) = self.ask(self.store.last()).await {
                if p.time_ms().is_ok_and(|t| t <= now_ms()) {
                    self.remember(&p);
                }
            }
        }
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
        let r = match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::unavailable(
                self.store.backend(),
                format!("no answer within {} ms", limit.as_millis()),
            )),
        };
        match &r {
            Ok(_) => self.db_seen(true),
            Err(e) if error::is_outage(e) => self.db_seen(false),
            Err(_) => {}
        }
        r.map_err(ApiError::Unavailable)
    }

    fn db_seen(&self, ok: bool) {
        self.db_ok.store(ok, Ordering::Relaxed);
        self.db_seen_ms.store(now_ms(), Ordering::Relaxed);
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
            // One indexed lookup, which also refreshes the newest pulse.
            if let Ok(Some(p)) = self.ask(self.store.last()).await {
                if p.time_ms().is_ok_and(|t| t <= now_ms()) {
                    self.remember(&p);
                }
            }
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
                Some(s) if s.time_ms >= served.time_ms => return s.clone(),
                _ => *last = Some(served.clone()),
            }
        }
        // Nobody listening is fine.
        let _ = self.news.send(served.clone());
        served
    }

    /// Whether this request should look in the store for a newer pulse: one request does, every
    /// [`routes::RECHECK_MS`]; the others meanwhile serve what is in memory.
    pub(crate) fn time_to_recheck(&self, now: i64) -> bool {
        let last = self.checked_ms.load(Ordering::Relaxed);
        now - last >= routes::RECHECK_MS
            && self
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
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
                serde_json::json!({"test": true, "warning": test_warning(why)})
            ),
        }
    }

    pub(crate) fn test_warning(&self) -> Option<String> {
        self.info.test.as_deref().map(test_warning)
    }
}

/// A pulse's ETag (in its JSON form): its outputValue.
pub(crate) fn etag_of(pulse: &Pulse) -> String {
    format!("\"{}\"", pulse.output_value.to_hex_lower())
}

/// The warning a test beacon gives with everything it serves.
pub fn test_warning(why: &str) -> String {
    format!("TEST BEACON ({why}): its pulses are not unpredictable to the operator and must not be used for anything that matters")
}

/// The wall clock, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Starts the HTTP server on `listener` with `workers` worker threads. The returned server
/// runs when awaited (or spawned); its handle stops it. To stop promptly, end the streams
/// first: `beacon.begin_shutdown(); handle.stop(true).await;` returns within
/// [`SHUTDOWN_TIMEOUT_SECS`] however many clients are connected (one that never reads is cut
/// off then).
pub fn serve(
    beacon: Arc<Beacon>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    use actix_web::dev::Service;
    let test = beacon.test_warning();
    let data = actix_web::web::Data::from(beacon);
    Ok(actix_web::HttpServer::new(move || {
        let (cors, warning) = routes::headers(test.as_deref());
        let counted = data.clone();
        actix_web::App::new()
            .wrap(cors)
            .wrap(warning)
            .wrap_fn(move |req, srv| {
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let fut = srv.call(req);
                let counted = counted.clone();
                async move {
                    let res = fut.await?;
                    counted.metrics().request(route, res.status().as_u16());
                    Ok(res)
                }
            })
            .app_data(data.clone())
            .configure(routes::configure)
    })
    .workers(workers.max(1))
    // actix waits 30 s for open connections by default; streams end at `begin_shutdown`, and
    // a client that never reads must not hold the stop up for longer than this.
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    // A client that closes its connection is gone at once, and so is its stream (and its place
    // among the open streams), instead of at the next write to it. (No beacon client sends a
    // request and then half-closes while it waits for the answer.)
    .h1_allow_half_closed(false)
    .listen(listener)?
    .run())
}
