//! `lavabeacon verify`: the offline verifier anyone can run on pulses from us, NIST or any
//! other NIST-format beacon.

use super::{EXIT_FAILED, EXIT_USAGE};
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::input::{read_items, InputError, Item};
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Check, Problem, Report};
use std::io::{Read, Write};
use std::path::PathBuf;
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

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a Report,
}

pub fn run(args: Args) -> ExitCode {
    let mut certs = CertificateSet::new();
    for path in &args.certs {
        if let Err(e) = certs.load_file(path) {
            tracing::error!("lavabeacon verify: certificate {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    for dir in &args.cert_dirs {
        if let Err(e) = certs.load_dir(dir) {
            tracing::error!("lavabeacon verify: certificates {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    // Without certificates named, those an export keeps beside its pulses.
    if args.certs.is_empty() && args.cert_dirs.is_empty() {
        for f in args.files.iter().filter(|f| *f != "-") {
            if let Err(e) = super::layout::load_beside(&mut certs, std::path::Path::new(f)) {
                tracing::error!("lavabeacon verify: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    // Open every input first, so a missing file is a usage error before any work is done.
    let mut inputs: Vec<(String, Box<dyn Read + Send>)> = Vec::new();
    for f in &args.files {
        if f == "-" {
            inputs.push(("<stdin>".into(), Box::new(std::io::stdin())));
        } else {
            match std::fs::File::open(f) {
                Ok(file) => inputs.push((f.clone(), Box::new(file))),
                Err(e) => {
                    tracing::error!("lavabeacon verify: {f}: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    }
    // Records read from each input: one that gives none is an error, not "OK: 0 pulses".
    let counts: Vec<(String, Arc<AtomicU64>)> = inputs
        .iter()
        .map(|(name, _)| (name.clone(), Arc::new(AtomicU64::new(0))))
        .collect();
    let items = inputs
        .into_iter()
        .zip(counts.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
        .flat_map(|((name, reader), count)| {
            read_items(&name, reader).inspect(move |r| {
                if r.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .map(|r: Result<Item, InputError>| r);
    let verifier = Verifier::new(
        &certs,
        Options {
            strict: args.strict,
            skip_path: args.skip_path,
            ordered: false,
        },
    );
    let mut report = match verifier.verify_items(items) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("lavabeacon verify: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Problems without a pulse come first in a report, as the verifier orders them.
    let empty: Vec<Problem> = counts
        .iter()
        .filter(|(_, count)| count.load(Ordering::Relaxed) == 0)
        .map(|(name, _)| Problem::new(Check::Parse, format!("no pulses in {name}")))
        .collect();
    report.problems.splice(0..0, empty);
    let text = if args.json {
        let out = JsonReport {
            ok: report.passed(),
            report: &report,
        };
        serde_json::to_string_pretty(&out).expect("report serialises") + "\n"
    } else {
        report.render_text()
    };
    // The report is the command's output: on standard output, and a closed pipe (`| head`)
    // is not a reason to panic.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}
