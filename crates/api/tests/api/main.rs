//! The API on a real HTTP server on a free port, over a real SQLite store holding a signed
//! chain: 298 pulses in the past, then two whose time has not come. Every route, every kind of
//! bad input, caching, XML (validated against NIST's schema), the bulk route with its
//! continuation, skip paths, NIST's chain between two times, the stream with resumption, and a
//! round trip in which everything served verifies.
//!
//! One test binary: this file builds the world (the chain, the store, the server) and the
//! request helpers; the tests are in one module per kind of route.

mod bulk;
mod http;
mod log;
mod nist;
mod page;
mod pulses;
mod routes;
mod stream;

use lavabeacon_api::{Beacon, BeaconInfo, ROUTES};
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::{parse_certificates, CertificateSet};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::manifest::{combine, Manifest, SourceEntry};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::{Hash512, Pulse};
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::Store;
use std::io::BufRead;
use std::sync::{Arc, OnceLock};

const PERIOD: i64 = 60_000;
const PAST: u64 = 298;

struct World {
    base: String,
    chain: Vec<Pulse>,
    cert_pem: String,
    beacon: Arc<Beacon>,
    store: Arc<dyn Store>,
    rt: tokio::runtime::Handle,
    signer: Arc<SoftwareSigner>,
    builder: std::sync::Mutex<ChainBuilder>,
    _dir: tempfile::TempDir,
}

fn lrv(i: u64) -> Hash512 {
    sha512(&[b"api test", &i.to_be_bytes()])
}

fn manifest(i: u64) -> (Manifest, Hash512) {
    let digest = sha512(&[b"os", &i.to_be_bytes()]);
    let m = Manifest {
        version: 1,
        chain_index: 1,
        pulse_index: i,
        sources: vec![SourceEntry {
            name: "os".into(),
            status: "ok".into(),
            credited_bits: 256,
            digest: Some(digest.to_hex_lower()),
        }],
        external: None,
    };
    (m, combine(&[("os", digest.as_bytes())]))
}

/// The localRandomValue of pulse i: from its manifest for the last ten past pulses.
fn value(i: u64, past: u64) -> Hash512 {
    if (past.saturating_sub(9)..=past).contains(&i) {
        manifest(i).1
    } else {
        lrv(i)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A server on a free port over a fresh SQLite store holding `past` pulses one `period` apart,
/// the last at the latest period boundary, then `future` pulses ten periods ahead.
fn new_world(period: i64, past: u64, future: u64) -> World {
    new_world_with(period, past, future, |_| {}, |_, _| {})
}

/// [`new_world`], with `configure` changing the beacon's settings and `register` given the
/// beacon and its store before the server starts (a log, a witness).
fn new_world_with(
    period: i64,
    past: u64,
    future: u64,
    configure: impl FnOnce(&mut BeaconInfo) + Send + 'static,
    register: impl FnOnce(&Beacon, Arc<dyn Store>) + Send + 'static,
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(SoftwareSigner::load_or_create(&dir.path().join("keys")).unwrap());
    let now = now_ms();
    let last_past = now - now.rem_euclid(period);
    let t0 = last_past - (past as i64 - 1) * period;
    let mut b = ChainBuilder::new_chain(ChainParams::new(
        "http://beacon.test/beacon/2.0",
        1,
        period as u32,
    ));
    let mut chain = Vec::new();
    for i in 1..=past + future {
        let t = if i <= past {
            t0 + (i as i64 - 1) * period
        } else {
            last_past + (i - past + 9) as i64 * period
        };
        let next = NextPulse::new(t, value(i, past), precommitment(&value(i + 1, past)));
        chain.push(b.next(next, signer.as_ref()).unwrap());
    }
    let (tx, rx) = std::sync::mpsc::channel();
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
            let store = lavabeacon_store::open(&format!("sqlite:{}", db.display()))
                .await
                .unwrap();
            store
                .put_certificate(&signer2.certificate().der)
                .await
                .unwrap();
            let bulk = past.saturating_sub(10) as usize;
            store.bulk_load(&chain2[..bulk]).await.unwrap();
            for p in &chain2[bulk..] {
                let m = (p.pulse_index <= past)
                    .then(|| serde_json::to_string(&manifest(p.pulse_index).0).unwrap());
                store.append(p, m.as_deref(), None).await.unwrap();
            }
            let mut info = BeaconInfo::new(period as u32);
            info.test = Some("software signing key".into());
            info.bulk_max_periods = 100;
            info.max_chain_pulses = 250;
            configure(&mut info);
            let beacon = Beacon::new(store.clone(), info);
            register(&beacon, store.clone());
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let server = lavabeacon_api::serve(beacon.clone(), listener, 2).unwrap();
            tx.send((base, beacon, store, tokio::runtime::Handle::current()))
                .unwrap();
            server.await.unwrap();
        });
    });
    let (base, beacon, store, rt) = rx.recv().unwrap();
    World {
        base,
        chain,
        cert_pem: signer.certificate().to_pem(),
        beacon,
        store,
        rt,
        signer,
        builder: std::sync::Mutex::new(b),
        _dir: dir,
    }
}

/// Appends the pulse at `t` to `w`'s store, as another engine would (the watcher finds it),
/// or tells the API as the engine in the same process does.
pub(crate) fn publish(w: &World, i: u64, t: i64, tell: bool) {
    let p = w
        .builder
        .lock()
        .unwrap()
        .next(
            NextPulse::new(t, lrv(i), precommitment(&lrv(i + 1))),
            w.signer.as_ref(),
        )
        .unwrap();
    let store = w.store.clone();
    let p2 = p.clone();
    w.rt.block_on(async move { store.append(&p2, None, None).await.unwrap() });
    if tell {
        w.beacon.published(&p, None, 0);
    }
}

/// One server for every test of this file but the stream's: 298 pulses a minute apart, then
/// two not yet public.
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| new_world(PERIOD, PAST, 2))
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    request_at(&world().base, method, path, headers)
}

/// A request to the server at `base` (a world of a test's own).
fn request_at(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = ureq::request(method, &format!("{base}{path}"));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let r = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let headers = r
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = r.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    Resp {
        status: r.status(),
        headers,
        body: r.into_string().unwrap(),
    }
}

fn get(path: &str) -> Resp {
    request("GET", path, &[])
}

fn pulse_of(r: &Resp) -> Pulse {
    lavabeacon_format::json::parse_pulse(&r.body).unwrap()
}

fn certs() -> CertificateSet {
    let mut set = CertificateSet::new();
    for c in parse_certificates(world().cert_pem.as_bytes()).unwrap() {
        set.add(c);
    }
    set
}
