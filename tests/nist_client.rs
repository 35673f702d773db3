//! An existing NIST Beacon 2.0 client that nobody here wrote — the npm package
//! `nist-randomness-beacon` 2.0.4, unmodified — pointed at `lavabeacon serve` (RSA key in a
//! SoftHSM2 token, cipherSuite 0): it fetches our pulses and certificate over NIST's paths and
//! verifies them. The same client, given one of our pulses with one signed digit changed,
//! refuses it. See scripts/nist-client/README.md.

mod common;

use common::{get, softhsm_present, wait_for, Beacon};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// node and npm, or a skip with a message (a failure under CI=true).
fn node_present() -> bool {
    common::present_or_skip(common::runs("node") && common::runs("npm"), "node with npm")
}

/// The client installed (once) from the npm registry into the build's scratch directory.
fn client() -> PathBuf {
    common::npm_installed(
        "scripts/nist-client",
        "nist-client",
        &["package.json", "package-lock.json", "verify.js"],
        "nist-randomness-beacon",
    )
    .join("verify.js")
}

fn run_client(base: &str, specs: &[String]) -> (bool, String) {
    let out = Command::new("node")
        .arg(client())
        .arg(base)
        .args(specs)
        .output()
        .unwrap();
    (out.status.success(), common::output_text(&out))
}

/// Serves `pulse` for any pulse path and `pem` for the certificate path.
fn tampered_server(pulse: String, pem: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&req);
            let body = if head.contains("/certificate/") {
                &pem
            } else {
                &pulse
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_nist_beacon_client_verifies_our_rsa_pulses_and_refuses_a_changed_one() {
    if !softhsm_present() || !node_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    common::dev_token_with(&hsm, &["--suite", "rsa-3072"]);
    let store = lavabeacon_store::open(&format!("sqlite:{}", hsm.join("lavabeacon.db").display()))
        .await
        .unwrap();
    let beacon = Beacon::start("serve", &common::dev_config(&hsm), &[]);
    wait_for(store.as_ref(), 3, 30).await;
    let second = store.by_index(1, 2).await.unwrap().unwrap();
    assert_eq!(second.cipher_suite, 0);
    let specs = vec![
        "last".to_string(),
        "1/1".into(),
        "1/2".into(),
        format!("time:{}", second.time_ms().unwrap()),
    ];
    let (ok, out) = tokio::task::spawn_blocking({
        let base = beacon.base.clone();
        move || run_client(&base, &specs)
    })
    .await
    .unwrap();
    assert!(ok && out.contains("4 passed, 0 failed"), "{out}");

    // The same pulse with one digit of its localRandomValue changed.
    let (status, _, body) = get(&format!("{}/beacon/2.0/chain/1/pulse/2", beacon.base), &[]);
    assert_eq!(status, 200);
    let (_, _, pem) = get(
        &format!(
            "{}/beacon/2.0/certificate/{}",
            beacon.base,
            second.certificate_id.to_hex_lower()
        ),
        &[],
    );
    beacon.kill();
    let lrv = second.local_random_value.to_hex_upper();
    let changed = format!(
        "{}{}",
        if lrv.starts_with('0') { '1' } else { '0' },
        &lrv[1..]
    );
    let base = tampered_server(body.replace(&lrv, &changed), pem);
    let (ok, out) = tokio::task::spawn_blocking(move || run_client(&base, &["1/2".to_string()]))
        .await
        .unwrap();
    assert!(!ok && out.contains("FAIL 1/2"), "{out}");
}
