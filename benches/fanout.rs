//! Fan-out of one read-only `lavabeacon api` node: how fast a new pulse reaches many clients
//! that wait for it, and what holding them costs the server.
//!
//! 1. **SSE**: FANOUT_CLIENTS concurrent `GET /beacon/2.0/stream` subscribers; the bench
//!    publishes FANOUT_PULSES pulses, one a slot, and every subscriber must get every one.
//! 2. **Long-poll**: FANOUT_CLIENTS concurrent `GET /beacon/{t}?wait=true` for the next slot t,
//!    all sent within the period before it; every one must be answered 200 with that pulse.
//!    FANOUT_PULSES rounds (after a warm-up round), every other slot, on kept-alive connections
//!    as HTTP/1.1 clients keep them.
//!
//! Each is run with 100 clients first, as the peer to compare with, then with FANOUT_CLIENTS;
//! each run on a fresh `api` process, so that its peak RSS is its own.
//!
//! The bench process is the publisher, as another engine would be: it appends signed pulses
//! (a software Ed25519 key, a chain of period FANOUT_PERIOD_S) to a SQLite store at their slot
//! times, and the `api` node learns of them through its store watcher, as a read-only node
//! does. Delivery latency is from the moment the append returned (publication) to the moment a
//! client read the whole event or answer, on the same monotonic clock. Also reported: the
//! server's RSS with every client connected and its peak (VmHWM), and the CPU the server and
//! this client used while the pulses were delivered (the client runs on the same 2 cores, so
//! when its CPU is near the server's, its own reading is part of the figure).
//!
//! `cargo bench --bench fanout`; FANOUT_CLIENTS (default 10,000), FANOUT_PULSES (default 10),
//! FANOUT_PERIOD_S (default 2; 1 to 5). The file limit (RLIMIT_NOFILE) of this process, and so of
//! the server it starts, is raised to what the clients need: its hard limit must allow
//! FANOUT_CLIENTS + 1,024 descriptors. Figures and what they mean: docs/fanout.md.

mod support;

use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::Slots;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{api, rss};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Semaphore};

/// The peer run's clients.
const PEER_CLIENTS: usize = 100;

/// Connections being opened at once: below the server's listen backlog (128: `api` listens on a
/// std `TcpListener`, whose backlog is 128, not actix's 2,048), so that no SYN is dropped and
/// retried a second later, which would measure the kernel's retry timer instead of the server.
const CONNECTING: usize = 64;

/// How long after a pulse's publication every client must have it before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let clients = env_or("FANOUT_CLIENTS", 10_000) as usize;
    let pulses = env_or("FANOUT_PULSES", 10) as usize;
    let period_s = env_or("FANOUT_PERIOD_S", 2);
    assert!(clients >= 1, "FANOUT_CLIENTS must be at least 1");
    assert!(pulses >= 1, "FANOUT_PULSES must be at least 1");
    // Whole seconds (the configuration's rule); at most 5 s, so that the long-polls' kept-alive
    // connections (idle one period between rounds) outlive no keep-alive timeout (actix: 5 s).
    assert!(
        (1..=5).contains(&period_s),
        "FANOUT_PERIOD_S must be 1 to 5 (seconds)"
    );
    raise_file_limit(clients as u64 + 1_024);

    let load_before = load_average();
    let tmp = tempfile::tempdir().unwrap();
    let period_ms = (period_s * 1000) as u32;
    let publisher = Publisher::start(tmp.path(), period_ms);
    // Two workers: the machine's two cores, shared with the server.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctx = Ctx {
        dir: tmp.path().to_path_buf(),
        db: publisher.db.clone(),
        period_ms,
        pulses,
    };
    let mut rows = Vec::new();
    let mut sizes = vec![PEER_CLIENTS.min(clients)];
    if clients > PEER_CLIENTS {
        sizes.push(clients);
    }
    rt.block_on(async {
        for &n in &sizes {
            rows.push(sse(&ctx, &publisher, n).await);
        }
        for &n in &sizes {
            rows.push(long_poll(&ctx, &publisher, n).await);
        }
    });
    let load_after = load_average();

    println!();
    println!(
        "Fan-out of one `lavabeacon api` node (2 HTTP workers, read-only, SQLite), period {period_s} s, \
         {pulses} pulses a run, the clients in this process on the same machine ({} cores; load \
         average {load_before} before, {load_after} after):",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  {:<10} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "",
        "clients",
        "deliveries",
        "min ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "connect s",
        "RSS conn",
        "RSS peak",
        "srv CPU",
        "bench CPU"
    );
    for r in &rows {
        println!(
            "  {:<10} {:>7} {:>10} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.2} {:>7.1}Mi {:>7.1}Mi {:>7.0}ms {:>7.0}ms",
            r.kind,
            r.clients,
            r.latencies.len(),
            r.pct(0.0),
            r.pct(0.50),
            r.pct(0.99),
            r.pct(1.0),
            r.connect_s,
            r.rss_connected,
            r.rss_peak,
            r.server_cpu_ms,
            r.bench_cpu_ms
        );
    }
    println!(
        "  (latency from the publisher's append returning to the client having the whole event or \
         answer; RSS conn: the server with every client connected (SSE) or waiting (long-poll, the \
         most of any round); CPU: a pulse's, from its publication until every client has it)"
    );
    for r in &rows {
        if r.bench_cpu_ms > 0.5 * r.server_cpu_ms && r.clients > PEER_CLIENTS {
            println!(
                "  note: {} with {} clients: this client used {:.0} ms of CPU a pulse to the server's {:.0} ms, \
                 on the same 2 cores; part of the latency is its own reading",
                r.kind, r.clients, r.bench_cpu_ms, r.server_cpu_ms
            );
        }
    }
    for r in rows.iter().filter(|r| r.clients == clients) {
        let p99 = r.pct(0.99);
        println!(
            "  target, {} {} clients: delivery p99 {p99:.1} ms < 100 ms: {}; peak RSS {:.1} MiB < 300 MiB: {}",
            r.kind,
            r.clients,
            if p99 < 100.0 { "met" } else { "NOT met" },
            r.rss_peak,
            if r.rss_peak < 300.0 { "met" } else { "NOT met" },
        );
    }
    for r in &rows {
        for n in &r.notes {
            println!("  {} {}: {n}", r.kind, r.clients);
        }
    }
}

/// Raises this process's soft file limit to `need` (children inherit it: the server too).
fn raise_file_limit(need: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) },
        0,
        "getrlimit"
    );
    if r.rlim_cur >= need {
        return;
    }
    assert!(
        r.rlim_max >= need,
        "the file limit's hard maximum is {} descriptors; FANOUT_CLIENTS={} needs {need}: \
         raise it (`ulimit -Hn`, limits.conf, or run as a user allowed to) or lower FANOUT_CLIENTS",
        r.rlim_max,
        need - 1_024
    );
    r.rlim_cur = need;
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) },
        0,
        "setrlimit(RLIMIT_NOFILE, {need}): {}",
        std::io::Error::last_os_error()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time (user + system) this process has used.
fn own_cpu() -> Duration {
    // SAFETY: getrusage with a zeroed struct it fills.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time (user + system) process `pid` has used.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e} (has the api node died?)"));
    // After the command name (which may hold spaces), fields 3 onwards; utime and stime are
    // fields 14 and 15, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("/proc/pid/stat") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((f[11] + f[12]) * 1000 / hz)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The monotonic instant of a Unix time, in milliseconds (the server reads the same clock).
fn instant_of(ms: i64) -> Instant {
    let (now, now_ms) = (Instant::now(), unix_ms());
    if ms >= now_ms {
        now + Duration::from_millis((ms - now_ms) as u64)
    } else {
        now.checked_sub(Duration::from_millis((now_ms - ms) as u64))
            .unwrap_or(now)
    }
}

struct Ctx {
    dir: PathBuf,
    db: PathBuf,
    period_ms: u32,
    pulses: usize,
}

impl Ctx {
    fn slots(&self) -> Slots {
        Slots::new(self.period_ms).unwrap()
    }

    /// A fresh `lavabeacon api` over the store, allowing `clients` streams from this one
    /// address (every client here is 127.0.0.1): the process, its address and pid.
    fn api(&self, clients: usize) -> (support::Killed, SocketAddr, u32) {
        let config = self.dir.join("fanout.toml");
        let limit = clients + 64;
        std::fs::write(
            &config,
            format!(
                "[beacon]\nbase_uri = \"http://127.0.0.1/beacon/2.0\"\nchain = 1\nperiod_ms = {}\n\
                 data_dir = \"{}\"\n\n[database]\nurl = \"sqlite:{}\"\n\n[api]\nworkers = 2\n\
                 max_streams = {limit}\nmax_streams_per_client = {limit}\n",
                self.period_ms,
                self.dir.join("data").display(),
                self.db.display()
            ),
        )
        .unwrap();
        let (child, base, pid) = api(&self.dir, &["--config".as_ref(), config.as_os_str()]);
        let addr = base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the api node printed {base:?}, not http://ADDRESS"));
        (child, addr, pid)
    }
}

/// What one run measured.
struct Row {
    kind: &'static str,
    clients: usize,
    /// Every delivery's latency from publication, ms, sorted.
    latencies: Vec<f64>,
    connect_s: f64,
    rss_connected: f64,
    rss_peak: f64,
    server_cpu_ms: f64,
    bench_cpu_ms: f64,
    notes: Vec<String>,
}

impl Row {
    /// The `q` quantile (nearest rank).
    fn pct(&self, q: f64) -> f64 {
        let v = &self.latencies;
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

/// The first and last delivery of each pulse measured, ms from its publication: the first
/// says when the node found the pulse, the distance to the last how long the fan-out took.
struct Spread(Vec<(f64, f64)>);

impl Spread {
    fn new(pulses: usize) -> Spread {
        Spread(vec![(f64::INFINITY, f64::NEG_INFINITY); pulses])
    }

    /// A delivery of pulse `k` after `ms`, also kept in `all`.
    fn add(&mut self, k: usize, ms: f64, all: &mut Vec<f64>) {
        let (first, last) = &mut self.0[k];
        *first = first.min(ms);
        *last = last.max(ms);
        all.push(ms);
    }

    fn note(&self) -> String {
        let each: Vec<_> = self
            .0
            .iter()
            .map(|(a, b)| format!("{a:.0}–{b:.0}"))
            .collect();
        format!("first–last delivery of each pulse, ms: {}", each.join(" "))
    }
}

fn ms_between(published: Instant, received: Instant) -> f64 {
    // A client may read a pulse a hair before the append call returns to the publisher (the
    // commit is visible before the call is done): a small negative latency, kept as such.
    if received >= published {
        (received - published).as_secs_f64() * 1e3
    } else {
        -(published - received).as_secs_f64() * 1e3
    }
}

// ---- the publisher -------------------------------------------------------------------------

/// Appends signed pulses to the store at their slot times, on its own thread and runtime, so
/// that the moment it records is not delayed by the clients' work.
struct Publisher {
    db: PathBuf,
    /// The newest pulse's index.
    last: Arc<AtomicU64>,
    tx: std::sync::mpsc::Sender<(i64, oneshot::Sender<Published>)>,
}

#[derive(Clone, Copy)]
struct Published {
    index: u64,
    at: Instant,
}

impl Publisher {
    /// A new SQLite store in `dir` with the start of a chain of period `period_ms` (three
    /// pulses just before now), and the thread that continues it.
    fn start(dir: &Path, period_ms: u32) -> Publisher {
        let db = dir.join("fanout.db");
        let url = format!("sqlite:{}", db.display());
        let signer = SoftwareSigner::load_or_create(&dir.join("keys")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(i64, oneshot::Sender<Published>)>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let last = Arc::new(AtomicU64::new(0));
        let newest = last.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let slots = Slots::new(period_ms).unwrap();
            let lrv = |i: u64| sha512(&[b"fanout bench", &i.to_be_bytes()]);
            let mut b = ChainBuilder::new_chain(ChainParams::new(
                "http://127.0.0.1/beacon/2.0",
                1,
                period_ms,
            ));
            let mut index = 0u64;
            let mut next = |b: &mut ChainBuilder, t: i64| {
                index += 1;
                b.next(
                    NextPulse::new(t, lrv(index), precommitment(&lrv(index + 1))),
                    &signer,
                )
                .unwrap()
            };
            let store = rt.block_on(async {
                let store = lavabeacon_store::open(&url).await.unwrap();
                store
                    .put_certificate(&signer.certificate().der)
                    .await
                    .unwrap();
                let start = slots.at_or_before(unix_ms()) - 3 * i64::from(period_ms);
                let first: Vec<_> = (0..3)
                    .map(|k| next(&mut b, start + k * i64::from(period_ms)))
                    .collect();
                store.bulk_load(&first).await.unwrap();
                newest.store(first[2].pulse_index, Ordering::SeqCst);
                store
            });
            ready_tx.send(()).unwrap();
            for (slot, reply) in rx {
                let published = rt.block_on(async {
                    tokio::time::sleep_until(instant_of(slot).into()).await;
                    let pulse = next(&mut b, slot);
                    store
                        .append(&pulse, None, None)
                        .await
                        .unwrap_or_else(|e| panic!("appending pulse {}: {e}", pulse.pulse_index));
                    newest.store(pulse.pulse_index, Ordering::SeqCst);
                    Published {
                        index: pulse.pulse_index,
                        at: Instant::now(),
                    }
                });
                let _ = reply.send(published);
            }
        });
        ready_rx
            .recv()
            .expect("the publisher failed to make its store");
        Publisher { db, last, tx }
    }

    /// Publishes the pulse of `slot` (Unix ms) at that time (at once if it is past).
    async fn publish(&self, slot: i64) -> Published {
        let (reply, answer) = oneshot::channel();
        self.tx.send((slot, reply)).expect("the publisher is gone");
        answer.await.expect("the publisher failed")
    }
}

// ---- HTTP/1.1, as little of it as the bench needs -------------------------------------------

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds a whole response head; its length, blank line included.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            return Ok(end + 4);
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "the server closed the connection before answering".into()
            } else {
                format!(
                    "the server closed the connection mid-head: {:?}",
                    String::from_utf8_lossy(buf)
                )
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status of a response head.
fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A header's value in a response head (names compared without case).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Undoes `Transfer-Encoding: chunked` as bytes arrive.
struct Chunked {
    state: ChunkState,
    line: Vec<u8>,
}

enum ChunkState {
    Size,
    Data(usize),
    /// The CRLF after a chunk's data: how much of it was seen.
    DataEnd(u8),
    Done,
}

impl Chunked {
    fn new() -> Chunked {
        Chunked {
            state: ChunkState::Size,
            line: Vec::new(),
        }
    }

    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match &mut self.state {
                ChunkState::Size => {
                    let b = input[0];
                    input = &input[1..];
                    if b != b'\n' {
                        self.line.push(b);
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).to_string();
                    let hex = line.trim_end_matches('\r');
                    let hex = hex.split(';').next().unwrap_or("").trim();
                    let n = usize::from_str_radix(hex, 16)
                        .map_err(|_| format!("bad chunk size line {line:?}"))?;
                    self.line.clear();
                    self.state = if n == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(n)
                    };
                }
                ChunkState::Data(left) => {
                    let take = (*left).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    *left -= take;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd(0);
                    }
                }
                ChunkState::DataEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if input[0] != want {
                        return Err("a chunk does not end with CRLF".into());
                    }
                    input = &input[1..];
                    *seen += 1;
                    if *seen == 2 {
                        self.state = ChunkState::Size;
                    }
                }
                ChunkState::Done => return Err("bytes after the last chunk".into()),
            }
        }
        Ok(())
    }
}

// ---- SSE -----------------------------------------------------------------------------------

/// What the SSE subscribers share.
struct Subscribers {
    addr: SocketAddr,
    gate: Semaphore,
    connected: AtomicUsize,
    /// The first pulse index measured: [`Subscribers::counts`] is by index from it.
    first: u64,
    /// How many subscribers have each measured pulse.
    counts: Vec<AtomicUsize>,
}

/// One subscriber: connects, then reads events until `stop`; each pulse event's index and
/// when it was read whole.
async fn subscriber(
    shared: Arc<Subscribers>,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<(u64, Instant)>, String> {
    let (mut s, rest, chunked) = {
        let _permit = shared.gate.acquire().await.unwrap();
        let mut s = TcpStream::connect(shared.addr)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        s.write_all(
            b"GET /beacon/2.0/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .map_err(|e| format!("sending: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        let len = read_head(&mut s, &mut buf).await?;
        let head = String::from_utf8_lossy(&buf[..len]).to_string();
        if status(&head) != 200 {
            return Err(format!(
                "the stream answered {:?}",
                head.lines().next().unwrap_or("")
            ));
        }
        let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
        (s, buf[len..].to_vec(), chunked)
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut decoder = Chunked::new();
    let mut events = Vec::new();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut input = rest;
    loop {
        let at = Instant::now();
        if chunked {
            decoder.feed(&input, &mut events)?;
        } else {
            events.extend_from_slice(&input);
        }
        while let Some(end) = find(&events, b"\n\n") {
            let event = String::from_utf8_lossy(&events[..end]).to_string();
            events.drain(..end + 2);
            let id = event.lines().find_map(|l| l.strip_prefix("id: "));
            if let Some(id) = id {
                let index: u64 = id
                    .split_once('-')
                    .and_then(|(_, p)| p.parse().ok())
                    .ok_or_else(|| format!("event id {id:?} is not chain-index"))?;
                if !event.contains("\ndata: {\"pulse\":") {
                    return Err(format!("event {id} has no pulse: {event:?}"));
                }
                got.push((index, at));
                if let Some(c) = index
                    .checked_sub(shared.first)
                    .and_then(|k| shared.counts.get(k as usize))
                {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let n = tokio::select! {
            r = s.read(&mut chunk) => r.map_err(|e| format!("reading the stream: {e}"))?,
            _ = stop.wait_for(|s| *s) => return Ok(got),
        };
        if n == 0 {
            return Err(format!(
                "the server ended the stream after {} events",
                got.len()
            ));
        }
        input = chunk[..n].to_vec();
    }
}

/// Waits, polling `done`, until it is true or `limit` has passed; whether it became true.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// `lavabeacon_open_streams` from the node's `/metrics`.
async fn open_streams(addr: SocketAddr) -> u64 {
    tokio::task::spawn_blocking(move || {
        let text = ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .expect("GET /metrics")
            .into_string()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("lavabeacon_open_streams "))
            .and_then(|v| v.trim().parse().ok())
            .expect("lavabeacon_open_streams in /metrics")
    })
    .await
    .unwrap()
}

async fn sse(ctx: &Ctx, publisher: &Publisher, n: usize) -> Row {
    eprintln!("SSE, {n} subscribers…");
    let (server, addr, pid) = ctx.api(n);
    // The pulses measured are the next ones published: the index after the newest.
    let newest = publisher.last.load(Ordering::SeqCst);
    let shared = Arc::new(Subscribers {
        addr,
        gate: Semaphore::new(CONNECTING),
        connected: AtomicUsize::new(0),
        first: newest + 1,
        counts: (0..ctx.pulses).map(|_| AtomicUsize::new(0)).collect(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(subscriber(shared.clone(), stop.clone())))
        .collect();
    let all = wait_until(Duration::from_secs(120), || {
        shared.connected.load(Ordering::Relaxed) == n || tasks.iter().any(|t| t.is_finished())
    })
    .await;
    if !all || shared.connected.load(Ordering::Relaxed) < n {
        stop_tx.send_replace(true);
        let errors = failures(tasks).await;
        panic!(
            "only {} of {n} SSE subscribers connected; first failures: {errors:?}",
            shared.connected.load(Ordering::Relaxed)
        );
    }
    let connect_s = started.elapsed().as_secs_f64();
    let streams = open_streams(addr).await;
    assert_eq!(
        streams, n as u64,
        "every subscriber has its 200, so the server should count {n} open streams"
    );
    let rss_connected = rss(pid).1;

    let (cpu_server, cpu_bench) = (cpu_of(pid), own_cpu());
    let slots = ctx.slots();
    let mut published = Vec::new();
    for k in 0..ctx.pulses {
        let slot = slots.at_or_after(unix_ms() + 20);
        let p = publisher.publish(slot).await;
        assert_eq!(
            p.index,
            shared.first + k as u64,
            "the publisher's chain went on elsewhere"
        );
        published.push(p);
    }
    let delivered = wait_until(DELIVERY_TIMEOUT, || {
        shared.counts.iter().all(|c| c.load(Ordering::Relaxed) >= n)
    })
    .await;
    let cpu = (
        (cpu_of(pid) - cpu_server).as_secs_f64() * 1e3 / ctx.pulses as f64,
        (own_cpu() - cpu_bench).as_secs_f64() * 1e3 / ctx.pulses as f64,
    );
    stop_tx.send_replace(true);
    let mut latencies = Vec::with_capacity(n * ctx.pulses);
    let mut spread = Spread::new(ctx.pulses);
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(got) => {
                for (k, p) in published.iter().enumerate() {
                    let mine: Vec<_> = got.iter().filter(|(ix, _)| *ix == p.index).collect();
                    match mine.as_slice() {
                        [(_, at)] => spread.add(k, ms_between(p.at, *at), &mut latencies),
                        [] => missing.push((i, p.index)),
                        _ => errors.push(format!("subscriber {i} got pulse {} twice", p.index)),
                    }
                }
            }
            Err(e) => errors.push(format!("subscriber {i}: {e}")),
        }
    }
    // As in `long_poll`: VmHWM lags a little.
    let rss_peak = rss(pid).0.max(rss_connected);
    // Every subscriber has closed its connection: the server must give back every stream's
    // place (one leaked would, in time, be a 429 for everyone).
    let mut open = u64::MAX;
    for _ in 0..100 {
        open = open_streams(addr).await;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if open != 0 {
        errors.push(format!(
            "5 s after every subscriber left, the server still counts {open} open streams"
        ));
    }
    let notes = vec![
        spread.note(),
        format!(
            "server RSS once every subscriber had left: {:.1} MiB",
            rss(pid).1
        ),
    ];
    drop(server);
    assert!(
        errors.is_empty() && missing.is_empty() && delivered,
        "SSE with {n} subscribers: {} failed, {} deliveries missing within {DELIVERY_TIMEOUT:?} \
         (subscriber, pulse: {:?}); errors: {:?}",
        errors.len(),
        missing.len(),
        &missing[..missing.len().min(10)],
        &errors[..errors.len().min(10)]
    );
    latencies.sort_by(f64::total_cmp);
    Row {
        kind: "SSE",
        clients: n,
        latencies,
        connect_s,
        rss_connected,
        rss_peak,
        server_cpu_ms: cpu.0,
        bench_cpu_ms: cpu.1,
        notes,
    }
}

/// The first errors of tasks that failed (the others are stopped already or will be).
async fn failures<T>(tasks: Vec<tokio::task::JoinHandle<Result<T, String>>>) -> Vec<String> {
    let mut errors = Vec::new();
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    errors
}

fn pulse_index(body: &str) -> Option<u64> {
    let at = body.find("\"pulseIndex\":")? + "\"pulseIndex\":".len();
    let digits: String = body[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

// ---- long-polls ----------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Round {
    number: usize,
    slot_ms: i64,
}

struct Answer {
    round: usize,
    at: Instant,
    status: u16,
    index: Option<u64>,
}

/// What the long-polling clients share.
struct Waiters {
    addr: SocketAddr,
    gate: Semaphore,
    /// Clients with a connection open (and one answer on it).
    connected: AtomicUsize,
    /// Requests written, by round.
    sent: Vec<AtomicUsize>,
    /// Answers read, by round.
    answered: Vec<AtomicUsize>,
}

/// Reads one response whose head is in `buf` or still to come: its status, body, and whether
/// the server keeps the connection.
async fn read_response(s: &mut TcpStream) -> Result<(u16, String, bool), String> {
    let mut buf = Vec::with_capacity(2048);
    let len = read_head(s, &mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..len]).to_string();
    let body_len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("an answer without Content-Length: {head:?}"))?;
    let mut chunk = [0u8; 4096];
    while buf.len() < len + body_len {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection mid-body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[len..len + body_len]).to_string();
    let keep = !header(&head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Ok((status(&head), body, keep))
}

/// Opens a connection to `addr`.
async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    s.set_nodelay(true).unwrap();
    Ok(s)
}

/// One long-polling client: opens its connection with a `GET /beacon/last` (the gate held until
/// the answer, so that connections never wait unaccepted in the server's listen queue: its SYNs
/// would be dropped and retried a second later); then for each round, `GET
/// /beacon/{slot}?wait=true` on that kept-alive connection (opened again if the server closed
/// it), and the answer.
async fn waiter(
    shared: Arc<Waiters>,
    mut rounds: watch::Receiver<Option<Round>>,
) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::new();
    let mut conn = {
        let _permit = shared.gate.acquire().await.unwrap();
        let mut s = connect(shared.addr).await?;
        s.write_all(b"GET /beacon/last HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await
            .map_err(|e| format!("sending: {e}"))?;
        let (status, _, keep) = read_response(&mut s).await?;
        if status != 200 {
            return Err(format!("/beacon/last answered {status}"));
        }
        keep.then_some(s)
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    while rounds.changed().await.is_ok() {
        let Some(round) = *rounds.borrow_and_update() else {
            break;
        };
        let request = format!(
            "GET /beacon/{}?wait=true HTTP/1.1\r\nHost: bench\r\n\r\n",
            round.slot_ms
        );
        let mut counted = false;
        // Once more on a new connection if the server had closed the kept-alive one.
        for attempt in 0..2 {
            let reused = conn.is_some();
            let s = match &mut conn {
                Some(s) => s,
                None => {
                    let _permit = shared.gate.acquire().await.unwrap();
                    conn.insert(connect(shared.addr).await?)
                }
            };
            let sent = s.write_all(request.as_bytes()).await;
            if sent.is_ok() && !counted {
                counted = true;
                shared.sent[round.number].fetch_add(1, Ordering::Relaxed);
            }
            let answer = match sent {
                Ok(()) => read_response(s).await,
                Err(e) => Err(format!("sending: {e}")),
            };
            match answer {
                Ok((status, body, keep)) => {
                    answers.push(Answer {
                        round: round.number,
                        at: Instant::now(),
                        status,
                        index: pulse_index(&body),
                    });
                    shared.answered[round.number].fetch_add(1, Ordering::Relaxed);
                    if !keep {
                        conn = None;
                    }
                    break;
                }
                Err(_) if reused && attempt == 0 => conn = None,
                Err(e) => return Err(format!("round {}: {e}", round.number)),
            }
        }
    }
    Ok(answers)
}

/// Waits until process `pid` has used no CPU for `quiet` (it has read every request it was
/// sent), or until `by`.
async fn until_idle(pid: u32, quiet: Duration, by: Instant) {
    let mut last = cpu_of(pid);
    let mut since = Instant::now();
    while Instant::now() < by {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = cpu_of(pid);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

async fn long_poll(ctx: &Ctx, publisher: &Publisher, n: usize) -> Row {
    eprintln!("long-poll, {n} clients…");
    let (server, addr, pid) = ctx.api(n);
    // Round 0 is a warm-up, not measured: connections the server closed while they idled after
    // `/beacon/last` are opened again there.
    let rounds = ctx.pulses + 1;
    let shared = Arc::new(Waiters {
        addr,
        gate: Semaphore::new(CONNECTING),
        connected: AtomicUsize::new(0),
        sent: (0..rounds).map(|_| AtomicUsize::new(0)).collect(),
        answered: (0..rounds).map(|_| AtomicUsize::new(0)).collect(),
    });
    let (go, rx) = watch::channel(None);
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(waiter(shared.clone(), rx.clone())))
        .collect();
    let all = wait_until(Duration::from_secs(120), || {
        shared.connected.load(Ordering::Relaxed) == n || tasks.iter().any(|t| t.is_finished())
    })
    .await;
    if !all || shared.connected.load(Ordering::Relaxed) < n {
        go.send_replace(None);
        panic!(
            "only {} of {n} long-polling clients connected; first failures: {:?}",
            shared.connected.load(Ordering::Relaxed),
            failures(tasks).await
        );
    }
    let connect_s = started.elapsed().as_secs_f64();
    let slots = ctx.slots();
    let period = i64::from(ctx.period_ms);
    let mut published = Vec::new();
    let mut notes = Vec::new();
    let mut rss_waiting: f64 = 0.0;
    // CPU of the measured rounds (server, bench): reading the requests, and answering them.
    let (mut asked, mut answered) = ([Duration::ZERO; 2], [Duration::ZERO; 2]);
    for r in 0..rounds {
        // A wait is held only for a pulse due within one period: the requests go out at most a
        // period (less a margin for clocks) before the slot they ask for, and at least three
        // quarters of one before, for time to send them all.
        let now = unix_ms();
        let mut slot = slots.at_or_before(now + period - 30);
        if slot - now < period * 3 / 4 {
            slot += period;
        }
        tokio::time::sleep_until(instant_of(slot - period + 30).into()).await;
        let sent_at = Instant::now();
        let cpu_sending = [cpu_of(pid), own_cpu()];
        go.send_replace(Some(Round {
            number: r,
            slot_ms: slot,
        }));
        // Published on time if every request is in and read by then; late (the server holds a
        // wait until the slot plus the late tolerance and a period) if not, but never after half
        // a period, so that the node's watcher still looks often.
        let latest = instant_of(slot + period / 2);
        let in_time = wait_until(latest.saturating_duration_since(Instant::now()), || {
            shared.sent[r].load(Ordering::Relaxed) == n || tasks.iter().any(|t| t.is_finished())
        })
        .await;
        if tasks.iter().any(|t| t.is_finished()) {
            go.send_replace(None);
            panic!(
                "long-polling clients failed in round {r}: {:?}",
                failures(tasks).await
            );
        }
        let written_ms = sent_at.elapsed().as_secs_f64() * 1e3;
        until_idle(pid, Duration::from_millis(50), latest).await;
        let waiting = shared.sent[r].load(Ordering::Relaxed);
        if !in_time || Instant::now() >= latest {
            notes.push(format!(
                "round {r}: {waiting} of {n} requests written in {written_ms:.0} ms; published \
                 before the server had read them all (those read after it are answered from the store)"
            ));
        }
        let cpu_waiting = [cpu_of(pid), own_cpu()];
        rss_waiting = rss_waiting.max(rss(pid).1);
        let p = publisher.publish(slot).await;
        published.push(p);
        let done = wait_until(DELIVERY_TIMEOUT, || {
            shared.answered[r].load(Ordering::Relaxed) == n || tasks.iter().any(|t| t.is_finished())
        })
        .await;
        if !done || tasks.iter().any(|t| t.is_finished()) {
            go.send_replace(None);
            panic!(
                "round {r}: {} of {n} long-polls answered within {DELIVERY_TIMEOUT:?} of the \
                 pulse's publication; failures: {:?}",
                shared.answered[r].load(Ordering::Relaxed),
                failures(tasks).await
            );
        }
        if r > 0 {
            let cpu_done = [cpu_of(pid), own_cpu()];
            for k in 0..2 {
                asked[k] += cpu_waiting[k] - cpu_sending[k];
                answered[k] += cpu_done[k] - cpu_waiting[k];
            }
        }
    }
    let per_round = |d: Duration| d.as_secs_f64() * 1e3 / ctx.pulses as f64;
    notes.push(format!(
        "CPU a round to send and read the requests (before the pulse): server {:.0} ms, bench {:.0} ms",
        per_round(asked[0]),
        per_round(asked[1])
    ));
    let cpu = (per_round(answered[0]), per_round(answered[1]));
    go.send_replace(None);
    let mut latencies = Vec::with_capacity(n * ctx.pulses);
    let mut spread = Spread::new(ctx.pulses);
    let mut wrong = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let answers = t
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("long-poll client {i}: {e}"));
        assert_eq!(answers.len(), rounds, "client {i}: answers");
        for a in answers {
            let p = published[a.round];
            if a.status != 200 || a.index != Some(p.index) {
                wrong.push((i, a.round, a.status, a.index, p.index));
            } else if a.round > 0 {
                spread.add(a.round - 1, ms_between(p.at, a.at), &mut latencies);
            }
        }
    }
    notes.push(spread.note());
    // The kernel updates VmHWM lazily (per-thread counters are folded in now and then): a VmRSS
    // read earlier can be a little above it.
    let rss_peak = rss(pid).0.max(rss_waiting);
    drop(server);
    assert!(
        wrong.is_empty(),
        "long-poll with {n} clients: {} answers were not 200 with the pulse asked for \
         (client, round, status, pulseIndex, expected): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    latencies.sort_by(f64::total_cmp);
    Row {
        kind: "long-poll",
        clients: n,
        latencies,
        connect_s,
        rss_connected: rss_waiting,
        rss_peak,
        server_cpu_ms: cpu.0,
        bench_cpu_ms: cpu.1,
        notes,
    }
}
