//! SQL shared by both backends (SQLite reads `$1` parameters too), and the generic helpers
//! that run it, so each query is written once.

use crate::row::PulseRow;
use crate::StoreError;
use futures_util::stream::{BoxStream, StreamExt};
use lavabeacon_format::Pulse;
use sqlx::{Database, Executor, FromRow, Pool};

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT chain_index, pulse_index, time_ms, uri, version, cipher_suite, period, ",
            "certificate_id, local_random_value, ext_source_id, ext_status, ext_value, ",
            "previous_value, hour_value, day_value, month_value, year_value, ",
            "previous_index, hour_index, day_index, month_index, year_index, ",
            "precommitment, status_code, signature, output_value, extra FROM pulses ",
            $rest
        )
    };
}

pub const LAST: &str = select!("ORDER BY time_ms DESC LIMIT 1");
pub const LAST_IN_CHAIN: &str = select!("WHERE chain_index = $1 ORDER BY pulse_index DESC LIMIT 1");
pub const FIRST_IN_CHAIN: &str = select!("WHERE chain_index = $1 ORDER BY pulse_index ASC LIMIT 1");
pub const BY_INDEX: &str = select!("WHERE chain_index = $1 AND pulse_index = $2");
pub const AT_OR_AFTER: &str = select!("WHERE time_ms >= $1 ORDER BY time_ms ASC LIMIT 1");
pub const BEFORE: &str = select!("WHERE time_ms < $1 ORDER BY time_ms DESC LIMIT 1");
pub const AFTER: &str = select!("WHERE time_ms > $1 ORDER BY time_ms ASC LIMIT 1");
pub const FIRST_IN_SPAN: &str = select!(
    "WHERE chain_index = $1 AND time_ms >= $2 AND time_ms <= $3 ORDER BY time_ms ASC LIMIT 1"
);
pub const RANGE_BY_TIME: &str =
    select!("WHERE time_ms >= $1 AND time_ms < $2 ORDER BY time_ms ASC");
pub const RANGE_BY_INDEX: &str = select!(
    "WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 ORDER BY pulse_index ASC"
);

pub const HEAD: &str = "SELECT pulse_index, time_ms, output_value FROM pulses WHERE chain_index = $1 ORDER BY pulse_index DESC LIMIT 1";
pub const NEWEST_TIME: &str = "SELECT MAX(time_ms) FROM pulses";
pub const INSERT_PREFIX: &str =
    "INSERT INTO pulses (chain_index, pulse_index, time_ms, uri, version, cipher_suite, period, \
    certificate_id, local_random_value, ext_source_id, ext_status, ext_value, \
    previous_value, hour_value, day_value, month_value, year_value, \
    previous_index, hour_index, day_index, month_index, year_index, \
    precommitment, status_code, signature, output_value, extra) ";
pub const INSERT_MANIFEST: &str =
    "INSERT INTO source_manifests (chain_index, pulse_index, manifest) VALUES ($1, $2, $3)";
pub const MANIFEST: &str =
    "SELECT manifest FROM source_manifests WHERE chain_index = $1 AND pulse_index = $2";
pub const PUT_CERTIFICATE: &str = "INSERT INTO certificates (certificate_id, der, added_ms) VALUES ($1, $2, $3) ON CONFLICT (certificate_id) DO NOTHING";
pub const CERTIFICATE: &str = "SELECT der FROM certificates WHERE certificate_id = $1";
pub const ALL_CERTIFICATES: &str = "SELECT der FROM certificates ORDER BY added_ms, certificate_id";
pub const MANIFESTS_BY_INDEX: &str = "SELECT chain_index, pulse_index, manifest FROM source_manifests WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 ORDER BY pulse_index";
pub const COUNTS: &str = "SELECT COUNT(*), COUNT(DISTINCT chain_index) FROM pulses";
pub const COUNT_CERTIFICATES: &str = "SELECT COUNT(*) FROM certificates";
pub const PUT_SECRET: &str = "INSERT INTO pending_secrets (chain_index, pulse_index, sealed, created_ms) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (chain_index, pulse_index) DO UPDATE SET sealed = excluded.sealed, created_ms = excluded.created_ms";
pub const SECRET: &str =
    "SELECT sealed FROM pending_secrets WHERE chain_index = $1 AND pulse_index = $2";
pub const DROP_SECRETS: &str =
    "DELETE FROM pending_secrets WHERE chain_index = $1 AND pulse_index <= $2";

/// A database integer for an index that came from a caller.
pub fn i(v: u64) -> i64 {
    // Indexes beyond i64::MAX cannot be stored, so asking for one simply finds nothing.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Runs a pulse query that returns at most one row.
pub async fn one<'q, DB>(
    pool: &Pool<DB>,
    q: sqlx::query::QueryAs<'q, DB, PulseRow, <DB as Database>::Arguments<'q>>,
) -> Result<Option<Pulse>, StoreError>
where
    DB: Database,
    PulseRow: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    q.fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?
        .map(PulseRow::into_pulse)
        .transpose()
}

/// Runs a pulse query as a stream, row by row.
pub fn many<'a, DB>(
    pool: &'a Pool<DB>,
    q: sqlx::query::QueryAs<'a, DB, PulseRow, <DB as Database>::Arguments<'a>>,
) -> BoxStream<'a, Result<Pulse, StoreError>>
where
    DB: Database,
    PulseRow: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments<'a>: sqlx::IntoArguments<'a, DB>,
{
    q.fetch(pool)
        .map(|r| {
            r.map_err(StoreError::from_sqlx)
                .and_then(PulseRow::into_pulse)
        })
        .boxed()
}

/// Milliseconds since the Unix epoch, for bookkeeping columns (never for pulse times, which
/// come from the engine's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
