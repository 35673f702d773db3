//! `import`: an export checked in full, then loaded into a store, so that anyone can run a
//! mirror (`lavabeacon api` over it). Only an export that passes is loaded.
//!
//! The check is `replay`'s, run in this process; the load then reads the export a second time.
//! Keeping the pulses from the check instead would read it once, but would hold every pulse in
//! memory until the verdict (about 2.3 KB each: 2.3 GB for a million pulses, where reading
//! twice stays under 100 MB at the same speed — figures in docs/auditing.md).

use crate::exit::EXIT_FAILED;
use crate::layout;
use crate::output::print_report;
use crate::replay::{replay, Outcome, Plan, Source};
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::input::{read_items, Item};
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The export to load (checked in full first, as `replay FILE` checks it).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The store to load it into.
    #[arg(long)]
    database: String,
    /// More certificates (otherwise those beside the export).
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
}

/// Pulses a store is given in one call.
const PULSE_BATCH: usize = 20_000;
/// Manifests a store is given in one call.
const MANIFEST_BATCH: usize = 10_000;

/// What was loaded, for the closing line.
struct Loaded {
    pulses: u64,
    manifests: u64,
}

pub fn run(args: Args) -> ExitCode {
    let _command = tracing::info_span!("import").entered();
    match import(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn import(args: &Args) -> Result<(), String> {
    let (checking, stored) = certificates(args)?;
    // First the whole check: nothing is loaded from an export that does not verify.
    let refused = || format!("{} does not verify: nothing loaded", args.file.display());
    match replay(Plan::new(Source::File(args.file.clone()), checking)) {
        Ok(Outcome::Finished(report)) => {
            print_report(&report, false);
            if !report.passed() {
                return Err(refused());
            }
        }
        // An import's replay has no stop_after.
        Ok(Outcome::Stopped) => return Err(refused()),
        Err(e) => return Err(format!("{}: {e}", refused())),
    }
    let loaded = crate::runtime().block_on(load(&args.database, &stored, &args.file))?;
    tracing::info!(
        "{} pulses, {} certificates, {} source manifests loaded into {}",
        loaded.pulses,
        stored.len(),
        loaded.manifests,
        lavabeacon_store::redact(&args.database)
    );
    Ok(())
}

/// The certificates to check with (those given, else those beside the export, as `replay FILE`
/// takes them) and to store (both).
fn certificates(args: &Args) -> Result<(CertificateSet, CertificateSet), String> {
    let given = crate::load_certificates(&args.certs, &[])?;
    let mut stored = given.clone();
    layout::load_beside(&mut stored, &args.file)?;
    let checking = if args.certs.is_empty() {
        stored.clone()
    } else {
        given
    };
    Ok((checking, stored))
}

/// Loads the certificates and external sources' descriptions, the pulses of `file` and the
/// manifests beside it.
async fn load(database: &str, certs: &CertificateSet, file: &Path) -> Result<Loaded, String> {
    let store = lavabeacon_store::open(database)
        .await
        .map_err(|e| format!("database: {e}"))?;
    for c in certs.iter() {
        store
            .put_certificate(&c.der)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
    }
    for description in layout::read_external_sources(file)? {
        store
            .put_external_source(&description)
            .await
            .map_err(|e| format!("external source: {e}"))?;
    }
    Ok(Loaded {
        pulses: load_pulses(store.as_ref(), file).await?,
        manifests: load_manifests(store.as_ref(), file).await?,
    })
}

/// The pulses, read as `replay` read them (JSON Lines, an array, or objects), in batches.
async fn load_pulses(store: &dyn Store, file: &Path) -> Result<u64, String> {
    let name = file.display().to_string();
    let reader = std::fs::File::open(file).map_err(|e| format!("{name}: {e}"))?;
    let mut batch = Vec::with_capacity(PULSE_BATCH);
    let mut n = 0u64;
    for item in read_items(&name, reader) {
        // The replay passed: every record is a pulse; anything else is a file changed since.
        let p = match item.map_err(|e| e.to_string())? {
            Item::Record { location, text } => lavabeacon_format::json::parse_pulse(&text)
                .map_err(|e| format!("{location}: {e}"))?,
            Item::Unreadable { location, message } => return Err(format!("{location}: {message}")),
        };
        batch.push(p);
        if batch.len() == PULSE_BATCH {
            n += bulk_load(store, &mut batch).await?;
        }
    }
    n += bulk_load(store, &mut batch).await?;
    Ok(n)
}

/// Loads `batch` and empties it. Returns how many pulses it held.
async fn bulk_load(store: &dyn Store, batch: &mut Vec<Pulse>) -> Result<u64, String> {
    store
        .bulk_load(batch)
        .await
        .map_err(|e| format!("loading pulses: {e}"))?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

/// The manifests beside the export (none is fine), in batches.
async fn load_manifests(store: &dyn Store, file: &Path) -> Result<u64, String> {
    let Some(manifests) = layout::read_manifests(file)? else {
        return Ok(0);
    };
    let mut batch = Vec::with_capacity(MANIFEST_BATCH);
    let mut n = 0u64;
    for m in manifests {
        batch.push(m);
        if batch.len() == MANIFEST_BATCH {
            store
                .put_manifests(&batch)
                .await
                .map_err(|e| format!("loading manifests: {e}"))?;
            n += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store
            .put_manifests(&batch)
            .await
            .map_err(|e| format!("loading manifests: {e}"))?;
        n += batch.len() as u64;
    }
    Ok(n)
}
