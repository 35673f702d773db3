//! `lavabeacon replay`: an auditor's full check of everything a beacon published — from an
//! export file, a database, or a running beacon's API — with every problem reported, every
//! source manifest recombined, memory flat however long the chain, progress on a terminal and a
//! checkpoint to resume a long run.

use super::layout;
use super::{EXIT_FAILED, EXIT_USAGE};
use lavabeacon_format::cert::{Certificate, CertificateSet};
use lavabeacon_format::chain::Facts;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::input::{read_items, InputError, Item, Location};
use lavabeacon_format::manifest::Manifest;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::verify::{CertLookup, Input, Options, Verifier};
use lavabeacon_format::{Check, Problem, Report};
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
    /// Keep progress in this file and, if it exists, resume from it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Write the checkpoint every this many pulses.
    #[arg(long, default_value_t = 100_000)]
    checkpoint_every: u64,
    /// Stop as if interrupted after this many pulses, checkpoint written (for testing resumes).
    #[arg(long, hide = true)]
    stop_after: Option<u64>,
}

/// What a checkpoint keeps: where to go on from, and what was found before.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    /// What was being replayed (a resumed run must replay the same thing).
    source: String,
    /// The time of the last pulse checked; the resumed run starts again at this pulse, so
    /// that the link from it to the next one is checked too.
    last_time_ms: i64,
    pulses: u64,
    manifests_checked: u64,
    problems: Vec<serde_json::Value>,
}

/// A time in the forms the API takes (RFC 3339, Unix seconds or milliseconds; the same rule
/// tells the numbers apart).
pub(super) fn parse_time(t: &str) -> Result<i64, String> {
    lavabeacon_format::time::parse_when(t).map_err(|e| e.to_string())
}

/// Certificates fetched from the beacon when a pulse first names them, each checked against
/// the id it was fetched by (SHA-512 of its DER) before it is trusted.
struct FetchedCerts {
    base: String,
    known: CertificateSet,
    fetched: RwLock<HashMap<Hash512, Option<Arc<Certificate>>>>,
}

impl CertLookup for FetchedCerts {
    fn get(&self, id: &Hash512) -> Option<Arc<Certificate>> {
        if let Some(c) = self.known.get(id) {
            return Some(c.clone());
        }
        if let Some(c) = self.fetched.read().expect("cert cache").get(id) {
            return c.clone();
        }
        let url = format!("{}/beacon/2.0/certificate/{}", self.base, id.to_hex_lower());
        let got = ureq::get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .and_then(|pem| lavabeacon_format::cert::parse_certificates(pem.as_bytes()).ok())
            .and_then(|v| v.into_iter().find(|c| c.id == *id))
            .map(Arc::new);
        self.fetched
            .write()
            .expect("cert cache")
            .insert(*id, got.clone());
        got
    }
}

/// Progress on standard error: a line redrawn in place on a terminal, a plain line every 10 s
/// otherwise.
struct Progress {
    started: Instant,
    shown: Instant,
    tty: bool,
    total: Option<u64>,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        Progress {
            started: Instant::now(),
            shown: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            total,
        }
    }

    fn tick(&mut self, done: u64, force: bool) {
        let every = if self.tty { 250 } else { 10_000 };
        if !force && self.shown.elapsed() < Duration::from_millis(every) {
            return;
        }
        self.shown = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = match self.total {
            Some(t) if t > done && rate > 0.0 => {
                let left = ((t - done) as f64 / rate) as u64;
                format!(", ETA {}:{:02}", left / 60, left % 60)
            }
            _ => String::new(),
        };
        let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
        let line = format!("replay: {done}{of} pulses, {rate:.0}/s{eta}");
        if self.tty {
            // Redrawn in place for a person watching; not a log line. A failed write only
            // loses the line.
            let _ = write!(std::io::stderr(), "\r{line}   ");
        } else {
            tracing::info!("{line}");
        }
    }

    fn done(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A source of pulses for the verifier, and manifests in the same order.
struct Feed {
    items: Box<dyn Iterator<Item = Result<Input, InputError>> + Send>,
    /// (chain, index, manifest JSON) in pulse order; an empty manifest is a mark that every
    /// manifest up to that pulse has been sent.
    manifests: Receiver<(u64, u64, String)>,
    total: Option<u64>,
    name: String,
}

fn channel_iter(
    rx: Receiver<Result<Input, InputError>>,
) -> Box<dyn Iterator<Item = Result<Input, InputError>> + Send> {
    Box::new(rx.into_iter())
}

/// Reads an export: pulses from FILE, manifests from beside it.
fn file_feed(path: &Path, window: (i64, i64)) -> Result<Feed, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total = None;
    let name = path.display().to_string();
    let windowed = window != (i64::MIN, i64::MAX);
    let items = read_items(&name, file).filter_map(move |r| match r {
        // A window needs each pulse's time: parse here, and hand the pulse on parsed.
        Ok(Item::Record { location, text }) if windowed => {
            match lavabeacon_format::json::parse_pulse(&text) {
                Ok(p) => {
                    let t = p.time_ms().unwrap_or(i64::MIN);
                    (window.0..=window.1)
                        .contains(&t)
                        .then(|| Ok(Input::Pulse(Box::new(p), location)))
                }
                Err(_) => Some(Ok(Input::Item(Item::Record { location, text }))),
            }
        }
        other => Some(other.map(Input::Item)),
    });
    // Bounded: the reader waits for the checker rather than holding a whole file of manifests.
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let sources = layout::sources_file(path);
    if sources.exists() {
        let f = std::fs::File::open(&sources).map_err(|e| format!("{}: {e}", sources.display()))?;
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else { return };
                if let Some(key) = manifest_key(&line) {
                    if tx.send((key.0, key.1, line)).is_err() {
                        return;
                    }
                }
            }
        });
    }
    Ok(Feed {
        items: Box::new(items),
        manifests: rx,
        total,
        name,
    })
}

/// The (chain, index) a source manifest belongs to.
pub(super) fn manifest_key(json: &str) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Key {
        chain_index: u64,
        pulse_index: u64,
    }
    serde_json::from_str::<Key>(json)
        .ok()
        .map(|k| (k.chain_index, k.pulse_index))
}

/// Reads a database: pulses by time, and each batch's manifests sent just before it.
fn database_feed(
    url: &str,
    window: (i64, i64),
    certs: &mut CertificateSet,
) -> Result<Feed, String> {
    use futures_util::StreamExt;
    let rt = super::lifecycle::multi_thread_runtime();
    let store = rt
        .block_on(lavabeacon_store::open_with(
            url,
            lavabeacon_store::Role::Audit,
        ))
        .map_err(|e| format!("database: {e}"))?;
    for der in rt
        .block_on(store.certificates())
        .map_err(|e| e.to_string())?
    {
        if let Ok(c) = Certificate::from_der(&der) {
            certs.add(c);
        }
    }
    let total = rt.block_on(store.counts()).ok().map(|c| c.pulses);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Input, InputError>>(8192);
    let (mtx, mrx) = std::sync::mpsc::channel::<(u64, u64, String)>();
    let name: Arc<str> = Arc::from(lavabeacon_store::redact(url).as_str());
    let name2 = name.clone();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let to = window.1.saturating_add(1).min(i64::MAX - 1);
            let mut pulses = store.range_by_time(window.0.max(0), to).chunks(4096);
            let mut line = 0usize;
            while let Some(batch) = pulses.next().await {
                let mut ok = Vec::with_capacity(batch.len());
                for r in batch {
                    match r {
                        Ok(p) => ok.push(p),
                        Err(e) => {
                            let _ = tx.send(Err(InputError {
                                name: name2.to_string(),
                                source: std::io::Error::other(e.to_string()),
                            }));
                            return;
                        }
                    }
                }
                // The batch's manifests go first, then a mark saying "nothing more up to
                // here", so the checker never waits for what comes after these pulses.
                if let (Some(first), Some(last)) = (ok.first(), ok.last()) {
                    if first.chain_index == last.chain_index {
                        let mut m = store.manifests_by_index(
                            first.chain_index,
                            first.pulse_index,
                            last.pulse_index,
                        );
                        while let Some(Ok(x)) = m.next().await {
                            let _ = mtx.send(x);
                        }
                    } else {
                        for p in &ok {
                            if let Ok(Some(m)) = store.manifest(p.chain_index, p.pulse_index).await
                            {
                                let _ = mtx.send((p.chain_index, p.pulse_index, m));
                            }
                        }
                    }
                    let _ = mtx.send((last.chain_index, last.pulse_index, String::new()));
                }
                for p in ok {
                    line += 1;
                    let loc = Location {
                        source: name2.clone(),
                        line,
                    };
                    if tx.send(Ok(Input::Pulse(Box::new(p), loc))).is_err() {
                        return;
                    }
                }
            }
        });
    });
    Ok(Feed {
        items: channel_iter(rx),
        manifests: mrx,
        total,
        name: name.to_string(),
    })
}

/// Follows `Link: <…>; rel="next"` answers of a bulk route, sending each line.
fn page_through(
    base: &str,
    first: String,
    mut each: impl FnMut(String) -> bool,
) -> Result<(), String> {
    let mut next = Some(first);
    while let Some(path) = next.take() {
        let url = format!("{base}{path}");
        // ureq names the URL: once, with any password in it taken out.
        let resp = ureq::get(&url)
            .call()
            .map_err(|e| crate::config::redact_urls(&e.to_string()))?;
        next = resp
            .header("Link")
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split('>').next())
            .map(str::to_string);
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let line = line.map_err(|e| format!("{}: {e}", lavabeacon_store::redact(&url)))?;
            if !line.is_empty() && !each(line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Reads a running beacon: pulses through the bulk route, manifests through the chains' bulk
/// sources route, each on its own thread.
fn url_feed(base: &str, window: (i64, i64)) -> Result<Feed, String> {
    let last: serde_json::Value = ureq::get(&format!("{base}/beacon/last"))
        .call()
        .map_err(|e| crate::config::redact_urls(&e.to_string()))? // ureq names the URL
        .into_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "{}/beacon/last: not a pulse",
                lavabeacon_store::redact(base)
            )
        })?;
    let newest_chain = last["pulse"]["chainIndex"].as_u64().unwrap_or(1);
    let total = last["pulse"]["pulseIndex"].as_u64();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Input, InputError>>(8192);
    let name: Arc<str> = Arc::from(lavabeacon_store::redact(base).as_str());
    let b = base.to_string();
    let to = if window.1 == i64::MAX {
        String::new()
    } else {
        format!("&to={}", window.1)
    };
    let first = format!("/beacon/2.0/pulses?from={}{to}", window.0.max(0));
    let n2 = name.clone();
    std::thread::spawn(move || {
        let mut line = 0;
        let r = page_through(&b, first, |text| {
            line += 1;
            let location = Location {
                source: n2.clone(),
                line,
            };
            tx.send(Ok(Input::Item(Item::Record { location, text })))
                .is_ok()
        });
        if let Err(e) = r {
            let _ = tx.send(Err(InputError {
                name: n2.to_string(),
                source: std::io::Error::other(e),
            }));
        }
    });
    let (mtx, mrx) = std::sync::mpsc::sync_channel(4096);
    let b = base.to_string();
    std::thread::spawn(move || {
        for c in 1..=newest_chain {
            let _ = page_through(&b, format!("/beacon/2.0/chain/{c}/sources?from=1"), |m| {
                match manifest_key(&m) {
                    Some(k) => mtx.send((k.0, k.1, m)).is_ok(),
                    None => true,
                }
            });
        }
    });
    Ok(Feed {
        items: channel_iter(rx),
        manifests: mrx,
        total,
        name: name.to_string(),
    })
}

pub fn run(args: Args) -> ExitCode {
    let usage = |m: String| {
        // Any URL in a message (the library errors name theirs) is shown without a password.
        tracing::error!("lavabeacon replay: {}", crate::config::redact_urls(&m));
        ExitCode::from(EXIT_USAGE)
    };
    let mut certs = CertificateSet::new();
    for path in &args.certs {
        if let Err(e) = certs.load_file(path) {
            return usage(format!("certificate {e}"));
        }
    }
    for dir in &args.cert_dirs {
        if let Err(e) = certs.load_dir(dir) {
            return usage(format!("certificates {e}"));
        }
    }
    let mut window = (i64::MIN, i64::MAX);
    if let Some(f) = &args.from {
        match parse_time(f) {
            Ok(t) => window.0 = t,
            Err(e) => return usage(format!("--from: {e}")),
        }
    }
    if let Some(t) = &args.to {
        match parse_time(t) {
            Ok(t) => window.1 = t,
            Err(e) => return usage(format!("--to: {e}")),
        }
    }
    let source_name = args
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .or(args.database.as_ref().map(|d| lavabeacon_store::redact(d)))
        .or(args.url.as_ref().map(|u| lavabeacon_store::redact(u)))
        .unwrap_or_default();
    // Resume: start again at the last pulse checked, with what was found so far.
    let resumed: Option<Checkpoint> = match &args.checkpoint {
        Some(p) if p.exists() => match std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<Checkpoint>(&t).ok())
        {
            Some(c) if c.source == source_name => Some(c),
            Some(_) => return usage(format!("{}: a checkpoint of another replay", p.display())),
            None => return usage(format!("{}: not a checkpoint", p.display())),
        },
        _ => None,
    };
    if let Some(c) = &resumed {
        window.0 = window.0.max(c.last_time_ms);
        tracing::info!(
            "lavabeacon replay: resuming after {} pulses, from {}",
            c.pulses,
            lavabeacon_format::time::format_time_stamp(c.last_time_ms).unwrap_or_default()
        );
    }

    let feed = if let Some(f) = &args.file {
        if args.certs.is_empty() && args.cert_dirs.is_empty() {
            if let Err(e) = layout::load_beside(&mut certs, f) {
                return usage(e);
            }
        }
        file_feed(f, window)
    } else if let Some(d) = &args.database {
        database_feed(d, window, &mut certs)
    } else {
        url_feed(
            args.url.as_deref().unwrap_or("").trim_end_matches('/'),
            window,
        )
    };
    let feed = match feed {
        Ok(f) => f,
        Err(e) => return usage(e),
    };
    let fetched;
    let lookup: &dyn CertLookup = match &args.url {
        Some(u) => {
            fetched = FetchedCerts {
                base: u.trim_end_matches('/').to_string(),
                known: certs,
                fetched: RwLock::new(HashMap::new()),
            };
            &fetched
        }
        None => &certs,
    };

    let Feed {
        items,
        manifests,
        total,
        name,
    } = feed;
    // The hook runs on the checking thread; the lock is only for the type system.
    let manifests = std::sync::Mutex::new(manifests);
    let mut progress = Progress::new(total);
    let seen = AtomicU64::new(0);
    let mut manifests_checked = 0u64;
    let mut pending: Option<(u64, u64, String)> = None;
    let mut last_time = resumed.as_ref().map_or(i64::MIN, |c| c.last_time_ms);
    let base_pulses = resumed.as_ref().map_or(0, |c| c.pulses.saturating_sub(1));
    let checkpoint_path = args.checkpoint.clone();
    let every = args.checkpoint_every.max(1);
    let stop_after = args.stop_after;
    let mut hook = |f: &Facts, problems: &mut Vec<Problem>| {
        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
        progress.tick(base_pulses + n, false);
        if let Some(t) = f.time_ms {
            last_time = t;
        }
        // The manifest of this pulse, if there is one: manifests come in the same order.
        let key = (f.chain, f.index);
        loop {
            if pending.is_none() {
                // None once every manifest has come.
                pending = manifests.lock().expect("manifests").recv().ok();
            }
            match &pending {
                None => break,
                Some((c, i, _)) if (*c, *i) < key => pending = None,
                Some((c, i, json)) if (*c, *i) == key && json.is_empty() => {
                    pending = None;
                    break;
                }
                Some((c, i, json)) if (*c, *i) == key => {
                    manifests_checked += 1;
                    let problem = match serde_json::from_str::<Manifest>(json) {
                        Err(e) => Some(Problem::new(
                            Check::Manifest,
                            format!("unreadable source manifest: {e}"),
                        )),
                        Ok(m) => match m.recombine() {
                            Err(e) => Some(Problem::new(
                                Check::Manifest,
                                format!("source manifest: {e}"),
                            )),
                            Ok(v) if precommitment(&v) == f.commitment => None,
                            Ok(v) => Some(
                                Problem::new(
                                    Check::Manifest,
                                    "the source manifest does not recombine to localRandomValue",
                                )
                                .field("localRandomValue")
                                .values("the value its manifest recombines to", v.to_hex_upper()),
                            ),
                        },
                    };
                    if let Some(p) = problem {
                        problems.push(p.at(f.chain, f.index).located(f.location.as_ref()));
                    }
                    pending = None;
                    break;
                }
                _ => break,
            }
        }
        let stop = stop_after == Some(n);
        if let (Some(cp), true) = (&checkpoint_path, n % every == 0 || stop) {
            let c = Checkpoint {
                source: source_name.clone(),
                last_time_ms: last_time,
                pulses: base_pulses + n,
                manifests_checked,
                problems: problems
                    .iter()
                    .filter_map(|p| serde_json::to_value(p).ok())
                    .collect(),
            };
            let tmp = cp.with_extension("partial");
            if std::fs::write(&tmp, serde_json::to_vec(&c).expect("checkpoint serialises")).is_ok()
            {
                let _ = std::fs::rename(&tmp, cp);
            }
        }
        if stop {
            tracing::warn!("lavabeacon replay: stopped after {n} pulses (--stop-after)");
            std::process::exit(3);
        }
    };
    let verifier = Verifier::new(
        lookup,
        Options {
            strict: args.strict,
            skip_path: false,
            ordered: true,
        },
    );
    let report = verifier.verify_stream(items, Some(&mut hook));
    let n = seen.load(Ordering::Relaxed);
    progress.tick(base_pulses + n, true);
    progress.done();
    let mut report: Report = match report {
        Ok(r) => r,
        Err(e) => return usage(format!("{name}: {e}")),
    };
    report.manifests_checked = manifests_checked;
    let resumed_none = resumed.is_none();
    if let Some(c) = resumed {
        report.note(format!(
            "resumed from a checkpoint after {} pulses: signatures, links and skip links are counted for this run only, and skip values in the period it resumed in could not be recomputed",
            c.pulses
        ));
        // The first pulse of this run was the last of the one before: count it once.
        report.pulses += c.pulses.saturating_sub(1);
        report.manifests_checked += c.manifests_checked;
        let mut earlier: Vec<Problem> = c
            .problems
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        // The resumed run checks the checkpoint's last pulse again: what it found there is
        // already among the earlier problems.
        let same = |a: &Problem, b: &Problem| {
            (a.check, a.chain, a.pulse, &a.field, &a.message)
                == (b.check, b.chain, b.pulse, &b.field, &b.message)
        };
        for p in std::mem::take(&mut report.problems) {
            if !earlier.iter().any(|e| same(e, &p)) {
                earlier.push(p);
            }
        }
        report.problems = earlier;
    }
    if report.pulses == 0 {
        // An audit that checked nothing has not passed.
        let within = if (args.from.is_some() || args.to.is_some()) && resumed_none {
            " in the window given"
        } else {
            ""
        };
        report.problems.insert(
            0,
            Problem::new(Check::Parse, format!("no pulses in {name}{within}")),
        );
    }
    if let Some(cp) = &args.checkpoint {
        // A finished replay leaves no checkpoint to resume.
        let _ = std::fs::remove_file(cp);
    }
    let text = if args.json {
        let mut v = serde_json::to_value(&report).expect("report serialises");
        v["ok"] = serde_json::Value::Bool(report.passed());
        serde_json::to_string_pretty(&v).expect("json") + "\n"
    } else {
        report.render_text()
    };
    // The report is the command's output; a closed pipe loses it but is no reason to panic.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}
