//! Keys over the years, on a real SQLite store and a manual clock: a scheduled switch changes
//! the key at its slot with no missed period (and survives a restart right after it); a
//! scheduled higher chain starts there; a certificate that expires stops the signing at that
//! moment and a key rotated in resumes it, the gap marked. The same on SoftHSM with the real
//! binary is in the binary's `tests/keys.rs`.

use lavabeacon_engine::clock::Clock;
use lavabeacon_engine::engine::{Engine, EngineConfig, ManualClock};
use lavabeacon_engine::keys::KeyRing;
use lavabeacon_engine::source::os::OsSource;
use lavabeacon_engine::source::EntropySource;
use lavabeacon_format::builder::ChainParams;
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use lavabeacon_signer::cert::Validity;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::{Signer, SignerError};
use lavabeacon_store::{KeySwitch, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const PERIOD: i64 = 60_000;
const T0: i64 = 1_798_761_600_000;

/// Software keys by label, as an HSM would hold them.
struct Ring(HashMap<String, Arc<SoftwareSigner>>);

impl KeyRing for Ring {
    fn open(&self, label: &str, der: &[u8]) -> Result<Arc<dyn Signer>, SignerError> {
        let key = self.0.get(label).ok_or_else(|| SignerError::MissingKey {
            key: label.into(),
            token: "test ring".into(),
        })?;
        assert_eq!(
            key.certificate().der,
            der,
            "the ring is given the stored certificate"
        );
        Ok(key.clone())
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    a: Arc<SoftwareSigner>,
    b: Arc<SoftwareSigner>,
}

/// Key A (valid until `a_until`, Unix ms, if given) configured; key B in the ring.
async fn world(a_until: Option<i64>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = lavabeacon_store::open(&format!("sqlite:{}/beacon.db", dir.path().display()))
        .await
        .unwrap();
    let a = match a_until {
        None => SoftwareSigner::new(&[1; 32], None).unwrap(),
        Some(t) => SoftwareSigner::with_validity(
            &[1; 32],
            Validity {
                not_before: UNIX_EPOCH,
                not_after: UNIX_EPOCH + Duration::from_millis(t as u64),
            },
        )
        .unwrap(),
    };
    let b = SoftwareSigner::new(&[2; 32], None).unwrap();
    for s in [&a, &b] {
        store.put_certificate(&s.certificate().der).await.unwrap();
    }
    World {
        _dir: dir,
        store,
        clock: Arc::new(ManualClock::new(T0 + 1)),
        a: Arc::new(a),
        b: Arc::new(b),
    }
}

impl World {
    fn engine(&self, chain: u64) -> Engine {
        let sources: Vec<Box<dyn EntropySource>> = vec![Box::new(OsSource::new(64))];
        let ring = Ring(HashMap::from([
            ("key-a".to_string(), self.a.clone()),
            ("key-b".to_string(), self.b.clone()),
        ]));
        Engine::new(
            self.store.clone(),
            self.a.clone(),
            sources,
            EngineConfig {
                params: ChainParams::new(
                    "https://beacon.example.org/beacon/2.0",
                    chain,
                    PERIOD as u32,
                ),
                full_credit_bits: 256,
                source_timeout: Duration::from_secs(5),
                late_tolerance: EngineConfig::default_late_tolerance(PERIOD as u32),
            },
            self.clock.clone(),
            None,
        )
        .with_key_ring(Arc::new(ring))
    }

    async fn schedule(&self, at_ms: i64, chain: u64, key: &str) {
        let id = if key == "key-a" { &self.a } else { &self.b }
            .certificate()
            .id;
        self.store
            .put_key_switch(&KeySwitch {
                at_ms,
                chain,
                key_label: key.into(),
                certificate_id: id,
            })
            .await
            .unwrap();
    }

    /// Chain `chain` as stored, verified against both keys' certificates.
    async fn verified(&self, chain: u64) -> Vec<Pulse> {
        let last = self.store.last_in_chain(chain).await.unwrap().unwrap();
        let mut pulses = Vec::new();
        for i in 1..=last.pulse_index {
            pulses.push(self.store.by_index(chain, i).await.unwrap().unwrap());
        }
        let mut certs = CertificateSet::new();
        certs.add(self.a.certificate().clone());
        certs.add(self.b.certificate().clone());
        let r = Verifier::new(&certs, Options::default()).verify_pulses(&pulses);
        assert!(r.passed(), "{}", r.render_text());
        pulses
    }

    fn signed_by(&self, pulses: &[Pulse]) -> Vec<char> {
        pulses
            .iter()
            .map(|p| {
                if p.certificate_id == self.a.certificate().id {
                    'A'
                } else {
                    'B'
                }
            })
            .collect()
    }
}

fn statuses(chain: &[Pulse]) -> Vec<u32> {
    chain.iter().map(|p| p.status_code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_switch_changes_the_key_at_its_slot_with_no_missed_period() {
    let w = world(None).await;
    let mut e = w.engine(1);
    for _ in 0..3 {
        e.step().await.unwrap();
    }
    // Pulses at T0+1..3 periods; B from the fifth.
    w.schedule(T0 + 5 * PERIOD, 1, "key-b").await;
    for _ in 0..2 {
        e.step().await.unwrap();
    }
    let p = e.step().await.unwrap().pulse;
    assert_eq!(p.time_ms().unwrap(), T0 + 6 * PERIOD);
    // A restart right after the switch: the value pulse 6 committed to was sealed by B, and
    // the restarted engine (configured with A) still opens it.
    drop(e);
    let mut e = w.engine(1);
    for _ in 0..2 {
        e.step().await.unwrap();
    }
    let chain = w.verified(1).await;
    assert_eq!(
        w.signed_by(&chain),
        ['A', 'A', 'A', 'A', 'B', 'B', 'B', 'B']
    );
    assert_eq!(
        statuses(&chain),
        [1, 0, 0, 0, 0, 0, 0, 0],
        "no gap, no lost value"
    );
    let times: Vec<i64> = chain.iter().map(|p| p.time_ms().unwrap()).collect();
    assert!(times.windows(2).all(|t| t[1] - t[0] == PERIOD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_higher_chain_starts_at_its_slot_and_the_old_one_ends_before_it() {
    let w = world(None).await;
    let mut e = w.engine(1);
    for _ in 0..3 {
        e.step().await.unwrap();
    }
    w.schedule(T0 + 4 * PERIOD, 2, "key-b").await;
    for _ in 0..3 {
        e.step().await.unwrap();
    }
    let one = w.verified(1).await;
    let two = w.verified(2).await;
    assert_eq!((one.len(), two.len()), (3, 3));
    assert_eq!(statuses(&two), [1, 0, 0]);
    assert_eq!(two[0].time_ms().unwrap(), T0 + 4 * PERIOD, "no slot missed");
    assert_eq!(w.signed_by(&two), ['B', 'B', 'B']);
    // The value chain 1's last pulse committed to is never published: not kept sealed either.
    assert_eq!(w.store.pending_secret(1, 4).await.unwrap(), None);
    // Restarted with the old configuration (chain 1), it goes on in chain 2.
    drop(e);
    w.engine(1).step().await.unwrap();
    assert_eq!(w.verified(2).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_stops_the_signing_and_a_rotated_key_resumes_it() {
    // A's certificate ends 2.5 periods after T0: pulses at T0+1 and T0+2 periods only.
    let w = world(Some(T0 + 5 * PERIOD / 2)).await;
    let mut e = w.engine(1);
    e.step().await.unwrap();
    e.step().await.unwrap();
    for _ in 0..3 {
        let err = e.step().await.unwrap_err();
        assert_eq!(err.category(), "certificate expired", "{err}");
        assert!(err.to_string().contains("rotate"), "{err}");
        w.clock.advance(PERIOD / 2);
    }
    // Rotated in: B from the next boundary.
    let next = (w.clock.now_ms() / PERIOD + 1) * PERIOD;
    w.schedule(next, 1, "key-b").await;
    let p = e.step().await.unwrap().pulse;
    assert_eq!(p.time_ms().unwrap(), next);
    e.step().await.unwrap();
    let chain = w.verified(1).await;
    assert_eq!(w.signed_by(&chain), ['A', 'A', 'B', 'B']);
    assert_eq!(
        statuses(&chain),
        [1, 0, 2, 0],
        "the gap is marked, the commitment kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chain_after_an_earlier_rotation_starts_exactly_at_its_slot() {
    let w = world(None).await;
    let mut e = w.engine(1);
    e.step().await.unwrap();
    // B from the third slot in chain 1; then A again, in chain 2, from the fifth.
    w.schedule(T0 + 3 * PERIOD, 1, "key-b").await;
    w.schedule(T0 + 5 * PERIOD, 2, "key-a").await;
    for _ in 0..6 {
        e.step().await.unwrap();
    }
    let one = w.verified(1).await;
    let two = w.verified(2).await;
    assert_eq!(w.signed_by(&one), ['A', 'A', 'B', 'B']);
    assert_eq!(
        two[0].time_ms().unwrap(),
        T0 + 5 * PERIOD,
        "chain 2 starts at its slot, not a period late"
    );
    assert_eq!(w.signed_by(&two), ['A', 'A', 'A']);
    assert_eq!(statuses(&two), [1, 0, 0]);
}
