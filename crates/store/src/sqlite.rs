//! SQLite, the embedded default: one file under the data directory, WAL with
//! `synchronous=FULL` so a published pulse survives a power cut.

use crate::error::StoreError;
use crate::leader::{self, LeaderLock, Leadership};
use crate::lookup::{Lookup, Range};
use crate::pooled::{BeginAppend, PooledStore};
use crate::redact::scrub;
use crate::role::Role;
use crate::row::{PulseRow, RusqliteRow};
use crate::schema;
use crate::sql::{self, OneRow};
use crate::{Counts, Store};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::Pulse;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::path::PathBuf;
use std::time::Duration;

/// The SQLite store.
pub struct SqliteStore {
    /// Keeps the WAL checkpoint thread running (engine role only); dropping it ends the thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// The pool and the SQL both backends share.
    sql: PooledStore<Sqlite>,
    lock_path: PathBuf,
    /// Connections for one-pulse lookups, outside the async driver: a lookup is a few
    /// microseconds of SQLite, and sqlx's per-query hand-off to a worker thread costs far more.
    readers: std::sync::Mutex<Vec<rusqlite::Connection>>,
    /// The database file, symlinks resolved.
    file: PathBuf,
    busy: Duration,
}

/// `sqlite`, for errors and [`Store::backend`].
const BACKEND: &str = "sqlite";

/// SQLite allows 32,766 parameters per statement; 27 columns make 1,200 rows fit.
const ROWS_PER_INSERT: usize = 1_000;

fn fail(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(BACKEND, e)
}

/// Per role: pool size, how long a caller waits for a pool connection, SQLite's busy timeout.
fn limits(role: Role) -> (u32, Duration, Duration) {
    match role {
        // The engine writes one pulse a period and its few reads; nobody else uses its pool.
        Role::Engine => (2, Duration::from_secs(2), Duration::from_secs(2)),
        Role::Api => (4, Duration::from_secs(1), Duration::from_secs(1)),
        Role::Audit => (2, Duration::from_secs(1), Duration::from_secs(1)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by `url` (`sqlite:PATH`) for the
    /// engine, and runs the migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        Self::open_with(url, Role::Engine).await
    }

    /// Opens the database file named by `url` for `role` (see [`Role`]): only the engine
    /// creates the file and migrates it; the others need it to exist with this build's schema,
    /// and the audit role opens it read-only.
    pub async fn open_with(url: &str, role: Role) -> Result<SqliteStore, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
            return Err(StoreError::unavailable(
                BACKEND,
                format!(
                    "{url:?}: the store needs a database file, e.g. sqlite:./data/lavabeacon.db"
                ),
            ));
        }
        let given = PathBuf::from(path);
        let (max, acquire, busy) = limits(role);
        let mut options = SqliteConnectOptions::new()
            .filename(&given)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy);
        if role == Role::Engine {
            let dir = given
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::unavailable(BACKEND, format!("{}: {e}", dir.display())))?;
            // No checkpoint inside a commit: with readers streaming all the time a commit's
            // automatic checkpoint copies WAL frames and syncs the database file on the
            // engine's clock (seconds under load, measured). A thread of its own does it.
            options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", "0");
        } else {
            // Never create what is not there: a typo'd path is an error, not a new database.
            if !given.is_file() {
                return Err(StoreError::unavailable(
                    BACKEND,
                    format!(
                        "no database at {}{}",
                        given.display(),
                        if role == Role::Api {
                            " (an API node never creates one: run `lavabeacon engine` (or serve) \
                         once to create it)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            // Read-only connections: the database file is never written through them.
            options = options.create_if_missing(false).read_only(true);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::unavailable(BACKEND, format!("{path}: {}", scrub(&e.to_string())))
            })?;
        let migrator = sqlx::migrate!("../../migrations/sqlite");
        schema::check(path, &migrator, &applied(&pool).await?, role)?;
        if role == Role::Engine {
            migrator
                .run(&pool)
                .await
                .map_err(|e| StoreError::database(BACKEND, format!("{path}: migrations: {e}")))?;
        }
        // The real file, symlinks resolved: two paths to one database must find one lock.
        let file = std::fs::canonicalize(&given)
            .map_err(|e| StoreError::unavailable(BACKEND, format!("{}: {e}", given.display())))?;
        let dir = file.parent().map(PathBuf::from).unwrap_or_default();
        let checkpointer = (role == Role::Engine).then(|| checkpointer(file.clone()));
        Ok(SqliteStore {
            _checkpointer: checkpointer,
            sql: PooledStore {
                pool,
                role,
                backend: BACKEND,
            },
            lock_path: dir.join("leader.lock"),
            readers: std::sync::Mutex::new(Vec::new()),
            file,
            busy,
        })
    }

    /// The role this store was opened for.
    pub fn role(&self) -> Role {
        self.sql.role
    }

    /// The leader lock file this store uses: `leader.lock` beside the real database file.
    pub fn lock_path(&self) -> &std::path::Path {
        &self.lock_path
    }

    /// The connection pool, for tools that inspect the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.sql.pool
    }

    fn check_leader(&self, leader: Option<&Leadership>) -> Result<(), StoreError> {
        match leader.map(|l| &l.inner) {
            None => Ok(()),
            Some(LeaderLock::Sqlite { path, .. }) if *path == self.lock_path => Ok(()),
            Some(_) => Err(StoreError::lost_leadership(
                "the leadership given belongs to another store",
            )),
        }
    }
}

/// What only this backend does differently; the rest is [`PooledStore`].
impl SqliteStore {
    /// A one-pulse lookup on a read connection of our own. It runs on the calling thread: an
    /// indexed read of one row takes microseconds, less than a hand-off to sqlx's worker.
    fn one_row(&self, q: &OneRow) -> Result<Option<Pulse>, StoreError> {
        let conn = self.readers.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let result = read_one(&conn, q.sql, q.args());
        // A connection that failed is dropped, not reused.
        if result.is_ok() {
            self.readers.lock().expect("reader pool").push(conn);
        }
        result?.map(PulseRow::into_pulse).transpose()
    }

    fn open_reader(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let mode = if self.sql.role == Role::Engine {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = rusqlite::Connection::open_with_flags(
            &self.file,
            mode | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::unavailable(BACKEND, format!("{}: {e}", self.file.display())))?;
        conn.busy_timeout(self.busy)
            .map_err(StoreError::from_rusqlite)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

impl BeginAppend<Sqlite> for SqliteStore {
    /// Checks the leadership, then takes the write lock (BEGIN IMMEDIATE, so two writers
    /// serialise here instead of both extending the same head).
    async fn begin_append<'c>(
        &'c self,
        conn: &'c mut sqlx::SqliteConnection,
        _chain: u64,
        leader: Option<&'c Leadership>,
    ) -> Result<sqlx::Transaction<'c, Sqlite>, StoreError> {
        self.check_leader(leader)?;
        sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE")
            .await
            .map_err(fail)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        let manifests: Vec<(u64, u64, String)> = manifest
            .map(|m| (pulse.chain_index, pulse.pulse_index, m.to_string()))
            .into_iter()
            .collect();
        let run = std::slice::from_ref(pulse);
        self.sql
            .append_run(self, run, &manifests, leader, ROWS_PER_INSERT)
            .await
            .map(drop)
    }

    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
        self.sql
            .append_run(self, pulses, &[], None, ROWS_PER_INSERT)
            .await
    }

    async fn find(&self, lookup: Lookup) -> Result<Option<Pulse>, StoreError> {
        match sql::lookup(lookup) {
            Some(q) => self.one_row(&q),
            None => Ok(None),
        }
    }

    fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        self.sql.range(range)
    }

    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        self.sql.put_certificate(der).await
    }
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        self.sql.certificate(id).await
    }
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.sql.certificates().await
    }

    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError> {
        self.sql.put_manifests(manifests).await
    }
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        self.sql.manifest(chain, index).await
    }
    fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        self.sql.manifests_by_index(chain, from, to)
    }

    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.sql.put_pending_secret(chain, index, sealed).await
    }
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.sql.pending_secret(chain, index).await
    }
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError> {
        self.sql.drop_pending_secrets(chain, up_to_index).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.sql.counts().await
    }

    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError> {
        self.sql.role.refuse_writes()?;
        leader::lock_file(self.lock_path.clone(), wait).await
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// Starts the thread that checkpoints the WAL (PASSIVE: it never blocks a writer or a reader)
/// every [`CHECKPOINT_EVERY`]; it ends when the returned sender is dropped with the store.
fn checkpointer(file: PathBuf) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let conn = match rusqlite::Connection::open(&file) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("WAL checkpoints: cannot open {}: {e}", file.display());
                    return;
                }
            };
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("WAL checkpoint of {}: {e}", file.display());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("WAL checkpoints: no thread: {e}");
    }
    tx
}

/// Runs a pulse query that returns at most one row, on `conn`.
fn read_one(
    conn: &rusqlite::Connection,
    q: &str,
    args: &[i64],
) -> Result<Option<PulseRow>, StoreError> {
    let fail = StoreError::from_rusqlite;
    let mut stmt = conn.prepare_cached(q).map_err(fail)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(fail)?;
    let Some(r) = rows.next().map_err(fail)? else {
        return Ok(None);
    };
    PulseRow::decode(&RusqliteRow(r)).map(Some)
}

/// The schema versions the database has applied (none: never migrated).
async fn applied(pool: &SqlitePool) -> Result<schema::Applied, StoreError> {
    let table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await
    .map_err(fail)?;
    if !table {
        return Ok(schema::Applied {
            table,
            highest: None,
            failed: None,
        });
    }
    let (highest, failed): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MAX(CASE WHEN success THEN version END), MIN(CASE WHEN NOT success THEN version END) \
         FROM _sqlx_migrations",
    )
    .fetch_one(pool)
    .await
    .map_err(fail)?;
    Ok(schema::Applied {
        table,
        highest,
        failed,
    })
}
