//! # lavabeacon-store
//!
//! The pulse store: pulses, certificates, source manifests and sealed pending secrets, in
//! SQLite (embedded, the default) or PostgreSQL (production, replicas, standby engines). The
//! URL picks the backend at run time: [`open`] (for the engine) or [`open_with`] and a
//! [`Role`] (the engine, an API node, an offline audit), which decides whether the store
//! migrates, may write, may create an SQLite file, and how long its reads wait.
//!
//! ## Under faults
//! - Range reads ([`Store::range_by_time`], [`Store::range_by_index`],
//!   [`Store::manifests_by_index`]) go page by page and never hold a connection while their
//!   consumer is slow.
//! - PostgreSQL pools test each connection before use and reconnect by themselves after a
//!   server restart; API reads give up within about a second while the database is down.
//! - [`Leadership`] waits through outages and reports the lock lost when its session died.
//! - [`StoreError::category`] is a public word; the text is for the operator's log, with
//!   passwords removed ([`redact`]).
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
mod redact;
mod row;
mod schema;
mod shared;
mod sql;
mod sqlite;

pub use redact::redact;
pub(crate) use redact::scrub;

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

/// What went wrong in the store. Variants are the cases a caller handles differently. The
/// text is for the operator's log (never with a password in it); [`StoreError::category`] is
/// the short word the public may see.
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
    /// The database refused a change (an append-only trigger, a constraint, a read-only store).
    #[error("refused by the database: {0}")]
    Refused(String),
    /// The database cannot be reached or opened.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The disk (or the database's space) is full: SQLITE_FULL, PostgreSQL's 53100, ENOSPC.
    /// Nothing was written; the same write succeeds once there is space again.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The database's schema is not the one this build expects (older: not migrated yet;
    /// newer: this lavabeacon is older than the database).
    #[error("schema version mismatch: {0}")]
    Schema(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// A short public word for the error (what `/health` may show to anyone); the full text,
    /// from `Display`, is for the operator's log.
    pub fn category(&self) -> &'static str {
        match self {
            StoreError::Conflict(_) => "conflict",
            StoreError::LeaderBusy(_) => "not the leader",
            StoreError::LostLeadership(_) => "leadership lost",
            StoreError::Unsupported(_) => "cannot store",
            StoreError::Corrupt(_) => "corrupt data",
            StoreError::Refused(_) => "refused by the database",
            StoreError::Unavailable(_) => "database unavailable",
            StoreError::DiskFull(_) => "disk full",
            StoreError::Schema(_) => "schema version mismatch",
            StoreError::Database(_) => "database error",
        }
    }

    pub(crate) fn from_sqlx(e: sqlx::Error) -> StoreError {
        let text = || scrub(&e.to_string());
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!(
                "another pulse already has this index or time ({})",
                scrub(d.message())
            )),
            sqlx::Error::Database(d) if d.message().contains("append-only") => {
                StoreError::Refused(scrub(d.message()))
            }
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                let kind = if d
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    postgres_kind(&code)
                } else {
                    sqlite_kind(code.parse().unwrap_or(-1))
                };
                kind(text())
            }
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::DiskFull(text())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(text()),
            _ => StoreError::Database(text()),
        }
    }

    pub(crate) fn from_rusqlite(e: rusqlite::Error) -> StoreError {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _) => sqlite_kind(f.extended_code),
            _ => StoreError::Database,
        };
        kind(scrub(&e.to_string()))
    }
}

/// The variant for a PostgreSQL SQLSTATE.
fn postgres_kind(code: &str) -> fn(String) -> StoreError {
    match code {
        "53100" => StoreError::DiskFull,
        // Connection exceptions, too many connections, out of memory, the server shutting
        // down or starting up: all pass once the server is back.
        c if c.starts_with("08") => StoreError::Unavailable,
        "53200" | "53300" | "57P01" | "57P02" | "57P03" => StoreError::Unavailable,
        // A write on a read-only session (an API node, a hot standby).
        "25006" => StoreError::Refused,
        "XX001" | "XX002" => StoreError::Corrupt,
        _ => StoreError::Database,
    }
}

/// The variant for an SQLite (extended) result code.
fn sqlite_kind(code: i32) -> fn(String) -> StoreError {
    match code & 0xff {
        13 => StoreError::DiskFull,            // SQLITE_FULL
        5 | 6 | 14 => StoreError::Unavailable, // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN
        8 => StoreError::Refused,              // SQLITE_READONLY
        11 | 26 => StoreError::Corrupt,        // SQLITE_CORRUPT, SQLITE_NOTADB
        _ => StoreError::Database,
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
    /// An exclusive lock on `leader.lock` beside the real database file (symlinks resolved),
    /// held by this open file.
    Sqlite {
        #[allow(dead_code)] // held, never read: closing it releases the lock
        file: std::fs::File,
        path: std::path::PathBuf,
    },
    /// A session advisory lock held by a dedicated connection.
    Postgres {
        conn: tokio::sync::Mutex<sqlx::PgConnection>,
        pid: i32,
        /// The session's `backend_start` (µs since the epoch): with the pid, it names this very
        /// session, even if a later session gets the same pid.
        started_us: i64,
        /// Set once the lock is known lost; it never comes back (acquire a new one).
        lost: std::sync::atomic::AtomicBool,
    },
}

/// How long [`Leadership::check`] waits for the lock's session to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Leadership {
    /// For PostgreSQL, the server process id of the session holding the lock (what an operator
    /// sees in `pg_locks` and `pg_stat_activity`).
    pub fn postgres_pid(&self) -> Option<i32> {
        match &self.inner {
            LeaderLock::Postgres { pid, .. } => Some(*pid),
            LeaderLock::Sqlite { .. } => None,
        }
    }

    /// Checks that the lock is still held; an engine calls it before each pulse and, on
    /// `LostLeadership`, drops this leadership and acquires a new one. (Appends with a
    /// leadership check it themselves too.) For PostgreSQL it asks the lock's own session
    /// whether it still holds the lock: after a server restart (or a killed session) that
    /// session is gone, and so is the lock. Once lost, always lost.
    pub async fn check(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        match &self.inner {
            // The lock file stays locked while this process holds it open.
            LeaderLock::Sqlite { .. } => Ok(()),
            LeaderLock::Postgres {
                conn, pid, lost, ..
            } => {
                if lost.load(Ordering::SeqCst) {
                    return Err(StoreError::LostLeadership(format!(
                        "the leader lock's session (pid {pid}) was lost"
                    )));
                }
                let asked = tokio::time::timeout(CHECK_TIMEOUT, async {
                    let mut conn = conn.lock().await;
                    sqlx::query_scalar::<_, bool>(postgres::HOLDS_OWN_LOCK)
                        .bind(i64::from(postgres::LOCK_KEYS.0))
                        .bind(i64::from(postgres::LOCK_KEYS.1))
                        .fetch_one(&mut *conn)
                        .await
                })
                .await;
                let why = match asked {
                    Ok(Ok(true)) => return Ok(()),
                    Ok(Ok(false)) => "no longer holds it".to_string(),
                    Ok(Err(e)) => format!("is gone: {}", scrub(&e.to_string())),
                    Err(_) => format!("did not answer within {CHECK_TIMEOUT:?}"),
                };
                lost.store(true, Ordering::SeqCst);
                Err(StoreError::LostLeadership(format!(
                    "the leader lock's session (pid {pid}) {why}"
                )))
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

/// Who opens the store, which decides what it may do and how long it waits.
///
/// | | Engine | Api | Audit |
/// |---|---|---|---|
/// | migrations | runs them | never; checks the schema version | never; checks it |
/// | writes | yes | refused (`Refused`) | refused; SQLite opened read-only |
/// | SQLite file missing | created | "no database at …" | "no database at …" |
/// | pool (SQLite / PostgreSQL) | 2 / 4 connections | 4 / 8 | 2 / 2 |
/// | waits for a connection | 2 s | 1 s | 1 s |
/// | SQLite busy timeout | 2 s | 1 s | 1 s |
///
/// PostgreSQL connections of the Api and Audit roles are read-only sessions
/// (`default_transaction_read_only`), so they work on a hot standby and cannot write even by
/// mistake. Every PostgreSQL pool pings a connection before handing it out, so a connection
/// left stale by a server restart is replaced instead of failing the caller's query; the pool
/// reconnects by itself once the server is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The engine: the one writer (with [`Leadership`]); runs the migrations. Its pool is its
    /// own: a process that also serves the API opens a second store for it.
    Engine,
    /// An API node: reads only, fails fast (a read waits at most about 1 s for the database).
    Api,
    /// An offline tool (`replay --database`, `export`): reads only, never creates or changes
    /// anything, not even an SQLite file or its directory.
    Audit,
}

impl Role {
    /// `engine`, `api` or `audit`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Engine => "engine",
            Role::Api => "api",
            Role::Audit => "audit",
        }
    }

    pub(crate) fn refuse_writes(self) -> Result<(), StoreError> {
        match self {
            Role::Engine => Ok(()),
            r => Err(StoreError::Refused(format!(
                "this store was opened for the {} role, which never writes",
                r.name()
            ))),
        }
    }
}

/// Opens the store a URL names for the engine ([`Role::Engine`]), running its migrations:
/// `sqlite:PATH` (or a path ending in `.db`/`.sqlite`) or `postgres://…`. Credentials in the
/// URL never appear in errors.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, Role::Engine).await
}

/// Opens the store a URL names for `role` (see [`Role`]).
pub async fn open_with(url: &str, role: Role) -> Result<Arc<dyn Store>, StoreError> {
    redact::remember(url);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open_with(url, role).await?))
    } else if url.starts_with("sqlite:") || url.ends_with(".db") || url.ends_with(".sqlite") {
        Ok(Arc::new(SqliteStore::open_with(url, role).await?))
    } else {
        Err(StoreError::Unavailable(format!(
            "unknown database URL {:?}: use sqlite:PATH or postgres://HOST/DB",
            redact(url)
        )))
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
            let Some(end) = period.next_start(t) else {
                continue;
            };
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
