//! `softhsm-setup/dev-token.sh` as a developer runs it: a token in a directory of their
//! choosing, keys and a TEST certificate, a ready configuration; run twice, nothing changes.

mod common;

use common::softhsm_present;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = common::output_text(&out);
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn dev_token_script_makes_a_ready_token_and_is_idempotent() {
    if !softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let bin = env!("CARGO_BIN_EXE_lavabeacon");
    let setup = || common::dev_token(&hsm);
    let first = setup();
    let toml = common::dev_config(&hsm);
    let show = |out: &mut String| {
        out.push_str(&run(Command::new(bin)
            .args(["cert", "show", "--config"])
            .arg(&toml)))
    };
    let mut cert1 = String::new();
    show(&mut cert1);
    let second = setup();
    let mut cert2 = String::new();
    show(&mut cert2);
    assert_eq!(cert1, cert2, "a second run keeps the key and certificate");
    assert!(second.contains("already exists"), "{second}");
    assert!(
        cert1.contains("TEST ONLY - NOT FOR SECURITY USE") && cert1.contains("Ed25519"),
        "{cert1}"
    );

    let keys = run(Command::new(bin)
        .args(["keys", "list", "--config"])
        .arg(&toml));
    assert!(
        keys.lines().any(|l| l.starts_with("pulse-key ")
            && l.contains("private")
            && l.ends_with("sensitive, never extractable")),
        "{keys}"
    );
    assert!(
        keys.lines()
            .any(|l| l.starts_with("pulse-key-seal") && l.contains("AES")),
        "{keys}"
    );

    // The PIN files are private and no output shows a PIN.
    for f in ["user.pin", "so.pin"] {
        let pin = std::fs::read_to_string(hsm.join(f)).unwrap();
        assert!(pin.len() >= 8, "{f}");
        for out in [&first, &second, &keys, &cert1] {
            assert!(!out.contains(pin.trim()), "{f} leaked");
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(hsm.join(f)).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(!std::fs::read_to_string(&toml).unwrap().contains(
        std::fs::read_to_string(hsm.join("user.pin"))
            .unwrap()
            .trim()
    ));
}
