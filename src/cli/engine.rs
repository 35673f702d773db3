//! `lavabeacon engine`: the engine alone (no HTTP API): samples the sources, signs with the HSM
//! (or the development key) and appends one pulse every period. A second engine on the same
//! database waits as a standby until the leader lock is free. `serve` runs the same engine
//! with the API beside it.
//!
//! The engine runs on a thread and a runtime of its own ([`EngineThread`]) with a store
//! opened for it alone: nothing the API does — a flood of requests, streams held open by slow
//! clients — can take its connections or its threads.

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{parse_period, Config};
use lavabeacon_engine::engine::{Engine, EngineConfig, SystemClock};
use lavabeacon_engine::external::ExternalBeacon;
use lavabeacon_engine::frame::SyntheticCamera;
use lavabeacon_engine::run::Observer;
use lavabeacon_engine::source::{CpuSource, EntropySource, HsmSource, OsSource};
use lavabeacon_engine::spool::SpoolSource;
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_signer::pkcs11::Pkcs11Key;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::{Role, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The options every command that reads the configuration shares.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The database URL (overrides the configuration; a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: ConfigArgs,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

/// The configuration with the command line's overrides, or the exit status of a usage error.
pub(super) fn configure(args: ConfigArgs, period: Option<String>) -> Result<Config, ExitCode> {
    let mut c = Config::load(args.config.as_deref()).map_err(|e| {
        tracing::error!("configuration: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    if let Some(db) = args.database {
        c.database.url = db;
    }
    if let Some(p) = period {
        c.beacon.period_ms = parse_period(&p).map_err(|e| {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        })?;
    }
    Ok(c)
}

pub(super) fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{what}: {e}");
    ExitCode::from(EXIT_FAILED)
}

fn signer(c: &Config) -> Result<Arc<dyn Signer>, String> {
    match c.signer.kind.as_str() {
        "pkcs11" => {
            let key = Pkcs11Key::open(&c.pkcs11()?).map_err(|e| e.to_string())?;
            let pem = std::fs::read(&c.signer.certificate).map_err(|e| {
                format!(
                    "{}: {e} (issue one with `lavabeacon cert issue`)",
                    c.signer.certificate.display()
                )
            })?;
            let der = lavabeacon_format::cert::pem_blocks(&pem)
                .map_err(|e| format!("{}: {e}", c.signer.certificate.display()))?
                .remove(0);
            Ok(Arc::new(key.into_signer(&der).map_err(|e| e.to_string())?))
        }
        "software" => Ok(Arc::new(
            SoftwareSigner::load_or_create(&c.beacon.data_dir.join("keys"))
                .map_err(|e| e.to_string())?,
        )),
        other => Err(format!("signer.kind {other:?}: use pkcs11 or software")),
    }
}

fn sources(c: &Config, signer: &Arc<dyn Signer>) -> Result<Vec<Box<dyn EntropySource>>, String> {
    let mut v: Vec<Box<dyn EntropySource>> = Vec::new();
    for name in &c.engine.sources {
        match name.as_str() {
            "os" => v.push(Box::new(OsSource::new(64))),
            "hsm" => v.push(Box::new(HsmSource::new(signer.clone()))),
            "cpu" => v.push(Box::new(CpuSource::default())),
            "synthetic-camera" => v.push(Box::new(SyntheticCamera::new(320, 240, 4))),
            "camera" => v.push(camera(c)?),
            "spool" => v.push(Box::new(
                SpoolSource::new(&c.engine.spool_dir, 32.0, 16)
                    .map_err(|e| format!("{}: {e}", c.engine.spool_dir.display()))?,
            )),
            other => return Err(format!("engine.sources: unknown source {other:?}")),
        }
    }
    if v.is_empty() {
        return Err("engine.sources is empty".into());
    }
    Ok(v)
}

#[cfg(feature = "camera")]
fn camera(c: &Config) -> Result<Box<dyn EntropySource>, String> {
    use lavabeacon_engine::camera::{Camera, CameraConfig};
    use lavabeacon_engine::frame::FrameChecks;
    let k = &c.engine.camera;
    Ok(Box::new(Camera::new(
        CameraConfig {
            index: k.index,
            width: k.width,
            height: k.height,
            fps: k.fps,
            frames_per_pulse: k.frames_per_pulse.max(1),
            warmup_frames: k.warmup_frames,
            checks: FrameChecks {
                bits_per_pixel: k.bits_per_pixel,
                ..FrameChecks::default()
            },
        },
        // The engine cuts the source off at its timeout too; the camera thread is told a bit
        // earlier so that its own message says what happened.
        Duration::from_millis(c.engine.source_timeout_ms.saturating_sub(100).max(100)),
    )))
}

#[cfg(not(feature = "camera"))]
fn camera(_: &Config) -> Result<Box<dyn EntropySource>, String> {
    Err(
        "source \"camera\": this build has no camera support (build with the `camera` feature)"
            .into(),
    )
}

fn external(c: &Config) -> Result<Option<ExternalBeacon>, String> {
    let Some(e) = &c.engine.external else {
        return Ok(None);
    };
    let certs = match &e.certificate {
        None => None,
        Some(p) => {
            let mut set = CertificateSet::new();
            set.load_file(p)
                .map_err(|e| format!("engine.external.certificate: {e}"))?;
            Some(set)
        }
    };
    Ok(Some(ExternalBeacon::new(
        &e.url,
        e.description.as_deref().unwrap_or(&e.url),
        certs,
        Duration::from_millis(e.timeout_ms),
    )))
}

/// Everything the engine needs, opened and checked, before it waits for the leader lock.
struct Parts {
    store: Arc<dyn Store>,
    signer: Arc<dyn Signer>,
    sources: Vec<Box<dyn EntropySource>>,
    external: Option<ExternalBeacon>,
    cfg: EngineConfig,
    /// Why this is a test beacon, if it is.
    test: Option<String>,
}

/// Opens the store, the signer and the sources. Every failure names the part that failed
/// (never a PIN or a password).
async fn open(c: &Config) -> Result<Parts, (&'static str, String)> {
    let store = lavabeacon_store::open_with(&c.database.url, Role::Engine)
        .await
        .map_err(|e| ("database", e.to_string()))?;
    let signer = signer(c).map_err(|e| ("signer", e))?;
    store
        .put_certificate(&signer.certificate().der)
        .await
        .map_err(|e| ("storing the certificate", e.to_string()))?;
    let srcs = sources(c, &signer).map_err(|e| ("sources", e))?;
    let external = external(c).map_err(|e| ("external beacon", e))?;
    let mut why = Vec::new();
    if signer.is_test() {
        why.push(if c.signer.kind == "software" {
            "software signing key"
        } else {
            "TEST certificate"
        });
    }
    if srcs.iter().any(|s| s.is_test()) {
        why.push("synthetic camera");
    }
    let test = (!why.is_empty()).then(|| why.join(", "));
    Ok(Parts {
        store,
        signer,
        sources: srcs,
        external,
        cfg: EngineConfig {
            params: ChainParams::new(&c.beacon.base_uri, c.beacon.chain, c.beacon.period_ms),
            full_credit_bits: c.engine.full_credit_bits,
            source_timeout: Duration::from_millis(c.engine.source_timeout_ms),
            late_tolerance: c
                .engine
                .late_tolerance_ms
                .map(Duration::from_millis)
                .unwrap_or_else(|| EngineConfig::default_late_tolerance(c.beacon.period_ms)),
        },
        test,
    })
}

/// SIGINT or SIGTERM.
pub(super) async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The engine on a thread and a tokio runtime of its own, with its own store. Started in two
/// steps: [`EngineThread::open`] opens and checks everything (so a wrong PIN ends the command
/// before the API starts), [`EngineThread::run`] lets it lead.
pub(super) struct EngineThread {
    /// Why this is a test beacon, if it is.
    pub test: Option<String>,
    go: Option<tokio::sync::oneshot::Sender<Arc<dyn Observer>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl EngineThread {
    /// Opens the engine's store, signer and sources on its own thread; fails with the part
    /// that failed.
    pub fn open(c: &Config) -> Result<EngineThread, ExitCode> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<Arc<dyn Observer>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let c = c.clone();
        let spawned = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                raise_priority();
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("engine")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(("engine runtime", e.to_string())));
                        return;
                    }
                };
                // A panic here is a bug, not a fault the loop can retry: end the process so
                // that its supervisor restarts it, rather than serve on with a dead engine.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(async move {
                        let parts = match open(&c).await {
                            Ok(p) => p,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let _ = ready_tx.send(Ok(parts.test.clone()));
                        let Ok(observer) = go_rx.await else { return };
                        lead(parts, observer, async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                    })
                }));
                if outcome.is_err() {
                    tracing::error!("the engine panicked; exiting so that the service restarts");
                    std::process::exit(70);
                }
                // A source stuck in a driver call must not hold up the exit.
                rt.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            return Err(fail("engine thread", e));
        }
        match ready_rx.recv() {
            Ok(Ok(test)) => Ok(EngineThread {
                test,
                go: Some(go_tx),
                stop: Some(stop_tx),
                done: done_rx,
            }),
            Ok(Err((what, e))) => Err(fail(what, e)),
            Err(_) => Err(fail("engine", "its thread ended while starting")),
        }
    }

    /// Lets the engine lead (waiting for the lock first); each pulse and failure goes to
    /// `observer`.
    pub fn run(&mut self, observer: Arc<dyn Observer>) {
        if let Some(go) = self.go.take() {
            let _ = go.send(observer);
        }
    }

    /// Stops the engine (its leader lock is released at once) and waits for its thread, at
    /// most `wait`.
    pub fn stop(mut self, wait: Duration) {
        self.go.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.done.recv_timeout(wait).is_err() {
            tracing::warn!("the engine did not stop within {} ms", wait.as_millis());
        }
    }
}

/// The engine's threads get a larger share of the CPU than the API's: on a machine saturated
/// by requests (a flood on a 2-core host), the scheduler would otherwise give the engine's
/// database and signing threads one share among hundreds and its appends would take seconds.
/// Threads created from this one (the runtime's, the blocking pool's, the SQLite driver's)
/// inherit the priority. Needs CAP_SYS_NICE; without it the engine runs at the normal priority.
fn raise_priority() {
    const ENGINE_NICE: i32 = -10;
    // SAFETY: setpriority on the calling thread (who = 0 under Linux's per-thread nice) with a
    // constant; it touches no memory of ours.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENGINE_NICE) };
    if r != 0 {
        tracing::warn!(
            "could not raise the engine's scheduling priority to nice {ENGINE_NICE} ({}); under heavy API load its pulses may be late",
            std::io::Error::last_os_error()
        );
    }
}

/// Makes pulses until `stop`, after warning when this is a test beacon.
async fn lead(
    parts: Parts,
    observer: Arc<dyn Observer>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    if let Some(why) = &parts.test {
        tracing::warn!("{}", lavabeacon_api::test_warning(why));
    }
    tracing::info!("certificate {}", parts.signer.certificate().id.short());
    let mut engine = Engine::new(
        parts.store,
        parts.signer,
        parts.sources,
        parts.cfg,
        Arc::new(SystemClock),
        None,
    );
    if let Some(x) = parts.external {
        engine = engine.with_external(x);
    }
    lavabeacon_engine::run::run(engine, observer, stop).await;
}

pub(super) fn new_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// How long a stopping engine may take to let go of its thread.
pub(super) const ENGINE_STOP: Duration = Duration::from_secs(2);

pub fn run(args: Args) -> ExitCode {
    let c = match configure(args.common, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut engine = match EngineThread::open(&c) {
        Ok(e) => e,
        Err(code) => return code,
    };
    engine.run(Arc::new(lavabeacon_engine::run::NoObserver));
    new_runtime().block_on(shutdown());
    engine.stop(ENGINE_STOP);
    ExitCode::SUCCESS
}
