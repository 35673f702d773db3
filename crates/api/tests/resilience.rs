//! The API under faults, on a real HTTP server on a free port over a real SQLite store (its
//! pool has 4 connections): a database that stops answering, clients that open too many
//! streams, clients that never read, a pulse that does not come, and a shutdown with streams
//! open. The store is wrapped in the store crate's `FaultyStore`, which can make every call
//! hang (as a pool does while the database is down) and counts the range reads open at any
//! moment.

use lavabeacon_api::{Beacon, BeaconInfo, ServerHandle};
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::{Hash512, Pulse};
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::fake::FaultyStore;
use lavabeacon_store::{Store, StoreError};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The fault-injecting store: the store crate's `FaultyStore` around a real store. `go_down`
// makes every call hang for 10 s and then fail, as calls do while the database is down (the
// pool's acquire timeout); it counts range reads open now and range reads made.

type Faulty = FaultyStore;

/// Every call hangs for 10 s, then fails.
fn go_down(store: &Faulty) {
    store.go_down(
        Duration::from_secs(10),
        StoreError::unavailable("sqlite", "injected: connection refused"),
    );
}

// ---------------------------------------------------------------------------------------------
// A beacon on a real server.

struct World {
    addr: SocketAddr,
    base: String,
    chain: Vec<Pulse>,
    beacon: Arc<Beacon>,
    store: Arc<Faulty>,
    handle: ServerHandle,
    rt: tokio::runtime::Handle,
    /// Says when the server has stopped.
    stopped: std::sync::mpsc::Receiver<()>,
    signer: Arc<SoftwareSigner>,
    builder: std::sync::Mutex<ChainBuilder>,
    _dir: tempfile::TempDir,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn lrv(i: u64) -> Hash512 {
    sha512(&[b"resilience test", &i.to_be_bytes()])
}

/// A server on a free port over a fresh SQLite store holding `past` pulses one `period`
/// apart, the last at the latest period boundary; `configure` adjusts the API's settings.
fn new_world(period: i64, past: u64, configure: impl FnOnce(&mut BeaconInfo)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(SoftwareSigner::load_or_create(&dir.path().join("keys")).unwrap());
    let now = now_ms();
    let last = now - now.rem_euclid(period);
    let t0 = last - (past as i64 - 1) * period;
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "http://beacon.test/beacon/2.0",
        1,
        period as u32,
    ));
    let chain: Vec<Pulse> = (1..=past)
        .map(|i| {
            let t = t0 + (i as i64 - 1) * period;
            let next = NextPulse::new(t, lrv(i), precommitment(&lrv(i + 1)));
            b.next(next, signer.as_ref()).unwrap()
        })
        .collect();
    let mut info = BeaconInfo::new(period as u32);
    configure(&mut info);
    let (tx, rx) = std::sync::mpsc::channel();
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    let db = dir.path().join("api.db");
    let chain2 = chain.clone();
    let signer2 = signer.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let inner = lavabeacon_store::open(&format!("sqlite:{}", db.display()))
                .await
                .unwrap();
            inner
                .put_certificate(&signer2.certificate().der)
                .await
                .unwrap();
            inner.bulk_load(&chain2).await.unwrap();
            let store = Arc::new(FaultyStore::new(inner));
            let beacon = Beacon::new(store.clone(), info);
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = lavabeacon_api::serve(beacon.clone(), listener, 2).unwrap();
            tx.send((
                addr,
                beacon,
                store,
                server.handle(),
                tokio::runtime::Handle::current(),
            ))
            .unwrap();
            server.await.unwrap();
            let _ = stopped_tx.send(());
        });
    });
    let (addr, beacon, store, handle, rt) = rx.recv().unwrap();
    World {
        addr,
        base: format!("http://{addr}"),
        chain,
        beacon,
        store,
        handle,
        rt,
        stopped,
        signer,
        builder: std::sync::Mutex::new(b),
        _dir: dir,
    }
}

impl World {
    /// Appends the next pulse, at `t`, as an engine elsewhere would (the API is not told).
    fn append_at(&self, t: i64) -> Pulse {
        let i = self.chain.len() as u64 + 1;
        let p = self
            .builder
            .lock()
            .unwrap()
            .next(
                NextPulse::new(t, lrv(i), precommitment(&lrv(i + 1))),
                self.signer.as_ref(),
            )
            .unwrap();
        let store = self.store.clone();
        let p2 = p.clone();
        self.rt
            .block_on(async move { store.append(&p2, None, None).await.unwrap() });
        p
    }
}

struct Resp {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let mut req = agent.get(&format!("{base}{path}"));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let r = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    Resp {
        status: r.status(),
        retry_after: r.header("Retry-After").map(str::to_string),
        body: r.into_string().unwrap(),
    }
}

fn get(base: &str, path: &str) -> Resp {
    get_with(base, path, &[])
}

/// A raw HTTP/1.1 GET of `path` from the local address `from`; with `rcvbuf`, a receive
/// buffer that small (so that a client that never reads fills its socket quickly).
fn connect_raw(
    from: Ipv4Addr,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    rcvbuf: Option<usize>,
) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n).unwrap();
    }
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&to.into()).unwrap();
    let mut s: TcpStream = s.into();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s
}

/// Reads the status line and headers of a raw response: (status, the head).
fn read_head(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("reading a response head: {other:?} after {head:?}"),
        }
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// An SSE client from `from` that reads its response head and keeps the connection.
fn sse_client(w: &World, from: Ipv4Addr) -> (u16, String, TcpStream) {
    let mut s = connect_raw(from, w.addr, "/beacon/2.0/stream", &[], None);
    let (status, head) = read_head(&mut s);
    (status, head, s)
}

/// Waits until `f` holds, checking every 20 ms, at most `limit`.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// The period of worlds whose newest pulse must stay on time while the test runs.
const HOUR: i64 = 3_600_000;

#[test]
fn while_the_store_hangs_every_request_answers_503_within_about_a_second() {
    let w = new_world(HOUR, 60, |_| {});
    let t = w.chain[9].time_ms().unwrap();
    let id = w.chain[0].certificate_id.to_hex_lower();
    assert_eq!(get(&w.base, "/beacon/last").status, 200);
    go_down(&w.store);

    // /health asks the store itself when nobody else has lately; that lookup is bounded too.
    std::thread::sleep(Duration::from_millis(600));
    let start = Instant::now();
    let h = get(&w.base, "/health");
    let took = start.elapsed();
    assert_eq!(h.status, 503, "{}", h.body);
    assert!(took < Duration::from_millis(1600), "/health took {took:?}");
    let j = h.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["database"], "unavailable");
    assert_eq!(j["lastError"], "database unavailable");
    assert!(!h.body.contains("injected"), "no internal text: {}", h.body);

    let paths = [
        "/beacon/2.0/chain/1/pulse/5".to_string(),
        "/beacon/2.0/chain/1/pulse/first".into(),
        "/beacon/2.0/chain/1/pulse/last".into(),
        "/beacon/2.0/chain/1/pulse/5/sources".into(),
        format!("/beacon/{t}"),
        format!("/beacon/2.0/pulse/time/{t}"),
        format!("/beacon/2.0/pulse/time/next/{t}"),
        format!("/beacon/2.0/pulse/time/previous/{t}"),
        format!("/beacon/2.0/pulses?from={t}"),
        "/beacon/2.0/chain/1/sources?from=1&to=9".into(),
        "/beacon/2.0/skipList/1/1/50".into(),
        format!("/beacon/2.0/certificate/{id}"),
        "/health".into(),
    ];
    let base = w.base.clone();
    let mut checks: Vec<std::thread::JoinHandle<(String, Resp, Duration)>> = paths
        .iter()
        .map(|p| {
            let (base, p) = (base.clone(), p.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = get(&base, &p);
                (p, r, start.elapsed())
            })
        })
        .collect();
    checks.push(std::thread::spawn(move || {
        let start = Instant::now();
        let r = get_with(&base, "/beacon/2.0/stream", &[("Last-Event-ID", "1-3")]);
        (
            "/beacon/2.0/stream (Last-Event-ID 1-3)".into(),
            r,
            start.elapsed(),
        )
    }));
    for c in checks {
        let (path, r, took) = c.join().unwrap();
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert!(took < Duration::from_millis(1600), "{path} took {took:?}");
        if path != "/health" {
            assert_eq!(r.json()["error"]["status"], 503, "{path}");
            assert!(!r.body.contains("injected"), "{path}: {}", r.body);
        }
    }
    // The newest pulse is in memory and not overdue: still served.
    let start = Instant::now();
    assert_eq!(get(&w.base, "/beacon/last").status, 200);
    assert!(start.elapsed() < Duration::from_millis(500));

    // Back again: answers at once, and /health says so within a probe.
    w.store.come_back();
    assert_eq!(get(&w.base, "/beacon/2.0/chain/1/pulse/5").status, 200);
    assert!(
        wait_until(Duration::from_secs(3), || get(&w.base, "/health").status
            == 200),
        "{}",
        get(&w.base, "/health").body
    );
}

#[test]
fn a_client_may_hold_only_so_many_streams_and_then_gets_429_with_retry_after() {
    let w = new_world(HOUR, 30, |i| {
        i.max_streams_per_client = 3;
        i.max_streams = 5;
    });
    let a = Ipv4Addr::new(127, 0, 0, 1);
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, head, s) = sse_client(&w, a);
        assert_eq!(status, 200, "{head}");
        held.push(s);
    }
    // A fourth stream from the same address, SSE or bulk, is refused.
    let r = get(&w.base, "/beacon/2.0/stream");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("10"));
    assert_eq!(r.json()["error"]["status"], 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per client"));
    let t = w.chain[0].time_ms().unwrap();
    assert_eq!(
        get(&w.base, &format!("/beacon/2.0/pulses?from={t}")).status,
        429
    );
    assert_eq!(
        get(&w.base, "/beacon/2.0/chain/1/sources").status,
        429,
        "the bulk routes count too"
    );
    // Plain requests are not streams.
    assert_eq!(get(&w.base, "/beacon/2.0/chain/1/pulse/3").status, 200);

    // Another address has its own share, up to the server's total.
    let b = Ipv4Addr::new(127, 0, 0, 2);
    for _ in 0..2 {
        let (status, head, s) = sse_client(&w, b);
        assert_eq!(status, 200, "{head}");
        held.push(s);
    }
    let (status, head, _) = sse_client(&w, Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(status, 429, "the total of 5 is reached: {head}");
    assert!(head.contains("retry-after: 10") || head.contains("Retry-After: 10"));
    assert!(get(&w.base, "/metrics")
        .body
        .contains("lavabeacon_open_streams 5"));

    // A client that leaves frees its place.
    drop(held.remove(0));
    assert!(
        wait_until(Duration::from_secs(3), || {
            let (status, _, s) = sse_client(&w, a);
            if status == 200 {
                held.push(s);
            }
            status == 200
        }),
        "a closed stream's place was not freed"
    );
}

#[test]
fn health_turns_degraded_once_the_expected_pulse_is_overdue_by_the_late_tolerance() {
    const PERIOD: i64 = 4_000;
    // In the first half of a period, so that the next boundary is at least 2 s away.
    let into = now_ms().rem_euclid(PERIOD);
    if into > PERIOD / 2 - 300 {
        std::thread::sleep(Duration::from_millis((PERIOD - into + 50) as u64));
    }
    // No engine: a read-only API node. The tolerance is the default, a tenth of the period.
    let w = new_world(PERIOD, 20, |_| {});
    let tolerance = i64::from(w.beacon.info().late_tolerance_ms);
    assert_eq!(tolerance, 400);
    let next = w.chain.last().unwrap().time_ms().unwrap() + PERIOD;
    let sleep_until = |t: i64| {
        let d = t - now_ms();
        assert!(d > 0, "the test fell behind its schedule by {} ms", -d);
        std::thread::sleep(Duration::from_millis(d as u64));
    };

    let h = get(&w.base, "/health");
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json()["lateToleranceMs"], 400);
    // The next pulse is due but within the tolerance: still on time.
    sleep_until(next + tolerance / 2);
    let h = get(&w.base, "/health");
    assert_eq!(h.status, 200, "within the tolerance: {}", h.body);
    // Past the tolerance: degraded at once, not a full period later.
    sleep_until(next + tolerance + 150);
    let h = get(&w.base, "/health");
    assert_eq!(h.status, 503, "overdue: {}", h.body);
    let j = h.json();
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["lastError"], "late");
    assert_eq!(j["database"], "ok");
    assert_eq!(j["behindMs"], PERIOD);

    // The pulse comes (written by an engine elsewhere): ok again.
    w.append_at(next);
    assert!(
        wait_until(Duration::from_secs(1), || get(&w.base, "/health").status
            == 200),
        "{}",
        get(&w.base, "/health").body
    );
}

#[test]
fn health_shows_public_categories_and_only_a_signer_failure_marks_the_hsm_failing() {
    let w = new_world(HOUR, 10, |_| {});
    let newest = w.chain.last().unwrap().clone();
    let health = || {
        let r = get(&w.base, "/health");
        (r.status, r.json())
    };
    let (status, j) = health();
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["hsm"], "unknown", "no engine has said anything");
    assert!(j["lastError"].is_null());

    w.beacon.published(&newest, None, 1_000);
    let (status, j) = health();
    assert_eq!((status, &j["hsm"]), (200, &"ok".into()));

    // A skip for any other cause names its category and leaves the HSM as it was.
    for category in ["database unavailable", "disk full", "no entropy", "late"] {
        w.beacon.skipped(category, false);
        let (_, j) = health();
        assert_eq!(j["lastError"], category);
        assert_eq!(j["hsm"], "ok", "{category} is not the HSM's fault");
    }
    w.beacon.skipped("hsm unavailable", true);
    let (status, j) = health();
    assert_eq!(status, 503);
    assert_eq!(j["status"], "degraded");
    assert_eq!(j["hsm"], "failing");
    assert_eq!(j["lastError"], "hsm unavailable");

    w.beacon.published(&newest, None, 1_000);
    let (status, j) = health();
    assert_eq!(status, 200, "{j}");
    assert!(j["lastError"].is_null());
    assert_eq!(j["hsm"], "ok");
}

#[test]
fn shutdown_ends_streams_and_stops_the_server_within_five_seconds() {
    let w = new_world(HOUR, 4_000, |_| {});
    let lo = Ipv4Addr::LOCALHOST;
    // One that reads, and says when its stream ends.
    let (status, _, mut reading) = sse_client(&w, lo);
    assert_eq!(status, 200);
    let (ended_tx, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        reading
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while matches!(reading.read(&mut buf), Ok(n) if n > 0) {}
        let _ = ended_tx.send(Instant::now());
    });
    // One that asked for the whole chain and never reads a byte.
    let idle = connect_raw(
        lo,
        w.addr,
        "/beacon/2.0/stream",
        &[("Last-Event-ID", "1-1")],
        Some(4096),
    );
    // One already gone.
    let (status, _, closed) = sse_client(&w, lo);
    assert_eq!(status, 200);
    drop(closed);
    // The idle one's catch-up is under way and stuck.
    std::thread::sleep(Duration::from_millis(800));

    let start = Instant::now();
    w.beacon.begin_shutdown();
    let handle = w.handle.clone();
    w.rt.spawn(async move { handle.stop(true).await });
    let ended = ended.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        ended - start < Duration::from_millis(1500),
        "the reading client's stream ended {:?} after begin_shutdown",
        ended - start
    );
    w.stopped
        .recv_timeout(Duration::from_secs(5))
        .expect("the server did not stop within 5 s");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    drop(idle);
}

/// `n` SSE clients, each from an address of its own, that resume from the first pulse and
/// never read.
fn idle_clients(w: &World, n: u8) -> Vec<TcpStream> {
    (0..n)
        .map(|k| {
            connect_raw(
                Ipv4Addr::new(127, 0, 1, 10 + k),
                w.addr,
                "/beacon/2.0/stream",
                &[("Last-Event-ID", "1-1")],
                Some(4096),
            )
        })
        .collect()
}

#[test]
fn idle_sse_clients_resuming_from_the_first_pulse_hold_no_connection_and_block_nothing() {
    const PAST: u64 = 4_000;
    let w = new_world(HOUR, PAST, |_| {});
    for n in [4u8, 64] {
        let idle = idle_clients(&w, n);
        // Their catch-ups fill what the sockets hold, then wait on the clients. A page being
        // read is open for a moment (64 of them queue for the pool's 4 connections); a read
        // kept open while its client is waited on never closes.
        let open = || w.store.open_ranges();
        let made = || w.store.ranges_made();
        let settled = wait_until(Duration::from_secs(10), || {
            let before = made();
            std::thread::sleep(Duration::from_millis(300));
            before == made() && before > 0 && open() == 0
        });
        assert!(
            settled,
            "{n} idle clients keep store reads (and their connections) open: {} open, {} made",
            open(),
            made()
        );
        // Pages are 256 pulses: a catch-up that went through would have read 16 each.
        assert!(
            made() < 16 * n as usize,
            "the idle clients are not stuck ({} range reads), so this tests nothing",
            made()
        );

        // Everything else is answered at once, bulk reads and other streams included.
        let base = w.base.clone();
        let t = w.chain[100].time_ms().unwrap();
        let checks: Vec<_> = [
            "/beacon/2.0/chain/1/pulse/7".to_string(),
            "/beacon/last".into(),
            "/health".into(),
            format!("/beacon/2.0/pulses?from={t}&to={}", t + 99 * HOUR),
            "/beacon/2.0/skipList/1/1/3999".into(),
        ]
        .into_iter()
        .map(|p| {
            let base = base.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = get(&base, &p);
                (p, r, start.elapsed())
            })
        })
        .collect();
        for c in checks {
            let (path, r, took) = c.join().unwrap();
            assert_eq!(r.status, 200, "{path} with {n} idle clients: {}", r.body);
            assert!(
                took < Duration::from_millis(2000),
                "{path} took {took:?} with {n} idle clients"
            );
            if path.contains("pulses?") {
                assert_eq!(r.body.lines().count(), 100);
            }
        }
        // A client that reads gets its catch-up.
        let start = Instant::now();
        let mut s = connect_raw(
            Ipv4Addr::LOCALHOST,
            w.addr,
            "/beacon/2.0/stream",
            &[("Last-Event-ID", &format!("1-{}", PAST - 300))],
            None,
        );
        let (status, _) = read_head(&mut s);
        assert_eq!(status, 200);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let want = format!("id: 1-{PAST}\n");
        while !String::from_utf8_lossy(&got).contains(&want) {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "the stream ended early");
            got.extend_from_slice(&buf[..k]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a 300-pulse catch-up took {:?} with {n} idle clients",
            start.elapsed()
        );
        drop(idle);
        // Their places are freed (the server notices at its next write to them).
        w.store.reset_ranges_made();
    }
}
