//! Keys in a real SoftHSM2 token over PKCS#11. The tokens live in a temporary directory made
//! for this test process (never the system token directory). Without SoftHSM2 the tests are
//! skipped with a message, except under `CI=true`, where that fails the run.

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::suite::PulseSigner;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Hash512, Pulse};
use lavabeacon_signer::cert::Validity;
use lavabeacon_signer::pkcs11::{Pkcs11Key, Pkcs11Signer};
use lavabeacon_signer::{PinSource, Signer, SignerError, Suite};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use x509_cert::der::Decode;

mod common;
use common::{config, tokens, PIN};

fn signer_for(token: &str, suite: Suite) -> Arc<Pkcs11Signer> {
    let key = Pkcs11Key::generate(&config(token, "pulse-key", suite)).unwrap();
    let cert = key
        .issue_certificate("lavabeacon SoftHSM test", true, test_chain_validity(), None)
        .unwrap();
    Arc::new(key.into_signer(&cert).unwrap())
}

fn ed25519() -> Option<Arc<Pkcs11Signer>> {
    static S: OnceLock<Option<Arc<Pkcs11Signer>>> = OnceLock::new();
    tokens()?;
    S.get_or_init(|| Some(signer_for("lb-ed25519", Suite::Ed25519)))
        .clone()
}

fn chain(signer: &dyn PulseSigner, n: u64) -> Vec<Pulse> {
    let l = |i: u64| sha512(&[b"hsm test", &i.to_be_bytes()]);
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "https://beacon.example.org/beacon/2.0",
        1,
        60_000,
    ));
    (1..=n)
        .map(|i| {
            b.next(
                NextPulse::new(
                    1_780_000_020_000 + i as i64 * 60_000,
                    l(i),
                    precommitment(&l(i + 1)),
                ),
                signer,
            )
            .unwrap()
        })
        .collect()
}

fn verifies(signer: &dyn Signer, pulses: &[Pulse]) -> bool {
    let mut certs = CertificateSet::new();
    certs.add(signer.certificate().clone());
    let r = Verifier::new(
        &certs,
        Options {
            strict: true,
            skip_path: false,
            ordered: false,
        },
    )
    .verify_pulses(pulses);
    eprintln!("{}", r.summary());
    r.passed() && r.signatures_checked == pulses.len() as u64
}

#[test]
fn ed25519_pulses_signed_in_the_token_verify() {
    let Some(s) = ed25519() else { return };
    assert_eq!(s.cipher_suite(), 2);
    assert!(
        s.is_test()
            && s.certificate()
                .subject
                .contains("TEST ONLY - NOT FOR SECURITY USE")
    );
    assert!(verifies(s.as_ref(), &chain(s.as_ref(), 20)));
}

#[test]
fn rsa_4096_pulses_signed_in_the_token_verify() {
    if tokens().is_none() {
        return;
    }
    let s = signer_for("lb-rsa", Suite::Rsa { bits: 4096 });
    assert_eq!(s.cipher_suite(), 0);
    assert_eq!(s.certificate().key.describe(), "RSA-4096");
    let pulses = chain(s.as_ref(), 5);
    assert!(pulses.iter().all(|p| p.signature_value.len() == 512));
    assert!(verifies(s.as_ref(), &pulses));
}

#[test]
fn keys_are_sensitive_never_extractable_and_sign_only() {
    let Some(s) = ed25519() else { return };
    let a = s.key().attributes().unwrap();
    assert!(a.token && a.sensitive && a.always_sensitive, "{a:?}");
    assert!(!a.extractable && a.never_extractable, "{a:?}");
    assert!(a.sign && !a.decrypt && !a.unwrap && !a.derive, "{a:?}");
}

#[test]
fn many_tasks_sign_at_once_and_every_signature_verifies() {
    let Some(s) = ed25519() else { return };
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..25u64)
                    .map(|i| {
                        let m = [t.to_be_bytes(), i.to_be_bytes()].concat();
                        let sig = s.sign(&m).unwrap();
                        lavabeacon_format::suite::verify_signature(2, &m, &sig, s.certificate())
                            .is_ok()
                    })
                    .filter(|ok| *ok)
                    .count()
            })
        })
        .collect();
    let good: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(good, 16 * 25);
}

#[test]
fn sealed_values_survive_a_reopen_and_resist_tampering() {
    let Some(s) = ed25519() else { return };
    let secret = Hash512([0x5A; 64]);
    let sealed = s.seal(b"chain 1 pulse 42", &secret.0).unwrap();
    assert!(
        !sealed.windows(8).any(|w| w == &secret.0[..8]),
        "the sealed value does not show the secret"
    );
    // A restart: the key opened afresh from the token opens what was sealed before.
    let again = Pkcs11Key::open(s.key().config())
        .unwrap()
        .into_signer(&s.certificate().der)
        .unwrap();
    assert_eq!(
        again
            .unseal(b"chain 1 pulse 42", &sealed)
            .unwrap()
            .as_slice(),
        &secret.0
    );
    assert!(
        matches!(
            again.unseal(b"chain 1 pulse 43", &sealed),
            Err(SignerError::Unseal(_))
        ),
        "bound to its place"
    );
    let mut tampered = sealed.clone();
    tampered[20] ^= 1;
    assert!(matches!(
        again.unseal(b"chain 1 pulse 42", &tampered),
        Err(SignerError::Unseal(_))
    ));
    assert!(matches!(
        again.unseal(b"chain 1 pulse 42", &sealed[..10]),
        Err(SignerError::Unseal(_))
    ));
}

#[test]
fn the_token_rng_gives_fresh_bytes() {
    let Some(s) = ed25519() else { return };
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    s.random(&mut a).unwrap();
    s.random(&mut b).unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 64]);
}

#[test]
fn a_certificate_of_another_key_fails_the_self_test() {
    let Some(s) = ed25519() else { return };
    let other = lavabeacon_signer::software::SoftwareSigner::new(&[3; 32], None).unwrap();
    let key = Pkcs11Key::open(s.key().config()).unwrap();
    let e = key
        .into_signer(&other.certificate().der)
        .err()
        .expect("mismatch refused");
    assert!(matches!(e, SignerError::SelfTest(_)), "{e}");
}

fn no_pin_in(e: &SignerError) -> String {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PIN), "the PIN leaked: {text}");
    text
}

#[test]
fn configuration_errors_are_clear_and_never_show_the_pin() {
    if tokens().is_none() {
        return;
    }
    let mut c = config("lb-errors", "pulse-key", Suite::Ed25519);
    c.module = PathBuf::from("/nonexistent/libpkcs11.so");
    let e = Pkcs11Key::open(&c).unwrap_err();
    assert!(
        no_pin_in(&e).contains("/nonexistent/libpkcs11.so: no such file"),
        "{e}"
    );

    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a shared library that is not a PKCS#11 module");
    c.module = PathBuf::from(libc);
    let e = Pkcs11Key::open(&c).unwrap_err();
    assert!(no_pin_in(&e).contains("is not a PKCS#11 module"), "{e}");

    let e = Pkcs11Key::open(&config("no-such-token", "pulse-key", Suite::Ed25519)).unwrap_err();
    let t = no_pin_in(&e);
    assert!(
        t.contains("no token labelled \"no-such-token\"") && t.contains("\"lb-errors\""),
        "{t}"
    );

    let e = Pkcs11Key::open(&config("lb-errors", "no-such-key", Suite::Ed25519)).unwrap_err();
    assert!(
        matches!(e, SignerError::MissingKey { .. })
            && no_pin_in(&e).contains("no private key labelled \"no-such-key\""),
        "{e}"
    );

    let mut c = config("lb-errors", "pulse-key", Suite::Ed25519);
    c.pin = PinSource::Env("LAVABEACON_TEST_UNSET_PIN_VAR".into());
    let e = Pkcs11Key::open(&c).unwrap_err();
    assert!(
        no_pin_in(&e).contains("LAVABEACON_TEST_UNSET_PIN_VAR (the HSM PIN) is not set"),
        "{e}"
    );
}

#[test]
fn a_wrong_pin_is_refused() {
    if tokens().is_none() {
        return;
    }
    // lb-pin is used by no other test: once a token is logged in within a process, SoftHSM
    // stops checking PINs for it.
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "000000\n").unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = config("lb-pin", "pulse-key", Suite::Ed25519);
    c.pin = PinSource::File(pin_file);
    let e = Pkcs11Key::open(&c).unwrap_err();
    assert!(matches!(e, SignerError::WrongPin { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("000000"));
}

#[test]
fn a_key_of_the_wrong_type_for_the_suite_is_refused() {
    let Some(s) = ed25519() else { return };
    let mut c = s.key().config().clone();
    c.suite = Suite::Rsa { bits: 4096 };
    let e = Pkcs11Key::open(&c).unwrap_err();
    let t = no_pin_in(&e);
    assert!(
        matches!(e, SignerError::KeyType { .. })
            && t.contains(
                "is an Ed25519 key, but the configured suite rsa-4096 needs an RSA-4096 key"
            ),
        "{t}"
    );
    let again = Pkcs11Key::generate(s.key().config()).unwrap_err();
    assert!(
        no_pin_in(&again).contains("already has a key labelled"),
        "{again}"
    );
}

#[test]
fn the_signer_reconnects_when_the_hsm_drops_its_sessions() {
    if tokens().is_none() {
        return;
    }
    let s = signer_for("lb-reconnect", Suite::Ed25519);
    s.sign(b"before").unwrap();
    // The token forgets its login (as when the HSM restarts under us): every pooled session is
    // left without the right to sign.
    let p = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let _ = p.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| p.get_token_info(*slot).unwrap().label() == "lb-reconnect")
        .unwrap();
    let other = p.open_rw_session(slot).unwrap();
    other.logout().unwrap();
    drop(other);
    let sig = s
        .sign(b"after")
        .expect("the signer opens a new session and logs in again");
    lavabeacon_format::suite::verify_signature(2, b"after", &sig, s.certificate()).unwrap();
}

#[test]
fn a_certificate_can_come_from_an_operator_ca() {
    let Some(s) = ed25519() else { return };
    // The operator's CA: its certificate and key as files would hold them.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example Beacon Operator CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = lavabeacon_signer::cert::CaFiles {
        certificate_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    };
    let key = Pkcs11Key::open(s.key().config()).unwrap();
    let der = key
        .issue_certificate(
            "lavabeacon production key",
            false,
            test_chain_validity(),
            Some(&ca),
        )
        .unwrap();
    let parsed = x509_cert::Certificate::from_der(&der).unwrap();
    assert_eq!(
        parsed.tbs_certificate.issuer.to_string(),
        "CN=Example Beacon Operator CA"
    );
    let signer = key.into_signer(&der).unwrap();
    assert!(!signer.is_test(), "no TEST mark when not asked for");
    assert!(verifies(&signer, &chain(&signer, 3)));
}

#[test]
fn a_pin_file_others_can_read_is_refused_before_the_token_sees_it() {
    if tokens().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("user.pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = config("lb-errors", "pulse-key", Suite::Ed25519);
    c.pin = PinSource::File(pin_file.clone());
    let e = Pkcs11Key::open(&c).unwrap_err();
    let t = no_pin_in(&e);
    assert!(
        t.contains(&pin_file.display().to_string())
            && t.contains("0644")
            && t.contains("chmod 600"),
        "{t}"
    );
    assert_eq!(e.category(), "PIN unavailable");
    // The same file, restricted, opens the key.
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = config("lb-ed25519", "pulse-key", Suite::Ed25519);
    c.pin = PinSource::File(pin_file);
    if ed25519().is_some() {
        Pkcs11Key::open(&c).expect("a 0600 PIN file is accepted");
    }
}

#[test]
fn the_pin_put_where_its_variable_name_belongs_is_refused_without_being_echoed() {
    if tokens().is_none() {
        return;
    }
    let mut c = config("lb-errors", "pulse-key", Suite::Ed25519);
    c.pin = PinSource::Env(PIN.into());
    let e = Pkcs11Key::open(&c).unwrap_err();
    let t = no_pin_in(&e);
    assert!(
        t.contains("pin_env must name an environment variable; the value given is not a variable name (is it the PIN itself?)"),
        "{t}"
    );
    assert!(!format!("{c:?}").contains(PIN), "{c:?}");
}

/// From 2020 for a year past now: the test chains are stamped at fixed dates, and a verifier
/// holds every pulse to its certificate's validity.
fn test_chain_validity() -> Validity {
    Validity {
        not_before: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800),
        not_after: Validity::years(1).not_after,
    }
}
