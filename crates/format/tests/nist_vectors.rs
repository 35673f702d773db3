//! Real NIST pulses (chain 1, 2018) and their certificate: everything verifies, and changing any
//! single signed byte, the signature or the outputValue makes verification fail.

use lavabeacon_format::cert::{parse_certificates, Certificate, CertificateSet};
use lavabeacon_format::json::parse_pulse;
use lavabeacon_format::message::{certificate_id, signed_message};
use lavabeacon_format::pulse::Externals;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/nist-2018-chain1"
);

fn pulse(n: u64) -> Pulse {
    parse_pulse(&std::fs::read_to_string(format!("{DIR}/pulse-{n}.json")).unwrap()).unwrap()
}

fn cert_bytes() -> Vec<u8> {
    std::fs::read(format!("{DIR}/certificate-5501e3d7.pem")).unwrap()
}

fn nist_certs() -> CertificateSet {
    let mut s = CertificateSet::new();
    for c in parse_certificates(&cert_bytes()).unwrap() {
        s.add(c);
    }
    s
}

#[test]
fn certificate_id_is_sha512_of_der_and_matches_the_pulses() {
    let certs = parse_certificates(&cert_bytes()).unwrap();
    assert_eq!(certs.len(), 1);
    let c: &Certificate = &certs[0];
    assert_eq!(c.id, certificate_id(&c.der));
    assert_eq!(c.key.describe(), "RSA-4096");
    for n in [1, 54609, 54610] {
        assert_eq!(pulse(n).certificate_id, c.id, "pulse {n}");
    }
}

#[test]
fn signed_message_has_nist_length() {
    for n in [1, 54609, 54610] {
        let p = pulse(n);
        assert_eq!(
            signed_message(&p).len(),
            748 + p.uri.len() + p.version.len()
        );
    }
}

#[test]
fn all_three_pulses_verify_with_their_links_and_year_values() {
    let certs = nist_certs();
    let report = Verifier::new(&certs, Options::default()).verify_pulses(&[
        pulse(1),
        pulse(54609),
        pulse(54610),
    ]);
    assert!(report.passed(), "{}", report.render_text());
    assert_eq!(report.pulses, 3);
    assert_eq!(report.signatures_checked, 3);
    assert_eq!(report.output_values_checked, 3);
    assert_eq!(report.links_checked, 1, "54609 -> 54610");
    // Both later pulses' `year` values are recomputed from pulse 1, the chain's start.
    assert_eq!(report.skip_links_checked, 2);
    let first = pulse(1).output_value;
    assert_eq!(pulse(54609).list_value("year"), Some(&first));
    assert_eq!(pulse(54610).list_value("year"), Some(&first));
}

#[test]
fn the_year_value_is_checked_against_pulse_one() {
    // With pulse 1's outputValue altered, its own check fails and both later pulses' `year`
    // values no longer match it: the year rule really compares against pulse 1.
    let certs = nist_certs();
    let mut p1 = pulse(1);
    p1.output_value.0[0] ^= 1;
    let report =
        Verifier::new(&certs, Options::default()).verify_pulses(&[p1, pulse(54609), pulse(54610)]);
    let checks: Vec<_> = report.problems.iter().map(|p| (p.check, p.pulse)).collect();
    use lavabeacon_format::Check;
    assert!(
        checks.contains(&(Check::OutputValue, Some(1))),
        "{checks:?}"
    );
    assert!(
        checks.contains(&(Check::SkipValue, Some(54609))),
        "{checks:?}"
    );
    assert!(
        checks.contains(&(Check::SkipValue, Some(54610))),
        "{checks:?}"
    );
}

/// Every pulse that differs from `p` in exactly one signed byte, named for messages.
fn single_byte_mutations(p: &Pulse) -> Vec<(String, Pulse)> {
    let mut out = Vec::new();
    let mut push = |name: String, f: &dyn Fn(&mut Pulse)| {
        let mut q = p.clone();
        f(&mut q);
        out.push((name, q));
    };
    for i in 0..p.uri.len() {
        push(format!("uri[{i}]"), &|q| flip_str(&mut q.uri, i));
    }
    for i in 0..p.version.len() {
        push(format!("version[{i}]"), &|q| flip_str(&mut q.version, i));
    }
    for k in 0..4 {
        push(format!("cipherSuite byte {k}"), &|q| {
            q.cipher_suite ^= 1 << (8 * k)
        });
        push(format!("period byte {k}"), &|q| q.period ^= 1 << (8 * k));
        push(
            format!("external.statusCode byte {k}"),
            &|q| match &mut q.external {
                Externals::One(e) => e.status_code ^= 1 << (8 * k),
                Externals::List(v) => v[0].status_code ^= 1 << (8 * k),
            },
        );
        push(format!("statusCode byte {k}"), &|q| {
            q.status_code ^= 1 << (8 * k)
        });
    }
    for k in 0..8 {
        push(format!("chainIndex byte {k}"), &|q| {
            q.chain_index ^= 1 << (8 * k)
        });
        push(format!("pulseIndex byte {k}"), &|q| {
            q.pulse_index ^= 1 << (8 * k)
        });
    }
    for i in 0..p.time_stamp.len() {
        push(format!("timeStamp[{i}]"), &|q| {
            flip_str(&mut q.time_stamp, i)
        });
    }
    for i in 0..64 {
        push(format!("certificateId[{i}]"), &|q| {
            q.certificate_id.0[i] ^= 1
        });
        push(format!("localRandomValue[{i}]"), &|q| {
            q.local_random_value.0[i] ^= 1
        });
        push(
            format!("external.sourceId[{i}]"),
            &|q| match &mut q.external {
                Externals::One(e) => e.source_id.0[i] ^= 1,
                Externals::List(v) => v[0].source_id.0[i] ^= 1,
            },
        );
        push(format!("external.value[{i}]"), &|q| match &mut q.external {
            Externals::One(e) => e.value.0[i] ^= 1,
            Externals::List(v) => v[0].value.0[i] ^= 1,
        });
        for l in 0..p.list_values.len() {
            push(format!("listValues[{l}].value[{i}]"), &|q| {
                q.list_values[l].value.0[i] ^= 1
            });
        }
        push(format!("precommitmentValue[{i}]"), &|q| {
            q.precommitment_value.0[i] ^= 1
        });
        push(format!("outputValue[{i}]"), &|q| q.output_value.0[i] ^= 1);
    }
    for i in 0..p.signature_value.len() {
        push(format!("signatureValue[{i}]"), &|q| {
            q.signature_value[i] ^= 1
        });
    }
    out
}

fn flip_str(s: &mut String, i: usize) {
    let mut b = std::mem::take(s).into_bytes();
    b[i] ^= 1; // ASCII stays ASCII
    *s = String::from_utf8(b).unwrap();
}

#[test]
fn flipping_any_signed_byte_of_any_nist_pulse_fails_verification() {
    let certs = nist_certs();
    let v = Verifier::new(&certs, Options::default());
    let mut tried = 0;
    for n in [1, 54609, 54610] {
        let p = pulse(n);
        assert!(
            v.check_pulse(&p, None).problems.is_empty(),
            "pulse {n} itself must pass"
        );
        for (name, q) in single_byte_mutations(&p) {
            let outcome = v.check_pulse(&q, None);
            let failed = !outcome.problems.is_empty() || outcome.missing_certificate.is_some();
            assert!(failed, "pulse {n}: flipping {name} went unnoticed");
            tried += 1;
        }
    }
    assert!(tried > 4000, "only {tried} mutations");
}

#[test]
fn skip_list_uris_and_types_are_not_signed() {
    // Only listValues[*].value is signed: a different uri keeps the signature valid.
    let certs = nist_certs();
    let v = Verifier::new(&certs, Options::default());
    let mut p = pulse(54609);
    p.list_values[1].uri = Some("https://elsewhere.example/".into());
    assert!(v.check_pulse(&p, None).problems.is_empty());
}
