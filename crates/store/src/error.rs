//! [`StoreError`]: what went wrong, as the cases a caller handles differently, each with the
//! fields that case knows (which pulse conflicted, which backend was unreachable), and the
//! mapping of both drivers' errors onto it.

use crate::redact::scrub;
use thiserror::Error;

/// What went wrong in the store. Variants are the cases a caller handles differently. The
/// text is for the operator's log (never with a password in it); [`StoreError::category`] is
/// the short word the public may see.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The pulse does not extend the head of its chain (a fork attempt, a replay, a race lost).
    /// `chain`/`index` name the refused pulse (for a bulk write, the first of the run).
    #[error("conflict: pulse {chain}/{index}: {reason}")]
    Conflict {
        /// chainIndex of the refused pulse.
        chain: u64,
        /// pulseIndex of the refused pulse.
        index: u64,
        /// Which rule it breaks.
        reason: String,
    },
    /// Another writer holds the leader lock (waiting for it timed out).
    #[error("not the leader: another writer holds {lock}")]
    LeaderBusy {
        /// The lock: the lock file's path, or "the leader lock on" a redacted URL.
        lock: String,
    },
    /// This writer no longer holds the leader lock; it must stop writing.
    #[error("leadership lost: {reason}")]
    LostLeadership {
        /// Why it is known lost.
        reason: String,
    },
    /// The pulse cannot be stored (not a NIST-shaped pulse, values out of range).
    #[error("cannot store: {reason}")]
    Unsupported {
        /// What about the pulse the store cannot keep.
        reason: String,
    },
    /// A stored row does not make a pulse (the database was altered behind our back).
    #[error("corrupt row: {detail}")]
    Corrupt {
        /// Which row and what is wrong with it.
        detail: String,
    },
    /// The database refused a change (an append-only trigger, a constraint, a read-only store).
    #[error("refused by the database: {detail}")]
    Refused {
        /// The database's (or the role's) reason.
        detail: String,
    },
    /// The database cannot be reached or opened.
    #[error("database unavailable: {detail}")]
    Unavailable {
        /// `sqlite` or `postgres`; `unknown` when the URL names neither.
        backend: &'static str,
        /// The driver's reason, passwords removed.
        detail: String,
    },
    /// The disk (or the database's space) is full: SQLITE_FULL, PostgreSQL's 53100, ENOSPC.
    /// Nothing was written; the same write succeeds once there is space again.
    #[error("disk full: {detail}")]
    DiskFull {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The driver's reason.
        detail: String,
    },
    /// The database's schema is not the one this build expects (older: not migrated yet;
    /// newer: this lavabeacon is older than the database).
    #[error("schema version mismatch: {detail}")]
    Schema {
        /// The versions found and expected, and what to do.
        detail: String,
    },
    /// Any other database error.
    #[error("database error: {detail}")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The driver's reason, passwords removed.
        detail: String,
    },
}

impl StoreError {
    /// A short public word for the error (what `/health` may show to anyone); the full text,
    /// from `Display`, is for the operator's log.
    pub fn category(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "conflict",
            StoreError::LeaderBusy { .. } => "not the leader",
            StoreError::LostLeadership { .. } => "leadership lost",
            StoreError::Unsupported { .. } => "cannot store",
            StoreError::Corrupt { .. } => "corrupt data",
            StoreError::Refused { .. } => "refused by the database",
            StoreError::Unavailable { .. } => "database unavailable",
            StoreError::DiskFull { .. } => "disk full",
            StoreError::Schema { .. } => "schema version mismatch",
            StoreError::Database { .. } => "database error",
        }
    }

    /// `Unavailable` for `backend`.
    pub fn unavailable(backend: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            backend,
            detail: detail.into(),
        }
    }

    /// `Database` for `backend`.
    pub fn database(backend: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Database {
            backend,
            detail: detail.into(),
        }
    }

    /// `Unsupported`.
    pub fn unsupported(reason: impl Into<String>) -> StoreError {
        StoreError::Unsupported {
            reason: reason.into(),
        }
    }

    /// `Corrupt`.
    pub fn corrupt(detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            detail: detail.into(),
        }
    }

    /// `Refused`.
    pub fn refused(detail: impl Into<String>) -> StoreError {
        StoreError::Refused {
            detail: detail.into(),
        }
    }

    /// `LostLeadership`.
    pub fn lost_leadership(reason: impl Into<String>) -> StoreError {
        StoreError::LostLeadership {
            reason: reason.into(),
        }
    }

    /// The error for a failed sqlx call on `backend`. A unique violation is only possible
    /// where pulses or manifests are inserted, and those calls name the pulse
    /// ([`StoreError::from_insert`]); anywhere else it is a plain database error.
    pub(crate) fn from_sqlx(backend: &'static str, e: sqlx::Error) -> StoreError {
        let text = || scrub(&e.to_string());
        match &e {
            sqlx::Error::Database(d) if d.message().contains("append-only") => {
                StoreError::refused(scrub(d.message()))
            }
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                let kind = if backend == "postgres" {
                    postgres_kind(&code)
                } else {
                    sqlite_kind(code.parse().unwrap_or(-1))
                };
                kind.make(backend, text())
            }
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::DiskFull {
                    backend,
                    detail: text(),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::unavailable(backend, text()),
            _ => StoreError::database(backend, text()),
        }
    }

    /// The error for a failed insert of pulse `chain`/`index` (or of its manifest): a unique
    /// violation is a [`StoreError::Conflict`] on it.
    pub(crate) fn from_insert(
        backend: &'static str,
        chain: u64,
        index: u64,
        e: sqlx::Error,
    ) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
                chain,
                index,
                reason: format!(
                    "another pulse already has this index or time ({})",
                    scrub(d.message())
                ),
            },
            _ => StoreError::from_sqlx(backend, e),
        }
    }

    pub(crate) fn from_rusqlite(e: rusqlite::Error) -> StoreError {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _) => sqlite_kind(f.extended_code),
            _ => Kind::Database,
        };
        kind.make("sqlite", scrub(&e.to_string()))
    }
}

/// Which variant a driver's error code maps to.
enum Kind {
    DiskFull,
    Unavailable,
    Refused,
    Corrupt,
    Database,
}

impl Kind {
    fn make(self, backend: &'static str, detail: String) -> StoreError {
        match self {
            Kind::DiskFull => StoreError::DiskFull { backend, detail },
            Kind::Unavailable => StoreError::Unavailable { backend, detail },
            Kind::Refused => StoreError::Refused { detail },
            Kind::Corrupt => StoreError::Corrupt { detail },
            Kind::Database => StoreError::Database { backend, detail },
        }
    }
}

/// The variant for a PostgreSQL SQLSTATE.
fn postgres_kind(code: &str) -> Kind {
    match code {
        "53100" => Kind::DiskFull,
        // Connection exceptions, too many connections, out of memory, the server shutting
        // down or starting up: all pass once the server is back.
        c if c.starts_with("08") => Kind::Unavailable,
        "53200" | "53300" | "57P01" | "57P02" | "57P03" => Kind::Unavailable,
        // A write on a read-only session (an API node, a hot standby).
        "25006" => Kind::Refused,
        "XX001" | "XX002" => Kind::Corrupt,
        _ => Kind::Database,
    }
}

/// The variant for an SQLite (extended) result code.
fn sqlite_kind(code: i32) -> Kind {
    match code & 0xff {
        13 => Kind::DiskFull,            // SQLITE_FULL
        5 | 6 | 14 => Kind::Unavailable, // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN
        8 => Kind::Refused,              // SQLITE_READONLY
        11 | 26 => Kind::Corrupt,        // SQLITE_CORRUPT, SQLITE_NOTADB
        _ => Kind::Database,
    }
}
