//! `verify`: the offline verifier anyone can run on pulses from us, NIST or any other
//! NIST-format beacon, in any order (they are held in memory; `replay` streams a chain).

use crate::exit::EXIT_USAGE;
use crate::layout;
use crate::output::{print_report, status};
use lavabeacon_format::authority::Authorities;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::input::{read_items, InputError, Item};
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Check, Problem};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// A certificate (PEM or DER) pulses may be signed with; repeat for several.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// A directory of certificates (*.pem, *.crt, *.cer, *.der).
    #[arg(long = "certs", value_name = "DIR")]
    cert_dirs: Vec<PathBuf>,
    /// The operator's certificate authority (PEM or DER; a bundle may hold several): every
    /// certificate must be issued by one of them, and every pulse lie within that authority's
    /// validity too.
    #[arg(long = "ca", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Verify each Ed25519 signature alone (RFC 8032 strict) instead of in batches.
    #[arg(long)]
    strict: bool,
    /// Check the pulses as a skip path from the oldest to the newest (spec §6) instead of as
    /// consecutive pulses.
    #[arg(long)]
    skip_path: bool,
    /// Files of pulses: JSON Lines, a JSON array, or JSON objects ({"pulse": …} or bare);
    /// `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
}

/// An input and how many records have been read from it.
struct Input {
    name: String,
    reader: Box<dyn Read + Send>,
    records: Arc<AtomicU64>,
}

pub fn run(args: Args) -> ExitCode {
    let _command = tracing::info_span!("verify").entered();
    let prepared = certificates(&args).and_then(|c| {
        let cas = crate::load_authorities(args.ca.as_deref())?;
        open(&args.files).map(|inputs| (c, cas, inputs))
    });
    match prepared {
        Ok((certs, cas, inputs)) => check(&args, &certs, cas.as_ref(), inputs),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The certificates named, or without any named, those an export keeps beside its pulses.
fn certificates(args: &Args) -> Result<CertificateSet, String> {
    let mut certs = crate::load_certificates(&args.certs, &args.cert_dirs)?;
    if args.certs.is_empty() && args.cert_dirs.is_empty() {
        for f in args.files.iter().filter(|f| *f != "-") {
            layout::load_beside(&mut certs, Path::new(f))?;
        }
    }
    Ok(certs)
}

/// Opens every input first, so that a missing file is a usage error before any work is done.
fn open(files: &[String]) -> Result<Vec<Input>, String> {
    files
        .iter()
        .map(|f| {
            let (name, reader): (String, Box<dyn Read + Send>) = if f == "-" {
                ("<stdin>".into(), Box::new(std::io::stdin()))
            } else {
                let file = std::fs::File::open(f).map_err(|e| format!("{f}: {e}"))?;
                (f.clone(), Box::new(file))
            };
            Ok(Input {
                name,
                reader,
                records: Arc::new(AtomicU64::new(0)),
            })
        })
        .collect()
}

fn check(
    args: &Args,
    certs: &CertificateSet,
    cas: Option<&Authorities>,
    inputs: Vec<Input>,
) -> ExitCode {
    // Records read from each input: one that gives none is an error, not "OK: 0 pulses".
    let counts: Vec<(String, Arc<AtomicU64>)> = inputs
        .iter()
        .map(|i| (i.name.clone(), i.records.clone()))
        .collect();
    let items = inputs.into_iter().flat_map(|input| {
        let records = input.records;
        read_items(&input.name, input.reader).inspect(move |r: &Result<Item, InputError>| {
            if r.is_ok() {
                records.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let mut verifier = Verifier::new(
        certs,
        Options {
            strict: args.strict,
            skip_path: args.skip_path,
            ordered: false,
        },
    );
    if let Some(cas) = cas {
        verifier = verifier.with_authorities(cas);
    }
    let mut report = match verifier.verify_items(items) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Problems without a pulse come first in a report, as the verifier orders them.
    let empty: Vec<Problem> = counts
        .iter()
        .filter(|(_, records)| records.load(Ordering::Relaxed) == 0)
        .map(|(name, _)| Problem::new(Check::Parse, format!("no pulses in {name}")))
        .collect();
    report.problems.splice(0..0, empty);
    print_report(&report, args.json);
    status(&report)
}
