//! The engine on an injected clock: hours of pulses in milliseconds, a real SQLite store, a
//! signer, real os and synthetic-camera sources and a stuck one. Every chain it makes verifies,
//! every manifest recombines to its pulse's localRandomValue, and no pulse is published before
//! its timestamp.

use lavabeacon_engine::engine::{Clock, Engine, EngineConfig, EngineError, ManualClock};
use lavabeacon_engine::source::os::OsSource;
use lavabeacon_engine::source::synthetic::SyntheticCamera;
use lavabeacon_engine::source::{Contribution, EntropySource, Sampled, SourceError};
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::chain::Facts;
use lavabeacon_format::manifest::check_published;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::Store;
use std::sync::Arc;
use std::time::Duration;

const PERIOD: i64 = 60_000;
const T0: i64 = 1_798_761_600_000 - 30 * PERIOD; // half an hour before 2027

/// A source stuck at one value, caught by the real health tests on its first pulse.
fn stuck() -> Box<dyn EntropySource> {
    Box::new(Sampled::new("stuck", 7.0, 64, 256, |b| {
        b.fill(0x42);
        Ok(())
    }))
}

fn config() -> EngineConfig {
    EngineConfig {
        params: ChainParams::new("https://beacon.example.org/beacon/2.0", 1, PERIOD as u32),
        full_credit_bits: 256,
        source_timeout: Duration::from_secs(5),
        late_tolerance: EngineConfig::default_late_tolerance(PERIOD as u32),
    }
}

fn sources() -> Vec<Box<dyn EntropySource>> {
    vec![
        Box::new(OsSource::new(64)),
        Box::new(SyntheticCamera::new(64, 48, 2)),
        stuck(),
    ]
}

async fn parts(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<dyn Signer>) {
    let store = lavabeacon_store::open(&format!("sqlite:{}/beacon.db", dir.display()))
        .await
        .unwrap();
    let signer: Arc<dyn Signer> =
        Arc::new(SoftwareSigner::load_or_create(&dir.join("keys")).unwrap());
    (store, signer)
}

/// An engine with the test configuration and no leader lock.
async fn start(
    store: &Arc<dyn Store>,
    signer: &Arc<dyn Signer>,
    sources: Vec<Box<dyn EntropySource>>,
    clock: &Arc<ManualClock>,
) -> Engine {
    Engine::start(
        store.clone(),
        signer.clone(),
        sources,
        config(),
        clock.clone(),
        None,
    )
    .await
    .unwrap()
}

async fn whole_chain(store: &dyn Store) -> Vec<Pulse> {
    let last = store.last_in_chain(1).await.unwrap().unwrap().pulse_index;
    let mut v = Vec::new();
    for i in 1..=last {
        v.push(store.by_index(1, i).await.unwrap().unwrap());
    }
    v
}

async fn check(store: &dyn Store, signer: &dyn Signer) -> Vec<Pulse> {
    let chain = whole_chain(store).await;
    let mut certs = CertificateSet::new();
    certs.add(signer.certificate().clone());
    let r = Verifier::new(&certs, Options::default()).verify_pulses(&chain);
    assert!(r.passed(), "{}", r.render_text());
    for p in &chain {
        let json = store
            .manifest(1, p.pulse_index)
            .await
            .unwrap()
            .expect("every pulse has its manifest");
        // The auditors' check: it reads, and recombines to the pulse's localRandomValue.
        let m = check_published(&json, &Facts::of(p, None))
            .unwrap_or_else(|problem| panic!("{}", problem.render()));
        assert_eq!(m.pulse_index, p.pulse_index);
        let stuck = m.sources.iter().find(|s| s.name == "stuck").unwrap();
        assert!(stuck.status.starts_with("unhealthy") && stuck.digest.is_none());
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hours_of_pulses_verify_and_are_never_early() {
    let dir = tempfile::tempdir().unwrap();
    let (store, signer) = parts(dir.path()).await;
    let clock = Arc::new(ManualClock::new(T0 + 1234));
    let mut engine = start(&store, &signer, sources(), &clock).await;
    for _ in 0..120 {
        let p = engine.step().await.unwrap();
        let t = p.pulse.time_ms().unwrap();
        assert_eq!(t % PERIOD, 0);
        assert!(
            p.published_at_ms >= t,
            "published {} ms early",
            t - p.published_at_ms
        );
    }
    let chain = check(store.as_ref(), signer.as_ref()).await;
    assert_eq!(chain.len(), 120);
    assert_eq!(chain[0].status_code, 1);
    assert!(chain[1..].iter().all(|p| p.status_code == 0));
    assert_eq!(
        chain[0].time_ms().unwrap(),
        T0 + PERIOD,
        "the first boundary not in the past"
    );
    assert!(clock.now_ms() >= chain.last().unwrap().time_ms().unwrap());
    // Nothing secret is left but the sealed value for the next pulse.
    assert!(store.pending_secret(1, 120).await.unwrap().is_none());
    assert!(store.pending_secret(1, 121).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_chain_with_a_gap_marked_and_the_commitment_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let (store, signer) = parts(dir.path()).await;
        let mut engine = start(&store, &signer, sources(), &clock).await;
        for _ in 0..5 {
            engine.step().await.unwrap();
        }
    }
    clock.advance(3 * PERIOD + 500); // down for three periods
    let (store, signer) = parts(dir.path()).await;
    let mut engine = start(&store, &signer, sources(), &clock).await;
    let p = engine.step().await.unwrap().pulse;
    assert_eq!((p.pulse_index, p.status_code), (6, 2));
    engine.step().await.unwrap();
    let chain = check(store.as_ref(), signer.as_ref()).await;
    assert_eq!(
        chain.iter().map(|p| p.status_code).collect::<Vec<_>>(),
        vec![1, 0, 0, 0, 0, 2, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_healthy_source_the_slot_is_skipped_and_the_gap_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, signer) = parts(dir.path()).await;
    let clock = Arc::new(ManualClock::new(T0));
    let mut engine = start(&store, &signer, sources(), &clock).await;
    for _ in 0..3 {
        engine.step().await.unwrap();
    }
    drop(engine);
    // Only the stuck source is left: no pulse can be made.
    let only_stuck: Vec<Box<dyn EntropySource>> = vec![stuck()];
    let mut broken = start(&store, &signer, only_stuck, &clock).await;
    assert!(
        matches!(broken.step().await, Err(EngineError::NoEntropy(why)) if why.contains("stuck: unhealthy"))
    );
    drop(broken);
    clock.advance(2 * PERIOD);
    let mut engine = start(&store, &signer, sources(), &clock).await;
    let p = engine.step().await.unwrap().pulse;
    assert_eq!(
        (p.pulse_index, p.status_code),
        (4, 2),
        "the missed slot is a gap"
    );
    check(store.as_ref(), signer.as_ref()).await;
}

/// A source that hangs (a camera whose driver blocks).
struct Hangs;
impl EntropySource for Hangs {
    fn name(&self) -> &str {
        "hangs"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(SourceError::Unavailable("never answered".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_source_is_cut_off_and_the_pulse_is_still_made() {
    let dir = tempfile::tempdir().unwrap();
    let (store, signer) = parts(dir.path()).await;
    let clock = Arc::new(ManualClock::new(T0));
    let mut cfg = config();
    cfg.source_timeout = Duration::from_millis(200);
    let srcs: Vec<Box<dyn EntropySource>> = vec![Box::new(OsSource::new(64)), Box::new(Hangs)];
    let mut engine = Engine::start(store.clone(), signer, srcs, cfg, clock, None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let p = engine.step().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let m = p.manifest.unwrap();
    let hangs = m.sources.iter().find(|s| s.name == "hangs").unwrap();
    assert_eq!(hangs.status, "timeout");
    assert_eq!(m.recombine().unwrap(), p.pulse.local_random_value);
}
