//! Helpers shared by the format crate's tests: software keys with real X.509 certificates, and
//! long valid chains made by the chain builder.
#![allow(dead_code)]

use ed25519_dalek::pkcs8::EncodePrivateKey;
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::{Certificate, CertificateSet};
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::message::{output_value, precommitment, signed_message};
use lavabeacon_format::suite::{Ed25519KeySigner, PulseSigner};
use lavabeacon_format::time::parse_time_stamp;
use lavabeacon_format::Pulse;

/// An Ed25519 key from a fixed seed, and the same key for rcgen to sign certificates with.
pub fn ed25519_key(seed: u8) -> (ed25519_dalek::SigningKey, rcgen::KeyPair) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec()),
        &rcgen::PKCS_ED25519,
    )
    .unwrap();
    (key, kp)
}

/// An Ed25519 key from a fixed seed and a self-signed certificate for it.
pub fn ed25519_identity(seed: u8) -> (Ed25519KeySigner, Certificate) {
    let (key, kp) = ed25519_key(seed);
    let mut params = rcgen::CertificateParams::new(vec!["lavabeacon.test".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "lavabeacon TEST ONLY - NOT FOR SECURITY USE",
    );
    let der = params.self_signed(&kp).unwrap().der().to_vec();
    let cert = Certificate::from_der(&der).unwrap();
    (Ed25519KeySigner::new(key, cert.id), cert)
}

pub fn cert_set(certs: &[&Certificate]) -> CertificateSet {
    let mut s = CertificateSet::new();
    for c in certs {
        s.add((*c).clone());
    }
    s
}

/// The localRandomValue of pulse `i` of a test chain (deterministic).
pub fn lrv(i: u64) -> Hash512 {
    sha512(&[b"test lrv", &i.to_be_bytes()])
}

pub const BASE: &str = "https://beacon.example.org/beacon/2.0";

/// `n` consecutive pulses of chain 1 starting at `start` (RFC 3339), one per `period_ms`.
pub fn build_chain(n: u64, start: &str, period_ms: u32, signer: &dyn PulseSigner) -> Vec<Pulse> {
    let t0 = parse_time_stamp(start).unwrap();
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 1, period_ms));
    (1..=n)
        .map(|i| {
            let t = t0 + (i as i64 - 1) * i64::from(period_ms);
            b.next(
                NextPulse::new(t, lrv(i), precommitment(&lrv(i + 1))),
                signer,
            )
            .unwrap()
        })
        .collect()
}

/// Re-signs a pulse after a test changed it, as a dishonest beacon with the real key would.
pub fn resign(p: &mut Pulse, signer: &dyn PulseSigner) {
    let m = signed_message(p);
    p.signature_value = signer.sign(&m).unwrap();
    p.output_value = output_value(&m, &p.signature_value);
}

/// After pulses from `from` on were changed, makes every later pulse point to the new
/// outputValues and re-signs it, so the change stays the only inconsistency in the chain.
pub fn relink(pulses: &mut [Pulse], old_outputs: &[Hash512], signer: &dyn PulseSigner) {
    use std::collections::HashMap;
    let mut map: HashMap<Hash512, Hash512> = HashMap::new();
    for (p, old) in pulses.iter().zip(old_outputs) {
        if p.output_value != *old {
            map.insert(*old, p.output_value);
        }
    }
    for p in pulses.iter_mut() {
        let mut changed = false;
        for l in &mut p.list_values {
            if let Some(new) = map.get(&l.value) {
                l.value = *new;
                changed = true;
            }
        }
        if changed {
            let old = p.output_value;
            resign(p, signer);
            map.insert(old, p.output_value);
        }
    }
}

/// The greedy skip path from pulse `a` to pulse `b` (1-based indexes) of a complete chain:
/// from each pulse, hop to the farthest pulse not after `b` that names it in its listValues.
pub fn plan_skip_path(chain: &[Pulse], a: u64, b: u64) -> Vec<Pulse> {
    use std::collections::HashMap;
    let by_output: HashMap<Hash512, u64> = chain
        .iter()
        .map(|p| (p.output_value, p.pulse_index))
        .collect();
    let mut farthest: HashMap<u64, u64> = HashMap::new();
    for p in chain.iter().filter(|p| p.pulse_index <= b) {
        for l in &p.list_values {
            if let Some(&from) = by_output.get(&l.value) {
                let e = farthest.entry(from).or_insert(p.pulse_index);
                *e = (*e).max(p.pulse_index);
            }
        }
    }
    let mut path = vec![chain[(a - 1) as usize].clone()];
    let mut cur = a;
    while cur != b {
        cur = farthest[&cur];
        path.push(chain[(cur - 1) as usize].clone());
    }
    path
}
