//! The API on a real HTTP server on a free port, over a real SQLite store holding a signed
//! chain: 298 pulses in the past, then two whose time has not come. Every route, every kind of
//! bad input, caching, XML, the bulk route with its continuation, skip paths, the stream with
//! resumption, and a round trip in which everything served verifies.

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
            let beacon = Beacon::new(store.clone(), info);
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
    let mut req = ureq::request(method, &format!("{}{path}", world().base));
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

#[test]
fn every_route_in_the_openapi_description_is_served_and_nothing_else_is() {
    let w = world();
    let t = w.chain[10].time_ms().unwrap();
    let id = w.chain[0].certificate_id.to_hex_lower();
    let doc = get("/openapi.json").json();
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(paths.len(), ROUTES.len());
    for r in ROUTES {
        assert!(
            paths.contains(&r.path),
            "{} missing from /openapi.json",
            r.path
        );
        if r.path.ends_with("/stream") {
            continue; // never ends; tested below
        }
        let path = r
            .path
            .replace("{timestamp}", &t.to_string())
            .replace("{t}", &t.to_string())
            .replace("{t1}", &w.chain[1].time_ms().unwrap().to_string())
            .replace("{t2}", &t.to_string())
            .replace("{c}", "1")
            .replace("{p1}", "2")
            .replace("{p2}", "200")
            .replace("{p}", &(PAST - 1).to_string())
            .replace("{id}", &id);
        let path = if r.path.ends_with("/pulses") {
            format!("{path}?from={t}")
        } else {
            path
        };
        let resp = get(&path);
        assert!(
            r.statuses.contains(&resp.status),
            "{path}: {} not among {:?}",
            resp.status,
            r.statuses
        );
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    }
}

#[test]
fn bad_input_gets_a_clear_json_error_and_never_a_500() {
    let w = world();
    let id = w.chain[0].certificate_id.to_hex_lower();
    let far_future = "99999999999"; // seconds: the year 5138
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/beacon/yesterday", 400, "RFC 3339"),
        ("GET", "/beacon/-1", 400, "negative"),
        (
            "GET",
            "/beacon/99999999999999999999999",
            400,
            "out of range",
        ),
        ("GET", "/beacon/1e12", 400, "not a time"),
        ("GET", "/beacon/2026-13-45T99:00:00Z", 400, "not a time"),
        ("GET", "/beacon/999999999999999", 400, "outside 1970..9999"),
        (
            "GET",
            &format!("/beacon/{far_future}"),
            425,
            "has been published yet",
        ),
        ("GET", "/beacon/2.0/pulse/time/abc", 400, "milliseconds"),
        ("GET", "/beacon/2.0/pulse/time/-5", 400, "milliseconds"),
        (
            "GET",
            "/beacon/2.0/pulse/time/253402300799000",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/pulse/time/next/253402300799000",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/pulse/time/previous/0",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/7/pulse/1",
            404,
            "no published pulse 1 in chain 7",
        ),
        ("GET", "/beacon/2.0/chain/7/pulse/last", 404, "chain 7"),
        (
            "GET",
            "/beacon/2.0/chain/0/pulse/1",
            400,
            "whole number from 1",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/18446744073709551616",
            400,
            "not an index",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/9223372036854775807",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/299",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/299/sources",
            404,
            "no published pulse",
        ),
        (
            "GET",
            "/beacon/2.0/chain/1/pulse/2/sources",
            404,
            "no source manifest",
        ),
        ("GET", "/beacon/2.0/certificate/xyz", 400, "128 hex digits"),
        (
            "GET",
            &format!("/beacon/2.0/certificate/{}", "0".repeat(128)),
            404,
            "no certificate",
        ),
        (
            "GET",
            &format!("/beacon/2.0/certificate/{id}00"),
            400,
            "128 hex digits",
        ),
        ("GET", "/beacon/2.0/skipList/1/5/2", 400, "forward"),
        (
            "GET",
            "/beacon/2.0/skipList/1/1/299",
            404,
            "no published pulse 299",
        ),
        ("GET", "/beacon/2.0/pulses", 400, "from is required"),
        (
            "GET",
            "/beacon/2.0/pulses?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "before",
        ),
        ("GET", "/beacon/2.0/pulses?from=later", 400, "not a time"),
        ("GET", "/beacon/2.0/stream", 0, ""),
        ("GET", "/no/such/thing", 404, "no such path"),
        ("GET", "/beacon/2.0/chain/1", 404, "no such path"),
        ("POST", "/beacon/last", 405, "read with GET"),
        (
            "DELETE",
            "/beacon/2.0/chain/1/pulse/1",
            405,
            "read with GET",
        ),
        ("PUT", "/beacon/2.0/certificate/x", 405, "read with GET"),
    ];
    for (method, path, status, needle) in cases {
        if *status == 0 {
            continue;
        }
        let r = request(method, path, &[]);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["status"], *status, "{path}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{method} {path}: {msg:?} lacks {needle:?}"
        );
    }
    let r = request("GET", "/beacon/2.0/stream", &[("Last-Event-ID", "garbage")]);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request("GET", "/beacon/2.0/stream", &[("Last-Event-ID", "1-299")]);
    assert_eq!(
        r.status, 404,
        "a future pulse is no place to resume from: {}",
        r.body
    );
    let r = get(&format!("/beacon/{far_future}"));
    assert!(r.header("Retry-After").unwrap().parse::<u64>().unwrap() > 1_000_000);
}

#[test]
fn a_pulse_whose_time_has_not_come_is_never_served() {
    let w = world();
    let future = &w.chain[PAST as usize];
    let t = future.time_ms().unwrap();
    let last = get("/beacon/last");
    assert_eq!(
        pulse_of(&last).pulse_index,
        PAST,
        "the newest public pulse, not the stored future one"
    );
    let r = get(&format!("/beacon/{t}"));
    assert_eq!(r.status, 425);
    let wait: i64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        (wait - (t - now_ms()) / 1000).abs() <= 2,
        "Retry-After {wait} s"
    );
    assert_eq!(get(&format!("/beacon/2.0/pulse/time/{t}")).status, 404);
    assert_eq!(
        get(&format!("/beacon/2.0/pulse/time/next/{}", t - 1)).status,
        404
    );
    let prev = get(&format!("/beacon/2.0/pulse/time/previous/{}", t + PERIOD));
    assert_eq!(pulse_of(&prev).pulse_index, PAST);
    let bulk = get(&format!(
        "/beacon/2.0/pulses?from={}&to={}",
        t - 3 * PERIOD,
        t + 5 * PERIOD
    ));
    assert!(bulk
        .body
        .lines()
        .all(|l| !l.contains(&future.output_value.to_hex_upper())));
}

#[test]
fn pulses_are_cacheable_with_etags_and_304s_and_the_newest_until_the_next_is_due() {
    let w = world();
    let p = &w.chain[41];
    let r = get("/beacon/2.0/chain/1/pulse/42");
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = r.header("ETag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", p.output_value.to_hex_lower()));
    assert_eq!(r.header("Vary"), Some("Accept"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r.header("Lavabeacon-Test").unwrap().contains("TEST BEACON"));
    let again = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/42",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/43",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(other.status, 200);

    let last = get("/beacon/last");
    let cc = last.header("Cache-Control").unwrap();
    let max_age: i64 = cc
        .strip_prefix("public, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    let due = w.chain[PAST as usize - 1].time_ms().unwrap() + PERIOD;
    assert!(max_age <= (due - now_ms()) / 1000 + 1, "{cc}");
    let r = get(&format!(
        "/beacon/2.0/certificate/{}",
        p.certificate_id.to_hex_lower()
    ));
    assert_eq!(
        r.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[test]
fn xml_is_served_when_asked_for_with_the_same_values() {
    let w = world();
    let p = &w.chain[99];
    let r = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/100",
        &[("Accept", "application/xml")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/xml"));
    assert!(r
        .body
        .contains("<pulse xmlns=\"http://beacon.nist.gov/beacon/2.0/\">"));
    for (name, value) in [
        ("outputValue", p.output_value.to_hex_upper()),
        ("signatureValue", hex::encode_upper(&p.signature_value)),
        ("timeStamp", p.time_stamp.clone()),
        ("pulseIndex", "100".into()),
    ] {
        assert!(
            r.body.contains(&format!("<{name}>{value}</{name}>")),
            "{name}"
        );
    }
    assert!(r.body.contains(&format!(
        "type=\"previous\">{}</listValue>",
        w.chain[98].output_value.to_hex_upper()
    )));
    assert_ne!(
        r.header("ETag"),
        get("/beacon/2.0/chain/1/pulse/100").header("ETag"),
        "each representation has its own ETag"
    );
    let json = request(
        "GET",
        "/beacon/2.0/chain/1/pulse/100",
        &[("Accept", "application/json, application/xml")],
    );
    assert_eq!(pulse_of(&json), *p);
}

#[test]
fn the_bulk_route_streams_the_chain_in_windows_and_everything_served_verifies() {
    let w = world();
    let mut next = Some(format!("/beacon/2.0/pulses?from=0&to={}", now_ms()));
    let mut pulses = Vec::new();
    let mut answers = 0;
    while let Some(path) = next.take() {
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("Content-Type"), Some("application/x-ndjson"));
        answers += 1;
        for line in r.body.lines() {
            pulses.push(lavabeacon_format::json::parse_pulse(line).unwrap());
        }
        next = r.header("Link").map(|l| {
            let url = l.strip_prefix('<').unwrap().split('>').next().unwrap();
            assert!(l.ends_with("rel=\"next\""));
            url.to_string()
        });
        assert!(answers < 10, "the continuation must end");
    }
    assert_eq!(
        answers, 3,
        "298 pulses, 100 periods per answer, starting at the first pulse"
    );
    assert_eq!(pulses, w.chain[..PAST as usize]);
    let report = Verifier::new(&certs(), Options::default()).verify_pulses(&pulses);
    assert!(report.passed(), "{}", report.render_text());
    assert_eq!(report.links_checked, PAST - 1);

    // Manifests recombine to the served localRandomValue.
    for i in PAST - 9..=PAST {
        let m: Manifest =
            serde_json::from_str(&get(&format!("/beacon/2.0/chain/1/pulse/{i}/sources")).body)
                .unwrap();
        assert_eq!(
            m.recombine().unwrap(),
            pulses[i as usize - 1].local_random_value
        );
    }
}

#[test]
fn skip_paths_by_index_and_by_time_verify_as_skip_paths() {
    let w = world();
    for path in [
        "/beacon/2.0/skipList/1/1/290".to_string(),
        format!(
            "/beacon/2.0/skipList/{}/{}",
            w.chain[0].time_ms().unwrap(),
            w.chain[289].time_ms().unwrap()
        ),
    ] {
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let items: Vec<serde_json::Value> = serde_json::from_str(&r.body).unwrap();
        let hops: Vec<Pulse> = items
            .iter()
            .map(|v| lavabeacon_format::json::parse_pulse(&v.to_string()).unwrap())
            .collect();
        assert_eq!(hops.first().unwrap().pulse_index, 1);
        assert_eq!(hops.last().unwrap().pulse_index, 290);
        assert!(hops.len() < 290, "a skip path is shorter than the chain");
        let r = Verifier::new(
            &certs(),
            Options {
                skip_path: true,
                ..Options::default()
            },
        )
        .verify_pulses(&hops);
        assert!(r.passed(), "{}", r.render_text());
    }
}

/// Reads SSE events (their ids) from `path` until `n` have come.
fn events(base: &str, last_id: Option<&str>, n: usize) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut req = ureq::get(&format!("{base}/beacon/2.0/stream"));
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", id);
    }
    let resp = req.call().unwrap();
    assert_eq!(resp.header("Content-Type"), Some("text/event-stream"));
    std::thread::spawn(move || {
        let mut seen = 0;
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(id) = line.strip_prefix("id: ") {
                if tx.send(id.to_string()).is_err() {
                    return;
                }
                seen += 1;
                if seen == n {
                    return;
                }
            }
        }
    });
    rx
}

#[test]
fn the_stream_delivers_new_pulses_and_resumes_after_the_last_event_id() {
    // A world of its own, one pulse a second, to which this test adds pulses.
    let w = new_world(1000, 20, 0);
    let wait = std::time::Duration::from_secs(10);
    let resumed = events(&w.base, Some("1-17"), 3);
    for i in 18..=20 {
        assert_eq!(resumed.recv_timeout(wait).unwrap(), format!("1-{i}"));
    }
    let live = events(&w.base, None, 2);
    // The watcher, as a read-only API node runs it, finds pulses written by someone else.
    w.rt.spawn(
        w.beacon
            .clone()
            .watch(std::time::Duration::from_millis(100)),
    );
    for (i, told) in [(21u64, true), (22, false)] {
        // The next whole second, once it has come.
        let t = now_ms() - now_ms().rem_euclid(1000) + 1000;
        std::thread::sleep(std::time::Duration::from_millis(
            (t - now_ms()).max(0) as u64 + 5,
        ));
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
        if told {
            // As the engine in the same process does.
            w.beacon.published(&p, None, 0);
        }
        assert_eq!(
            live.recv_timeout(wait).unwrap(),
            format!("1-{i}"),
            "told: {told}"
        );
    }
}
