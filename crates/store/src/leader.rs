//! [`Leadership`]: one writer at a time. SQLite holds an exclusive lock on a file beside the
//! database, PostgreSQL a session advisory lock on a connection of its own; the in-memory fake
//! a flag. The backends take the lock (`acquire_leadership`); this is what is held.

use crate::error::StoreError;
use crate::redact::scrub;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The two keys of the leader's advisory lock: "LAVA", "BEAC".
pub(crate) const LOCK_KEYS: (i32, i32) = (0x4C41_5641, 0x4245_4143);
/// The transparency log's lock (transaction-scoped), "LAVA" "TLOG": other keys than the leader's.
pub(crate) const LOG_LOCK_KEYS: (i32, i32) = (0x4C41_5641, 0x544C_4F47);

/// Whether the calling session holds the leader lock (asked on the lock's own connection).
pub(crate) const HOLDS_OWN_LOCK: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks \
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $1::bigint::oid \
    AND objid = $2::bigint::oid AND objsubid = 2 AND granted)";

/// How long opening, or a leadership connection, waits for the server to answer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The fake store's lock: released when this guard drops.
    #[cfg(feature = "fake")]
    Memory(MemoryLock),
}

/// How long [`Leadership::check`] waits for the lock's session to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Leadership {
    /// For PostgreSQL, the server process id of the session holding the lock (what an operator
    /// sees in `pg_locks` and `pg_stat_activity`).
    pub fn postgres_pid(&self) -> Option<i32> {
        match &self.inner {
            LeaderLock::Postgres { pid, .. } => Some(*pid),
            _ => None,
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
            #[cfg(feature = "fake")]
            LeaderLock::Memory(_) => Ok(()),
            LeaderLock::Postgres {
                conn, pid, lost, ..
            } => {
                if lost.load(Ordering::SeqCst) {
                    return Err(StoreError::lost_leadership(format!(
                        "the leader lock's session (pid {pid}) was lost"
                    )));
                }
                let asked = tokio::time::timeout(CHECK_TIMEOUT, async {
                    let mut conn = conn.lock().await;
                    sqlx::query_scalar::<_, bool>(HOLDS_OWN_LOCK)
                        .bind(i64::from(LOCK_KEYS.0))
                        .bind(i64::from(LOCK_KEYS.1))
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
                Err(StoreError::lost_leadership(format!(
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
            #[cfg(feature = "fake")]
            LeaderLock::Memory(_) => write!(f, "Leadership(in memory)"),
        }
    }
}

/// The fake store's lock: a flag, held while this guard lives.
#[cfg(feature = "fake")]
pub(crate) struct MemoryLock(pub std::sync::Arc<AtomicBool>);

#[cfg(feature = "fake")]
impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Taking the lock.

/// SQLite: takes the exclusive lock on `path` (`leader.lock` beside the real database file),
/// trying every 200 ms up to `wait` (None: forever).
pub(crate) async fn lock_file(
    path: PathBuf,
    wait: Option<Duration>,
) -> Result<Leadership, StoreError> {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::unavailable("sqlite", format!("{}: {e}", path.display())))?;
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(Leadership {
                    inner: LeaderLock::Sqlite { file, path },
                })
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::unavailable(
                    "sqlite",
                    format!("{}: {e}", path.display()),
                ))
            }
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(StoreError::LeaderBusy {
                lock: path.display().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the leader lock, up to `wait` (None: forever), through database outages:
/// a failed connection or query is retried with backoff (a warning at most every 10 s),
/// and the lock is taken on a connection of its own that lives as long as the leadership.
pub(crate) async fn wait_for_advisory_lock(
    options: &PgConnectOptions,
    shown_url: &str,
    wait: Option<Duration>,
) -> Result<Leadership, StoreError> {
    let started = tokio::time::Instant::now();
    let deadline = wait.map(|w| started + w);
    let past =
        |d: Option<tokio::time::Instant>| d.is_some_and(|d| tokio::time::Instant::now() >= d);
    let mut session: Option<(sqlx::PgConnection, i32, i64)> = None;
    let mut backoff = Duration::from_millis(100);
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        match try_advisory_lock(options, shown_url, &mut session).await {
            Ok(true) => {
                let (conn, pid, started_us) = session.take().expect("the lock's session");
                if warned.is_some() {
                    tracing::info!(
                        database = %shown_url,
                        "the database is back; this engine holds the leader lock"
                    );
                }
                return Ok(Leadership {
                    inner: LeaderLock::Postgres {
                        conn: tokio::sync::Mutex::new(conn),
                        pid,
                        started_us,
                        lost: AtomicBool::new(false),
                    },
                });
            }
            Ok(false) => {
                backoff = Duration::from_millis(100);
                if past(deadline) {
                    return Err(StoreError::LeaderBusy {
                        lock: format!("the leader lock on {}", shown_url),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                // The session (if any) is unusable: the next try connects anew.
                session = None;
                if past(deadline) {
                    return Err(e);
                }
                if warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        database = %shown_url,
                        error = %e,
                        "waiting for the leader lock: the database cannot be reached; retrying"
                    );
                    warned = Some(tokio::time::Instant::now());
                }
                let sleep = match deadline {
                    Some(d) => {
                        backoff.min(d.saturating_duration_since(tokio::time::Instant::now()))
                    }
                    None => backoff,
                };
                tokio::time::sleep(sleep).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// One try at the lock: connects `session` if it is not connected yet, then asks.
async fn try_advisory_lock(
    options: &PgConnectOptions,
    shown_url: &str,
    session: &mut Option<(sqlx::PgConnection, i32, i64)>,
) -> Result<bool, StoreError> {
    if session.is_none() {
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(StoreError::unavailable(
                    "postgres",
                    format!("{}: {}", shown_url, scrub(&e.to_string())),
                ))
            }
            Err(_) => {
                return Err(StoreError::unavailable(
                    "postgres",
                    format!("{}: no answer within {CONNECT_TIMEOUT:?}", shown_url),
                ))
            }
        };
        let (pid, started_us): (i32, i64) = sqlx::query_as(
            "SELECT pg_backend_pid(), (extract(epoch FROM backend_start) * 1000000)::bigint \
             FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| StoreError::from_sqlx("postgres", e))?;
        *session = Some((conn, pid, started_us));
    }
    let (conn, _, _) = session.as_mut().expect("connected above");
    let asked = tokio::time::timeout(
        CONNECT_TIMEOUT,
        sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_KEYS.0)
            .bind(LOCK_KEYS.1)
            .fetch_one(conn),
    )
    .await;
    match asked {
        Ok(r) => r.map_err(|e| StoreError::from_sqlx("postgres", e)),
        Err(_) => Err(StoreError::unavailable(
            "postgres",
            format!("{}: no answer within {CONNECT_TIMEOUT:?}", shown_url),
        )),
    }
}
