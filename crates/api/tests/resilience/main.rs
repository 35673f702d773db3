//! The API under faults, on a real HTTP server on a free port over a real SQLite store (its
//! pool has 4 connections): a database that stops answering, clients that open too many
//! streams, clients that never read, a pulse that does not come, and a shutdown with streams
//! open. The store is wrapped in the store crate's `FaultyStore`, which can make every call
//! hang (as a pool does while the database is down) and counts the range reads open at any
//! moment.
//!
//! One test binary: this file builds the world (a signed chain in a real SQLite store behind a
//! `FaultyStore`, a real server) and the request helpers; the tests are in one module per kind
//! of fault: `store_down`, `streams`, `health`, `shutdown`.

mod health;
mod shutdown;
mod store_down;
mod streams;

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

/// The period of worlds whose newest pulse must stay on time while the test runs.
const HOUR: i64 = 3_600_000;
