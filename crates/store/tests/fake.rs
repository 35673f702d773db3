//! The fake store and the fault injector (feature `fake`): the fake keeps the real stores'
//! append rule and answers every lookup as they do; the injector fails exactly the calls it is
//! told to, as many times as it is told, and counts range reads.

#[path = "../../format/tests/support/mod.rs"]
mod chain;

use chain::{build_chain, ed25519_identity, resign};
use futures_util::TryStreamExt;
use lavabeacon_format::time::{parse_time_stamp, Period};
use lavabeacon_format::Hash512;
use lavabeacon_store::fake::{Call, FakeStore, FaultyStore};
use lavabeacon_store::{skip_path, Lookup, Range, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

const START: &str = "2025-12-31T22:30:00.000Z";

fn down() -> StoreError {
    StoreError::unavailable("memory", "injected: the database is down")
}

#[tokio::test]
async fn the_fake_keeps_the_append_rule() {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(4, START, 60_000, &signer);
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict { .. }));
    assert!(
        conflict(store.append(&pulses[1], None, None).await),
        "starts at 1"
    );
    store.append(&pulses[0], Some("{}"), None).await.unwrap();
    store.append(&pulses[1], None, None).await.unwrap();
    assert!(
        conflict(store.append(&pulses[1], None, None).await),
        "again"
    );
    assert!(
        conflict(store.append(&pulses[3], None, None).await),
        "a gap"
    );
    let mut forged = pulses[2].clone();
    forged.list_values[0].value = Hash512([7; 64]);
    resign(&mut forged, &signer);
    let e = store.append(&forged, None, None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("previous is not the outputValue of pulse 2"),
        "{e}"
    );
    let mut bad = pulses[2].clone();
    bad.output_value.0[0] ^= 1;
    assert!(matches!(
        store.append(&bad, None, None).await,
        Err(StoreError::Unsupported { .. })
    ));
    assert_eq!(store.bulk_load(&pulses[2..]).await.unwrap(), 2);
    let c = store.counts().await.unwrap();
    assert_eq!((c.pulses, c.chains), (4, 1));
    assert_eq!(store.manifest(1, 1).await.unwrap().as_deref(), Some("{}"));
}

#[tokio::test]
async fn the_fake_answers_lookups_and_ranges_like_the_real_stores() {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(200, START, 60_000, &signer);
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    store.bulk_load(&pulses).await.unwrap();
    let t = |i: usize| parse_time_stamp(&pulses[i].time_stamp).unwrap();
    assert_eq!(store.last().await.unwrap().as_ref(), pulses.last());
    assert_eq!(
        store.last_in_chain(1).await.unwrap().as_ref(),
        pulses.last()
    );
    assert_eq!(
        store.first_in_chain(1).await.unwrap().as_ref(),
        pulses.first()
    );
    assert_eq!(
        store.by_index(1, 7).await.unwrap().as_ref(),
        Some(&pulses[6])
    );
    assert_eq!(
        store.at_or_after(t(5)).await.unwrap().as_ref(),
        Some(&pulses[5])
    );
    assert_eq!(
        store.at_or_after(t(5) - 1).await.unwrap().as_ref(),
        Some(&pulses[5])
    );
    assert_eq!(store.before(t(5)).await.unwrap().as_ref(), Some(&pulses[4]));
    assert_eq!(store.after(t(5)).await.unwrap().as_ref(), Some(&pulses[6]));
    assert_eq!(store.before(t(0)).await.unwrap(), None);
    // 22:30 + 30 minutes is the first pulse of the new hour (and day, month, year).
    let first = store
        .first_in_period(1, Period::Hour, t(45))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.pulse_index, 31);
    let by_time: Vec<_> = store
        .range_by_time(t(10), t(20))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_time, pulses[10..20].to_vec());
    let by_index: Vec<_> = store
        .range(Range::ByIndex {
            chain: 1,
            from: 3,
            to: 5,
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_index, pulses[2..5].to_vec());
    let path = skip_path(store.as_ref(), 1, 1, 200).await.unwrap().unwrap();
    assert!(path.len() < 200 && path.first() == pulses.first() && path.last() == pulses.last());
}

#[tokio::test]
async fn the_fake_keeps_certificates_secrets_and_one_leader() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let id = store.put_certificate(b"der").await.unwrap();
    assert_eq!(store.put_certificate(b"der").await.unwrap(), id);
    assert_eq!(
        store.certificate(&id).await.unwrap().as_deref(),
        Some(&b"der"[..])
    );
    assert_eq!(store.certificates().await.unwrap().len(), 1);
    store.put_pending_secret(1, 5, b"sealed").await.unwrap();
    assert!(store.pending_secret(1, 5).await.unwrap().is_some());
    store.drop_pending_secrets(1, 5).await.unwrap();
    assert_eq!(store.pending_secret(1, 5).await.unwrap(), None);
    let held = store
        .acquire_leadership(Some(Duration::ZERO))
        .await
        .unwrap();
    let busy = store
        .acquire_leadership(Some(Duration::from_millis(50)))
        .await;
    assert!(matches!(busy, Err(StoreError::LeaderBusy { .. })));
    drop(held);
    store
        .acquire_leadership(Some(Duration::ZERO))
        .await
        .unwrap();
}

#[tokio::test]
async fn chosen_calls_fail_as_often_as_told_even_after_committing() {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(3, START, 60_000, &signer);
    let store = Arc::new(FaultyStore::new(Arc::new(FakeStore::new())));
    store.fail_next(Call::Append, 1, down());
    assert!(matches!(
        store.append(&pulses[0], None, None).await,
        Err(StoreError::Unavailable { .. })
    ));
    assert_eq!(
        store.counts().await.unwrap().pulses,
        0,
        "failed before the store"
    );
    store.fail_next(Call::AppendAfterCommit, 1, down());
    assert!(store.append(&pulses[0], None, None).await.is_err());
    assert_eq!(
        store.counts().await.unwrap().pulses,
        1,
        "failed after the commit"
    );
    store.append(&pulses[1], None, None).await.unwrap();
    store.append(&pulses[2], None, None).await.unwrap();
    // Every kind of find is told apart; the arguments do not matter.
    store.fail_next(Call::Find(Lookup::LastInChain(0)), 2, down());
    let dyn_store: &dyn Store = store.as_ref();
    assert!(dyn_store.last_in_chain(1).await.is_err());
    assert!(dyn_store.by_index(1, 1).await.unwrap().is_some());
    assert!(dyn_store.last_in_chain(7).await.is_err());
    assert_eq!(
        dyn_store
            .last_in_chain(1)
            .await
            .unwrap()
            .unwrap()
            .pulse_index,
        3
    );
    // A stale head is the pulse before it.
    store.answer_stale_heads(1);
    assert_eq!(
        dyn_store
            .last_in_chain(1)
            .await
            .unwrap()
            .unwrap()
            .pulse_index,
        2
    );
    assert_eq!(
        dyn_store
            .last_in_chain(1)
            .await
            .unwrap()
            .unwrap()
            .pulse_index,
        3
    );
}

#[tokio::test]
async fn a_store_that_is_down_hangs_then_fails_and_ranges_are_counted() {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(3, START, 60_000, &signer);
    let store = Arc::new(FaultyStore::new(Arc::new(FakeStore::new())));
    store.bulk_load(&pulses).await.unwrap();
    let dyn_store: &dyn Store = store.as_ref();
    let all = || dyn_store.range_by_index(1, 1, 3);
    {
        let open = all();
        assert_eq!((store.open_ranges(), store.ranges_made()), (1, 1));
        drop(open);
    }
    assert_eq!(store.open_ranges(), 0);
    store.go_down(Duration::from_millis(200), down());
    let started = Instant::now();
    assert!(dyn_store.last().await.is_err());
    assert!(started.elapsed() >= Duration::from_millis(200));
    let r: Result<Vec<_>, _> = all().try_collect().await;
    assert!(matches!(r, Err(StoreError::Unavailable { .. })));
    store.come_back();
    let r: Vec<_> = all().try_collect().await.unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(store.ranges_made(), 3);
    store.reset_ranges_made();
    assert_eq!(store.ranges_made(), 0);
}
