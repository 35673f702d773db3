//! The transparency log end to end, on real beacons (SoftHSM2 dev tokens, 1 s periods, real
//! HTTP): two beacons, each witnessing the other, run for many periods, and each one's
//! checkpoints carry the other's cosignature and verify offline with `lavabeacon verify`; a
//! witness refuses forks of a log (the test holds that log's key), and still refuses them
//! after it was killed and started again.

mod common;

use common::pg::free_port;
use common::{get, output_text, softhsm_present, Beacon};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::merkle::{self, Hash};
use lavabeacon_tlog::note::{KeyKind, Note, NoteSignature, VerifierKey};
use lavabeacon_tlog::witness::AddCheckpoint;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn lavabeacon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(args)
        .output()
        .unwrap()
}

/// A dev token in `dir` and its configuration with `extra` appended; returns the path.
fn configure(dir: &Path, extra: &str) -> String {
    common::dev_token(dir);
    let base = std::fs::read_to_string(common::dev_config(dir)).unwrap();
    let path = dir.join("test.toml");
    std::fs::write(&path, format!("{base}\n{extra}\n")).unwrap();
    path.display().to_string()
}

/// `lavabeacon log keys`: (the log's vkey, the witness's vkey).
fn keys(config: &str) -> (String, String) {
    let out = lavabeacon(&["log", "keys", "--config", config]);
    let text = output_text(&out);
    assert!(out.status.success(), "log keys: {text}");
    let find = |what: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or_else(|| panic!("no {what} key in {text}"))
            .to_string()
    };
    (find("log"), find("witness"))
}

/// `serve` on `port`, 1 s period.
fn serve(config: &str, port: u16) -> Beacon {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
    cmd.args(["serve", "--config", config, "--period", "1s", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null());
    let beacon = Beacon::spawn(&mut cmd, Some(Duration::from_secs(30)));
    // The witness's role is taken once the engine and the API are up (until then
    // add-checkpoint answers 503): the first checkpoint says the start-up is over.
    let started = Instant::now();
    while get(&format!("{}/log/checkpoint", beacon.base), &[]).0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(30), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    beacon
}

/// The `[log]` and `[witness]` sections of beacon `name`: its witnesses (`(vkey, port)`) and
/// the logs it witnesses (vkeys).
fn sections(name: &str, witnesses: &[(&str, u16)], logs: &[&str]) -> String {
    let witnesses: Vec<String> = witnesses
        .iter()
        .map(|(vkey, port)| {
            format!("{{ vkey = \"{vkey}\", url = \"http://127.0.0.1:{port}/witness\" }}")
        })
        .collect();
    let logs: Vec<String> = logs.iter().map(|l| format!("\"{l}\"")).collect();
    format!(
        "[log]\norigin = \"{name}.test/log\"\nwitnesses = [{}]\n\n[witness]\nname = \"{name}.test/witness\"\nlogs = [{}]\n",
        witnesses.join(", "),
        logs.join(", ")
    )
}

/// Waits until the beacon's checkpoint is of at least `size` entries and cosigned by
/// `witness`; returns the checkpoint note.
fn cosigned_checkpoint(base: &str, size: u64, witness: &VerifierKey) -> String {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(&format!("{base}/log/checkpoint"), &[]);
        if status == 200 {
            let note = Note::parse(body.as_bytes()).unwrap();
            let cp = Checkpoint::parse(&note.text).unwrap();
            if cp.size >= size && lavabeacon_tlog::cosignature::verify(&note, witness).is_ok() {
                return body;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint of {size} cosigned by {} at {base}: last {status} {body}",
            witness.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_beacons_witness_each_other_and_their_checkpoints_verify_offline() {
    if !softhsm_present() {
        return;
    }
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pa, pb) = (free_port(), free_port());
    // First the names, to make and read the keys; then the peers.
    let ca = configure(da.path(), &sections("a", &[], &[]));
    let cb = configure(db.path(), &sections("b", &[], &[]));
    let (a_log, a_witness) = keys(&ca);
    let (b_log, b_witness) = keys(&cb);
    assert!(a_log.starts_with("a.test/log+"), "{a_log}");
    assert!(b_witness.starts_with("b.test/witness+"), "{b_witness}");
    let base_a = std::fs::read_to_string(common::dev_config(da.path())).unwrap();
    let base_b = std::fs::read_to_string(common::dev_config(db.path())).unwrap();
    let a_config = sections("a", &[(&b_witness, pb)], &[&b_log]);
    let b_config = sections("b", &[(&a_witness, pa)], &[&a_log]);
    std::fs::write(&ca, format!("{base_a}\n{a_config}")).unwrap();
    std::fs::write(&cb, format!("{base_b}\n{b_config}")).unwrap();

    let a = serve(&ca, pa);
    let b = serve(&cb, pb);
    let a_w = VerifierKey::parse(&a_witness).unwrap();
    let b_w = VerifierKey::parse(&b_witness).unwrap();
    // Many periods: each log's checkpoints keep being cosigned as the tree grows.
    let first_a = cosigned_checkpoint(&a.base, 3, &b_w);
    let first_b = cosigned_checkpoint(&b.base, 3, &a_w);
    let later_a = cosigned_checkpoint(&a.base, 12, &b_w);
    let later_b = cosigned_checkpoint(&b.base, 12, &a_w);
    for (first, later, log) in [(&first_a, &later_a, &a_log), (&first_b, &later_b, &b_log)] {
        let key = VerifierKey::parse(log).unwrap();
        let (n1, n2) = (
            Note::parse(first.as_bytes()).unwrap(),
            Note::parse(later.as_bytes()).unwrap(),
        );
        n1.verify(&key).unwrap();
        n2.verify(&key).unwrap();
        let (c1, c2) = (
            Checkpoint::parse(&n1.text).unwrap(),
            Checkpoint::parse(&n2.text).unwrap(),
        );
        assert!(c2.size > c1.size);
    }
    // The log's key as published.
    let (status, _, published) = get(&format!("{}/log/key", a.base), &[]);
    assert_eq!((status, published.trim()), (200, a_log.as_str()));

    // Offline: pulses of A, its cosigned checkpoint, proofs from its API.
    let work = da.path().join("verify");
    std::fs::create_dir_all(&work).unwrap();
    let cp = work.join("checkpoint.txt");
    std::fs::write(&cp, &later_a).unwrap();
    let mut files = Vec::new();
    for i in [1, 2, 5] {
        let (status, _, pulse) = get(&format!("{}/beacon/2.0/chain/1/pulse/{i}", a.base), &[]);
        assert_eq!(status, 200);
        let f = work.join(format!("pulse-{i}.json"));
        std::fs::write(&f, pulse).unwrap();
        files.push(f.display().to_string());
    }
    let cert = da.path().join("pulse-key.pem").display().to_string();
    let verify = |checkpoint: &Path, witness: &str, required: &str| {
        let mut args = vec![
            "verify".to_string(),
            "--cert".into(),
            cert.clone(),
            "--checkpoint".into(),
            checkpoint.display().to_string(),
            "--log-key".into(),
            a_log.clone(),
            "--witness".into(),
            witness.to_string(),
            "--witnesses-required".into(),
            required.to_string(),
            "--url".into(),
            a.base.clone(),
        ];
        args.extend(files.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lavabeacon(&args)
    };
    let ok = verify(&cp, &b_witness, "1");
    assert!(ok.status.success(), "{}", output_text(&ok));
    // The same checkpoint does not count as cosigned by a witness that did not cosign it.
    let unsigned = verify(&cp, &a_witness, "1");
    assert_eq!(
        unsigned.status.code(),
        Some(1),
        "{}",
        output_text(&unsigned)
    );

    drop(a);
    drop(b);
}

/// A log this test plays, with its own key: entries, trees and checkpoints made here.
struct TestLog {
    key: ed25519_dalek::SigningKey,
    vkey: VerifierKey,
}

impl TestLog {
    fn new(origin: &str) -> TestLog {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let vkey =
            VerifierKey::new(origin, KeyKind::Ed25519, key.verifying_key().to_bytes()).unwrap();
        TestLog { key, vkey }
    }

    fn note(&self, leaves: &[Hash]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let body = Checkpoint {
            origin: self.vkey.name.clone(),
            size: leaves.len() as u64,
            root: merkle::root(leaves),
            extensions: Vec::new(),
        }
        .body();
        let sig = self.key.sign(body.as_bytes()).to_bytes();
        Note {
            text: body,
            signatures: vec![NoteSignature {
                name: self.vkey.name.clone(),
                key_id: self.vkey.key_id,
                signature: sig.to_vec(),
            }],
        }
        .to_bytes()
    }
}

/// The consistency proof from the first `old` of `leaves` to all of them.
fn proof(leaves: &[Hash], old: u64) -> Vec<Hash> {
    let stored: std::collections::HashMap<_, _> =
        merkle::appended(0, leaves, &mut |_| unreachable!())
            .into_iter()
            .collect();
    merkle::consistency_ranges(old, leaves.len() as u64)
        .unwrap()
        .iter()
        .map(|&(lo, hi)| merkle::range_hash(lo, hi, &mut |id| stored[&id]))
        .collect()
}

/// POST add-checkpoint: (status, body). A 503 (the witness not ready yet, just after a start)
/// is asked again after its Retry-After, as a log does, for at most 30 s.
fn add_checkpoint(base: &str, old: u64, proof: Vec<Hash>, note: Vec<u8>) -> (u16, String) {
    let body = AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: note,
    }
    .to_bytes();
    let started = Instant::now();
    loop {
        let (status, text) =
            match ureq::post(&format!("{base}/witness/add-checkpoint")).send_bytes(&body) {
                Ok(r) => (r.status(), r.into_string().unwrap()),
                Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
                Err(e) => panic!("add-checkpoint: {e}"),
            };
        if status != 503 || started.elapsed() > Duration::from_secs(30) {
            return (status, text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_witness_refuses_forks_and_still_refuses_them_after_a_restart() {
    if !softhsm_present() {
        return;
    }
    let log = TestLog::new("fork.test/log");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = configure(
        dir.path(),
        &format!(
            "[witness]\nname = \"w.test/witness\"\nlogs = [\"{}\"]\n",
            log.vkey.to_vkey()
        ),
    );
    let (_, witness) = keys(&config);
    let witness = VerifierKey::parse(&witness).unwrap();
    let leaves: Vec<Hash> = (0..8u64)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut forked = leaves.clone();
    forked[1] = merkle::leaf_hash(b"another history");

    let beacon = serve(&config, port);
    // The first checkpoint: cosigned, and the cosignature verifies.
    let (status, line) = add_checkpoint(&beacon.base, 0, vec![], log.note(&leaves[..4]));
    assert_eq!(status, 200, "{line}");
    let mut note = Note::parse(&log.note(&leaves[..4])).unwrap();
    let mut cosigned = note.to_bytes();
    cosigned.extend_from_slice(line.as_bytes());
    note = Note::parse(&cosigned).unwrap();
    lavabeacon_tlog::cosignature::verify(&note, &witness).unwrap();
    // The same size with another root; a stale old size; a fork with its own proof.
    let (status, _) = add_checkpoint(&beacon.base, 4, vec![], log.note(&forked[..4]));
    assert_eq!(status, 422);
    let (status, body) = add_checkpoint(&beacon.base, 0, vec![], log.note(&leaves[..6]));
    assert_eq!((status, body.as_str()), (409, "4\n"));
    let (status, _) = add_checkpoint(
        &beacon.base,
        4,
        proof(&forked[..6], 4),
        log.note(&forked[..6]),
    );
    assert_eq!(status, 422);
    // A smaller tree that is not a prefix, another log's key, an unknown origin.
    let (status, _) = add_checkpoint(&beacon.base, 4, vec![], log.note(&forked[..3]));
    assert_eq!(status, 400);
    let other = TestLog {
        key: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        vkey: log.vkey.clone(),
    };
    let (status, _) = add_checkpoint(
        &beacon.base,
        4,
        proof(&leaves[..6], 4),
        other.note(&leaves[..6]),
    );
    assert_eq!(status, 403);
    let stranger = TestLog::new("stranger.test/log");
    let (status, _) = add_checkpoint(&beacon.base, 0, vec![], stranger.note(&leaves[..2]));
    assert_eq!(status, 404);

    // Killed and started again: what it cosigned is in its database, not its memory.
    beacon.kill();
    let beacon = serve(&config, port);
    let (status, _) = add_checkpoint(
        &beacon.base,
        4,
        proof(&forked[..6], 4),
        log.note(&forked[..6]),
    );
    assert_eq!(status, 422, "a restarted witness cosigned a fork");
    let (status, body) = add_checkpoint(&beacon.base, 0, vec![], log.note(&forked[..4]));
    assert_eq!((status, body.as_str()), (409, "4\n"));
    let (status, line) = add_checkpoint(
        &beacon.base,
        4,
        proof(&leaves[..6], 4),
        log.note(&leaves[..6]),
    );
    assert_eq!(status, 200, "the honest extension: {line}");
}
