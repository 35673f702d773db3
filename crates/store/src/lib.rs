//! # lavabeacon-store
//!
//! The pulse store: pulses, certificates, source manifests and sealed pending secrets, in
//! SQLite (embedded, the default) or PostgreSQL (production, replicas, standby engines). The
//! URL picks the backend at run time: [`open`].
//!
//! ## Layout
//! - [`Store`]: the trait the engine, API and auditors use; `sqlite.rs` and `postgres.rs`
//!   implement it, `row.rs` maps pulses to rows for both.
//! - The chain rules for appending live here, above storage ([`check_extends`]), so both
//!   backends enforce exactly the same ones; unique constraints and triggers back them up in
//!   the database itself (`migrations/`).
//! - [`skip_path`] plans a skip path with the trait's queries, for either backend.
//! - [`Leadership`]: one writer at a time.

mod postgres;
mod row;
mod shared;
mod sql;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::{output_value, signed_message};
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// What went wrong in the store. Variants are the cases a caller handles differently.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The pulse does not extend the head of its chain (a fork attempt, a replay, a race lost).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another writer holds the leader lock (waiting for it timed out).
    #[error("not the leader: {0}")]
    LeaderBusy(String),
    /// This writer no longer holds the leader lock; it must stop writing.
    #[error("leadership lost: {0}")]
    LostLeadership(String),
    /// The pulse cannot be stored (not a NIST-shaped pulse, values out of range).
    #[error("cannot store: {0}")]
    Unsupported(String),
    /// A stored row does not make a pulse (the database was altered behind our back).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database refused a change (an append-only trigger, a constraint).
    #[error("refused by the database: {0}")]
    Refused(String),
    /// The database cannot be reached or opened.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn from_sqlx(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!(
                "another pulse already has this index or time ({})",
                d.message()
            )),
            sqlx::Error::Database(d) if d.message().contains("append-only") => {
                StoreError::Refused(d.message().to_string())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// How many of each thing the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Pulses.
    pub pulses: u64,
    /// Distinct chains.
    pub chains: u64,
    /// Certificates.
    pub certificates: u64,
}

/// The store. Lookups return `Option`; appends check the chain rules in one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Appends `pulse` (and its source manifest) if it extends the head of its chain; with
    /// `leader`, only while that leadership is still held. Refused with `Conflict` otherwise.
    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError>;

    /// Loads many consecutive pulses fast (benchmarks, `import`). The first must extend its
    /// chain's head and each the one before, exactly as [`Store::append`] would check.
    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError>;

    /// The newest pulse of any chain.
    async fn last(&self) -> Result<Option<Pulse>, StoreError>;
    /// The newest pulse of a chain.
    async fn last_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError>;
    /// The first pulse of a chain.
    async fn first_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError>;
    /// A pulse by chain and index.
    async fn by_index(&self, chain: u64, index: u64) -> Result<Option<Pulse>, StoreError>;
    /// The pulse at `time_ms`, else the first after it.
    async fn at_or_after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError>;
    /// The newest pulse strictly before `time_ms`.
    async fn before(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError>;
    /// The oldest pulse strictly after `time_ms`.
    async fn after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError>;
    /// The first pulse of `chain` in the UTC `period` that contains `time_ms` (skip lists).
    async fn first_in_period(
        &self,
        chain: u64,
        period: Period,
        time_ms: i64,
    ) -> Result<Option<Pulse>, StoreError>;

    /// Pulses with `from_ms <= time < to_ms`, oldest first, streamed.
    fn range_by_time(&self, from_ms: i64, to_ms: i64) -> BoxStream<'_, Result<Pulse, StoreError>>;
    /// Pulses of `chain` with `from <= index <= to`, streamed.
    fn range_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<Pulse, StoreError>>;

    /// Stores a certificate (DER); storing the same one again is a no-op. Returns its id.
    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError>;
    /// A certificate's DER by id.
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores source manifests of pulses already stored (`import`), in one transaction.
    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError>;
    /// Every certificate (DER), oldest first.
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// A pulse's source manifest (JSON).
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError>;
    /// The manifests of pulses `from..=to` of `chain` that have one, in index order:
    /// (chain, index, manifest JSON).
    fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>>;
    /// Counts.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// Keeps the sealed secret for a pulse not yet published (replacing an older one).
    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError>;
    /// The sealed secret for a pulse not yet published.
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Forgets sealed secrets of pulses up to `index` (once published they are not secret).
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError>;

    /// Becomes the one writer: waits (as a standby) until the leader lock is free, up to
    /// `wait` (None: forever).
    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError>;
}

/// The leader lock: while it is held no other writer can hold it. Dropping it releases it.
pub struct Leadership {
    pub(crate) inner: LeaderLock,
}

pub(crate) enum LeaderLock {
    /// An exclusive lock on `<data dir>/leader.lock`, held by this open file.
    Sqlite {
        #[allow(dead_code)] // held, never read: closing it releases the lock
        file: std::fs::File,
        path: std::path::PathBuf,
    },
    /// A session advisory lock held by a dedicated connection.
    Postgres {
        conn: tokio::sync::Mutex<sqlx::PgConnection>,
        pid: i32,
    },
}

impl Leadership {
    /// For PostgreSQL, the server process id of the session holding the lock (what an operator
    /// sees in `pg_locks` and `pg_stat_activity`).
    pub fn postgres_pid(&self) -> Option<i32> {
        match &self.inner {
            LeaderLock::Postgres { pid, .. } => Some(*pid),
            LeaderLock::Sqlite { .. } => None,
        }
    }

    /// Checks that the lock is still held; an engine calls it before each pulse and stops
    /// writing on an error. (Appends with a leadership check it themselves too.)
    pub async fn check(&self) -> Result<(), StoreError> {
        match &self.inner {
            // The lock file stays locked while this process holds it open.
            LeaderLock::Sqlite { .. } => Ok(()),
            LeaderLock::Postgres { conn, pid } => {
                let mut conn = conn.lock().await;
                sqlx::query("SELECT 1")
                    .execute(&mut *conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        StoreError::LostLeadership(format!(
                            "the leader lock's session (pid {pid}) is gone: {e}"
                        ))
                    })
            }
        }
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            LeaderLock::Sqlite { path, .. } => {
                write!(f, "Leadership(lock file {})", path.display())
            }
            LeaderLock::Postgres { pid, .. } => {
                write!(f, "Leadership(advisory lock, backend pid {pid})")
            }
        }
    }
}

/// Opens the store a URL names, running its migrations: `sqlite:PATH` (or a path ending in
/// `.db`/`.sqlite`) or `postgres://…`. Credentials in the URL never appear in errors.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else if url.starts_with("sqlite:") || url.ends_with(".db") || url.ends_with(".sqlite") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Unavailable(format!(
            "unknown database URL {:?}: use sqlite:PATH or postgres://HOST/DB",
            redact(url)
        )))
    }
}

/// The URL with any password replaced by `***`.
///
/// ```
/// assert_eq!(lavabeacon_store::redact("postgres://beacon:hunter2@db/lb"), "postgres://beacon:***@db/lb");
/// assert_eq!(lavabeacon_store::redact("sqlite:data/lb.db"), "sqlite:data/lb.db");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{userinfo}@{host}")
            }
        }
        None => url.to_string(),
    }
}

/// The chain rules for appending, checked once for both backends: the pulse's own outputValue
/// is the hash of its M and signature; it extends the head of its chain (next index, previous =
/// head's outputValue, later time), or starts a new chain after every stored pulse.
pub fn check_extends(
    pulse: &Pulse,
    head: Option<(i64, i64, &[u8])>,
    newest_time_ms: Option<i64>,
) -> Result<(), StoreError> {
    let m = signed_message(pulse);
    if output_value(&m, &pulse.signature_value) != pulse.output_value {
        return Err(StoreError::Unsupported(format!(
            "pulse {}/{}: outputValue is not SHA-512(M ‖ signature)",
            pulse.chain_index, pulse.pulse_index
        )));
    }
    let time = pulse
        .time_ms()
        .map_err(|e| StoreError::Unsupported(e.to_string()))?;
    let at = format!("pulse {}/{}", pulse.chain_index, pulse.pulse_index);
    match head {
        None => {
            if pulse.pulse_index != 1 {
                return Err(StoreError::Conflict(format!(
                    "{at}: chain {} is empty, so the next pulse is 1",
                    pulse.chain_index
                )));
            }
            if let Some(newest) = newest_time_ms {
                if time <= newest {
                    return Err(StoreError::Conflict(format!(
                        "{at}: a new chain must start after the newest stored pulse ({newest} ms)"
                    )));
                }
            }
        }
        Some((index, head_time, output)) => {
            if pulse.pulse_index as i64 != index + 1 {
                return Err(StoreError::Conflict(format!(
                    "{at}: the head of chain {} is pulse {index}, so the next is {}",
                    pulse.chain_index,
                    index + 1
                )));
            }
            if pulse.previous().map(|h| &h.0[..]) != Some(output) {
                return Err(StoreError::Conflict(format!(
                    "{at}: previous is not the outputValue of pulse {index}"
                )));
            }
            if time <= head_time {
                return Err(StoreError::Conflict(format!(
                    "{at}: timeStamp is not after pulse {index}'s"
                )));
            }
        }
    }
    Ok(())
}

/// Checks that `pulses` is a run that extends the chain's head, each pulse the one before.
pub(crate) fn check_run(
    pulses: &[Pulse],
    head: Option<(i64, i64, Vec<u8>)>,
    newest_time_ms: Option<i64>,
) -> Result<(), StoreError> {
    let mut head = head;
    let mut newest = newest_time_ms;
    for p in pulses {
        check_extends(
            p,
            head.as_ref().map(|(i, t, o)| (*i, *t, o.as_slice())),
            newest,
        )?;
        let t = p
            .time_ms()
            .map_err(|e| StoreError::Unsupported(e.to_string()))?;
        head = Some((p.pulse_index as i64, t, p.output_value.0.to_vec()));
        newest = Some(t);
    }
    Ok(())
}

/// A skip path (spec §6) from pulse `from` to pulse `to` of `chain`, oldest first: from each
/// pulse, the farthest pulse not after `to` that names it in its listValues.
pub async fn skip_path(
    store: &dyn Store,
    chain: u64,
    from: u64,
    to: u64,
) -> Result<Option<Vec<Pulse>>, StoreError> {
    if from > to {
        return Ok(None);
    }
    let Some(mut cur) = store.by_index(chain, from).await? else {
        return Ok(None);
    };
    let mut path = vec![cur.clone()];
    while cur.pulse_index < to {
        let t = cur
            .time_ms()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut best = cur.pulse_index + 1;
        for period in Period::ALL {
            // cur is named by the first pulse after its period only if it is the first of it.
            let first = store.first_in_period(chain, period, t).await?;
            if first.as_ref().map(|f| f.pulse_index) != Some(cur.pulse_index) {
                continue;
            }
            let end = next_period_start(period, t);
            if let Some(next) = store.at_or_after(end).await? {
                if next.chain_index == chain
                    && next.pulse_index <= to
                    && next.period_value(period) == Some(&cur.output_value)
                {
                    best = best.max(next.pulse_index);
                }
            }
        }
        match store.by_index(chain, best).await? {
            Some(p) => cur = p,
            None => return Ok(None),
        }
        path.push(cur.clone());
    }
    Ok(Some(path))
}

fn next_period_start(period: Period, t: i64) -> i64 {
    // The start of the next period: step past the end of this one and take that period's start.
    let start = period.start_of(t).unwrap_or(t);
    let step = match period {
        Period::Hour => 3_600_000,
        Period::Day => 86_400_000,
        Period::Month => 32 * 86_400_000,
        Period::Year => 367 * 86_400_000,
    };
    period.start_of(start + step).unwrap_or(start + step)
}
