//! `lavabeacon export`: published pulses to JSON Lines, with their certificates and source
//! manifests beside them (see `layout`); `lavabeacon import`: an export checked in full, then
//! loaded into a store, so that anyone can run a mirror with `lavabeacon api`.

use super::layout;
use super::{EXIT_FAILED, EXIT_USAGE};
use futures_util::StreamExt;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::hash::Hash512;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: super::lifecycle::ConfigArgs,
    /// Pulses at or after this time (RFC 3339, Unix s or ms).
    #[arg(long, conflicts_with_all = ["from_index", "to_index"])]
    from: Option<String>,
    /// Pulses at or before this time.
    #[arg(long)]
    to: Option<String>,
    /// Or pulses of `--chain` from this index…
    #[arg(long)]
    from_index: Option<u64>,
    /// …to this one.
    #[arg(long)]
    to_index: Option<u64>,
    /// The chain, for an index range.
    #[arg(long, default_value_t = 1)]
    chain: u64,
    /// The JSON Lines file to write (`NAME.jsonl`; certificates in `NAME.certificates/`,
    /// manifests in `NAME.sources.jsonl`).
    #[arg(long, short)]
    output: PathBuf,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn export(args: ExportArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("lavabeacon export: {m}");
        ExitCode::from(EXIT_FAILED)
    };
    let c = match super::lifecycle::configure(args.common, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let time = |t: &Option<String>, default: i64| -> Result<i64, String> {
        match t {
            None => Ok(default),
            Some(t) => super::replay::parse_time(t),
        }
    };
    let (from, to) = match (time(&args.from, 0), time(&args.to, i64::MAX - 1)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("lavabeacon export: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = super::lifecycle::multi_thread_runtime();
    rt.block_on(async move {
        let store = match lavabeacon_store::open_with(&c.database.url, lavabeacon_store::Role::Audit).await {
            Ok(s) => s,
            Err(e) => return fail(format!("database: {e}")),
        };
        let file = match std::fs::File::create(&args.output) {
            Ok(f) => f,
            Err(e) => return fail(format!("{}: {e}", args.output.display())),
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut pulses = if args.from_index.is_some() || args.to_index.is_some() {
            store.range_by_index(
                args.chain,
                args.from_index.unwrap_or(1),
                args.to_index.unwrap_or(u64::MAX >> 1),
            )
        } else {
            store.range_by_time(from, to.saturating_add(1))
        };
        let now = now_ms();
        let mut n = 0u64;
        let mut certs: BTreeSet<Hash512> = BTreeSet::new();
        let mut ranges: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        while let Some(p) = pulses.next().await {
            let p = match p {
                Ok(p) => p,
                Err(e) => return fail(format!("reading pulse {}: {e}", n + 1)),
            };
            // Only what is public.
            if p.time_ms().map_or(true, |t| t > now) {
                break;
            }
            certs.insert(p.certificate_id);
            let r = ranges.entry(p.chain_index).or_insert((p.pulse_index, p.pulse_index));
            r.1 = p.pulse_index;
            if let Err(e) = writeln!(out, "{}", lavabeacon_format::json::to_json_line(&p)) {
                return fail(format!("{}: {e}", args.output.display()));
            }
            n += 1;
        }
        drop(pulses);
        if let Err(e) = out.flush() {
            return fail(format!("{}: {e}", args.output.display()));
        }
        for id in &certs {
            match store.certificate(id).await {
                Ok(Some(der)) => match lavabeacon_format::cert::Certificate::from_der(&der) {
                    Ok(cert) => {
                        if let Err(e) = layout::write_certificate(&args.output, &cert) {
                            return fail(e.to_string());
                        }
                    }
                    Err(e) => return fail(format!("certificate {}: {e}", id.short())),
                },
                Ok(None) => eprintln!(
                    "lavabeacon export: certificate {} is not in the database; pass it to verify with --cert",
                    id.short()
                ),
                Err(e) => return fail(format!("certificate {}: {e}", id.short())),
            }
        }
        let sources = layout::sources_file(&args.output);
        let mut manifests = 0u64;
        let mut w: Option<std::io::BufWriter<std::fs::File>> = None;
        for (chain, (a, b)) in ranges {
            let mut m = store.manifests_by_index(chain, a, b);
            while let Some(x) = m.next().await {
                let (_, _, json) = match x {
                    Ok(x) => x,
                    Err(e) => return fail(format!("reading manifests: {e}")),
                };
                if w.is_none() {
                    match std::fs::File::create(&sources) {
                        Ok(f) => w = Some(std::io::BufWriter::new(f)),
                        Err(e) => return fail(format!("{}: {e}", sources.display())),
                    }
                }
                if let Err(e) = writeln!(w.as_mut().expect("opened"), "{json}") {
                    return fail(format!("{}: {e}", sources.display()));
                }
                manifests += 1;
            }
        }
        if let Some(mut w) = w {
            if let Err(e) = w.flush() {
                return fail(format!("{}: {e}", sources.display()));
            }
        }
        eprintln!(
            "lavabeacon export: {n} pulses, {} certificates, {manifests} source manifests to {}",
            certs.len(),
            args.output.display()
        );
        ExitCode::SUCCESS
    })
}

#[derive(clap::Args)]
pub struct ImportArgs {
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

pub fn import(args: ImportArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("lavabeacon import: {m}");
        ExitCode::from(EXIT_FAILED)
    };
    // First the whole check: nothing is loaded from an export that does not verify.
    let mut replay_args = vec!["replay".to_string(), args.file.display().to_string()];
    for c in &args.certs {
        replay_args.push("--cert".into());
        replay_args.push(c.display().to_string());
    }
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(&replay_args)
        .stdout(std::process::Stdio::inherit())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(_) => {
            return fail(format!(
                "{} does not verify: nothing loaded",
                args.file.display()
            ))
        }
        Err(e) => return fail(e.to_string()),
    }
    let mut certs = CertificateSet::new();
    for c in &args.certs {
        if let Err(e) = certs.load_file(c) {
            return fail(e.to_string());
        }
    }
    if let Err(e) = layout::load_beside(&mut certs, &args.file) {
        return fail(e);
    }
    let rt = super::lifecycle::multi_thread_runtime();
    rt.block_on(async move {
        let store = match lavabeacon_store::open(&args.database).await {
            Ok(s) => s,
            Err(e) => return fail(format!("database: {e}")),
        };
        for c in certs.iter() {
            if let Err(e) = store.put_certificate(&c.der).await {
                return fail(format!("certificate: {e}"));
            }
        }
        let file = match std::fs::File::open(&args.file) {
            Ok(f) => f,
            Err(e) => return fail(format!("{}: {e}", args.file.display())),
        };
        let mut batch = Vec::with_capacity(20_000);
        let mut n = 0u64;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => return fail(format!("{}: {e}", args.file.display())),
            };
            if line.trim().is_empty() {
                continue;
            }
            match lavabeacon_format::json::parse_pulse(&line) {
                Ok(p) => batch.push(p),
                Err(e) => return fail(format!("{}:{}: {e}", args.file.display(), i + 1)),
            }
            if batch.len() == 20_000 {
                n += batch.len() as u64;
                if let Err(e) = store.bulk_load(&batch).await {
                    return fail(format!("loading pulses: {e}"));
                }
                batch.clear();
            }
        }
        n += batch.len() as u64;
        if let Err(e) = store.bulk_load(&batch).await {
            return fail(format!("loading pulses: {e}"));
        }
        let sources = layout::sources_file(&args.file);
        let mut manifests = 0;
        if let Ok(f) = std::fs::File::open(&sources) {
            let mut batch = Vec::new();
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                if let Some((c, i)) = super::replay::manifest_key(&line) {
                    batch.push((c, i, line));
                }
            }
            manifests = batch.len();
            for part in batch.chunks(10_000) {
                if let Err(e) = store.put_manifests(part).await {
                    return fail(format!("loading manifests: {e}"));
                }
            }
        }
        eprintln!(
            "lavabeacon import: {n} pulses, {} certificates, {manifests} source manifests loaded into {}",
            certs.len(),
            lavabeacon_store::redact(&args.database)
        );
        ExitCode::SUCCESS
    })
}
