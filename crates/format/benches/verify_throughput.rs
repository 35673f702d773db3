//! Verification throughput from JSON Lines files, parsing included (issue #2's targets:
//! ≥ 100,000 suite-2 pulses/s and ≥ 20,000 RSA-4096 suite-0 pulses/s on 2 cores).
//!
//! `cargo bench -p lavabeacon-format --bench verify_throughput` makes the chains once under
//! `target/bench-data/` (with their certificates beside them), then times the verifier over
//! them several times and prints the best and median rates. The same files can be timed
//! through the CLI with hyperfine; the command is printed at the end.

#[path = "../tests/support/mod.rs"]
mod support;

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::{Certificate, CertificateSet};
use lavabeacon_format::input::read_items;
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::suite::{PulseSigner, RsaKeySigner};
use lavabeacon_format::verify::{Options, Verifier};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_chain(path: &Path, cert: &Certificate, n: u64, signer: &dyn PulseSigner) {
    if path.exists() {
        return;
    }
    eprintln!("making {} ({n} pulses)…", path.display());
    let tmp = path.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let mut b = ChainBuilder::new_chain(ChainParams::new(support::BASE, 1, 60_000));
    let t0 = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    for i in 1..=n {
        let next = NextPulse::new(
            t0 + (i as i64 - 1) * 60_000,
            support::lrv(i),
            precommitment(&support::lrv(i + 1)),
        );
        let p = b.next(next, signer).unwrap();
        writeln!(out, "{}", to_json_line(&p)).unwrap();
    }
    out.flush().unwrap();
    std::fs::rename(&tmp, path).unwrap();
    std::fs::write(path.with_extension("pem"), cert.to_pem()).unwrap();
}

fn rsa4096_identity() -> (RsaKeySigner, Certificate) {
    use rsa::pkcs8::EncodePrivateKey;
    let key_path = data_dir().join("rsa4096-test-key.der");
    if !key_path.exists() {
        eprintln!("generating an RSA-4096 test key…");
        let k = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 4096).unwrap();
        std::fs::write(&key_path, k.to_pkcs8_der().unwrap().as_bytes()).unwrap();
    }
    let pkcs8 = std::fs::read(&key_path).unwrap();
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.clone()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let params = rcgen::CertificateParams::new(vec!["lavabeacon.test".into()]).unwrap();
    let cert = Certificate::from_der(params.self_signed(&kp).unwrap().der()).unwrap();
    (RsaKeySigner::from_pkcs8(&pkcs8, cert.id).unwrap(), cert)
}

fn measure(name: &str, file: &Path, cert: &Certificate, options: Options, runs: usize) {
    let mut certs = CertificateSet::new();
    certs.add(cert.clone());
    let verifier = Verifier::new(&certs, options);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let f = std::fs::File::open(file).unwrap();
        let start = Instant::now();
        let report = verifier.verify_items(read_items("bench", f)).unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(report.passed(), "{}", report.summary());
        rates.push(report.pulses as f64 / secs);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: best {:.0} pulses/s, median {:.0} pulses/s over {runs} runs ({} threads)",
        rates[rates.len() - 1],
        rates[rates.len() / 2],
        rayon::current_num_threads()
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with no arguments too; keep that cheap.
    let quick = std::env::args().all(|a| a != "--bench");
    let dir = data_dir();
    let (n2, n0, runs) = if quick {
        (2_000, 50, 1)
    } else {
        (1_000_000, 10_000, 5)
    };

    let (ed, ed_cert) = support::ed25519_identity(1);
    let ed_file = dir.join(format!("suite2-{n2}.jsonl"));
    write_chain(&ed_file, &ed_cert, n2, &ed);
    measure(
        "suite 2 (Ed25519, batched)",
        &ed_file,
        &ed_cert,
        Options::default(),
        runs,
    );
    measure(
        "suite 2 (Ed25519, --strict)",
        &ed_file,
        &ed_cert,
        Options {
            strict: true,
            skip_path: false,
            ordered: false,
        },
        runs.min(3),
    );

    let (rsa, rsa_cert) = rsa4096_identity();
    let rsa_file = dir.join(format!("suite0-rsa4096-{n0}.jsonl"));
    write_chain(&rsa_file, &rsa_cert, n0, &rsa);
    measure(
        "suite 0 (RSA-4096)",
        &rsa_file,
        &rsa_cert,
        Options::default(),
        runs,
    );

    println!(
        "CLI: hyperfine 'target/release/lavabeacon verify --cert {} {}'",
        ed_file.with_extension("pem").display(),
        ed_file.display()
    );
}
