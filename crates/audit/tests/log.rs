//! The transparency log as an auditor checks it with the `lavabeacon-audit` binary: a real
//! SQLite store whose log the store itself kept while pulses (and a draw) were appended, a
//! checkpoint note signed here with an Ed25519 key and cosigned by witnesses, then `verify`
//! with inclusion proofs (from files and from a beacon's route) and `replay` of every entry.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use lavabeacon_format::hash::{encode_hex, Hash512};
use lavabeacon_store::{Store, StoredDraw};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::cosignature;
use lavabeacon_tlog::note::{signature_line, KeyKind, VerifierKey};
use lavabeacon_tlog::Hash;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const ORIGIN: &str = "beacon.example.org/log";

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

/// A key from a seed byte, and its vkey.
fn key(name: &str, kind: KeyKind, seed: u8) -> (SigningKey, VerifierKey) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let vk = VerifierKey::new(name, kind, sk.verifying_key().to_bytes()).unwrap();
    (sk, vk)
}

/// A checkpoint note for (size, root) signed by `log`, cosigned by `witnesses`.
fn note(
    log: &(SigningKey, VerifierKey),
    size: u64,
    root: Hash,
    witnesses: &[&(SigningKey, VerifierKey)],
) -> String {
    let body = Checkpoint {
        origin: log.1.name.clone(),
        size,
        root,
        extensions: vec![],
    }
    .body();
    let sig = log.0.sign(body.as_bytes()).to_bytes();
    let mut out = format!(
        "{body}\n{}",
        signature_line(&log.1.name, log.1.key_id, &sig)
    );
    for (sk, vk) in witnesses {
        let t = 1_760_000_000;
        let c = sk.sign(&cosignature::signed_message(&body, t)).to_bytes();
        out.push_str(&cosignature::line(&vk.name, vk.key_id, t, &c));
    }
    out
}

/// A store of 40 generated pulses with a draw registered after the 20th, its log kept by
/// the store; and the chain's JSON Lines (its certificate beside them).
struct Fixture {
    dir: tempfile::TempDir,
    db: String,
    chain: PathBuf,
    lines: Vec<String>,
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_draw_entry(None)
    }

    /// With `entry`, the draw is logged with this entry instead of its receipt's.
    fn with_draw_entry(entry: Option<Vec<u8>>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain.jsonl");
        let o = audit(&[
            "generate-chain",
            "--pulses",
            "40",
            "--start",
            "2025-01-01T00:00:00Z",
            "--output",
            s(&chain),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let lines: Vec<String> = std::fs::read_to_string(&chain)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let pulses: Vec<_> = lines
            .iter()
            .map(|l| lavabeacon_format::json::parse_pulse(l).unwrap())
            .collect();
        let db = format!("sqlite:{}", dir.path().join("beacon.db").display());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store = rt.block_on(lavabeacon_store::open(&db)).unwrap();
        let certs = lavabeacon_audit::layout::certificates_dir(&chain);
        for f in std::fs::read_dir(certs).unwrap() {
            let pem = std::fs::read(f.unwrap().path()).unwrap();
            for c in lavabeacon_format::cert::parse_certificates(&pem).unwrap() {
                rt.block_on(store.put_certificate(&c.der)).unwrap();
            }
        }
        rt.block_on(store.bulk_load(&pulses[..20])).unwrap();
        let receipt = lavabeacon_draw::receipt::Receipt {
            version: 1,
            draw_id: encode_hex(&[0x5a; 64], false),
            registered_at: "2025-01-01T00:20:00.000Z".into(),
            target_time: "2025-01-01T00:30:00.000Z".into(),
            period_ms: 60_000,
            newest: lavabeacon_draw::receipt::NewestPulse {
                chain_index: 1,
                pulse_index: 20,
                time_stamp: "2025-01-01T00:19:00.000Z".into(),
                output_value: pulses[19].output_value.to_hex_upper(),
            },
            certificate_id: pulses[19].certificate_id.to_hex_lower(),
            cipher_suite: 0,
            signature_value: Some(encode_hex(&[0x33; 64], true)),
        };
        let entry = entry.unwrap_or_else(|| receipt.log_entry().unwrap());
        let draw = StoredDraw {
            id: Hash512::from([0x5a; 64]),
            spec: "{}".into(),
            receipt: serde_json::to_string(&receipt).unwrap(),
            target_ms: 1_735_691_400_000,
            registered_ms: 1_735_690_800_000,
        };
        rt.block_on(store.put_draw(&draw, &entry)).unwrap();
        rt.block_on(store.bulk_load(&pulses[20..])).unwrap();
        Fixture {
            dir,
            db,
            chain,
            lines,
            rt,
            store,
        }
    }

    fn log_size(&self) -> u64 {
        self.rt.block_on(self.store.log().unwrap().size()).unwrap()
    }

    fn root(&self, size: u64) -> Hash {
        self.rt
            .block_on(self.store.log().unwrap().root(size))
            .unwrap()
    }

    /// The inclusion route's answer for pulse `index` of chain 1 in the tree of `size`.
    fn answer(&self, index: u64, size: u64, checkpoint: &str) -> serde_json::Value {
        let log = self.store.log().unwrap();
        let leaf = self
            .rt
            .block_on(log.leaf_of_pulse(1, index))
            .unwrap()
            .unwrap();
        let proof = self.rt.block_on(log.inclusion_proof(leaf, size)).unwrap();
        serde_json::json!({
            "leafIndex": leaf,
            "treeSize": size,
            "inclusionProof": proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
            "checkpoint": checkpoint,
        })
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn certs(&self) -> String {
        lavabeacon_audit::layout::certificates_dir(&self.chain)
            .display()
            .to_string()
    }
}

#[test]
fn verify_checks_inclusion_proofs_against_a_signed_cosigned_checkpoint() {
    let f = Fixture::new();
    let log = key(ORIGIN, KeyKind::Ed25519, 1);
    let w1 = key("witness-one", KeyKind::Cosignature, 2);
    let w2 = key("witness-two", KeyKind::Cosignature, 3);
    let size = f.log_size();
    assert_eq!(size, 41, "40 pulses and a draw");
    let root = f.root(size);
    let cp_text = note(&log, size, root, &[&w1]);
    let cp = f.write("checkpoint", &cp_text);

    // Pulses 5, 21 and 40: one answer on its own, two as JSON Lines.
    let pulses = f.write(
        "pulses.jsonl",
        &format!("{}\n{}\n{}\n", f.lines[4], f.lines[20], f.lines[39]),
    );
    let one = f.write("p5.json", &f.answer(5, size, &cp_text).to_string());
    let two = format!(
        "{}\n{}\n",
        f.answer(21, size, &cp_text),
        f.answer(40, size, &cp_text)
    );
    let rest = f.write("rest.jsonl", &two);
    let (vk, w1k, w2k) = (log.1.to_vkey(), w1.1.to_vkey(), w2.1.to_vkey());
    let certs = f.certs();
    let run = |cp: &Path, log_key: &str, extra: &[&str], proofs: &[&Path]| {
        let mut a = vec![
            "verify",
            "--certs",
            &certs,
            "--checkpoint",
            s(cp),
            "--log-key",
            log_key,
        ];
        a.extend_from_slice(extra);
        for p in proofs {
            a.extend(["--inclusion", s(p)]);
        }
        a.push(s(&pulses));
        audit(&a)
    };

    let o = run(&cp, &vk, &["--witness", &w1k], &[&one, &rest]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let root64 = STANDARD.encode(root);
    assert!(
        out.contains(&format!(
            "log checkpoint {ORIGIN} size 41 root {root64}: OK: 3 of 3 pulses included, 1 of 1 witnesses cosigned (1 required)"
        )),
        "{out}"
    );
    assert!(out.ends_with("; 0 problems\n"), "{out}");

    // --json: the log's object beside the report.
    let o = run(&cp, &vk, &["--json", "--witness", &w1k], &[&one, &rest]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["log"]["ok"], true);
    assert_eq!(v["log"]["pulsesIncluded"], 3);
    assert_eq!(v["log"]["treeSize"], 41);
    assert_eq!(v["log"]["witnesses"][0]["cosigned"], true);

    // A pulse without its proof.
    let o = run(&cp, &vk, &[], &[&rest]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("chain 1 pulse 5 (")
            && text(&o).contains(": inclusionProof: no inclusion proof for pulse 1/5"),
        "{}",
        text(&o)
    );

    // One changed hash in a proof.
    let mut changed = f.answer(21, size, &cp_text);
    let h0 = changed["inclusionProof"][0].as_str().unwrap().to_string();
    let mut raw = STANDARD.decode(&h0).unwrap();
    raw[0] ^= 1;
    changed["inclusionProof"][0] = STANDARD.encode(raw).into();
    let bad = f.write(
        "bad.jsonl",
        &format!("{changed}\n{}\n", f.answer(40, size, &cp_text)),
    );
    let o = run(&cp, &vk, &[], &[&one, &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no inclusion proof for pulse 1/21 (none of the 3 proofs given leads from its outputValue to the checkpoint's root)"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("FAILED: 2 of 3 pulses included"),
        "{}",
        text(&o)
    );

    // The same proof bound to its pulse says what is wrong with it.
    changed["chainIndex"] = 1.into();
    changed["pulseIndex"] = 21.into();
    let bound = f.write("bound.json", &changed.to_string());
    let o = run(&cp, &vk, &[], &[&one, &bound, &rest]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the good proof of 21 in rest.jsonl still counts"
    );
    let o = run(&cp, &vk, &[], &[&one, &bound]);
    assert!(
        text(&o).contains("does not verify: the proof leads to another root"),
        "{}",
        text(&o)
    );

    // A log key that did not sign it (same name, another key).
    let other = key(ORIGIN, KeyKind::Ed25519, 9);
    let o = run(&cp, &other.1.to_vkey(), &[], &[&one, &rest]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("input: logCheckpoint: ")
            && text(&o).contains("not signed by the log key: the note has no signature by"),
        "{}",
        text(&o)
    );

    // A forked checkpoint: the log key signed another root at the same size. The proofs lead
    // to the root of the checkpoint served with them, not to this one's.
    let forked = f.write("forked", &note(&log, size, [0xee; 32], &[&w1]));
    let o = run(&forked, &vk, &["--witness", &w1k], &[&one, &rest]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("the log key signed two checkpoints of size 41"),
        "{t}"
    );
    assert!(
        t.contains("chain 1 pulse 40 (") && t.contains("the log is forked"),
        "{t}"
    );
    // A forked checkpoint with proofs that carry no checkpoint: the pulses are not in it.
    let bare: Vec<String> = [5u64, 21, 40]
        .iter()
        .map(|&i| {
            let mut a = f.answer(i, size, "");
            a.as_object_mut().unwrap().remove("checkpoint");
            a.to_string()
        })
        .collect();
    let bare = f.write("bare.jsonl", &(bare.join("\n") + "\n"));
    let o = run(&forked, &vk, &[], &[&bare]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAILED: 0 of 3 pulses included"),
        "{}",
        text(&o)
    );

    // Too few witnesses: two required, one cosigned.
    let o = run(
        &cp,
        &vk,
        &["--witness", &w1k, "--witness", &w2k],
        &[&one, &rest],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("checkpoint: 1 valid witness cosignature, 2 required (none by witness-two)"),
        "{}",
        text(&o)
    );
    let o = run(
        &cp,
        &vk,
        &[
            "--witness",
            &w1k,
            "--witness",
            &w2k,
            "--witnesses-required",
            "1",
        ],
        &[&one, &rest],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Usage errors: exit 2.
    let o = audit(&["verify", "--checkpoint", s(&cp), s(&pulses)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--checkpoint needs --log-key"),
        "{}",
        text(&o)
    );
    let o = audit(&[
        "verify",
        "--checkpoint",
        s(&cp),
        "--log-key",
        &vk,
        s(&pulses),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--inclusion FILE or --url BASE"),
        "{}",
        text(&o)
    );
    let o = run(&cp, &w1k, &[], &[&one]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&cp, &vk, &["--witnesses-required", "1"], &[&one]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Serves `answers` (path and query → body) over HTTP/1.1, 404 for anything else; returns
/// the base URL.
fn serve(answers: std::collections::HashMap<String, String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            let (status, body) = match answers.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", "not in the log".to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn verify_fetches_inclusion_proofs_from_the_beacon() {
    let f = Fixture::new();
    let log = key(ORIGIN, KeyKind::Ed25519, 1);
    let size = f.log_size();
    let cp_text = note(&log, size, f.root(size), &[]);
    let cp = f.write("checkpoint", &cp_text);
    let mut answers = std::collections::HashMap::new();
    for i in [5u64, 21] {
        answers.insert(
            format!("/beacon/2.0/chain/1/pulse/{i}/inclusion?size={size}"),
            f.answer(i, size, &cp_text).to_string(),
        );
    }
    let base = serve(answers);
    let pulses = f.write(
        "pulses.jsonl",
        &format!("{}\n{}\n", f.lines[4], f.lines[20]),
    );
    let certs = f.certs();
    let vk = log.1.to_vkey();
    let args = |p: &Path| {
        vec![
            "verify".to_string(),
            "--certs".into(),
            certs.clone(),
            "--checkpoint".into(),
            s(&cp).into(),
            "--log-key".into(),
            vk.clone(),
            "--url".into(),
            format!("{base}/"),
            s(p).into(),
        ]
    };
    let a = args(&pulses);
    let o = audit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("OK: 2 of 2 pulses included"),
        "{}",
        text(&o)
    );

    // A pulse the beacon has no proof for.
    let more = f.write("more.jsonl", &format!("{}\n{}\n", f.lines[4], f.lines[29]));
    let a = args(&more);
    let o = audit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("chain 1 pulse 30: inclusionProof: no inclusion proof for pulse 1/30: ")
            && text(&o).contains("answered 404 not in the log"),
        "{}",
        text(&o)
    );
    // Its proof from a file instead: only the others are fetched.
    let p30 = f.write("p30.json", &f.answer(30, size, &cp_text).to_string());
    let mut a = args(&more);
    a.splice(1..1, ["--inclusion".to_string(), s(&p30).to_string()]);
    let o = audit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("OK: 2 of 2 pulses included"),
        "{}",
        text(&o)
    );
}

#[test]
fn replay_reads_every_entry_of_the_log_and_recomputes_its_root() {
    let f = Fixture::new();
    let log = key(ORIGIN, KeyKind::Ed25519, 1);
    let w1 = key("witness-one", KeyKind::Cosignature, 2);
    let size = f.log_size();
    let root = f.root(size);
    let cp = f.write("checkpoint", &note(&log, size, root, &[&w1]));
    let (vk, w1k) = (log.1.to_vkey(), w1.1.to_vkey());
    let replay = |cp: &Path, extra: &[&str]| {
        let mut a = vec![
            "replay",
            "--database",
            &f.db,
            "--log-checkpoint",
            s(cp),
            "--log-key",
            &vk,
            "--witness",
            &w1k,
        ];
        a.extend_from_slice(extra);
        audit(&a)
    };

    let o = replay(&cp, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "log checkpoint {ORIGIN} size 41 root {}: OK: 41 entries replayed (40 pulses, 1 draw), root recomputed, 1 of 1 witnesses cosigned (1 required)",
            STANDARD.encode(root)
        )),
        "{out}"
    );
    assert!(out.contains("OK: 40 pulses"), "{out}");

    let o = replay(&cp, &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["log"]["entries"], 41);
    assert_eq!(v["log"]["draws"], 1);
    assert_eq!(v["log"]["rootComputed"], STANDARD.encode(root));

    // Stopped and resumed with the replay's own --checkpoint: the log goes on where it was.
    let progress = f.dir.path().join("progress.json");
    let o = replay(&cp, &["--checkpoint", s(&progress), "--stop-after", "25"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(saved["log"]["entries"], 26, "25 pulses and the draw");
    let o = replay(&cp, &["--json", "--checkpoint", s(&progress)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        (
            v["log"]["entries"].clone(),
            v["log"]["pulseEntries"].clone()
        ),
        (41.into(), 40.into())
    );

    // An older checkpoint: its 30 entries (29 pulses and the draw); the rest came later.
    let old = f.write("old", &note(&log, 30, f.root(30), &[&w1]));
    let o = replay(&old, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("OK: 30 entries replayed (29 pulses, 1 draw), root recomputed, 1 of 1 witnesses cosigned (1 required), 11 later pulses not in this checkpoint"),
        "{}",
        text(&o)
    );

    // A forked checkpoint: another root at the same size.
    let forked = f.write("forked", &note(&log, size, [0xee; 32], &[&w1]));
    let o = replay(&forked, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(
            "input: logRoot: the log's 41 entries hash to another root than the checkpoint's"
        ),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains(&format!("root recomputed as {}", STANDARD.encode(root))));

    // A checkpoint larger than the log.
    let larger = f.write("larger", &note(&log, 50, [0xee; 32], &[&w1]));
    let o = replay(&larger, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the database's log holds 41 entries: entry 41 is missing, the checkpoint's tree has 50"),
        "{}",
        text(&o)
    );

    // The witness did not cosign it.
    let uncosigned = f.write("uncosigned", &note(&log, size, root, &[]));
    let o = replay(&uncosigned, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("0 valid witness cosignatures, 1 required (none by witness-one)"),
        "{}",
        text(&o)
    );

    // A draw entry that is not its stored receipt's.
    let wrong = lavabeacon_tlog::entry::Entry::Draw {
        id: [0x5a; 64],
        receipt: [0; 64],
    }
    .to_bytes();
    let g = Fixture::with_draw_entry(Some(wrong));
    let cp2 = g.write("checkpoint", &note(&log, 41, g.root(41), &[&w1]));
    let o = audit(&[
        "replay",
        "--database",
        &g.db,
        "--log-checkpoint",
        s(&cp2),
        "--log-key",
        &vk,
        "--witness",
        &w1k,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("input: logEntry: the log's leaf 20 is draw 5a5a5a5a…: the entry is not its stored receipt's"),
        "{}",
        text(&o)
    );

    // An export holds no log; the flags need a checkpoint.
    let o = audit(&[
        "replay",
        s(&f.chain),
        "--log-checkpoint",
        s(&cp),
        "--log-key",
        &vk,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the log needs --database or --url"),
        "{}",
        text(&o)
    );
    let o = audit(&["replay", "--database", &f.db, "--log-key", &vk]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("give --log-checkpoint FILE"),
        "{}",
        text(&o)
    );
}
