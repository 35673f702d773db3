//! `lavabeacon engine`: the engine alone (no HTTP API): samples the sources, signs with the HSM
//! (or the development key) and appends one pulse every period. A second engine on the same
//! database waits as a standby until the leader lock is free. `serve` runs the same engine
//! with the API beside it.

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{parse_period, Config};
use lavabeacon_api::Beacon;
use lavabeacon_engine::engine::{Engine, EngineConfig, EngineError, SystemClock};
use lavabeacon_engine::external::ExternalBeacon;
use lavabeacon_engine::frame::SyntheticCamera;
use lavabeacon_engine::source::{CpuSource, EntropySource, HsmSource, OsSource};
use lavabeacon_engine::spool::SpoolSource;
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_signer::pkcs11::Pkcs11Key;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::Store;
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
pub(super) fn configure(
    who: &str,
    args: ConfigArgs,
    period: Option<String>,
) -> Result<Config, ExitCode> {
    let mut c = Config::load(args.config.as_deref()).map_err(|e| {
        eprintln!("lavabeacon {who}: configuration: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    if let Some(db) = args.database {
        c.database.url = db;
    }
    if let Some(p) = period {
        c.beacon.period_ms = parse_period(&p).map_err(|e| {
            eprintln!("lavabeacon {who}: {e}");
            ExitCode::from(EXIT_USAGE)
        })?;
    }
    Ok(c)
}

pub(super) fn fail(who: &str, what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lavabeacon {who}: {what}: {e}");
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
pub(super) struct Parts {
    pub store: Arc<dyn Store>,
    signer: Arc<dyn Signer>,
    sources: Vec<Box<dyn EntropySource>>,
    external: Option<ExternalBeacon>,
    cfg: EngineConfig,
    /// Why this is a test beacon, if it is.
    pub test: Option<String>,
}

/// Opens the store, the signer and the sources. Every failure names the part that failed
/// (never a PIN or a password).
pub(super) async fn open(c: &Config) -> Result<Parts, (&'static str, String)> {
    let store = lavabeacon_store::open(&c.database.url)
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

/// Waits for the leader lock, then makes one pulse every period until told to stop. With
/// `api`, each published pulse (and each skipped slot) is told to the API at once.
pub(super) async fn lead(who: &str, parts: Parts, api: Option<Arc<Beacon>>) -> ExitCode {
    if let Some(why) = &parts.test {
        eprintln!(
            "lavabeacon {who}: WARNING: {}",
            lavabeacon_api::test_warning(why)
        );
    }
    eprintln!("lavabeacon {who}: waiting for the leader lock (another engine may be leading)");
    let leader = tokio::select! {
        l = parts.store.acquire_leadership(None) => match l {
            Ok(l) => l,
            Err(e) => return fail(who, "leader lock", e),
        },
        _ = shutdown() => return ExitCode::SUCCESS,
    };
    eprintln!(
        "lavabeacon {who}: leading; certificate {}",
        parts.signer.certificate().id.short()
    );
    let period = Duration::from_millis(u64::from(parts.cfg.params.period_ms));
    let engine = Engine::start(
        parts.store,
        parts.signer,
        parts.sources,
        parts.cfg,
        Arc::new(SystemClock),
        Some(leader),
    )
    .await;
    let mut engine = match engine {
        Ok(e) => e,
        Err(e) => return fail(who, "start", e),
    };
    if let Some(x) = parts.external {
        engine = engine.with_external(x);
    }
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = engine.step() => match r {
                Ok(p) => {
                    if let Some(api) = &api {
                        let t = p.pulse.time_ms().unwrap_or(0);
                        api.published(&p.pulse, p.manifest.clone(), p.published_at_us - t * 1000);
                    }
                    println!(
                        "pulse {}/{} {} status {} published",
                        p.pulse.chain_index, p.pulse.pulse_index, p.pulse.time_stamp, p.pulse.status_code
                    );
                }
                Err(EngineError::Store(lavabeacon_store::StoreError::LostLeadership(why))) => {
                    return fail(who, "stopping: leadership lost", why);
                }
                Err(e) => {
                    // This slot is skipped; the next pulse records the gap.
                    eprintln!("lavabeacon {who}: pulse skipped: {e}");
                    if let Some(api) = &api {
                        api.skipped(e.to_string(), !matches!(e, EngineError::Build(_)));
                    }
                    tokio::time::sleep(period).await;
                }
            },
            _ = &mut stop => return ExitCode::SUCCESS,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn run(args: Args) -> ExitCode {
    let c = match configure("engine", args.common, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    runtime().block_on(async move {
        match open(&c).await {
            Ok(parts) => lead("engine", parts, None).await,
            Err((what, e)) => fail("engine", what, e),
        }
    })
}

pub(super) fn new_runtime() -> tokio::runtime::Runtime {
    runtime()
}
