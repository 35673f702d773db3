//! Private random bytes end to end: `lavabeacon serve` over HTTPS (a SoftHSM2 dev token, a CA
//! made here), clients made with `lavabeacon clients`, bytes fetched by `lavabeacon bytes` and
//! by the three examples in docs/examples (Python's standard library, Node's WebCrypto, curl
//! with openssl), a client added and a certificate renewed and both taken in on SIGHUP, and
//! then every log line and every file the beacon wrote searched for the bytes it served:
//! never found.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn lavabeacon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(args)
        .output()
        .unwrap()
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.crt, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let f = common::tls::tls_files(dir);
    (f.ca_pem, f.cert, f.key)
}

/// `lavabeacon clients add NAME` into `file`; the credentials written to `NAME.json`.
fn add_client(dir: &Path, file: &Path, name: &str) -> PathBuf {
    let out = lavabeacon(&[
        "clients",
        "add",
        name,
        "--clients-file",
        file.to_str().unwrap(),
        "--allow-ip",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let creds = dir.join(format!("{name}.json"));
    std::fs::write(&creds, &out.stdout).unwrap();
    creds
}

struct Served {
    beacon: common::Beacon,
    stderr: PathBuf,
}

fn serve(config: &Path, stderr: PathBuf) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
    cmd.args([
        "serve",
        "--period",
        "1s",
        "--listen",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(config)
    // Every level the beacon has: not even a debug line may carry the bytes.
    .env("LAVABEACON_LOG", "debug")
    .stderr(std::fs::File::create(&stderr).unwrap());
    let beacon = common::Beacon::spawn(&mut cmd, Some(Duration::from_secs(60)));
    Served { beacon, stderr }
}

fn fetch(s: &Served, creds: &Path, ca: &Path, n: &str, format: &str) -> Output {
    lavabeacon(&[
        "bytes",
        "--url",
        &s.beacon.base,
        "--credentials",
        creds.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        "-n",
        n,
        "--format",
        format,
    ])
}

/// Runs an example client from docs/examples against the server: its standard output.
fn example(s: &Served, creds: &Path, ca: &Path, program: &str, script: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(script);
    let out = Command::new(program)
        .arg(&path)
        .args(["32", "hex"])
        .env("LAVABEACON_URL", &s.beacon.base)
        .env("LAVABEACON_CREDENTIALS", creds)
        .env("LAVABEACON_CA", ca)
        .env("NODE_EXTRA_CA_CERTS", ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        common::output_text(&out)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn bytes_served_over_https_to_every_example_client_are_never_logged_or_stored() {
    if !common::softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token(&hsm);
    let (ca, cert, key) = certificates(dir.path());
    let clients_file = dir.path().join("clients.json");
    let alice = add_client(dir.path(), &clients_file, "alice");
    let config = common::dev_config(&hsm);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[api.tls]\ncert = {:?}\nkey = {:?}\n\n[private]\nclients_file = {:?}\n",
        cert, key, clients_file
    ));
    std::fs::write(&config, toml).unwrap();
    let s = serve(&config, dir.path().join("stderr.log"));
    assert!(
        s.beacon.base.starts_with("https://127.0.0.1:"),
        "{}",
        s.beacon.base
    );

    // The generator waits for the engine's first pulse (its private material): until then,
    // 503 and a reason.
    let mut first = fetch(&s, &alice, &ca, "16", "hex");
    for _ in 0..100 {
        if first.status.success() {
            break;
        }
        let text = common::output_text(&first);
        assert!(text.contains("503"), "{text}");
        std::thread::sleep(Duration::from_millis(100));
        first = fetch(&s, &alice, &ca, "16", "hex");
    }
    assert!(first.status.success(), "{}", common::output_text(&first));
    let mut served: Vec<Vec<u8>> = vec![first.stdout.trim_ascii().to_vec()];
    for format in ["hex", "base64", "csv", "json"] {
        let out = fetch(&s, &alice, &ca, "48", format);
        assert!(
            out.status.success(),
            "{format}: {}",
            common::output_text(&out)
        );
        served.push(
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .as_bytes()
                .to_vec(),
        );
    }
    // A test beacon (the dev token) says so in JSON answers.
    let json = String::from_utf8(served.last().unwrap().clone()).unwrap();
    assert!(json.contains("\"test\":true"), "{json}");
    let raw = fetch(&s, &alice, &ca, "64", "raw");
    assert!(raw.status.success(), "{}", common::output_text(&raw));
    assert_eq!(raw.stdout.len(), 64);
    served.push(raw.stdout.clone());
    served.push(hex::encode(&raw.stdout).into_bytes());
    let hex_answer = String::from_utf8(served[1].clone()).unwrap();
    assert_eq!(hex_answer.len(), 96);
    // The raw bytes of the hex answer, as they sat in the server's buffers.
    served.push(hex::decode(&hex_answer).unwrap());

    for (program, script) in [
        ("python3", "private-bytes.py"),
        ("node", "private-bytes.mjs"),
        ("bash", "private-bytes.sh"),
    ] {
        let out = example(&s, &alice, &ca, program, script);
        assert_eq!(out.len(), 64, "{script}: {out:?}");
        assert!(
            out.bytes().all(|b| b.is_ascii_hexdigit()),
            "{script}: {out:?}"
        );
        served.push(hex::decode(&out).unwrap());
        served.push(out.into_bytes());
    }

    // A client added and a certificate renewed (from another CA) while the server runs are
    // taken in on SIGHUP.
    let bob = add_client(dir.path(), &clients_file, "bob");
    let renewed = dir.path().join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    let (ca2, cert2, key2) = certificates(&renewed);
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    common::faults::signal(s.beacon.child.id(), 1);
    let mut ok = false;
    for _ in 0..50 {
        if fetch(&s, &bob, &ca2, "8", "hex").status.success() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ok,
        "bob's requests over the renewed certificate were refused after SIGHUP"
    );
    let old = fetch(&s, &alice, &ca, "8", "hex");
    assert!(
        !old.status.success(),
        "the old CA still verifies the server"
    );
    let ca = ca2;
    // A wrong signature: refused, and said why.
    let mut creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alice).unwrap()).unwrap();
    creds["hmacKey"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, creds.to_string()).unwrap();
    let out = fetch(&s, &forged, &ca, "8", "hex");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::output_text(&out).contains("401"),
        "{}",
        common::output_text(&out)
    );

    let log_path = s.stderr.clone();
    drop(s);
    // Every file the beacon wrote (log, database, WAL) and its certificate and token folder.
    let mut files = vec![log_path.clone()];
    let mut stack = vec![hsm.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("private bytes for 1 clients"), "{log}");
    assert!(log.contains("reloaded the certificate"), "{log}");
    assert!(log.contains("2 clients"), "{log}");
    for f in &files {
        let content = std::fs::read(f).unwrap();
        for value in &served {
            assert!(
                !contains(&content, value),
                "{} holds a value that was served",
                f.display()
            );
        }
    }
}
