//! # lavabeacon-private
//!
//! Private random bytes for authenticated clients: unlike pulses, these are secrets, given to
//! one client once and then forgotten. This crate is everything but the HTTP server: the
//! signed-request protocol, the clients file, the checks in their order, each client's rate
//! and daily quota, and the generator the bytes come from. The API crate serves it; the
//! `lavabeacon` binary manages the clients file and signs requests with it.
//!
//! # Layout
//! In the order a request meets them:
//! - [`protocol`]: the one definition of the signed request (the string to sign, HMAC-SHA256,
//!   the headers, dates and nonces), used by the server, the `lavabeacon bytes` client and the
//!   examples in `docs/private-bytes.md`.
//! - [`clients`]: the clients file (JSON, 0600, written atomically) and the commands that
//!   change it; secrets are made here and shown once.
//! - [`gate`]: the clients made ready for the checks ([`gate::Registry`]) and the checks in
//!   the protocol's order: custom header, address, Origin, then key, signature, date, nonce.
//! - [`answer`]: the query string read strictly, and the answer's body in the form asked for.
//! - [`quota`]: each client's rate and bytes a day.
//! - [`drbg`]: ChaCha20 with fast key erasure, reseeded from the engine's healthy sources.
//! - [`Service`] (here): all of the above behind one call, with per-client counters.

pub mod answer;
pub mod clients;
pub mod drbg;
pub mod gate;
pub mod protocol;
pub mod quota;

use answer::Ask;
use clients::ClientsFile;
use drbg::Drbg;
use gate::{Headers, Nonces, Refusal, Registry, Request};
use quota::Quotas;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use zeroize::Zeroizing;

/// Which route a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Bytes,
    Integers,
}

/// A request served: its body (zeroized when dropped), its content type and the client's
/// bytes left today.
pub struct Answer {
    pub content_type: &'static str,
    pub body: Zeroizing<Vec<u8>>,
    pub bytes_left: u64,
    pub client: String,
}

/// Counters of one client: never a value, never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub bytes: u64,
    /// Refusals by reason (see [`Refusal::reason`]).
    pub refused: BTreeMap<&'static str, u64>,
}

/// The label of refusals that came before a client was known (a wrong custom header).
pub const UNKNOWN_CLIENT: &str = "(unknown)";

/// The private-bytes service: the clients (reloadable), the nonces seen, the quotas, the
/// generator and the counters.
pub struct Service {
    registry: RwLock<Arc<Registry>>,
    nonces: Nonces,
    quotas: Quotas,
    drbg: Mutex<Drbg>,
    counters: Mutex<BTreeMap<String, Counters>>,
    test: bool,
}

impl Service {
    /// `test`: a test beacon's service, whose JSON answers say `"test": true`.
    pub fn new(file: &ClientsFile, drbg: Drbg, test: bool) -> Self {
        let registry = Registry::new(file);
        let quotas = Quotas::default();
        quotas.sync(&registry);
        Service {
            registry: RwLock::new(Arc::new(registry)),
            nonces: Nonces::default(),
            quotas,
            drbg: Mutex::new(drbg),
            counters: Mutex::new(BTreeMap::new()),
            test,
        }
    }

    /// Takes a new clients file: from the next request on, its clients and keys count; the
    /// limits of unchanged clients carry on.
    pub fn reload(&self, file: &ClientsFile) {
        let registry = Registry::new(file);
        self.quotas.sync(&registry);
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(registry);
    }

    /// How many clients there are.
    pub fn client_count(&self) -> usize {
        self.registry().clients().len()
    }

    fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fresh material from the engine's healthy sources.
    pub fn reseed(&self, material: &[u8], now: Instant) {
        self.drbg
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reseed(material, now);
    }

    /// The sources failed their health tests: refuse (503) until the next reseed.
    pub fn unhealthy(&self, why: &str) {
        self.drbg
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unhealthy(why);
    }

    /// Authenticates a request that asks for no bytes (a draw's registration): every check of
    /// the protocol, in its order, up to the nonce, and the client's request rate (no bytes are
    /// taken from its day). The client's name, or the refusal; counted as [`Service::handle`]
    /// counts.
    pub fn authenticate<H: Headers + ?Sized>(
        &self,
        r: &Request<H>,
        now_secs: i64,
    ) -> Result<String, Refusal> {
        let mut client = UNKNOWN_CLIENT.to_string();
        let result = (|| -> Result<String, Refusal> {
            let registry = self.registry();
            let i = registry.identify(r.headers)?;
            client = registry.clients()[i].name.clone();
            let admitted = registry.admit(i, r, now_secs, &self.nonces)?;
            self.quotas.take(&admitted.client, 0, now_secs)?;
            Ok(client.clone())
        })();
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let c = counters.entry(client).or_default();
        match &result {
            Ok(_) => c.requests += 1,
            Err(refusal) => *c.refused.entry(refusal.reason).or_default() += 1,
        }
        result
    }

    /// Serves one request: every check in the protocol's order, then the bytes.
    pub fn handle<H: Headers + ?Sized>(
        &self,
        route: Route,
        r: &Request<H>,
        now_secs: i64,
        now: Instant,
    ) -> Result<Answer, Refusal> {
        let mut client = UNKNOWN_CLIENT.to_string();
        let result = self.serve(route, r, now_secs, now, &mut client);
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let c = counters.entry(client).or_default();
        match &result {
            Ok(a) => {
                c.requests += 1;
                c.bytes += a.body.len() as u64;
            }
            Err(refusal) => *c.refused.entry(refusal.reason).or_default() += 1,
        }
        result
    }

    fn serve<H: Headers + ?Sized>(
        &self,
        route: Route,
        r: &Request<H>,
        now_secs: i64,
        now: Instant,
        client: &mut String,
    ) -> Result<Answer, Refusal> {
        let registry = self.registry();
        let i = registry.identify(r.headers)?;
        // From here on, refusals are counted against the client the header named.
        *client = registry.clients()[i].name.clone();
        let admitted = registry.admit(i, r, now_secs, &self.nonces)?;
        let ask = match route {
            Route::Bytes => Ask::bytes(r.query)?,
            Route::Integers => Ask::integers(r.query)?,
        };
        let granted = self.quotas.take(&admitted.client, ask.cost(), now_secs)?;
        let mut drbg = self.drbg.lock().unwrap_or_else(|e| e.into_inner());
        let body = ask
            .body(self.test, |out| drbg.fill(out, now))
            .map_err(|e| {
                self.quotas.refund(&admitted.client, ask.cost(), now_secs);
                Refusal::new(
                    503,
                    "entropy",
                    format!("no private bytes now: {}", e.reason),
                )
                .retry_after(e.retry_after)
            })?;
        drop(drbg);
        Ok(Answer {
            content_type: ask.content_type(),
            body,
            bytes_left: granted.bytes_left,
            client: admitted.client,
        })
    }

    /// Bytes `client` may still have today.
    pub fn bytes_left(&self, client: &str, now_secs: i64) -> Option<u64> {
        self.quotas.bytes_left(client, now_secs)
    }

    /// Every client's counters, for `/metrics`.
    pub fn counters(&self) -> BTreeMap<String, Counters> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets nonces whose window has passed.
    pub fn prune(&self, now_secs: i64) {
        self.nonces.prune(now_secs);
    }
}
