//! Auditors' tools end to end: `dev generate-chain` with planted faults, `replay` from a file,
//! a database and a running beacon's API, `export`, `import`, checkpoints, source manifests, and
//! NIST's own pulses.
//!
//! Over 400 lines: eight end-to-end scenarios, each with its own files and processes, in one
//! test binary (every file under `tests/` is a binary of its own, linked in every CI run).

mod common;

use common::{output_text, Beacon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lavabeacon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// (pulse, check) of every problem in a `--json` report.
fn problems(o: &Output) -> Vec<(u64, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(o)));
    let mut found: Vec<(u64, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pulse"].as_u64().unwrap(),
                p["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn generate(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.jsonl"));
    let mut args = vec!["dev", "generate-chain", "--output", s(&out)];
    args.extend_from_slice(extra);
    let o = lavabeacon(&args);
    assert!(o.status.success(), "{}", output_text(&o));
    out
}

#[test]
fn replays_of_generated_chains_report_exactly_the_planted_faults() {
    let dir = tempfile::tempdir().unwrap();
    let clean = generate(dir.path(), "clean", &["--pulses", "3000"]);
    let o = lavabeacon(&["replay", s(&clean)]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("OK: 3000 pulses, 3000 signatures, 2999 links"),
        "{}",
        output_text(&o)
    );

    for seed in ["1", "2", "3"] {
        let bad = generate(
            dir.path(),
            &format!("bad{seed}"),
            &["--pulses", "3000", "--corrupt", "12", "--seed", seed],
        );
        let faults: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("bad{seed}.faults.json"))).unwrap(),
        )
        .unwrap();
        let mut planted: Vec<(u64, String)> = faults
            .iter()
            .map(|f| {
                (
                    f["pulseIndex"].as_u64().unwrap(),
                    f["check"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        planted.sort();
        assert_eq!(planted.len(), 12);
        let o = lavabeacon(&["replay", "--json", s(&bad)]);
        assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
        assert_eq!(problems(&o), planted, "seed {seed}");
        // `verify` finds the certificate beside the export too, and the same faults.
        let o = lavabeacon(&["verify", "--json", s(&bad)]);
        assert_eq!(problems(&o), planted, "verify, seed {seed}");
    }
}

#[test]
fn an_interrupted_replay_resumes_from_its_checkpoint_and_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bad = generate(
        dir.path(),
        "bad",
        &["--pulses", "4000", "--corrupt", "10", "--seed", "9"],
    );
    let full = problems(&lavabeacon(&["replay", "--json", s(&bad)]));
    let cp = dir.path().join("replay.checkpoint");
    let o = lavabeacon(&[
        "replay",
        s(&bad),
        "--checkpoint",
        s(&cp),
        "--checkpoint-every",
        "500",
        "--stop-after",
        "2100",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", output_text(&o));
    assert!(cp.exists());
    let o = lavabeacon(&["replay", "--json", s(&bad), "--checkpoint", s(&cp)]);
    assert!(
        output_text(&o).contains("resuming after 2100 pulses"),
        "{}",
        output_text(&o)
    );
    assert_eq!(
        problems(&o),
        full,
        "the resumed run finds what one run finds"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pulses"], 4000);
    assert!(!cp.exists(), "a finished replay removes its checkpoint");
}

#[test]
fn nist_pulses_replay_clean_and_a_changed_byte_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/nist-2018-chain1");
    let cert = vectors.join("certificate-5501e3d7.pem");
    let mut lines = String::new();
    for f in ["pulse-1.json", "pulse-54609.json", "pulse-54610.json"] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(vectors.join(f)).unwrap()).unwrap();
        lines.push_str(&v["pulse"].to_string());
        lines.push('\n');
    }
    let file = dir.path().join("nist.jsonl");
    std::fs::write(&file, &lines).unwrap();
    let o = lavabeacon(&["replay", "--cert", s(&cert), s(&file)]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("OK: 3 pulses, 3 signatures, 1 links"),
        "{}",
        output_text(&o)
    );

    let v: serde_json::Value = serde_json::from_str(lines.lines().nth(2).unwrap()).unwrap();
    let lrv = v["localRandomValue"].as_str().unwrap();
    let changed = format!(
        "{}{}",
        if lrv.starts_with('0') { '1' } else { '0' },
        &lrv[1..]
    );
    std::fs::write(&file, lines.replace(lrv, &changed)).unwrap();
    let o = lavabeacon(&["replay", "--json", "--cert", s(&cert), s(&file)]);
    assert_eq!(o.status.code(), Some(1));
    let found = problems(&o);
    assert!(found.iter().all(|(p, _)| *p == 54610), "{found:?}");
    assert!(found.iter().any(|(_, c)| c == "signature"), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_and_replay_from_the_database_and_a_running_api() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db");
    let db = format!("sqlite:{}", first.display());
    let o = lavabeacon(&[
        "dev",
        "generate-chain",
        "--pulses",
        "1500",
        "--database",
        &db,
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let o = lavabeacon(&["replay", "--database", &db]);
    assert!(o.status.success(), "{}", output_text(&o));

    // Export, then import into a fresh store: the mirror replays clean.
    let export = dir.path().join("export.jsonl");
    let o = lavabeacon(&["export", "--database", &db, "--output", s(&export)]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(dir.path().join("export.certificates").is_dir());
    let o = lavabeacon(&["replay", s(&export)]);
    assert!(
        output_text(&o).contains("OK: 1500 pulses"),
        "{}",
        output_text(&o)
    );
    let mirror = format!("sqlite:{}", dir.path().join("mirror.db").display());
    let o = lavabeacon(&["import", s(&export), "--database", &mirror]);
    assert!(o.status.success(), "{}", output_text(&o));

    // A read-only API over the mirror, replayed over HTTP.
    let config = dir.path().join("api.toml");
    std::fs::write(&config, "").unwrap();
    let api = Beacon::start("api", &config, &["--database", &mirror]);
    let o = lavabeacon(&["replay", "--url", &api.base]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("OK: 1500 pulses, 1500 signatures, 1499 links"),
        "{}",
        output_text(&o)
    );
    api.kill();

    // An export with one changed signed byte is refused by import, and a store holding it
    // (loaded behind the checks' back) fails a replay over its API at that pulse.
    let lines = std::fs::read_to_string(&export).unwrap();
    let mut pulses: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lrv = pulses[700]["localRandomValue"]
        .as_str()
        .unwrap()
        .to_string();
    let changed = format!(
        "{}{}",
        if lrv.starts_with('0') { '1' } else { '0' },
        &lrv[1..]
    );
    pulses[700]["localRandomValue"] = serde_json::Value::String(changed.clone());
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        pulses
            .iter()
            .map(|p| p.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tampered.certificates")).unwrap();
    for e in std::fs::read_dir(dir.path().join("export.certificates")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(
            e.path(),
            dir.path().join("tampered.certificates").join(e.file_name()),
        )
        .unwrap();
    }
    let refused = format!("sqlite:{}", dir.path().join("refused.db").display());
    let o = lavabeacon(&["import", s(&tampered), "--database", &refused]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("nothing loaded"),
        "{}",
        output_text(&o)
    );

    // Served data changed on the way: a proxy in front of the mirror's API alters one pulse.
    let api = Beacon::start("api", &config, &["--database", &mirror]);
    let proxy = tampering_proxy(api.base.clone(), lrv.clone(), changed);
    let o = lavabeacon(&["replay", "--json", "--url", &proxy]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    let found = problems(&o);
    assert!(
        !found.is_empty() && found.iter().all(|(p, _)| *p == 701),
        "{found:?}"
    );
    api.kill();
}

/// An HTTP proxy to `upstream` that replaces `from` with `to` in every answer.
fn tampering_proxy(upstream: String, from: String, to: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&req).to_string();
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let resp = match ureq::get(&format!("{upstream}{path}")).call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(_) => continue,
            };
            let status = resp.status();
            let link = resp.header("Link").map(str::to_string);
            let body = resp.into_string().unwrap_or_default().replace(&from, &to);
            let link = link.map(|l| format!("Link: {l}\r\n")).unwrap_or_default();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\n{link}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_manifest_is_recombined_and_a_changed_digest_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    // An engine with a software key and the OS source: pulses with manifests.
    let config = dir.path().join("engine.toml");
    std::fs::write(
        &config,
        "[beacon]\ndata_dir = \".\"\n[database]\nurl = \"sqlite:./beacon.db\"\n[signer]\nkind = \"software\"\n[engine]\nsources = [\"os\"]\n",
    )
    .unwrap();
    let db = format!("sqlite:{}", dir.path().join("beacon.db").display());
    let store = lavabeacon_store::open(&db).await.unwrap();
    let engine = Beacon::start("engine", &config, &[]);
    common::wait_for(store.as_ref(), 3, 30).await;
    engine.kill();
    let n = store.counts().await.unwrap().pulses;

    let export = dir.path().join("export.jsonl");
    let o = lavabeacon(&["export", "--database", &db, "--output", s(&export)]);
    assert!(o.status.success(), "{}", output_text(&o));
    let o = lavabeacon(&["replay", "--json", s(&export)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{}", output_text(&o));
    assert_eq!(v["manifests_checked"], n);
    let o = lavabeacon(&["replay", "--json", "--database", &db]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifests_checked"], n, "{}", output_text(&o));

    // One digest changed in the exported manifests.
    let sources = dir.path().join("export.sources.jsonl");
    let text_m = std::fs::read_to_string(&sources).unwrap();
    let second: serde_json::Value = serde_json::from_str(text_m.lines().nth(1).unwrap()).unwrap();
    let digest = second["sources"][0]["digest"].as_str().unwrap();
    let changed = format!(
        "{}{}",
        if digest.starts_with('0') { '1' } else { '0' },
        &digest[1..]
    );
    std::fs::write(&sources, text_m.replace(digest, &changed)).unwrap();
    let o = lavabeacon(&["replay", "--json", s(&export)]);
    assert_eq!(
        problems(&o),
        vec![(2, "manifest".to_string())],
        "{}",
        output_text(&o)
    );
}

#[test]
fn a_window_replays_only_its_pulses_and_reports_only_its_faults() {
    let dir = tempfile::tempdir().unwrap();
    let bad = generate(
        dir.path(),
        "bad",
        &[
            "--pulses",
            "2000",
            "--corrupt",
            "12",
            "--seed",
            "5",
            "--start",
            "2025-01-01T00:00:00Z",
        ],
    );
    let all = problems(&lavabeacon(&["replay", "--json", s(&bad)]));
    // Pulses 500..=1500: minutes 499..=1499 after the start.
    let from = 1_735_689_600_000i64 + 499 * 60_000;
    let to = 1_735_689_600_000i64 + 1499 * 60_000;
    let o = lavabeacon(&[
        "replay",
        "--json",
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
        s(&bad),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pulses"], 1001, "{}", output_text(&o));
    let found = problems(&o);
    // Nothing outside the window, nothing that a whole replay does not find…
    assert!(
        found
            .iter()
            .all(|f| (500..=1500).contains(&f.0) && all.contains(f)),
        "{found:?}"
    );
    // …and everything it finds from the window's first whole hour on (pulse 541: before it,
    // the first pulse of the hour, and the pulse before the window, are not in the window).
    let sure: Vec<&(u64, String)> = all
        .iter()
        .filter(|(p, _)| (541..=1500).contains(p))
        .collect();
    assert!(!sure.is_empty());
    for f in sure {
        assert!(found.contains(f), "{f:?} missing from {found:?}");
    }
}

#[test]
fn replaying_nothing_fails_with_no_pulses() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("empty.jsonl", ""),
        ("blank.jsonl", " \n\n"),
        ("array.jsonl", "[]\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let o = lavabeacon(&["replay", s(&path)]);
        let out = output_text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.contains(&format!("no pulses in {}", path.display())),
            "{name}: {out}"
        );
    }
    // A window that holds no pulse of a good chain is no pass either.
    let chain = generate(dir.path(), "c", &["--pulses", "5"]);
    let o = lavabeacon(&["replay", s(&chain), "--to", "1000000000"]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("no pulses in"),
        "{}",
        output_text(&o)
    );
}

#[test]
fn a_compact_json_array_on_one_line_replays_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let chain = generate(dir.path(), "chain", &["--pulses", "2000"]);
    let lines = std::fs::read_to_string(&chain).unwrap();
    let array = format!("[{}]", lines.lines().collect::<Vec<_>>().join(","));
    assert!(array.len() > 1 << 20 && !array.contains('\n'));
    let path = dir.path().join("array.json");
    std::fs::write(&path, array).unwrap();
    let certs = dir.path().join("chain.certificates");
    let o = lavabeacon(&["replay", "--certs", s(&certs), s(&path)]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("OK: 2000 pulses, 2000 signatures, 1999 links"),
        "{}",
        output_text(&o)
    );
}
