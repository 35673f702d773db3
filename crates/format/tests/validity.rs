//! A certificate vouches for pulses only within its validity, and, with `--ca`, only when the
//! operator's authority issued it (and only within that authority's validity too).

mod support;

use lavabeacon_format::authority::Authorities;
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::suite::Ed25519KeySigner;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Check, Pulse, Report};
use support::{build_chain, cert_set, ed25519_key};

type Ymd = (i32, u8, u8);

fn params(name: &str, from: Ymd, to: Ymd) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    params
}

/// A CA (an ECDSA P-256 key, rcgen's default, as an operator's CA tool would make).
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca(name: &str, from: Ymd, to: Ymd) -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = params(name, from, to);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    Ca {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

/// A pulse key with a certificate valid `from..to`, issued by `ca` or self-signed.
fn identity(seed: u8, from: Ymd, to: Ymd, ca: Option<&Ca>) -> (Ed25519KeySigner, Certificate) {
    let (key, kp) = ed25519_key(seed);
    let p = params("lavabeacon pulse key", from, to);
    let der = match ca {
        Some(ca) => p.signed_by(&kp, &ca.cert, &ca.key).unwrap(),
        None => p.self_signed(&kp).unwrap(),
    }
    .der()
    .to_vec();
    let cert = Certificate::from_der(&der).unwrap();
    (Ed25519KeySigner::new(key, cert.id), cert)
}

fn verify(pulses: &[Pulse], cert: &Certificate, cas: Option<&Authorities>) -> Report {
    let certs = cert_set(&[cert]);
    let mut v = Verifier::new(&certs, Options::default());
    if let Some(cas) = cas {
        v = v.with_authorities(cas);
    }
    v.verify_pulses(pulses)
}

fn problems(r: &Report, check: Check) -> Vec<(u64, String)> {
    r.problems
        .iter()
        .filter(|p| p.check == check)
        .map(|p| (p.pulse.unwrap(), p.message.clone()))
        .collect()
}

#[test]
fn a_pulse_outside_its_certificates_validity_is_rejected_by_name() {
    // Valid 2025-01-01T00:00:00Z to 2025-07-01T00:00:00Z, both ends included.
    let (signer, cert) = identity(1, (2025, 1, 1), (2025, 7, 1), None);
    let inside = build_chain(3, "2025-06-30T23:58:00.000Z", 60_000, &signer);
    let r = verify(&inside, &cert, None);
    assert!(r.passed(), "{}", r.render_text());

    let across = build_chain(4, "2025-06-30T23:58:00.000Z", 60_000, &signer);
    let r = verify(&across, &cert, None);
    let found = problems(&r, Check::CertificateValidity);
    assert_eq!(found.len(), 1, "{}", r.render_text());
    assert_eq!(found[0].0, 4, "only the pulse at 00:01 is after the end");
    assert!(
        found[0]
            .1
            .contains("is after the validity of its certificate")
            && found[0].1.contains("2025-07-01T00:00:00.000Z"),
        "{}",
        found[0].1
    );

    let early = build_chain(2, "2024-12-31T23:59:00.000Z", 60_000, &signer);
    let found = problems(&verify(&early, &cert, None), Check::CertificateValidity);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 1);
    assert!(
        found[0].1.contains("is before the validity"),
        "{}",
        found[0].1
    );
}

#[test]
fn with_an_authority_a_certificate_must_be_issued_by_it() {
    let ours = ca("lavabeacon operator CA", (2020, 1, 1), (2040, 1, 1));
    let other = ca("lavabeacon operator CA", (2020, 1, 1), (2040, 1, 1));
    let ours_pem = Authorities::from_bytes(ours.cert.pem().as_bytes()).unwrap();
    let other_pem = Authorities::from_bytes(other.cert.pem().as_bytes()).unwrap();

    let (signer, cert) = identity(2, (2024, 1, 1), (2030, 1, 1), Some(&ours));
    let pulses = build_chain(5, "2025-03-01T12:00:00.000Z", 60_000, &signer);
    let r = verify(&pulses, &cert, Some(&ours_pem));
    assert!(r.passed(), "{}", r.render_text());
    // A bundle holding it among others works too.
    let bundle = format!("{}{}", other.cert.pem(), ours.cert.pem());
    let bundle = Authorities::from_bytes(bundle.as_bytes()).unwrap();
    assert_eq!(bundle.len(), 2);
    assert!(verify(&pulses, &cert, Some(&bundle)).passed());

    // Another CA of the same name: the signature does not verify. Said once, not per pulse.
    let r = verify(&pulses, &cert, Some(&other_pem));
    let found = problems(&r, Check::CertificateIssuer);
    assert_eq!(found.len(), 1, "{}", r.render_text());
    assert!(
        found[0].1.contains("signature does not verify"),
        "{}",
        found[0].1
    );

    // Self-signed: its issuer is itself, none of the authorities.
    let (signer, cert) = identity(3, (2024, 1, 1), (2030, 1, 1), None);
    let pulses = build_chain(3, "2025-03-01T12:00:00.000Z", 60_000, &signer);
    let found = problems(
        &verify(&pulses, &cert, Some(&ours_pem)),
        Check::CertificateIssuer,
    );
    assert_eq!(found.len(), 1);
    assert!(
        found[0].1.contains("none of the authorities"),
        "{}",
        found[0].1
    );
    assert!(
        verify(&pulses, &cert, None).passed(),
        "without --ca it is fine"
    );
}

#[test]
fn a_pulse_outside_the_authoritys_validity_is_rejected_too() {
    let short = ca("short-lived CA", (2024, 1, 1), (2025, 1, 1));
    let cas = Authorities::from_bytes(short.cert.pem().as_bytes()).unwrap();
    let (signer, cert) = identity(4, (2024, 1, 1), (2030, 1, 1), Some(&short));
    // 23:59, 00:00 (the last second of the CA's validity) and 00:01.
    let pulses = build_chain(3, "2024-12-31T23:59:00.000Z", 60_000, &signer);
    let r = verify(&pulses, &cert, Some(&cas));
    let found = problems(&r, Check::CertificateValidity);
    assert_eq!(found.len(), 1, "{}", r.render_text());
    assert_eq!(found[0].0, 3);
    assert!(found[0].1.contains("the authority"), "{}", found[0].1);
}

#[test]
fn nists_certificate_covers_nists_pulses() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/nist-2018-chain1"
    );
    let cert = lavabeacon_format::cert::parse_certificates(
        &std::fs::read(format!("{dir}/certificate-5501e3d7.pem")).unwrap(),
    )
    .unwrap()
    .remove(0);
    // 2018-01-10T00:00:00Z to 2019-01-11T12:00:00Z.
    assert_eq!(
        (cert.not_before, cert.not_after),
        (1_515_542_400, 1_547_208_000)
    );
    let pulses: Vec<Pulse> = ["pulse-1.json", "pulse-54609.json", "pulse-54610.json"]
        .iter()
        .map(|f| {
            lavabeacon_format::json::parse_pulse(
                &std::fs::read_to_string(format!("{dir}/{f}")).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let r = verify(&pulses[1..], &cert, None);
    assert!(r.passed(), "{}", r.render_text());
    let r = verify(&pulses[..1], &cert, None);
    assert!(
        problems(&r, Check::CertificateValidity).is_empty(),
        "{}",
        r.render_text()
    );
}
