//! The `lavabeacon-audit` binary as an auditor runs it, built with this crate alone: NIST's own
//! pulses, generated chains with planted faults, and an export through a store and back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon-audit"))
        .args(args)
        .env_remove("LAVABEACON_DATABASE_URL")
        .output()
        .unwrap()
}

/// Standard output, then standard error.
fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/nist-2018-chain1")
}

/// (pulse, check) of every problem in a `--json` report.
fn problems(o: &Output) -> Vec<(u64, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
    let mut found: Vec<(u64, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pulse"].as_u64().unwrap(),
                p["check"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn nist_pulses_verify_with_their_certificate() {
    let v = vectors();
    let cert = v.join("certificate-5501e3d7.pem");
    let files: Vec<PathBuf> = ["pulse-1.json", "pulse-54609.json", "pulse-54610.json"]
        .iter()
        .map(|f| v.join(f))
        .collect();
    let mut args = vec!["verify", "--cert", s(&cert)];
    args.extend(files.iter().map(|f| s(f)));
    let o = audit(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "OK: 3 pulses, 3 signatures, 1 links, 2 skip links checked; 0 problems"
    );
    // Without the certificate, the check fails and says which one is missing.
    let o = audit(&["verify", s(&files[2])]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("certificate 5501e3d7… not provided"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_generated_chain_replays_with_exactly_its_planted_faults() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("bad.jsonl");
    let o = audit(&[
        "generate-chain",
        "--pulses",
        "600",
        "--corrupt",
        "8",
        "--seed",
        "4",
        // Hours start at pulses 1, 61, …: the run resumed at pulse 300 below sees the first
        // pulse of every hour it checks, so it can recompute every hour value.
        "--start",
        "2025-01-01T00:00:00Z",
        "--output",
        s(&chain),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let faults: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bad.faults.json")).unwrap())
            .unwrap();
    let mut planted: Vec<(u64, String)> = faults
        .iter()
        .map(|f| {
            (
                f["pulseIndex"].as_u64().unwrap(),
                f["check"].as_str().unwrap().into(),
            )
        })
        .collect();
    planted.sort();
    assert_eq!(planted.len(), 8);

    let o = audit(&["replay", "--json", s(&chain)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(problems(&o), planted);
    let o = audit(&["verify", "--json", s(&chain)]);
    assert_eq!(problems(&o), planted, "verify finds the same");

    // Stopped as if interrupted, then resumed: the same findings, and exit 3 for the stop.
    let cp = dir.path().join("replay.checkpoint");
    let o = audit(&[
        "replay",
        s(&chain),
        "--checkpoint",
        s(&cp),
        "--stop-after",
        "300",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = audit(&["replay", "--json", s(&chain), "--checkpoint", s(&cp)]);
    assert_eq!(problems(&o), planted, "{}", text(&o));
    assert!(!cp.exists());

    // Stopped twice (after pulses 300 and 360, each the last of an hour): the run resumed last
    // still reports what the first run found.
    let o = audit(&[
        "replay",
        s(&chain),
        "--checkpoint",
        s(&cp),
        "--stop-after",
        "300",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = audit(&[
        "replay",
        s(&chain),
        "--checkpoint",
        s(&cp),
        "--stop-after",
        "61",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = audit(&["replay", "--json", s(&chain), "--checkpoint", s(&cp)]);
    assert_eq!(problems(&o), planted, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pulses"], 600);

    // Usage errors exit 2.
    let o = audit(&["replay", "--from", "soon", s(&chain)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--from"), "{}", text(&o));
}

#[test]
fn an_export_goes_through_a_store_and_back_and_a_changed_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("first.db").display());
    let o = audit(&["generate-chain", "--pulses", "400", "--database", &db]);
    assert!(o.status.success(), "{}", text(&o));
    let o = audit(&["replay", "--database", &db]);
    assert!(o.status.success(), "{}", text(&o));

    let export = dir.path().join("export.jsonl");
    let o = audit(&["export", "--database", &db, "--output", s(&export)]);
    assert!(o.status.success(), "{}", text(&o));
    let mirror = format!("sqlite:{}", dir.path().join("mirror.db").display());
    let o = audit(&["import", s(&export), "--database", &mirror]);
    assert!(o.status.success(), "{}", text(&o));
    let o = audit(&["replay", "--database", &mirror]);
    assert!(
        text(&o).contains("OK: 400 pulses, 400 signatures, 399 links"),
        "{}",
        text(&o)
    );

    // One changed byte: the import refuses the export and loads nothing.
    let lines = std::fs::read_to_string(&export).unwrap();
    let line = lines.lines().nth(200).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let lrv = v["localRandomValue"].as_str().unwrap();
    let changed = format!(
        "{}{}",
        if lrv.starts_with('0') { '1' } else { '0' },
        &lrv[1..]
    );
    let tampered = dir.path().join("export.jsonl");
    std::fs::write(&tampered, lines.replace(lrv, &changed)).unwrap();
    let refused = dir.path().join("refused.db");
    let o = audit(&[
        "import",
        s(&tampered),
        "--database",
        &format!("sqlite:{}", refused.display()),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing loaded"), "{}", text(&o));
    assert!(!refused.exists(), "no store was even made");
}
