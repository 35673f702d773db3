//! `lavabeacon dev generate-chain`: a long, valid test chain, fast, signed with a fresh software
//! key whose certificate says TEST ONLY — for testing auditors' tools, benchmarks and mirrors.
//! `--corrupt K` plants K faults, each of which a verifier must report at exactly its pulse and
//! nowhere else; they are listed in `NAME.faults.json`.

use super::layout;
use super::{EXIT_FAILED, EXIT_USAGE};
use lavabeacon_format::builder::{ChainBuilder, ChainParams, LinkFacts, NextPulse};
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::message::{output_value, precommitment, signed_message};
use lavabeacon_format::suite::{Ed25519KeySigner, PulseSigner, RsaKeySigner};
use lavabeacon_format::Pulse;
use rand::{Rng, RngCore, SeedableRng};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Generate a valid test chain (marked TEST), optionally with planted faults.
    GenerateChain(GenerateArgs),
}

#[derive(clap::Args)]
pub struct GenerateArgs {
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

/// A planted fault: where, what, and which check must catch it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Fault {
    chain_index: u64,
    pulse_index: u64,
    kind: &'static str,
    check: &'static str,
}

const KINDS: [(&str, &str); 4] = [
    ("signature", "signature"),
    ("previous", "previous"),
    ("precommitment", "precommitment"),
    ("skip-value", "skip_value"),
];

fn identity(suite: &str) -> Result<(Box<dyn PulseSigner + Sync>, Certificate), String> {
    use lavabeacon_signer::cert::{issue_self_signed, CertKey};
    let fail = |e: &dyn std::fmt::Display| format!("making the test key: {e}");
    // The same TEST ONLY certificate a software key gets, self-signed by the fresh key.
    let certificate = |key: CertKey<'static>| -> Result<Certificate, String> {
        let der =
            issue_self_signed(key, "lavabeacon generated chain", true, 10).map_err(|e| fail(&e))?;
        Certificate::from_der(&der).map_err(|e| fail(&e))
    };
    match suite {
        "ed25519" => {
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let k = key.clone();
            let cert = certificate(CertKey {
                public_key: key.verifying_key().to_bytes().to_vec(),
                algorithm: &rcgen::PKCS_ED25519,
                sign: Box::new(move |m| Ok(ed25519_dalek::Signer::sign(&k, m).to_bytes().to_vec())),
            })?;
            Ok((Box::new(Ed25519KeySigner::new(key, cert.id)), cert))
        }
        "rsa" | "rsa-2048" | "rsa-3072" | "rsa-4096" => {
            use rsa::pkcs1::EncodeRsaPublicKey;
            use rsa::pkcs8::EncodePrivateKey;
            let bits: usize = suite
                .strip_prefix("rsa-")
                .map_or(Ok(2048), str::parse)
                .map_err(|e| fail(&e))?;
            let key =
                rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).map_err(|e| fail(&e))?;
            let pkcs8 = key
                .to_pkcs8_der()
                .map_err(|e| fail(&e))?
                .as_bytes()
                .to_vec();
            let public_key = key
                .to_public_key()
                .to_pkcs1_der()
                .map_err(|e| fail(&e))?
                .as_bytes()
                .to_vec();
            // The pulse signer's operation (PKCS#1 v1.5, SHA-512) signs the certificate too.
            let for_cert = RsaKeySigner::from_pkcs8(&pkcs8, Hash512::ZERO).map_err(|e| fail(&e))?;
            let cert = certificate(CertKey {
                public_key,
                algorithm: &rcgen::PKCS_RSA_SHA512,
                sign: Box::new(move |m| {
                    for_cert
                        .sign(m)
                        .map_err(|e| lavabeacon_signer::SignerError::Certificate(e.to_string()))
                }),
            })?;
            Ok((
                Box::new(RsaKeySigner::from_pkcs8(&pkcs8, cert.id).map_err(|e| fail(&e))?),
                cert,
            ))
        }
        other => Err(format!(
            "--suite {other:?}: use ed25519, rsa (2048 bits), rsa-3072 or rsa-4096"
        )),
    }
}

fn resign(p: &mut Pulse, signer: &dyn PulseSigner) -> Result<(), String> {
    let m = signed_message(p);
    p.signature_value = signer.sign(&m).map_err(|e| e.to_string())?;
    p.output_value = output_value(&m, &p.signature_value);
    Ok(())
}

/// Plants fault `kind` in `p` (already built), keeping every later link consistent with it:
/// the builder is moved on from the changed pulse.
fn plant(
    p: &mut Pulse,
    kind: &str,
    rng: &mut rand::rngs::StdRng,
    signer: &dyn PulseSigner,
    b: &mut ChainBuilder,
) -> Result<(), String> {
    let mut noise = [0u8; 64];
    rng.fill_bytes(&mut noise);
    match kind {
        "signature" => {
            // A flipped bit; outputValue is made from the bad signature, so only the
            // signature check can catch it.
            let i = rng.gen_range(0..p.signature_value.len());
            p.signature_value[i] ^= 1 << rng.gen_range(0..8);
            let m = signed_message(p);
            p.output_value = output_value(&m, &p.signature_value);
        }
        "previous" => {
            p.list_values[0].value = Hash512(noise);
            resign(p, signer)?;
        }
        "precommitment" => {
            // A value the pulse before did not commit to, with statusCode 0 all the same.
            p.local_random_value = Hash512(noise);
            resign(p, signer)?;
        }
        _ => {
            p.list_values[1].value = Hash512(noise);
            resign(p, signer)?;
        }
    }
    let mut state = b.state().expect("a pulse was built").clone();
    let facts = LinkFacts::of(p).map_err(|e| e.to_string())?;
    for f in state.first_of.iter_mut() {
        if f.index == p.pulse_index {
            *f = facts.clone();
        }
    }
    state.last = facts;
    *b = ChainBuilder::resume(b.params().clone(), state);
    Ok(())
}

pub fn run(cmd: DevCommand) -> ExitCode {
    let DevCommand::GenerateChain(a) = cmd;
    let usage = |m: String| {
        tracing::error!("lavabeacon dev generate-chain: {m}");
        ExitCode::from(EXIT_USAGE)
    };
    let slots = match crate::config::parse_period(&a.period) {
        Ok(p) => match lavabeacon_format::time::Slots::new(p) {
            Some(s) => s,
            None => return usage("--period must be longer than 0".into()),
        },
        Err(e) => return usage(e),
    };
    let period = slots.period_ms();
    if a.pulses == 0 || a.corrupt >= a.pulses {
        return usage("need --pulses ≥ 1 and --corrupt below --pulses".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start = match &a.start {
        None => slots.after(slots.at_or_before(now), -(a.pulses as i64 - 1)),
        Some(t) => match t
            .parse::<i64>()
            .ok()
            .or_else(|| lavabeacon_format::time::parse_time_stamp(t).ok())
        {
            Some(ms) if slots.is_slot(ms) => ms,
            _ => {
                return usage(format!(
                    "--start {t:?}: RFC 3339 or Unix ms, on a period boundary"
                ))
            }
        },
    };
    let (signer, cert) = match identity(&a.suite) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    let seed = a.seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut fault_at: Vec<u64> = Vec::new();
    while (fault_at.len() as u64) < a.corrupt {
        let k = rng.gen_range(2..=a.pulses);
        if !fault_at.contains(&k) {
            fault_at.push(k);
        }
    }
    fault_at.sort_unstable();
    let value = |i: u64| sha512(&[&seed.to_be_bytes(), &i.to_be_bytes()]);

    // Where the pulses go.
    enum Sink {
        File(std::io::BufWriter<std::fs::File>, PathBuf),
        Db(
            tokio::runtime::Runtime,
            std::sync::Arc<dyn lavabeacon_store::Store>,
            Vec<Pulse>,
        ),
    }
    let mut sink = if let Some(out) = &a.output {
        let file = match std::fs::File::create(out) {
            Ok(f) => f,
            Err(e) => return usage(format!("{}: {e}", out.display())),
        };
        if let Err(e) = layout::write_certificate(out, &cert) {
            return usage(format!("{}: {e}", layout::certificates_dir(out).display()));
        }
        Sink::File(
            std::io::BufWriter::with_capacity(1 << 20, file),
            out.clone(),
        )
    } else {
        let rt = super::lifecycle::multi_thread_runtime();
        let url = a.database.clone().expect("clap requires one");
        let store = match rt.block_on(lavabeacon_store::open(&url)) {
            Ok(s) => s,
            Err(e) => {
                return usage(format!(
                    "database {}: {}",
                    lavabeacon_store::redact(&url),
                    crate::config::redact_urls(&e.to_string())
                ))
            }
        };
        if let Err(e) = rt.block_on(store.put_certificate(&cert.der)) {
            return usage(format!("storing the certificate: {e}"));
        }
        Sink::Db(rt, store, Vec::with_capacity(20_000))
    };

    let started = Instant::now();
    let mut b = ChainBuilder::new_chain(ChainParams::new(&a.base_uri, a.chain, period as u32));
    let mut faults = Vec::new();
    let mut next_fault = fault_at.iter().peekable();
    for i in 1..=a.pulses {
        let t = slots.after(start, i as i64 - 1);
        let input = NextPulse::new(t, value(i), precommitment(&value(i + 1)));
        let mut p = match b.next(input, signer.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("lavabeacon dev generate-chain: pulse {i}: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        if next_fault.peek() == Some(&&i) {
            next_fault.next();
            let (kind, check) = KINDS[faults.len() % KINDS.len()];
            if let Err(e) = plant(&mut p, kind, &mut rng, signer.as_ref(), &mut b) {
                tracing::error!("lavabeacon dev generate-chain: pulse {i}: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
            faults.push(Fault {
                chain_index: a.chain,
                pulse_index: i,
                kind,
                check,
            });
        }
        let written = match &mut sink {
            Sink::File(w, _) => writeln!(w, "{}", to_json_line(&p)).map_err(|e| e.to_string()),
            Sink::Db(rt, store, batch) => {
                batch.push(p);
                if batch.len() == 20_000 || i == a.pulses {
                    let r = rt
                        .block_on(store.bulk_load(batch))
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    batch.clear();
                    r
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = written {
            tracing::error!("lavabeacon dev generate-chain: writing pulse {i}: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let faults_json = serde_json::to_string_pretty(&faults).expect("faults serialise");
    match &mut sink {
        Sink::File(w, out) => {
            if let Err(e) = w.flush() {
                tracing::error!("lavabeacon dev generate-chain: {}: {e}", out.display());
                return ExitCode::from(EXIT_FAILED);
            }
            if !faults.is_empty() {
                if let Err(e) = std::fs::write(layout::faults_file(out), &faults_json) {
                    tracing::error!("lavabeacon dev generate-chain: {e}");
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        }
        Sink::Db(..) => {
            if !faults.is_empty() {
                crate::logging::stdout_line(&faults_json);
            }
        }
    }
    tracing::info!(
        "lavabeacon dev generate-chain: {} pulses ({}, TEST key {}) in {:.1} s; {} faults planted",
        a.pulses,
        a.suite,
        cert.id.short(),
        started.elapsed().as_secs_f64(),
        faults.len()
    );
    ExitCode::SUCCESS
}
