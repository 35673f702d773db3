//! The store on a 1,000,000-pulse chain, for each backend: append latency (p50/p99), lookups
//! by time per second from one process, and storage per pulse (issue #3's targets: p99 under
//! 5 ms, ≥ 20,000 lookups/s, ≤ 1 KiB per suite-2 pulse), and the transparency log's cost: its
//! entry and hashes are in the append's figures and the storage; a checkpoint after each append
//! (issue #17) is timed on its own.
//!
//! `cargo bench -p lavabeacon-store --bench store` (PostgreSQL from `LAVABEACON_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; a scratch database is made and
//! dropped). `-- --pulses N` for another size. The chain is made once with the chain builder
//! and kept under `target/bench-data/`.

#[path = "../../format/tests/support/mod.rs"]
mod support;

use lavabeacon_format::builder::{ChainBuilder, ChainParams, ChainState, NextPulse};
use lavabeacon_format::input::{read_items, Item};
use lavabeacon_format::json::{parse_pulse, to_json_line};
use lavabeacon_format::message::precommitment;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use lavabeacon_store::Store;
use sqlx::Connection;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn chain_file(n: u64) -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/bench-data"
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("store-chain-{n}.jsonl"));
    if !path.exists() {
        eprintln!("making {} ({n} pulses)…", path.display());
        let (signer, _) = support::ed25519_identity(1);
        let tmp = path.with_extension("partial");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
        let mut b = ChainBuilder::new_chain(ChainParams::new(support::BASE, 1, 60_000));
        for i in 1..=n {
            let next = NextPulse::new(
                T0 + (i as i64 - 1) * 60_000,
                support::lrv(i),
                precommitment(&support::lrv(i + 1)),
            );
            writeln!(out, "{}", to_json_line(&b.next(next, &signer).unwrap())).unwrap();
        }
        out.flush().unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

async fn load(store: &dyn Store, file: &PathBuf) -> u64 {
    let started = Instant::now();
    let mut batch = Vec::with_capacity(20_000);
    let mut n = 0;
    for item in read_items("chain", std::fs::File::open(file).unwrap()) {
        let Item::Record { text, .. } = item.unwrap() else {
            panic!("bad bench chain")
        };
        batch.push(parse_pulse(&text).unwrap());
        if batch.len() == 20_000 {
            n += store.bulk_load(&batch).await.unwrap();
            batch.clear();
        }
    }
    n += store.bulk_load(&batch).await.unwrap();
    println!(
        "  bulk load: {n} pulses in {:.1} s ({:.0} pulses/s)",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    n
}

async fn resume(store: &dyn Store) -> ChainBuilder {
    let last = store.last_in_chain(1).await.unwrap().unwrap();
    let t = last.time_ms().unwrap();
    let mut firsts: Vec<Pulse> = Vec::new();
    for p in Period::ALL {
        firsts.push(store.first_in_period(1, p, t).await.unwrap().unwrap());
    }
    let state =
        ChainState::resume(&last, [&firsts[0], &firsts[1], &firsts[2], &firsts[3]]).unwrap();
    ChainBuilder::resume(ChainParams::new(support::BASE, 1, 60_000), state)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(name: &str, store: &dyn Store, file: &PathBuf, n: u64) {
    println!("{name}:");
    let loaded = load(store, file).await;
    // Appends: the next 1,000 pulses, one transaction each, as the engine appends them.
    let (signer, _) = support::ed25519_identity(1);
    let mut b = resume(store).await;
    let mut lat = Vec::new();
    let mut cp = Vec::new();
    let log_key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    for i in n + 1..=n + 1000 {
        let p = b
            .next(
                NextPulse::new(
                    T0 + (i as i64 - 1) * 60_000,
                    support::lrv(i),
                    precommitment(&support::lrv(i + 1)),
                ),
                &signer,
            )
            .unwrap();
        let s = Instant::now();
        store
            .append(&p, Some(r#"{"sources":[]}"#), None)
            .await
            .unwrap();
        lat.push(s.elapsed().as_secs_f64() * 1e3);
        // What the engine does next (crates/engine/src/log.rs): a signed checkpoint of the log.
        let s = Instant::now();
        let log = store.log().unwrap();
        let size = log.size().await.unwrap();
        let root = log.root(size).await.unwrap();
        let body = format!("bench.test/log\n{size}\n{}\n", hex::encode(root));
        let sig = ed25519_dalek::Signer::sign(&log_key, body.as_bytes());
        log.put_checkpoint(
            size,
            &format!("{body}\n\u{2014} bench {}\n", hex::encode(sig.to_bytes())),
        )
        .await
        .unwrap();
        cp.push(s.elapsed().as_secs_f64() * 1e3);
    }
    cp.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  append (1,000 on a {loaded}-pulse chain): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  checkpoint after each append (root from stored hashes, Ed25519 signature, stored): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&cp, 0.5),
        percentile(&cp, 0.99),
        cp[cp.len() - 1]
    );
    // Lookups by time: random instants over the whole chain, 8 at a time from one process.
    let total = 100_000u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let store: &dyn Store = store;
        tasks.push(async move {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ w;
            for _ in 0..total / 16 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let t = T0 + (x % (n * 60_000)) as i64;
                assert!(store.at_or_after(t).await.unwrap().is_some());
            }
        });
    }
    futures_util::future::join_all(tasks).await;
    println!(
        "  lookup by time: {:.0} per second ({total} lookups, 16 concurrent)",
        total as f64 / started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --benches` runs bench targets too; the real run is `cargo bench`
    }
    let n: u64 = args
        .iter()
        .position(|a| a == "--pulses")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let file = chain_file(n);
    // One thread drives every connection: the database needs the other core more than the client
    // needs a second one, and tasks never hop between threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bench.db");
        let sqlite = lavabeacon_store::SqliteStore::open(&format!("sqlite:{}", db.display()))
            .await
            .unwrap();
        measure("SQLite (WAL, synchronous=FULL)", &sqlite, &file, n).await;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(sqlite.pool())
            .await
            .unwrap();
        let bytes = std::fs::metadata(&db).unwrap().len();
        let count = sqlite.counts().await.unwrap().pulses;
        println!(
            "  storage: {:.0} bytes per pulse (whole database file, {count} pulses)",
            bytes as f64 / count as f64
        );
        drop(sqlite);

        let admin = std::env::var("LAVABEACON_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL for the benchmark");
        let name = format!("lbbench_{:08x}", rand::random::<u32>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        // Keep any query string (e.g. `?host=/var/run/postgresql` for a Unix socket).
        let (path, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), String::new()), |(p, q)| {
                (p, format!("?{q}"))
            });
        let url = format!("{}/{name}{query}", path.rsplit_once('/').unwrap().0);
        let pg = lavabeacon_store::PostgresStore::open(&url).await.unwrap();
        let how = if url.contains("host=/") {
            "PostgreSQL (Unix socket)"
        } else {
            "PostgreSQL (loopback TCP)"
        };
        measure(how, &pg, &file, n).await;
        sqlx::query("VACUUM ANALYZE")
            .execute(pg.pool())
            .await
            .unwrap();
        let (bytes, heap): (i64, i64) =
            sqlx::query_as("SELECT pg_total_relation_size('pulses'), pg_relation_size('pulses')")
                .fetch_one(pg.pool())
                .await
                .unwrap();
        let count = pg.counts().await.unwrap().pulses;
        println!(
            "  storage: {:.0} bytes per pulse with indexes and TOAST ({:.0} in the table itself)",
            bytes as f64 / count as f64,
            heap as f64 / count as f64
        );
        // The transparency log's tables (entries, subtree hashes, checkpoints), beside it.
        let log: i64 = sqlx::query_scalar(
            "SELECT pg_total_relation_size('log_entries') + pg_total_relation_size('log_hashes') \
             + pg_total_relation_size('log_checkpoints')",
        )
        .fetch_one(pg.pool())
        .await
        .unwrap();
        println!(
            "  the transparency log: {:.0} more bytes per pulse with indexes (entries, hashes, a checkpoint for each of the last 1,000)",
            log as f64 / count as f64
        );
        pg.pool().close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    });
}
