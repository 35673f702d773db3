//! `replay`: an auditor's full check of everything a beacon published — from an export file,
//! a database, or a running beacon's API — with every problem reported, every source manifest
//! recombined, memory flat however long the chain, progress on a terminal and a checkpoint to
//! resume a long run.
//!
//! The verifier checks the pulses in the order the source gives them; beside it, for each
//! pulse, [`Bookkeeping::on_pulse`] does the replay's own work: the progress line, the pulse's
//! manifest, the transparency log's next entries (with `--log-checkpoint`, see
//! [`crate::log::entries`]), the checkpoint.

mod checkpoint;
mod feed;
mod manifests;
mod progress;
mod remote;

use crate::exit::{EXIT_STOPPED, EXIT_USAGE};
use crate::layout;
use crate::log::entries::{EntrySource, LogReplay};
use crate::log::{self, LogSummary};
use crate::output::status;
use checkpoint::Checkpoint;
use lavabeacon_format::authority::Authorities;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::chain::Facts;
use lavabeacon_format::verify::{CertLookup, Options, Verifier};
use lavabeacon_format::{Check, Problem, Report};
use manifests::ManifestQueue;
use progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// An export (JSON Lines; certificates and manifests are read from beside it).
    #[arg(value_name = "FILE", conflicts_with_all = ["database", "url"], required_unless_present_any = ["database", "url"])]
    file: Option<PathBuf>,
    /// Or a database: `sqlite:PATH` or `postgres://…` (its certificates and manifests too).
    #[arg(long, conflicts_with = "url")]
    database: Option<String>,
    /// Or a running beacon's base URL (e.g. https://beacon.example.org): pulses through the
    /// bulk route, certificates and manifests through theirs.
    #[arg(long)]
    url: Option<String>,
    /// More certificates (PEM or DER) to trust.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// A directory of certificates.
    #[arg(long = "certs", value_name = "DIR")]
    cert_dirs: Vec<PathBuf>,
    /// The operator's certificate authority (PEM or DER): every certificate must be issued by
    /// it, and every pulse lie within its validity too.
    #[arg(long = "ca", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Only pulses at or after this time (RFC 3339, Unix s or ms).
    #[arg(long)]
    from: Option<String>,
    /// Only pulses at or before this time.
    #[arg(long)]
    to: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Verify each Ed25519 signature alone (RFC 8032 strict) instead of in batches.
    #[arg(long)]
    strict: bool,
    /// Keep this replay's progress in this file and, if it exists, resume from it. (Not the
    /// transparency log's checkpoint: that is --log-checkpoint.)
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Write the checkpoint every this many pulses.
    #[arg(long, default_value_t = 100_000)]
    checkpoint_every: u64,
    /// Stop as if interrupted after this many pulses, checkpoint written (for testing resumes).
    #[arg(long, hide = true)]
    stop_after: Option<u64>,
    /// The transparency log's checkpoint (a C2SP signed note, witnesses' cosignature lines
    /// included, as GET /log/checkpoint serves it): the log's entries up to its size are read
    /// too (from --database, or --url's entry bundles; an export holds none), must be the
    /// replayed pulses' outputValues in publication order (draw registrations between them
    /// counted, and with --database matched to their receipts), and must hash to its root.
    /// Needs --log-key; not with --from or --to.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "to"])]
    log_checkpoint: Option<PathBuf>,
    #[command(flatten)]
    trust: crate::log::TrustArgs,
}

/// Where the pulses come from.
pub enum Source {
    /// An export (JSON Lines; its manifests beside it).
    File(PathBuf),
    /// A database: `sqlite:PATH` or `postgres://…`.
    Database(String),
    /// A running beacon's base URL.
    Url(String),
}

impl Source {
    /// Its name in checkpoints (a resumed run must replay the same thing), passwords hidden.
    fn name(&self) -> String {
        match self {
            Source::File(f) => f.display().to_string(),
            Source::Database(url) | Source::Url(url) => lavabeacon_store::redact(url),
        }
    }
}

/// The pulses replayed: those with timeStamp in `from..=to`, Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The earliest.
    pub from: i64,
    /// The latest.
    pub to: i64,
}

impl Window {
    /// Every pulse.
    pub const ALL: Window = Window {
        from: i64::MIN,
        to: i64::MAX,
    };

    fn contains(self, time_ms: i64) -> bool {
        (self.from..=self.to).contains(&time_ms)
    }
}

/// A replay to run.
pub struct Plan {
    /// What to replay.
    pub source: Source,
    /// The certificates trusted (a database adds its own, a beacon's API those it serves).
    pub certs: CertificateSet,
    /// Which pulses.
    pub window: Window,
    /// With `--ca`: the authorities every certificate must be issued by.
    pub authorities: Option<Authorities>,
    /// Each Ed25519 signature alone (RFC 8032 strict) instead of in batches.
    pub strict: bool,
    /// Keep progress in this file and, if it exists, resume from it.
    pub checkpoint: Option<PathBuf>,
    /// Write the checkpoint every this many pulses (at least 1).
    pub checkpoint_every: u64,
    /// Stop as if interrupted after this many pulses, checkpoint written.
    pub stop_after: Option<u64>,
    /// With a log checkpoint: the log's entries, replayed beside the pulses.
    pub log: Option<PlanLog>,
}

/// The transparency log a replay checks beside the pulses.
pub struct PlanLog {
    /// Its checkpoint, read and its signatures checked.
    pub checked: log::CheckedCheckpoint,
    /// Where its entries are read.
    pub source: EntrySource,
}

impl Plan {
    /// A whole replay of `source` with `certs`: no window, no checkpoint.
    pub fn new(source: Source, certs: CertificateSet) -> Plan {
        Plan {
            source,
            certs,
            window: Window::ALL,
            authorities: None,
            strict: false,
            checkpoint: None,
            checkpoint_every: 100_000,
            stop_after: None,
            log: None,
        }
    }

    /// The plan the command line asks for.
    fn from_args(args: &Args) -> Result<Plan, String> {
        let mut certs = crate::load_certificates(&args.certs, &args.cert_dirs)?;
        let when = |flag: &str, text: &Option<String>, unset: i64| match text {
            None => Ok(unset),
            Some(t) => lavabeacon_format::time::parse_when(t).map_err(|e| format!("{flag}: {e}")),
        };
        let window = Window {
            from: when("--from", &args.from, i64::MIN)?,
            to: when("--to", &args.to, i64::MAX)?,
        };
        let source = match (&args.file, &args.database, &args.url) {
            (Some(file), _, _) => Source::File(file.clone()),
            (None, Some(url), _) => Source::Database(url.clone()),
            (None, None, Some(url)) => Source::Url(url.clone()),
            (None, None, None) => return Err("give an export FILE, --database or --url".into()),
        };
        if let Source::File(file) = &source {
            if args.certs.is_empty() && args.cert_dirs.is_empty() {
                layout::load_beside(&mut certs, file)?;
            }
        }
        let log = match &args.log_checkpoint {
            None => {
                log::refuse_unused(&args.trust, "--log-checkpoint")?;
                None
            }
            Some(path) => {
                let trust = log::Trust::from_args(&args.trust, "--log-checkpoint")?;
                let source = match &source {
                    Source::File(_) => {
                        return Err("--log-checkpoint: an export holds no log entries; the log needs --database or --url".into())
                    }
                    Source::Database(url) => EntrySource::Database(url.clone()),
                    Source::Url(base) => EntrySource::Url(base.trim_end_matches('/').to_string()),
                };
                Some(PlanLog {
                    checked: log::read_checkpoint(path, &trust)?,
                    source,
                })
            }
        };
        Ok(Plan {
            log,
            window,
            authorities: crate::load_authorities(args.ca.as_deref())?,
            strict: args.strict,
            checkpoint: args.checkpoint.clone(),
            checkpoint_every: args.checkpoint_every,
            stop_after: args.stop_after,
            ..Plan::new(source, certs)
        })
    }
}

/// How a replay ended.
pub enum Outcome {
    /// It went through: everything found.
    Finished(Box<Report>),
    /// `stop_after` stopped it, its checkpoint written.
    Stopped,
}

/// `lavabeacon replay`: the report on standard output, and the exit status.
pub fn run(args: Args) -> ExitCode {
    let _command = tracing::info_span!("replay").entered();
    match Plan::from_args(&args).and_then(replay_with_log) {
        Ok((Outcome::Finished(report), mut log)) => {
            log::print(&report, log.as_mut(), args.json);
            status(&report)
        }
        Ok((Outcome::Stopped, _)) => ExitCode::from(EXIT_STOPPED),
        Err(e) => {
            // Any URL in a message (the libraries' errors name theirs) without its password.
            tracing::error!("{}", lavabeacon_store::redact_urls(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs a replay. An error is an input that cannot be read at all; everything else found is
/// in the report.
pub fn replay(plan: Plan) -> Result<Outcome, String> {
    replay_with_log(plan).map(|(outcome, _)| outcome)
}

/// [`replay`], and with a log checkpoint the log's summary (its problems are in the report).
pub fn replay_with_log(mut plan: Plan) -> Result<(Outcome, Option<LogSummary>), String> {
    let log_checkpoint = plan.log.as_ref().and_then(|l| l.checked.checkpoint.clone());
    // A run that checks a log can only resume one that checked the same log: its checkpoint
    // carries where the log was.
    let source = match &log_checkpoint {
        Some(cp) => format!(
            "{} with log {} size {} root {}",
            plan.source.name(),
            cp.origin,
            cp.size,
            log::b64(&cp.root)
        ),
        None => plan.source.name(),
    };
    let resumed = match &plan.checkpoint {
        Some(path) => Checkpoint::load(path, &source)?,
        None => None,
    };
    let log_replay = match (&plan.log, &log_checkpoint) {
        (Some(l), Some(cp)) => Some(LogReplay::start(
            l.source.clone(),
            cp,
            resumed.as_ref().and_then(|c| c.log.as_ref()),
        )?),
        _ => None,
    };
    let mut window = plan.window;
    if let Some(c) = &resumed {
        window.from = window.from.max(c.last_time_ms);
        tracing::info!(
            "resuming after {} pulses, from {}",
            c.pulses,
            lavabeacon_format::time::format_time_stamp(c.last_time_ms).unwrap_or_default()
        );
    }
    let mut certs = std::mem::take(&mut plan.certs);
    let feed = match &plan.source {
        Source::File(path) => feed::from_file(path, window)?,
        Source::Database(url) => feed::from_database(url, window, &mut certs)?,
        Source::Url(base) => remote::feed(base.trim_end_matches('/'), window)?,
    };
    let fetched;
    let lookup: &dyn CertLookup = match &plan.source {
        Source::Url(base) => {
            fetched = remote::FetchedCerts::new(base.trim_end_matches('/'), certs);
            &fetched
        }
        _ => &certs,
    };

    // The feed stops at once when the replay is stopped; the verifier finishes what it read.
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let items = feed
        .items
        .take_while(move |_| !stopped.load(Ordering::Relaxed));
    let mut books = Bookkeeping {
        progress: Progress::new(feed.total),
        manifests: ManifestQueue::new(feed.manifests),
        seen: 0,
        // The resumed run checks the checkpoint's last pulse again.
        before: resumed.as_ref().map_or(0, |c| c.pulses.saturating_sub(1)),
        last_time_ms: resumed.as_ref().map_or(i64::MIN, |c| c.last_time_ms),
        resumed,
        source,
        checkpoint: plan.checkpoint.clone(),
        checkpoint_every: plan.checkpoint_every.max(1),
        stop_after: plan.stop_after,
        stop,
        log: log_replay,
    };
    let options = Options {
        strict: plan.strict,
        skip_path: false,
        ordered: true,
    };
    let mut hook = |f: &Facts, problems: &mut Vec<Problem>| books.on_pulse(f, problems);
    let mut verifier = Verifier::new(lookup, options);
    if let Some(cas) = &plan.authorities {
        verifier = verifier.with_authorities(cas);
    }
    let report = verifier.verify_stream(items, Some(&mut hook));
    books.progress.finish(books.before + books.seen);
    if books.stop.load(Ordering::Relaxed) {
        return Ok((Outcome::Stopped, None));
    }
    let mut report = report.map_err(|e| format!("{}: {e}", feed.name))?;
    report.manifests_checked = books.manifests.checked;
    // The log's own findings, before `complete` merges in those of the runs resumed.
    let summary = match plan.log.take() {
        None => None,
        Some(l) => {
            let mut summary = LogSummary::of(&l.checked);
            let mut problems = l.checked.problems;
            if let Some(log_replay) = books.log.take() {
                let totals = log_replay.finish(&mut problems)?;
                summary.entries = Some(totals.entries);
                summary.pulse_entries = Some(totals.pulse_entries);
                summary.draws = Some(totals.draws);
                summary.pulses_after = Some(totals.pulses_after);
                summary.root_computed = totals.root.as_ref().map(log::b64);
            } else {
                report.note("the log's entries were not replayed: its checkpoint cannot be read");
            }
            log::add_problems(&mut report, problems);
            Some(summary)
        }
    };
    complete(&mut report, &plan, books.resumed, &feed.name);
    log::add_problems(&mut report, Vec::new());
    Ok((Outcome::Finished(Box::new(report)), summary))
}

/// What a finished replay adds to the verifier's report: what the runs it resumed found, and
/// that nothing at all was checked; then its checkpoint goes.
fn complete(report: &mut Report, plan: &Plan, resumed: Option<Checkpoint>, name: &str) {
    let resumed_none = resumed.is_none();
    if let Some(c) = resumed {
        c.merge_into(report);
    }
    if report.pulses == 0 {
        // An audit that checked nothing has not passed.
        let within = if plan.window != Window::ALL && resumed_none {
            " in the window given"
        } else {
            ""
        };
        let message = format!("no pulses in {name}{within}");
        report
            .problems
            .insert(0, Problem::new(Check::Parse, message));
    }
    if let Some(path) = &plan.checkpoint {
        // A finished replay leaves no checkpoint to resume.
        let _ = std::fs::remove_file(path);
    }
}

/// The replay's own work beside the verifier, once for each pulse checked, in input order.
struct Bookkeeping {
    progress: Progress,
    manifests: ManifestQueue,
    /// Pulses checked by this run.
    seen: u64,
    /// Pulses checked by the runs this one resumes.
    before: u64,
    /// The timeStamp of the last pulse checked.
    last_time_ms: i64,
    /// The checkpoint this run resumed from: what it holds goes into every checkpoint this run
    /// writes too, so that a run resumed twice still ends with everything.
    resumed: Option<Checkpoint>,
    /// What is replayed, as checkpoints name it.
    source: String,
    checkpoint: Option<PathBuf>,
    checkpoint_every: u64,
    stop_after: Option<u64>,
    /// Set once `stop_after` pulses were checked; the feed reads no more.
    stop: Arc<AtomicBool>,
    /// The transparency log's entries, compared with each pulse.
    log: Option<LogReplay>,
}

impl Bookkeeping {
    fn on_pulse(&mut self, f: &Facts, problems: &mut Vec<Problem>) {
        if self.stop.load(Ordering::Relaxed) {
            // Pulses the verifier had already read when the replay stopped: not recorded.
            return;
        }
        self.seen += 1;
        self.progress.tick(self.before + self.seen);
        if let Some(t) = f.time_ms {
            self.last_time_ms = t;
        }
        if let Some(p) = self.manifests.check(f) {
            problems.push(p);
        }
        if let Some(log) = &mut self.log {
            log.on_pulse(f, problems);
        }
        let stop = self.stop_after == Some(self.seen);
        if stop || self.seen.is_multiple_of(self.checkpoint_every) {
            self.save_checkpoint(problems);
        }
        if stop {
            tracing::warn!("stopped after {} pulses (--stop-after)", self.seen);
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn save_checkpoint(&self, problems: &[Problem]) {
        let Some(path) = &self.checkpoint else { return };
        let earlier = self.resumed.as_ref();
        Checkpoint {
            source: self.source.clone(),
            last_time_ms: self.last_time_ms,
            pulses: self.before + self.seen,
            manifests_checked: self.manifests.checked + earlier.map_or(0, |c| c.manifests_checked),
            problems: match earlier {
                Some(c) => c.with_problems(problems.to_vec()),
                None => problems.to_vec(),
            },
            log: self.log.as_ref().map(LogReplay::progress),
        }
        .save(path);
    }
}
