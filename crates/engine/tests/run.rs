//! The run loop's skip policy, on a manual clock: every failed attempt is told to the
//! observer, each failed slot once however many retries fail in it, and the loop stops when
//! told. Real SQLite store, software signer.

use lavabeacon_engine::engine::{Engine, EngineConfig, EngineError, ManualClock};
use lavabeacon_engine::run::{run, Observer};
use lavabeacon_engine::source::{Contribution, EntropySource, SourceError};
use lavabeacon_format::builder::ChainParams;
use lavabeacon_signer::software::SoftwareSigner;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PERIOD_MS: u32 = 1_000;
const T0: i64 = 1_790_000_040_000;

/// A source that is never there: every attempt fails for want of entropy.
struct Absent;
impl EntropySource for Absent {
    fn name(&self) -> &str {
        "absent"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        Err(SourceError::Unavailable("not plugged in".into()))
    }
}

/// The slots the loop reported, per attempt and per slot; says when enough attempts failed.
#[derive(Default)]
struct Reports {
    attempts: Mutex<Vec<Option<i64>>>,
    slots: Mutex<Vec<Option<i64>>>,
    enough: tokio::sync::Notify,
}

impl Observer for Reports {
    fn failed(&self, slot_ms: Option<i64>, e: &EngineError) {
        assert_eq!(e.category(), "no entropy");
        let mut a = self.attempts.lock().unwrap();
        a.push(slot_ms);
        if a.len() == 12 {
            self.enough.notify_one();
        }
    }
    fn slot_failed(&self, slot_ms: Option<i64>, _: &EngineError) {
        self.slots.lock().unwrap().push(slot_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_slot_is_told_once_however_many_retries_fail_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = lavabeacon_store::open(&format!("sqlite:{}/beacon.db", dir.path().display()))
        .await
        .unwrap();
    let signer = Arc::new(SoftwareSigner::load_or_create(&dir.path().join("keys")).unwrap());
    let cfg = EngineConfig {
        params: ChainParams::new("https://beacon.example.org/beacon/2.0", 1, PERIOD_MS),
        full_credit_bits: 256,
        source_timeout: Duration::from_secs(1),
        late_tolerance: EngineConfig::default_late_tolerance(PERIOD_MS),
    };
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let engine = Engine::new(store, signer, vec![Box::new(Absent)], cfg, clock, None);
    let reports = Arc::new(Reports::default());
    let r = reports.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        run(
            engine,
            reports.clone(),
            async move { r.enough.notified().await },
        ),
    )
    .await
    .expect("the loop stops when told to");

    let attempts = reports.attempts.lock().unwrap().clone();
    let slots = reports.slots.lock().unwrap().clone();
    assert!(attempts.len() >= 12, "{attempts:?}");
    assert!(attempts.iter().all(Option::is_some), "{attempts:?}");
    let mut once_per_slot = attempts.clone();
    once_per_slot.dedup();
    assert_eq!(slots, once_per_slot);
    assert!(
        slots.len() > 1 && slots.len() < attempts.len(),
        "the backoff retries within a slot and moves on to later ones: {attempts:?}"
    );
}
