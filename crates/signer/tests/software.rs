//! The software key: development only, and it says so.

use lavabeacon_format::suite::{verify_signature, PulseSigner};
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::{self_test, Signer, SignerError};

#[test]
fn software_certificates_are_marked_test_only_and_signatures_verify() {
    let s = SoftwareSigner::new(&[9; 32], None).unwrap();
    assert!(s.is_test());
    assert!(
        s.certificate()
            .subject
            .contains("TEST ONLY - NOT FOR SECURITY USE"),
        "{}",
        s.certificate().subject
    );
    let sig = s.sign(b"m").unwrap();
    verify_signature(2, b"m", &sig, s.certificate()).unwrap();
    self_test(&s).unwrap();
}

#[test]
fn the_key_and_certificate_persist_and_the_seed_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let a = SoftwareSigner::load_or_create(dir.path()).unwrap();
    let b = SoftwareSigner::load_or_create(dir.path()).unwrap();
    assert_eq!(a.certificate_id(), b.certificate_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("software-key.seed"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let sealed = a.seal(b"place", b"secret value").unwrap();
    assert_eq!(
        b.unseal(b"place", &sealed).unwrap().as_slice(),
        b"secret value"
    );
    assert!(matches!(
        b.unseal(b"elsewhere", &sealed),
        Err(SignerError::Unseal(_))
    ));
    let other = SoftwareSigner::new(&[1; 32], None).unwrap();
    assert!(
        matches!(other.unseal(b"place", &sealed), Err(SignerError::Unseal(_))),
        "another key cannot open it"
    );
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let a = SoftwareSigner::new(&[1; 32], None).unwrap();
    let e = SoftwareSigner::new(&[2; 32], Some(&a.certificate().der))
        .err()
        .unwrap();
    assert!(matches!(e, SignerError::SelfTest(_)), "{e}");
}
