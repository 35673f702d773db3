//! `lavabeacon serve`: the engine and the public API in one process. The API starts first and
//! serves what the store holds even while this engine is a standby; once it leads, each pulse
//! is served from memory the moment it is stored.
//!
//! The engine runs on its own thread and runtime with its own database connections
//! ([`EngineThread`]); the API reads through a separate, bounded store, so no request can take
//! what the engine needs.

use super::engine::{EngineThread, ENGINE_STOP};
use super::lifecycle::{configure, fail, multi_thread_runtime, stop_signal, ConfigArgs};
use super::EXIT_USAGE;
use crate::config::Config;
use lavabeacon_api::{Beacon, BeaconInfo};
use lavabeacon_engine::engine::{EngineError, Published};
use lavabeacon_engine::run::Observer;
use lavabeacon_store::{Role, Store};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: ConfigArgs,
    /// Where to listen, HOST:PORT (overrides the configuration; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

/// How long the HTTP server may take to close its connections once told to stop.
const API_STOP: Duration = Duration::from_secs(3);

pub fn run(args: Args) -> ExitCode {
    super::lifecycle::ignore_hangup_while_starting();
    let path = args.common.config.clone();
    let c = match configure(args.common, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (c, listener) = match bind(c, args.listen) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // The engine first: it migrates the database the API then only reads.
    let mut engine = match EngineThread::open(&c) {
        Ok(e) => e,
        Err(code) => return code,
    };
    multi_thread_runtime().block_on(async move {
        let store = match lavabeacon_store::open_with(&c.database.url, Role::Api).await {
            Ok(s) => s,
            Err(e) => return fail("database (API)", e),
        };
        let (beacon, handle, private) = match start_api(
            &c,
            store,
            engine.test_reason.clone(),
            engine.log_vkey.clone(),
            listener,
            true,
        ) {
            Ok(x) => x,
            Err(code) => return code,
        };
        register_draws(&c, &beacon).await;
        register_witness(&c, &beacon).await;
        engine.run(Arc::new(ApiObserver(beacon.clone(), private)));
        super::rotate::spawn_switch_on_hangup(path, c.clone());
        stop_signal().await;
        tracing::info!("stopping");
        beacon.begin_shutdown();
        // The engine lets go of the leader lock at once, whatever the API is doing.
        tokio::task::spawn_blocking(move || engine.stop(ENGINE_STOP))
            .await
            .ok();
        let _ = tokio::time::timeout(API_STOP + Duration::from_secs(1), handle.stop(true)).await;
        ExitCode::SUCCESS
    })
}

/// Hands the API each pulse the moment it is stored, and each failed slot by category (the
/// cause is in the operator's log, never in a public answer). The run loop tells a slot's
/// failure once, however many retries fail in it. With private bytes on, it also reseeds their
/// generator with each pulse's private material (from the same health-tested samples, never
/// published), and stops it (503) when the sources fail their health tests.
struct ApiObserver(Arc<Beacon>, Option<Arc<lavabeacon_private::Service>>);

impl Observer for ApiObserver {
    fn published(&self, p: &Published) {
        self.0
            .published(&p.pulse, p.manifest.clone(), p.latency_us());
        if let (Some(private), Some(m)) = (&self.1, &p.private_material) {
            private.reseed(m.bytes(), std::time::Instant::now());
        }
    }
    fn slot_failed(&self, _slot_ms: Option<i64>, e: &EngineError) {
        self.0.skipped(e.category(), e.signer_failed());
        if let (Some(private), EngineError::NoEntropy(_)) = (&self.1, e) {
            private.unhealthy("the entropy sources failed their health tests");
        }
    }
}

/// Binds the address `--listen` or the configuration names, before anything else starts, so
/// that a port in use is a usage error at once; or, started by systemd socket activation
/// (`LISTEN_FDS=1` for this process), takes the socket systemd opened (port 443 with no
/// privilege at all). Returns the configuration as used.
pub(super) fn bind(
    mut c: Config,
    listen: Option<String>,
) -> Result<(Config, std::net::TcpListener), ExitCode> {
    if let Some(l) = listen {
        c.api.listen = l;
    } else if let Some(l) = activated_socket() {
        tracing::info!("listening on the socket systemd passed");
        return Ok((c, l));
    }
    match std::net::TcpListener::bind(&c.api.listen) {
        Ok(l) => {
            widen_backlog(&l);
            Ok((c, l))
        }
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", c.api.listen);
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Connections the kernel queues for the server before it accepts them. The standard library
/// listens with 128: 10,000 subscribers reconnecting at once (after a restart, a balancer's
/// failover) overflowed it, and each dropped attempt waited a second for its retry. actix-web's
/// own default is 2,048. (Capped by `net.core.somaxconn`, 4,096 on current kernels.)
const BACKLOG: libc::c_int = 2_048;

/// Raises a listening socket's backlog to [`BACKLOG`]: Linux takes a second `listen` on a
/// listening socket as a new backlog. Should it fail, the socket still works with 128.
fn widen_backlog(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: `listen` on a descriptor this listener owns and keeps open; no memory is shared.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        tracing::warn!(
            "could not raise the listen backlog to {BACKLOG}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Draw receipts, signed by the configured key through a handle of their own (its own HSM
/// session), so a registration never waits on, or holds, the session the engine signs pulses
/// with. Without private-bytes clients nobody can register, and nothing is opened.
/// Draws are written through a store handle of the engine's role: the API's is read-only.
async fn register_draws(c: &Config, beacon: &Arc<lavabeacon_api::Beacon>) {
    if c.private.clients_file.is_none() {
        return;
    }
    let signer = match super::engine::build::signer(c) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "draw registration is off: the signing key cannot be opened for receipts: {e}"
            );
            return;
        }
    };
    match lavabeacon_store::open_with(&c.database.url, Role::Engine).await {
        Ok(writer) => beacon.register_draws(Arc::new(KeyReceipts(signer)), writer),
        Err(e) => tracing::warn!(
            "draw registration is off: the database cannot be opened to write draws: {e}"
        ),
    }
}

/// The log as `/log/key` and `/log/witnesses` describe it.
fn log_info(c: &Config, vkey: String) -> lavabeacon_api::LogInfo {
    let witnesses: Vec<lavabeacon_api::WitnessInfo> = c
        .log
        .witnesses
        .iter()
        .map(|w| lavabeacon_api::WitnessInfo {
            name: w.name().to_string(),
            vkey: w.vkey.clone(),
            url: w.url.clone(),
        })
        .collect();
    lavabeacon_api::LogInfo {
        origin: c.log_origin(),
        vkey,
        required: c.log.witnesses_required.unwrap_or(witnesses.len()),
        witnesses,
    }
}

/// This beacon as a witness of the logs `[witness] logs` names: its key (made in the token on
/// first start) through a handle of its own, and its state written through an engine-role
/// store handle (the API's is read-only), so a restart never forgets what it cosigned.
async fn register_witness(c: &Config, beacon: &Arc<lavabeacon_api::Beacon>) {
    if c.witness.logs.is_empty() {
        return;
    }
    let logs = match c
        .witness
        .logs
        .iter()
        .map(|v| lavabeacon_tlog::note::VerifierKey::parse(v).map_err(|e| format!("{v:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the witness is off: [witness] logs: {e}");
            return;
        }
    };
    let key = match super::notekeys::open(c, &c.witness.key_label) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("the witness is off: its key cannot be opened: {e}");
            return;
        }
    };
    let writer = match lavabeacon_store::open_with(&c.database.url, Role::Engine).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("the witness is off: the database cannot be opened to write: {e}");
            return;
        }
    };
    let role = lavabeacon_api::WitnessRole {
        name: c.witness_name(),
        key,
        logs,
    };
    if let Err(e) = beacon.register_witness(role, writer) {
        tracing::error!("the witness is off: {e}");
    }
}

/// The beacon's key as the API's receipt signer.
struct KeyReceipts(Arc<dyn lavabeacon_signer::Signer>);

impl lavabeacon_api::ReceiptSigner for KeyReceipts {
    fn key(&self) -> (lavabeacon_format::Hash512, u32) {
        (self.0.certificate_id(), self.0.cipher_suite())
    }
    fn sign_receipt(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign(message).map_err(|e| e.to_string())
    }
}

/// Starts the API over `store` on `listener` (inside the runtime), with the watcher that
/// finds pulses it is not told about (another engine's, or any engine's on a read-only node),
/// and prints the address it listens on.
/// With private bytes on, `engine_feeds` says whether this process's engine reseeds their
/// generator (`serve`) or the OS does every period (`api` nodes); the service is returned.
pub(super) fn start_api(
    c: &Config,
    store: Arc<dyn Store>,
    test: Option<String>,
    log_vkey: Option<String>,
    listener: std::net::TcpListener,
    engine_feeds: bool,
) -> Result<ApiParts, ExitCode> {
    let local = listener.local_addr().ok();
    let addr = local.map(|a| a.to_string()).unwrap_or_default();
    let secure = super::secure::load(c, test.is_some(), engine_feeds)?;
    let mut info = BeaconInfo::new(c.beacon.period_ms);
    info.test = test;
    info.log = log_vkey.map(|vkey| log_info(c, vkey));
    // Only `serve` witnesses (it has the engine's database role); `api` nodes never do.
    info.witness_configured = engine_feeds && !c.witness.logs.is_empty();
    info.trusted_proxies = c.api.trusted_proxies.clone();
    info.max_streams_per_client = c.api.max_streams_per_client;
    info.max_streams = c.api.max_streams;
    info.max_chain_pulses = c.api.max_chain_pulses;
    info.certificate_warning_secs = u64::from(c.signer.expiry_warning_days) * 86_400;
    info.late_tolerance_ms = c
        .engine
        .late_tolerance(c.beacon.period_ms)
        .as_millis()
        .min(u128::from(u32::MAX)) as u32;
    let beacon = Beacon::new(store, info);
    if let Some(private) = &secure.private {
        beacon.serve_private(private.clone());
    }
    tokio::spawn(beacon.clone().watch(watch_interval(c.beacon.period_ms)));
    let port = local.map_or(443, |a| a.port());
    let server =
        lavabeacon_api::serve_on(beacon.clone(), listener, c.api.workers, secure.tls.clone())
            .map_err(|e| fail("starting the HTTP server", e))?;
    let handle = server.handle();
    tokio::spawn(server);
    secure.start_redirect(c, port)?;
    secure.spawn_upkeep();
    let scheme = if secure.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Scripts and tests read the address (with port 0, the one the system chose).
    crate::logging::stdout_line(&format!("listening on {scheme}://{addr}"));
    Ok((beacon, handle, secure.private.clone()))
}

/// The API as started: its state, its server's handle, the private-bytes service if on.
pub(super) type ApiParts = (
    Arc<Beacon>,
    lavabeacon_api::ServerHandle,
    Option<Arc<lavabeacon_private::Service>>,
);

/// How often the API looks in the store for pulses it was not told about: a quarter period,
/// at most a second.
pub(super) fn watch_interval(period_ms: u32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(period_ms / 4).clamp(50, 1000))
}

/// The listening socket systemd passed (sd_listen_fds(3): `LISTEN_PID` is this process and
/// `LISTEN_FDS` is 1; the socket is descriptor 3), if it did.
fn activated_socket() -> Option<std::net::TcpListener> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || fds != 1 {
        return None;
    }
    use std::os::fd::FromRawFd;
    // SAFETY: systemd passed descriptor 3 to this process (LISTEN_PID) as its one listening
    // socket; nothing else in the process has taken or closed it this early.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    // Not inherited by anything this process starts.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(listener)
}
