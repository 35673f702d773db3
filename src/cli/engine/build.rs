//! The engine as the configuration describes it: its own store, the signer, the sources and
//! the other beacon, opened and checked before it waits for the leader lock. Every failure
//! names the part that failed (never a PIN or a password).

use crate::config::{Config, SignerKind, SourceKind};
use lavabeacon_engine::clock::{Clock, SystemClock};
use lavabeacon_engine::engine::{Engine, EngineConfig};
use lavabeacon_engine::keys::KeyRing;
use lavabeacon_engine::log::{Checkpointer, WitnessPeer};
use lavabeacon_engine::source::cpu::CpuSource;
use lavabeacon_engine::source::external::ExternalBeacon;
use lavabeacon_engine::source::hsm::HsmSource;
use lavabeacon_engine::source::os::OsSource;
use lavabeacon_engine::source::spool::SpoolSource;
use lavabeacon_engine::source::synthetic::SyntheticCamera;
use lavabeacon_engine::source::EntropySource;
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::test_beacon::{self, TestMark};
use lavabeacon_signer::pkcs11::{Pkcs11Config, Pkcs11Key};
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::{Signer, SignerError, Suite};
use lavabeacon_store::{key_switch_followed, Role};
use lavabeacon_tlog::note::{KeyKind, VerifierKey};
use std::sync::Arc;
use std::time::Duration;

/// An engine ready to lead, and why it makes a test beacon, if it does.
pub(super) struct BuiltEngine {
    pub engine: Engine,
    pub test_reason: Option<String>,
    /// The transparency log, when it is on.
    pub log: Option<BuiltLog>,
}

/// The log's parts the engine's thread and the API need.
pub(super) struct BuiltLog {
    /// The log's verifier key (`/log/key`).
    pub vkey: String,
    /// Told the size of each checkpoint stored.
    pub wake: tokio::sync::watch::Receiver<u64>,
    /// Where checkpoints go.
    pub witnesses: Vec<WitnessPeer>,
    /// The store, for the submitting task.
    pub store: Arc<dyn lavabeacon_store::Store>,
}

/// Opens the store, the signer and the sources, and makes the engine of them. Its clock is the
/// wall clock: the only place the binary chooses one.
pub(super) async fn build(c: &Config) -> Result<BuiltEngine, (&'static str, String)> {
    let store = lavabeacon_store::open_with(&c.database.url, Role::Engine)
        .await
        .map_err(|e| ("database", e.to_string()))?;
    // The key the schedule names for now (after a rotation), else the configured one.
    let switches = store
        .key_switches()
        .await
        .map_err(|e| ("reading the key schedule", e.to_string()))?;
    let now = SystemClock.now_ms();
    let scheduled = key_switch_followed(&switches, now, c.beacon.chain);
    let ring = match c.signer.kind {
        SignerKind::Pkcs11 => Some(Arc::new(HsmKeys(
            c.signer.pkcs11().map_err(|e| ("signer", e))?,
        ))),
        SignerKind::Software => None,
    };
    // With a scheduled key, the configured one is still opened if it can be: a restart soon
    // after the first switch may find a value it sealed.
    let mut configured = None;
    let signer = match (scheduled, &ring) {
        (Some(s), Some(ring)) => {
            configured = signer(c).ok();
            let der = store
                .certificate(&s.certificate_id)
                .await
                .map_err(|e| ("reading the scheduled certificate", e.to_string()))?
                .ok_or_else(|| {
                    (
                        "the key schedule",
                        format!("certificate {} is not stored", s.certificate_id.short()),
                    )
                })?;
            ring.open(&s.key_label, &der)
                .map_err(|e| ("the scheduled key", format!("{}: {e}", s.key_label)))?
        }
        _ => signer(c).map_err(|e| ("signer", e))?,
    };
    store
        .put_certificate(&signer.certificate().der)
        .await
        .map_err(|e| ("storing the certificate", e.to_string()))?;
    let sources = sources(c, &signer).map_err(|e| ("sources", e))?;
    let external = external(c).map_err(|e| ("external beacon", e))?;
    // Published before the first pulse that names it (/beacon/2.0/externalSource/{id}).
    if let Some(x) = &external {
        store
            .put_external_source(x.description())
            .await
            .map_err(|e| ("storing the external source's description", e.to_string()))?;
    }
    let test_reason = test_reason(c, signer.as_ref(), &sources);
    let cfg = EngineConfig {
        params: ChainParams::new(&c.beacon.base_uri, c.beacon.chain, c.beacon.period_ms),
        full_credit_bits: c.engine.full_credit_bits,
        source_timeout: Duration::from_millis(c.engine.source_timeout_ms),
        late_tolerance: c.engine.late_tolerance(c.beacon.period_ms),
    };
    let mut engine = Engine::new(store, signer, sources, cfg, Arc::new(SystemClock), None)
        .with_expiry_warning(Duration::from_secs(
            u64::from(c.signer.expiry_warning_days) * 86_400,
        ));
    if let Some(ring) = ring {
        engine = engine.with_key_ring(ring);
    }
    if let Some(key) = configured {
        engine = engine.with_unsealing_key(key);
    }
    if let Some(x) = external {
        engine = engine.with_external(x);
    }
    let (engine, log) = with_log(c, engine)?;
    Ok(BuiltEngine {
        engine,
        test_reason,
        log,
    })
}

/// The transparency log's checkpoints, when `[log]` is on: its key opened (made on first
/// start), the witnesses read. A key that cannot be opened leaves the log without checkpoints
/// (the entries are still kept), never the beacon without pulses; a witness that cannot be
/// read is a configuration error.
fn with_log(
    c: &Config,
    engine: Engine,
) -> Result<(Engine, Option<BuiltLog>), (&'static str, String)> {
    if !c.log.enabled {
        return Ok((engine, None));
    }
    let witnesses = c
        .log
        .witnesses
        .iter()
        .map(|w| {
            let key = VerifierKey::parse(&w.vkey)
                .map_err(|e| ("log.witnesses", format!("{:?}: {e}", w.vkey)))?;
            if key.kind != KeyKind::Cosignature {
                return Err((
                    "log.witnesses",
                    format!("{:?} is not a cosignature/v1 key", w.vkey),
                ));
            }
            Ok(WitnessPeer {
                key,
                url: w.url.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = match crate::cli::notekeys::open(c, &c.log.key_label) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(
                "the transparency log signs no checkpoints: its key cannot be opened: {e}"
            );
            return Ok((engine, None));
        }
    };
    let origin = c.log_origin();
    let checkpointer = Checkpointer::new(&origin, key).map_err(|e| ("log", e.to_string()))?;
    let vkey = checkpointer.vkey().to_vkey();
    tracing::info!("transparency log {origin}, key {vkey}");
    let store = engine.store().clone();
    let (engine, wake) = engine.with_log(checkpointer);
    Ok((
        engine,
        Some(BuiltLog {
            vkey,
            wake,
            witnesses,
            store,
        }),
    ))
}

/// Why this is a test beacon, if it is: a software key or a TEST certificate, a synthetic
/// source ([`lavabeacon_format::test_beacon`] holds the rule and the words).
fn test_reason(
    c: &Config,
    signer: &dyn Signer,
    sources: &[Box<dyn EntropySource>],
) -> Option<String> {
    let mut marks = Vec::new();
    if c.signer.kind == SignerKind::Software {
        marks.push(TestMark::SoftwareKey);
    } else if signer.is_test() {
        marks.push(TestMark::TestCertificate);
    }
    if sources.iter().any(|s| s.is_test()) {
        marks.push(TestMark::SyntheticCamera);
    }
    test_beacon::reasons(marks)
}

/// The engine's key ring: keys of the configured token opened by label (after a rotation,
/// the key the schedule names), with the same PIN.
struct HsmKeys(Pkcs11Config);

impl KeyRing for HsmKeys {
    fn open(&self, label: &str, certificate_der: &[u8]) -> Result<Arc<dyn Signer>, SignerError> {
        let mut cfg = self.0.clone();
        cfg.key_label = label.to_string();
        // The key's suite is its certificate's (a key for a new chain may be of another suite
        // than the configuration's).
        cfg.suite = suite_of(certificate_der)?;
        Ok(Arc::new(
            Pkcs11Key::open(&cfg)?.into_signer(certificate_der)?,
        ))
    }
}

/// The suite of the key a certificate carries.
pub(crate) fn suite_of(certificate_der: &[u8]) -> Result<Suite, SignerError> {
    use lavabeacon_format::cert::{Certificate, PublicKey};
    let cert = Certificate::from_der(certificate_der)
        .map_err(|e| SignerError::Certificate(e.to_string()))?;
    Ok(match cert.key {
        PublicKey::Ed25519(_) => Suite::Ed25519,
        PublicKey::Rsa { bits, .. } => Suite::Rsa { bits: bits as u32 },
    })
}

pub(in crate::cli) fn signer(c: &Config) -> Result<Arc<dyn Signer>, String> {
    match c.signer.kind {
        SignerKind::Pkcs11 => {
            let key = Pkcs11Key::open(&c.signer.pkcs11()?).map_err(|e| e.to_string())?;
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
        SignerKind::Software => Ok(Arc::new(
            SoftwareSigner::load_or_create(&c.beacon.data_dir.join("keys"))
                .map_err(|e| e.to_string())?,
        )),
    }
}

fn sources(c: &Config, signer: &Arc<dyn Signer>) -> Result<Vec<Box<dyn EntropySource>>, String> {
    let mut v: Vec<Box<dyn EntropySource>> = Vec::new();
    for kind in &c.engine.sources {
        v.push(match kind {
            SourceKind::Os => Box::new(OsSource::new(64)),
            SourceKind::Hsm => Box::new(HsmSource::new(signer.clone())),
            SourceKind::Cpu => Box::new(CpuSource::default()),
            SourceKind::SyntheticCamera => Box::new(SyntheticCamera::new(320, 240, 4)),
            SourceKind::Camera => camera(c)?,
            SourceKind::Spool => Box::new(
                SpoolSource::new(&c.engine.spool_dir, 32.0, 16)
                    .map_err(|e| format!("{}: {e}", c.engine.spool_dir.display()))?,
            ),
        });
    }
    if v.is_empty() {
        return Err("engine.sources is empty".into());
    }
    Ok(v)
}

#[cfg(feature = "camera")]
fn camera(c: &Config) -> Result<Box<dyn EntropySource>, String> {
    use lavabeacon_engine::source::camera::{Camera, CameraConfig};
    use lavabeacon_engine::source::frame::FrameChecks;
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
