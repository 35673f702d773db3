//! Cross-checks against independent implementations: Cloudflare's `signed_note` (a port of Go's
//! golang.org/x/mod/sumdb/note) and `tlog_tiles` (a port of x/mod/sumdb/tlog and sunlight's
//! checkpoints), both BSD-3-Clause, from crates.io. Notes, vkeys and checkpoints made here must
//! be read the same way there and the reverse; cosignatures made here must verify through their
//! note code; roots, inclusion and consistency proofs must be the same hashes for every tree up
//! to 300 leaves and some larger ones; tile paths and tile contents must agree (theirs are Go's
//! `tile/8/L/N` paths, which C2SP dropped the height from).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::{self, signature_line, KeyKind, Note, VerifierKey};
use lavabeacon_tlog::tile::{TileKind, TilePath};
use lavabeacon_tlog::{cosignature, merkle, Hash, NodeId};
use signed_note::{Note as TheirNote, Verifier as _, VerifierList};
use std::collections::HashMap;
use tlog_tiles::{HashReader, Tile};

fn their_id(id: [u8; 4]) -> u32 {
    u32::from_be_bytes(id)
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Go's private key string, `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
fn skey(name: &str, sk: &SigningKey) -> String {
    let id = note::key_id(name, KeyKind::Ed25519, &sk.verifying_key().to_bytes());
    let raw = [&[1u8][..], &sk.to_bytes()].concat();
    format!(
        "PRIVATE+KEY+{name}+{:08x}+{}",
        their_id(id),
        STANDARD.encode(raw)
    )
}

const NAMES: [&str; 4] = [
    "example.com/log",
    "beacon.example/tlog",
    "ünïcode.example/ключ",
    "a",
];

#[test]
fn vkeys_and_key_ids_agree() {
    for (i, name) in NAMES.iter().enumerate() {
        let sk = signing_key(i as u8 + 1);
        let ours = VerifierKey::new(name, KeyKind::Ed25519, sk.verifying_key().to_bytes()).unwrap();
        let theirs = signed_note::StandardVerifier::new(&ours.to_vkey()).unwrap();
        assert_eq!(theirs.name(), *name);
        assert_eq!(theirs.key_id(), their_id(ours.key_id));
        let their_vkey = signed_note::new_ed25519_verifier_key(name, &sk.verifying_key());
        assert_eq!(their_vkey, ours.to_vkey());
        assert_eq!(VerifierKey::parse(&their_vkey).unwrap(), ours);
        // Their key id function over type ‖ key, for both our types.
        for kind in [KeyKind::Ed25519, KeyKind::Cosignature] {
            let pk = sk.verifying_key().to_bytes();
            let raw = [&[kind.byte()][..], &pk].concat();
            assert_eq!(
                signed_note::key_id(name, &raw),
                their_id(note::key_id(name, kind, &pk))
            );
        }
        // Their signer accepts the private key string for our id.
        signed_note::StandardSigner::new(&skey(name, &sk)).unwrap();
    }
}

#[test]
fn notes_signed_here_verify_there_and_the_reverse() {
    let texts = [
        "one line\n",
        "a\n\nblank line inside\n",
        "example.com/log\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "ünï\x7fcode — with a dash\n",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        let sk = signing_key(i as u8 + 10);
        let key = VerifierKey::new(name, KeyKind::Ed25519, sk.verifying_key().to_bytes()).unwrap();
        let verifier = signed_note::StandardVerifier::new(&key.to_vkey()).unwrap();
        let known = VerifierList::new(vec![Box::new(verifier)]);
        let signer = signed_note::StandardSigner::new(&skey(name, &sk)).unwrap();
        for text in texts {
            // Ours → theirs.
            let sig = sk.sign(text.as_bytes()).to_bytes();
            let ours = format!("{text}\n{}", signature_line(name, key.key_id, &sig));
            let n = TheirNote::from_bytes(ours.as_bytes()).unwrap();
            let (verified, unverified) = n.verify(&known).unwrap();
            assert_eq!((verified.len(), unverified.len()), (1, 0));
            assert_eq!(n.text(), text.as_bytes());
            assert_eq!(n.to_bytes(), ours.as_bytes());
            // Theirs → ours, with an unknown key's line added that we must ignore.
            let mut n = TheirNote::new(text.as_bytes(), &[]).unwrap();
            n.add_sigs(&[&signer]).unwrap();
            let mut bytes = n.to_bytes();
            bytes.extend_from_slice(
                signature_line("other.example", [1, 2, 3, 4], &[9; 64]).as_bytes(),
            );
            let parsed = Note::parse(&bytes).unwrap();
            assert_eq!(parsed.text, text);
            parsed.verify(&key).unwrap();
            assert_eq!(parsed.to_bytes(), bytes);
            // A tampered text fails in both.
            let mut bad = parsed.clone();
            bad.text = bad.text.replacen(|_c: char| true, "Z", 1);
            assert!(bad.verify(&key).is_err());
            assert!(TheirNote::from_bytes(&bad.to_bytes())
                .unwrap()
                .verify(&known)
                .is_err());
        }
    }
}

/// Both parsers accept and refuse the same notes, except where noted.
#[test]
fn note_parsers_agree_on_what_is_a_note() {
    let sk = signing_key(42);
    let name = "example.com/log";
    let id = note::key_id(name, KeyKind::Ed25519, &sk.verifying_key().to_bytes());
    let text = "hello\nworld\n";
    let line = signature_line(name, id, &sk.sign(text.as_bytes()).to_bytes());
    let ok = format!("{text}\n{line}");
    let cases: Vec<Vec<u8>> = vec![
        ok.clone().into(),
        format!("{ok}{line}").into(),
        format!("{ok}\n{line}").into(),
        format!("\n\n{line}").into(),
        format!("a\n\n\n{line}").into(),
        text.into(),
        format!("{text}\n").into(),
        format!("{text}\n\n").into(),
        ok.trim_end().into(),
        ok.replace('\n', "\r\n").into(),
        ok.replace("hello", "hel\tlo").into(),
        ok.replace("hello", "hel\x7flo").into(),
        ok.replace("hello", "hél\u{2028}lo").into(),
        ok.replace('\u{2014}', "-").into(),
        ok.replace("\u{2014} ", "\u{2014}").into(),
        ok.replace("/log ", "/log  ").into(),
        ok.replace("/log", "/l+og").into(),
        ok.replace("/log", "/l\u{85}og").into(),
        ok.replace("/log", "/l\u{3000}og").into(),
        ok.replace("/log", "").into(),
        ok.replace("=\n", "\n").into(),
        format!("{text}\n\u{2014} {name} AQIDBA==\n").into(),
        format!("{text}\n\u{2014} {name} AQIDBAU=\n").into(),
        [&[0xffu8][..], ok.as_bytes()].concat(),
        format!("{text}\n{}", line.repeat(100)).into(),
        format!("{text}\n{}", line.repeat(101)).into(),
    ];
    for c in &cases {
        let ours = Note::parse(c).is_ok();
        let theirs = TheirNote::from_bytes(c).is_ok();
        assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(c));
    }
    // The one difference: unused bits set in a signature's last base64 character. Go's note
    // parser (the reference) ignores them, and so do we; this port refuses them.
    let b64 = line.trim_end().rsplit(' ').next().unwrap();
    let last = b64.trim_end_matches('=');
    let c = last.as_bytes()[last.len() - 1];
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let pos = ALPHABET.iter().position(|&x| x == c).unwrap();
    let altered = format!(
        "{}{}{}",
        &last[..last.len() - 1],
        ALPHABET[pos + 1] as char,
        &b64[last.len()..]
    );
    let odd = ok.replace(b64, &altered);
    let parsed = Note::parse(odd.as_bytes()).unwrap();
    assert_eq!(parsed, Note::parse(ok.as_bytes()).unwrap());
    assert!(TheirNote::from_bytes(odd.as_bytes()).is_err());
}

/// `cosignature/v1` as a signed_note `Verifier` and `Signer`: written here from the spec, on
/// their note code.
struct CosigV1 {
    name: String,
    id: u32,
    key: SigningKey,
    time: u64,
}

impl CosigV1 {
    fn new(name: &str, key: SigningKey, time: u64) -> CosigV1 {
        let raw = [&[0x04u8][..], &key.verifying_key().to_bytes()].concat();
        CosigV1 {
            name: name.into(),
            id: signed_note::key_id(name, &raw),
            key,
            time,
        }
    }
    fn message(msg: &[u8], time: u64) -> Vec<u8> {
        [format!("cosignature/v1\ntime {time}\n").as_bytes(), msg].concat()
    }
}

impl signed_note::Verifier for CosigV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let time = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let s = ed25519_dalek::Signature::from_bytes(sig[8..].try_into().unwrap());
        self.key
            .verifying_key()
            .verify_strict(&Self::message(msg, time), &s)
            .is_ok()
    }
}

impl signed_note::Signer for CosigV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        let s = self.key.sign(&Self::message(msg, self.time)).to_bytes();
        Ok([&self.time.to_be_bytes()[..], &s].concat())
    }
}

#[test]
fn cosignatures_agree() {
    let log = signing_key(1);
    let log_key = VerifierKey::new(
        "example.com/log",
        KeyKind::Ed25519,
        log.verifying_key().to_bytes(),
    )
    .unwrap();
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 123,
        root: merkle::leaf_hash(b"x"),
        extensions: vec!["an extension".into()],
    };
    let text = cp.body();
    let signed = format!(
        "{text}\n{}",
        signature_line(
            &log_key.name,
            log_key.key_id,
            &log.sign(text.as_bytes()).to_bytes()
        )
    );
    for (i, time) in [1u64, 1_767_139_200, i64::MAX as u64]
        .into_iter()
        .enumerate()
    {
        let w = signing_key(50 + i as u8);
        let wkey = VerifierKey::new(
            "witness.example/w",
            KeyKind::Cosignature,
            w.verifying_key().to_bytes(),
        )
        .unwrap();
        let theirs = CosigV1::new("witness.example/w", w.clone(), time);
        assert_eq!(theirs.id, their_id(wkey.key_id));
        // Ours → theirs.
        let sig = w.sign(&cosignature::signed_message(&text, time)).to_bytes();
        let bytes = format!(
            "{signed}{}",
            cosignature::line(&wkey.name, wkey.key_id, time, &sig)
        );
        let n = TheirNote::from_bytes(bytes.as_bytes()).unwrap();
        let known = VerifierList::new(vec![Box::new(CosigV1::new(
            "witness.example/w",
            w.clone(),
            0,
        ))]);
        let (verified, unverified) = n.verify(&known).unwrap();
        assert_eq!((verified.len(), unverified.len()), (1, 1));
        // Theirs → ours.
        let mut n = TheirNote::from_bytes(signed.as_bytes()).unwrap();
        n.add_sigs(&[&theirs]).unwrap();
        let ours = Note::parse(&n.to_bytes()).unwrap();
        assert_eq!(cosignature::verify(&ours, &wkey), Ok(time));
        ours.verify(&log_key).unwrap();
    }
}

#[test]
fn checkpoints_agree() {
    let roots = [[0u8; 32], [0xff; 32], merkle::leaf_hash(b"a")];
    for (i, origin) in ["example.com/log", "o", "ünï code/with spaces"]
        .iter()
        .enumerate()
    {
        for size in [0u64, 1, 255, 256, 20852163, u64::MAX] {
            for ext in ["", "one\n", "one\ntwo\n"] {
                let root = roots[i];
                let theirs =
                    tlog_tiles::Checkpoint::new(origin, size, tlog_tiles::Hash(root), ext).unwrap();
                let text = String::from_utf8(theirs.to_bytes()).unwrap();
                let ours = Checkpoint::parse(&text).unwrap();
                assert_eq!(
                    (ours.origin.as_str(), ours.size, ours.root),
                    (*origin, size, root)
                );
                assert_eq!(ours.extensions.concat(), ext.replace('\n', ""));
                assert_eq!(ours.body(), text);
                let back = tlog_tiles::Checkpoint::from_bytes(ours.body().as_bytes()).unwrap();
                assert_eq!(back, theirs);
            }
        }
    }
    let root = STANDARD.encode([7u8; 32]);
    let cases = [
        format!("o\n1\n{root}\n"),
        format!("o\n1\n{root}\ne\n"),
        format!("\n1\n{root}\n"),
        format!("o\n01\n{root}\n"),
        format!("o\n+1\n{root}\n"),
        format!("o\n-0\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\n1\n{}\n", root.trim_end_matches('=')),
        format!("o\n1\n{}\n", STANDARD.encode([7u8; 31])),
        format!("o\n1\n{root}"),
        format!("o\n1\n{root}\n\n"),
        format!("o\n1\n{root}\na\n\nb\n"),
        "o\n1\n".to_owned(),
        "o\n1".to_owned(),
        String::new(),
    ];
    for c in &cases {
        assert_eq!(
            Checkpoint::parse(c).is_ok(),
            tlog_tiles::Checkpoint::from_bytes(c.as_bytes()).is_ok(),
            "{c:?}"
        );
    }
}

/// Their hash storage (Go's tlog layout: every complete subtree, in append order).
struct Store(Vec<tlog_tiles::Hash>);

impl HashReader for Store {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

/// A log of `n` entries kept both ways: their storage, and our complete subtrees.
fn build(n: u64) -> (Store, HashMap<NodeId, Hash>, Vec<Hash>) {
    let mut store = Store(Vec::new());
    let mut ours = HashMap::new();
    let mut leaves = Vec::new();
    for i in 0..n {
        let entry = format!("entry {i}");
        let hs = tlog_tiles::stored_hashes(i, entry.as_bytes(), &store).unwrap();
        store.0.extend(hs);
        let leaf = merkle::leaf_hash(entry.as_bytes());
        for (id, h) in merkle::appended(i, &[leaf], &mut |id| ours[&id]) {
            ours.insert(id, h);
        }
        leaves.push(leaf);
    }
    assert_eq!(store.0.len() as u64, tlog_tiles::stored_hash_count(n));
    (store, ours, leaves)
}

fn hashes(v: &[tlog_tiles::Hash]) -> Vec<Hash> {
    v.iter().map(|h| h.0).collect()
}

fn check_size(
    store: &Store,
    ours: &HashMap<NodeId, Hash>,
    leaves: &[Hash],
    size: u64,
    step: usize,
) {
    let mut get = |id: NodeId| ours[&id];
    let root = merkle::tree_root(size, &mut get);
    assert_eq!(
        tlog_tiles::tree_hash(size, store).unwrap().0,
        root,
        "root {size}"
    );
    let th = tlog_tiles::Hash(root);
    for index in (0..size).step_by(step) {
        let proof: Vec<Hash> = merkle::inclusion_ranges(index, size)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| merkle::range_hash(lo, hi, &mut get))
            .collect();
        let theirs = tlog_tiles::prove_record(size, index, store).unwrap();
        assert_eq!(hashes(&theirs), proof, "inclusion {index} in {size}");
        let leaf = leaves[index as usize];
        tlog_tiles::check_record(&theirs, size, th, index, tlog_tiles::Hash(leaf)).unwrap();
        merkle::verify_inclusion(&leaf, index, size, &hashes(&theirs), &root).unwrap();
    }
    for old in (1..=size).step_by(step) {
        let old_root = merkle::tree_root(old, &mut get);
        let proof: Vec<Hash> = merkle::consistency_ranges(old, size)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| merkle::range_hash(lo, hi, &mut get))
            .collect();
        let theirs = tlog_tiles::prove_tree(size, old, store).unwrap();
        assert_eq!(hashes(&theirs), proof, "consistency {old} -> {size}");
        tlog_tiles::check_tree(&theirs, size, th, old, tlog_tiles::Hash(old_root)).unwrap();
        merkle::verify_consistency(old, size, &old_root, &root, &hashes(&theirs)).unwrap();
        if old < size {
            // A wrong old root fails in both.
            let wrong = merkle::node_hash(&old_root, &old_root);
            assert!(merkle::verify_consistency(old, size, &wrong, &root, &proof).is_err());
            assert!(
                tlog_tiles::check_tree(&theirs, size, th, old, tlog_tiles::Hash(wrong)).is_err()
            );
        }
    }
}

#[test]
fn roots_and_proofs_agree_up_to_300() {
    let (store, ours, leaves) = build(300);
    // The same complete subtrees, at the same coordinates.
    for (id, h) in &ours {
        let i = tlog_tiles::stored_hash_index(id.level, id.index);
        assert_eq!(store.0[i as usize].0, *h, "{id:?}");
    }
    for size in 1..=300u64 {
        assert_eq!(
            merkle::root(&leaves[..size as usize]),
            merkle::tree_root(size, &mut |id| ours[&id])
        );
        check_size(&store, &ours, &leaves, size, 1);
    }
}

#[test]
fn roots_and_proofs_agree_for_larger_trees() {
    let (store, ours, leaves) = build(70_001);
    for size in [
        511u64, 512, 513, 4095, 4096, 4097, 65_535, 65_536, 65_537, 70_000, 70_001,
    ] {
        check_size(&store, &ours, &leaves, size, 997);
    }
}

/// Their Go-style path (`tile/8/<L>/…`, `tile/8/data/…`) in C2SP spelling.
fn c2sp_path(t: &Tile) -> String {
    let p = t.path();
    let rest = p.strip_prefix("tile/8/").unwrap();
    match rest.strip_prefix("data/") {
        Some(r) => format!("tile/entries/{r}"),
        None => format!("tile/{rest}"),
    }
}

#[test]
fn tiles_agree() {
    let (store, ours, _) = build(70_001);
    let sizes = [
        1u64, 2, 255, 256, 257, 300, 511, 512, 513, 65_535, 65_536, 65_537, 70_000, 70_001,
    ];
    let mut prev = 0;
    for size in sizes {
        // The tiles a checkpoint at `size` needs published, as theirs computes them from the
        // previous size: each parses here, names the same tile, is within the tree, and holds
        // the same hashes.
        for t in Tile::new_tiles(8, prev, size) {
            let path = c2sp_path(&t);
            let p = TilePath::parse(&path).unwrap();
            assert_eq!(p.to_string(), path);
            assert_eq!(p.kind, TileKind::Hashes { level: t.level() });
            assert_eq!(p.index, t.level_index());
            assert_eq!(p.count(), u64::from(t.width()));
            assert!(p.within(size), "{path} within {size}");
            let data: Vec<u8> = p.nodes().iter().flat_map(|id| ours[id]).collect();
            assert_eq!(t.read_data(&store).unwrap(), data, "{path}");
            assert_eq!(Tile::from_path(&t.path()).unwrap(), t);
            // The entry bundle of a level-0 tile has the same name, with "entries".
            if t.level() == 0 {
                let mut d = t;
                d.set_is_data();
                let e = TilePath::parse(&c2sp_path(&d)).unwrap();
                assert_eq!(e.kind, TileKind::Entries);
                assert_eq!((e.index, e.width), (p.index, p.width));
                assert!(e.within(size));
            }
        }
        // Every tile of the tree (from 0): the same set as the spec's formula.
        let mut all: Vec<String> = Tile::new_tiles(8, 0, size).iter().map(c2sp_path).collect();
        all.sort();
        let mut want = Vec::new();
        for level in 0u8..8 {
            let n = size >> (8 * u32::from(level));
            for i in 0..n / 256 {
                want.push(
                    TilePath {
                        kind: TileKind::Hashes { level },
                        index: i,
                        width: None,
                    }
                    .to_string(),
                );
            }
            if !n.is_multiple_of(256) {
                want.push(
                    TilePath {
                        kind: TileKind::Hashes { level },
                        index: n / 256,
                        width: Some((n % 256) as u16),
                    }
                    .to_string(),
                );
            }
        }
        want.sort();
        assert_eq!(all, want, "tiles of {size}");
        prev = size;
    }
    // Paths both refuse. (`.p/0` is refused here too, but panics in tlog_tiles 0.2.0's
    // from_path, so it is not asked there.)
    for bad in [
        "tile/8/0/x000/001",
        "tile/8/0/001.p/256",
        "tile/8/0/1",
        "tile/8/0/001.p/07",
    ] {
        assert!(Tile::from_path(bad).is_err(), "{bad}");
        assert!(
            TilePath::parse(&bad.replace("tile/8/", "tile/")).is_err(),
            "{bad}"
        );
    }
    assert!(TilePath::parse("tile/0/001.p/0").is_err());
}
