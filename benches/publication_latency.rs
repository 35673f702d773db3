//! Publication latency of `lavabeacon serve`: for each pulse, the moment it becomes readable
//! through the API minus its timestamp. A real beacon: a SoftHSM2 dev token, SQLite, the
//! os/hsm/cpu sources and the synthetic camera, period 1 s, the API on a loopback port.
//!
//! For each slot t the client starts asking `GET /beacon/{t}` a few milliseconds before t, over
//! one keep-alive connection, every 100 µs, and records when the first 200 arrives. A 200 that
//! arrives before t would be a negative latency: the beacon must never allow one.
//!
//! `cargo bench --bench publication_latency` (LATENCY_PULSES=300 by default); needs SoftHSM2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// One GET over a keep-alive connection; returns the status.
fn get(conn: &mut BufReader<TcpStream>, path: &str) -> u16 {
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).unwrap();
    status
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; this one is run on purpose only.
    }
    let pulses: usize = std::env::var("LATENCY_PULSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let bin = env!("CARGO_BIN_EXE_lavabeacon");
    let st = Command::new(root.join("softhsm-setup/dev-token.sh"))
        .arg(&hsm)
        .env("LAVABEACON_BIN", bin)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "dev-token.sh failed (is SoftHSM2 installed?)");
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--period",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(hsm.join("lavabeacon.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let mut conn = BufReader::new(TcpStream::connect(&addr).unwrap());
    conn.get_mut().set_nodelay(true).unwrap();

    // Skip the first two slots: the engine is starting up.
    let first = (now_us() / 1_000_000 + 3) * 1_000_000;
    let mut latencies_us = Vec::with_capacity(pulses);
    let mut early = 0;
    let mut missed = 0;
    for k in 0..pulses as i64 {
        let t = first + k * 1_000_000;
        let start = t - 3_000;
        let wait = start - now_us();
        if wait > 0 {
            std::thread::sleep(Duration::from_micros(wait as u64));
        }
        let path = format!("/beacon/{}", t / 1000);
        loop {
            let status = get(&mut conn, &path);
            let at = now_us();
            if status == 200 {
                if at < t {
                    early += 1;
                }
                latencies_us.push(at - t);
                break;
            }
            assert_eq!(status, 425, "unexpected status {status}");
            if at - t > 900_000 {
                missed += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies_us.sort_unstable();
    let ms = |us: i64| us as f64 / 1000.0;
    println!(
        "publication latency over {} pulses (period 1 s, SoftHSM2 Ed25519, SQLite): \
         min {:.3} ms, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; served before their time: {early}; \
         missed slots: {missed}",
        latencies_us.len(),
        ms(latencies_us[0]),
        ms(percentile(&latencies_us, 0.50)),
        ms(percentile(&latencies_us, 0.99)),
        ms(*latencies_us.last().unwrap()),
    );
    assert_eq!(early, 0, "a pulse was readable before its timestamp");
}
