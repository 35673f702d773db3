//! `draw`: verifiable draws (docs/draws.md). `run` makes an RFC 3797 selection from its own
//! inputs (names, seeds, optionally a pulse); `spec` checks a draw spec and prints its id;
//! `result` fetches (or reads) the pulse that decides a spec, verifies it, and makes the
//! selection; `verify` checks a result offline: the spec's id, the pulse (signature,
//! certificate, that it is the pulse of the target time) and the selection, made again.

use crate::exit::{EXIT_FAILED, EXIT_USAGE};
use lavabeacon_draw::receipt::Receipt;
use lavabeacon_draw::{rfc3797, select, DrawResult, DrawSpec};
use lavabeacon_format::cert::{parse_certificates, CertificateSet};
use lavabeacon_format::json::{parse_pulse, to_json_line};
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The offline commands (the `lavabeacon` binary adds `register`, which talks to a beacon with
/// a client's credentials).
#[derive(clap::Subcommand)]
pub enum Command {
    /// An RFC 3797 selection from its own inputs: the names, the seeds (one source per line),
    /// and optionally a pulse whose outputValue is the last source.
    Run(RunArgs),
    /// Check a draw spec (JSON) and print its id: SHA-512 of its RFC 8785 canonical bytes.
    Spec(SpecArgs),
    /// The result of a draw: the pulse of its target time (from --pulse, or fetched from the
    /// beacon), verified, and the selection made from it.
    Result(ResultArgs),
    /// Check a draw's result offline: the spec's id, the pulse, and the selection made again.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The method (RFC 3797's own inputs; specs bound to a pulse use `draw result`).
    #[arg(long, default_value = "rfc3797", value_parser = ["rfc3797"])]
    method: String,
    /// The pool: one name per line, in published order (blank lines and lines starting with
    /// `#` are skipped; indexes count names only).
    #[arg(long, value_name = "FILE")]
    names: PathBuf,
    /// The sources: one per line, whole numbers separated by white space; `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,
    /// A pulse (JSON): its outputValue is the last source. Not verified here: verify it first
    /// (`lavabeacon verify`), or use a draw spec with `draw result`.
    #[arg(long, value_name = "FILE")]
    pulse: Option<PathBuf>,
    /// How many to pick.
    #[arg(long)]
    count: usize,
    /// Print {"picks": [{"position", "index", "name"}…], "key": …}.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SpecArgs {
    /// The spec (JSON).
    #[arg(value_name = "FILE")]
    spec: PathBuf,
    /// Print {"drawId", "canonical"} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ResultArgs {
    /// The spec (JSON).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// The pulse of the target time (JSON), instead of fetching it.
    #[arg(long, value_name = "FILE", conflicts_with = "url")]
    pulse: Option<PathBuf>,
    /// With --pulse, when that pulse is after the target time: the pulse before it, which
    /// shows that none was published at the target time.
    #[arg(long, value_name = "FILE", requires = "pulse")]
    previous: Option<PathBuf>,
    /// The beacon to fetch from (default: the spec's beacon.baseUri without /beacon/2.0).
    #[arg(long)]
    url: Option<String>,
    /// The certificate the pulse must verify against (PEM or DER; repeat for several). Without
    /// it, the beacon's certificate is fetched and must be the one the spec names.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The spec (JSON).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// The result (`draw result`'s output).
    #[arg(long, value_name = "FILE")]
    result: PathBuf,
    /// The certificate the pulse must verify against (PEM or DER; repeat for several).
    #[arg(long = "cert", value_name = "FILE", required = true)]
    certs: Vec<PathBuf>,
    /// The registry's receipt for the spec (JSON): its signature (by a key of --cert), the
    /// spec's id, and that it was registered at least two periods before the target time.
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// A pulse you trust (JSON): one you checked yourself, or that others hold. With --path,
    /// the pulse that decides must be linked to it.
    #[arg(long, value_name = "FILE", requires = "path")]
    trusted: Option<PathBuf>,
    /// The pulses linking the pulse that decides and --trusted, oldest first: a skip path
    /// (`/beacon/2.0/skipList/{c}/{p1}/{p2}`) or consecutive pulses, as a JSON array or JSON
    /// Lines. Each must verify and name the one before it.
    #[arg(long, value_name = "FILE", requires = "trusted")]
    path: Option<PathBuf>,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> ExitCode {
    run_command(args.command)
}

/// Runs one of the offline commands.
pub fn run_command(command: Command) -> ExitCode {
    let outcome = match command {
        Command::Run(a) => run_rfc3797(a),
        Command::Spec(a) => spec(a),
        Command::Result(a) => result(a),
        Command::Verify(a) => verify(a),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_spec(path: &Path) -> Result<DrawSpec, String> {
    DrawSpec::parse(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_pulse(path: &Path) -> Result<Pulse, String> {
    parse_pulse(&read(path)?).map_err(|e| format!("{}: not a pulse: {e}", path.display()))
}

fn run_rfc3797(a: RunArgs) -> Result<ExitCode, String> {
    let names: Vec<String> = read(&a.names)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let mut sources = match &a.seeds {
        Some(p) => {
            rfc3797::parse_sources(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Vec::new(),
    };
    if let Some(p) = &a.pulse {
        sources.push(rfc3797::pulse_source(
            read_pulse(p)?.output_value.as_bytes(),
        ));
    }
    if sources.is_empty() {
        return Err("no sources: give --seeds, --pulse or both".into());
    }
    let key = rfc3797::key(&sources);
    let picks = rfc3797::select(&key, names.len(), a.count).map_err(|e| e.to_string())?;
    if a.json {
        let picks: Vec<_> = picks
            .iter()
            .enumerate()
            .map(|(i, &index)| serde_json::json!({"position": i + 1, "index": index, "name": names[index - 1]}))
            .collect();
        println!("{}", serde_json::json!({"picks": picks, "key": key}));
    } else {
        println!("key: {key}");
        for (i, &index) in picks.iter().enumerate() {
            println!("{:>3}. {:>5}  {}", i + 1, index, names[index - 1]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn spec(a: SpecArgs) -> Result<ExitCode, String> {
    let spec = match DrawSpec::parse(&read(&a.spec)?) {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL {}: {e}", a.spec.display());
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    if a.json {
        let canonical: serde_json::Value = serde_json::from_slice(&spec.canonical()).expect("JSON");
        println!(
            "{}",
            serde_json::json!({"drawId": spec.id_hex(), "canonical": canonical})
        );
    } else {
        println!("drawId: {}", spec.id_hex());
        println!("{}", String::from_utf8(spec.canonical()).expect("UTF-8"));
    }
    Ok(ExitCode::SUCCESS)
}

/// GET `url`: the body, or why not.
fn fetch(url: &str) -> Result<String, String> {
    match ureq::get(url).call() {
        Ok(r) => r.into_string().map_err(|e| format!("{url}: {e}")),
        Err(ureq::Error::Status(425, _)) => Err(format!(
            "{url}: 425, not yet published: the draw's pulse is still in the future"
        )),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "{url}: {code} {}",
            r.into_string()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        )),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

fn result(a: ResultArgs) -> Result<ExitCode, String> {
    let spec = read_spec(&a.spec)?;
    let target = spec.target_ms().map_err(|e| e.to_string())?;
    let base = a.url.clone().unwrap_or_else(|| {
        spec.beacon
            .base_uri
            .trim_end_matches('/')
            .trim_end_matches("/beacon/2.0")
            .to_string()
    });
    let (pulse, previous) = match &a.pulse {
        Some(p) => (
            read_pulse(p)?,
            a.previous.as_deref().map(read_pulse).transpose()?,
        ),
        None => {
            let body = fetch(&format!("{base}/beacon/2.0/pulse/time/{target}"))?;
            let pulse = parse_pulse(&body).map_err(|e| format!("the beacon's answer: {e}"))?;
            let previous = if pulse.time_ms().ok() != Some(target) && pulse.pulse_index > 1 {
                let body = fetch(&format!(
                    "{base}/beacon/2.0/chain/{}/pulse/{}",
                    pulse.chain_index,
                    pulse.pulse_index - 1
                ))?;
                Some(parse_pulse(&body).map_err(|e| format!("the beacon's answer: {e}"))?)
            } else {
                None
            };
            (pulse, previous)
        }
    };
    let certs = if a.certs.is_empty() {
        // Fetched from the beacon itself: only the certificate the spec names is taken, so the
        // beacon cannot swap in another key after the draw was announced.
        if pulse.certificate_id.to_hex_lower() != spec.beacon.certificate_id.to_ascii_lowercase() {
            return Err(format!(
                "the pulse is signed with certificate {} but the spec names {}: give the certificate you trust with --cert",
                pulse.certificate_id.to_hex_lower(),
                spec.beacon.certificate_id
            ));
        }
        let pem = fetch(&format!(
            "{base}/beacon/2.0/certificate/{}",
            pulse.certificate_id.to_hex_lower()
        ))?;
        let mut certs = CertificateSet::new();
        for c in parse_certificates(pem.as_bytes())
            .map_err(|e| format!("the beacon's certificate: {e}"))?
        {
            certs.add(c);
        }
        certs
    } else {
        crate::load_certificates(&a.certs, &[])?
    };
    let problems = deciding_pulse(&spec, &pulse, previous.as_ref(), &certs);
    if !problems.is_empty() {
        for p in &problems {
            println!("FAIL {p}");
        }
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    let selection = select(&spec, pulse.output_value.as_bytes()).map_err(|e| e.to_string())?;
    let out = DrawResult {
        draw_id: spec.id_hex(),
        pulse: pulse_json(&pulse),
        previous: previous.as_ref().map(pulse_json),
        selection,
    };
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    Ok(ExitCode::SUCCESS)
}

fn pulse_json(p: &Pulse) -> serde_json::Value {
    serde_json::from_str(&to_json_line(p)).expect("a pulse is JSON")
}

/// Why `pulse` is not the verified pulse that decides `spec` (nothing when it is): it verifies
/// against `certs`, it is of the spec's beacon and chain, and it is the pulse of the target
/// time, or the first after it, which `previous` (the pulse before it, linked to it) shows.
fn deciding_pulse(
    spec: &DrawSpec,
    pulse: &Pulse,
    previous: Option<&Pulse>,
    certs: &CertificateSet,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pulses = vec![pulse.clone()];
    pulses.extend(previous.cloned());
    let report = Verifier::new(certs, Options::default()).verify_pulses(&pulses);
    if !report.passed() {
        problems.push(format!(
            "the pulse does not verify:\n{}",
            report.render_text()
        ));
    }
    let Ok(target) = spec.target_ms() else {
        problems.push("the spec's targetTime cannot be read".into());
        return problems;
    };
    if pulse.chain_index != spec.beacon.chain_index {
        problems.push(format!(
            "the pulse is of chain {}, the spec names chain {}",
            pulse.chain_index, spec.beacon.chain_index
        ));
    }
    let prefix = format!("{}/", spec.beacon.base_uri.trim_end_matches('/'));
    if !pulse.uri.starts_with(&prefix) {
        problems.push(format!(
            "the pulse's uri {} is not under the spec's beacon {}",
            pulse.uri, spec.beacon.base_uri
        ));
    }
    let time = pulse.time_ms().unwrap_or(i64::MIN);
    if time < target {
        problems.push(format!(
            "the pulse ({}) is before the target time {}",
            pulse.time_stamp, spec.target_time
        ));
    } else if time > target {
        // Another pulse decides only if none was published at the target time: the one
        // before it in the chain must be earlier than the target.
        match previous {
            Some(p)
                if p.chain_index == pulse.chain_index
                    && p.pulse_index + 1 == pulse.pulse_index
                    && p.time_ms().unwrap_or(i64::MAX) < target => {}
            Some(p) => problems.push(format!(
                "the pulse ({}) is after the target time {}, and the pulse given before it ({}-{}, {}) does not show that none was published at the target time",
                pulse.time_stamp, spec.target_time, p.chain_index, p.pulse_index, p.time_stamp
            )),
            None if pulse.pulse_index == 1 && pulse.status_code == 1 => {}
            None => problems.push(format!(
                "the pulse ({}) is after the target time {}: the pulse before it is needed to show that none was published at the target time",
                pulse.time_stamp, spec.target_time
            )),
        }
    }
    problems
}

/// Pulses from a JSON array or JSON Lines.
fn read_pulses(path: &Path) -> Result<Vec<Pulse>, String> {
    let text = read(path)?;
    let items: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .iter()
            .map(|v| v.to_string())
            .collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    items
        .iter()
        .map(|t| parse_pulse(t).map_err(|e| format!("{}: not a pulse: {e}", path.display())))
        .collect()
}

/// Why `path` does not link the pulse that decides with the trusted one (nothing when it
/// does): its ends are those two pulses, and it verifies as a skip path (each pulse signed,
/// each naming the one before in one of its listValues).
fn linked(trusted: &Pulse, path: &[Pulse], decides: &Pulse, certs: &CertificateSet) -> Vec<String> {
    let (Some(first), Some(last)) = (path.first(), path.last()) else {
        return vec!["the path is empty".into()];
    };
    let same = |a: &Pulse, b: &Pulse| a.output_value == b.output_value;
    let mut problems = Vec::new();
    let ends_ok = (same(first, decides) && same(last, trusted))
        || (same(first, trusted) && same(last, decides));
    if !ends_ok {
        problems.push(format!(
            "the path runs from {}-{} to {}-{}: it must run between the pulse that decides ({}-{}) and the trusted one ({}-{})",
            first.chain_index, first.pulse_index, last.chain_index, last.pulse_index,
            decides.chain_index, decides.pulse_index, trusted.chain_index, trusted.pulse_index
        ));
    }
    let options = Options {
        skip_path: true,
        ..Options::default()
    };
    let report = Verifier::new(certs, options).verify_pulses(path);
    if !report.passed() {
        problems.push(format!(
            "the path to the trusted pulse does not verify:\n{}",
            report.render_text()
        ));
    }
    problems
}

fn verify(a: VerifyArgs) -> Result<ExitCode, String> {
    let spec = read_spec(&a.spec)?;
    let result: DrawResult = serde_json::from_str(&read(&a.result)?)
        .map_err(|e| format!("{}: not a draw result: {e}", a.result.display()))?;
    let certs = crate::load_certificates(&a.certs, &[])?;
    let mut problems = Vec::new();
    if result.draw_id != spec.id_hex() {
        problems.push(format!(
            "the result is of draw {}, but this spec's id is {}: the spec was changed, or it is another draw",
            result.draw_id,
            spec.id_hex()
        ));
    }
    if let Some(path) = &a.receipt {
        let receipt: Receipt = serde_json::from_str(&read(path)?)
            .map_err(|e| format!("{}: not a receipt: {e}", path.display()))?;
        problems.extend(receipt.problems(&spec, &certs));
    }
    let parse = |v: &serde_json::Value| {
        parse_pulse(&v.to_string()).map_err(|e| format!("the result's pulse: {e}"))
    };
    let pulse = parse(&result.pulse)?;
    let previous = result.previous.as_ref().map(parse).transpose()?;
    problems.extend(deciding_pulse(&spec, &pulse, previous.as_ref(), &certs));
    if let (Some(trusted), Some(path)) = (&a.trusted, &a.path) {
        problems.extend(linked(
            &read_pulse(trusted)?,
            &read_pulses(path)?,
            &pulse,
            &certs,
        ));
    }
    match select(&spec, pulse.output_value.as_bytes()) {
        Ok(again) if again == result.selection => {}
        Ok(_) => problems.push(
            "the selection is not the one the spec and the pulse make (made again here)".into(),
        ),
        Err(e) => problems.push(e.to_string()),
    }
    let ok = problems.is_empty();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"ok": ok, "drawId": spec.id_hex(), "problems": problems})
        );
    } else {
        for p in &problems {
            println!("FAIL {p}");
        }
        if ok {
            println!(
                "OK: draw {}: pulse {}-{} ({}) verifies and decides it; the selection is made again and matches",
                &spec.id_hex()[..16],
                pulse.chain_index,
                pulse.pulse_index,
                pulse.time_stamp
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
