//! A restart between two pulses keeps the precommitment: statusCode 0 when no period was
//! missed, 2 when one was, 3 only when the sealed value is really gone. Real SQLite store,
//! software signer (the same sealing through the HSM is tested on SoftHSM2 in the signer crate).

use lavabeacon_engine::commitment::{keep_next, recover_next, resume_builder, Recovered};
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::hash::{sha512, Hash512};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::verify::{Options, Verifier};
use lavabeacon_format::Pulse;
use lavabeacon_signer::software::SoftwareSigner;
use lavabeacon_signer::Signer;
use lavabeacon_store::Store;
use std::sync::Arc;

const PERIOD: i64 = 60_000;
const T0: i64 = 1_790_000_040_000;

fn params() -> ChainParams {
    ChainParams::new("https://beacon.example.org/beacon/2.0", 1, PERIOD as u32)
}

fn fresh(i: u64) -> Hash512 {
    sha512(&[b"restart test value", &i.to_be_bytes()])
}

/// One running engine: store and signer opened from the data directory.
struct Engine {
    store: Arc<dyn Store>,
    signer: SoftwareSigner,
}

async fn start(dir: &std::path::Path) -> Engine {
    Engine {
        store: lavabeacon_store::open(&format!("sqlite:{}/beacon.db", dir.display()))
            .await
            .unwrap(),
        signer: SoftwareSigner::load_or_create(&dir.join("keys")).unwrap(),
    }
}

impl Engine {
    /// Publishes the next pulse at `t` with `value`, committing to `next` (sealed first).
    async fn publish(
        &self,
        b: &mut ChainBuilder,
        t: i64,
        value: Hash512,
        next: Hash512,
        lost: bool,
    ) -> Pulse {
        let mut n = NextPulse::new(t, value, precommitment(&next));
        n.commitment_lost = lost;
        let p = b.next(n, &self.signer).unwrap();
        keep_next(
            self.store.as_ref(),
            &self.signer,
            1,
            p.pulse_index + 1,
            &next,
            None,
        )
        .await
        .unwrap();
        self.store.append(&p, None, None).await.unwrap();
        p
    }
}

async fn first_three(dir: &std::path::Path) -> Engine {
    let e = start(dir).await;
    let mut b = ChainBuilder::new_chain(params());
    for i in 1..=3u64 {
        e.publish(
            &mut b,
            T0 + (i as i64 - 1) * PERIOD,
            fresh(i),
            fresh(i + 1),
            false,
        )
        .await;
    }
    e
}

/// Restarts, recovers, and publishes the next pulse at `t`; returns it.
async fn restart_and_publish(dir: &std::path::Path, t: i64) -> (Engine, Pulse) {
    let e = start(dir).await;
    let (mut b, last) = resume_builder(e.store.as_ref(), params())
        .await
        .unwrap()
        .unwrap();
    let (value, lost) = match recover_next(e.store.as_ref(), &e.signer, &last)
        .await
        .unwrap()
    {
        Recovered::Kept(v, _) => (Hash512(*v), false),
        Recovered::Lost(why) => {
            println!("lost: {why}");
            (fresh(1000), true)
        }
    };
    let p = e
        .publish(&mut b, t, value, fresh(last.pulse_index + 2), lost)
        .await;
    (e, p)
}

async fn chain_verifies(e: &Engine) -> bool {
    let pulses: Vec<Pulse> = stored_chain(e.store.as_ref()).await;
    let mut certs = CertificateSet::new();
    certs.add(e.signer.certificate().clone());
    let r = Verifier::new(&certs, Options::default()).verify_pulses(&pulses);
    // Shown by the test harness when the test fails.
    println!("{}", r.render_text());
    r.passed() && r.links_checked == pulses.len() as u64 - 1
}

async fn stored_chain(store: &dyn Store) -> Vec<Pulse> {
    let mut out = Vec::new();
    let last = store.last_in_chain(1).await.unwrap().unwrap().pulse_index;
    for i in 1..=last {
        out.push(store.by_index(1, i).await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn a_restart_with_no_missed_period_keeps_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    drop(first_three(dir.path()).await);
    let (e, p) = restart_and_publish(dir.path(), T0 + 3 * PERIOD).await;
    assert_eq!((p.pulse_index, p.status_code), (4, 0));
    assert!(chain_verifies(&e).await);
}

#[tokio::test]
async fn a_restart_after_a_missed_period_gives_status_two_with_the_commitment_kept() {
    let dir = tempfile::tempdir().unwrap();
    drop(first_three(dir.path()).await);
    let (e, p) = restart_and_publish(dir.path(), T0 + 5 * PERIOD).await;
    assert_eq!((p.pulse_index, p.status_code), (4, 2));
    assert_eq!(
        precommitment(&p.local_random_value),
        e.store
            .by_index(1, 3)
            .await
            .unwrap()
            .unwrap()
            .precommitment_value
    );
    assert!(chain_verifies(&e).await);
}

#[tokio::test]
async fn status_three_only_when_the_sealed_value_is_really_gone() {
    let dir = tempfile::tempdir().unwrap();
    let e = first_three(dir.path()).await;
    e.store.drop_pending_secrets(1, 4).await.unwrap();
    drop(e);
    let (e, p) = restart_and_publish(dir.path(), T0 + 5 * PERIOD).await;
    assert_eq!((p.pulse_index, p.status_code), (4, 3));
    assert!(
        chain_verifies(&e).await,
        "statusCode 3 excuses the broken precommitment"
    );
}

#[tokio::test]
async fn a_value_sealed_by_another_key_counts_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    drop(first_three(dir.path()).await);
    // The key directory is replaced: the sealed value can no longer be opened.
    std::fs::remove_dir_all(dir.path().join("keys")).unwrap();
    let e = start(dir.path()).await;
    let last = e.store.last_in_chain(1).await.unwrap().unwrap();
    match recover_next(e.store.as_ref(), &e.signer, &last)
        .await
        .unwrap()
    {
        Recovered::Lost(why) => assert!(why.contains("does not open"), "{why}"),
        Recovered::Kept(..) => panic!("another key opened the sealed value"),
    }
}
