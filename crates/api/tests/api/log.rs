//! The transparency log's routes, over a world of its own: 600 pulses and a draw in the log
//! (601 entries), checkpoints of ten sizes signed by a test key; every answer checked against
//! a tree computed here from the pulses themselves. And the beacon as a witness of other logs
//! (C2SP tlog-witness), including after a restart over the same database.

use super::*;
use ed25519_dalek::{Signer as _, SigningKey};
use lavabeacon_api::{LogInfo, WitnessInfo, WitnessRole};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::merkle::{self, Hash};
use lavabeacon_tlog::note::{self, KeyKind, Note, VerifierKey};
use lavabeacon_tlog::tile::{self, TileKind, TilePath};
use lavabeacon_tlog::witness::AddCheckpoint;
use lavabeacon_tlog::{cosignature, NoteSigner};
use std::io::Read;

const ORIGIN: &str = "beacon.test/log";
const WITNESS: &str = "beacon.test/witness";
const PULSES: u64 = 600;
/// The sizes of the checkpoints the log signed; 601 (the 600 pulses and the draw) is the newest.
const SIZES: [u64; 10] = [1, 100, 255, 256, 257, 511, 512, 513, 600, 601];
/// The other logs this beacon witnesses: one per test, as tests run at once.
const OTHERS: [&str; 5] = ["first", "refusals", "fork", "race", "big"];

/// A note key in the test: what an HSM would hold.
struct Key(SigningKey);

impl NoteSigner for Key {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], String> {
        Ok(self.0.sign(message).to_bytes())
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}
fn log_key() -> SigningKey {
    key(7)
}
fn witness_key() -> SigningKey {
    key(8)
}
fn other_logs_key() -> SigningKey {
    key(9)
}

fn vkey(name: &str, kind: KeyKind, k: &SigningKey) -> VerifierKey {
    VerifierKey::new(name, kind, k.verifying_key().to_bytes()).unwrap()
}

fn witness_vkey() -> VerifierKey {
    vkey(WITNESS, KeyKind::Cosignature, &witness_key())
}

fn other_origin(test: &str) -> String {
    format!("example.com/{test}")
}

/// The witness this beacon is: of its own log and of the others.
fn role() -> WitnessRole {
    let mut logs = vec![vkey(ORIGIN, KeyKind::Ed25519, &log_key())];
    logs.extend(
        OTHERS
            .iter()
            .map(|o| vkey(&other_origin(o), KeyKind::Ed25519, &other_logs_key())),
    );
    WitnessRole {
        name: WITNESS.into(),
        key: Arc::new(Key(witness_key())),
        logs,
    }
}

fn checkpoint_body(origin: &str, size: u64, root: Hash) -> String {
    Checkpoint {
        origin: origin.into(),
        size,
        root,
        extensions: vec![],
    }
    .body()
}

/// `body` signed by `k` under `name`, as a log signs a checkpoint.
fn sign_note(body: &str, name: &str, k: &SigningKey) -> String {
    let id = note::key_id(name, KeyKind::Ed25519, &k.verifying_key().to_bytes());
    let sig = k.sign(body.as_bytes()).to_bytes();
    format!("{body}\n{}", note::signature_line(name, id, &sig))
}

struct LogWorld {
    w: World,
    /// Every entry, in order: the pulses' outputValues, then the draw's.
    entries: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
    draw: Hash512,
}

impl LogWorld {
    fn root(&self, size: u64) -> Hash {
        merkle::root(&self.leaves[..size as usize])
    }
}

fn log_world() -> &'static LogWorld {
    static W: OnceLock<LogWorld> = OnceLock::new();
    W.get_or_init(|| {
        let w = new_world_with(
            PERIOD,
            PULSES,
            0,
            |info| {
                info.log = Some(LogInfo {
                    origin: ORIGIN.into(),
                    vkey: vkey(ORIGIN, KeyKind::Ed25519, &log_key()).to_vkey(),
                    witnesses: vec![WitnessInfo {
                        name: WITNESS.into(),
                        vkey: witness_vkey().to_vkey(),
                        url: "https://beacon.test/witness".into(),
                    }],
                    required: 1,
                })
            },
            |beacon, store| beacon.register_witness(role(), store).unwrap(),
        );
        let draw = sha512(&[b"a draw registered after the pulses"]);
        let draw_entry =
            lavabeacon_draw::receipt::log_entry(draw.as_bytes(), b"receipt message", b"signature");
        let entries: Vec<Vec<u8>> = w
            .chain
            .iter()
            .map(|p| p.output_value.as_bytes().to_vec())
            .chain([draw_entry.clone()])
            .collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        let stored = lavabeacon_store::StoredDraw {
            id: draw,
            spec: "{}".into(),
            receipt: "{}".into(),
            target_ms: now_ms() + 3_600_000,
            registered_ms: now_ms(),
        };
        let store = w.store.clone();
        let expected: Vec<Hash> = SIZES
            .iter()
            .map(|&s| merkle::root(&leaves[..s as usize]))
            .collect();
        w.rt.block_on(async move {
            store.put_draw(&stored, &draw_entry).await.unwrap();
            let log = store.log().unwrap();
            assert_eq!(log.size().await.unwrap(), PULSES + 1);
            for (&s, want) in SIZES.iter().zip(expected) {
                let root = log.root(s).await.unwrap();
                assert_eq!(root, want, "the store's root of {s}");
                let note = sign_note(&checkpoint_body(ORIGIN, s, root), ORIGIN, &log_key());
                log.put_checkpoint(s, &note).await.unwrap();
            }
        });
        LogWorld {
            w,
            entries,
            leaves,
            draw,
        }
    })
}

/// An answer with its body as bytes (tiles are not text).
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

fn fetch(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Raw {
    let mut req = ureq::request(method, &format!("{base}{path}"));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let answer = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let r = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let headers = r
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = r.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    let status = r.status();
    let mut bytes = Vec::new();
    r.into_reader().read_to_end(&mut bytes).unwrap();
    Raw {
        status,
        headers,
        body: bytes,
    }
}

fn log_get(path: &str) -> Raw {
    fetch(&log_world().w.base, "GET", path, &[], None)
}

fn post_at(base: &str, body: &[u8]) -> Raw {
    fetch(base, "POST", "/witness/add-checkpoint", &[], Some(body))
}

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    use base64::Engine;
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

/// Reads a served checkpoint note: checks the log's signature, returns the checkpoint.
fn checked_checkpoint(text: &str) -> (Note, Checkpoint) {
    let n = Note::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
    n.verify(&vkey(ORIGIN, KeyKind::Ed25519, &log_key()))
        .unwrap();
    let c = Checkpoint::parse(&n.text).unwrap();
    assert_eq!(c.origin, ORIGIN);
    (n, c)
}

#[test]
fn the_key_and_the_witnesses_are_the_configured_ones() {
    let r = log_get("/log/key");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let k = VerifierKey::parse(r.text().strip_suffix('\n').unwrap()).unwrap();
    assert_eq!(k, vkey(ORIGIN, KeyKind::Ed25519, &log_key()));
    let r = log_get("/log/witnesses");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"witnesses": [{"name": WITNESS, "vkey": witness_vkey().to_vkey(), "url": "https://beacon.test/witness"}], "required": 1})
    );
}

#[test]
fn the_newest_checkpoint_is_served_signed_and_revalidated() {
    let lw = log_world();
    let r = log_get("/log/checkpoint");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("Cache-Control"), Some("no-cache"));
    let (_, c) = checked_checkpoint(r.text());
    assert_eq!((c.size, c.root), (PULSES + 1, lw.root(PULSES + 1)));
    let etag = r.header("ETag").unwrap().to_string();
    let again = fetch(
        &lw.w.base,
        "GET",
        "/log/checkpoint",
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

/// The tiles a client of a tree of `size` reads: every full tile and the partial one of each
/// level, hashes and entries.
fn tiles_of(size: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    let mut add = |kind: TileKind, n: u64| {
        for index in 0..n / tile::WIDTH {
            out.push(TilePath {
                kind,
                index,
                width: None,
            });
        }
        if !n.is_multiple_of(tile::WIDTH) {
            out.push(TilePath {
                kind,
                index: n / tile::WIDTH,
                width: Some((n % tile::WIDTH) as u16),
            });
        }
    };
    add(TileKind::Entries, size);
    for level in 0..8u8 {
        let n = size >> (8 * level);
        if n == 0 {
            break;
        }
        add(TileKind::Hashes { level }, n);
    }
    out
}

#[test]
fn every_tile_of_every_checkpoint_is_the_trees_own() {
    let lw = log_world();
    let mut level_one = 0;
    for size in SIZES {
        for t in tiles_of(size) {
            let path = t.to_string();
            let r = log_get(&format!("/log/{path}"));
            assert_eq!(
                r.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
            assert_eq!(
                r.header("Cache-Control"),
                Some("public, max-age=31536000, immutable"),
                "{path}"
            );
            match t.kind {
                TileKind::Entries => {
                    let from = (t.index * tile::WIDTH) as usize;
                    let want = &lw.entries[from..from + t.count() as usize];
                    assert_eq!(tile::unbundle(&r.body).unwrap(), want, "{path}");
                    if from + (t.count() as usize) <= PULSES as usize {
                        // A pulse's entry is its outputValue.
                        assert_eq!(want[0], lw.w.chain[from].output_value.as_bytes().to_vec());
                    }
                }
                TileKind::Hashes { level } => {
                    if level == 1 {
                        level_one += 1;
                    }
                    let want: Vec<u8> = t
                        .nodes()
                        .iter()
                        .flat_map(|n| {
                            let lo = (n.index << n.level) as usize;
                            let hi = ((n.index + 1) << n.level) as usize;
                            merkle::root(&lw.leaves[lo..hi])
                        })
                        .collect();
                    assert_eq!(r.body, want, "{path}");
                }
            }
        }
    }
    assert!(level_one >= 4, "level-1 tiles fetched: {level_one}");
    // A tree of 512 has the level-1 tile of width 2 whose hashes are the two full level-0
    // tiles' roots.
    let r = log_get("/log/tile/1/000.p/2");
    assert_eq!(r.body.len(), 64);
    assert_eq!(r.body[..32], merkle::root(&lw.leaves[..256]));
}

#[test]
fn tiles_beyond_the_newest_checkpoint_are_404_and_malformed_paths_400() {
    for path in [
        "0/002.p/90",
        "0/002",
        "0/003.p/1",
        "1/000",
        "1/000.p/3",
        "2/000.p/1",
        "entries/002.p/90",
        "entries/002",
        "entries/x001/000",
    ] {
        let r = log_get(&format!("/log/tile/{path}"));
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not within the newest checkpoint"));
    }
    for path in [
        "",
        "0/1",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/05",
        "8/000",
        "entries/x000/001",
        "data/000",
        "0/000/",
        "0",
    ] {
        let r = log_get(&format!("/log/tile/{path}"));
        assert_eq!(r.status, 400, "{path:?}: {}", r.text());
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tlog-tiles"));
    }
    // A slash written %2F is the same tile (clients and contract testers that escape path
    // parameters get it too).
    let r = log_get("/log/tile/0%2F000.p%2F5");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 5 * 32);
}

/// Checks an inclusion answer for entry `entry` at `leaf`: the proof leads from the entry to the
/// root of the signed checkpoint the answer carries. Returns the checkpoint's size.
fn check_inclusion(lw: &LogWorld, answer: &serde_json::Value, leaf: u64, entry: &[u8]) -> u64 {
    assert_eq!(answer["leafIndex"], leaf, "{answer}");
    let size = answer["treeSize"].as_u64().unwrap();
    let (_, c) = checked_checkpoint(answer["checkpoint"].as_str().unwrap());
    assert_eq!(c.size, size);
    assert_eq!(c.root, lw.root(size));
    let proof = hashes(&answer["inclusionProof"]);
    merkle::verify_inclusion(&merkle::leaf_hash(entry), leaf, size, &proof, &c.root)
        .unwrap_or_else(|e| panic!("leaf {leaf} of {size}: {e}"));
    let mut changed = entry.to_vec();
    changed[0] ^= 1;
    assert!(
        merkle::verify_inclusion(&merkle::leaf_hash(&changed), leaf, size, &proof, &c.root)
            .is_err(),
        "a changed entry must not verify"
    );
    size
}

#[test]
fn every_pulse_has_an_inclusion_proof_that_verifies() {
    let lw = log_world();
    for p in &lw.w.chain {
        let r = log_get(&format!(
            "/beacon/2.0/chain/1/pulse/{}/inclusion",
            p.pulse_index
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("Cache-Control"), Some("no-cache"));
        let size = check_inclusion(lw, &r.json(), p.pulse_index - 1, p.output_value.as_bytes());
        assert_eq!(size, PULSES + 1, "the newest checkpoint");
    }
    // Against an older checkpoint.
    let r = log_get("/beacon/2.0/chain/1/pulse/10/inclusion?size=256");
    assert_eq!(r.status, 200, "{}", r.text());
    let out = lw.w.chain[9].output_value;
    assert_eq!(check_inclusion(lw, &r.json(), 9, out.as_bytes()), 256);
    let r = log_get("/beacon/2.0/chain/1/pulse/257/inclusion?size=257");
    assert_eq!(
        check_inclusion(lw, &r.json(), 256, lw.entries[256].as_slice()),
        257
    );
    // ETag and 304.
    let etag = r.header("ETag").unwrap().to_string();
    let again = fetch(
        &lw.w.base,
        "GET",
        "/beacon/2.0/chain/1/pulse/257/inclusion?size=257",
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);
}

#[test]
fn inclusion_is_404_where_no_checkpoint_covers_the_pulse_and_400_for_bad_input() {
    for (path, status, needle) in [
        (
            "/beacon/2.0/chain/1/pulse/257/inclusion?size=256",
            404,
            "not in the tree of the checkpoint",
        ),
        (
            "/beacon/2.0/chain/1/pulse/5/inclusion?size=300",
            404,
            "no checkpoint of size 300",
        ),
        (
            "/beacon/2.0/chain/1/pulse/5/inclusion?size=0",
            404,
            "no checkpoint of size 0",
        ),
        (
            "/beacon/2.0/chain/1/pulse/5/inclusion?size=abc",
            400,
            "not a tree size",
        ),
        (
            "/beacon/2.0/chain/1/pulse/5/inclusion?size=-1",
            400,
            "not a tree size",
        ),
        (
            "/beacon/2.0/chain/1/pulse/5/inclusion?size=9223372036854775808",
            400,
            "not a tree size",
        ),
        (
            "/beacon/2.0/chain/1/pulse/601/inclusion",
            404,
            "no published pulse 601",
        ),
        (
            "/beacon/2.0/chain/2/pulse/1/inclusion",
            404,
            "no published pulse 1 in chain 2",
        ),
        (
            "/beacon/2.0/chain/1/pulse/0/inclusion",
            400,
            "whole number from 1",
        ),
        (
            "/beacon/2.0/chain/1/pulse/05/inclusion",
            404,
            "leading zeros",
        ),
        ("/draws/xyz/inclusion", 400, "128 hex digits"),
    ] {
        let r = log_get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{path}: {msg:?} lacks {needle:?}");
    }
    let unknown = format!("/draws/{}/inclusion", "0".repeat(128));
    assert_eq!(log_get(&unknown).status, 404);
}

#[test]
fn a_registered_draw_has_an_inclusion_proof_too() {
    let lw = log_world();
    let r = log_get(&format!("/draws/{}/inclusion", lw.draw.to_hex_lower()));
    assert_eq!(r.status, 200, "{}", r.text());
    let entry = lw.entries[PULSES as usize].clone();
    assert_eq!(
        lavabeacon_tlog::entry::Entry::parse(&entry),
        Some(lavabeacon_tlog::entry::Entry::Draw {
            id: *lw.draw.as_bytes(),
            receipt: *sha512(&[b"receipt message", b"signature"]).as_bytes(),
        })
    );
    assert_eq!(check_inclusion(lw, &r.json(), PULSES, &entry), PULSES + 1);
    // No checkpoint before the draw covers it.
    let r = log_get(&format!(
        "/draws/{}/inclusion?size=600",
        lw.draw.to_hex_lower()
    ));
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn consistency_proofs_verify_between_every_two_sizes() {
    let lw = log_world();
    let sizes: Vec<u64> = [0].into_iter().chain(SIZES).collect();
    for &a in &sizes {
        for &b in sizes.iter().filter(|&&b| b >= a) {
            let r = log_get(&format!("/log/consistency?from={a}&to={b}"));
            assert_eq!(r.status, 200, "{a}..{b}: {}", r.text());
            assert_eq!(
                r.header("Cache-Control"),
                Some("public, max-age=31536000, immutable")
            );
            let j = r.json();
            assert_eq!((j["from"].as_u64(), j["to"].as_u64()), (Some(a), Some(b)));
            let proof = hashes(&j["consistencyProof"]);
            merkle::verify_consistency(a, b, &lw.root(a), &lw.root(b), &proof)
                .unwrap_or_else(|e| panic!("{a}..{b}: {e}"));
        }
    }
    for (q, status) in [
        ("from=5&to=3", 404),
        ("from=5&to=602", 404),
        ("from=0&to=9223372036854775807", 404),
        ("from=5", 400),
        ("to=5", 400),
        ("from=x&to=5", 400),
        ("from=-1&to=5", 400),
        ("", 400),
    ] {
        let r = log_get(&format!("/log/consistency?{q}"));
        assert_eq!(r.status, status, "{q}: {}", r.text());
    }
}

#[test]
fn a_beacon_without_a_log_answers_404_on_every_log_route() {
    let w = world();
    for path in [
        "/log/key",
        "/log/checkpoint",
        "/log/witnesses",
        "/log/tile/0/000",
        "/log/consistency?from=0&to=0",
        "/beacon/2.0/chain/1/pulse/1/inclusion",
    ] {
        let r = fetch(&w.base, "GET", path, &[], None);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keeps no transparency log"));
    }
    let r = post_at(&w.base, b"old 0\n\n");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("not a witness"), "{}", r.text());
    let r = fetch(&w.base, "GET", "/witness/add-checkpoint", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("POST, OPTIONS"));
}

#[test]
fn a_configured_witness_not_yet_registered_answers_503_not_404() {
    let w = new_world_with(
        PERIOD,
        2,
        0,
        |info| info.witness_configured = true,
        |_, _| {},
    );
    let r = post_at(&w.base, b"old 0\n\n");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.text().contains("witness is not ready"), "{}", r.text());
}

// --- the witness -------------------------------------------------------------------------------

/// Another log, whose checkpoints this beacon witnesses: `n` leaves made from `salt`, the first
/// `shared` of them from `base`'s salt (a fork of `base` after `shared` entries).
struct OtherLog {
    origin: String,
    leaves: Vec<Hash>,
}

impl OtherLog {
    fn new(test: &str, n: usize, salt: &str) -> OtherLog {
        OtherLog::fork(test, n, salt, salt, n)
    }

    fn fork(test: &str, n: usize, base: &str, salt: &str, shared: usize) -> OtherLog {
        let leaves = (0..n)
            .map(|i| {
                let s = if i < shared { base } else { salt };
                merkle::leaf_hash(format!("{s} {i}").as_bytes())
            })
            .collect();
        OtherLog {
            origin: other_origin(test),
            leaves,
        }
    }

    fn root(&self, size: u64) -> Hash {
        merkle::root(&self.leaves[..size as usize])
    }

    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        merkle::consistency_ranges(old, new)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| merkle::root(&self.leaves[lo as usize..hi as usize]))
            .collect()
    }

    fn note(&self, size: u64) -> String {
        sign_note(
            &checkpoint_body(&self.origin, size, self.root(size)),
            &self.origin,
            &other_logs_key(),
        )
    }

    /// An add-checkpoint body from `old` to `size`, with the true proof.
    fn request(&self, old: u64, size: u64) -> Vec<u8> {
        AddCheckpoint {
            old_size: old,
            proof: self.proof(old, size),
            checkpoint: self.note(size).into_bytes(),
        }
        .to_bytes()
    }
}

/// Checks a 200 of the witness: its body is one cosignature line that verifies on `note` with
/// the witness's key, made now.
fn check_cosigned(r: &Raw, note: &str) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let line = r.text().to_string();
    assert_eq!(line.lines().count(), 1, "{line}");
    let full = Note::parse(format!("{note}{line}").as_bytes()).unwrap();
    let ts = cosignature::verify(&full, &witness_vkey()).unwrap();
    assert!((ts as i64 - now_ms() / 1000).abs() <= 10, "{ts}");
    line
}

fn check_refused(r: &Raw, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains(needle),
        "{:?} lacks {needle:?}",
        String::from_utf8_lossy(&r.body)
    );
}

fn check_conflict(r: &Raw, size: u64) {
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Content-Type"), Some("text/x.tlog.size"));
    assert_eq!(r.text(), format!("{size}\n"));
}

#[test]
fn the_witness_cosigns_a_first_checkpoint_then_extensions_and_tells_a_stale_log_its_size() {
    let base = &log_world().w.base;
    let log = OtherLog::new("first", 40, "first");
    check_cosigned(&post_at(base, &log.request(0, 5)), &log.note(5));
    check_cosigned(&post_at(base, &log.request(5, 10)), &log.note(10));
    // The log thinks the witness is still at 5.
    check_conflict(&post_at(base, &log.request(5, 12)), 10);
    // A log that probes with old 0 learns the size too.
    check_conflict(&post_at(base, &log.request(0, 12)), 10);
    // The same checkpoint again is cosigned again (a log that lost the first answer).
    check_cosigned(&post_at(base, &log.request(10, 10)), &log.note(10));
    check_cosigned(&post_at(base, &log.request(10, 33)), &log.note(33));
}

#[test]
fn the_witness_refuses_bad_proofs_other_keys_unknown_logs_and_garbage() {
    let base = &log_world().w.base;
    let log = OtherLog::new("refusals", 40, "refusals");
    // From 0 nothing is to be proven, and nothing may be sent.
    let mut req = AddCheckpoint::parse(&log.request(0, 5)).unwrap();
    req.proof = vec![[1; 32]];
    check_refused(
        &post_at(base, &req.to_bytes()),
        422,
        "from size 0 must be empty",
    );
    check_cosigned(&post_at(base, &log.request(0, 10)), &log.note(10));
    // A proof with one hash changed, one too many, one too few.
    let good = AddCheckpoint::parse(&log.request(10, 20)).unwrap();
    let mut bad = good.clone();
    bad.proof[1][0] ^= 1;
    check_refused(&post_at(base, &bad.to_bytes()), 422, "consistency proof");
    let mut long = good.clone();
    long.proof.push([0; 32]);
    check_refused(&post_at(base, &long.to_bytes()), 422, "consistency proof");
    let mut short = good.clone();
    short.proof.pop();
    check_refused(&post_at(base, &short.to_bytes()), 422, "consistency proof");
    // Signed by another key under the log's name.
    let stranger = sign_note(
        &checkpoint_body(&log.origin, 20, log.root(20)),
        &log.origin,
        &key(10),
    );
    let req = AddCheckpoint {
        old_size: 10,
        proof: log.proof(10, 20),
        checkpoint: stranger.into_bytes(),
    };
    check_refused(&post_at(base, &req.to_bytes()), 403, "forbidden");
    // A log this witness does not know.
    let unknown = OtherLog::new("nobody", 10, "nobody");
    let r = post_at(base, &unknown.request(0, 5));
    check_refused(&r, 404, "unknown log origin");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    // Malformed requests.
    let note = log.note(20);
    for body in [
        "garbage".to_string(),
        "old 10\n".to_string(),
        format!("old 010\n\n{note}"),
        format!("old ten\n\n{note}"),
        format!("old 10\nnot base64\n\n{note}"),
        "old 10\n\nnot a note\n".to_string(),
        format!("old 10\n\n{}", note.replace("\n\n", "\n")),
        // An old size larger than the checkpoint's.
        format!("old 30\n\n{note}"),
    ] {
        let r = post_at(base, body.as_bytes());
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
    }
    // The state did not move: the true extension is still cosigned.
    check_cosigned(&post_at(base, &good.to_bytes()), &log.note(20));
}

#[test]
fn a_body_over_the_limit_is_413() {
    let base = &log_world().w.base;
    let log = OtherLog::new("big", 4, "big");
    let mut body = log.request(0, 4);
    body.resize(lavabeacon_tlog::witness::MAX_BODY_BYTES + 1, b'a');
    let r = post_at(base, &body);
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
}

/// A second beacon over the world's database, as after a restart: a witness of the same logs.
fn restarted(w: &World) -> String {
    let db = w._dir.path().join("api.db");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = lavabeacon_store::open(&format!("sqlite:{}", db.display()))
                .await
                .unwrap();
            let beacon = Beacon::new(store.clone(), BeaconInfo::new(PERIOD as u32));
            beacon.register_witness(role(), store).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let server = lavabeacon_api::serve(beacon, listener, 1).unwrap();
            tx.send(base).unwrap();
            server.await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn the_witness_refuses_forks_even_after_a_restart() {
    let lw = log_world();
    let base = &lw.w.base;
    let log = OtherLog::new("fork", 40, "fork");
    // The same log's key signs a fork: the same first 3 entries, then others.
    let fork = OtherLog::fork("fork", 40, "fork", "forked", 3);
    assert_ne!(log.root(10), fork.root(10));
    check_cosigned(&post_at(base, &log.request(0, 10)), &log.note(10));
    let refusals = |base: &str| {
        // The same size with another root.
        let same_size = AddCheckpoint {
            old_size: 10,
            proof: vec![],
            checkpoint: fork.note(10).into_bytes(),
        };
        check_refused(&post_at(base, &same_size.to_bytes()), 422, "another root");
        // A larger tree of which the cosigned one is no prefix (the fork's own proof).
        check_refused(
            &post_at(base, &fork.request(10, 15)),
            422,
            "consistency proof",
        );
        // A smaller tree: no going back, whatever old size the log names.
        let smaller = format!("old 10\n\n{}", fork.note(8));
        check_refused(&post_at(base, smaller.as_bytes()), 400, "larger than");
        check_conflict(&post_at(base, &fork.request(0, 8)), 10);
        check_conflict(&post_at(base, &fork.request(0, 10)), 10);
    };
    refusals(base);
    // A new beacon over the same database remembers what was cosigned.
    let again = restarted(&lw.w);
    refusals(&again);
    check_conflict(&post_at(&again, &log.request(0, 12)), 10);
    check_cosigned(&post_at(&again, &log.request(10, 12)), &log.note(12));
    // And the first beacon sees the state the second moved.
    check_conflict(&post_at(base, &log.request(10, 14)), 12);
}

#[test]
fn of_requests_at_once_from_one_state_exactly_one_is_cosigned() {
    let base = log_world().w.base.clone();
    let log = OtherLog::new("race", 40, "race");
    check_cosigned(&post_at(&base, &log.request(0, 10)), &log.note(10));
    let body = log.request(10, 12);
    let answers: Vec<Raw> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| post_at(&base, &body))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 200) {
        check_conflict(r, 12);
    }
}

#[test]
fn the_witness_cosigns_the_beacons_own_checkpoint_and_the_cosignature_is_served() {
    let lw = log_world();
    let r = log_get("/beacon/2.0/chain/1/pulse/5/inclusion?size=512");
    let note = r.json()["checkpoint"].as_str().unwrap().to_string();
    checked_checkpoint(&note);
    let body = format!("old 0\n\n{note}");
    let line = check_cosigned(&post_at(&lw.w.base, body.as_bytes()), &note);
    // As the engine keeps a witness's answer: the line (here without its newline).
    let store = lw.w.store.clone();
    let kept = line.trim_end().to_string();
    lw.w.rt.block_on(async move {
        store
            .log()
            .unwrap()
            .put_cosignature(512, WITNESS, &kept)
            .await
            .unwrap()
    });
    let r = log_get("/beacon/2.0/chain/1/pulse/5/inclusion?size=512");
    let served = r.json()["checkpoint"].as_str().unwrap().to_string();
    assert_eq!(served, format!("{note}{line}"));
    let (n, c) = checked_checkpoint(&served);
    assert_eq!(c.size, 512);
    cosignature::verify(&n, &witness_vkey()).unwrap();
    check_inclusion(lw, &r.json(), 4, lw.entries[4].as_slice());
    // The witness's state for the beacon's own log is 512 now: 513 extends it.
    let ext = AddCheckpoint {
        old_size: 512,
        proof: merkle::consistency_ranges(512, 513)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| merkle::root(&lw.leaves[lo as usize..hi as usize]))
            .collect(),
        checkpoint: {
            let r = log_get("/beacon/2.0/chain/1/pulse/5/inclusion?size=513");
            r.json()["checkpoint"].as_str().unwrap().as_bytes().to_vec()
        },
    };
    let r = post_at(&lw.w.base, &ext.to_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_openapi_document_describes_the_log_and_the_witness() {
    let doc = log_get("/openapi.json").json();
    let tile = &doc["paths"]["/log/tile/{path}"]["get"];
    assert_eq!(
        tile["parameters"][0]["schema"]["pattern"],
        lavabeacon_api::ROUTES
            .iter()
            .find(|r| r.operation_id == "getLogTile")
            .map(|r| match r.params[0].kind {
                lavabeacon_api::Kind::Pattern(p) => p,
                _ => "",
            })
            .unwrap()
    );
    assert!(tile["responses"]["200"]["content"]["application/octet-stream"].is_object());
    let inclusion = &doc["paths"]["/beacon/2.0/chain/{c}/pulse/{p}/inclusion"]["get"];
    assert_eq!(
        inclusion["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LogInclusion"
    );
    let schema = &doc["components"]["schemas"]["LogInclusion"];
    assert_eq!(schema["additionalProperties"], false);
    let add = &doc["paths"]["/witness/add-checkpoint"]["post"];
    assert!(add["requestBody"]["content"]["text/plain"].is_object());
    assert!(add["responses"]["409"]["content"]["text/x.tlog.size"].is_object());
    for s in ["400", "403", "404", "413", "422"] {
        assert!(
            add["responses"][s]["content"]["text/plain"].is_object(),
            "{s}"
        );
    }
    // Every answer the inclusion route gave above fits its schema's required members.
    let r = log_get("/beacon/2.0/chain/1/pulse/1/inclusion").json();
    for m in schema["required"].as_array().unwrap() {
        assert!(r.get(m.as_str().unwrap()).is_some(), "{m}");
    }
}
