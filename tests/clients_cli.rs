//! `lavabeacon clients`: credentials printed once as one JSON object, the file 0600, `list`
//! without secrets, rotation and retirement, and clear errors that never show a secret.

use std::path::Path;
use std::process::{Command, Output};

fn clients(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .arg("clients")
        .args(args)
        .arg("--clients-file")
        .arg(file)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[test]
fn add_prints_the_credentials_once_and_list_never_shows_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clients.json");
    let added = clients(
        &[
            "add",
            "alice",
            "--allow-ip",
            "127.0.0.1",
            "--allow-ip",
            "10.1.0.0/16",
            "--allow-origin",
            "https://app.example.org",
            "--rate",
            "30",
            "--bytes-per-day",
            "4096",
        ],
        &file,
    );
    assert_eq!(added.stdout.iter().filter(|b| **b == b'\n').count(), 1);
    let creds = json(&added);
    assert_eq!(creds["client"], "alice");
    assert_eq!(creds["keyId"], "alice.1");
    let key = creds["hmacKey"].as_str().unwrap();
    assert_eq!(lavabeacon_private_key_len(key), 32);
    let header_name = creds["header"]["name"].as_str().unwrap();
    let header_value = creds["header"]["value"].as_str().unwrap();
    assert!(header_name.len() >= 8 && header_value.len() >= 32);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let listed = clients(&["list"], &file);
    let text = String::from_utf8(listed.stdout.clone()).unwrap();
    let list = json(&listed);
    assert_eq!(list[0]["name"], "alice");
    assert_eq!(list[0]["keyIds"][0], "alice.1");
    assert_eq!(list[0]["allowIp"][0], "127.0.0.1/32");
    assert_eq!(list[0]["ratePerMinute"], 30);
    for secret in [key, header_name, header_value] {
        assert!(!text.contains(secret), "list shows a secret");
    }

    let second = json(&clients(&["rotate", "alice"], &file));
    assert_eq!(second["keyId"], "alice.2");
    assert_ne!(second["hmacKey"], creds["hmacKey"]);
    let third = clients(&["rotate", "alice"], &file);
    assert_eq!(third.status.code(), Some(2));
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(err.contains("retire one first"), "{err}");
    assert!(third.stdout.is_empty());
    assert!(clients(&["retire", "alice.1"], &file).status.success());
    let list = json(&clients(&["list"], &file));
    assert_eq!(list[0]["keyIds"], serde_json::json!(["alice.2"]));

    // Errors: clear, exit 2, nothing on stdout, no secret on stderr.
    for (args, says) in [
        (vec!["add", "alice"], "already exists"),
        (vec!["add", "a.b"], "client name"),
        (vec!["retire", "alice.2"], "only key"),
        (vec!["remove", "bob"], "no client"),
        (
            vec!["add", "carol", "--allow-origin", "app.example.org"],
            "origin",
        ),
    ] {
        let out = clients(&args, &file);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            !err.contains(key) && !err.contains(header_value),
            "{args:?}"
        );
    }
    let bad_ip = clients(&["add", "dave", "--allow-ip", "localhost"], &file);
    assert_eq!(bad_ip.status.code(), Some(2));

    assert!(clients(&["remove", "alice"], &file).status.success());
    assert_eq!(json(&clients(&["list"], &file)), serde_json::json!([]));

    // A file others can read is refused, and said so.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = clients(&["list"], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

/// Bytes of a base64url key with padding.
fn lavabeacon_private_key_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE
        .decode(text)
        .unwrap()
        .len()
}
