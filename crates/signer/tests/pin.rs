//! Where the HSM PIN comes from, and that no message or Debug output ever shows it: a PIN file
//! others may read is refused, a PIN put where its variable's name belongs is refused without
//! being repeated. No HSM needed.

use lavabeacon_signer::{is_env_var_name, PinSource, SignerError};
use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;

const PIN: &str = "548083359663";

fn pin_file(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("user.pin");
    std::fs::write(&p, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, p)
}

fn text(e: &SignerError) -> String {
    let t = format!("{e} {e:?}");
    assert!(!t.contains(PIN), "the PIN leaked: {t}");
    t
}

#[test]
fn a_pin_file_of_mode_0600_or_0400_is_read_without_its_newline() {
    for mode in [0o600, 0o400] {
        let (_d, p) = pin_file(mode);
        let pin = PinSource::File(p).read().unwrap();
        assert_eq!(pin.expose_secret(), PIN);
    }
}

#[test]
fn a_pin_file_group_or_others_may_read_or_write_is_refused_naming_file_mode_and_fix() {
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o666] {
        let (_d, p) = pin_file(mode);
        let e = PinSource::File(p.clone()).read().unwrap_err();
        let t = text(&e);
        assert!(t.contains(&p.display().to_string()), "{t}");
        assert!(t.contains(&format!("{mode:04o}")), "{t}");
        assert!(t.contains("chmod 600"), "{t}");
        assert_eq!(e.category(), "PIN unavailable");
    }
}

#[test]
fn a_pin_env_that_is_not_a_variable_name_is_refused_without_echoing_it() {
    for value in [PIN, "hunter2!", "my pin", "1abc", ""] {
        let e = PinSource::Env(value.into()).read().unwrap_err();
        let t = format!("{e} {e:?}");
        assert!(
            value.is_empty() || !t.contains(value),
            "the value was echoed: {t}"
        );
        assert_eq!(
            e.to_string(),
            "pin_env must name an environment variable; the value given is not a variable \
             name (is it the PIN itself?)"
        );
        let d = format!("{:?}", PinSource::Env(value.into()));
        assert!(
            value.is_empty() || !d.contains(value),
            "Debug shows it: {d}"
        );
    }
}

#[test]
fn a_missing_variable_is_named_only_when_it_is_a_name() {
    let e = PinSource::Env("LAVABEACON_PIN_TEST_UNSET".into())
        .read()
        .unwrap_err();
    assert_eq!(
        text(&e),
        "environment variable LAVABEACON_PIN_TEST_UNSET (the HSM PIN) is not set \
         Pin(\"environment variable LAVABEACON_PIN_TEST_UNSET (the HSM PIN) is not set\")"
    );
    assert_eq!(
        format!("{:?}", PinSource::Env("LAVABEACON_PIN".into())),
        "PIN from $LAVABEACON_PIN"
    );
}

#[test]
fn variable_names_are_told_from_values() {
    for ok in ["A", "_", "LAVABEACON_HSM_PIN", "pin_2", "_x9"] {
        assert!(is_env_var_name(ok), "{ok}");
    }
    for bad in ["", "9", PIN, "A-B", "A B", "PIN=1", "é", "$PIN"] {
        assert!(!is_env_var_name(bad), "{bad}");
    }
}

#[test]
fn a_pin_file_name_that_looks_like_the_pin_is_not_shown() {
    // `pin_file = "548083359663"`: the PIN typed where its file belongs (the configuration
    // makes it absolute).
    for p in [PIN.to_string(), format!("/etc/lavabeacon/{PIN}")] {
        let e = PinSource::File(p.clone().into()).read().unwrap_err();
        let t = text(&e);
        assert!(t.contains("No such file") && t.contains("withheld"), "{t}");
        assert!(!format!("{:?}", PinSource::File(p.into())).contains(PIN));
    }
    // A real path is shown, so the operator can fix it.
    for p in [
        "/nonexistent/user.pin",
        "/nonexistent/pin",
        "/run/secrets/hsm_pin2",
    ] {
        let e = PinSource::File(p.into()).read().unwrap_err();
        assert!(e.to_string().contains(p), "{e}");
    }
}

#[test]
fn every_error_has_a_short_public_category() {
    let cases = [
        (
            SignerError::Unavailable("token \"t\": CKR_GENERAL_ERROR".into()),
            "hsm unavailable",
        ),
        (SignerError::WrongPin { label: "t".into() }, "wrong PIN"),
        (
            SignerError::MissingKey {
                key: "k".into(),
                token: "t".into(),
            },
            "key not found",
        ),
        (
            SignerError::Hsm("signing: CKR_MECHANISM_INVALID".into()),
            "hsm operation failed",
        ),
        (
            SignerError::Unseal("authentication failed".into()),
            "sealed value unreadable",
        ),
        (SignerError::Pin("x".into()), "PIN unavailable"),
    ];
    for (e, category) in cases {
        assert_eq!(e.category(), category, "{e}");
        // A category carries no detail: no quotes, no codes.
        assert!(!category.contains('"') && !category.contains("CKR_"));
    }
    assert!(SignerError::Unavailable("x".into()).is_transient());
    assert!(!SignerError::WrongPin { label: "t".into() }.is_transient());
}
