//! What `serve` and `api` add when the configuration asks for it: HTTPS (`[api.tls]`), the
//! plain-HTTP redirect (`[api] redirect_http`) and private random bytes (`[private]`); and
//! their upkeep: on SIGHUP, and when the files change, the certificate and the clients file
//! are read again (a bad new one is refused with a log line and the old one stays), old
//! nonces are forgotten, and on `api` nodes the OS reseeds the generator every period (in
//! `serve` the engine does, with each pulse: `super::serve`'s observer).

use super::lifecycle::fail;
use super::EXIT_USAGE;
use crate::config::Config;
use lavabeacon_api::Tls;
use lavabeacon_private::clients::ClientsFile;
use lavabeacon_private::drbg::Drbg;
use lavabeacon_private::Service;
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// HTTPS and private bytes, as configured.
pub(super) struct Secure {
    pub tls: Option<Arc<Tls>>,
    pub private: Option<Arc<Service>>,
    clients_file: Option<PathBuf>,
    period: Duration,
    /// Whether the engine of this process reseeds the generator (else the OS does).
    engine_feeds: bool,
}

/// How often the files are looked at for a change (SIGHUP is at once).
const POLL: Duration = Duration::from_secs(2);

/// Loads the certificate and the clients file named in `c`. Either failing is a usage error
/// at start (later, at a reload, the old one stays).
/// With `engine_feeds` (`serve`), the generator waits for the engine's first pulse and is then
/// reseeded by each one; otherwise (`api` nodes) the OS reseeds it now and every period.
pub(super) fn load(c: &Config, test: bool, engine_feeds: bool) -> Result<Secure, ExitCode> {
    let tls = match &c.api.tls {
        Some(t) => Some(Tls::load(&t.cert, &t.key).map_err(|e| {
            tracing::error!("[api.tls]: {e}");
            ExitCode::from(EXIT_USAGE)
        })?),
        None => None,
    };
    let period = Duration::from_millis(u64::from(c.beacon.period_ms));
    let private = match &c.private.clients_file {
        Some(path) => {
            let file = ClientsFile::load(path).map_err(|e| {
                tracing::error!("[private] clients_file: {e}");
                ExitCode::from(EXIT_USAGE)
            })?;
            if tls.is_none() {
                tracing::warn!(
                    "private bytes are served without [api.tls]: use HTTPS, or a TLS proxy in front that listens on a trusted network only"
                );
            }
            forbid_core_dumps();
            // Fresh for two periods after each reseed; a refused client retries in one.
            let drbg = Drbg::new(2 * period, period);
            let service = Arc::new(Service::new(&file, drbg, test));
            if !engine_feeds {
                reseed(&service);
            }
            tracing::info!(
                "private bytes for {} clients from {}",
                file.clients.len(),
                path.display()
            );
            Some(service)
        }
        None => None,
    };
    Ok(Secure {
        tls,
        private,
        clients_file: c.private.clients_file.clone(),
        period,
        engine_feeds,
    })
}

/// Private bytes pass through this process's memory: keep them out of core dumps (and other
/// processes of the same user out of its memory).
fn forbid_core_dumps() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r != 0 {
        tracing::warn!(
            "could not turn core dumps off (prctl): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// New material for the generator: 64 bytes of the OS CSPRNG, which fails loudly rather than
/// give weak bytes; a failure marks the generator unhealthy (503) until the next success.
fn reseed(service: &Service) {
    let mut material = zeroize::Zeroizing::new([0u8; 64]);
    match rand::rngs::OsRng.try_fill_bytes(&mut *material) {
        Ok(()) => service.reseed(&*material, Instant::now()),
        Err(e) => {
            tracing::error!("private bytes: the OS random source failed: {e}");
            service.unhealthy("the OS random source failed");
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads the clients file again: taken if it is good, else the old one stays.
fn reload_clients(service: &Service, path: &Path) {
    match ClientsFile::load(path) {
        Ok(file) => {
            service.reload(&file);
            tracing::info!(
                "reloaded {}: {} clients",
                path.display(),
                file.clients.len()
            );
        }
        Err(e) => tracing::error!("kept the clients loaded before: {e}"),
    }
}

fn reload_tls(tls: &Tls) {
    match tls.reload() {
        Ok(()) => tracing::info!("reloaded the certificate {}", tls.cert_path().display()),
        Err(e) => tracing::error!("kept the certificate loaded before: {e}"),
    }
}

impl Secure {
    /// Starts the upkeep tasks (inside the runtime): reloads on SIGHUP and on a change of the
    /// files, reseeds every period, forgets old nonces.
    pub fn spawn_upkeep(&self) {
        let tls = self.tls.clone();
        let private = self.private.clone();
        let clients_file = self.clients_file.clone();
        if tls.is_none() && private.is_none() {
            return;
        }
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::error!("no SIGHUP handler: reloads happen only when the files change");
                return;
            };
            let mut clients_seen = clients_file.as_deref().and_then(modified);
            let mut poll = tokio::time::interval(POLL);
            loop {
                let hangup = tokio::select! {
                    _ = hup.recv() => true,
                    _ = poll.tick() => false,
                };
                if let Some(tls) = &tls {
                    if hangup || tls.changed() {
                        reload_tls(tls);
                    }
                }
                if let (Some(service), Some(path)) = (&private, &clients_file) {
                    let now = modified(path);
                    if hangup || now != clients_seen {
                        clients_seen = now;
                        reload_clients(service, path);
                    }
                }
            }
        });
        if let Some(service) = self.private.clone() {
            let (period, os_reseeds) = (self.period, !self.engine_feeds);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    if os_reseeds {
                        reseed(&service);
                    }
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    service.prune(now);
                }
            });
        }
    }

    /// Starts the redirect listener, if configured (inside the runtime).
    pub fn start_redirect(&self, c: &Config, https_port: u16) -> Result<(), ExitCode> {
        let Some(addr) = &c.api.redirect_http else {
            return Ok(());
        };
        if self.tls.is_none() {
            tracing::error!("[api] redirect_http needs [api.tls]");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            tracing::error!("cannot listen on {addr}: {e}");
            ExitCode::from(EXIT_USAGE)
        })?;
        let server = lavabeacon_api::serve_redirect(listener, https_port)
            .map_err(|e| fail("starting the redirect listener", e))?;
        tokio::spawn(server);
        tracing::info!("redirecting http://{addr} to https");
        Ok(())
    }
}
