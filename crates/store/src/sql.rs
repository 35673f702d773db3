//! SQL shared by both backends (SQLite reads `$1` parameters too), and the generic helpers
//! that run it, so each query is written once.

use crate::row::PulseRow;
use crate::StoreError;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
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
// Range reads go page by page (keyset pagination: the next page starts after the last row of
// this one), so that no connection is held while a consumer is slow to take the rows.
pub const RANGE_BY_TIME_PAGE: &str =
    select!("WHERE time_ms >= $1 AND time_ms < $2 ORDER BY time_ms ASC LIMIT $3");
pub const RANGE_BY_INDEX_PAGE: &str = select!(
    "WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 ORDER BY pulse_index ASC LIMIT $4"
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
pub const MANIFESTS_PAGE: &str = "SELECT chain_index, pulse_index, manifest FROM source_manifests WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 ORDER BY pulse_index LIMIT $4";
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

/// Rows per page of a range read: large enough that a page costs little more than its rows,
/// small enough that a page of pulses (about 1.5 kB each) stays well under a megabyte.
pub const PAGE: i64 = 500;

/// A range read as a stream of rows, one page at a time: `fetch(cursor)` reads up to [`PAGE`]
/// rows from `cursor` on, on a pool connection that it gives back before it returns; `next`
/// gives the cursor after a row. So a slow consumer holds rows, never a connection.
pub fn paged<'a, T, F, Fut>(
    start: i64,
    fetch: F,
    next: fn(&T) -> Option<i64>,
) -> BoxStream<'a, Result<T, StoreError>>
where
    T: Send + 'a,
    F: FnMut(i64) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>> + Send + 'a,
{
    stream::try_unfold(
        (Some(start), fetch),
        move |(cursor, mut fetch)| async move {
            let Some(c) = cursor else {
                return Ok(None);
            };
            let page = fetch(c).await?;
            let more = if page.len() as i64 >= PAGE {
                page.last().and_then(next)
            } else {
                None
            };
            Ok(Some((page, (more, fetch))))
        },
    )
    .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
    .try_flatten()
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
