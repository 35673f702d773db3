//! One contract for every backend: the same tests run on SQLite and on a real PostgreSQL server.
//!
//! Over 400 lines on purpose: the contract is one list, so a backend cannot pass a shorter one;
//! `contract!` (in `common/`) runs each test here on both backends.

mod common;

use common::chain::{build_chain, ed25519_identity, lrv, BASE};
use common::Db;
use futures_util::TryStreamExt;
use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
use lavabeacon_format::chain::{check_skip_path, Facts};
use lavabeacon_format::hash::sha512;
use lavabeacon_format::message::precommitment;
use lavabeacon_format::pulse::External;
use lavabeacon_format::time::{parse_time_stamp, Period};
use lavabeacon_format::{Hash512, Pulse};
use lavabeacon_store::{skip_path, StoreError};
use std::time::Duration;

const START: &str = "2025-12-31T22:30:00.000Z";

fn ms(t: &str) -> i64 {
    parse_time_stamp(t).unwrap()
}

async fn load(db: &Db, pulses: &[Pulse]) {
    for p in pulses {
        db.store.append(p, None, None).await.unwrap();
    }
}

contract!(
    appended_pulses_read_back_identical,
    appends_that_do_not_extend_the_head_are_conflicts,
    time_and_index_queries_find_the_right_pulses,
    first_in_period_and_skip_paths_follow_the_skip_list,
    ranges_stream_in_order,
    certificates_manifests_and_pending_secrets,
    external_sources_are_kept_by_their_sha512,
    a_draw_is_registered_once_and_keeps_its_first_receipt,
    the_key_schedule_keeps_switches_in_time_order_and_a_future_one_can_be_replaced,
    two_writers_on_one_head_never_fork,
    only_the_leader_writes_and_a_standby_takes_over,
    bulk_load_checks_the_chain_and_loads_it,
    hand_made_updates_and_deletes_are_refused,
    foreign_and_unusual_pulses_are_stored_losslessly,
    the_log_holds_every_pulse_and_draw_in_order_and_proves_it,
    a_witness_state_only_moves_forward,
);

async fn foreign_and_unusual_pulses_are_stored_losslessly(db: &Db) {
    // NIST's own chain start: its URIs are NIST's, its version "Version 2.0".
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/nist-2018-chain1"
    );
    let nist = lavabeacon_format::json::parse_pulse(
        &std::fs::read_to_string(format!("{dir}/pulse-1.json")).unwrap(),
    )
    .unwrap();
    db.store.append(&nist, None, None).await.unwrap();
    assert_eq!(db.store.by_index(1, 1).await.unwrap(), Some(nist));
    // Skip-list URIs that do not follow the pulse's own URI pattern (they are not signed).
    let (signer, _) = ed25519_identity(1);
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 2, 60_000));
    let t = ms("2026-01-01T00:00:00.000Z");
    let p1 = b
        .next(NextPulse::new(t, lrv(1), precommitment(&lrv(2))), &signer)
        .unwrap();
    let mut p2 = b
        .next(
            NextPulse::new(t + 60_000, lrv(2), precommitment(&lrv(3))),
            &signer,
        )
        .unwrap();
    p2.list_values[3].uri = Some("https://mirror.example.org/some/other/place".into());
    db.store.append(&p1, None, None).await.unwrap();
    db.store.append(&p2, None, None).await.unwrap();
    assert_eq!(db.store.by_index(2, 2).await.unwrap(), Some(p2));
}

async fn appended_pulses_read_back_identical(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(5, START, 60_000, &signer);
    load(db, &pulses).await;
    for p in &pulses {
        assert_eq!(
            db.store.by_index(1, p.pulse_index).await.unwrap().as_ref(),
            Some(p)
        );
    }
    assert_eq!(db.store.last().await.unwrap().as_ref(), pulses.last());
    let c = db.store.counts().await.unwrap();
    assert_eq!((c.pulses, c.chains), (5, 1));
}

async fn appends_that_do_not_extend_the_head_are_conflicts(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(4, START, 60_000, &signer);
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict { .. }));
    assert!(
        conflict(db.store.append(&pulses[1], None, None).await),
        "a chain starts at pulse 1"
    );
    load(db, &pulses[..2]).await;
    assert!(
        conflict(db.store.append(&pulses[1], None, None).await),
        "the same pulse again"
    );
    assert!(
        conflict(db.store.append(&pulses[3], None, None).await),
        "skipping an index"
    );
    // A pulse with the right index but another previous value (re-signed, so it is well formed).
    let mut forged = pulses[2].clone();
    forged.list_values[0].value = Hash512([7; 64]);
    common::chain::resign(&mut forged, &signer);
    let e = db.store.append(&forged, None, None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("previous is not the outputValue of pulse 2"),
        "{e}"
    );
    // Not after the head.
    let mut early = pulses[2].clone();
    early.time_stamp = pulses[1].time_stamp.clone();
    common::chain::resign(&mut early, &signer);
    assert!(conflict(db.store.append(&early, None, None).await));
    // A second chain may not start before the newest pulse.
    let mut b = ChainBuilder::new_chain(ChainParams::new(BASE, 2, 60_000));
    let old = b
        .next(
            NextPulse::new(ms(START), lrv(1), precommitment(&lrv(2))),
            &signer,
        )
        .unwrap();
    assert!(conflict(db.store.append(&old, None, None).await));
    // A pulse whose outputValue is not its own hash is not a pulse.
    let mut bad = pulses[2].clone();
    bad.output_value.0[0] ^= 1;
    assert!(matches!(
        db.store.append(&bad, None, None).await,
        Err(StoreError::Unsupported { .. })
    ));
    // And the honest next pulse still goes in.
    db.store.append(&pulses[2], None, None).await.unwrap();
    assert_eq!(db.store.counts().await.unwrap().pulses, 3);
}

async fn time_and_index_queries_find_the_right_pulses(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(10, START, 60_000, &signer);
    load(db, &pulses).await;
    let t = |i: usize| pulses[i].time_ms().unwrap();
    let idx = |p: Option<Pulse>| p.map(|p| p.pulse_index);
    assert_eq!(
        idx(db.store.at_or_after(t(3)).await.unwrap()),
        Some(4),
        "at a pulse's time"
    );
    assert_eq!(
        idx(db.store.at_or_after(t(3) + 1).await.unwrap()),
        Some(5),
        "between pulses: the next"
    );
    assert_eq!(
        idx(db.store.at_or_after(t(9) + 1).await.unwrap()),
        None,
        "after the last"
    );
    assert_eq!(
        idx(db.store.before(t(3)).await.unwrap()),
        Some(3),
        "strictly before"
    );
    assert_eq!(idx(db.store.before(t(0)).await.unwrap()), None);
    assert_eq!(
        idx(db.store.after(t(3)).await.unwrap()),
        Some(5),
        "strictly after"
    );
    assert_eq!(idx(db.store.after(t(9)).await.unwrap()), None);
    assert_eq!(idx(db.store.last_in_chain(1).await.unwrap()), Some(10));
    assert_eq!(idx(db.store.first_in_chain(1).await.unwrap()), Some(1));
    assert_eq!(idx(db.store.last_in_chain(2).await.unwrap()), None);
    assert_eq!(idx(db.store.by_index(1, 11).await.unwrap()), None);
    assert_eq!(
        idx(db.store.by_index(1, u64::MAX).await.unwrap()),
        None,
        "huge index finds nothing"
    );
}

async fn first_in_period_and_skip_paths_follow_the_skip_list(db: &Db) {
    // 90 minutes before a new year, then 3,000 minutes: hour, day, month and year boundaries.
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(3000, START, 60_000, &signer);
    db.store.bulk_load(&pulses).await.unwrap();
    // Every pulse's skip values are the first pulses of the periods containing its predecessor.
    for p in pulses.iter().skip(1).step_by(97) {
        let prev_t = pulses[(p.pulse_index - 2) as usize].time_ms().unwrap();
        for period in Period::ALL {
            let first = db
                .store
                .first_in_period(1, period, prev_t)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                p.period_value(period),
                Some(&first.output_value),
                "pulse {} {}",
                p.pulse_index,
                period.name()
            );
        }
    }
    let path = skip_path(db.store.as_ref(), 1, 3, 2990)
        .await
        .unwrap()
        .unwrap();
    assert!(path.len() < 120, "{} pulses", path.len());
    assert_eq!(
        (path[0].pulse_index, path.last().unwrap().pulse_index),
        (3, 2990)
    );
    let facts: Vec<Facts> = path.iter().map(|p| Facts::of(p, None)).collect();
    let mut problems = Vec::new();
    assert_eq!(check_skip_path(&facts, &mut problems).len(), path.len() - 1);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(skip_path(db.store.as_ref(), 1, 10, 5)
        .await
        .unwrap()
        .is_none());
}

async fn ranges_stream_in_order(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(50, START, 60_000, &signer);
    db.store.bulk_load(&pulses).await.unwrap();
    let got: Vec<Pulse> = db
        .store
        .range_by_time(pulses[10].time_ms().unwrap(), pulses[20].time_ms().unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, pulses[10..20].to_vec(), "from inclusive, to exclusive");
    let got: Vec<Pulse> = db
        .store
        .range_by_index(1, 45, 100)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, pulses[44..].to_vec());
}

async fn certificates_manifests_and_pending_secrets(db: &Db) {
    let (signer, cert) = ed25519_identity(1);
    let id = db.store.put_certificate(&cert.der).await.unwrap();
    assert_eq!(id, cert.id);
    assert_eq!(
        db.store.put_certificate(&cert.der).await.unwrap(),
        id,
        "idempotent"
    );
    assert_eq!(
        db.store.certificate(&id).await.unwrap(),
        Some(cert.der.clone())
    );
    assert_eq!(db.store.certificate(&Hash512([1; 64])).await.unwrap(), None);
    assert_eq!(db.store.counts().await.unwrap().certificates, 1);

    let pulses = build_chain(2, START, 60_000, &signer);
    db.store
        .append(&pulses[0], Some(r#"{"sources":[]}"#), None)
        .await
        .unwrap();
    assert_eq!(
        db.store.manifest(1, 1).await.unwrap().as_deref(),
        Some(r#"{"sources":[]}"#)
    );
    assert_eq!(db.store.manifest(1, 2).await.unwrap(), None);

    db.store
        .put_pending_secret(1, 2, b"sealed-1")
        .await
        .unwrap();
    db.store
        .put_pending_secret(1, 2, b"sealed-2")
        .await
        .unwrap();
    assert_eq!(
        db.store.pending_secret(1, 2).await.unwrap(),
        Some(b"sealed-2".to_vec())
    );
    db.store.drop_pending_secrets(1, 2).await.unwrap();
    assert_eq!(db.store.pending_secret(1, 2).await.unwrap(), None);
}

async fn a_draw_is_registered_once_and_keeps_its_first_receipt(db: &Db) {
    let first = lavabeacon_store::StoredDraw {
        id: sha512(&[b"{\"title\":\"a draw\"}"]),
        spec: "{\"title\":\"a draw\"}".into(),
        receipt: "{\"registeredAt\":\"first\"}".into(),
        target_ms: 1_800_000_120_000,
        registered_ms: 1_800_000_000_000,
    };
    assert_eq!(
        db.store.put_draw(&first, b"draw entry").await.unwrap(),
        first
    );
    let again = lavabeacon_store::StoredDraw {
        receipt: "{\"registeredAt\":\"second\"}".into(),
        registered_ms: 1_800_000_060_000,
        ..first.clone()
    };
    assert_eq!(
        db.store.put_draw(&again, b"draw entry").await.unwrap(),
        first,
        "a second registration gets the first receipt"
    );
    assert_eq!(db.store.draw(&first.id).await.unwrap(), Some(first));
    assert_eq!(db.store.draw(&Hash512::ZERO).await.unwrap(), None);
}

async fn external_sources_are_kept_by_their_sha512(db: &Db) {
    let a = "beacon A: https://a.example/beacon/2.0/pulse/last, its newest pulse's outputValue";
    let b = "NIST <beacon> & \"friends\", ünïcode\r\nand a second line\n";
    let id_a = db.store.put_external_source(a).await.unwrap();
    assert_eq!(id_a, sha512(&[a.as_bytes()]));
    let id_b = db.store.put_external_source(b).await.unwrap();
    assert_eq!(
        db.store.put_external_source(a).await.unwrap(),
        id_a,
        "idempotent"
    );
    assert_eq!(
        db.store.external_source(&id_b).await.unwrap().as_deref(),
        Some(b),
        "byte for byte"
    );
    assert_eq!(
        db.store.external_source(&Hash512::ZERO).await.unwrap(),
        None
    );
    let all = db.store.external_sources().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.contains(&a.to_string()) && all.contains(&b.to_string()));
}

async fn the_key_schedule_keeps_switches_in_time_order_and_a_future_one_can_be_replaced(db: &Db) {
    use lavabeacon_store::{key_switch_at, KeySwitch};
    let switch = |at_ms: i64, chain: u64, label: &str, id: u8| KeySwitch {
        at_ms,
        chain,
        key_label: label.into(),
        certificate_id: Hash512([id; 64]),
    };
    assert!(db.store.key_switches().await.unwrap().is_empty());
    db.store
        .put_key_switch(&switch(3_000, 2, "c", 3))
        .await
        .unwrap();
    db.store
        .put_key_switch(&switch(1_000, 1, "a", 1))
        .await
        .unwrap();
    db.store
        .put_key_switch(&switch(2_000, 1, "b", 2))
        .await
        .unwrap();
    // Scheduled again for the same time: replaced.
    db.store
        .put_key_switch(&switch(3_000, 1, "c2", 4))
        .await
        .unwrap();
    let all = db.store.key_switches().await.unwrap();
    assert_eq!(
        all,
        [
            switch(1_000, 1, "a", 1),
            switch(2_000, 1, "b", 2),
            switch(3_000, 1, "c2", 4)
        ]
    );
    assert_eq!(key_switch_at(&all, 999), None);
    assert_eq!(key_switch_at(&all, 2_000).unwrap().key_label, "b");
    assert_eq!(key_switch_at(&all, 2_999).unwrap().key_label, "b");
    assert_eq!(key_switch_at(&all, i64::MAX).unwrap().key_label, "c2");
}

async fn two_writers_on_one_head_never_fork(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let other = db.reopen().await;
    let t0 = ms(START);
    let mut builder = ChainBuilder::new_chain(ChainParams::new(BASE, 1, 1000));
    let rounds = 1000u64;
    let mut wins = [0u32; 2];
    for i in 1..=rounds {
        // Two different pulses for the same place in the chain (they differ in `external`).
        let (mut a, mut b) = (builder.clone(), builder.clone());
        let next = NextPulse::new(t0 + (i as i64) * 1000, lrv(i), precommitment(&lrv(i + 1)));
        let pa = a.next(next.clone(), &signer).unwrap();
        let pb = b
            .next(
                NextPulse {
                    external: External {
                        status_code: 1,
                        ..External::NONE
                    },
                    ..next
                },
                &signer,
            )
            .unwrap();
        let (ra, rb) = tokio::join!(
            db.store.append(&pa, None, None),
            other.append(&pb, None, None)
        );
        match (ra, rb) {
            (Ok(()), Err(StoreError::Conflict { .. })) => {
                wins[0] += 1;
                builder = a;
            }
            (Err(StoreError::Conflict { .. }), Ok(())) => {
                wins[1] += 1;
                builder = b;
            }
            other => panic!("round {i}: exactly one append must win, got {other:?}"),
        }
    }
    assert_eq!(db.store.counts().await.unwrap().pulses, rounds);
    // The chain is one chain: every pulse links to the one stored before it.
    let all: Vec<Pulse> = db
        .store
        .range_by_index(1, 1, rounds)
        .try_collect()
        .await
        .unwrap();
    for w in all.windows(2) {
        assert_eq!(w[1].previous(), Some(&w[0].output_value));
    }
    eprintln!("{} backend: wins {:?}", db.store.backend(), wins);
}

async fn only_the_leader_writes_and_a_standby_takes_over(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(4, START, 60_000, &signer);
    let standby_store = db.reopen().await;
    let leader = db
        .store
        .acquire_leadership(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    leader.check().await.unwrap();
    db.store
        .append(&pulses[0], None, Some(&leader))
        .await
        .unwrap();
    let busy = standby_store
        .acquire_leadership(Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(matches!(busy, StoreError::LeaderBusy { .. }), "{busy}");
    // The standby waits; the leader goes away; the standby takes over.
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let l = standby_store
            .acquire_leadership(Some(Duration::from_secs(10)))
            .await
            .unwrap();
        (standby_store, l, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.store
        .append(&pulses[1], None, Some(&leader))
        .await
        .unwrap();
    drop(leader);
    let (standby_store, new_leader, waited) = waiting.await.unwrap();
    assert!(
        waited < Duration::from_secs(3),
        "took over after {waited:?}"
    );
    standby_store
        .append(&pulses[2], None, Some(&new_leader))
        .await
        .unwrap();
    assert_eq!(db.store.counts().await.unwrap().pulses, 3);
}

async fn bulk_load_checks_the_chain_and_loads_it(db: &Db) {
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(5000, START, 60_000, &signer);
    assert_eq!(db.store.bulk_load(&pulses[..3000]).await.unwrap(), 3000);
    let gap = db.store.bulk_load(&pulses[3001..]).await.unwrap_err();
    assert!(matches!(gap, StoreError::Conflict { .. }), "{gap}");
    let mut broken = pulses[3000..].to_vec();
    broken.swap(10, 11);
    assert!(matches!(
        db.store.bulk_load(&broken).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        db.store.counts().await.unwrap().pulses,
        3000,
        "a refused load leaves nothing behind"
    );
    db.store.bulk_load(&pulses[3000..]).await.unwrap();
    assert_eq!(db.store.last().await.unwrap().as_ref(), pulses.last());
}

async fn hand_made_updates_and_deletes_are_refused(db: &Db) {
    let (signer, cert) = ed25519_identity(1);
    load(db, &build_chain(2, START, 60_000, &signer)).await;
    db.store.put_certificate(&cert.der).await.unwrap();
    db.store.put_external_source("beacon A").await.unwrap();
    // By hand, with the database's own command-line client, as an operator would.
    let statements = [
        "UPDATE pulses SET status_code = 2 WHERE pulse_index = 2",
        "DELETE FROM pulses WHERE pulse_index = 2",
        "UPDATE certificates SET der = der",
        "UPDATE external_sources SET description = 'changed'",
        "DELETE FROM external_sources",
    ];
    for sql in statements {
        let out = if db.store.backend() == "sqlite" {
            let path = db.url.strip_prefix("sqlite:").unwrap();
            std::process::Command::new("sqlite3")
                .arg(path)
                .arg(sql)
                .output()
                .expect("the sqlite3 client is installed (scripts/test.sh installs it)")
        } else {
            std::process::Command::new("psql")
                .arg(&db.url)
                .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
                .output()
                .expect("psql is installed")
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} must fail");
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if db.store.backend() == "postgres" {
        let out = std::process::Command::new("psql")
            .arg(&db.url)
            .args(["-v", "ON_ERROR_STOP=1", "-c", "TRUNCATE pulses"])
            .output()
            .unwrap();
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("append-only")
        );
    }
    assert_eq!(db.store.counts().await.unwrap().pulses, 2);
}

async fn the_log_holds_every_pulse_and_draw_in_order_and_proves_it(db: &Db) {
    use lavabeacon_tlog::merkle;
    let (signer, _) = ed25519_identity(1);
    let chain = build_chain(6, "2027-01-01T00:00:00.000Z", 60_000, &signer);
    load(db, &chain[..3]).await;
    let draw = lavabeacon_store::StoredDraw {
        id: sha512(&[b"a spec"]),
        spec: "{}".into(),
        receipt: "{}".into(),
        target_ms: 1_900_000_000_000,
        registered_ms: 1_800_000_000_000,
    };
    db.store.put_draw(&draw, b"the draw's entry").await.unwrap();
    // Registered again: no second entry.
    db.store.put_draw(&draw, b"the draw's entry").await.unwrap();
    load(db, &chain[3..]).await;
    let log = db.store.log().unwrap();
    let mut entries: Vec<Vec<u8>> = chain[..3]
        .iter()
        .map(|p| p.output_value.0.to_vec())
        .collect();
    entries.push(b"the draw's entry".to_vec());
    entries.extend(chain[3..].iter().map(|p| p.output_value.0.to_vec()));
    assert_eq!(log.size().await.unwrap(), 7);
    assert_eq!(log.entries(0, 100).await.unwrap(), entries);
    assert_eq!(log.leaf_of_pulse(1, 4).await.unwrap(), Some(4));
    assert_eq!(log.leaf_of_draw(&draw.id).await.unwrap(), Some(3));
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    for size in 1..=7u64 {
        let root = log.root(size).await.unwrap();
        assert_eq!(root, merkle::root(&leaves[..size as usize]), "size {size}");
        for i in 0..size {
            let proof = log.inclusion_proof(i, size).await.unwrap();
            merkle::verify_inclusion(&leaves[i as usize], i, size, &proof, &root).unwrap();
        }
        let proof = log.consistency_proof(size, 7).await.unwrap();
        let newest = log.root(7).await.unwrap();
        merkle::verify_consistency(size, 7, &root, &newest, &proof).unwrap();
    }
    log.put_checkpoint(7, "note 7").await.unwrap();
    log.put_checkpoint(7, "another note 7").await.unwrap();
    assert_eq!(
        log.checkpoint(None).await.unwrap(),
        Some((7, "note 7".into()))
    );
    log.put_cosignature(7, "w", "line").await.unwrap();
    assert_eq!(
        log.cosignatures(7).await.unwrap(),
        vec![("w".into(), "line".into())]
    );
    assert_eq!(log.cosigned_size("w").await.unwrap(), Some(7));
}

async fn a_witness_state_only_moves_forward(db: &Db) {
    let log = db.store.log().unwrap();
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert!(log.advance_witness("o", None, (4, a)).await.unwrap());
    // A second first time, or a move from a state that is not the stored one, does nothing.
    assert!(!log.advance_witness("o", None, (5, b)).await.unwrap());
    assert!(!log
        .advance_witness("o", Some((3, a)), (5, b))
        .await
        .unwrap());
    assert!(log
        .advance_witness("o", Some((4, a)), (6, b))
        .await
        .unwrap());
    assert_eq!(log.witness_state("o").await.unwrap(), Some((6, b)));
    // The database itself refuses going back, even from the stored state.
    assert!(log
        .advance_witness("o", Some((6, b)), (5, a))
        .await
        .is_err());
    assert!(log
        .advance_witness("o", Some((6, b)), (6, a))
        .await
        .is_err());
    assert_eq!(log.witness_state("o").await.unwrap(), Some((6, b)));
}

/// A store from before the log (its log emptied here, triggers and all): the next append takes
/// every stored pulse into the log first, in publication order.
#[tokio::test]
async fn the_first_append_after_the_upgrade_takes_the_older_pulses_into_the_log() {
    let db = common::sqlite().await;
    let (signer, _) = ed25519_identity(1);
    let chain = build_chain(4, "2027-01-01T00:00:00.000Z", 60_000, &signer);
    load(&db, &chain[..3]).await;
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    for sql in [
        "DROP TRIGGER log_entries_refuse_delete",
        "DROP TRIGGER log_hashes_refuse_delete",
        "DELETE FROM log_entries",
        "DELETE FROM log_hashes",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    let log = db.store.log().unwrap();
    assert_eq!(log.size().await.unwrap(), 0);
    load(&db, &chain[3..]).await;
    let want: Vec<Vec<u8>> = chain.iter().map(|p| p.output_value.0.to_vec()).collect();
    assert_eq!(log.entries(0, 10).await.unwrap(), want);
}
