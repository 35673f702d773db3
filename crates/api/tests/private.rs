//! Private random bytes on a real HTTPS server on a free port, with a CA made at test time:
//! every refusal with its status and headers (from 127.0.0.2 when only 127.0.0.1 is allowed),
//! bytes with `no-store`, the quota left and `Date`, HSTS, a certificate reloaded without
//! dropping an open connection (and a bad one refused), a clients file reloaded, the redirect
//! listener, and the counters in `/metrics`.

use lavabeacon_api::{Beacon, BeaconInfo, ServerHandle, Tls};
use lavabeacon_private::clients::{ClientsFile, Credentials, NewClient};
use lavabeacon_private::drbg::Drbg;
use lavabeacon_private::protocol::{self, Signed};
use lavabeacon_private::Service;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    Ca {
        cert: p.self_signed(&key).unwrap(),
        key,
    }
}

/// A server certificate for 127.0.0.1 and localhost signed by `ca`, written as PEM files.
fn server_pair(ca: &Ca, dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    p.distinguished_name.push(DnType::CommonName, tag);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (c, k) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

struct World {
    addr: SocketAddr,
    handle: ServerHandle,
    rt: tokio::runtime::Handle,
    tls: Arc<Tls>,
    service: Arc<Service>,
    ca: Ca,
    creds: Vec<Credentials>,
    file: ClientsFile,
    dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("lavabeacon test CA");
    let (cert, key) = server_pair(&ca, dir.path(), "first");
    let tls = Tls::load(&cert, &key).unwrap();
    let mut file = ClientsFile::default();
    let now = now_secs();
    let alice = NewClient {
        allow_ip: vec!["127.0.0.1/32".parse().unwrap()],
        rate_per_minute: Some(600),
        ..Default::default()
    };
    let slow = NewClient {
        rate_per_minute: Some(2),
        bytes_per_day: Some(64),
        ..Default::default()
    };
    let creds = vec![
        file.add("alice", alice, now).unwrap(),
        file.add("slow", slow, now).unwrap(),
    ];
    let mut drbg = Drbg::new(Duration::from_secs(120), Duration::from_secs(60));
    drbg.reseed(b"test", Instant::now());
    let service = Arc::new(Service::new(&file, drbg, false));
    let (tx, rx) = std::sync::mpsc::channel();
    let db = dir.path().join("api.db");
    let (tls2, service2) = (tls.clone(), service.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = lavabeacon_store::open(&format!("sqlite:{}", db.display()))
                .await
                .unwrap();
            let beacon = Beacon::new(store, BeaconInfo::new(60_000));
            beacon.serve_private(service2);
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = lavabeacon_api::serve_on(beacon, listener, 2, Some(tls2)).unwrap();
            tx.send((addr, server.handle(), tokio::runtime::Handle::current()))
                .unwrap();
            let _ = server.await;
        });
    });
    let (addr, handle, rt) = rx.recv().unwrap();
    World {
        addr,
        handle,
        rt,
        tls,
        service,
        ca,
        creds,
        file,
        dir,
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let h = self.handle.clone();
        self.rt.block_on(async move { h.stop(false).await });
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A TLS connection from local address `from`, trusting only `ca`.
struct Conn {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl Conn {
    fn open(w: &World, from: Ipv4Addr, ca: &Ca) -> Conn {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
        s.connect(&w.addr.into()).unwrap();
        let tcp: TcpStream = s.into();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        Conn {
            tls: rustls::StreamOwned::new(conn, tcp),
        }
    }

    /// One request on this connection (kept alive), its answer.
    fn get(&mut self, path: &str, headers: &[(String, String)]) -> Resp {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.tls.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.tls.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0u8; len];
        self.tls.read_exact(&mut body).unwrap();
        Resp {
            status,
            head: head.clone(),
            body,
        }
    }

    fn peer_certificate_der(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The headers of a signed request for `path?query`; `tweak` changes them before signing
/// (or after, for the header and signature themselves).
fn signed(c: &Credentials, path_query: &str, date: i64, nonce: &str) -> Vec<(String, String)> {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let date = date.to_string();
    let r = Signed {
        method: "GET",
        host: "127.0.0.1",
        path,
        query,
        date: &date,
        nonce,
        key_id: &c.key_id,
        body: b"",
    };
    let key = c.key().unwrap();
    vec![
        (c.header.name.clone(), c.header.value.clone()),
        (protocol::KEY_ID.into(), c.key_id.clone()),
        (protocol::DATE.into(), date.clone()),
        (protocol::NONCE.into(), nonce.into()),
        (protocol::SIGNATURE.into(), protocol::sign(&key, &r)),
    ]
}

fn fresh(c: &Credentials, path_query: &str) -> Vec<(String, String)> {
    signed(c, path_query, now_secs(), &protocol::new_nonce())
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (n, v) in headers.iter_mut() {
        if n.eq_ignore_ascii_case(name) {
            *v = value.to_string();
        }
    }
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

#[test]
fn signed_requests_get_bytes_over_https_with_no_store_the_quota_left_and_hsts() {
    let w = world();
    let mut c = Conn::open(&w, LOCAL, &w.ca);
    let r = c.get(
        "/private/v1/bytes?n=32&format=hex",
        &fresh(&w.creds[0], "/private/v1/bytes?n=32&format=hex"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.len(), 64);
    assert!(r.text().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        r.header("lavabeacon-bytes-left").as_deref(),
        Some(&*((16u64 << 20) - 32).to_string())
    );
    assert!(r.header("date").is_some());
    assert_eq!(
        r.header("strict-transport-security").as_deref(),
        Some(lavabeacon_api::HSTS)
    );

    let raw = c.get(
        "/private/v1/bytes?n=65536&format=raw",
        &fresh(&w.creds[0], "/private/v1/bytes?n=65536&format=raw"),
    );
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body.len(), 65_536);
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    let ints = c.get(
        "/private/v1/integers?count=5&min=1&max=6",
        &fresh(&w.creds[0], "/private/v1/integers?count=5&min=1&max=6"),
    );
    assert_eq!(ints.status, 200, "{}", ints.text());
    let v: serde_json::Value = serde_json::from_slice(&ints.body).unwrap();
    let list = v["integers"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|x| (1..=6).contains(&x.as_i64().unwrap())));
}

#[test]
fn every_refusal_over_https_has_its_status_and_headers() {
    let w = world();
    let alice = &w.creds[0];
    let q = "/private/v1/bytes?n=16";
    let mut c = Conn::open(&w, LOCAL, &w.ca);
    let mut send = |headers: Vec<(String, String)>| c.get(q, &headers);

    let mut h = fresh(alice, q);
    h.remove(0);
    let r = send(h);
    assert_eq!(r.status, 403, "no custom header: {}", r.text());
    let mut h = fresh(alice, q);
    set(&mut h, &alice.header.name, "wrong");
    assert_eq!(send(h).status, 403);
    let mut h = fresh(alice, q);
    set(&mut h, protocol::KEY_ID, "nobody.1");
    let r = send(h);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(protocol::SCHEME)
    );
    let mut h = fresh(alice, q);
    set(&mut h, protocol::SIGNATURE, "v1=AAAA");
    let r = send(h);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Signature"), "{}", r.text());
    for offset in [-61, 61] {
        let r = send(signed(
            alice,
            q,
            now_secs() + offset,
            &protocol::new_nonce(),
        ));
        assert_eq!(r.status, 401, "date {offset:+}");
        assert!(r.text().contains("Date"), "{}", r.text());
    }
    let nonce = protocol::new_nonce();
    assert_eq!(send(signed(alice, q, now_secs(), &nonce)).status, 200);
    assert_eq!(
        send(signed(alice, q, now_secs(), &nonce)).status,
        401,
        "a replayed nonce"
    );
    let big = "/private/v1/bytes?n=65537";
    assert_eq!(c.get(big, &fresh(alice, big)).status, 413);
    let zero = "/private/v1/bytes?n=0";
    assert_eq!(c.get(zero, &fresh(alice, zero)).status, 400);

    // From 127.0.0.2: alice may connect only from 127.0.0.1.
    let mut other = Conn::open(&w, Ipv4Addr::new(127, 0, 0, 2), &w.ca);
    let r = other.get(q, &fresh(alice, q));
    assert_eq!(r.status, 403);
    assert!(r.text().contains("127.0.0.2"), "{}", r.text());

    // Over the rate (2 a minute), then over the bytes of the day (64).
    let slow = &w.creds[1];
    let q40 = "/private/v1/bytes?n=40";
    assert_eq!(other.get(q40, &fresh(slow, q40)).status, 200);
    let q30 = "/private/v1/bytes?n=30";
    let r = other.get(q30, &fresh(slow, q30));
    assert_eq!(r.status, 429, "over the day's bytes: {}", r.text());
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    let r = other.get(q30, &fresh(slow, q30));
    assert_eq!(r.status, 429, "over the rate: {}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");

    // Entropy the service cannot vouch for.
    w.service.unhealthy("os: health test failed");
    let r = c.get(q, &fresh(alice, q));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("60"));
    w.service.reseed(b"again", Instant::now());
    assert_eq!(c.get(q, &fresh(alice, q)).status, 200);

    // The counters: by client and reason, no value.
    let mut plain = Conn::open(&w, LOCAL, &w.ca);
    let m = plain.get("/metrics", &[]).text();
    assert!(
        m.contains("lavabeacon_private_refused_total{client=\"alice\",reason=\"date\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("lavabeacon_private_refused_total{client=\"(unknown)\",reason=\"header\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("lavabeacon_private_refused_total{client=\"slow\",reason=\"rate\"} 1"),
        "{m}"
    );
    assert!(!m.contains(&alice.hmac_key) && !m.contains(&alice.header.value));
}

#[test]
fn a_new_certificate_is_served_to_new_connections_and_open_ones_keep_working() {
    use rustls_pki_types::pem::PemObject;
    let w = world();
    let served = |c: &mut Conn| {
        assert_eq!(c.get("/openapi.json", &[]).status, 200);
        c.peer_certificate_der()
    };
    let mut before = Conn::open(&w, LOCAL, &w.ca);
    let first = served(&mut before);

    // A bad pair (the key of another certificate) is refused; the old one stays.
    let (second_cert, second_key) = server_pair(&w.ca, w.dir.path(), "second");
    let (_, other_key) = server_pair(&w.ca, w.dir.path(), "other");
    let cert_path = w.dir.path().join("first.crt");
    let key_path = w.dir.path().join("first.key");
    std::fs::copy(&second_cert, &cert_path).unwrap();
    std::fs::copy(&other_key, &key_path).unwrap();
    let e = w.tls.reload().unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
    assert_eq!(served(&mut Conn::open(&w, LOCAL, &w.ca)), first);

    std::fs::copy(&second_key, &key_path).unwrap();
    assert!(w.tls.changed());
    w.tls.reload().unwrap();
    let second = rustls_pki_types::CertificateDer::from_pem_file(&second_cert).unwrap();
    assert_eq!(served(&mut Conn::open(&w, LOCAL, &w.ca)), second.to_vec());
    // The connection opened before the reload still works, on its old certificate.
    assert_eq!(served(&mut before), first);
}

#[test]
fn a_reloaded_clients_file_takes_effect_at_once() {
    let w = world();
    let mut file = w.file.clone();
    let carol = file.add("carol", NewClient::default(), now_secs()).unwrap();
    let q = "/private/v1/bytes?n=8";
    let mut c = Conn::open(&w, LOCAL, &w.ca);
    assert_eq!(c.get(q, &fresh(&carol, q)).status, 403, "not yet loaded");
    w.service.reload(&file);
    assert_eq!(c.get(q, &fresh(&carol, q)).status, 200);
    // Rotated, then the first key retired: it is refused (401), the new one is not.
    let second = file.rotate("carol", now_secs()).unwrap();
    file.retire(&carol.key_id).unwrap();
    w.service.reload(&file);
    let r = c.get(q, &fresh(&carol, q));
    assert_eq!(r.status, 401, "a retired key: {}", r.text());
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some(protocol::SCHEME)
    );
    assert_eq!(c.get(q, &fresh(&second, q)).status, 200);
    file.remove("carol").unwrap();
    w.service.reload(&file);
    assert_eq!(c.get(q, &fresh(&carol, q)).status, 403);
}

#[test]
fn the_redirect_listener_answers_308_to_https_with_the_path() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.block_on(async {
        let server = lavabeacon_api::serve_redirect(listener, 8443).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        handle
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /beacon/last?x=1 HTTP/1.1\r\nHost: beacon.example.org:8080\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("location: https://beacon.example.org:8443/beacon/last?x=1"),
        "{out}"
    );
    rt.block_on(handle.stop(false));
}
