//! `lavabeacon verify` as a user runs it: real files, real processes, exit statuses and output.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nist_dir() -> PathBuf {
    root().join("tests/vectors/nist-2018-chain1")
}

fn nist_cert() -> String {
    nist_dir()
        .join("certificate-5501e3d7.pem")
        .display()
        .to_string()
}

fn nist_pulses() -> Vec<String> {
    [1, 54609, 54610]
        .iter()
        .map(|n| {
            nist_dir()
                .join(format!("pulse-{n}.json"))
                .display()
                .to_string()
        })
        .collect()
}

/// A pulse file's JSON on one line, as a JSON Lines record.
fn json_line(path: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.to_string()
}

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn verify_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .arg("verify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn args<'a>(cert: &'a str, files: &'a [String]) -> Vec<&'a str> {
    let mut v = vec!["--cert", cert];
    v.extend(files.iter().map(String::as_str));
    v
}

#[test]
fn nist_pulses_verify_with_their_certificate() {
    let (cert, files) = (nist_cert(), nist_pulses());
    let o = verify(&args(&cert, &files));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert_eq!(
        out.trim(),
        "OK: 3 pulses, 3 signatures, 1 links, 2 skip links checked; 0 problems"
    );
}

#[test]
fn a_missing_certificate_fails_and_says_which() {
    let files = nist_pulses();
    let o = verify(&files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("certificate 5501e3d7… not provided; pass --cert"),
        "{}",
        text(&o)
    );
}

#[test]
fn certificates_can_come_from_a_directory() {
    let files = nist_pulses();
    let dir = nist_dir().display().to_string();
    let mut a = vec!["--certs", dir.as_str()];
    a.extend(files.iter().map(String::as_str));
    assert_eq!(verify(&a).status.code(), Some(0));
}

/// Writes `content` to a file in a fresh temporary directory.
fn temp_file(name: &str, content: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

#[test]
fn one_changed_hex_digit_fails_with_chain_pulse_and_field() {
    let original = std::fs::read_to_string(nist_dir().join("pulse-54610.json")).unwrap();
    let changed = original.replacen(
        "\"localRandomValue\": \"F6F8",
        "\"localRandomValue\": \"E6F8",
        1,
    );
    assert_ne!(original, changed);
    let (_d, path) = temp_file("p.json", changed.as_bytes());
    let cert = nist_cert();
    let files = vec![nist_pulses()[1].clone(), path.clone()];
    let o = verify(&args(&cert, &files));
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains(&format!(
            "chain 1 pulse 54610 ({path}:1): signatureValue: signature does not verify"
        )),
        "{out}"
    );
    assert!(
        out.contains("chain 1 pulse 54610")
            && out.contains("localRandomValue: does not match pulse 54609's precommitmentValue"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("FAILED: 2 pulses, 2 signatures, 1 links"),
        "{out}"
    );
}

#[test]
fn json_report_is_machine_readable() {
    let (cert, files) = (nist_cert(), nist_pulses());
    let mut a = vec!["--json"];
    a.extend(args(&cert, &files));
    let o = verify(&a);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["pulses"], 3);
    assert_eq!(v["signatures_checked"], 3);
    assert_eq!(v["links_checked"], 1);
    assert_eq!(v["skip_links_checked"], 2);
    assert_eq!(v["variants"]["nist"], 3);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);

    let o = verify(&["--json", &files[0]]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["check"], "certificate_missing");
    assert_eq!(v["problems"][0]["pulse"], 1);
}

#[test]
fn reads_json_lines_from_stdin() {
    let lines: String = nist_pulses().iter().map(|f| json_line(f) + "\n").collect();
    let cert = nist_cert();
    let o = verify_stdin(&["--cert", &cert, "-"], lines.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn malformed_input_names_file_and_line_and_exits_1() {
    let cert = nist_cert();
    let good = json_line(&nist_pulses()[0]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated.json",
            good[..good.len() / 2].to_string(),
            "truncated JSON",
        ),
        (
            "badhex.jsonl",
            format!(
                "{good}\n{}\n",
                good.replace("\"localRandomValue\":\"88C3", "\"localRandomValue\":\"XXC3")
            ),
            "field `localRandomValue`: not hex",
        ),
        (
            "short.jsonl",
            format!(
                "{good}\n{}\n",
                good.replace("\"localRandomValue\":\"88C3", "\"localRandomValue\":\"8")
            ),
            "field `localRandomValue`: expected 64 bytes (128 hex digits)",
        ),
        (
            "missing.jsonl",
            format!("{good}\n{}\n", good.replace("\"period\":60000,", "")),
            "missing field `period`",
        ),
    ];
    for (name, content, expect) in cases {
        let (_d, path) = temp_file(name, content.as_bytes());
        let o = verify(&["--cert", &cert, &path]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains(expect), "{name}: {out}");
        let line = if name.ends_with(".jsonl") { 2 } else { 1 };
        assert!(
            out.contains(&format!("{path}:{line}")),
            "{name} names its line: {out}"
        );
    }
}

#[test]
fn a_100_mb_line_is_reported_not_fatal() {
    let cert = nist_cert();
    let good = json_line(&nist_pulses()[0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{good}").unwrap();
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f).unwrap();
    }
    let o = verify(&["--cert", &cert, path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains(&format!("{}:2): line longer than", path.display())),
        "{out}"
    );
    assert!(out.contains("FAILED: 2 pulses, 1 signatures"), "{out}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let cert = nist_cert();
    let o = verify(&["--cert", &cert, "/nonexistent/pulses.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("/nonexistent/pulses.jsonl: No such file"),
        "{}",
        text(&o)
    );

    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(2), "no input is a usage error");

    let (_d, bad_cert) = temp_file(
        "bad.pem",
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    let o = verify(&["--cert", &bad_cert, &nist_pulses()[0]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("bad.pem") && text(&o).contains("not base64"),
        "{}",
        text(&o)
    );

    let o = verify(&["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn suite2_test_vectors_verify_from_the_command_line() {
    let d = root().join("tests/vectors/lavabeacon-suite2");
    let cert = d.join("certificate.pem").display().to_string();
    let files: Vec<String> = ["pulse-1.json", "pulse-2.json"]
        .iter()
        .map(|f| d.join(f).display().to_string())
        .collect();
    let o = verify(&args(&cert, &files));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("1 links, 4 skip links checked"),
        "{}",
        text(&o)
    );
}

#[test]
fn skip_path_mode_checks_hops() {
    let (cert, files) = (nist_cert(), nist_pulses());
    // 1 -> 54609 via year, 54609 -> 54610 via previous: a valid skip path.
    let mut a = vec!["--skip-path"];
    a.extend(args(&cert, &files));
    let o = verify(&a);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("skip path of 2 hops"), "{}", text(&o));
}

#[test]
fn empty_input_is_an_error_naming_the_file_not_ok_0_pulses() {
    let cert = nist_cert();
    for (name, content) in [
        ("empty.jsonl", &b""[..]),
        ("blank.jsonl", &b"  \n\n\t\r\n"[..]),
        ("empty-array.json", &b"[]"[..]),
        ("spaced-array.json", &b"\n[\n  \n]\n"[..]),
    ] {
        let (_d, path) = temp_file(name, content);
        let o = verify(&["--cert", &cert, &path]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.contains(&format!("no pulses in {path}")),
            "{name}: {out}"
        );
        assert!(!out.contains("OK:"), "{name}: {out}");
    }
    let o = verify_stdin(&["--cert", &cert, "-"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no pulses in <stdin>"), "{}", text(&o));

    // One empty file among good ones is still a failure, and only it is named.
    let (_d, path) = temp_file("empty.jsonl", b"");
    let mut files = nist_pulses();
    files.push(path.clone());
    let o = verify(&[
        "--json", "--cert", &cert, &files[0], &files[1], &files[2], &path,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["pulses"], 3);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["message"], format!("no pulses in {path}"));
}

#[test]
fn a_compact_json_array_over_1_mib_on_one_line_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["dev", "generate-chain", "--pulses", "1500", "--output"])
        .arg(&chain)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // What `jq -c -s .` makes of it: one line, no newline inside.
    let lines = std::fs::read_to_string(&chain).unwrap();
    let array = format!("[{}]", lines.lines().collect::<Vec<_>>().join(","));
    assert!(array.len() > 1 << 20 && !array.contains('\n'));
    let path = dir.path().join("array.json");
    std::fs::write(&path, &array).unwrap();
    let certs = dir.path().join("chain.certificates");
    let o = verify(&["--certs", certs.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).starts_with("OK: 1500 pulses, 1500 signatures, 1499 links"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_closed_stdout_does_not_make_verify_panic() {
    let (cert, files) = (nist_cert(), nist_pulses());
    let mut child = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .arg("verify")
        .args(args(&cert, &files))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written, as `| head -c 0` would.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A pulse key with a certificate valid `from..to` (RFC 3339 dates), signed by `ca` (an
/// rcgen CA certificate and key) or by itself; and its PEM.
fn identity_valid(
    from: (i32, u8, u8),
    to: (i32, u8, u8),
    ca: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
) -> (lavabeacon_format::suite::Ed25519KeySigner, String) {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lavabeacon verify test");
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let cert = match ca {
        Some((c, k)) => params.signed_by(&kp, c, k).unwrap(),
        None => params.self_signed(&kp).unwrap(),
    };
    let parsed = lavabeacon_format::cert::Certificate::from_der(cert.der()).unwrap();
    (
        lavabeacon_format::suite::Ed25519KeySigner::new(key, parsed.id),
        cert.pem(),
    )
}

/// `n` pulses a minute apart from `start`, as JSON Lines.
fn pulses_from(start: &str, n: u64, signer: &dyn lavabeacon_format::suite::PulseSigner) -> String {
    use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
    let t0 = lavabeacon_format::time::parse_time_stamp(start).unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "https://beacon.example.org/beacon/2.0",
        1,
        60_000,
    ));
    let v = |i: u64| lavabeacon_format::hash::sha512(&[b"verify cli", &i.to_be_bytes()]);
    (1..=n)
        .map(|i| {
            let next = NextPulse::new(
                t0 + (i as i64 - 1) * 60_000,
                v(i),
                lavabeacon_format::message::precommitment(&v(i + 1)),
            );
            lavabeacon_format::json::to_json_line(&b.next(next, signer).unwrap()) + "\n"
        })
        .collect()
}

fn problems_json(o: &Output) -> Vec<serde_json::Value> {
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    report["problems"].as_array().unwrap().clone()
}

#[test]
fn verify_rejects_a_pulse_outside_its_certificates_validity_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, pem) = identity_valid((2025, 1, 1), (2025, 7, 1), None);
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, pem).unwrap();
    let file = dir.path().join("pulses.jsonl");
    // 23:58, 23:59, 00:00 (the certificate's last second) and 00:01, after it.
    std::fs::write(&file, pulses_from("2025-06-30T23:58:00.000Z", 4, &signer)).unwrap();
    let (c, f) = (cert.to_str().unwrap(), file.to_str().unwrap());
    let o = verify(&["--cert", c, "--json", f]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let problems = problems_json(&o);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["check"], "certificate_validity");
    assert_eq!(problems[0]["pulse"], 4);
    assert_eq!(problems[0]["field"], "timeStamp");
    let text = verify(&["--cert", c, f]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("after the validity of its certificate"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

#[test]
fn verify_with_ca_rejects_a_certificate_that_does_not_chain_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "operator CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).unwrap();
    let ca_pem = write("ca.pem", &ca.pem());
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other = ca_params.self_signed(&other_key).unwrap();
    let other_pem = write("other-ca.pem", &other.pem());

    let (signer, pem) = identity_valid((2020, 1, 1), (2030, 1, 1), Some((&ca, &ca_key)));
    let cert = write("cert.pem", &pem);
    let file = write(
        "pulses.jsonl",
        &pulses_from("2026-01-01T00:00:00.000Z", 3, &signer),
    );
    let o = verify(&["--cert", &cert, "--ca", &ca_pem, &file]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    for ca in [&other_pem, &cert] {
        let o = verify(&["--cert", &cert, "--ca", ca, "--json", &file]);
        assert_eq!(o.status.code(), Some(1));
        let problems = problems_json(&o);
        assert_eq!(
            problems.len(),
            1,
            "said once for the certificate: {problems:?}"
        );
        assert_eq!(problems[0]["check"], "certificate_issuer");
    }
    let o = verify(&["--cert", &cert, "--ca", "/no/such/ca.pem", &file]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a missing --ca file is a usage error"
    );
}
