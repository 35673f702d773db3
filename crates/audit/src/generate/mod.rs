//! `generate-chain`: a long, valid test chain, fast, signed with a fresh software key whose
//! certificate says TEST ONLY — for testing auditors' tools, benchmarks and mirrors.
//! `--corrupt K` plants K faults, each of which a verifier must report at exactly its pulse and
//! nowhere else; they are listed in `NAME.faults.json`.

mod faults;
mod identity;

use crate::exit::{EXIT_FAILED, EXIT_USAGE};
use crate::layout;
use faults::Fault;
use identity::Identity;
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::{parse_period, parse_time_stamp, Slots};
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use rand::SeedableRng;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// How many pulses.
    #[arg(long)]
    pulses: u64,
    /// `ed25519` (cipherSuite 2), or `rsa` (cipherSuite 0, RSA-2048: about a thousand pulses
    /// a second, the signatures being the cost), `rsa-3072`, `rsa-4096`.
    #[arg(long, default_value = "ed25519")]
    suite: String,
    /// Write JSON Lines here (certificates beside it, as `export` does).
    #[arg(
        long,
        conflicts_with = "database",
        required_unless_present = "database"
    )]
    output: Option<PathBuf>,
    /// Or load the chain into this database (which must not hold chain `--chain` yet).
    #[arg(long)]
    database: Option<String>,
    /// Plant this many faults (bad signature, wrong previous, broken precommitment, wrong skip
    /// value, in turn) at random pulses after the first.
    #[arg(long, default_value_t = 0)]
    corrupt: u64,
    /// The period, e.g. 60s.
    #[arg(long, default_value = "60s")]
    period: String,
    /// Timestamp of the first pulse (RFC 3339 or Unix ms); default: so that the last pulse is
    /// the latest period boundary, i.e. the whole chain is already public.
    #[arg(long)]
    start: Option<String>,
    /// The chain index.
    #[arg(long, default_value_t = 1)]
    chain: u64,
    /// Base of the pulse URIs.
    #[arg(long, default_value = "http://localhost:8080/beacon/2.0")]
    base_uri: String,
    /// Seed for the values and the faults (default: random).
    #[arg(long)]
    seed: Option<u64>,
}

/// Pulses a store is given in one call.
const BATCH: usize = 20_000;

pub fn run(args: Args) -> ExitCode {
    let _command = tracing::info_span!("generate-chain").entered();
    let usage = |e: String| {
        tracing::error!("{e}");
        ExitCode::from(EXIT_USAGE)
    };
    let (slots, start) = match schedule(&args) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    // Valid from the first pulse to ten years after the last (or now); twice the chain's
    // length, as faults may stretch it.
    let span = slots
        .period_ms()
        .saturating_mul(2 * args.pulses.min(i64::MAX as u64 / 2) as i64);
    let until = start.saturating_add(span).max(crate::wall_clock_ms());
    let identity = match identity::fresh(&args.suite, start, until) {
        Ok(i) => i,
        Err(e) => return usage(e),
    };
    let mut sink = match Sink::open(&args, &identity.certificate) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let started = Instant::now();
    let made = generate(&args, slots, start, &identity, &mut sink).and_then(|faults| {
        sink.finish(&faults)?;
        Ok(faults)
    });
    match made {
        Ok(faults) => {
            tracing::info!(
                "{} pulses ({}, TEST key {}) in {:.1} s; {} faults planted",
                args.pulses,
                args.suite,
                identity.certificate.id.short(),
                started.elapsed().as_secs_f64(),
                faults.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The slots of `--period` and the first pulse's time.
fn schedule(args: &Args) -> Result<(Slots, i64), String> {
    let period = parse_period(&args.period).map_err(|e| e.to_string())?;
    let slots = Slots::new(period).ok_or("--period must be longer than 0")?;
    if args.pulses == 0 || args.corrupt >= args.pulses {
        return Err("need --pulses ≥ 1 and --corrupt below --pulses".into());
    }
    let start = match &args.start {
        // The whole chain is already public: its last pulse is the latest slot.
        None => {
            let last = slots.at_or_before(crate::wall_clock_ms());
            slots.after(last, -(args.pulses as i64 - 1))
        }
        Some(t) => match t.parse::<i64>().ok().or_else(|| parse_time_stamp(t).ok()) {
            Some(ms) if slots.is_slot(ms) => ms,
            _ => {
                return Err(format!(
                    "--start {t:?}: RFC 3339 or Unix ms, on a period boundary"
                ))
            }
        },
    };
    Ok((slots, start))
}

/// Builds the chain into `sink`, planting the faults asked for. Returns them.
fn generate(
    args: &Args,
    slots: Slots,
    start: i64,
    identity: &Identity,
    sink: &mut Sink,
) -> Result<Vec<Fault>, String> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fault_at = faults::positions(args.corrupt, args.pulses, &mut rng);
    let value = |i: u64| -> Hash512 { sha512(&[&seed.to_be_bytes(), &i.to_be_bytes()]) };
    let signer = identity.signer.as_ref();
    let params = ChainParams::new(&args.base_uri, args.chain, slots.period_ms() as u32);
    let mut builder = ChainBuilder::new_chain(params);
    let mut faults = Vec::new();
    let mut next_fault = fault_at.iter().peekable();
    for i in 1..=args.pulses {
        let t = slots.after(start, i as i64 - 1);
        let input = NextPulse::new(t, value(i), precommitment(&value(i + 1)));
        let mut p = builder
            .next(input, signer)
            .map_err(|e| format!("pulse {i}: {e}"))?;
        if next_fault.next_if_eq(&&i).is_some() {
            let fault = faults::plant(faults.len(), &mut p, &mut rng, signer, &mut builder)
                .map_err(|e| format!("pulse {i}: {e}"))?;
            faults.push(fault);
        }
        sink.push(p)
            .map_err(|e| format!("writing pulse {i}: {e}"))?;
    }
    Ok(faults)
}

/// Where the pulses go.
enum Sink {
    /// JSON Lines, the certificate beside them.
    File {
        out: std::io::BufWriter<std::fs::File>,
        path: PathBuf,
    },
    /// A store, in batches.
    Database {
        rt: tokio::runtime::Runtime,
        store: Arc<dyn Store>,
        batch: Vec<Pulse>,
    },
}

impl Sink {
    /// `--output` or `--database`, with the certificate already written there.
    fn open(args: &Args, cert: &Certificate) -> Result<Sink, String> {
        if let Some(path) = &args.output {
            let file =
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            layout::write_certificate(path, cert)
                .map_err(|e| format!("{}: {e}", layout::certificates_dir(path).display()))?;
            return Ok(Sink::File {
                out: std::io::BufWriter::with_capacity(1 << 20, file),
                path: path.clone(),
            });
        }
        let url = args
            .database
            .as_deref()
            .ok_or("give --output or --database")?;
        let rt = crate::runtime();
        let store = rt.block_on(lavabeacon_store::open(url)).map_err(|e| {
            format!(
                "database {}: {}",
                lavabeacon_store::redact(url),
                lavabeacon_store::redact_urls(&e.to_string())
            )
        })?;
        rt.block_on(store.put_certificate(&cert.der))
            .map_err(|e| format!("storing the certificate: {e}"))?;
        Ok(Sink::Database {
            rt,
            store,
            batch: Vec::with_capacity(BATCH),
        })
    }

    fn push(&mut self, p: Pulse) -> Result<(), String> {
        match self {
            Sink::File { out, .. } => {
                writeln!(out, "{}", to_json_line(&p)).map_err(|e| e.to_string())
            }
            Sink::Database { batch, .. } => {
                batch.push(p);
                if batch.len() == BATCH {
                    self.load_batch()?;
                }
                Ok(())
            }
        }
    }

    fn load_batch(&mut self) -> Result<(), String> {
        if let Sink::Database { rt, store, batch } = self {
            let loaded = rt.block_on(store.bulk_load(batch));
            batch.clear();
            loaded.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The last pulses, and the faults: beside a file (`NAME.faults.json`), or on standard
    /// output for a database.
    fn finish(&mut self, faults: &[Fault]) -> Result<(), String> {
        let faults_json = serde_json::to_string_pretty(faults).expect("faults serialise");
        match self {
            Sink::File { out, path } => {
                out.flush()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if !faults.is_empty() {
                    std::fs::write(layout::faults_file(path), &faults_json)
                        .map_err(|e| e.to_string())?;
                }
            }
            Sink::Database { .. } => {
                self.load_batch()
                    .map_err(|e| format!("writing the last pulses: {e}"))?;
                if !faults.is_empty() {
                    crate::output::print_line(&faults_json);
                }
            }
        }
        Ok(())
    }
}
