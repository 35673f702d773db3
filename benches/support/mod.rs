//! What the load benches share: the pulse store they serve (made once, kept under
//! `target/bench-data/`), `wrk` and how to read it, nginx as the peer, processes killed when
//! dropped, and a process's memory.
#![allow(dead_code)]

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
pub const PERIOD: i64 = 60_000;

pub fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The 1,000,000-pulse store, made once.
pub fn store(n: u64) -> PathBuf {
    let db = data_dir().join(format!("api-chain-{n}.db"));
    if db.exists() {
        return db;
    }
    eprintln!("making {} ({n} pulses)…", db.display());
    let started = Instant::now();
    let partial = db.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let keys = data_dir().join("api-keys");
    let signer = SoftwareSigner::load_or_create(&keys).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = lavabeacon_store::open(&format!("sqlite:{}", partial.display()))
            .await
            .unwrap();
        store
            .put_certificate(&signer.certificate().der)
            .await
            .unwrap();
        let mut b = ChainBuilder::new_chain(ChainParams::new(
            "http://127.0.0.1/beacon/2.0",
            1,
            PERIOD as u32,
        ));
        let lrv = |i: u64| sha512(&[b"api bench", &i.to_be_bytes()]);
        let mut batch = Vec::with_capacity(20_000);
        for i in 1..=n {
            let next = NextPulse::new(
                T0 + (i as i64 - 1) * PERIOD,
                lrv(i),
                precommitment(&lrv(i + 1)),
            );
            batch.push(b.next(next, &signer).unwrap());
            if batch.len() == 20_000 || i == n {
                store.bulk_load(&batch).await.unwrap();
                batch.clear();
            }
        }
        drop(store);
        // Everything into the database file before it is renamed: what is still in the WAL
        // would be lost with it (deleting the WAL once cost the last 160,000 of 1,000,000
        // pulses).
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", partial.display()))
            .await
            .unwrap();
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(
            busy,
            0,
            "the WAL of {} could not be checkpointed",
            partial.display()
        );
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pulses")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(count as u64, n, "pulses in {}", partial.display());
        c.close().await.unwrap();
    });
    std::fs::rename(&partial, &db).unwrap();
    eprintln!("made in {:.1} s", started.elapsed().as_secs_f64());
    db
}

pub struct Wrk {
    pub rps: f64,
    pub p99_ms: f64,
    pub errors: String,
}

pub fn ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

pub fn wrk(url: &str, secs: u64, script: Option<&Path>) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{secs}s"), "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd.arg(url).output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("wrk printed no rate:\n{text}"));
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| ms(v.trim()))
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .collect::<Vec<_>>()
        .join("; ");
    Wrk {
        rps,
        p99_ms: p99,
        errors,
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Peak and current resident memory of a process, MiB.
pub fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}

pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        // SIGTERM first, so that a master process (nginx) takes its workers with it; SIGKILL
        // would leave them running, holding their ports.
        // SAFETY: kill(2) on a child of this process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving `www` on a free loopback port, over TLS with `tls = Some((cert, key))`; with
/// two workers, no access log. Returns it (killed when dropped) and its port.
pub fn nginx(dir: &Path, www: &Path, tls: Option<(&Path, &Path)>) -> (Killed, u16) {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    let listen = match tls {
        Some((cert, key)) => format!(
            "listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {};",
            cert.display(),
            key.display()
        ),
        None => format!("listen 127.0.0.1:{port};"),
    };
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ {listen} root {w}; default_type application/json; }} }}\n",
            d = dir.display(),
            w = www.display()
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx-light)");
    std::thread::sleep(std::time::Duration::from_millis(500));
    (Killed(child), port)
}

/// `lavabeacon api --listen 127.0.0.1:0` with `args`, in `dir`: the process (killed when
/// dropped), the base URL it printed and its pid.
pub fn api(dir: &Path, args: &[&std::ffi::OsStr]) -> (Killed, String, u32) {
    use std::io::{BufRead, BufReader};
    let mut api = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["api", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(api.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let pid = api.id();
    (Killed(api), base, pid)
}
