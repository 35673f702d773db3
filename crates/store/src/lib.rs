//! # lavabeacon-store
//!
//! The pulse store: pulses, certificates, external sources' descriptions, source manifests,
//! sealed pending secrets and the signing-key schedule, in
//! SQLite (embedded, the default) or PostgreSQL (production, replicas, standby engines). The
//! URL picks the backend at run time: [`open`] (for the engine) or [`open_with`] and a
//! [`Role`] (the engine, an API node, an offline audit), which decides whether the store
//! migrates, may write, may create an SQLite file, and how long its reads wait.
//!
//! ## The trait, and the calls on top of it
//! [`Store`] is small on purpose, so that a backend or a fake has little to write: pulses go in
//! with [`Store::append`] (or [`Store::bulk_load`]) and come out through two questions,
//! [`Store::find`] with a [`Lookup`] and [`Store::range`] with a [`Range`]; then what the store
//! keeps besides pulses, each a few plain calls: certificates, source manifests, pending
//! secrets, counts and the leader lock.
//!
//! The named calls callers use (`store.last()`, `store.by_index(chain, i)`,
//! `store.range_by_time(from, to)`, …) are inherent methods of `dyn Store` (an
//! `impl dyn Store` block), each one line over `find` or `range`. Inherent rather than an
//! extension trait because every caller holds an `Arc<dyn Store>`: the calls work without an
//! import, and no implementation can give one of them a second meaning.
//!
//! ## Under faults
//! - Range reads ([`Store::range`], [`Store::manifests_by_index`]) go page by page and never
//!   hold a connection while their consumer is slow.
//! - PostgreSQL pools test each connection before use and reconnect by themselves after a
//!   server restart; API reads give up within about a second while the database is down.
//! - [`Leadership`] waits through outages and reports the lock lost when its session died.
//! - [`StoreError::category`] is a public word; the text is for the operator's log, with
//!   passwords removed ([`redact`]).
//!
//! # Layout
//! - `lib.rs`: the [`Store`] trait, the named calls on `dyn Store`, [`open`]/[`open_with`],
//!   [`Counts`].
//! - `lookup.rs`: [`Lookup`] and [`Range`], every pulse question the trait answers.
//! - `error.rs`: [`StoreError`] and the mapping of both drivers' errors onto it.
//! - `role.rs`: [`Role`]. `leader.rs`: [`Leadership`], the lock a writer holds.
//! - `append.rs`: the check before an append, which calls the format crate's one append rule
//!   ([`lavabeacon_format::chain::check_append`]) so the store, the verifier and the engine
//!   agree; unique constraints and triggers back it up in the database (`migrations/`).
//! - `sqlite.rs`, `postgres.rs`: what differs per backend (opening, serialising writers, the
//!   leader lock, SQLite's reads through rusqlite). `pooled.rs`: the rest of both, as plain
//!   generic code over a sqlx pool. `sql.rs`: the SQL text; `row.rs`: the one mapping between
//!   a pulse and a row (the column table, encode, decode); `schema.rs`: the schema version
//!   check; `redact.rs`: passwords out of every message.
//! - `log.rs`: the transparency log's tables ([`Log`]): entries and subtree hashes written in
//!   the append's transaction under the log's lock, checkpoints, cosignatures, a witness's
//!   state; proofs and roots made from stored hashes (`lavabeacon_tlog::merkle`).
//! - `skip_path.rs`: [`skip_path`], planned with the trait's lookups, for any store.
//! - [`KeySwitch`], [`key_switch_at`] and [`key_switch_followed`] (here): the signing-key
//!   schedule every engine follows, and the one rule for which switch it follows.
//! - `fake/` (feature `fake`): `fake::FakeStore`, a store in memory, and `fake::FaultyStore`,
//!   which injects faults around any store, for other crates' tests.

mod append;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod leader;
mod log;
mod lookup;
mod pooled;
mod postgres;
mod redact;
mod role;
mod row;
mod schema;
mod skip_path;
mod sql;
mod sqlite;

pub use error::StoreError;
pub use leader::Leadership;
pub use log::Log;
pub use lookup::{Lookup, Range};
pub use postgres::PostgresStore;
pub use redact::{redact, redact_urls};
pub use role::Role;
pub use skip_path::skip_path;
pub use sqlite::SqliteStore;

use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use std::sync::Arc;
use std::time::Duration;

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

/// A scheduled change of signing key: from `at_ms` on, pulses are signed with the key
/// `key_label` and belong to chain `chain` (one more than before starts a new chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySwitch {
    /// The first pulse time signed with this key, Unix ms.
    pub at_ms: i64,
    /// The chain from then on.
    pub chain: u64,
    /// The key's label in the HSM.
    pub key_label: String,
    /// Its certificate's id (SHA-512 of the DER, stored in the certificates).
    pub certificate_id: Hash512,
}

/// A draw registered with the beacon (docs/draws.md): its spec and the receipt signed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDraw {
    /// The draw's id: SHA-512 of the spec's canonical bytes.
    pub id: Hash512,
    /// The spec's canonical JSON.
    pub spec: String,
    /// The signed receipt (JSON).
    pub receipt: String,
    /// The time of the pulse that decides it, Unix ms.
    pub target_ms: i64,
    /// When it was registered, Unix ms.
    pub registered_ms: i64,
}

/// The switch in effect at `time_ms`: the latest one at or before it.
pub fn key_switch_at(switches: &[KeySwitch], time_ms: i64) -> Option<&KeySwitch> {
    switches
        .iter()
        .filter(|s| s.at_ms <= time_ms)
        .max_by_key(|s| s.at_ms)
}

/// The switch an engine configured for chain `configured_chain` follows at `time_ms`: the one
/// in effect, unless the configuration has moved on to a later chain than it names (the
/// operator started one by configuration; then the configured key signs). The one rule the
/// engine and the `keys` commands share.
pub fn key_switch_followed(
    switches: &[KeySwitch],
    time_ms: i64,
    configured_chain: u64,
) -> Option<&KeySwitch> {
    key_switch_at(switches, time_ms).filter(|s| s.chain >= configured_chain)
}

/// The store. Lookups return `Option`; appends check the chain rules in one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// `sqlite`, `postgres` (or `memory` for the fake).
    fn backend(&self) -> &'static str;

    // --- Pulses ------------------------------------------------------------------------------

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

    /// The one pulse `lookup` names, if there is one.
    async fn find(&self, lookup: Lookup) -> Result<Option<Pulse>, StoreError>;

    /// The pulses `range` names, oldest first, streamed a page at a time.
    fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>>;

    // --- Certificates ------------------------------------------------------------------------

    /// Stores a certificate (DER); storing the same one again is a no-op. Returns its id.
    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError>;
    /// A certificate's DER by id.
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every certificate (DER), oldest first.
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    // --- External sources --------------------------------------------------------------------

    /// Stores the description of an external source (storing it again is a no-op). Returns
    /// its id: the SHA-512 of its UTF-8 bytes, a pulse's `external.sourceId`.
    async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError>;
    /// An external source's description by id.
    async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError>;
    /// Every external source's description, oldest first.
    async fn external_sources(&self) -> Result<Vec<String>, StoreError>;

    // --- The signing-key schedule ------------------------------------------------------------

    /// Schedules a key switch (replacing one scheduled for the same time). Its certificate
    /// must be stored first (it is published before it is used).
    async fn put_key_switch(&self, switch: &KeySwitch) -> Result<(), StoreError>;
    /// Every key switch, oldest first.
    async fn key_switches(&self) -> Result<Vec<KeySwitch>, StoreError>;

    // --- Draws -------------------------------------------------------------------------------

    /// Registers a draw. One already registered under the same id is kept as it was, and that
    /// is what is returned: a spec registered twice keeps its first receipt.
    /// With `log_entry`, its entry in the transparency log (appended in the same transaction
    /// when the draw is new).
    async fn put_draw(&self, draw: &StoredDraw, log_entry: &[u8])
        -> Result<StoredDraw, StoreError>;
    /// A registered draw.
    async fn draw(&self, id: &Hash512) -> Result<Option<StoredDraw>, StoreError>;

    // --- The transparency log --------------------------------------------------------------

    /// The transparency log kept with the pulses (docs/transparency.md); each pulse's entry is
    /// appended in the transaction that stores it. Stores that keep no log say so.
    fn log(&self) -> Result<&dyn Log, StoreError> {
        Err(StoreError::unsupported(format!(
            "the {} store keeps no transparency log",
            self.backend()
        )))
    }

    // --- Source manifests --------------------------------------------------------------------

    /// Stores source manifests of pulses already stored (`import`), in one transaction.
    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError>;
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

    // --- Pending secrets (the engine's commitment to its next pulse) -------------------------

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

    // --- Bookkeeping -------------------------------------------------------------------------

    /// How many pulses, chains and certificates there are.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// Becomes the one writer: waits (as a standby) until the leader lock is free, up to
    /// `wait` (None: forever).
    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError>;
}

/// The named pulse queries, each a [`Lookup`] or [`Range`] (see the crate doc for why these
/// are inherent methods of `dyn Store`). For any lifetime of the object, not only `'static`:
/// `skip_path` and the API's handlers call them through a plain `&dyn Store`.
impl<'a> dyn Store + 'a {
    /// The newest pulse of any chain.
    pub async fn last(&self) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::Last).await
    }
    /// The newest pulse of a chain.
    pub async fn last_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::LastInChain(chain)).await
    }
    /// The first pulse of a chain.
    pub async fn first_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::FirstInChain(chain)).await
    }
    /// A pulse by chain and index.
    pub async fn by_index(&self, chain: u64, index: u64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::ByIndex { chain, index }).await
    }
    /// The pulse at `time_ms`, else the first after it.
    pub async fn at_or_after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::AtOrAfter(time_ms)).await
    }
    /// The newest pulse strictly before `time_ms`.
    pub async fn before(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::Before(time_ms)).await
    }
    /// The oldest pulse strictly after `time_ms`.
    pub async fn after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::After(time_ms)).await
    }
    /// The first pulse of `chain` in the UTC `period` that contains `time_ms` (skip lists).
    pub async fn first_in_period(
        &self,
        chain: u64,
        period: Period,
        time_ms: i64,
    ) -> Result<Option<Pulse>, StoreError> {
        self.find(Lookup::FirstInPeriod {
            chain,
            period,
            time_ms,
        })
        .await
    }
    /// Pulses with `from_ms <= time < to_ms`, oldest first, streamed.
    pub fn range_by_time(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> BoxStream<'_, Result<Pulse, StoreError>> {
        self.range(Range::ByTime { from_ms, to_ms })
    }
    /// Pulses of `chain` with `from <= index <= to`, streamed.
    pub fn range_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<Pulse, StoreError>> {
        self.range(Range::ByIndex { chain, from, to })
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
        Err(StoreError::unavailable(
            "unknown",
            format!(
                "unknown database URL {:?}: use sqlite:PATH or postgres://HOST/DB",
                redact(url)
            ),
        ))
    }
}
