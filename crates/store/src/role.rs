//! [`Role`]: who opens the store, which decides what it may do and how long it waits.

use crate::error::StoreError;

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
    /// The engine: the one writer (with [`Leadership`](crate::Leadership)); runs the
    /// migrations. Its pool is its own: a process that also serves the API opens a second
    /// store for it.
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
            r => Err(StoreError::refused(format!(
                "this store was opened for the {} role, which never writes",
                r.name()
            ))),
        }
    }
}
