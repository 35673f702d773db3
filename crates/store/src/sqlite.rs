//! SQLite, the embedded default: one file under the data directory, WAL with
//! `synchronous=FULL` so a published pulse survives a power cut.

use crate::error::StoreError;
use crate::leader::{self, LeaderLock, Leadership};
use crate::lookup::{Lookup, Range};
use crate::pooled::{BeginAppend, PooledStore};
use crate::redact::scrub;
use crate::role::Role;
use crate::row::RowView;
use crate::schema;
use crate::sql::{self, OneRow};
use crate::{Counts, Store};
use futures_util::stream::{BoxStream, StreamExt};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::Pulse;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The SQLite store.
pub struct SqliteStore {
    /// Keeps the WAL checkpoint thread running (engine role only); dropping it ends the thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// The pool and the SQL both backends share.
    sql: PooledStore<Sqlite>,
    lock_path: PathBuf,
    /// Connections for pulse and manifest reads, outside the async driver.
    readers: Arc<Readers>,
}

/// Read connections of our own (rusqlite), for one-pulse lookups and range reads. A lookup is
/// a few microseconds of SQLite, and sqlx's per-query hand-off to its worker thread costs far
/// more; a range read through sqlx copied every row into the driver's own row type, handed it
/// across threads, then decoded it again: most of the time `replay --database` and the bulk
/// routes spent on a row (measured with callgrind on a 5,000,000-pulse store).
struct Readers {
    /// The database file, symlinks resolved.
    file: PathBuf,
    busy: Duration,
    /// Read-write for the engine (its own WAL), read-only for the other roles.
    writable: bool,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
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
            readers: Arc::new(Readers {
                file,
                busy,
                writable: role == Role::Engine,
                idle: std::sync::Mutex::new(Vec::new()),
            }),
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
        self.readers.with(|conn| read_one(conn, q.sql, q.args()))
    }

    /// A range read, a page at a time, each page read on tokio's blocking pool (a page is a
    /// millisecond or more of SQLite: too long for an async worker the API's requests share),
    /// each row read straight into a pulse there.
    fn pages(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        let (sql, first, args): (&'static str, i64, [i64; 3]) = match range {
            Range::ByTime { from_ms, to_ms } => {
                (sql::RANGE_BY_TIME_PAGE.as_str(), from_ms, [to_ms, 0, 0])
            }
            Range::ByIndex { chain, from, to } => (
                sql::RANGE_BY_INDEX_PAGE.as_str(),
                sql::db_int(from),
                [sql::db_int(chain), sql::db_int(to), 0],
            ),
        };
        let by_time = matches!(range, Range::ByTime { .. });
        let readers = self.readers.clone();
        sql::paged(
            first,
            move |cursor, limit| {
                let readers = readers.clone();
                // The statement's parameters in its order: ByTime (cursor, to, limit), ByIndex
                // (chain, cursor, to, limit).
                let params: Vec<i64> = if by_time {
                    vec![cursor, args[0], limit]
                } else {
                    vec![args[0], cursor, args[1], limit]
                };
                async move {
                    blocking(move || {
                        readers.with(|conn| {
                            read_rows(conn, sql, &params, |r| {
                                RowView::of_rusqlite(r)?.into_pulse()
                            })
                        })
                    })
                    .await
                }
            },
            if by_time {
                // A pulse read from the store has a readable time (it was stored by it).
                |p: &Pulse| p.time_ms().ok()?.checked_add(1)
            } else {
                |p: &Pulse| i64::try_from(p.pulse_index).ok()?.checked_add(1)
            },
        )
    }

    /// The manifests of pulses `from..=to` of `chain`, as [`SqliteStore::pages`] reads pulses.
    fn manifest_pages(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        let readers = self.readers.clone();
        let (chain, to) = (sql::db_int(chain), sql::db_int(to));
        sql::paged(
            sql::db_int(from),
            move |cursor, limit| {
                let readers = readers.clone();
                async move {
                    blocking(move || {
                        readers.with(|conn| {
                            read_rows(
                                conn,
                                sql::MANIFESTS_PAGE,
                                &[chain, cursor, to, limit],
                                |r| {
                                    Ok((
                                        r.get::<_, i64>(0).map_err(StoreError::from_rusqlite)?,
                                        r.get::<_, i64>(1).map_err(StoreError::from_rusqlite)?,
                                        r.get::<_, String>(2).map_err(StoreError::from_rusqlite)?,
                                    ))
                                },
                            )
                        })
                    })
                    .await
                }
            },
            |r: &(i64, i64, String)| r.1.checked_add(1),
        )
        .map(|r| r.map(|(c, p, m)| (c as u64, p as u64, m)))
        .boxed()
    }
}

impl Readers {
    /// Runs `read` on an idle connection (opening one if none is idle) and gives the
    /// connection back, unless the read failed: a connection that failed is dropped, not
    /// reused.
    fn with<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.idle.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open()?,
        };
        let result = read(&conn);
        if result.is_ok() {
            self.idle.lock().expect("reader pool").push(conn);
        }
        result
    }

    fn open(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let mode = if self.writable {
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

/// Runs `read` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| StoreError::database(BACKEND, format!("a read's thread failed: {e}")))?
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
    /// BEGIN IMMEDIATE: SQLite's one writer at a time is the log's lock.
    async fn begin_log<'c>(
        &'c self,
        conn: &'c mut sqlx::SqliteConnection,
    ) -> Result<sqlx::Transaction<'c, Sqlite>, StoreError> {
        sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE")
            .await
            .map_err(fail)
    }

    /// Nothing to take: the append's BEGIN IMMEDIATE already excludes every other writer.
    async fn lock_log<'t>(
        &'t self,
        _tx: &'t mut sqlx::Transaction<'_, Sqlite>,
    ) -> Result<(), StoreError> {
        Ok(())
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
        self.pages(range)
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
    async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError> {
        self.sql.put_external_source(description).await
    }
    async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError> {
        self.sql.external_source(id).await
    }
    async fn external_sources(&self) -> Result<Vec<String>, StoreError> {
        self.sql.external_sources().await
    }
    async fn put_key_switch(&self, s: &crate::KeySwitch) -> Result<(), StoreError> {
        self.sql.put_key_switch(s).await
    }
    async fn key_switches(&self) -> Result<Vec<crate::KeySwitch>, StoreError> {
        self.sql.key_switches().await
    }
    async fn put_draw(
        &self,
        d: &crate::StoredDraw,
        log_entry: &[u8],
    ) -> Result<crate::StoredDraw, StoreError> {
        self.sql.put_draw_logged(self, d, log_entry).await
    }
    fn log(&self) -> Result<&dyn crate::Log, StoreError> {
        Ok(self)
    }
    async fn draw(&self, id: &Hash512) -> Result<Option<crate::StoredDraw>, StoreError> {
        self.sql.draw(id).await
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
        self.manifest_pages(chain, from, to)
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

/// Runs a query that returns rows, on `conn`, each row read by `each`.
fn read_rows<T>(
    conn: &rusqlite::Connection,
    q: &str,
    args: &[i64],
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let fail = StoreError::from_rusqlite;
    let mut stmt = conn.prepare_cached(q).map_err(fail)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(fail)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(fail)? {
        out.push(each(r)?);
    }
    Ok(out)
}

/// Runs a pulse query that returns at most one row, on `conn`.
fn read_one(
    conn: &rusqlite::Connection,
    q: &str,
    args: &[i64],
) -> Result<Option<Pulse>, StoreError> {
    let fail = StoreError::from_rusqlite;
    let mut stmt = conn.prepare_cached(q).map_err(fail)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(fail)?;
    let Some(r) = rows.next().map_err(fail)? else {
        return Ok(None);
    };
    RowView::of_rusqlite(r)?.into_pulse().map(Some)
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

crate::log::log_for!(SqliteStore);
