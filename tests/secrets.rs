//! Secrets never reach a message (issue 11, point 12): each case a user can get wrong, run on
//! the real binary, with everything it printed on both streams searched for the secret. Debug
//! logging is on, so that a secret in a debug line fails too.

mod common;

use common::output_text;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A PIN-like value, as an operator would mistype it into the configuration.
const PIN: &str = "548083359663";

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
    cmd.args(args)
        .env("LAVABEACON_LOG", "debug")
        .env_remove("LAVABEACON_DATABASE_URL")
        .env_remove("LAVABEACON_HSM_PIN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` for at most `secs` seconds (a command that retries a database forever is
/// stopped then): what it printed, and its exit status if it ended by itself.
fn run_for(mut cmd: Command, secs: u64) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    (code, output_text(&out))
}

fn run(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("lavabeacon.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn a_pin_typed_unquoted_as_pin_file_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[beacon]\nchain = 1\n\n[signer]\npin_file = {PIN}\n"),
    );
    for args in [
        vec!["keys", "list", "--config", &config],
        vec!["cert", "show", "--config", &config],
        vec!["engine", "--config", &config],
    ] {
        let o = run(&args);
        let out = output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}");
        assert!(!out.contains(PIN), "{args:?} echoed the PIN: {out}");
        // What is wrong, and where, is still said.
        assert!(
            out.contains("signer.pin_file") && out.contains("line 5"),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn a_pin_put_in_pin_env_is_refused_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("[signer]\npin_env = \"{PIN}\"\n"));
    for args in [
        vec!["keys", "list", "--config", &config],
        vec!["engine", "--config", &config],
    ] {
        let o = run(&args);
        let out = output_text(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(!out.contains(PIN), "{args:?} echoed the PIN: {out}");
        assert!(out.contains("pin_env"), "{args:?}: {out}");
    }
}

/// Commands given `url` by `--database`, then by `LAVABEACON_DATABASE_URL`, each failing to
/// connect (nothing listens on port 1): none may show any of `secrets`.
fn assert_url_never_shown(url: &str, secrets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("x.jsonl").display().to_string();
    let by_flag: Vec<Vec<&str>> = vec![
        vec!["replay", "--database", url],
        vec!["dev", "generate-chain", "--pulses", "2", "--database", url],
        vec!["export", "--database", url, "--output", &out_file],
    ];
    let by_env: Vec<Vec<&str>> = vec![
        vec!["export", "--output", &out_file],
        vec!["api", "--listen", "127.0.0.1:0"],
    ];
    let cases = by_flag
        .into_iter()
        .map(|a| (a, false))
        .chain(by_env.into_iter().map(|a| (a, true)));
    for (args, env) in cases {
        let mut cmd = command(&args);
        if env {
            cmd.env("LAVABEACON_DATABASE_URL", url);
        }
        let (code, out) = run_for(cmd, 30);
        for s in secrets {
            assert!(
                !out.contains(s),
                "{args:?} (URL by {}) showed {s:?}: {out}",
                if env { "environment" } else { "flag" }
            );
        }
        assert_ne!(code, Some(0), "{args:?} cannot have succeeded: {out}");
    }
}

#[test]
fn a_password_in_the_query_of_a_database_url_is_never_shown() {
    assert_url_never_shown(
        "postgres://beacon@127.0.0.1:1/beacon?sslmode=disable&password=Qu3ry-Secret-77",
        &["Qu3ry-Secret-77"],
    );
}

#[test]
fn a_password_containing_an_at_sign_is_never_shown_not_even_its_tail() {
    assert_url_never_shown(
        "postgres://beacon:Front-S3cret@Tail-S3cret@127.0.0.1:1/beacon",
        &["Front-S3cret", "Tail-S3cret"],
    );
}

#[test]
fn a_pin_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if !common::softhsm_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::dev_token(dir.path());
    let config = common::dev_config(dir.path()).display().to_string();
    let pin_file = dir.path().join("user.pin");
    let pin = std::fs::read_to_string(&pin_file).unwrap();
    // The dev token's PIN file is 0600: the key can be listed (so the refusal below is for the
    // mode alone).
    let o = run(&["keys", "list", "--config", &config]);
    assert!(o.status.success(), "{}", output_text(&o));

    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["keys", "list", "--config", &config]);
    let out = output_text(&o);
    assert!(!o.status.success(), "a 0644 PIN file was accepted: {out}");
    assert!(!out.contains(pin.trim()), "the PIN was echoed: {out}");
    assert!(
        out.contains("user.pin"),
        "the message names the file: {out}"
    );
}
