//! The engine survives every store fault without a restart: the store crate's fault injector
//! (`FaultyStore`) around a real SQLite store fails chosen calls (before or after the database commits), and after each
//! fault the engine publishes again, the chain verifies, a kept commitment stays kept (status
//! 2, never 3) and no pulse is published later than the tolerance. The same paths on a real
//! PostgreSQL server that is stopped, and on a real full disk, are in the binary's
//! `tests/faults/`.

use lavabeacon_engine::engine::{Engine, EngineConfig, EngineError, ManualClock};
use lavabeacon_engine::source::os::OsSource;
use lavabeacon_engine::source::{Contribution, EntropySource, SourceError};
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::fake::{Call, FaultyStore};
use lavabeacon_store::{Lookup, Store, StoreError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PERIOD: i64 = 60_000;
const T0: i64 = 1_798_761_600_000;

fn down() -> StoreError {
    StoreError::unavailable("sqlite", "injected: the database is down")
}

/// What the faults of `drop_pending_secrets` say.
fn disk_full() -> StoreError {
    StoreError::database("sqlite", "injected: database or disk is full")
}

/// The head reads the engine reloads from.
const HEAD_READ: Call = Call::Find(Lookup::LastInChain(1));

fn config() -> EngineConfig {
    EngineConfig {
        params: ChainParams::new("https://beacon.example.org/beacon/2.0", 1, PERIOD as u32),
        full_credit_bits: 256,
        source_timeout: Duration::from_secs(5),
        late_tolerance: EngineConfig::default_late_tolerance(PERIOD as u32),
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    real: Arc<dyn Store>,
    faulty: Arc<FaultyStore>,
    signer: Arc<dyn Signer>,
    clock: Arc<ManualClock>,
}

async fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let real = lavabeacon_store::open(&format!("sqlite:{}/beacon.db", dir.path().display()))
        .await
        .unwrap();
    let signer: Arc<dyn Signer> =
        Arc::new(SoftwareSigner::load_or_create(&dir.path().join("keys")).unwrap());
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let faulty = Arc::new(FaultyStore::new(real.clone()));
    Bench {
        _dir: dir,
        real,
        faulty,
        signer,
        clock,
    }
}

impl Bench {
    fn engine(&self, sources: Vec<Box<dyn EntropySource>>) -> Engine {
        Engine::new(
            self.faulty.clone(),
            self.signer.clone(),
            sources,
            config(),
            self.clock.clone(),
            None,
        )
    }

    /// The whole chain as stored, verified; with the status codes.
    async fn verified(&self) -> Vec<Pulse> {
        let last = self
            .real
            .last_in_chain(1)
            .await
            .unwrap()
            .unwrap()
            .pulse_index;
        let mut chain = Vec::new();
        for i in 1..=last {
            chain.push(self.real.by_index(1, i).await.unwrap().unwrap());
        }
        let mut certs = CertificateSet::new();
        certs.add(self.signer.certificate().clone());
        let r = Verifier::new(&certs, Options::default()).verify_pulses(&chain);
        assert!(r.passed(), "{}", r.render_text());
        chain
    }
}

fn os() -> Vec<Box<dyn EntropySource>> {
    vec![Box::new(OsSource::new(64))]
}

fn statuses(chain: &[Pulse]) -> Vec<u32> {
    chain.iter().map(|p| p.status_code).collect()
}

/// After a failed attempt the run loop waits a little; so does this test.
fn backoff(b: &Bench) {
    b.clock.advance(1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_costs_one_slot_and_keeps_the_commitment() {
    let b = bench().await;
    let mut e = b.engine(os());
    for _ in 0..3 {
        e.step().await.unwrap();
    }
    b.faulty.fail_next(Call::Append, 1, down());
    let err = e.step().await.unwrap_err();
    assert_eq!(err.category(), "database unavailable", "{err}");
    assert!(!err.signer_failed(), "a store failure is not the HSM's");
    backoff(&b);
    for _ in 0..3 {
        e.step()
            .await
            .expect("the engine publishes again without a restart");
    }
    assert_eq!(statuses(&b.verified().await), [1, 0, 0, 2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_over_many_periods_end_in_one_gap_with_status_2() {
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    e.step().await.unwrap();
    // A long outage: every write and every read of the head fails for ten attempts (the
    // first attempt reads the head once, to learn whether its failed append committed).
    b.faulty.fail_next(Call::Append, 1, down());
    b.faulty.fail_next(HEAD_READ, 10, down());
    for attempt in 0..10 {
        assert!(e.step().await.is_err(), "attempt {attempt} should fail");
        b.clock.advance(PERIOD / 2);
    }
    e.step().await.unwrap();
    e.step().await.unwrap();
    assert_eq!(statuses(&b.verified().await), [1, 0, 2, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulse_the_database_committed_is_published_even_if_the_append_reported_an_error() {
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    b.faulty.fail_next(Call::AppendAfterCommit, 1, down());
    let p = e
        .step()
        .await
        .expect("a committed pulse is published, not skipped");
    assert_eq!(p.pulse.pulse_index, 2);
    e.step().await.unwrap();
    assert_eq!(statuses(&b.verified().await), [1, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_publication_does_not_skip_the_pulse() {
    // A full disk: the append committed, dropping the published secret did not.
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    b.faulty.fail_next(Call::DropPendingSecrets, 1, disk_full());
    let p = e
        .step()
        .await
        .expect("published, whatever the housekeeping");
    assert_eq!(p.pulse.pulse_index, 2);
    e.step().await.unwrap();
    assert_eq!(statuses(&b.verified().await), [1, 0, 0]);
    // The secret left behind was dropped with the next pulse's.
    assert!(b.real.pending_secret(1, 2).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_seal_of_the_next_value_is_retried_and_makes_the_slot() {
    // Sealing happens before the slot's time, so a retry after a short backoff still makes it.
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    e.step().await.unwrap();
    b.faulty.fail_next(Call::PutPendingSecret, 1, down());
    assert!(e.step().await.is_err());
    backoff(&b);
    e.step().await.unwrap();
    e.step().await.unwrap();
    assert_eq!(statuses(&b.verified().await), [1, 0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_within_the_slot_publishes_it_on_time() {
    // The failure comes before the slot's time (the reload, at the start of the period): the
    // retry still makes the slot, so the fault costs nothing.
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    b.faulty.fail_next(HEAD_READ, 1, down());
    b.faulty.fail_next(Call::PutPendingSecret, 1, down());
    assert!(e.step().await.is_err(), "the seal fails");
    assert!(e.step().await.is_err(), "the reload fails");
    e.step().await.unwrap();
    assert_eq!(statuses(&b.verified().await), [1, 0]);
}

/// A source that stalls the (test) clock, as a stopped process or a hung driver would.
struct Stall {
    clock: Arc<ManualClock>,
    ms: Arc<AtomicU32>,
}
impl EntropySource for Stall {
    fn name(&self) -> &str {
        "stall"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        self.clock
            .advance(i64::from(self.ms.swap(0, Ordering::SeqCst)));
        Err(SourceError::Unavailable("stalled".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_that_cannot_be_published_within_the_tolerance_is_skipped_not_published_late() {
    let b = bench().await;
    let stall = Arc::new(AtomicU32::new(0));
    let mut sources = os();
    sources.push(Box::new(Stall {
        clock: b.clock.clone(),
        ms: stall.clone(),
    }));
    let mut e = b.engine(sources);
    let tolerance = config().late_tolerance.as_millis() as i64;
    for _ in 0..2 {
        e.step().await.unwrap();
    }
    // Stalled for a period and a half while preparing the next pulse.
    stall.store((PERIOD + PERIOD / 2) as u32, Ordering::SeqCst);
    let err = e.step().await.unwrap_err();
    assert!(
        matches!(err, EngineError::Late { late_ms, .. } if late_ms > tolerance),
        "{err}"
    );
    assert_eq!(err.category(), "late");
    let p = e.step().await.unwrap();
    assert!(p.published_at_ms - p.pulse.time_ms().unwrap() <= tolerance);
    let chain = b.verified().await;
    assert_eq!(statuses(&chain), [1, 0, 2]);
    assert!(
        chain
            .windows(2)
            .all(|w| w[1].time_ms().unwrap() > w[0].time_ms().unwrap()),
        "no slot published twice"
    );
}

/// Counts what the run loop tells it and says when enough pulses are out.
#[derive(Default)]
struct Counter {
    published: AtomicU32,
    failed: AtomicU32,
    categories: std::sync::Mutex<Vec<&'static str>>,
    enough: tokio::sync::Notify,
}

impl lavabeacon_engine::run::Observer for Counter {
    fn published(&self, _: &lavabeacon_engine::engine::Published) {
        if self.published.fetch_add(1, Ordering::SeqCst) + 1 == 6 {
            self.enough.notify_one();
        }
    }
    fn failed(&self, _: Option<i64>, e: &EngineError) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        self.categories.lock().unwrap().push(e.category());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_keeps_going_through_faults_until_told_to_stop() {
    let b = bench().await;
    let e = b.engine(os());
    b.faulty.fail_next(Call::Append, 2, down());
    b.faulty.fail_next(HEAD_READ, 1, down());
    let counter = Arc::new(Counter::default());
    let c = counter.clone();
    let stop = async move { c.enough.notified().await };
    tokio::time::timeout(
        Duration::from_secs(20),
        lavabeacon_engine::run::run(e, counter.clone(), stop),
    )
    .await
    .expect("the loop stops when told to");
    assert_eq!(counter.published.load(Ordering::SeqCst), 6);
    assert_eq!(counter.failed.load(Ordering::SeqCst), 3);
    assert!(counter
        .categories
        .lock()
        .unwrap()
        .iter()
        .all(|c| *c == "database unavailable"));
    let chain = b.verified().await;
    assert_eq!(chain.len(), 6);
    assert!(
        !statuses(&chain).contains(&3),
        "the commitment was kept throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulse_stored_without_the_engine_knowing_keeps_its_commitment() {
    // The append committed but answered with an error, the check of the head failed, and the
    // reload still saw the old head: the engine builds the same pulse again. It must commit to
    // the value it already sealed, so that the pulse really stored stays true (no status 3);
    // rebuilt for the same slot it is the very same pulse, which the store already holds.
    let b = bench().await;
    let mut e = b.engine(os());
    e.step().await.unwrap();
    e.step().await.unwrap();
    b.faulty.fail_next(Call::AppendAfterCommit, 1, down());
    b.faulty.fail_next(HEAD_READ, 1, down());
    b.faulty.answer_stale_heads(1);
    assert!(
        e.step().await.is_err(),
        "the engine cannot know pulse 3 is stored"
    );
    let again = e
        .step()
        .await
        .expect("the stored pulse is recognised as published");
    assert_eq!(again.pulse.pulse_index, 3);
    e.step().await.unwrap();
    e.step().await.unwrap();
    let chain = b.verified().await;
    assert_eq!(statuses(&chain), [1, 0, 0, 0, 0]);
    assert_eq!(chain[2].output_value, again.pulse.output_value);
}
