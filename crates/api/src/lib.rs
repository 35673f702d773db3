//! The public beacon over HTTP. Handlers are thin: extract and parse, ask the store (or the
//! cached last pulse), and map the one error type ([`ApiError`]) to a status in one place.
//!
//! A pulse whose time has not come is never served, whoever wrote it to the store: every
//! answer is checked against the wall clock.

#![warn(missing_docs)]

pub mod error;
mod page;
mod routes;
pub mod when;

pub use error::ApiError;

use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use std::sync::{Arc, RwLock};

/// What the API says about the beacon it serves.
#[derive(Debug, Clone)]
pub struct BeaconInfo {
    /// The chain the engine writes (`chain/last` answers from the newest chain in the store).
    pub chain: u64,
    /// The period, in milliseconds.
    pub period_ms: u32,
    /// Why this is a test beacon (a software key, the synthetic camera…), or `None`.
    /// A test beacon says so in every response.
    pub test: Option<String>,
}

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

/// A pulse ready to serve: the pulse and its response body, made once.
#[derive(Debug)]
pub(crate) struct Served {
    pub pulse: Pulse,
    pub time_ms: i64,
    pub body: String,
}

/// The API's shared state.
pub struct Beacon {
    store: Arc<dyn Store>,
    info: BeaconInfo,
    last: RwLock<Option<Arc<Served>>>,
    engine: RwLock<EngineStatus>,
}

impl Beacon {
    /// The API over `store`.
    pub fn new(store: Arc<dyn Store>, info: BeaconInfo) -> Arc<Beacon> {
        Arc::new(Beacon {
            store,
            info,
            last: RwLock::new(None),
            engine: RwLock::new(EngineStatus::default()),
        })
    }

    /// Told by the engine the moment a pulse is stored: `/beacon/last` serves it from memory
    /// from then on (it would also find it in the store on its own).
    pub fn published(&self, pulse: &Pulse, manifest: Option<Manifest>) {
        self.remember(pulse);
        let mut e = self.engine.write().expect("engine status lock");
        if manifest.is_some() {
            e.manifest = manifest;
        }
        e.last_error = None;
        e.signer_ok = Some(true);
    }

    /// Told by the engine that a slot was skipped, and why.
    pub fn skipped(&self, why: String, signer_ok: bool) {
        let mut e = self.engine.write().expect("engine status lock");
        e.last_error = Some(why);
        e.signer_ok = Some(signer_ok);
    }

    /// The beacon's description.
    pub fn info(&self) -> &BeaconInfo {
        &self.info
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn engine_status(&self) -> EngineStatus {
        self.engine.read().expect("engine status lock").clone()
    }

    pub(crate) fn remember(&self, pulse: &Pulse) -> Arc<Served> {
        let served = Arc::new(self.served(pulse));
        let mut last = self.last.write().expect("last pulse lock");
        match &*last {
            Some(s) if s.time_ms >= served.time_ms => s.clone(),
            _ => {
                *last = Some(served.clone());
                served
            }
        }
    }

    pub(crate) fn cached_last(&self) -> Option<Arc<Served>> {
        self.last.read().expect("last pulse lock").clone()
    }

    pub(crate) fn served(&self, pulse: &Pulse) -> Served {
        Served {
            pulse: pulse.clone(),
            time_ms: pulse.time_ms().unwrap_or(i64::MAX),
            body: self.envelope(pulse),
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
    let test = beacon.info.test.as_deref().map(test_warning);
    let data = actix_web::web::Data::from(beacon);
    Ok(actix_web::HttpServer::new(move || {
        let (cors, warning) = routes::headers(test.as_deref());
        actix_web::App::new()
            .wrap(cors)
            .wrap(warning)
            .app_data(data.clone())
            .configure(routes::configure)
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run())
}
