//! What the load benches share: the chains they serve (built and signed here, stores made once
//! and kept under `target/bench-data/`), `wrk` and how to read it, nginx as the peer,
//! processes killed when dropped, and a process's memory.
#![allow(dead_code)]

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::manifest::{combine, Manifest, SourceEntry};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::Pulse;
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

/// Pulses handed to a store in one call.
pub const BATCH: usize = 20_000;

/// A pulse's source manifest as the store keeps it: (chainIndex, pulseIndex, JSON).
pub type ManifestLine = (u64, u64, String);

/// The bench's signing key (a software Ed25519 key, cipherSuite 2), made once and shared by
/// every bench store, so that their certificates are one.
pub fn signer() -> SoftwareSigner {
    SoftwareSigner::load_or_create(&data_dir().join("api-keys")).unwrap()
}

/// What each pulse of a generated chain is made of.
#[derive(Clone, Copy)]
pub enum Values {
    /// localRandomValue a plain hash of the index, no manifest (the api_load store).
    Bare,
    /// localRandomValue the combination of three sources (os, hsm, cpu), each pulse with the
    /// source manifest the engine would have written for it, as a real beacon's store holds.
    WithManifests,
}

/// The manifest-bearing pulse `i`'s sources: (name, credited bits, digest).
fn sources_of(i: u64) -> [(&'static str, u32, Hash512); 3] {
    let d = |name: &str| sha512(&[b"ten years", name.as_bytes(), &i.to_be_bytes()]);
    [
        ("os", 256, d("os")),
        ("hsm", 256, d("hsm")),
        ("cpu", 64, d("cpu")),
    ]
}

fn local_random_value(values: Values, i: u64) -> Hash512 {
    match values {
        Values::Bare => sha512(&[b"api bench", &i.to_be_bytes()]),
        Values::WithManifests => {
            let s = sources_of(i);
            combine(&[
                (s[0].0, &s[0].2 .0[..]),
                (s[1].0, &s[1].2 .0[..]),
                (s[2].0, &s[2].2 .0[..]),
            ])
        }
    }
}

fn manifest_of(i: u64) -> String {
    let sources = sources_of(i)
        .iter()
        .map(|(name, bits, digest)| SourceEntry {
            name: name.to_string(),
            status: "ok".into(),
            credited_bits: *bits,
            digest: Some(digest.to_hex_lower()),
        })
        .collect();
    serde_json::to_string(&Manifest {
        version: 1,
        chain_index: 1,
        pulse_index: i,
        sources,
        external: None,
    })
    .unwrap()
}

/// Builds chain 1 of `n` pulses from `t0`, one every [`PERIOD`], signed with [`signer`], and
/// hands it to `each` in batches of [`BATCH`] with the batch's manifests (none with
/// [`Values::Bare`]). Returns the time spent building and signing, `each` not counted.
pub fn generate(
    n: u64,
    t0: i64,
    values: Values,
    mut each: impl FnMut(&[Pulse], &[ManifestLine]),
) -> std::time::Duration {
    let signer = signer();
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "http://127.0.0.1/beacon/2.0",
        1,
        PERIOD as u32,
    ));
    let mut building = std::time::Duration::ZERO;
    let mut batch = Vec::with_capacity(BATCH);
    let mut manifests = Vec::with_capacity(BATCH);
    let mut lrv = local_random_value(values, 1);
    let mut started = Instant::now();
    for i in 1..=n {
        let next_lrv = local_random_value(values, i + 1);
        let next = NextPulse::new(t0 + (i as i64 - 1) * PERIOD, lrv, precommitment(&next_lrv));
        batch.push(b.next(next, &signer).unwrap());
        if let Values::WithManifests = values {
            manifests.push((1, i, manifest_of(i)));
        }
        lrv = next_lrv;
        if batch.len() == BATCH || i == n {
            building += started.elapsed();
            each(&batch, &manifests);
            batch.clear();
            manifests.clear();
            started = Instant::now();
        }
    }
    building
}

/// Copies everything in the WAL of the SQLite database `path` into the file and checks it
/// holds `n` pulses: what is still in the WAL would be lost with it if the file were renamed
/// or copied alone (deleting the WAL once cost the last 160,000 of 1,000,000 pulses).
pub async fn checkpoint_sqlite(path: &Path, n: u64) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
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
        path.display()
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pulses")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(count as u64, n, "pulses in {}", path.display());
    c.close().await.unwrap();
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        let store = lavabeacon_store::open(&format!("sqlite:{}", partial.display()))
            .await
            .unwrap();
        store
            .put_certificate(&signer().certificate().der)
            .await
            .unwrap();
        store
    });
    generate(n, T0, Values::Bare, |batch, _| {
        rt.block_on(store.bulk_load(batch)).unwrap();
    });
    drop(store);
    rt.block_on(checkpoint_sqlite(&partial, n));
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

/// CPU time a running process has used so far, user and system, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's name (in parentheses, which may hold spaces): utime and stime are
    // the 12th and 13th fields, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // SAFETY: sysconf(3) with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / hz
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

/// nginx over plain HTTP serving, as the static file `/last.json`, the answer `base`'s
/// `/beacon/last` gives now: the peer the API's figures stand beside.
pub fn nginx_serving_last(dir: &Path, base: &str) -> (Killed, u16) {
    let body = ureq::get(&format!("{base}/beacon/last"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("last.json"), &body).unwrap();
    nginx(dir, &www, None)
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

/// The load averages over 1, 5 and 15 minutes, as `uptime` shows them: printed beside each
/// figure, since other builds may share the machine's two cores.
pub fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Asks `url` until it answers 200, for at most `limit`; panics if it never does.
pub fn wait_ok(url: &str, limit: std::time::Duration) {
    let started = Instant::now();
    loop {
        if let Ok(r) = ureq::get(url).timeout(limit).call() {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            started.elapsed() < limit,
            "{url} did not answer 200 within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// What a finished command did: its wall time, its peak RSS (MiB, from the kernel's count at
/// exit: nothing is missed between two samples), its exit status and standard output.
pub struct Finished {
    pub secs: f64,
    /// CPU time, user and system, in seconds.
    pub cpu_secs: f64,
    pub peak_mib: f64,
    pub success: bool,
    pub stdout: String,
}

/// Runs `cmd` to the end (standard error discarded) and measures it.
// The child is reaped by wait4(2), not Child::wait: wait4 also gives its resource usage.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command) -> Finished {
    use std::io::Read;
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on a child of this process, which nothing else waits for.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(
        r,
        child.id() as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Finished {
        secs: started.elapsed().as_secs_f64(),
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
    }
}

/// Spawns `cmd` (a `serve` or `api` with `--listen 127.0.0.1:0`) and times it from the spawn
/// until `/beacon/last` answers 200: the process (killed when dropped), its base URL, its pid
/// and the time to its first answer.
pub fn start_until_last(cmd: &mut Command) -> (Killed, String, u32, f64) {
    use std::io::{BufRead, BufReader};
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(b) = l.strip_prefix("listening on ") {
                    break b.to_string();
                }
            }
            _ => panic!("{cmd:?} ended without printing the address it listens on"),
        }
    };
    // The rest of its output is drained, so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    wait_ok(
        &format!("{base}/beacon/last"),
        std::time::Duration::from_secs(60),
    );
    let secs = started.elapsed().as_secs_f64();
    let pid = child.id();
    (Killed(child), base, pid, secs)
}
