//! Long suite-2 chains made by the chain builder verify; each kind of corruption is reported
//! at the pulse where it was made.

mod support;

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::chain::{check_skip_path, Facts};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::parse_time_stamp;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Check, Pulse, Report};
use support::*;

/// Starts 90 minutes before a new year, so 3,000 minutes cross hour, day, month and year.
const START: &str = "2025-12-31T22:30:00.000Z";
const N: u64 = 3000;

fn chain() -> (
    Vec<Pulse>,
    lavabeacon_format::suite::Ed25519KeySigner,
    lavabeacon_format::cert::Certificate,
) {
    let (signer, cert) = ed25519_identity(1);
    (build_chain(N, START, 60_000, &signer), signer, cert)
}

fn verify(pulses: &[Pulse], certs: &[&lavabeacon_format::cert::Certificate]) -> Report {
    let set = cert_set(certs);
    Verifier::new(&set, Options::default()).verify_pulses(pulses)
}

fn found(r: &Report) -> Vec<(Check, u64)> {
    let mut v: Vec<_> = r
        .problems
        .iter()
        .map(|p| (p.check, p.pulse.unwrap_or(0)))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Applies `corrupt` to pulse `k` (1-based), re-signs it and re-links the rest.
fn corrupted(k: u64, corrupt: impl Fn(&mut Pulse)) -> (Vec<Pulse>, Report) {
    let (mut pulses, signer, cert) = chain();
    let old: Vec<Hash512> = pulses.iter().map(|p| p.output_value).collect();
    let p = &mut pulses[(k - 1) as usize];
    corrupt(p);
    resign(p, &signer);
    relink(&mut pulses, &old, &signer);
    let r = verify(&pulses, &[&cert]);
    (pulses, r)
}

#[test]
fn a_long_builder_chain_across_a_new_year_verifies() {
    let (pulses, _, cert) = chain();
    let r = verify(&pulses, &[&cert]);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(r.pulses, N);
    assert_eq!(r.signatures_checked, N);
    assert_eq!(r.links_checked, N - 1);
    // Every pulse after the first has all four calendar values recomputed.
    assert_eq!(r.skip_links_checked, 4 * (N - 1));
}

#[test]
fn strict_mode_verifies_the_same_chain() {
    let (pulses, _, cert) = chain();
    let set = cert_set(&[&cert]);
    let r = Verifier::new(
        &set,
        Options {
            strict: true,
            skip_path: false,
            ordered: false,
        },
    )
    .verify_pulses(&pulses[..500]);
    assert!(r.passed(), "{}", r.render_text());
}

#[test]
fn input_order_does_not_matter() {
    let (mut pulses, _, cert) = chain();
    pulses.reverse();
    pulses.swap(10, 2000);
    assert!(verify(&pulses, &[&cert]).passed());
}

#[test]
fn ordered_input_is_checked_as_it_comes_and_a_pulse_out_of_order_is_reported() {
    let (mut pulses, _, cert) = chain();
    let set = cert_set(&[&cert]);
    let ordered = Options {
        ordered: true,
        ..Options::default()
    };
    let any_order = Verifier::new(&set, Options::default()).verify_pulses(&pulses);
    let r = Verifier::new(&set, ordered).verify_pulses(&pulses);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(r.links_checked, any_order.links_checked);
    assert_eq!(r.skip_links_checked, any_order.skip_links_checked);

    // Ordered input is not sorted: pulse 101 after 102 is reported, not put back in place.
    pulses.swap(100, 101);
    let f = found(&Verifier::new(&set, ordered).verify_pulses(&pulses));
    assert!(f.contains(&(Check::Order, 101)), "{f:?}");
}

#[test]
fn a_stream_of_several_chunks_verifies_in_order_and_out_of_order_alike() {
    // More pulses than one chunk of the stream (4,096), so the chain rules run across chunks
    // while the pulses come in order, and start over sorted once one does not.
    let (signer, cert) = ed25519_identity(1);
    let mut pulses = build_chain(5000, START, 60_000, &signer);
    let set = cert_set(&[&cert]);
    let stream = |pulses: &[Pulse]| {
        let text: String = pulses
            .iter()
            .map(|p| lavabeacon_format::json::to_json_line(p) + "\n")
            .collect();
        Verifier::new(&set, Options::default())
            .verify_items(lavabeacon_format::input::read_items(
                "chain.jsonl",
                text.as_bytes(),
            ))
            .unwrap()
    };
    let in_order = stream(&pulses);
    assert!(in_order.passed(), "{}", in_order.render_text());
    assert_eq!(in_order.pulses, 5000);
    // Pulse 10 comes last, in the second chunk.
    let tenth = pulses.remove(9);
    pulses.push(tenth);
    let out_of_order = stream(&pulses);
    assert!(out_of_order.passed(), "{}", out_of_order.render_text());
    assert_eq!(out_of_order.links_checked, in_order.links_checked);
    assert_eq!(out_of_order.skip_links_checked, in_order.skip_links_checked);
}

#[test]
fn reports_wrong_previous_value_at_its_pulse() {
    let (_, r) = corrupted(1234, |p| p.list_values[0].value.0[5] ^= 0x40);
    assert_eq!(found(&r), vec![(Check::Previous, 1234)]);
}

#[test]
fn reports_broken_precommitment_at_its_pulse() {
    let (_, r) = corrupted(777, |p| p.local_random_value.0[0] ^= 1);
    assert_eq!(found(&r), vec![(Check::Precommitment, 777)]);
}

#[test]
fn reports_wrong_hour_day_month_year_values() {
    for (slot, check_pulse) in [(1usize, 100u64), (2, 200), (3, 300), (4, 2999)] {
        let (_, r) = corrupted(check_pulse, |p| p.list_values[slot].value.0[0] ^= 1);
        assert_eq!(
            found(&r),
            vec![(Check::SkipValue, check_pulse)],
            "listValues[{slot}]"
        );
    }
}

#[test]
fn reports_a_gap_hidden_behind_status_zero() {
    // A real gap of 5 periods before pulse 50, but statusCode 0 claims none.
    let (signer, cert) = ed25519_identity(1);
    let t0 = parse_time_stamp(START).unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 1, 60_000));
    let mut pulses: Vec<Pulse> = (1..=100u64)
        .map(|i| {
            let gap = if i >= 50 { 5 } else { 0 };
            let t = t0 + (i as i64 - 1 + gap) * 60_000;
            b.next(
                NextPulse::new(t, lrv(i), precommitment(&lrv(i + 1))),
                &signer,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(pulses[49].status_code, 2, "the builder marks the gap");
    assert!(verify(&pulses, &[&cert]).passed(), "an honest gap verifies");
    let old: Vec<Hash512> = pulses.iter().map(|p| p.output_value).collect();
    pulses[49].status_code = 0;
    resign(&mut pulses[49], &signer);
    relink(&mut pulses, &old, &signer);
    assert_eq!(found(&verify(&pulses, &[&cert])), vec![(Check::Period, 50)]);
}

#[test]
fn reports_status_two_without_a_gap() {
    let (_, r) = corrupted(40, |p| p.status_code = 2);
    assert_eq!(found(&r), vec![(Check::Period, 40)]);
}

#[test]
fn a_lost_commitment_with_status_three_after_a_gap_verifies() {
    let (signer, cert) = ed25519_identity(1);
    let t0 = parse_time_stamp(START).unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 1, 60_000));
    let mut pulses = Vec::new();
    for i in 1..=20u64 {
        let gap = if i > 10 { 3 } else { 0 };
        let mut next = NextPulse::new(
            t0 + (i as i64 - 1 + gap) * 60_000,
            lrv(i + 1000 * u64::from(i == 11)),
            precommitment(&lrv(i + 1)),
        );
        next.commitment_lost = i == 11;
        pulses.push(b.next(next, &signer).unwrap());
    }
    assert_eq!(pulses[10].status_code, 3);
    assert!(verify(&pulses, &[&cert]).passed());
    // The same broken commitment with statusCode 2 is caught.
    let old: Vec<Hash512> = pulses.iter().map(|p| p.output_value).collect();
    pulses[10].status_code = 2;
    resign(&mut pulses[10], &signer);
    relink(&mut pulses, &old, &signer);
    assert_eq!(
        found(&verify(&pulses, &[&cert])),
        vec![(Check::Precommitment, 11)]
    );
}

#[test]
fn reports_reordered_pulses() {
    // Pulses 500 and 501 exchange their timestamps: time runs backwards at 501.
    let (mut pulses, signer, cert) = chain();
    let old: Vec<Hash512> = pulses.iter().map(|p| p.output_value).collect();
    let t500 = pulses[499].time_stamp.clone();
    pulses[499].time_stamp = pulses[500].time_stamp.clone();
    pulses[500].time_stamp = t500;
    resign(&mut pulses[499], &signer);
    resign(&mut pulses[500], &signer);
    relink(&mut pulses, &old, &signer);
    let r = verify(&pulses, &[&cert]);
    let f = found(&r);
    assert!(f.contains(&(Check::Order, 501)), "{f:?}");
    assert!(f.iter().all(|(_, i)| (500..=502).contains(i)), "{f:?}");
}

#[test]
fn reports_a_duplicated_pulse() {
    let (mut pulses, _, cert) = chain();
    pulses.push(pulses[41].clone());
    assert_eq!(
        found(&verify(&pulses, &[&cert])),
        vec![(Check::Duplicate, 42)]
    );
}

#[test]
fn reports_a_fork() {
    let (mut pulses, signer, cert) = chain();
    let mut other = pulses[41].clone();
    other.local_random_value.0[0] ^= 1;
    resign(&mut other, &signer);
    pulses.push(other);
    let f = found(&verify(&pulses, &[&cert]));
    assert!(f.contains(&(Check::Fork, 42)), "{f:?}");
}

#[test]
fn reports_a_pulse_signed_with_the_wrong_certificate() {
    let (mut pulses, _, cert) = chain();
    let (other_signer, other_cert) = ed25519_identity(2);
    // Signed by another known key while naming the chain's certificate.
    let old: Vec<Hash512> = pulses.iter().map(|p| p.output_value).collect();
    let p = &mut pulses[99];
    let m = lavabeacon_format::message::signed_message(p);
    use lavabeacon_format::suite::PulseSigner;
    p.signature_value = other_signer.sign(&m).unwrap();
    p.output_value = lavabeacon_format::message::output_value(&m, &p.signature_value);
    let (_, signer1, _) = chain();
    relink(&mut pulses, &old, &signer1);
    assert_eq!(
        found(&verify(&pulses, &[&cert, &other_cert])),
        vec![(Check::Signature, 100)]
    );
}

#[test]
fn a_certificate_change_inside_a_chain_needs_both_certificates() {
    let (signer1, cert1) = ed25519_identity(1);
    let (signer2, cert2) = ed25519_identity(2);
    let t0 = parse_time_stamp(START).unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 1, 60_000));
    let pulses: Vec<Pulse> = (1..=200u64)
        .map(|i| {
            let s: &dyn lavabeacon_format::suite::PulseSigner =
                if i <= 120 { &signer1 } else { &signer2 };
            b.next(
                NextPulse::new(
                    t0 + (i as i64 - 1) * 60_000,
                    lrv(i),
                    precommitment(&lrv(i + 1)),
                ),
                s,
            )
            .unwrap()
        })
        .collect();
    assert!(verify(&pulses, &[&cert1, &cert2]).passed());
    let r = verify(&pulses, &[&cert1]);
    assert_eq!(found(&r), vec![(Check::CertificateMissing, 121)]);
    assert_eq!(r.missing_certificates, vec![cert2.id.to_hex_lower()]);
    assert!(
        r.problems[0].message.contains("needed by 80 pulses"),
        "{}",
        r.problems[0].message
    );
}

#[test]
fn a_skip_path_across_the_new_year_verifies_and_a_broken_one_does_not() {
    let (pulses, _, cert) = chain();
    let path = plan_skip_path(&pulses, 3, 2990);
    assert!(path.len() < 120, "skip path of {} pulses", path.len());
    let set = cert_set(&[&cert]);
    let r = Verifier::new(
        &set,
        Options {
            strict: false,
            skip_path: true,
            ordered: false,
        },
    )
    .verify_pulses(&path);
    assert!(r.passed(), "{}", r.render_text());
    assert_eq!(r.skip_path_hops as usize, path.len() - 1);

    let mut facts: Vec<Facts> = path.iter().map(|p| Facts::of(p, None)).collect();
    let mid = facts.len() / 2;
    facts.remove(mid);
    let mut problems = Vec::new();
    check_skip_path(&facts, &mut problems);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, Check::SkipPath);
    assert_eq!(problems[0].pulse, Some(facts[mid].index));
    assert!(
        problems[0]
            .message
            .contains(&format!("pulse {}'s", facts[mid - 1].index)),
        "{}",
        problems[0].message
    );
}

#[test]
fn an_rsa_suite0_chain_from_the_builder_verifies_and_catches_a_bad_signature() {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pkcs8 = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.clone()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let der = rcgen::CertificateParams::new(vec!["lavabeacon.test".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap()
        .der()
        .to_vec();
    let cert = lavabeacon_format::cert::Certificate::from_der(&der).unwrap();
    assert_eq!(cert.key.describe(), "RSA-2048");
    let signer = lavabeacon_format::suite::RsaKeySigner::from_pkcs8(&pkcs8, cert.id).unwrap();
    let mut pulses = build_chain(30, START, 60_000, &signer);
    assert!(pulses
        .iter()
        .all(|p| p.cipher_suite == 0 && p.signature_value.len() == 256));
    assert!(verify(&pulses, &[&cert]).passed());
    pulses[7].signature_value[0] ^= 1;
    let f = found(&verify(&pulses, &[&cert]));
    assert!(f.contains(&(Check::Signature, 8)), "{f:?}");
}

#[test]
fn a_suite_that_does_not_match_the_key_is_reported() {
    let (mut pulses, signer, cert) = chain();
    pulses.truncate(3);
    pulses[1].cipher_suite = 0; // claims RSA, names an Ed25519 certificate
    resign(&mut pulses[1], &signer);
    let r = verify(&pulses, &[&cert]);
    let p = r
        .problems
        .iter()
        .find(|p| p.check == Check::CertificateKey)
        .expect("key mismatch reported");
    assert_eq!(p.pulse, Some(2));
    assert!(
        p.message
            .contains("cipherSuite 0 needs an RSA key, certificate has Ed25519"),
        "{}",
        p.message
    );
}
