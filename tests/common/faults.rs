//! The fault-injection harness: a beacon process whose stderr and stdout go to files (for the
//! secrets check), signals, a watcher that records when each pulse first becomes readable in
//! the database, raw SSE clients that never read, a bounded request flood, and the checks
//! every fault test ends with (the chain replays, every gap is marked, nothing early or late,
//! no secret in any log line).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The period every fault test runs with (`--period 1s`).
pub const PERIOD_MS: i64 = 1000;
/// The late-slot tolerance the beacon applies by default: min(period / 10, 5 s).
pub const TOLERANCE_MS: i64 = 100;
/// What the measurement itself may add on top of the tolerance: the append and its commit
/// under load on a shared machine, and our clock read after the query. The watcher's bounds are
/// strict (a pulse is late only if a query that started later than `timestamp + tolerance +
/// slack` did not see it), so the slack only covers the beacon's own work after its check.
pub const SLACK_MS: i64 = 100;
/// How soon after a fault ends the beacon must publish again: two periods, plus the slack.
pub const RECOVERY_MS: i64 = 2 * PERIOD_MS + SLACK_MS;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// Signals and sockets, straight from the C library (libc is linked into every Rust program on
// Linux; the test crate has no `libc` dependency).

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    fn connect(fd: i32, addr: *const SockAddrIn, len: u32) -> i32;
    fn close(fd: i32) -> i32;
}

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

#[repr(C)]
struct SockAddrIn {
    family: u16,
    port: u16,
    addr: u32,
    zero: [u8; 8],
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    let r = unsafe { kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}) failed");
}

/// A TCP connection to `addr` whose receive buffer is set (before connecting, so that the
/// window it advertises is small from the start) to `rcvbuf` bytes.
pub fn connect_small(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only: {addr}")
    };
    // SAFETY: plain socket calls on a descriptor we own; on success it is handed to TcpStream,
    // which closes it.
    unsafe {
        let fd = socket(2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
        assert!(fd >= 0, "socket() failed");
        let r = setsockopt(
            fd,
            1, /* SOL_SOCKET */
            8, /* SO_RCVBUF */
            (&rcvbuf as *const i32).cast(),
            4,
        );
        assert_eq!(r, 0, "setsockopt(SO_RCVBUF) failed");
        let sa = SockAddrIn {
            family: 2,
            port: v4.port().to_be(),
            addr: u32::from(*v4.ip()).to_be(),
            zero: [0; 8],
        };
        if connect(fd, &sa, std::mem::size_of::<SockAddrIn>() as u32) != 0 {
            close(fd);
            panic!(
                "connect to {addr} failed: {}",
                std::io::Error::last_os_error()
            );
        }
        TcpStream::from_raw_fd(fd)
    }
}

/// `http://127.0.0.1:PORT` → the socket address.
pub fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// An SSE client that asks for everything after `last_event_id` and then never reads: its
/// tiny receive buffer fills at once and the server's writes to it block.
pub fn idle_sse_client(base: &str, last_event_id: &str) -> TcpStream {
    let mut s = connect_small(addr_of(base), 4096);
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
    )
    .unwrap();
    s
}

/// An SSE client that reads every event on a thread; the thread ends when the stream does.
/// Returns the count of `id:` lines read so far.
pub fn reading_sse_client(base: &str) -> Arc<AtomicU64> {
    let events = Arc::new(AtomicU64::new(0));
    let mut s = TcpStream::connect(addr_of(base)).unwrap();
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let counted = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            if line.starts_with("id: ") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    events
}

/// An SSE client that records each event it reads as it arrives: (chain, index, time ms).
pub fn recording_sse_client(base: &str) -> Arc<Mutex<Vec<(u64, u64, i64)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut s = TcpStream::connect(addr_of(base)).unwrap();
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let rec = got.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let Some((c, i)) = line.strip_prefix("id: ").and_then(|id| id.split_once('-')) else {
                continue;
            };
            if let (Ok(c), Ok(i)) = (c.trim().parse(), i.trim().parse()) {
                rec.lock().unwrap().push((c, i, now_ms()));
            }
        }
    });
    got
}

// ---------------------------------------------------------------------------------------------
// Percentiles.

/// (p50, p99, max) of `v` (sorted here); zeros when empty.
pub fn summary(v: &mut [i64]) -> (i64, i64, i64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

// ---------------------------------------------------------------------------------------------
// The beacon under test.

/// A dev token, its configuration, and a directory for the logs of every process started
/// from it. Every secret it knows of is looked for in those logs by [`Fixture::check_logs`].
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The dev token's directory (softhsm-setup/dev-token.sh).
    pub hsm: PathBuf,
    pub config: PathBuf,
    pub logs: PathBuf,
    secrets: Vec<String>,
    started: Mutex<u32>,
}

impl Fixture {
    /// A new dev token, or `None` (with a message; a failure under CI=true) without SoftHSM2.
    pub fn new() -> Option<Fixture> {
        if !super::softhsm_present() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("lbfaults-")
            .tempdir()
            .unwrap();
        let hsm = dir.path().join("hsm");
        super::dev_token(&hsm);
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut secrets = Vec::new();
        for f in ["user.pin", "so.pin"] {
            let pin = std::fs::read_to_string(hsm.join(f)).unwrap();
            assert!(pin.trim().len() >= 6, "{f} is not a PIN");
            secrets.push(pin.trim().to_string());
        }
        Some(Fixture {
            config: super::dev_config(&hsm),
            dir,
            hsm,
            logs,
            secrets,
            started: Mutex::new(0),
        })
    }

    /// Adds a secret that must appear in no log line (e.g. a database password).
    pub fn secret(&mut self, s: &str) {
        self.secrets.push(s.to_string());
    }

    /// The dev token's SQLite database.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite:{}", self.hsm.join("lavabeacon.db").display())
    }

    /// The SoftHSM2 token directory, from the dev token's softhsm2.conf.
    pub fn token_dir(&self) -> PathBuf {
        let conf = std::fs::read_to_string(self.hsm.join("softhsm2.conf")).unwrap();
        conf.lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
            })
            .expect("softhsm2.conf names directories.tokendir")
    }

    /// Starts `lavabeacon COMMAND --config … --period 1s --listen 127.0.0.1:0` plus `extra`,
    /// with `env` set; waits until it listens (not for `engine`).
    pub fn start(&self, command: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        self.spawn(command, &self.config, extra, env, Stdout::Keep)
    }

    /// As [`Fixture::start`], with another configuration file and a choice for stdout.
    pub fn spawn(
        &self,
        command: &str,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        stdout: Stdout,
    ) -> Proc {
        let n = {
            let mut s = self.started.lock().unwrap();
            *s += 1;
            *s
        };
        let name = format!("{n:02}-{command}");
        let stderr = std::fs::File::create(self.logs.join(format!("{name}.stderr"))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
        cmd.arg(command)
            .arg("--config")
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env_remove("LAVABEACON_DATABASE_URL")
            .env_remove("LAVABEACON_LOG_FORMAT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if command != "api" {
            cmd.args(["--period", "1s"]);
        }
        let listens = command != "engine";
        if listens {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let mut proc = Proc {
            child,
            base: String::new(),
            name: name.clone(),
            stderr_path: self.logs.join(format!("{name}.stderr")),
            stdout_lines: Arc::new(Mutex::new(Vec::new())),
        };
        match stdout {
            Stdout::Keep => {
                let (tx, rx) = std::sync::mpsc::channel();
                let lines = proc.stdout_lines.clone();
                let mut file =
                    std::fs::File::create(self.logs.join(format!("{name}.stdout"))).unwrap();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { return };
                        let _ = writeln!(file, "{line}");
                        if let Some(addr) = line.strip_prefix("listening on ") {
                            let _ = tx.send(addr.to_string());
                        }
                        lines.lock().unwrap().push(line);
                    }
                });
                if listens {
                    let started = Instant::now();
                    proc.base = loop {
                        if let Ok(a) = rx.recv_timeout(Duration::from_millis(100)) {
                            break a;
                        }
                        let exited = proc.child.try_wait().unwrap();
                        if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                            // Give the log a moment to be complete.
                            std::thread::sleep(Duration::from_millis(100));
                            panic!(
                                "{name} printed no address (exit: {exited:?}); stderr:\n{}",
                                proc.stderr()
                            );
                        }
                    };
                }
            }
            Stdout::CloseAfterListening => {
                // Read on this thread up to the address, then close the read end: every later
                // write to stdout fails (EPIPE).
                let mut r = BufReader::new(out);
                let started = Instant::now();
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = r.read_line(&mut line).unwrap();
                    assert!(
                        n > 0 && started.elapsed() < Duration::from_secs(30),
                        "{name} printed no address; stderr:\n{}",
                        proc.stderr()
                    );
                    if let Some(addr) = line.trim_end().strip_prefix("listening on ") {
                        proc.base = addr.to_string();
                        break;
                    }
                }
                drop(r);
            }
        }
        proc
    }

    /// Every line of every log file (stderr and stdout of each process started) is free of
    /// every secret: the HSM PINs and any password given with [`Fixture::secret`].
    pub fn check_logs(&self) {
        let mut lines = 0;
        let mut found = Vec::new();
        for e in std::fs::read_dir(&self.logs).unwrap() {
            let path = e.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
            for (n, line) in text.lines().enumerate() {
                lines += 1;
                for (k, s) in self.secrets.iter().enumerate() {
                    if line.contains(s.as_str()) {
                        // The message names the line and which secret, never the secret.
                        found.push(format!(
                            "{}:{}: secret #{k} in: {}",
                            path.file_name().unwrap().to_string_lossy(),
                            n + 1,
                            line.replace(s.as_str(), "<SECRET>")
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "secrets in the beacon's log lines:\n{}",
            found.join("\n")
        );
        println!(
            "faults: log secrets: {lines} lines of {} files checked for {} secrets, none found",
            std::fs::read_dir(&self.logs).unwrap().count(),
            self.secrets.len()
        );
    }
}

impl Drop for Fixture {
    /// When the test failed, the logs of its beacons are kept (the rest of the directory goes)
    /// and their place printed: the failure message says what, these say why.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join(format!(
                "lavabeacon-faults-logs-{}-{}",
                std::process::id(),
                now_ms()
            ));
            if std::fs::rename(&self.logs, &keep).is_ok() {
                eprintln!("faults: the beacons' logs are kept in {}", keep.display());
            }
        }
    }
}

/// What to do with a started process's stdout.
#[derive(Clone, Copy, PartialEq)]
pub enum Stdout {
    /// Read every line on a thread (kept, and written to the log directory).
    Keep,
    /// Read up to `listening on`, then close the pipe.
    CloseAfterListening,
}

/// A running lavabeacon process; SIGKILLed when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (serve, api).
    pub base: String,
    pub name: String,
    pub stderr_path: PathBuf,
    pub stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Its standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits at most `within` for it to exit: its status and how long that took.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some((s, started.elapsed()));
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process must be continued to die promptly; harmless otherwise.
        let _ = self.child.kill();
        // SAFETY: kill(2) on our own child.
        unsafe { kill(self.child.id() as i32, SIGCONT) };
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// When each pulse first becomes readable.

/// One pulse as the watcher first saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub index: u64,
    pub time_ms: i64,
    pub status: u32,
    pub output: String,
    /// A query that started at this time did not see it yet (strict lower bound of when it
    /// became readable); `None` when that is not known (the watcher was not watching: first
    /// look, database down, several pulses found at once).
    pub after_ms: Option<i64>,
    /// It was readable at this time (upper bound).
    pub by_ms: i64,
}

/// A thread that asks the database for the next pulse of `chain` every 20 ms (or as told), through the
/// store's own code (its own connections, apart from the beacon's).
pub struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `chain` in the database at `url` (which must exist), every 20 ms.
    pub fn start(url: &str, chain: u64) -> Watch {
        Watch::start_every(url, chain, Duration::from_millis(20))
    }

    /// As [`Watch::start`], asking every `every`.
    pub fn start_every(url: &str, chain: u64, every: Duration) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let (s, v, e, url) = (stop.clone(), seen.clone(), errors.clone(), url.to_string());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let store = loop {
                    match lavabeacon_store::open(&url).await {
                        Ok(st) => break st,
                        Err(_) if !s.load(Ordering::Relaxed) => {
                            e.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => return,
                    }
                };
                let mut next = 1u64;
                let mut quiet_since: Option<i64> = None;
                while !s.load(Ordering::Relaxed) {
                    let start = now_ms();
                    let r =
                        tokio::time::timeout(Duration::from_secs(2), store.by_index(chain, next))
                            .await;
                    match r {
                        Ok(Ok(Some(p))) => {
                            v.lock().unwrap().push(Seen {
                                index: next,
                                time_ms: p.time_ms().unwrap(),
                                status: p.status_code,
                                output: p.output_value.to_hex_upper(),
                                after_ms: quiet_since,
                                by_ms: now_ms(),
                            });
                            next += 1;
                            // The next one found at once would have been there already.
                            quiet_since = None;
                            continue;
                        }
                        Ok(Ok(None)) => quiet_since = Some(start),
                        _ => {
                            e.fetch_add(1, Ordering::Relaxed);
                            quiet_since = None;
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            })
        });
        Watch {
            stop,
            seen,
            errors,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }

    /// Waits up to `within` for `n` pulses in all.
    pub fn wait_count(&self, n: usize, within: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let have = self.seen.lock().unwrap().len();
            if have >= n {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(format!("{have} pulses, not {n}, within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first pulse seen whose timestamp is after `since_ms`, waiting up to `within`.
    pub fn wait_after(&self, since_ms: i64, within: Duration) -> Option<Seen> {
        let started = Instant::now();
        loop {
            if let Some(s) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.time_ms > since_ms)
                .cloned()
            {
                return Some(s);
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for `n` more pulses than seen now (at most `n` periods and 10 s more).
    pub fn wait_more(&self, n: usize) {
        let have = self.seen.lock().unwrap().len();
        let within = Duration::from_millis(n as u64 * PERIOD_MS as u64 + 10_000);
        if let Err(e) = self.wait_count(have + n, within) {
            panic!("the beacon stopped publishing: {e}");
        }
    }

    /// The index of the newest pulse seen (0 for none).
    pub fn head(&self) -> u64 {
        self.last().map_or(0, |s| s.index)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits for the first pulse published after the fault: the first whose timestamp is after
/// `since_ms`, a time from which no pulse could have been made before the fault (for most
/// faults, when it began plus one period: a pulse is prepared up to a period ahead). It must be
/// readable within [`RECOVERY_MS`] of `ended_ms`, when the fault ended. Returns it and how long
/// after the end it was readable (ms).
pub fn recovered(watch: &Watch, since_ms: i64, ended_ms: i64, what: &str) -> (Seen, i64) {
    let s = watch
        .wait_after(since_ms, Duration::from_millis(RECOVERY_MS as u64 + 10_000))
        .unwrap_or_else(|| {
            panic!(
                "{what}: no new pulse within {} s of the fault ending: the beacon did not recover without a restart (newest seen: {:?})",
                RECOVERY_MS / 1000 + 10,
                watch.last()
            )
        });
    let took = s.by_ms - ended_ms;
    assert!(
        took <= RECOVERY_MS,
        "{what}: the first pulse after the fault (#{}, status {}) was readable {took} ms after the fault ended; it must be within two periods ({RECOVERY_MS} ms with the slack)",
        s.index,
        s.status
    );
    (s, took)
}

/// Every pulse the watcher timed was readable no earlier than its timestamp and, when the
/// watcher was looking, no later than the tolerance plus the slack. Returns the lateness
/// estimates (upper bounds, ms) of the timed pulses.
pub fn assert_punctual(seen: &[Seen], what: &str) -> Vec<i64> {
    let mut problems = Vec::new();
    let mut lateness = Vec::new();
    for s in seen {
        if s.by_ms < s.time_ms {
            problems.push(format!(
                "pulse #{} readable {} ms before its timestamp",
                s.index,
                s.time_ms - s.by_ms
            ));
        }
        if let Some(a) = s.after_ms {
            if a > s.time_ms + TOLERANCE_MS + SLACK_MS {
                problems.push(format!(
                    "pulse #{} (status {}) still unreadable {} ms after its timestamp and published later (tolerance {TOLERANCE_MS} ms + slack {SLACK_MS} ms): a late slot must be skipped",
                    s.index,
                    s.status,
                    a - s.time_ms
                ));
            }
            lateness.push(s.by_ms - s.time_ms);
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    lateness
}

// ---------------------------------------------------------------------------------------------
// The chain after the fault.

/// One pulse of the stored chain, as the checks need it.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u64,
    pub time_ms: i64,
    pub status: u32,
    pub output: String,
    pub certificate: String,
}

/// Runs `f` to completion on a runtime of its own (the fault tests are plain threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The whole of `chain` from the database at `url`.
pub fn chain(url: &str, chain: u64) -> Vec<Link> {
    block_on(chain_of(url, chain))
}

async fn chain_of(url: &str, chain: u64) -> Vec<Link> {
    let store = lavabeacon_store::open(url).await.unwrap();
    let mut v = Vec::new();
    let Some(last) = store.last_in_chain(chain).await.unwrap() else {
        return v;
    };
    for i in 1..=last.pulse_index {
        let p = store
            .by_index(chain, i)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("chain {chain} has no pulse {i} below its head"));
        v.push(Link {
            index: i,
            time_ms: p.time_ms().unwrap(),
            status: p.status_code,
            output: p.output_value.to_hex_upper(),
            certificate: p.certificate_id.to_hex_upper(),
        });
    }
    v
}

/// `lavabeacon replay --database URL` must pass (exit 0).
pub fn replay_passes(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["replay", "--database", url])
        .env_remove("LAVABEACON_DATABASE_URL")
        .output()
        .unwrap();
    let text = super::output_text(&out);
    assert!(
        out.status.success(),
        "lavabeacon replay --database {} failed ({:?}):\n{text}",
        lavabeacon_store::redact(url),
        out.status.code()
    );
    text
}

/// Slots without a pulse between consecutive pulses of `links` (from the first to the last).
pub fn missed(links: &[Link]) -> i64 {
    links
        .windows(2)
        .map(|w| (w[1].time_ms - w[0].time_ms) / PERIOD_MS - 1)
        .sum()
}

/// The checks every fault test ends with, on the stored chain: `replay` passes; indices are
/// whole; the first pulse has status 1 and, after it, each gap is marked with status 2 on the
/// pulse after it and each pulse without a gap has status 0; status 3 only at the indices
/// `lost_ok` allows; every pulse the watcher saw is in the chain unchanged (no fork, no
/// rewritten head). Returns the chain.
pub fn assert_chain(url: &str, chain_index: u64, seen: &[Seen], lost_ok: &[u64]) -> Vec<Link> {
    replay_passes(url);
    let links = chain(url, chain_index);
    assert!(!links.is_empty(), "chain {chain_index} is empty");
    let mut problems = Vec::new();
    if links[0].status != 1 {
        problems.push(format!("pulse #1 has status {}, not 1", links[0].status));
    }
    for w in links.windows(2) {
        let gap = w[1].time_ms - w[0].time_ms;
        let want = if gap > PERIOD_MS { 2 } else { 0 };
        if gap % PERIOD_MS != 0 || gap <= 0 {
            problems.push(format!(
                "pulse #{}: {gap} ms after the previous one",
                w[1].index
            ));
        }
        match w[1].status {
            3 if lost_ok.contains(&w[1].index) => {}
            3 => problems.push(format!(
                "pulse #{} has status 3 (precommitment lost) although the sealed value was never lost",
                w[1].index
            )),
            s if s != want => problems.push(format!(
                "pulse #{} has status {s} after a gap of {gap} ms (want {want})",
                w[1].index
            )),
            _ => {}
        }
    }
    for s in seen {
        match links.get(s.index as usize - 1) {
            Some(l) if l.output == s.output => {}
            Some(_) => problems.push(format!(
                "pulse #{} changed after it was readable (a fork or a rewritten head)",
                s.index
            )),
            None => problems.push(format!("pulse #{} was readable, then gone", s.index)),
        }
    }
    let statuses: Vec<String> = links
        .iter()
        .map(|l| format!("#{}:{}", l.index, l.status))
        .collect();
    assert!(
        problems.is_empty(),
        "chain {chain_index}:\n{}\nstatuses: {}",
        problems.join("\n"),
        statuses.join(" ")
    );
    links
}

// ---------------------------------------------------------------------------------------------
// Load.

/// Statistics of a flood.
#[derive(Debug, Default)]
pub struct Flood {
    pub requests: u64,
    pub failures: u64,
    /// Request latencies, ms.
    pub latencies: Vec<i64>,
}

/// `threads` threads, each asking `/health` and `/beacon/last` in turn, as fast as answers
/// come, for `secs` seconds (a bounded flood: at most `threads` requests in flight).
pub fn flood(base: &str, threads: usize, secs: u64) -> std::thread::JoinHandle<Flood> {
    let base = base.to_string();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(secs);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(5))
                        .build();
                    let mut f = Flood::default();
                    let mut n = 0u64;
                    while Instant::now() < until {
                        let path = if n % 2 == 0 {
                            "/health"
                        } else {
                            "/beacon/last"
                        };
                        n += 1;
                        let t = Instant::now();
                        let ok = match agent.get(&format!("{base}{path}")).call() {
                            Ok(r) => r.into_string().is_ok(),
                            Err(ureq::Error::Status(_, r)) => r.into_string().is_ok(),
                            Err(_) => false,
                        };
                        f.latencies.push(t.elapsed().as_millis() as i64);
                        f.requests += 1;
                        f.failures += u64::from(!ok);
                    }
                    f
                })
            })
            .collect();
        let mut all = Flood::default();
        for w in workers {
            let f = w.join().unwrap();
            all.requests += f.requests;
            all.failures += f.failures;
            all.latencies.extend(f.latencies);
        }
        all
    })
}

/// One GET with a timeout: (status or 0 on a transport error, latency ms).
pub fn timed_get(url: &str, timeout: Duration) -> (u16, i64) {
    let t = Instant::now();
    let status = match ureq::AgentBuilder::new()
        .timeout(timeout)
        .build()
        .get(url)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(_) => 0,
    };
    (status, t.elapsed().as_millis() as i64)
}
