//! `export`: published pulses to JSON Lines, with their certificates, source manifests and
//! external sources' descriptions beside them (see [`crate::layout`]), for anyone to replay or `import` into a mirror.

use crate::exit::{EXIT_FAILED, EXIT_USAGE};
use crate::layout;
use futures_util::StreamExt;
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::hash::Hash512;
use lavabeacon_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What to export and where (the store is given apart: `lavabeacon export` finds it in the
/// beacon's configuration, `lavabeacon-audit export` takes `--database`).
#[derive(clap::Args)]
pub struct Args {
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

/// Which pulses, as the store is asked for them.
enum Range {
    /// Unix ms, both ends included.
    Time(i64, i64),
    /// Chain, first and last index.
    Index(u64, u64, u64),
}

/// What was written, for the closing line.
#[derive(Default)]
struct Written {
    pulses: u64,
    certificates: usize,
    manifests: u64,
    external_sources: usize,
}

/// Exports from the store at `database`.
pub fn run(database: &str, args: Args) -> ExitCode {
    let _command = tracing::info_span!("export").entered();
    let range = match range(&args) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match crate::runtime().block_on(export(database, &range, &args.output)) {
        Ok(w) => {
            tracing::info!(
                "{} pulses, {} certificates, {} source manifests, {} external sources' descriptions to {}",
                w.pulses,
                w.certificates,
                w.manifests,
                w.external_sources,
                args.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn range(args: &Args) -> Result<Range, String> {
    let when = |t: &Option<String>, unset: i64| match t {
        None => Ok(unset),
        Some(t) => lavabeacon_format::time::parse_when(t).map_err(|e| e.to_string()),
    };
    let (from, to) = (when(&args.from, 0)?, when(&args.to, i64::MAX - 1)?);
    if args.from_index.is_some() || args.to_index.is_some() {
        return Ok(Range::Index(
            args.chain,
            args.from_index.unwrap_or(1),
            args.to_index.unwrap_or(u64::MAX >> 1),
        ));
    }
    Ok(Range::Time(from, to))
}

async fn export(database: &str, range: &Range, output: &Path) -> Result<Written, String> {
    let store = lavabeacon_store::open_with(database, lavabeacon_store::Role::Audit)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let written = write_pulses(store.as_ref(), range, output).await?;
    for id in &written.certificates {
        write_certificate(store.as_ref(), id, output).await?;
    }
    let mut external_sources = 0;
    for id in &written.sources {
        external_sources += usize::from(write_external_source(store.as_ref(), id, output).await?);
    }
    let manifests = write_manifests(store.as_ref(), written.ranges, output).await?;
    Ok(Written {
        pulses: written.pulses,
        certificates: written.certificates.len(),
        manifests,
        external_sources,
    })
}

/// The pulses written: how many, the certificates and external sources they name, and each
/// chain's index range.
struct PulsesWritten {
    pulses: u64,
    certificates: BTreeSet<Hash512>,
    sources: BTreeSet<Hash512>,
    ranges: BTreeMap<u64, (u64, u64)>,
}

/// Writes the pulses already public, oldest first.
async fn write_pulses(
    store: &dyn Store,
    range: &Range,
    output: &Path,
) -> Result<PulsesWritten, String> {
    let at = |e: std::io::Error| format!("{}: {e}", output.display());
    let file = std::fs::File::create(output).map_err(at)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut pulses = match *range {
        Range::Index(chain, from, to) => store.range_by_index(chain, from, to),
        Range::Time(from, to) => store.range_by_time(from, to.saturating_add(1)),
    };
    let now = crate::wall_clock_ms();
    let mut n = 0u64;
    let mut certs = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut ranges: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    while let Some(p) = pulses.next().await {
        let p = p.map_err(|e| format!("reading pulse {}: {e}", n + 1))?;
        // Only what is public.
        if p.time_ms().map_or(true, |t| t > now) {
            break;
        }
        certs.insert(p.certificate_id);
        for e in p.external.as_slice() {
            if !e.source_id.is_zero() {
                sources.insert(e.source_id);
            }
        }
        let r = ranges
            .entry(p.chain_index)
            .or_insert((p.pulse_index, p.pulse_index));
        r.1 = p.pulse_index;
        writeln!(out, "{}", lavabeacon_format::json::to_json_line(&p)).map_err(at)?;
        n += 1;
    }
    out.flush().map_err(at)?;
    Ok(PulsesWritten {
        pulses: n,
        certificates: certs,
        sources,
        ranges,
    })
}

/// Writes the description of external source `id` beside the export; one the store lacks is a
/// warning (pulses made before descriptions were kept). Whether it was written.
async fn write_external_source(
    store: &dyn Store,
    id: &Hash512,
    output: &Path,
) -> Result<bool, String> {
    let failed = |e: &dyn std::fmt::Display| format!("external source {}: {e}", id.short());
    match store.external_source(id).await.map_err(|e| failed(&e))? {
        Some(description) => {
            layout::write_external_source(output, &description).map_err(|e| failed(&e))?;
            Ok(true)
        }
        None => {
            tracing::warn!(
                "external source {} has no description in the database",
                id.short()
            );
            Ok(false)
        }
    }
}

/// Writes certificate `id` beside the export; one the store lacks is a warning.
async fn write_certificate(store: &dyn Store, id: &Hash512, output: &Path) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("certificate {}: {e}", id.short());
    match store.certificate(id).await.map_err(|e| failed(&e))? {
        Some(der) => {
            let cert = Certificate::from_der(&der).map_err(|e| failed(&e))?;
            layout::write_certificate(output, &cert).map_err(|e| e.to_string())
        }
        None => {
            tracing::warn!(
                "certificate {} is not in the database; pass it to verify with --cert",
                id.short()
            );
            Ok(())
        }
    }
}

/// Writes the manifests of the pulses written into `NAME.sources.jsonl` (no file when there
/// are none). Returns how many.
async fn write_manifests(
    store: &dyn Store,
    ranges: BTreeMap<u64, (u64, u64)>,
    output: &Path,
) -> Result<u64, String> {
    let sources = layout::sources_file(output);
    let at = |e: std::io::Error| format!("{}: {e}", sources.display());
    let mut manifests = 0u64;
    let mut out: Option<std::io::BufWriter<std::fs::File>> = None;
    for (chain, (first, last)) in ranges {
        let mut m = store.manifests_by_index(chain, first, last);
        while let Some(line) = m.next().await {
            let (_, _, json) = line.map_err(|e| format!("reading manifests: {e}"))?;
            let w = match &mut out {
                Some(w) => w,
                None => out.insert(std::io::BufWriter::new(
                    std::fs::File::create(&sources).map_err(at)?,
                )),
            };
            writeln!(w, "{json}").map_err(at)?;
            manifests += 1;
        }
    }
    if let Some(mut w) = out {
        w.flush().map_err(at)?;
    }
    Ok(manifests)
}
