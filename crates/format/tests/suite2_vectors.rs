//! The published suite-2 test vectors (docs/pulse-format.md, tests/vectors/lavabeacon-suite2/):
//! a fixed Ed25519 key and fixed field values give exactly the M, signature and outputValue
//! written there, and the documentation shows the same values.
//!
//! `LAVABEACON_WRITE_VECTORS=1 cargo test -p lavabeacon-format --test suite2_vectors` writes
//! the files afresh (only ever needed if the vectors are deliberately changed).

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::{parse_certificates, CertificateSet};
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::json::{parse_pulse, to_nist_json};
use lavabeacon_format::message::{precommitment, signed_message};
use lavabeacon_format::suite::Ed25519KeySigner;
use lavabeacon_format::time::parse_time_stamp;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/lavabeacon-suite2"
    ))
}

/// The key seed: bytes 0x00, 0x01, …, 0x1f.
fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn value(label: &str) -> Hash512 {
    sha512(&[label.as_bytes()])
}

fn make(cert_id: Hash512) -> Vec<Pulse> {
    let signer = Ed25519KeySigner::new(ed25519_dalek::SigningKey::from_bytes(&seed()), cert_id);
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "https://beacon.example.org/beacon/2.0",
        1,
        60_000,
    ));
    let t = parse_time_stamp("2026-11-21T10:00:00.000Z").unwrap();
    let l = |i: u32| value(&format!("lavabeacon test vector localRandomValue {i}"));
    vec![
        b.next(NextPulse::new(t, l(1), precommitment(&l(2))), &signer)
            .unwrap(),
        b.next(
            NextPulse::new(t + 60_000, l(2), precommitment(&l(3))),
            &signer,
        )
        .unwrap(),
    ]
}

#[test]
fn suite2_vectors_match_the_published_files_and_docs() {
    let d = dir();
    if std::env::var_os("LAVABEACON_WRITE_VECTORS").is_some() {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed());
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(
                key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            ),
            &rcgen::PKCS_ED25519,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "lavabeacon test vectors TEST ONLY - NOT FOR SECURITY USE",
        );
        params.serial_number = Some(rcgen::SerialNumber::from(vec![1u8]));
        let cert = params.self_signed(&kp).unwrap();
        std::fs::write(d.join("certificate.pem"), cert.pem()).unwrap();
        let id = sha512(&[cert.der()]);
        for (i, p) in make(id).iter().enumerate() {
            std::fs::write(
                d.join(format!("pulse-{}.json", i + 1)),
                to_nist_json(p) + "\n",
            )
            .unwrap();
            std::fs::write(
                d.join(format!("pulse-{}.M.hex", i + 1)),
                hex::encode_upper(signed_message(p)) + "\n",
            )
            .unwrap();
        }
    }
    let pem = std::fs::read(d.join("certificate.pem")).unwrap();
    let cert = parse_certificates(&pem).unwrap().remove(0);
    match &cert.key {
        lavabeacon_format::cert::PublicKey::Ed25519(vk) => {
            assert_eq!(
                vk.to_bytes(),
                ed25519_dalek::SigningKey::from_bytes(&seed())
                    .verifying_key()
                    .to_bytes()
            )
        }
        other => panic!("{other:?}"),
    }
    let made = make(cert.id);
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/pulse-format.md"
    ))
    .unwrap();
    let docs_flat: String = docs.split_whitespace().collect();
    for (i, p) in made.iter().enumerate() {
        let n = i + 1;
        let stored =
            parse_pulse(&std::fs::read_to_string(d.join(format!("pulse-{n}.json"))).unwrap())
                .unwrap();
        assert_eq!(&stored, p, "pulse-{n}.json is what the fixed inputs give");
        let m_hex = std::fs::read_to_string(d.join(format!("pulse-{n}.M.hex"))).unwrap();
        assert_eq!(m_hex.trim(), hex::encode_upper(signed_message(p)));
        for (what, v) in [
            ("M", hex::encode_upper(signed_message(p))),
            ("signatureValue", hex::encode_upper(&p.signature_value)),
            ("outputValue", p.output_value.to_hex_upper()),
        ] {
            assert!(
                docs_flat.contains(&v),
                "docs/pulse-format.md lacks pulse {n}'s {what}"
            );
        }
    }
    let mut set = CertificateSet::new();
    set.add(cert);
    let r = Verifier::new(
        &set,
        Options {
            strict: true,
            skip_path: false,
            ordered: false,
        },
    )
    .verify_pulses(&made);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(r.links_checked, 1);
}
