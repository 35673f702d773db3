//! Real pulses of other NIST-format beacons: INMETRO's outputValue rule and CLCERT's suite 1
//! (external list, hashedMessage, Sloth outputValue) are recognised, and corruptions caught.

use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::json::parse_pulse;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Check, Pulse, Variant};

fn load(f: &str) -> Pulse {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/other-beacons"
    );
    parse_pulse(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap()).unwrap()
}

const NIST: &str = "nist-2020-chain1-pulse-961833.json";
const INMETRO: &str = "inmetro-2020-chain1-pulse-386184.json";
const CLCERT: &str = "clcert-2020-chain4-pulse-987497.json";

fn problems(p: &Pulse) -> Vec<Check> {
    let certs = CertificateSet::new();
    let o = Verifier::new(&certs, Options::default()).check_pulse(p, None);
    assert_eq!(
        o.missing_certificate,
        Some(p.certificate_id),
        "no certificate is known"
    );
    o.problems.iter().map(|p| p.check).collect()
}

#[test]
fn variants_are_detected() {
    assert_eq!(Variant::detect(&load(NIST)), Variant::Nist);
    assert_eq!(Variant::detect(&load(INMETRO)), Variant::Inmetro);
    assert_eq!(Variant::detect(&load(CLCERT)), Variant::Clcert);
}

#[test]
fn output_values_of_all_three_beacons_check_out() {
    for f in [NIST, INMETRO, CLCERT] {
        assert_eq!(problems(&load(f)), vec![], "{f}");
    }
}

#[test]
fn an_inmetro_pulse_under_another_host_is_flagged_with_a_hint() {
    let mut p = load(INMETRO);
    // A pulse made by INMETRO's rule but served under another host (its uri is signed, so the
    // outputValue is recomputed the INMETRO way over the new M).
    p.uri = p.uri.replace("beacon.inmetro.gov.br", "mirror.example.org");
    let m = lavabeacon_format::message::signed_message(&p);
    p.output_value = lavabeacon_format::message::output_value_inmetro(&m, &p.signature_value);
    let certs = CertificateSet::new();
    let o = Verifier::new(&certs, Options::default()).check_pulse(&p, None);
    let out = o
        .problems
        .iter()
        .find(|p| p.check == Check::OutputValue)
        .unwrap();
    assert!(out.message.contains("follows INMETRO's"), "{}", out.message);
}

#[test]
fn clcert_corruptions_are_caught() {
    let mut p = load(CLCERT);
    p.local_random_value.0[0] ^= 1;
    let found = problems(&p);
    assert!(
        found.contains(&Check::HashedMessage) && found.contains(&Check::OutputValue),
        "{found:?}"
    );

    let mut p = load(CLCERT);
    let w = p.sloth.as_mut().unwrap();
    w.iterations += 1;
    assert_eq!(problems(&p), vec![Check::OutputValue]);

    let mut p = load(CLCERT);
    p.signature_value[3] ^= 1;
    assert_eq!(
        problems(&p),
        vec![Check::OutputValue],
        "the Sloth input covers the signature"
    );
}

#[test]
fn clcert_external_list_is_signed_entry_by_entry() {
    let mut p = load(CLCERT);
    if let lavabeacon_format::pulse::Externals::List(v) = &mut p.external {
        v.swap(0, 1);
    }
    assert!(problems(&p).contains(&Check::HashedMessage));
}
