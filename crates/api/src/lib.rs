//! The public beacon over HTTP. Handlers are thin: extract and parse, ask the store (or the
//! cached last pulse), and map the one error type ([`ApiError`]) to a status in one place.
//!
//! A pulse whose time has not come is never served, whoever wrote it to the store: every
//! answer is checked against the wall clock.
//!
//! New pulses reach the API two ways: the engine in the same process tells it at once
//! ([`Beacon::published`]), and a watcher polls the store ([`Beacon::watch`]) so that a
//! read-only API node, or a standby, serves what another engine writes.

#![warn(missing_docs)]

mod bulk;
pub mod error;
pub mod metrics;
mod openapi;
mod page;
mod routes;
mod stream;
pub mod when;
pub mod xml;

/// Stops a running server ([`serve`]).
pub use actix_web::dev::ServerHandle;
pub use error::ApiError;
pub use openapi::{openapi, Param, RouteDoc};
pub use routes::ROUTES;

use actix_web::web::Bytes;
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use metrics::Metrics;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// What the API says about the beacon it serves.
#[derive(Debug, Clone)]
pub struct BeaconInfo {
    /// The period, in milliseconds.
    pub period_ms: u32,
    /// Why this is a test beacon (a software key, the synthetic camera…), or `None`.
    /// A test beacon says so in every response.
    pub test: Option<String>,
    /// Periods covered by one answer of the bulk route ([`DEFAULT_BULK_PERIODS`]).
    pub bulk_max_periods: u32,
}

/// Periods one bulk answer covers unless configured otherwise (20,000: two weeks of 60-second
/// pulses, about 40 MB).
pub const DEFAULT_BULK_PERIODS: u32 = bulk::MAX_PERIODS;

/// The engine's view, for `/health`: each source's status in the newest pulse, and how the
/// last attempt went. Without an engine (a read-only API node) it stays empty.
#[derive(Debug, Clone, Default)]
pub struct EngineStatus {
    /// The newest manifest the engine made.
    pub manifest: Option<Manifest>,
    /// Why the last slot was skipped, if it was.
    pub last_error: Option<String>,
    /// Whether the signer (HSM) answered at the last pulse.
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
}

impl Beacon {
    /// The API over `store`.
    pub fn new(store: Arc<dyn Store>, info: BeaconInfo) -> Arc<Beacon> {
        Arc::new(Beacon {
            store,
            info,
            last: RwLock::new(None),
            engine: RwLock::new(EngineStatus::default()),
            news: broadcast::channel(256).0,
            metrics: Metrics::default(),
            checked_ms: AtomicI64::new(0),
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

    /// Told by the engine that a slot was skipped, and why.
    pub fn skipped(&self, why: String, signer_ok: bool) {
        self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
        let mut e = self.engine.write().expect("engine status lock");
        e.last_error = Some(why);
        e.signer_ok = Some(signer_ok);
    }

    /// Watches the store for pulses written elsewhere (another engine, or this one before the
    /// API was told), every `every`. Runs until the process ends.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Ok(Some(p)) = self.store.last().await {
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

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Served>> {
        self.news.subscribe()
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
/// runs when awaited (or spawned); its handle stops it.
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
    .listen(listener)?
    .run())
}
