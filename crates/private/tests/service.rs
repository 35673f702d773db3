//! The private-bytes service without HTTP: a real clients file on disk, every check in the
//! protocol's order with its status, rate, quota, entropy, reloads and counters. (The same
//! over a real HTTPS server is in the API crate's tests.)

use lavabeacon_private::clients::{ClientsFile, Credentials, NewClient};
use lavabeacon_private::drbg::Drbg;
use lavabeacon_private::gate::{Refusal, Request};
use lavabeacon_private::protocol::{self, Signed};
use lavabeacon_private::{Route, Service, UNKNOWN_CLIENT};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const NOW: i64 = 1_796_140_982;
const HOST: &str = "beacon.example.org";
const PATH: &str = "/private/v1/bytes";

struct Call<'a> {
    creds: &'a Credentials,
    query: String,
    date: i64,
    nonce: String,
    peer: IpAddr,
    extra: Vec<(&'static str, String)>,
    /// Sign with this key instead of the client's.
    key: Option<Vec<u8>>,
    key_id: Option<String>,
    header_value: Option<String>,
}

impl<'a> Call<'a> {
    fn new(creds: &'a Credentials, query: &str) -> Self {
        Call {
            creds,
            query: query.into(),
            date: NOW,
            nonce: protocol::new_nonce(),
            peer: "127.0.0.1".parse().unwrap(),
            extra: Vec::new(),
            key: None,
            key_id: None,
            header_value: None,
        }
    }

    fn send(&self, s: &Service, now: Instant) -> Result<lavabeacon_private::Answer, Refusal> {
        let date = self.date.to_string();
        let key_id = self.key_id.clone().unwrap_or(self.creds.key_id.clone());
        let key = self
            .key
            .clone()
            .unwrap_or_else(|| self.creds.key().unwrap().to_vec());
        let signed = Signed {
            method: "GET",
            host: HOST,
            path: PATH,
            query: &self.query,
            date: &date,
            nonce: &self.nonce,
            key_id: &key_id,
            body: b"",
        };
        let sig = protocol::sign(&key, &signed);
        let header_value = self
            .header_value
            .clone()
            .unwrap_or(self.creds.header.value.clone());
        let mut headers: Vec<(&str, &str)> = vec![
            (self.creds.header.name.as_str(), header_value.as_str()),
            (protocol::KEY_ID, &key_id),
            (protocol::DATE, &date),
            (protocol::NONCE, &self.nonce),
            (protocol::SIGNATURE, &sig),
        ];
        for (n, v) in &self.extra {
            headers.push((n, v.as_str()));
        }
        let r = Request {
            method: "GET",
            host: HOST,
            path: PATH,
            query: &self.query,
            headers: headers.as_slice(),
            peer: self.peer,
            body: b"",
        };
        s.handle(Route::Bytes, &r, NOW, now)
    }
}

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    file: ClientsFile,
    service: Service,
    now: Instant,
}

fn world(
    configure: impl FnOnce(&mut ClientsFile) -> Vec<Credentials>,
) -> (World, Vec<Credentials>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clients.json");
    let mut file = ClientsFile::load_or_new(&path).unwrap();
    let creds = configure(&mut file);
    file.save(&path).unwrap();
    let file = ClientsFile::load(&path).unwrap();
    let now = Instant::now();
    let mut drbg = Drbg::new(Duration::from_secs(120), Duration::from_secs(60));
    drbg.reseed(b"test material", now);
    let service = Service::new(&file, drbg, false);
    (
        World {
            _dir: dir,
            path,
            file,
            service,
            now,
        },
        creds,
    )
}

fn refusal(r: Result<lavabeacon_private::Answer, Refusal>) -> Refusal {
    match r {
        Ok(_) => panic!("served, but a refusal was expected"),
        Err(e) => e,
    }
}

fn alice_only(f: &mut ClientsFile) -> Vec<Credentials> {
    let opts = NewClient {
        allow_ip: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    };
    vec![f.add("alice", opts, NOW).unwrap()]
}

#[test]
fn a_signed_request_from_an_allowed_address_gets_its_bytes_and_its_quota_left() {
    let (w, c) = world(alice_only);
    let a = Call::new(&c[0], "n=32&format=hex")
        .send(&w.service, w.now)
        .unwrap();
    assert_eq!(a.body.len(), 64);
    assert!(a.body.iter().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a.content_type, "text/plain; charset=utf-8");
    assert_eq!(a.bytes_left, (16 << 20) - 32);
    assert_eq!(a.client, "alice");
    let b = Call::new(&c[0], "n=32&format=hex")
        .send(&w.service, w.now)
        .unwrap();
    assert_ne!(a.body.as_slice(), b.body.as_slice());
}

#[test]
fn every_refusal_comes_with_its_status_in_the_protocols_order() {
    let (w, c) = world(|f| {
        let mut v = alice_only(f);
        let opts = NewClient {
            allow_origin: vec!["https://app.example.org".into()],
            ..Default::default()
        };
        v.push(f.add("web", opts, NOW).unwrap());
        v
    });
    let (alice, web) = (&c[0], &c[1]);
    let s = &w.service;
    let status = |call: Call| {
        let r = refusal(call.send(s, w.now));
        (r.status, r.reason)
    };

    // The custom header: missing (another value) or wrong.
    let mut call = Call::new(alice, "n=8");
    call.header_value = Some("wrong".into());
    assert_eq!(status(call), (403, "header"));
    // The address: 127.0.0.2 when only 127.0.0.1 is allowed — even with a good signature.
    let mut call = Call::new(alice, "n=8");
    call.peer = "127.0.0.2".parse().unwrap();
    assert_eq!(status(call), (403, "address"));
    // The Origin, for a client with an origin list: wrong, missing, or from the Referer.
    let mut call = Call::new(web, "n=8");
    call.extra.push(("Origin", "https://evil.example".into()));
    assert_eq!(status(call), (403, "origin"));
    assert_eq!(status(Call::new(web, "n=8")), (403, "origin"));
    let mut call = Call::new(web, "n=8");
    call.extra
        .push(("Referer", "https://app.example.org/page?x=1".into()));
    assert!(call.send(s, w.now).is_ok());
    let mut call = Call::new(web, "n=8");
    call.extra
        .push(("Origin", "HTTPS://APP.example.org".into()));
    assert!(call.send(s, w.now).is_ok());

    // The key: unknown, or another client's.
    let mut call = Call::new(alice, "n=8");
    call.key_id = Some("mallory.1".into());
    assert_eq!(status(call), (401, "key"));
    let mut call = Call::new(alice, "n=8");
    call.key_id = Some(web.key_id.clone());
    call.key = Some(web.key().unwrap().to_vec());
    assert_eq!(status(call), (401, "key"));
    // The signature: made with another key.
    let mut call = Call::new(alice, "n=8");
    call.key = Some(vec![0u8; 32]);
    assert_eq!(status(call), (401, "signature"));
    // The date: 61 s either way is refused, 60 s is not.
    for (offset, ok) in [(-61, false), (61, false), (-60, true), (60, true)] {
        let mut call = Call::new(alice, "n=8");
        call.date = NOW + offset;
        let r = call.send(s, w.now);
        assert_eq!(r.is_ok(), ok, "date {offset:+} s");
        if !ok {
            let e = refusal(r);
            assert_eq!((e.status, e.reason), (401, "date"));
            assert!(e.message.contains(&format!("{offset} s")), "{}", e.message);
        }
    }
    // The nonce: reused, or not base64url.
    let call = Call::new(alice, "n=8");
    assert!(call.send(s, w.now).is_ok());
    assert_eq!(status(call), (401, "nonce"));
    let mut call = Call::new(alice, "n=8");
    call.nonce = "short".into();
    assert_eq!(status(call), (401, "nonce"));
    // The size.
    assert_eq!(status(Call::new(alice, "n=0")), (400, "request"));
    assert_eq!(status(Call::new(alice, "n=65537")), (413, "size"));

    // A refusal never names a secret.
    let secrets = [
        alice.hmac_key.as_str(),
        alice.header.value.as_str(),
        alice.header.name.as_str(),
    ];
    let mut call = Call::new(alice, "n=8");
    call.key = Some(vec![1u8; 32]);
    let e = refusal(call.send(s, w.now));
    for secret in secrets {
        assert!(!e.message.contains(secret));
    }

    // Counters: by client and reason, the unknown client for header refusals.
    let counters = s.counters();
    assert_eq!(counters[UNKNOWN_CLIENT].refused["header"], 1);
    assert_eq!(counters["alice"].refused["date"], 2);
    assert_eq!(counters["web"].refused["origin"], 2);
    assert!(counters["alice"].requests >= 3);
}

#[test]
fn a_retired_key_is_refused_and_the_new_one_works_after_a_reload() {
    let (w, c) = world(alice_only);
    let mut file = w.file.clone();
    let second = file.rotate("alice", NOW).unwrap();
    assert_eq!(second.key_id, "alice.2");
    assert_eq!(second.header.value, c[0].header.value);
    file.save(&w.path).unwrap();
    w.service.reload(&ClientsFile::load(&w.path).unwrap());
    // Both keys are live.
    assert!(Call::new(&c[0], "n=1").send(&w.service, w.now).is_ok());
    assert!(Call::new(&second, "n=1").send(&w.service, w.now).is_ok());
    assert!(file.rotate("alice", NOW).is_err(), "a third live key");
    file.retire("alice.1").unwrap();
    file.save(&w.path).unwrap();
    w.service.reload(&ClientsFile::load(&w.path).unwrap());
    let e = refusal(Call::new(&c[0], "n=1").send(&w.service, w.now));
    assert_eq!((e.status, e.reason), (401, "key"));
    assert!(Call::new(&second, "n=1").send(&w.service, w.now).is_ok());
    assert!(file.retire("alice.2").is_err(), "the last key");
    // A new key never reuses a retired number.
    assert_eq!(file.rotate("alice", NOW).unwrap().key_id, "alice.3");
    file.remove("alice").unwrap();
    w.service.reload(&file);
    let e = refusal(Call::new(&second, "n=1").send(&w.service, w.now));
    assert_eq!(e.status, 403, "a removed client's header opens nothing");
}

#[test]
fn over_the_rate_or_the_daily_bytes_gets_429_with_retry_after() {
    let (w, c) = world(|f| {
        let opts = NewClient {
            rate_per_minute: Some(3),
            bytes_per_day: Some(100),
            ..Default::default()
        };
        vec![f.add("slow", opts, NOW).unwrap()]
    });
    let s = &w.service;
    for _ in 0..3 {
        Call::new(&c[0], "n=10").send(s, w.now).unwrap();
    }
    let e = refusal(Call::new(&c[0], "n=10").send(s, w.now));
    assert_eq!((e.status, e.reason), (429, "rate"));
    let wait = e.retry_after.unwrap();
    assert!(
        (1..=20).contains(&wait),
        "retry after {wait} s for 3 a minute"
    );

    let (w, c) = world(|f| {
        let opts = NewClient {
            bytes_per_day: Some(100),
            ..Default::default()
        };
        vec![f.add("small", opts, NOW).unwrap()]
    });
    let a = Call::new(&c[0], "n=60").send(&w.service, w.now).unwrap();
    assert_eq!(a.bytes_left, 40);
    let e = refusal(Call::new(&c[0], "n=41").send(&w.service, w.now));
    assert_eq!((e.status, e.reason), (429, "quota"));
    let until_midnight = (NOW.div_euclid(86_400) + 1) * 86_400 - NOW;
    assert_eq!(e.retry_after, Some(until_midnight as u64));
    assert_eq!(
        Call::new(&c[0], "n=40")
            .send(&w.service, w.now)
            .unwrap()
            .bytes_left,
        0
    );
}

#[test]
fn unhealthy_or_stale_entropy_gets_503_and_the_bytes_are_not_counted() {
    let (w, c) = world(alice_only);
    w.service.unhealthy("camera: repetition count test failed");
    let e = refusal(Call::new(&c[0], "n=16").send(&w.service, w.now));
    assert_eq!((e.status, e.reason), (503, "entropy"));
    assert_eq!(e.retry_after, Some(60));
    assert!(e.message.contains("repetition count"), "{}", e.message);
    assert_eq!(w.service.bytes_left("alice", NOW), Some(16 << 20));
    w.service.reseed(b"healthy again", w.now);
    assert!(Call::new(&c[0], "n=16").send(&w.service, w.now).is_ok());
    // Two periods without a reseed.
    let later = w.now + Duration::from_secs(121);
    let e = refusal(Call::new(&c[0], "n=16").send(&w.service, later));
    assert_eq!(e.status, 503);
}

#[test]
fn the_clients_file_is_written_0600_atomically_and_refused_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let (w, c) = world(alice_only);
    let mode = std::fs::metadata(&w.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(w.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "clients.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let listed = serde_json::to_string(&w.file.list()).unwrap();
    assert!(listed.contains("alice.1"));
    assert!(!listed.contains(&c[0].hmac_key) && !listed.contains(&c[0].header.value));

    std::fs::set_permissions(&w.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = ClientsFile::load(&w.path)
        .err()
        .expect("an exposed file was read");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&w.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&w.path, "{\"version\": 1, \"clients\": [{\"name\": 5}]}").unwrap();
    let e = ClientsFile::load(&w.path)
        .err()
        .expect("a malformed file was read");
    assert!(e.to_string().contains("not a clients file"), "{e}");
    // A secret where another kind of value belongs is never quoted back.
    let secret = "s3cr3t-header-value-XYZ";
    let text = format!(
        "{{\"version\": 1, \"clients\": [{{\"name\": \"a\", \"ratePerMinute\": \"{secret}\"}}]}}"
    );
    std::fs::write(&w.path, text).unwrap();
    let e = ClientsFile::load(&w.path)
        .err()
        .expect("a malformed file was read");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert!(!e.to_string().contains(secret), "{e}");

    let mut f = ClientsFile::default();
    assert!(f.add("bad.name", NewClient::default(), NOW).is_err());
    assert!(f.add("", NewClient::default(), NOW).is_err());
    let bad_origin = NewClient {
        allow_origin: vec!["app.example.org".into()],
        ..Default::default()
    };
    assert!(f.add("x", bad_origin, NOW).is_err());
    f.add("x", NewClient::default(), NOW).unwrap();
    assert!(f.add("x", NewClient::default(), NOW).is_err(), "a second x");
}

/// The vectors published in docs/private-bytes.md, recomputed: the string to sign and the
/// signature for the documented key and request.
#[test]
fn the_published_test_vectors_hold() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/private-bytes.md"
    ))
    .unwrap();
    let start = doc.find("```json vectors\n").expect("a vectors block") + 16;
    let end = start + doc[start..].find("```").unwrap();
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&doc[start..end]).unwrap();
    assert!(vectors.len() >= 3);
    for v in &vectors {
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        let key = protocol::decode_key(&s("hmacKey")).unwrap();
        let body = s("body");
        let r = Signed {
            method: &s("method"),
            host: &s("host"),
            path: &s("path"),
            query: &s("query"),
            date: &s("date"),
            nonce: &s("nonce"),
            key_id: &s("keyId"),
            body: body.as_bytes(),
        };
        assert_eq!(protocol::string_to_sign(&r), s("stringToSign"));
        assert_eq!(protocol::sign(&key, &r), s("signature"));
        assert!(protocol::verify(&key, &r, &s("signature")));
    }
}

#[test]
fn two_services_seeded_alike_still_give_different_bytes() {
    let (a, c) = world(alice_only);
    // The second service reads the same clients file and gets the same material.
    let mut drbg = Drbg::new(Duration::from_secs(120), Duration::from_secs(60));
    drbg.reseed(b"test material", a.now);
    let b = Service::new(&a.file, drbg, false);
    let x = Call::new(&c[0], "n=64").send(&a.service, a.now).unwrap();
    let y = Call::new(&c[0], "n=64").send(&b, a.now).unwrap();
    assert_ne!(x.body.as_slice(), y.body.as_slice());
}
