//! Range reads go page by page and hold no connection while their consumer is slow: many
//! streams left unpolled after their first item do not stop a lookup from answering at once,
//! and the pages join up into exactly the requested range.

mod common;

use common::chain::{build_chain, ed25519_identity};
use common::Db;
use futures_util::{StreamExt, TryStreamExt};
use lavabeacon_format::Pulse;
use lavabeacon_store::Role;
use std::time::{Duration, Instant};

const START: &str = "2026-04-01T00:00:00.000Z";
/// More than two pages (the first 256 rows, the next 512, then 1,024), so that page boundaries
/// are crossed.
const N: u64 = 1_234;

contract!(
    idle_range_streams_hold_no_connection,
    ranges_cross_page_boundaries_exactly,
);

async fn load(db: &Db) -> Vec<Pulse> {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(N, START, 1_000, &signer);
    db.store.bulk_load(&pulses).await.unwrap();
    let manifests: Vec<(u64, u64, String)> = pulses
        .iter()
        .map(|p| (1, p.pulse_index, format!("{{\"i\":{}}}", p.pulse_index)))
        .collect();
    db.store.put_manifests(&manifests).await.unwrap();
    pulses
}

async fn idle_range_streams_hold_no_connection(db: &Db) {
    let pulses = load(db).await;
    // An API store: its pool has at most 8 connections and waits 1 s for one.
    let api = db.open_as(Role::Api).await;
    let t0 = pulses[0].time_ms().unwrap();
    let mut held = Vec::new();
    // Four times as many streams of each kind as the pool has connections, each polled for
    // one item and then left alone, as a client that stopped reading would leave them.
    for k in 0..32u64 {
        let mut by_time = api.range_by_time(t0 + k as i64 * 1000, i64::MAX);
        let mut by_index = api.range_by_index(1, 1 + k, N);
        let mut manifests = api.manifests_by_index(1, 1 + k, N);
        let first = tokio::time::timeout(Duration::from_secs(2), async {
            (
                by_time.next().await,
                by_index.next().await,
                manifests.next().await,
            )
        })
        .await
        .unwrap_or_else(|_| panic!("stream {k} waited for a connection: the others hold them"));
        assert_eq!(first.0.unwrap().unwrap(), pulses[k as usize]);
        assert_eq!(first.1.unwrap().unwrap(), pulses[k as usize]);
        assert_eq!(first.2.unwrap().unwrap().1, 1 + k);
        held.push((by_time, by_index, manifests));
    }
    // Lookups that go through the pool still answer at once.
    let t = Instant::now();
    let (counts, manifest, certs) = tokio::time::timeout(Duration::from_secs(1), async {
        (
            api.counts().await,
            api.manifest(1, 7).await,
            api.certificates().await,
        )
    })
    .await
    .expect("a lookup waited behind idle streams");
    assert_eq!(counts.unwrap().pulses, N);
    assert_eq!(manifest.unwrap().as_deref(), Some("{\"i\":7}"));
    certs.unwrap();
    let took = t.elapsed();
    // The streams go on where they stopped.
    let (by_time, by_index, manifests) = held.pop().unwrap();
    let rest: Vec<Pulse> = by_time.try_collect().await.unwrap();
    assert_eq!(rest.as_slice(), &pulses[32..]);
    let rest: Vec<Pulse> = by_index.try_collect().await.unwrap();
    assert_eq!(rest.as_slice(), &pulses[32..]);
    let rest: Vec<_> = manifests.try_collect().await.unwrap();
    assert_eq!(rest.len(), pulses.len() - 32);
    eprintln!(
        "{}: 96 idle range streams, lookups answered in {took:?}",
        db.store.backend()
    );
}

async fn ranges_cross_page_boundaries_exactly(db: &Db) {
    let pulses = load(db).await;
    let at = |i: u64| pulses[i as usize - 1].time_ms().unwrap();
    // By index: an inner window across two page boundaries, and the whole chain.
    let got: Vec<Pulse> = db
        .store
        .range_by_index(1, 3, 1_101)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.as_slice(), &pulses[2..1_101]);
    let got: Vec<Pulse> = db
        .store
        .range_by_index(1, 1, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, pulses);
    // Exactly one page's worth, and one past it; the same for the first two pages.
    for (to, expected) in [(256, 256), (257, 257), (768, 768), (769, 769)] {
        let got: Vec<Pulse> = db
            .store
            .range_by_index(1, 1, to)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(got.len(), expected, "pulses 1..={to}");
        assert_eq!(got.as_slice(), &pulses[..expected]);
    }
    // By time: from <= t < to.
    let got: Vec<Pulse> = db
        .store
        .range_by_time(at(10), at(1_010))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.as_slice(), &pulses[9..1_009]);
    let got: Vec<Pulse> = db
        .store
        .range_by_time(i64::MIN, i64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, pulses);
    // Manifests, in index order, each once.
    let got: Vec<(u64, u64, String)> = db
        .store
        .manifests_by_index(1, 2, 1_200)
        .try_collect()
        .await
        .unwrap();
    let indexes: Vec<u64> = got.iter().map(|m| m.1).collect();
    assert_eq!(indexes, (2..=1_200).collect::<Vec<_>>());
    // Empty ranges end at once.
    assert_eq!(db.store.range_by_index(2, 1, 10).count().await, 0);
    assert_eq!(db.store.range_by_time(0, 1).count().await, 0);
}
