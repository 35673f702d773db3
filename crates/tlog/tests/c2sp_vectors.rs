//! The examples and test vectors of the C2SP specs (signed-note, tlog-checkpoint,
//! tlog-cosignature, tlog-witness, tlog-tiles), of Go's golang.org/x/mod/sumdb/note tests, and
//! of the reference witness (FiloSottile/sunlight, whose add-checkpoint vectors come from
//! torchwood's litewitness), plus round trips and every refusal of the witness protocol.
//!
//! Sources, for re-checking: C2SP/C2SP @ 5ba5ee8; x/mod note_test.go (as ported in the
//! signed_note crate's tests); sunlight @ ed0bc38 `internal/witness/witness_test.go` and
//! `cmd/skylight/testdata/witness{,2}/`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use lavabeacon_tlog::checkpoint::Checkpoint;
use lavabeacon_tlog::note::{
    key_id, signature_line, KeyKind, Note, NoteError, VerifierKey, MAX_NOTE_BYTES, MAX_SIGNATURES,
};
use lavabeacon_tlog::tile::{TileKind, TilePath};
use lavabeacon_tlog::witness::{
    cosign_response, decide, origin_hash, parse_cosign_response, parse_size_body, AddCheckpoint,
    WitnessRefusal, MAX_BODY_BYTES,
};
use lavabeacon_tlog::{cosignature, merkle, Hash, NodeId};

fn b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap()
}

fn hash(s: &str) -> Hash {
    b64(s).try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// signed-note

/// signed-note.md, "Verifier keys / Example".
#[test]
fn signed_note_spec_example_verifies() {
    let key =
        VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .unwrap();
    assert_eq!(key.name, "example.com/foo");
    assert_eq!(key.kind, KeyKind::Ed25519);
    assert_eq!(key.key_id, [0x53, 0x0d, 0x90, 0x3a]);
    assert_eq!(key.key_id, key_id(&key.name, key.kind, &key.public_key));
    let msg = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let note = Note::parse(msg.as_bytes()).unwrap();
    assert_eq!(note.text, "This is an example message.\n");
    note.verify(&key).unwrap();
    assert_eq!(note.to_bytes(), msg.as_bytes());
    assert_eq!(
        key.to_vkey(),
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    );
    // The same key as a cosignature key has another id, so it does not match the line.
    let as_cosigner = VerifierKey::new(&key.name, KeyKind::Cosignature, key.public_key).unwrap();
    assert_ne!(as_cosigner.key_id, key.key_id);
    assert!(matches!(
        cosignature::verify(&note, &as_cosigner),
        Err(NoteError::NotSigned { .. })
    ));
}

/// signed-note.md's opening example: parses (its key is not published).
#[test]
fn signed_note_spec_intro_example_parses() {
    let msg = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
    let note = Note::parse(msg.as_bytes()).unwrap();
    // The blank line inside the poem stays in the text: the split is at the last one.
    assert_eq!(
        note.text,
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(note.signatures[0].signature.len(), 64);
    assert_eq!(note.to_bytes(), msg.as_bytes());
}

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const NEUMANN_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// Go's x/mod/sumdb/note tests: the PeterNeumann and EnochRoot keys and signatures.
#[test]
fn go_note_vectors_sign_and_verify() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();

    // The private key's seed signs the text into exactly Go's line (Ed25519 is deterministic).
    let seed = b64(PETER_SKEY.splitn(5, '+').last().unwrap());
    assert_eq!(seed[0], KeyKind::Ed25519.byte());
    let sk = SigningKey::from_bytes(&seed[1..].try_into().unwrap());
    assert_eq!(sk.verifying_key().to_bytes(), peter.public_key);
    let sig = sk.sign(NEUMANN_TEXT.as_bytes()).to_bytes();
    assert_eq!(
        signature_line("PeterNeumann", peter.key_id, &sig),
        PETER_SIG
    );

    let both = Note::parse(format!("{NEUMANN_TEXT}\n{PETER_SIG}{ENOCH_SIG}").as_bytes()).unwrap();
    assert_eq!(both.text, NEUMANN_TEXT);
    both.verify(&peter).unwrap();
    both.verify(&enoch).unwrap();

    // Go's three-fold duplicate lines: every one is checked, all verify.
    let dup = format!("{NEUMANN_TEXT}\n{PETER_SIG}{PETER_SIG}{PETER_SIG}{ENOCH_SIG}");
    Note::parse(dup.as_bytes()).unwrap().verify(&peter).unwrap();

    // Go's "invalid signature": four characters inserted into the base64.
    let invalid = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let n = Note::parse(format!("{NEUMANN_TEXT}\n{invalid}").as_bytes()).unwrap();
    assert!(matches!(
        n.verify(&peter),
        Err(NoteError::InvalidSignature { .. })
    ));
    // A bad line by a key makes the note fail for that key even when a good one is there too.
    let n = Note::parse(format!("{NEUMANN_TEXT}\n{PETER_SIG}{invalid}").as_bytes()).unwrap();
    assert!(matches!(
        n.verify(&peter),
        Err(NoteError::InvalidSignature { .. })
    ));
    // …but not for another key, whose lines are all fine.
    let n = Note::parse(format!("{NEUMANN_TEXT}\n{invalid}{ENOCH_SIG}").as_bytes()).unwrap();
    n.verify(&enoch).unwrap();

    // A line with the right id but another name, or the right name but another id, is another
    // key's: ignored, so the note is not signed by Peter.
    let misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
    let wrong_id = PETER_SIG.replace("x08g", "xxxx");
    for other in [misnamed, wrong_id] {
        let n = Note::parse(format!("{NEUMANN_TEXT}\n{other}").as_bytes()).unwrap();
        assert!(matches!(n.verify(&peter), Err(NoteError::NotSigned { .. })));
    }

    // Go's malformed messages.
    let bad: Vec<Vec<u8>> = vec![
        NEUMANN_TEXT.into(),
        format!("\n{NEUMANN_TEXT}").into(),
        format!("{NEUMANN_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]).into(),
        format!("\x01{NEUMANN_TEXT}\n{PETER_SIG}").into(),
        [&[0xff][..], format!("{NEUMANN_TEXT}\n{PETER_SIG}").as_bytes()].concat(),
        format!("{NEUMANN_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
    ];
    for m in bad {
        assert!(
            Note::parse(&m).is_err(),
            "{:?}",
            String::from_utf8_lossy(&m)
        );
    }

    // At most 100 signatures, as Go.
    assert_eq!(MAX_SIGNATURES, 100);
    let hundred = format!("{NEUMANN_TEXT}\n{}", PETER_SIG.repeat(100));
    Note::parse(hundred.as_bytes())
        .unwrap()
        .verify(&peter)
        .unwrap();
    let many = format!("{NEUMANN_TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        Note::parse(many.as_bytes()),
        Err(NoteError::TooManySignatures)
    );
}

#[test]
fn notes_refuse_what_the_spec_forbids() {
    let ok = format!("{NEUMANN_TEXT}\n{PETER_SIG}");
    Note::parse(ok.as_bytes()).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (ok.replace("problem,\n", "problem,\r\n"), "carriage return"),
        (ok.replace("think ", "think\t"), "tab"),
        (ok.replace("\n\n", "\n"), "no blank line"),
        (ok.trim_end().to_owned(), "no final newline"),
        (format!("{NEUMANN_TEXT}\n"), "no signature"),
        (format!("{NEUMANN_TEXT}\n\n"), "an empty signature line"),
        (ok.replace('\u{2014}', "-"), "a hyphen for the em dash"),
        (ok.replace('\u{2014}', "\u{2013}"), "an en dash"),
        (
            ok.replace("\u{2014} ", "\u{2014}"),
            "no space after the dash",
        ),
        (ok.replace("\u{2014} ", "\u{2014}  "), "an empty name"),
        (ok.replace("Neumann x", "Neumann  x"), "two spaces"),
        (
            ok.replace("Neumann x", "Neumann\u{a0}x"),
            "a no-break space",
        ),
        (
            ok.replace("PeterNeumann", "Peter+Neumann"),
            "a plus in the name",
        ),
        (ok.replace("AM=\n", "AM\n"), "missing padding"),
        (ok.replace("AM=\n", "AM=x\n"), "junk after padding"),
        (ok.replace("AM=\n", "AM= \n"), "trailing space"),
        (ok.replace("x08go/ZJ", "x08go_ZJ"), "url-safe alphabet"),
        (
            format!("{NEUMANN_TEXT}\n\u{2014} PeterNeumann AQIDBA==\n"),
            "a key id alone",
        ),
    ];
    for (m, why) in cases {
        assert!(Note::parse(m.as_bytes()).is_err(), "accepted: {why}");
    }
    // Size: the text alone may not push the note over the limit.
    let big = format!("{}\n\n{PETER_SIG}", "a".repeat(MAX_NOTE_BYTES));
    assert!(matches!(
        Note::parse(big.as_bytes()),
        Err(NoteError::TooLarge(_))
    ));
    // Unicode elsewhere and DEL are fine.
    let fine = format!("ünï\x7fcode\n\n{PETER_SIG}");
    Note::parse(fine.as_bytes()).unwrap();
    // A blank line between signature lines makes those before it part of the text (the
    // split is at the last blank line), as in Go.
    let n = Note::parse(format!("{ok}\n{ENOCH_SIG}").as_bytes()).unwrap();
    assert_eq!(n.text, format!("{NEUMANN_TEXT}\n{PETER_SIG}"));
    assert_eq!(n.signatures.len(), 1);
}

#[test]
fn verifier_keys_are_checked() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    assert_eq!(peter.to_vkey(), PETER_VKEY);
    assert_eq!(
        VerifierKey::new("PeterNeumann", KeyKind::Ed25519, peter.public_key).unwrap(),
        peter
    );
    let bad = [
        PETER_VKEY.replace("c74f20a3", "C74F20A3"), // uppercase hex
        PETER_VKEY.replace("c74f20a3", "c74f20a4"), // wrong id
        PETER_VKEY.replace("c74f20a3", "c74f20a"),  // short id
        PETER_VKEY.replace("PeterNeumann", "Peter Neumann"), // bad name
        PETER_VKEY.replace("+ARpc", "+AhpC"),       // type 0x02
        PETER_VKEY.replace("W", ""),                // short key, bad base64
        "PeterNeumann+c74f20a3".to_owned(),
        "PeterNeumann".to_owned(),
        format!("{PETER_VKEY}AAAA"), // 36 bytes
    ];
    for v in &bad {
        assert!(VerifierKey::parse(v).is_err(), "{v}");
    }
    assert!(matches!(
        VerifierKey::parse(&PETER_VKEY.replace("c74f20a3", "c74f20a4")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    // A supported type byte with an id that matches: 0x02 is refused as unsupported.
    let raw = [&[0x02u8][..], &peter.public_key].concat();
    let h = sha2_id("PeterNeumann", &raw);
    let v = format!("PeterNeumann+{}+{}", hex(&h), STANDARD.encode(&raw));
    assert_eq!(
        VerifierKey::parse(&v),
        Err(NoteError::UnsupportedKeyType(2))
    );
    // Names are checked on construction too.
    assert!(VerifierKey::new("a b", KeyKind::Ed25519, peter.public_key).is_err());
    assert!(VerifierKey::new("", KeyKind::Cosignature, peter.public_key).is_err());
}

fn sha2_id(name: &str, type_and_key: &[u8]) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    d.update(name.as_bytes());
    d.update(b"\n");
    d.update(type_and_key);
    d.finalize()[..4].try_into().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// tlog-checkpoint and tlog-cosignature

const SOFA_BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SOFA_LOG_SIG: &str = "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

/// tlog-checkpoint.md's and tlog-cosignature.md's examples.
#[test]
fn checkpoint_and_cosignature_spec_examples() {
    let note = Note::parse(format!("{SOFA_BODY}\n{SOFA_LOG_SIG}").as_bytes()).unwrap();
    let cp = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20852163);
    assert_eq!(
        cp.root,
        hash("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    );
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.body(), SOFA_BODY);
    assert_eq!(note.signatures[0].key_id, [0x03, 0x3d, 0xe0, 0xae]);

    // The cosigned example: the witness line is key id ‖ timestamp ‖ signature, and its
    // timestamp is the one of the spec's signed-message example, which we reproduce exactly.
    let cosigned = format!("{SOFA_BODY}\n{SOFA_LOG_SIG}\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n");
    let note = Note::parse(cosigned.as_bytes()).unwrap();
    assert_eq!(note.to_bytes(), cosigned.as_bytes());
    let w = &note.signatures[1];
    assert_eq!(w.name, "witness.example.com/w1");
    assert_eq!(w.signature.len(), 72);
    let ts = u64::from_be_bytes(w.signature[..8].try_into().unwrap());
    assert_eq!(ts, 1679315147);
    assert_eq!(
        cosignature::signed_message(&cp.body(), ts),
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
    assert_eq!(
        cosignature::encode(w.key_id, ts, &w.signature[8..].try_into().unwrap()),
        [&w.key_id[..], &w.signature].concat()
    );
}

#[test]
fn checkpoints_round_trip_and_refuse_what_the_spec_forbids() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    for text in [
        format!("o\n0\n{root}\n"),
        format!("example.com/log\n18446744073709551615\n{root}\n"),
        format!("example.com/log\n1\n{root}\next one\next two\n"),
        format!("ünï code\n1\n{root}\n"),
    ] {
        let cp = Checkpoint::parse(&text).unwrap();
        assert_eq!(cp.body(), text);
    }
    let cp = Checkpoint::parse(&format!("example.com/log\n1\n{root}\next one\next two\n")).unwrap();
    assert_eq!(cp.extensions, ["ext one", "ext two"]);
    for (text, why) in [
        (format!("\n1\n{root}\n"), "empty origin"),
        (format!("o\n01\n{root}\n"), "leading zero"),
        (format!("o\n00\n{root}\n"), "00"),
        (format!("o\n+1\n{root}\n"), "sign"),
        (format!("o\n1 \n{root}\n"), "trailing space"),
        (format!("o\n18446744073709551616\n{root}\n"), "over u64"),
        (format!("o\n0x10\n{root}\n"), "hex"),
        (
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            "unpadded",
        ),
        (
            format!("o\n1\n{}\n", STANDARD.encode([1u8; 31])),
            "31 bytes",
        ),
        (
            format!("o\n1\n{}\n", STANDARD.encode([1u8; 33])),
            "33 bytes",
        ),
        (
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(),
            "padding bits",
        ),
        (format!("o\n1\n{root}"), "no final newline"),
        (format!("o\n1\n{root}\n\n"), "empty extension"),
        (
            format!("o\n1\n{root}\na\n\nb\n"),
            "empty line amid extensions",
        ),
        ("o\n1\n".to_owned(), "two lines"),
        (format!("o\r\n1\n{root}\n"), "carriage return"),
    ] {
        assert!(Checkpoint::parse(&text).is_err(), "accepted: {why}");
    }
}

/// Real cosignatures by the reference witness (sunlight's skylight test data): two witnesses
/// and a mirror, each a `cosignature/v1` key (type 0x04) with its vkey.
#[test]
fn reference_witness_cosignatures_verify() {
    let rome = "rome2026h1.example.org\n300\nlCkHUpkmVBEms2r2T1K6Og69+wUuuN3MIEW1/ezu2v0=\n";
    let milan = "milan2026h1.example.org\n300\nlCkHUpkmVBEms2r2T1K6Og69+wUuuN3MIEW1/ezu2v0=\n";
    let rome_mirror = "rome2026h1.example.org\n300\ngw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU=\n";
    // The log's own line is an RFC 6962 TreeHeadSignature (type 0x05): unknown here, ignored.
    let w1 = format!("{rome}\n\u{2014} rome2026h1.example.org kVB1JgAAAZtxtEwABAMARzBFAiEAi+mTa2xjL1IdWpH82OeciGsGvwRAP+f1WkfKaSZCfFECIHoNPZ/Q3y6UNzvKOO9cuLr6V16vPNfhwhle9f6r5H/Z\n\u{2014} witness.example.org uKLPIAAAAABpVGeAhm2bOvKc3LaB9PFN1ruG19Y5yqslmcAAbhftnn1Zznmo0LXFZq4LGvqKqLX8jWlwLKasxEGTLIqAVusneCBmBw==\n");
    let w2 = format!("{milan}\n\u{2014} witness2.example.org LlW4lgAAAABpVGeAN/uFWqfjdU94rrKxFycCggM0Sa1L5tOJCJdYBwJ41CQsgKWA6B0+vywok3cPI3JIzuPeR+VotuYe/eNy0+30Dw==\n");
    let m = format!("{rome_mirror}\n\u{2014} mirror.example.org P7FI7wAAAABpVGeAjA1S4pJm6MbcXjX7UUImu4azZtrfcVW2uyr/LXIYlwEJzXC0N0EiZkbqfLdXt/4gVEEuGmxJjAfXKMCISpsJAg==\n");
    let k1 = VerifierKey::parse(
        "witness.example.org+b8a2cf20+BFLN3yikSfFkVAJtrnh/CiY3Zozkoy7clp+P7XB28qUN",
    )
    .unwrap();
    let k2 = VerifierKey::parse(
        "witness2.example.org+2e55b896+BIZ7fpceQWd60IfqQeS9IAnmNOCZjMDne8lZuguz/bi9",
    )
    .unwrap();
    let km = VerifierKey::parse(
        "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O",
    )
    .unwrap();
    for k in [&k1, &k2, &km] {
        assert_eq!(k.kind, KeyKind::Cosignature);
    }
    let n1 = Note::parse(w1.as_bytes()).unwrap();
    let n2 = Note::parse(w2.as_bytes()).unwrap();
    let nm = Note::parse(m.as_bytes()).unwrap();
    assert_eq!(cosignature::verify(&n1, &k1), Ok(1767139200));
    assert_eq!(cosignature::verify(&n2, &k2), Ok(1767139200));
    assert_eq!(cosignature::verify(&nm, &km), Ok(1767139200));
    // Another witness's key finds nothing; a note key cannot check a cosignature, nor the reverse.
    assert!(matches!(
        cosignature::verify(&n1, &k2),
        Err(NoteError::NotSigned { .. })
    ));
    assert!(matches!(
        n1.verify(&k1),
        Err(NoteError::WrongKeyKind { .. })
    ));
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    assert!(matches!(
        cosignature::verify(&n1, &peter),
        Err(NoteError::WrongKeyKind { .. })
    ));
    // The same line on another checkpoint (the milan one, same size and root) fails.
    let moved = Note {
        text: milan.to_owned(),
        signatures: n1.signatures.clone(),
    };
    assert!(matches!(
        cosignature::verify(&moved, &k1),
        Err(NoteError::InvalidSignature { .. })
    ));
    // A changed timestamp fails.
    let mut later = n1.clone();
    later.signatures[1].signature[7] ^= 1;
    assert!(matches!(
        cosignature::verify(&later, &k1),
        Err(NoteError::InvalidSignature { .. })
    ));
    // A plain Ed25519 note signature under a cosigner's name and id fails (wrong length).
    let mut short = n1.clone();
    short.signatures[1].signature.truncate(64);
    assert!(matches!(
        cosignature::verify(&short, &k1),
        Err(NoteError::InvalidSignature { .. })
    ));
}

/// Cosignatures made here verify, and refuse timestamps over 2^63 − 1.
#[test]
fn cosignatures_round_trip() {
    let sk = SigningKey::from_bytes(&[7; 32]);
    let key = VerifierKey::new(
        "witness.example/w",
        KeyKind::Cosignature,
        sk.verifying_key().to_bytes(),
    )
    .unwrap();
    assert_eq!(VerifierKey::parse(&key.to_vkey()).unwrap(), key);
    let mut note = Note::parse(format!("{SOFA_BODY}\n{SOFA_LOG_SIG}").as_bytes()).unwrap();
    for ts in [
        1u64,
        1_700_000_000,
        cosignature::MAX_TIMESTAMP,
        cosignature::MAX_TIMESTAMP + 1,
    ] {
        let sig = sk
            .sign(&cosignature::signed_message(&note.text, ts))
            .to_bytes();
        let line = cosignature::line(&key.name, key.key_id, ts, &sig);
        let mut bytes = note.to_bytes();
        bytes.extend_from_slice(line.as_bytes());
        let n = Note::parse(&bytes).unwrap();
        let got = cosignature::verify(&n, &key);
        if ts <= cosignature::MAX_TIMESTAMP {
            assert_eq!(got, Ok(ts));
        } else {
            assert!(matches!(got, Err(NoteError::InvalidSignature { .. })));
        }
    }
    // Two cosignatures by one key: both checked, the latest time returned.
    for ts in [5u64, 9] {
        let sig = sk
            .sign(&cosignature::signed_message(&note.text, ts))
            .to_bytes();
        let line = cosignature::line(&key.name, key.key_id, ts, &sig);
        note = Note::parse(&[note.to_bytes(), line.into_bytes()].concat()).unwrap();
    }
    assert_eq!(cosignature::verify(&note, &key), Ok(9));
}

// ---------------------------------------------------------------------------------------------
// tlog-tiles

/// The tiles a tree of `size` has, by the spec's formula: at level L, `floor(size / 256^L)`
/// hashes, in full tiles of 256 and a partial tile of the rest.
fn spec_tiles(size: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    for level in 0u8..8 {
        let n = size >> (8 * u32::from(level));
        if n == 0 {
            break;
        }
        for i in 0..n / 256 {
            out.push(TilePath {
                kind: TileKind::Hashes { level },
                index: i,
                width: None,
            });
        }
        if !n.is_multiple_of(256) {
            out.push(TilePath {
                kind: TileKind::Hashes { level },
                index: n / 256,
                width: Some((n % 256) as u16),
            });
        }
    }
    out
}

/// tlog-tiles.md: the tiles of trees of 70,000 and 256 leaves, and the path example.
#[test]
fn tiles_spec_examples() {
    let t = spec_tiles(70_000);
    let count = |level: u8, full: bool| {
        t.iter()
            .filter(|p| p.kind == TileKind::Hashes { level } && p.width.is_none() == full)
            .count()
    };
    assert_eq!(
        (count(0, true), count(1, true), count(2, true)),
        (273, 1, 0)
    );
    let widths: Vec<_> = t.iter().filter_map(|p| p.width).collect();
    assert_eq!(widths, [112, 17, 1]);
    let paths: Vec<String> = spec_tiles(256).iter().map(|p| p.to_string()).collect();
    assert_eq!(paths, ["tile/0/000", "tile/1/000.p/1"]);
    for size in [1u64, 255, 256, 257, 65_535, 65_536, 70_000, 16_777_217] {
        for p in spec_tiles(size) {
            assert!(p.within(size), "{p} within {size}");
            assert_eq!(TilePath::parse(&p.to_string()).unwrap(), p);
            // A partial tile one hash wider is beyond the tree.
            if let Some(w) = p.width {
                let wider = TilePath {
                    width: (w < 255).then_some(w + 1),
                    ..p
                };
                assert!(!wider.within(size), "{wider} within {size}");
            }
        }
    }
    // The spec's index example, 1234067 → x001/x234/067.
    let p = TilePath::parse("tile/4/x001/x234/067.p/1").unwrap();
    assert_eq!((p.index, p.width), (1234067, Some(1)));
    assert_eq!(
        TilePath::parse("tile/entries/x001/x234/067").unwrap().kind,
        TileKind::Entries
    );
}

const SUNLIGHT_PARTIAL_TILE: &str = "rUAG1i3BEkDkzWyMjguVIMzPm78bih9kodDEVwxQklsTyEq3FLsCcrWx/8195x/FhlrUIB/ymxJkTThmWUJg/YVsSlYAc8Gs/l0fqg7Hu/H8XhuHrNYfPB5Icfz41MGkZw9BKSdVRxGuaRVZgJpOVIAoqek533CSn8WOXf1K0BhHuzQxyozEGr6nfUqywA/0nkweR0rkoCq8Que9WLBgMVtih0BCul4kVtmv9w12MMXWbpiiYtde1fHvvphtoGLv8pp9jtqvj9xufZD4R+qvJCTL+fqBah0oP1kQejIXdvTc0kjAB0M631zxxB8/62TkVeZxy6AxpOLEzpwKLkobMwbx0RwEo20dz6UyeW1wxNJAnKrPbHyi/33mGBKWxTkVkTqGQBWpAwhyga6Os6k6EaO8GY5WgxvZzydsTSlEfy1KlFa0NIiHrKlWiLNlf4oagZonHBISxD53n0/ryp/KYksgWXWvIGzISB3Cjc3WRiTKZGa28fUmVJpvO/hpEkxKTYvKhtICE9kE3Qv+d/kvA2fe2WqsDvTDHy9pYktaESSqN3iMHNmOrXLGInbJEAhsGVsJXz/ShQ1OCNiZ8yFDWJzVj/rl67+YK5SbMEdA2gn5g5WCJXcztUwT+4mnzmZH5vmVxcfgIeRGNA2UMl2iBbLaIVXc0/pi+W4PSZNi0o9gPTS0BoWcma+AIqQ8kNsSOGTedBjXgw1ae22E4aouOa1eWVSe4jTF74+JopLSTBP9EBaixWhlHBl177MNqTLZRRFCfYaRqQX0pkKY4I/25vAR76eyRmxYb5ajOCL/Hu3e+NScQTyIp23rNLwrjXvqM8xGc6ggNoxxBExd8X5xmxjmUm58rtTRgVSu7yl0qEdg/L5k4PLjS0jcldcD+kjR17GcAJ0y5XoMV8tRMgca3rcK5t8Nh82OB3GsXa3tP9YLwPp+SC0jQ2Kmn2CcxM4zZyI+medF8e5JV8em36WFmAk3muKoQLaLdK5+CX9WUIv9LmTDyJzvgtt5p+iA421EPW7rqgEZIRPbMZ593Lyy6q6eX4ITOWtXDkAC+9DvPaq1iRqg1cQeFfH7B0AEKSaEsLCcfoWfCm7skcMyJEckv43zCFLT1/j6CB00/Tqkfwt4j8dT8mJBHk+BvVbYl2kXzLTfEC0KsYpOGje6uTog3iDF3OpVGN/sO9BtTei78nzuxvftouf5tIR5L0M9bqP3kqd9St4oLAl/0oVUXrfuY0KPOp5Kf/ozrpavNJxmuZHieH+pevo2vi4/+mK+8PsPPLjRpY1xOEoJ0Sxs8B+OKUVJpx3EGnUT2oVGL3sgi/GKIVMGef3uHWY2kdZIcdcjNZXIEfkPJ+ui08SJMpnXzJZrtjXCGqKin3+dLLvte3GaDSsD0aanblWVo1s9Rhzqdrpbho8N3pfucBqwuJ/msdOFn6JArPbGsiLxQ140Lnc0Y+/nFjArGkJCTkaiH7JDC6Z7ojQcu4R5KS5S+gVtLuRkBPF/AORWkQI8/QnujlrDa1FvssMH4kW6xjBQC5bkb2qJ69/SbgNOqyq1w3BHWUvmx/JmxTL9Tb5IuTDsRnLwCrsD6cd6stsGm8oCiQ2v5AdQmSd4j0TJNzlCTGdu6wIGZi1F1rlKv+uyDjW86mKOWUrvL+QPGVV17WZwYa0gFcREEDz30gn6AFtVxZWDMER9d6IPVc6T+Odj648TilpekzVXNznFWPU7oZzLMpl+jxLCtRNR4Lo4ucrK7XTD7TmPwLfbyUFE8fEZEKzpKziluv96zuPQWsLI/Aph5DB/oJeCE4EcZnD3TghM2hxVfAALwF5llUkBn6elkggA9ljt65ceOHRrm53Oi2SH+wEW1k73cE//sx/aQnx/2BxI2g==";

/// The reference mirror's tiles for a tree of 300 (sunlight's skylight test data):
/// `tile/1/000.p/1` (the root of the full `tile/0/000`) and `tile/0/001.p/44` fold into the
/// root of its cosigned checkpoint.
#[test]
fn reference_mirror_tiles_fold_into_the_cosigned_root() {
    let level1: Hash = hash("3JNJ+Xh+0Ahtptl/Z5xRpRmPmORW6Vsdh/o6vAEv7DE=");
    let partial = b64(SUNLIGHT_PARTIAL_TILE);
    assert_eq!(partial.len(), 44 * 32);
    let leaves: Vec<Hash> = partial.chunks(32).map(|c| c.try_into().unwrap()).collect();
    let mut get = |id: NodeId| -> Hash {
        if id.level == 8 {
            assert_eq!(id.index, 0);
            return level1;
        }
        let lo = (id.index << id.level) as usize - 256;
        merkle::root(&leaves[lo..lo + (1 << id.level)])
    };
    let root = merkle::range_hash(0, 300, &mut get);
    assert_eq!(root, hash("gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU="));
    // The tiles a tree of 300 has, named as the mirror names them.
    let names: Vec<String> = spec_tiles(300).iter().map(|p| p.to_string()).collect();
    assert_eq!(names, ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]);
    let p = TilePath::parse("tile/0/001.p/44").unwrap();
    assert_eq!(
        p.nodes().first(),
        Some(&NodeId {
            level: 0,
            index: 256
        })
    );
    assert_eq!(
        TilePath::parse("tile/1/000.p/1").unwrap().nodes(),
        [NodeId { level: 8, index: 0 }]
    );
}

// ---------------------------------------------------------------------------------------------
// tlog-witness

/// tlog-witness.md's example request and response bodies.
#[test]
fn witness_spec_examples_parse_and_round_trip() {
    let body = format!("old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\n{SOFA_BODY}\n{SOFA_LOG_SIG}\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n");
    let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
    assert_eq!(req.old_size, 20852014);
    assert_eq!(req.proof.len(), 4);
    assert_eq!(
        req.proof[3],
        hash("/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=")
    );
    assert_eq!(req.to_bytes(), body.as_bytes());
    let note = Note::parse(&req.checkpoint).unwrap();
    assert_eq!(note.text, SOFA_BODY);
    let ids: Vec<_> = note.signatures.iter().map(|s| s.key_id).collect();
    assert_eq!(ids, [[0x03, 0x3d, 0xe0, 0xae], [0xa2, 0x92, 0xea, 0x05]]);

    let response = "\u{2014} witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\u{2014} witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\u{2014} witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";
    let sigs = parse_cosign_response(response.as_bytes()).unwrap();
    assert_eq!(sigs.len(), 3);
    assert!(sigs.iter().all(|s| s.signature.len() == 72));
    let lines: Vec<String> = sigs
        .iter()
        .map(|s| signature_line(&s.name, s.key_id, &s.signature))
        .collect();
    assert_eq!(cosign_response(&lines), response.as_bytes());
    for bad in [
        "",
        "\n",
        "\u{2014} a b\n",
        "x\n",
        &format!("{}\n{}", &lines[0], &lines[1]),
    ] {
        assert!(parse_cosign_response(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(parse_size_body(b"20852014\n"), Some(20852014));
    for bad in [&b"20852014"[..], b"020\n", b"\n", b"1\n\n", b"-1\n"] {
        assert_eq!(parse_size_body(bad), None);
    }
    assert_eq!(origin_hash("example.com/behind-the-sofa").len(), 64);
}

const SIGSUM_ORIGIN: &str =
    "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562";

/// The reference witness's add-checkpoint test sequence (sunlight internal/witness, from
/// torchwood's litewitness vectors), replayed against [`decide`] with a state that a 200
/// advances: every status and the 409 body must be the reference's.
#[test]
fn reference_witness_add_checkpoint_sequence() {
    let pk: [u8; 32] = (0..32)
        .map(|i| {
            u8::from_str_radix(
                &"ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f"
                    [2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let log_key = VerifierKey::new(SIGSUM_ORIGIN, KeyKind::Ed25519, pk).unwrap();
    let sig1 = "UgIom7fPZTqpxWWhyjWduBvTvGVqsokMbqTArsQilegKoFBJQjUFAmQ0+YeSPM3wfUQMFSzVnnNuWRTYrajXpNUbIQY=";
    let sig3 = "UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6go=";
    let sig3_bad = "UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6gx=";
    let sig5 = "UgIomw/EOJmWi0i1FQsOj+etB7F8IccFam/jgd6wzRns4QPVmyEZtdvl1U2KEmLOZ/ASRcWJi0tW90dJWAShei7sDww=";
    let sig_five = "UgIom4JTC2MerrFcJ5xDcWHzRPVB6zzGBIw4OFqcKDflqjH4q4xY5vMxUxyczvdIlEwFYf7ivQU4KoWan2bLmzLx0go=";
    let cp = |origin: &str, size: &str, root: &str, sig: &str| {
        format!("{origin}\n{size}\n{root}\n\n\u{2014} {origin} {sig}\n")
    };
    let root1 = "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let root3 = "RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=";
    let root5 = "QrtXrQZCCvpIgsSmOsah7HdICzMLLyDfxToMql9WTjY=";
    let other_origin = &SIGSUM_ORIGIN.replace("562", "563");
    let p1 = "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nKgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let steps: Vec<(String, u16, &str)> = vec![
        (format!("old 0\n\n{}", cp(SIGSUM_ORIGIN, "1", root1, sig1)), 200, ""),
        (format!("old 1\n{p1}\n{}", cp(SIGSUM_ORIGIN, "3", root3, sig3_bad)), 403, ""),
        (format!("old 1\n{p1}\n{}", cp(other_origin, "3", root3, sig3)), 404, ""),
        (format!("old 1\n\n{}", cp(SIGSUM_ORIGIN, "3", root3, sig3)), 422, ""),
        (
            format!("old 1\nKgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nKgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABA=\n\n{}", cp(SIGSUM_ORIGIN, "3", root3, sig3)),
            422,
            "",
        ),
        (format!("old 1\n{p1}\n{}", cp(SIGSUM_ORIGIN, "3", root3, sig3)), 200, ""),
        (
            format!("old 1\nKgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+fUDV+k970B4I3uKrqJM4aP1lloPZP8mvr2Z4wRw2LI=\nKgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n{}", cp(SIGSUM_ORIGIN, "5", root5, sig5)),
            409,
            "3\n",
        ),
        (
            format!("old 3\nKgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nKgMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nwgiIFdZfYNv6WU1OllBKsWnLYIS/DBMqt8Uh/S4OukE=\nKgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n{}", cp(SIGSUM_ORIGIN, "5", root5, sig5)),
            200,
            "",
        ),
        (format!("old 0\n\n{}", cp(SIGSUM_ORIGIN, "5", root5, sig5)), 409, "5\n"),
        (format!("old 5\n\n{SIGSUM_ORIGIN}\n5\n{root5}\n"), 400, ""),
        (format!("old 5\n\n{}", cp(SIGSUM_ORIGIN, "five", root1, sig_five)), 400, ""),
    ];
    let mut state: Option<(u64, Hash)> = None;
    for (i, (body, want, want_body)) in steps.iter().enumerate() {
        let got = AddCheckpoint::parse(body.as_bytes()).and_then(|req| {
            decide(
                &req,
                &|o: &str| (o == SIGSUM_ORIGIN).then(|| log_key.clone()),
                &|o: &str| if o == SIGSUM_ORIGIN { state } else { None },
            )
        });
        match got {
            Ok(a) => {
                assert_eq!(*want, 200, "step {i}");
                assert_eq!(a.old, state);
                assert_eq!(a.checkpoint.body(), a.note.text);
                state = Some((a.checkpoint.size, a.checkpoint.root));
            }
            Err(r) => {
                assert_eq!(r.status(), *want, "step {i}: {r}");
                if !want_body.is_empty() {
                    assert_eq!(
                        r.body(),
                        ("text/x.tlog.size", want_body.as_bytes().to_vec())
                    );
                }
            }
        }
    }
    assert_eq!(state.map(|s| s.0), Some(5));
}

/// A log and a witness made here, for every refusal.
struct Fixture {
    log: SigningKey,
    log_key: VerifierKey,
    leaves: Vec<Hash>,
}

const ORIGIN: &str = "beacon.example/log";

impl Fixture {
    fn new() -> Fixture {
        let log = SigningKey::from_bytes(&[1; 32]);
        let log_key =
            VerifierKey::new(ORIGIN, KeyKind::Ed25519, log.verifying_key().to_bytes()).unwrap();
        let leaves = (0u64..40)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        Fixture {
            log,
            log_key,
            leaves,
        }
    }

    fn root(&self, size: u64) -> Hash {
        merkle::root(&self.leaves[..size as usize])
    }

    fn signed(&self, cp: &Checkpoint) -> Vec<u8> {
        let text = cp.body();
        let sig = self.log.sign(text.as_bytes()).to_bytes();
        format!(
            "{text}\n{}",
            signature_line(ORIGIN, self.log_key.key_id, &sig)
        )
        .into_bytes()
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.root(size),
            extensions: vec![],
        }
    }

    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        merkle::consistency_ranges(old, new)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| merkle::root(&self.leaves[lo as usize..hi as usize]))
            .collect()
    }

    fn request(&self, old: u64, new: u64) -> AddCheckpoint {
        AddCheckpoint {
            old_size: old,
            proof: self.proof(old, new),
            checkpoint: self.signed(&self.checkpoint(new)),
        }
    }

    fn decide(
        &self,
        req: &AddCheckpoint,
        state: Option<(u64, Hash)>,
    ) -> Result<lavabeacon_tlog::witness::Accepted, WitnessRefusal> {
        let key = self.log_key.clone();
        decide(
            req,
            &move |o: &str| (o == ORIGIN).then(|| key.clone()),
            &move |_: &str| state,
        )
    }

    fn status(&self, req: &AddCheckpoint, state: Option<(u64, Hash)>) -> u16 {
        match self.decide(req, state) {
            Ok(_) => 200,
            Err(r) => r.status(),
        }
    }
}

#[test]
fn witness_accepts_growth_and_the_same_tree() {
    let f = Fixture::new();
    for new in 0..=20 {
        assert_eq!(f.status(&f.request(0, new), None), 200, "0 -> {new}");
        for old in 1..=new {
            let state = Some((old, f.root(old)));
            let a = f.decide(&f.request(old, new), state).unwrap();
            assert_eq!(a.old, state);
            assert_eq!(a.origin, ORIGIN);
            assert_eq!(a.checkpoint, f.checkpoint(new));
        }
    }
    // A stored empty tree counts as size 0.
    let empty = Some((0, merkle::empty_root()));
    assert_eq!(f.status(&f.request(0, 7), empty), 200);
}

#[test]
fn witness_refusals_have_the_specs_status_codes() {
    let f = Fixture::new();
    let s = |n: u64| Some((n, f.root(n)));

    // 400: malformed bodies.
    let status = |body: &[u8]| match AddCheckpoint::parse(body) {
        Ok(req) => f.status(&req, None),
        Err(r) => r.status(),
    };
    for body in [
        &b"old 0\n"[..],
        b"old 0\n\n",
        b"",
        b"old 00\n\nx",
        b"old -1\n\nx",
        b"old  1\n\nx",
        b"olds 1\n\nx",
        b"\nold 1\n\nx",
        b"old 1\nnot-base64\n\nx",
        b"old 1\nAAAA\n\nx",
        b"old 18446744073709551616\n\nx",
        b"old 1\r\n\nx",
    ] {
        assert_eq!(status(body), 400, "{:?}", String::from_utf8_lossy(body));
    }
    // 63 proof lines parse, 64 do not.
    let line = format!("{}\n", STANDARD.encode([0u8; 32]));
    let body = format!("old 1\n{}\nx", line.repeat(63));
    assert_eq!(
        AddCheckpoint::parse(body.as_bytes()).unwrap().proof.len(),
        63
    );
    let body = format!("old 1\n{}\nx", line.repeat(64));
    assert_eq!(
        AddCheckpoint::parse(body.as_bytes()).unwrap_err().status(),
        400
    );
    // 413: too large.
    let huge = vec![b'a'; MAX_BODY_BYTES + 1];
    assert_eq!(AddCheckpoint::parse(&huge).unwrap_err().status(), 413);

    // 400: a malformed note or checkpoint.
    let mut req = f.request(0, 5);
    req.checkpoint = f.checkpoint(5).body().into_bytes();
    assert_eq!(f.status(&req, None), 400);
    let mut req = f.request(0, 5);
    let text = format!("{ORIGIN}\n05\n{}\n", STANDARD.encode(f.root(5)));
    let sig = f.log.sign(text.as_bytes()).to_bytes();
    req.checkpoint = format!("{text}\n{}", signature_line(ORIGIN, f.log_key.key_id, &sig)).into();
    assert_eq!(f.status(&req, None), 400);

    // 404: unknown origin, even with no valid signature.
    let mut other = f.checkpoint(5);
    other.origin = "other.example/log".into();
    let req = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: f.signed(&other),
    };
    assert_eq!(f.status(&req, None), 404);

    // 403: not signed by the log's key (another key under its name: another id), or signed
    // with a bad signature, even alongside a good one.
    let stranger = SigningKey::from_bytes(&[2; 32]);
    let text = f.checkpoint(5).body();
    let sid = key_id(
        ORIGIN,
        KeyKind::Ed25519,
        &stranger.verifying_key().to_bytes(),
    );
    let bad_line = signature_line(ORIGIN, sid, &stranger.sign(text.as_bytes()).to_bytes());
    let mut req = f.request(0, 5);
    req.checkpoint = format!("{text}\n{bad_line}").into();
    assert_eq!(f.status(&req, None), 403);
    let forged = signature_line(
        ORIGIN,
        f.log_key.key_id,
        &stranger.sign(text.as_bytes()).to_bytes(),
    );
    req.checkpoint = format!("{text}\n{forged}").into();
    assert_eq!(f.status(&req, None), 403);
    let good = String::from_utf8(f.signed(&f.checkpoint(5))).unwrap();
    req.checkpoint = format!("{good}{forged}").into();
    assert_eq!(f.status(&req, None), 403);
    // Unknown keys' lines beside a good signature are ignored.
    req.checkpoint = format!("{good}{bad_line}").into();
    assert_eq!(f.status(&req, None), 200);

    // 400: old size larger than the checkpoint's (checked after the signature: 403 first).
    let mut req = f.request(0, 5);
    req.old_size = 6;
    assert_eq!(f.status(&req, s(6)), 400);
    req.checkpoint = format!("{text}\n{forged}").into();
    assert_eq!(f.status(&req, s(6)), 403);

    // 409: the old size is not the witness's; never seen counts as 0.
    let r = f.decide(&f.request(3, 5), None).unwrap_err();
    assert_eq!(r, WitnessRefusal::Conflict { size: 0 });
    assert_eq!(r.body(), ("text/x.tlog.size", b"0\n".to_vec()));
    let r = f.decide(&f.request(3, 5), s(4)).unwrap_err();
    assert_eq!((r.status(), r.body().1), (409, b"4\n".to_vec()));
    assert_eq!(f.status(&f.request(0, 5), s(4)), 409);
    // The 409 comes before any look at the proof or the roots.
    let mut req = f.request(3, 5);
    req.proof = vec![[9; 32]];
    assert_eq!(f.status(&req, s(4)), 409);

    // 422: a checkpoint of size 0 must have the empty tree's root.
    let mut zero = f.checkpoint(0);
    assert_eq!(f.status(&f.request(0, 0), None), 200);
    zero.root = [0; 32];
    let req = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: f.signed(&zero),
    };
    assert_eq!(f.status(&req, None), 422);
    // 422: a proof from size 0.
    let mut req = f.request(0, 5);
    req.proof = vec![f.root(1)];
    assert_eq!(f.status(&req, None), 422);
    // 422: a proof that does not verify (changed, short, long, or against another stored root).
    for change in 0..3 {
        let mut req = f.request(3, 5);
        match change {
            0 => req.proof[0][0] ^= 1,
            1 => {
                req.proof.pop();
            }
            _ => req.proof.push([0; 32]),
        }
        assert_eq!(f.status(&req, s(3)), 422, "change {change}");
    }
    assert_eq!(f.status(&f.request(3, 5), Some((3, [1; 32]))), 422);
    // 422: the same size with another root; 200 with the same root (and no proof).
    assert_eq!(f.status(&f.request(5, 5), s(5)), 200);
    assert_eq!(f.status(&f.request(5, 5), Some((5, [1; 32]))), 422);
    let mut req = f.request(5, 5);
    req.proof = vec![f.root(5)];
    assert_eq!(f.status(&req, s(5)), 422);

    // Every refusal's body is text, but 409's.
    for r in [
        WitnessRefusal::Malformed("x".into()),
        WitnessRefusal::TooLarge(1),
        WitnessRefusal::UnknownOrigin("x".into()),
        WitnessRefusal::BadSignature("x".into()),
        WitnessRefusal::BadProof("x".into()),
    ] {
        assert_eq!(r.body().0, "text/plain; charset=utf-8");
        assert!(r.body().1.ends_with(b"\n"));
    }
}

/// The whole exchange: the log asks, the witness decides and cosigns, the log reads the
/// response, appends it to its checkpoint, and verifies both signatures.
#[test]
fn witness_round_trip_from_request_to_cosigned_checkpoint() {
    let f = Fixture::new();
    let witness = SigningKey::from_bytes(&[3; 32]);
    let wkey = VerifierKey::new(
        "witness.example/w",
        KeyKind::Cosignature,
        witness.verifying_key().to_bytes(),
    )
    .unwrap();
    let req = f.request(8, 21);
    let wire = req.to_bytes();
    let parsed = AddCheckpoint::parse(&wire).unwrap();
    assert_eq!(parsed, req);
    let a = f.decide(&parsed, Some((8, f.root(8)))).unwrap();
    let ts = 1_767_139_200;
    let sig = witness.sign(&a.signed_message(ts)).to_bytes();
    let body = cosign_response(&[cosignature::line(&wkey.name, wkey.key_id, ts, &sig)]);
    let lines = parse_cosign_response(&body).unwrap();
    let mut note = Note::parse(&req.checkpoint).unwrap();
    note.signatures.extend(lines);
    let cosigned = Note::parse(&note.to_bytes()).unwrap();
    cosigned.verify(&f.log_key).unwrap();
    assert_eq!(cosignature::verify(&cosigned, &wkey), Ok(ts));
    // The spec's other way: concatenate the response to the checkpoint.
    let concat = Note::parse(&[req.checkpoint.clone(), body].concat()).unwrap();
    assert_eq!(concat, cosigned);
}
