//! `import`: an export checked in full, then loaded into a store, so that anyone can run a
//! mirror (`lavabeacon api` over it). The export is read once: the replay keeps what it read,
//! and only an export that passes is loaded — which holds its pulses in memory until then.

use crate::exit::EXIT_FAILED;
use crate::layout;
use crate::output::print_report;
use crate::replay::{replay, Kept, Outcome, Plan, Source};
use lavabeacon_format::cert::CertificateSet;
use std::path::PathBuf;
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
    let plan = Plan {
        keep: true,
        ..Plan::new(Source::File(args.file.clone()), checking)
    };
    let refused = |why: String| {
        format!(
            "{} does not verify: nothing loaded ({why})",
            args.file.display()
        )
    };
    let kept = match replay(plan).map_err(refused)? {
        Outcome::Finished(done) => {
            print_report(&done.report, false);
            if !done.report.passed() {
                return Err(format!(
                    "{} does not verify: nothing loaded",
                    args.file.display()
                ));
            }
            done.kept
        }
        // An import's replay has no stop_after.
        Outcome::Stopped => return Err(refused("stopped".into())),
    };
    crate::runtime().block_on(load(&args.database, &stored, &kept))?;
    tracing::info!(
        "{} pulses, {} certificates, {} source manifests loaded into {}",
        kept.pulses.len(),
        stored.len(),
        kept.manifests.len(),
        lavabeacon_store::redact(&args.database)
    );
    Ok(())
}

/// The certificates to check with (those given, else those beside the export, as `replay FILE`
/// takes them) and to store (both).
fn certificates(args: &Args) -> Result<(CertificateSet, CertificateSet), String> {
    let mut given = CertificateSet::new();
    for c in &args.certs {
        given.load_file(c).map_err(|e| e.to_string())?;
    }
    let mut stored = CertificateSet::new();
    for c in given.iter() {
        stored.add(c.as_ref().clone());
    }
    layout::load_beside(&mut stored, &args.file)?;
    let checking = if args.certs.is_empty() {
        stored.clone()
    } else {
        given
    };
    Ok((checking, stored))
}

async fn load(database: &str, certs: &CertificateSet, kept: &Kept) -> Result<(), String> {
    let store = lavabeacon_store::open(database)
        .await
        .map_err(|e| format!("database: {e}"))?;
    for c in certs.iter() {
        store
            .put_certificate(&c.der)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
    }
    for batch in kept.pulses.chunks(PULSE_BATCH) {
        store
            .bulk_load(batch)
            .await
            .map_err(|e| format!("loading pulses: {e}"))?;
    }
    for batch in kept.manifests.chunks(MANIFEST_BATCH) {
        store
            .put_manifests(batch)
            .await
            .map_err(|e| format!("loading manifests: {e}"))?;
    }
    Ok(())
}
