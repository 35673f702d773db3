//! `verify`: the offline verifier anyone can run on pulses from us, NIST or any other
//! NIST-format beacon, in any order (they are held in memory; `replay` streams a chain). With
//! `--checkpoint`, each pulse must also be in the transparency log's tree ([`crate::log`]).

use crate::exit::EXIT_USAGE;
use crate::layout;
use crate::log::{self, inclusion};
use crate::output::status;
use lavabeacon_format::authority::Authorities;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::chain::Facts;
use lavabeacon_format::input::{read_items, InputError, Item};
use lavabeacon_format::verify::{FactsHook, Input as VerifyInput, Options, Verifier};
use lavabeacon_format::{Check, Problem, Report};
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
    /// The transparency log's checkpoint (a C2SP signed note, witnesses' cosignature lines
    /// included, as GET /log/checkpoint serves it): every pulse given must be in its tree,
    /// shown by an inclusion proof (--inclusion, --url). Needs --log-key.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    trust: crate::log::TrustArgs,
    /// Inclusion proofs: the beacon's answers to GET
    /// /beacon/2.0/chain/{c}/pulse/{p}/inclusion?size=N (one JSON answer, an array, or JSON
    /// Lines of them); repeat for several files.
    #[arg(long = "inclusion", value_name = "FILE", requires = "checkpoint")]
    inclusion: Vec<PathBuf>,
    /// Or fetch each pulse's inclusion proof for the checkpoint's size from the beacon at this
    /// base URL (e.g. https://beacon.example.org).
    #[arg(long, value_name = "BASE", requires = "checkpoint")]
    url: Option<String>,
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
        let log = LogPlan::from_args(&args)?;
        open(&args.files).map(|inputs| (c, cas, log, inputs))
    });
    match prepared {
        Ok((certs, cas, log, inputs)) => check(&args, &certs, cas.as_ref(), log, inputs),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `--checkpoint` and what goes with it, read before any pulse is.
struct LogPlan {
    checked: log::CheckedCheckpoint,
    trust: log::Trust,
    proofs: Vec<inclusion::Proof>,
    /// Answers in the files that could not be read.
    problems: Vec<Problem>,
}

impl LogPlan {
    /// `None` without `--checkpoint`; an error is a usage error (a file that cannot be read, a
    /// malformed key).
    fn from_args(args: &Args) -> Result<Option<LogPlan>, String> {
        let Some(path) = &args.checkpoint else {
            log::refuse_unused(&args.trust, "--checkpoint")?;
            return Ok(None);
        };
        let trust = log::Trust::from_args(&args.trust, "--checkpoint")?;
        if args.inclusion.is_empty() && args.url.is_none() {
            return Err(
                "--checkpoint: give the pulses' inclusion proofs with --inclusion FILE or --url BASE"
                    .into(),
            );
        }
        let checked = log::read_checkpoint(path, &trust)?;
        let (proofs, problems) = inclusion::read_files(&args.inclusion)?;
        Ok(Some(LogPlan {
            checked,
            trust,
            proofs,
            problems,
        }))
    }

    /// Checks that every pulse is in the checkpoint's tree: the problems go into `report`.
    /// An error is a beacon (`--url`) that cannot be reached.
    fn check(
        mut self,
        url: Option<&str>,
        pulses: &[inclusion::PulseRef],
        report: &mut Report,
    ) -> Result<log::LogSummary, String> {
        let mut summary = log::LogSummary::of(&self.checked);
        let mut problems = std::mem::take(&mut self.checked.problems);
        problems.append(&mut self.problems);
        let mut given: Vec<(u64, u64)> = pulses.iter().map(|p| (p.chain, p.index)).collect();
        given.sort_unstable();
        given.dedup();
        summary.pulses_given = Some(given.len() as u64);
        let Some(cp) = &self.checked.checkpoint else {
            report.note("inclusion proofs not checked: the checkpoint cannot be read");
            log::add_problems(report, problems);
            return Ok(summary);
        };
        if let Some(base) = url {
            // Pulses that --inclusion files already prove are not fetched again.
            let mut wanted: Vec<(u64, u64)> = pulses
                .iter()
                .filter(|p| !inclusion::proven(p, &self.proofs, cp))
                .map(|p| (p.chain, p.index))
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            let (mut fetched, mut unfetched) =
                inclusion::fetch(base.trim_end_matches('/'), &wanted, cp.size)?;
            self.proofs.append(&mut fetched);
            problems.append(&mut unfetched);
        }
        let mut notes = Vec::new();
        let (included, mut found) =
            inclusion::check(pulses, &self.proofs, cp, &self.trust, &mut notes);
        // A pulse whose fetch failed already has its problem: not a second one.
        let failed: Vec<(Option<u64>, Option<u64>)> =
            problems.iter().map(|p| (p.chain, p.pulse)).collect();
        found.retain(|p| p.chain.is_none() || !failed.contains(&(p.chain, p.pulse)));
        problems.append(&mut found);
        for n in notes {
            report.note(n);
        }
        summary.pulses_included = Some(included);
        log::add_problems(report, problems);
        Ok(summary)
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
    log_plan: Option<LogPlan>,
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
    // With a checkpoint, each pulse's chain, index and outputValue, for its inclusion proof.
    let mut pulses: Vec<inclusion::PulseRef> = Vec::new();
    let mut collect = |f: &Facts, _: &mut Vec<Problem>| {
        pulses.push(inclusion::PulseRef {
            chain: f.chain,
            index: f.index,
            output: f.output,
            location: f.location.clone(),
        })
    };
    let hook: Option<FactsHook> = if log_plan.is_some() {
        Some(&mut collect)
    } else {
        None
    };
    let verified = verifier.verify_stream(items.map(|r| r.map(VerifyInput::Item)), hook);
    let mut report = match verified {
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
    let mut summary = match log_plan.map(|l| l.check(args.url.as_deref(), &pulses, &mut report)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    log::print(&report, summary.as_mut(), args.json);
    status(&report)
}
