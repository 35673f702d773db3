//! Another beacon's pulse in the `external` field, fetched over real HTTP from a server on a
//! loopback port: NIST's own 2018 pulse, verified with NIST's certificate; the same pulse with
//! one signed byte changed; a server that is down, failing or answering nonsense.

use lavabeacon_engine::source::external::ExternalBeacon;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::json::parse_pulse;
use lavabeacon_format::manifest::ExternalEntry;
use lavabeacon_format::pulse::External;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/nist-2018-chain1")
}

/// Serves `status` and `body` to every request on a free loopback port; returns its URL.
fn server(status: u16, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/beacon/2.0/pulse/last",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn nist_certs() -> CertificateSet {
    let mut set = CertificateSet::new();
    set.load_file(&vectors().join("certificate-5501e3d7.pem"))
        .unwrap();
    set
}

fn nist_pulse_text() -> String {
    std::fs::read_to_string(vectors().join("pulse-54610.json")).unwrap()
}

const DESCRIPTION: &str = "NIST Randomness Beacon 2.0, chain 1";

/// Serves `body`, then fetches it with NIST's certificate as our pulse 30 s after NIST's.
fn fetch_served(
    body: String,
    pulse: &lavabeacon_format::Pulse,
) -> (ExternalBeacon, External, ExternalEntry) {
    let url = server(200, body);
    let beacon = ExternalBeacon::new(
        &url,
        DESCRIPTION,
        Some(nist_certs()),
        Duration::from_secs(2),
    );
    let (ext, entry) = beacon.fetch(pulse.time_ms().unwrap() + 30_000);
    (beacon, ext, entry)
}

#[test]
fn a_verified_fresh_pulse_gives_status_zero_and_the_hash_of_its_output_value() {
    let text = nist_pulse_text();
    let pulse = parse_pulse(&text).unwrap();
    let (beacon, ext, entry) = fetch_served(text, &pulse);
    assert_eq!(entry.status, "ok");
    assert_eq!(ext.status_code, 0);
    assert_eq!(ext.source_id, sha512(&[DESCRIPTION.as_bytes()]));
    assert_eq!(ext.value, sha512(&[pulse.output_value.as_bytes()]));
    assert_eq!(entry.uri.as_deref(), Some(pulse.uri.as_str()));
    assert_eq!(
        entry.external().unwrap(),
        ext,
        "an auditor recomputes the field from the manifest"
    );

    // The same pulse seen years later is stale: still used, flagged with status 1.
    let (ext, entry) = beacon.fetch(pulse.time_ms().unwrap() + 86_400_000);
    assert!(entry.status.starts_with("stale"), "{}", entry.status);
    assert_eq!(ext.status_code, 1);
    assert_eq!(ext.value, sha512(&[pulse.output_value.as_bytes()]));
}

#[test]
fn a_pulse_that_does_not_verify_is_not_used() {
    let text = nist_pulse_text();
    let pulse = parse_pulse(&text).unwrap();
    // One signed byte changed: the first hex digit of localRandomValue.
    let lrv = pulse.local_random_value.to_hex_upper();
    let flipped = format!("{}{}", if &lrv[..1] == "0" { "1" } else { "0" }, &lrv[1..]);
    let (_, ext, entry) = fetch_served(text.replace(&lrv, &flipped), &pulse);
    assert!(entry.status.contains("does not verify"), "{}", entry.status);
    assert_eq!(ext.status_code, 2);
    assert_eq!(ext.value, Hash512::ZERO);
    assert!(entry.output_value.is_none());
}

#[test]
fn a_beacon_that_is_down_failing_or_talking_nonsense_gives_status_two() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/beacon/2.0/pulse/last", l.local_addr().unwrap())
    };
    for (url, why) in [
        (closed, "failed: "),
        (server(500, "{}".into()), "HTTP 500"),
        (server(200, "<html>hello</html>".into()), "not a pulse"),
    ] {
        let beacon = ExternalBeacon::new(&url, DESCRIPTION, None, Duration::from_secs(2));
        let (ext, entry) = beacon.fetch(0);
        assert!(entry.status.contains(why), "{url}: {}", entry.status);
        assert_eq!(ext.status_code, 2);
        assert_eq!(ext.value, Hash512::ZERO);
        assert_eq!(ext.source_id, sha512(&[DESCRIPTION.as_bytes()]));
    }
}
