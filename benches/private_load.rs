//! Private random bytes under load, over TLS, on this machine, in one run:
//!
//! 1. signed 32-byte requests (`/private/v1/bytes?n=32`) per second and p99, 64 keep-alive
//!    connections, side by side with `/beacon/last` over the same TLS listener by the same
//!    client (target: at least half its rate);
//! 2. 64 KiB answers (`n=65536&format=raw`) in MiB/s (target ≥ 500 MiB/s);
//! 3. `/beacon/last` over TLS with `wrk`, against nginx serving the same JSON over TLS with the
//!    same certificate (target ≥ 1.0×).
//!
//! The client is in this process: 64 threads, each with its own rustls connection, signing
//! every request as `lavabeacon_private::protocol` defines. Server and client share the two
//! cores, as they would on any one machine; the ratios are the figures that matter.
//!
//! `cargo bench --bench private_load` (needs wrk and nginx); PRIVATE_BENCH_SECS (default 10)
//! per run.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use lavabeacon_private::clients::{ClientsFile, Credentials, NewClient};
use lavabeacon_private::protocol::{self, Signed};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{api, nginx, rss, store, wrk};

const CONNECTIONS: usize = 64;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, config: &Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    rustls::StreamOwned::new(
        rustls::ClientConnection::new(config.clone(), name).unwrap(),
        tcp,
    )
}

/// One GET on a kept-alive connection; the body's length, or the status if not 200.
fn get(tls: &mut Tls, path_query: &str, headers: &[(String, String)]) -> Result<usize, u16> {
    let mut req = format!("GET {path_query} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (n, v) in headers {
        req.push_str(n);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).unwrap();
    if status == 200 {
        Ok(len)
    } else {
        Err(status)
    }
}

fn sign(c: &Credentials, key: &[u8], path: &str, query: &str) -> Vec<(String, String)> {
    let date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let nonce = protocol::new_nonce();
    let r = Signed {
        method: "GET",
        host: "127.0.0.1",
        path,
        query,
        date: &date,
        nonce: &nonce,
        key_id: &c.key_id,
        body: b"",
    };
    vec![
        (c.header.name.clone(), c.header.value.clone()),
        (protocol::KEY_ID.into(), c.key_id.clone()),
        (protocol::DATE.into(), date.clone()),
        (protocol::NONCE.into(), nonce.clone()),
        (protocol::SIGNATURE.into(), protocol::sign(key, &r)),
    ]
}

struct Run {
    rps: f64,
    p99_ms: f64,
    bytes_per_s: f64,
    failed: u64,
}

/// `CONNECTIONS` threads asking `path?query` for `secs`, signed with `creds` when given.
fn run(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
    path: &'static str,
    query: &'static str,
    creds: Option<&Credentials>,
    secs: u64,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (config, stop) = (config.clone(), stop.clone());
            let creds = creds.map(|c| (c.clone(), c.key().unwrap().to_vec()));
            std::thread::spawn(move || {
                let mut tls = connect(port, &config);
                let target = if query.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{query}")
                };
                let (mut lat, mut bytes, mut failed) = (Vec::new(), 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let headers = match &creds {
                        Some((c, key)) => sign(c, key, path, query),
                        None => Vec::new(),
                    };
                    match get(&mut tls, &target, &headers) {
                        Ok(n) => bytes += n as u64,
                        Err(_) => failed += 1,
                    }
                    lat.push(started.elapsed().as_micros() as u64);
                }
                (lat, bytes, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut bytes, mut failed) = (Vec::new(), 0, 0);
    for t in threads {
        let (l, b, f) = t.join().unwrap();
        lat.extend(l);
        bytes += b;
        failed += f;
    }
    lat.sort_unstable();
    let p99 = lat[((lat.len() as f64 - 1.0) * 0.99) as usize] as f64 / 1000.0;
    Run {
        rps: lat.len() as f64 / secs as f64,
        p99_ms: p99,
        bytes_per_s: bytes as f64 / secs as f64,
        failed,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("PRIVATE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let db = store(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let common::tls::TlsFiles {
        ca_der: ca,
        cert,
        key,
        ..
    } = common::tls::tls_files(tmp.path());
    let clients_file = tmp.path().join("clients.json");
    let mut file = ClientsFile::default();
    let opts = NewClient {
        rate_per_minute: Some(u32::MAX),
        bytes_per_day: Some(u64::MAX / 2),
        ..Default::default()
    };
    let creds = file.add("bench", opts, 0).unwrap();
    file.save(&clients_file).unwrap();
    let config = tmp.path().join("lavabeacon.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite:{}\"\n\n[api]\nworkers = 2\n\n[api.tls]\ncert = {:?}\nkey = {:?}\n\n[private]\nclients_file = {:?}\n",
            db.display(),
            cert,
            key,
            clients_file
        ),
    )
    .unwrap();
    let (_api, base, pid) = api(tmp.path(), &["--config".as_ref(), config.as_os_str()]);
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );

    // nginx with the same certificate, serving the same JSON.
    let mut probe = connect(port, &client);
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body = {
        probe
            .write_all(b"GET /beacon/last HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        let _ = probe.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all).to_string();
        text.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    std::fs::write(www.join("last.json"), &body).unwrap();
    let (_nginx, nginx_port) = nginx(tmp.path(), &www, Some((&cert, &key)));

    run(port, &client, "/private/v1/bytes", "n=32", Some(&creds), 2); // warm-up
    let small = run(
        port,
        &client,
        "/private/v1/bytes",
        "n=32",
        Some(&creds),
        secs,
    );
    let last = run(port, &client, "/beacon/last", "", None, secs);
    let large = run(
        port,
        &client,
        "/private/v1/bytes",
        "n=65536&format=raw",
        Some(&creds),
        secs,
    );
    let wrk_last = wrk(&format!("https://127.0.0.1:{port}/beacon/last"), secs, None);
    let wrk_nginx = wrk(
        &format!("https://127.0.0.1:{nginx_port}/last.json"),
        secs,
        None,
    );
    let (peak, _) = rss(pid);

    println!("{CONNECTIONS} keep-alive TLS connections, {secs} s each, lavabeacon api with 2 workers, on this machine:");
    println!(
        "  signed /private/v1/bytes?n=32:   {:>8.0} req/s, p99 {:.2} ms, {} failed",
        small.rps, small.p99_ms, small.failed
    );
    println!(
        "  /beacon/last, same client:       {:>8.0} req/s, p99 {:.2} ms, {} failed",
        last.rps, last.p99_ms, last.failed
    );
    println!(
        "  ratio (target >= 0.5):           {:>8.2}",
        small.rps / last.rps
    );
    println!(
        "  signed n=65536 raw:              {:>8.0} req/s, {:.0} MiB/s (target >= 500), p99 {:.2} ms, {} failed",
        large.rps,
        large.bytes_per_s / (1024.0 * 1024.0),
        large.p99_ms,
        large.failed
    );
    println!(
        "wrk -t2 -c64 over TLS: /beacon/last {:.0} req/s (p99 {:.2} ms {}), nginx same JSON and certificate {:.0} req/s (p99 {:.2} ms {}); ratio {:.2} (target >= 1.0)",
        wrk_last.rps, wrk_last.p99_ms, wrk_last.errors, wrk_nginx.rps, wrk_nginx.p99_ms, wrk_nginx.errors,
        wrk_last.rps / wrk_nginx.rps
    );
    println!("  server RSS: peak {peak:.1} MiB");
}
