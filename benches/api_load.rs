//! The public API under load, measured with `wrk` (2 threads, 64 connections) on this machine:
//!
//! 1. `/beacon/last` from `lavabeacon api`, and the same JSON as a static file from nginx in the
//!    same run (the ratio is the figure that matters on a shared 2-core machine);
//! 2. `/beacon/2.0/pulse/time/{t}` for random past times over a 1,000,000-pulse SQLite store.
//!
//! Reports requests/s, p99 latency, and the server's peak RSS. The store is made once (a chain
//! signed with a software Ed25519 key, 2024-01-01 onwards, one pulse a minute) and kept under
//! `target/bench-data/`.
//!
//! `cargo bench --bench api_load` (needs wrk and nginx: `apt-get install wrk nginx-light`);
//! API_BENCH_SECS (default 15) per run, API_BENCH_PULSES (default 1,000,000).

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const PERIOD: i64 = 60_000;

fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The 1,000,000-pulse store, made once.
fn store(n: u64) -> PathBuf {
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
    });
    for ext in ["partial-wal", "partial-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
    std::fs::rename(&partial, &db).unwrap();
    eprintln!("made in {:.1} s", started.elapsed().as_secs_f64());
    db
}

struct Wrk {
    rps: f64,
    p99_ms: f64,
    errors: String,
}

fn ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, secs: u64, script: Option<&Path>) -> Wrk {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Peak and current resident memory of a process, MiB.
fn rss(pid: u32) -> (f64, f64) {
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

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("API_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let n: u64 = std::env::var("API_BENCH_PULSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = store(n);
    let tmp = tempfile::tempdir().unwrap();

    let mut api = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["api", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite:{}", db.display()))
        .current_dir(tmp.path())
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
    let _api = Killed(api);

    // nginx serving the same body as a static file.
    let body = ureq::get(&format!("{base}/beacon/last"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("last.json"), &body).unwrap();
    let port = free_port();
    let conf = tmp.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{port}; root {w}; default_type application/json; }} }}\n",
            d = tmp.path().display(),
            w = www.display()
        ),
    )
    .unwrap();
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(tmp.path())
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (apt-get install nginx-light)");
    let _nginx = Killed(nginx);
    std::thread::sleep(std::time::Duration::from_millis(500));

    let lua = tmp.path().join("random-time.lua");
    std::fs::write(
        &lua,
        format!(
            "math.randomseed(os.time())\nrequest = function()\n  local t = {T0} + math.random(0, {}) * {PERIOD}\n  return wrk.format(\"GET\", \"/beacon/2.0/pulse/time/\" .. t)\nend\n",
            n - 1
        ),
    )
    .unwrap();

    wrk(&format!("{base}/beacon/last"), 2, None); // warm-up
    let last = wrk(&format!("{base}/beacon/last"), secs, None);
    let nginx = wrk(&format!("http://127.0.0.1:{port}/last.json"), secs, None);
    wrk(&format!("{base}/"), 2, Some(&lua)); // warm-up
    let random = wrk(&format!("{base}/"), secs, Some(&lua));
    let (peak, now) = rss(pid);

    println!("wrk -t2 -c64 -d{secs}s, {n}-pulse SQLite store, lavabeacon api with 2 workers, on this machine:");
    println!(
        "  /beacon/last:                 {:>9.0} req/s, p99 {:.2} ms {}",
        last.rps, last.p99_ms, last.errors
    );
    println!(
        "  nginx, same JSON, static:     {:>9.0} req/s, p99 {:.2} ms {}",
        nginx.rps, nginx.p99_ms, nginx.errors
    );
    println!(
        "  ratio to nginx:               {:>9.2}",
        last.rps / nginx.rps
    );
    println!(
        "  /beacon/2.0/pulse/time/{{t}}: {:>9.0} req/s, p99 {:.2} ms (random past times) {}",
        random.rps, random.p99_ms, random.errors
    );
    println!("  server RSS: peak {peak:.1} MiB, now {now:.1} MiB");
}
