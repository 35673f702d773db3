//! SQLite, the embedded default: one file under the data directory, WAL with
//! `synchronous=FULL` so a published pulse survives a power cut.

use crate::row::{push_row, PulseRow};
use crate::sql::{self, i, now_ms};
use crate::{check_extends, schema, scrub, Counts, LeaderLock, Leadership, Role, StoreError};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::PathBuf;
use std::time::Duration;

/// The SQLite store.
pub struct SqliteStore {
    /// Keeps the WAL checkpoint thread running (engine role only); dropping it ends the thread.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
    pool: SqlitePool,
    role: Role,
    lock_path: PathBuf,
    /// Connections for one-pulse lookups, outside the async driver: a lookup is a few
    /// microseconds of SQLite, and sqlx's per-query hand-off to a worker thread costs far more.
    readers: std::sync::Mutex<Vec<rusqlite::Connection>>,
    /// The database file, symlinks resolved.
    file: PathBuf,
    busy: Duration,
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
            return Err(StoreError::Unavailable(format!(
                "{url:?}: the store needs a database file, e.g. sqlite:./data/lavabeacon.db"
            )));
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
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
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
                return Err(StoreError::Unavailable(format!(
                    "no database at {}{}",
                    given.display(),
                    if role == Role::Api {
                        " (an API node never creates one: run `lavabeacon engine` (or serve) \
                         once to create it)"
                    } else {
                        ""
                    }
                )));
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
            .map_err(|e| StoreError::Unavailable(format!("{path}: {}", scrub(&e.to_string()))))?;
        let migrator = sqlx::migrate!("../../migrations/sqlite");
        schema::check(path, &migrator, &applied(&pool).await?, role)?;
        if role == Role::Engine {
            migrator
                .run(&pool)
                .await
                .map_err(|e| StoreError::Database(format!("{path}: migrations: {e}")))?;
        }
        // The real file, symlinks resolved: two paths to one database must find one lock.
        let file = std::fs::canonicalize(&given)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", given.display())))?;
        let dir = file.parent().map(PathBuf::from).unwrap_or_default();
        let checkpointer = (role == Role::Engine).then(|| checkpointer(file.clone()));
        Ok(SqliteStore {
            _checkpointer: checkpointer,
            pool,
            role,
            lock_path: dir.join("leader.lock"),
            readers: std::sync::Mutex::new(Vec::new()),
            file,
            busy,
        })
    }

    /// The role this store was opened for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader lock file this store uses: `leader.lock` beside the real database file.
    pub fn lock_path(&self) -> &std::path::Path {
        &self.lock_path
    }

    /// The connection pool, for tools that inspect the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn check_leader(&self, leader: Option<&Leadership>) -> Result<(), StoreError> {
        match leader.map(|l| &l.inner) {
            None => Ok(()),
            Some(LeaderLock::Sqlite { path, .. }) if *path == self.lock_path => Ok(()),
            Some(_) => Err(StoreError::LostLeadership(
                "the leadership given belongs to another store".into(),
            )),
        }
    }

    async fn insert(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rows: Vec<PulseRow>,
    ) -> Result<(), StoreError> {
        // SQLite allows 32,766 parameters per statement; 27 columns make 1,200 rows fit.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<PulseRow> = rows.by_ref().take(1_000).collect();
            let mut b = QueryBuilder::<Sqlite>::new(sql::INSERT_PREFIX);
            b.push_values(chunk, |mut b, r| push_row!(b, r));
            b.build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    async fn head(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        chain: u64,
    ) -> Result<(Option<(i64, i64, Vec<u8>)>, Option<i64>), StoreError> {
        let head: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(sql::HEAD)
            .bind(i(chain))
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let newest: Option<i64> = sqlx::query_scalar(sql::NEWEST_TIME)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok((head, newest))
    }
}

/// What only this backend does differently; the rest of `Store` is `store_impl!`.
impl SqliteStore {
    /// A one-pulse lookup (`store_impl!`) on a read connection of our own. It runs on the
    /// calling thread: an indexed read of one row takes microseconds, less than a hand-off.
    pub(crate) async fn one_row(
        &self,
        q: &'static str,
        args: &[i64],
    ) -> Result<Option<Pulse>, StoreError> {
        let conn = self.readers.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let result = read_one(&conn, q, args);
        // A connection that failed is dropped, not reused.
        if result.is_ok() {
            self.readers.lock().expect("reader pool").push(conn);
        }
        result?.map(PulseRow::into_pulse).transpose()
    }

    fn open_reader(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let mode = if self.role == Role::Engine {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = rusqlite::Connection::open_with_flags(
            &self.file,
            mode | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.file.display())))?;
        conn.busy_timeout(self.busy)
            .map_err(StoreError::from_rusqlite)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Begins an append: takes the write lock (BEGIN IMMEDIATE, so two writers serialise here
    /// instead of both extending the same head), checks the leadership, reads the head.
    async fn begin_append<'c>(
        &self,
        conn: &'c mut sqlx::SqliteConnection,
        chain: u64,
        leader: Option<&Leadership>,
    ) -> Result<
        (
            sqlx::Transaction<'c, Sqlite>,
            Option<(i64, i64, Vec<u8>)>,
            Option<i64>,
        ),
        StoreError,
    > {
        self.check_leader(leader)?;
        let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from_sqlx)?;
        let (head, newest) = Self::head(&mut tx, chain).await?;
        Ok((tx, head, newest))
    }

    pub(crate) async fn acquire_leadership_impl(
        &self,
        wait: Option<Duration>,
    ) -> Result<Leadership, StoreError> {
        let path = self.lock_path.clone();
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Leadership {
                        inner: LeaderLock::Sqlite { file, path },
                    })
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::Unavailable(format!("{}: {e}", path.display())))
                }
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(StoreError::LeaderBusy(format!(
                    "another writer holds {}",
                    path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

crate::store_impl!(SqliteStore, "sqlite");

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
    // The columns of `sql::select!`, in order.
    Ok(Some(PulseRow {
        chain_index: r.get(0).map_err(fail)?,
        pulse_index: r.get(1).map_err(fail)?,
        time_ms: r.get(2).map_err(fail)?,
        uri: r.get(3).map_err(fail)?,
        version: r.get(4).map_err(fail)?,
        cipher_suite: r.get(5).map_err(fail)?,
        period: r.get(6).map_err(fail)?,
        certificate_id: r.get(7).map_err(fail)?,
        local_random_value: r.get(8).map_err(fail)?,
        ext_source_id: r.get(9).map_err(fail)?,
        ext_status: r.get(10).map_err(fail)?,
        ext_value: r.get(11).map_err(fail)?,
        previous_value: r.get(12).map_err(fail)?,
        hour_value: r.get(13).map_err(fail)?,
        day_value: r.get(14).map_err(fail)?,
        month_value: r.get(15).map_err(fail)?,
        year_value: r.get(16).map_err(fail)?,
        previous_index: r.get(17).map_err(fail)?,
        hour_index: r.get(18).map_err(fail)?,
        day_index: r.get(19).map_err(fail)?,
        month_index: r.get(20).map_err(fail)?,
        year_index: r.get(21).map_err(fail)?,
        precommitment: r.get(22).map_err(fail)?,
        status_code: r.get(23).map_err(fail)?,
        signature: r.get(24).map_err(fail)?,
        output_value: r.get(25).map_err(fail)?,
        extra: r.get(26).map_err(fail)?,
    }))
}

/// The schema versions the database has applied (none: never migrated).
async fn applied(pool: &SqlitePool) -> Result<schema::Applied, StoreError> {
    let table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
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
    .map_err(StoreError::from_sqlx)?;
    Ok(schema::Applied {
        table,
        highest,
        failed,
    })
}
