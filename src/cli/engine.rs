//! `lavabeacon engine`: the engine alone (no HTTP API): samples the sources, signs with the HSM
//! (or the development key) and appends one pulse every period. A second engine on the same
//! database waits as a standby until the leader lock is free.

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{parse_period, Config};
use lavabeacon_engine::engine::{Engine, EngineConfig, EngineError, SystemClock};
use lavabeacon_engine::frame::SyntheticCamera;
use lavabeacon_engine::source::{CpuSource, EntropySource, HsmSource, OsSource};
use lavabeacon_engine::spool::SpoolSource;
use lavabeacon_format::builder::ChainParams;
use lavabeacon_signer::pkcs11::Pkcs11Key;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The database URL (overrides the configuration; a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long)]
    database: Option<String>,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lavabeacon engine: {what}: {e}");
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
        "software" => {
            eprintln!("lavabeacon engine: WARNING: software signing key: this is a TEST beacon, its pulses must not be used for anything that matters");
            Ok(Arc::new(
                SoftwareSigner::load_or_create(&c.beacon.data_dir.join("keys"))
                    .map_err(|e| e.to_string())?,
            ))
        }
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
            "synthetic-camera" => {
                eprintln!("lavabeacon engine: WARNING: synthetic camera: this is a TEST beacon");
                v.push(Box::new(SyntheticCamera::new(320, 240, 4)));
            }
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

pub fn run(args: Args) -> ExitCode {
    let mut c = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lavabeacon engine: configuration: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(db) = args.database {
        c.database.url = db;
    }
    if let Some(p) = args.period {
        match parse_period(&p) {
            Ok(ms) => c.beacon.period_ms = ms,
            Err(e) => {
                eprintln!("lavabeacon engine: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = match lavabeacon_store::open(&c.database.url).await {
            Ok(s) => s,
            Err(e) => return fail("database", e),
        };
        let signer = match signer(&c) {
            Ok(s) => s,
            Err(e) => return fail("signer", e),
        };
        if let Err(e) = store.put_certificate(&signer.certificate().der).await {
            return fail("storing the certificate", e);
        }
        let srcs = match sources(&c, &signer) {
            Ok(s) => s,
            Err(e) => return fail("sources", e),
        };
        eprintln!("lavabeacon engine: waiting for the leader lock (another engine may be leading)");
        let leader = tokio::select! {
            l = store.acquire_leadership(None) => match l {
                Ok(l) => l,
                Err(e) => return fail("leader lock", e),
            },
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        eprintln!("lavabeacon engine: leading; certificate {}", signer.certificate().id.short());
        let cfg = EngineConfig {
            params: ChainParams::new(&c.beacon.base_uri, c.beacon.chain, c.beacon.period_ms),
            full_credit_bits: c.engine.full_credit_bits,
            source_timeout: Duration::from_millis(c.engine.source_timeout_ms),
        };
        let mut engine = match Engine::start(store, signer, srcs, cfg, Arc::new(SystemClock), Some(leader)).await {
            Ok(e) => e,
            Err(e) => return fail("start", e),
        };
        let period = Duration::from_millis(u64::from(c.beacon.period_ms));
        loop {
            tokio::select! {
                r = engine.step() => match r {
                    Ok(p) => println!(
                        "pulse {}/{} {} status {} published",
                        p.pulse.chain_index, p.pulse.pulse_index, p.pulse.time_stamp, p.pulse.status_code
                    ),
                    Err(EngineError::Store(lavabeacon_store::StoreError::LostLeadership(why))) => {
                        return fail("stopping: leadership lost", why);
                    }
                    Err(e) => {
                        // This slot is skipped; the next pulse records the gap.
                        eprintln!("lavabeacon engine: pulse skipped: {e}");
                        tokio::time::sleep(period).await;
                    }
                },
                _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
            }
        }
    })
}
