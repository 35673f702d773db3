//! Certificates read leniently, as beacons serve them, and refused clearly when unusable.

mod support;

use lavabeacon_format::cert::{parse_certificates, CertError, CertificateSet};
use lavabeacon_format::message::certificate_id;

const NIST_PEM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/nist-2018-chain1/certificate-5501e3d7.pem"
);

fn nist_text() -> String {
    std::fs::read_to_string(NIST_PEM).unwrap()
}

#[test]
fn nist_pem_variants_all_give_the_same_certificate() {
    let original = nist_text();
    assert!(original.contains("\r\n"), "the vector keeps NIST's CRLF");
    let id = parse_certificates(original.as_bytes()).unwrap()[0].id;
    let lf = original.replace("\r\n", "\n");
    let no_break_after_begin = lf.replacen(
        "-----BEGIN CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----",
        1,
    );
    let with_text_around = format!("issuer: NIST\n{lf}\ntrailing words\n");
    let one_line_body = {
        let body: String = lf.lines().filter(|l| !l.starts_with("-----")).collect();
        format!("-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----")
    };
    for (name, text) in [
        ("lf", lf),
        ("no break", no_break_after_begin),
        ("text around", with_text_around),
        ("one line", one_line_body),
    ] {
        let certs = parse_certificates(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(certs[0].id, id, "{name}");
    }
}

#[test]
fn der_input_and_bundles_are_read() {
    let c = parse_certificates(nist_text().as_bytes())
        .unwrap()
        .remove(0);
    let from_der = parse_certificates(&c.der).unwrap();
    assert_eq!(from_der[0].id, c.id);
    let (_, ed) = support::ed25519_identity(9);
    let bundle = format!("{}{}", c.to_pem(), ed.to_pem());
    let both = parse_certificates(bundle.as_bytes()).unwrap();
    assert_eq!(
        both.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c.id, ed.id]
    );
    assert_eq!(ed.key.describe(), "Ed25519");
    assert_eq!(ed.id, certificate_id(&ed.der));
}

#[test]
fn unusable_certificates_get_clear_errors() {
    assert_eq!(
        parse_certificates(b"hello").unwrap_err(),
        CertError::NotACertificate
    );
    let bad = parse_certificates(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----")
        .unwrap_err();
    assert!(
        matches!(bad, CertError::BadBase64 { index: 1, .. }),
        "{bad}"
    );
    let cut = &nist_text()[..400];
    assert_eq!(
        parse_certificates(cut.as_bytes()).unwrap_err(),
        CertError::Unterminated { index: 1 }
    );
    let not_x509 =
        parse_certificates(b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----")
            .unwrap_err();
    assert!(matches!(not_x509, CertError::BadDer(_)), "{not_x509}");
}

#[test]
fn certificate_directories_load_every_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = support::ed25519_identity(1);
    let (_, b) = support::ed25519_identity(2);
    std::fs::write(dir.path().join("a.pem"), a.to_pem()).unwrap();
    std::fs::write(dir.path().join("b.der"), &b.der).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
    let mut set = CertificateSet::new();
    assert_eq!(set.load_dir(dir.path()).unwrap(), 2);
    assert!(set.get(&a.id).is_some() && set.get(&b.id).is_some());
    let missing = set.load_file(&dir.path().join("nope.pem")).unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
}
