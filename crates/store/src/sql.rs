//! The SQL both backends run (SQLite reads `$1` parameters too), written once: every pulse
//! SELECT is its WHERE clause after the column list of [`COLUMNS`]; [`lookup`] says which
//! statement answers a [`Lookup`]; [`paged`] turns a page query into a stream.

use crate::error::StoreError;
use crate::lookup::Lookup;
use crate::row::COLUMNS;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use std::sync::LazyLock;

/// `SELECT <every column of pulses> FROM pulses <rest>`.
fn select(rest: &str) -> String {
    format!("SELECT {} FROM pulses {rest}", COLUMNS.join(", "))
}

pub static LAST: LazyLock<String> = LazyLock::new(|| select("ORDER BY time_ms DESC LIMIT 1"));
pub static LAST_IN_CHAIN: LazyLock<String> =
    LazyLock::new(|| select("WHERE chain_index = $1 ORDER BY pulse_index DESC LIMIT 1"));
pub static FIRST_IN_CHAIN: LazyLock<String> =
    LazyLock::new(|| select("WHERE chain_index = $1 ORDER BY pulse_index ASC LIMIT 1"));
pub static BY_INDEX: LazyLock<String> =
    LazyLock::new(|| select("WHERE chain_index = $1 AND pulse_index = $2"));
pub static AT_OR_AFTER: LazyLock<String> =
    LazyLock::new(|| select("WHERE time_ms >= $1 ORDER BY time_ms ASC LIMIT 1"));
pub static BEFORE: LazyLock<String> =
    LazyLock::new(|| select("WHERE time_ms < $1 ORDER BY time_ms DESC LIMIT 1"));
pub static AFTER: LazyLock<String> =
    LazyLock::new(|| select("WHERE time_ms > $1 ORDER BY time_ms ASC LIMIT 1"));
pub static FIRST_IN_SPAN: LazyLock<String> = LazyLock::new(|| {
    select(
        "WHERE chain_index = $1 AND time_ms >= $2 AND time_ms <= $3 ORDER BY time_ms ASC LIMIT 1",
    )
});
// Range reads go page by page (keyset pagination: the next page starts after the last row of
// this one), so that no connection is held while a consumer is slow to take the rows.
pub static RANGE_BY_TIME_PAGE: LazyLock<String> =
    LazyLock::new(|| select("WHERE time_ms >= $1 AND time_ms < $2 ORDER BY time_ms ASC LIMIT $3"));
pub static RANGE_BY_INDEX_PAGE: LazyLock<String> = LazyLock::new(|| {
    select(
        "WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 \
         ORDER BY pulse_index ASC LIMIT $4",
    )
});

/// The statement that answers a one-pulse [`Lookup`], and its arguments (at most three, kept
/// inline: a lookup allocates nothing for them).
pub struct OneRow {
    pub sql: &'static str,
    args: [i64; 3],
    len: usize,
}

impl OneRow {
    fn new(sql: &'static LazyLock<String>, given: &[i64]) -> OneRow {
        let mut args = [0; 3];
        args[..given.len()].copy_from_slice(given);
        OneRow {
            sql: sql.as_str(),
            args,
            len: given.len(),
        }
    }

    /// The arguments, `$1` first.
    pub fn args(&self) -> &[i64] {
        &self.args[..self.len]
    }
}

/// The statement for `lookup`; None when it cannot name a pulse (a time whose period has no
/// start), so the answer is "none".
pub fn lookup(lookup: Lookup) -> Option<OneRow> {
    Some(match lookup {
        Lookup::Last => OneRow::new(&LAST, &[]),
        Lookup::LastInChain(chain) => OneRow::new(&LAST_IN_CHAIN, &[db_int(chain)]),
        Lookup::FirstInChain(chain) => OneRow::new(&FIRST_IN_CHAIN, &[db_int(chain)]),
        Lookup::ByIndex { chain, index } => OneRow::new(&BY_INDEX, &[db_int(chain), db_int(index)]),
        Lookup::AtOrAfter(t) => OneRow::new(&AT_OR_AFTER, &[t]),
        Lookup::Before(t) => OneRow::new(&BEFORE, &[t]),
        Lookup::After(t) => OneRow::new(&AFTER, &[t]),
        Lookup::FirstInPeriod {
            chain,
            period,
            time_ms,
        } => {
            let start = period.start_of(time_ms)?;
            OneRow::new(&FIRST_IN_SPAN, &[db_int(chain), start, time_ms])
        }
    })
}

pub const HEAD: &str = "SELECT pulse_index, time_ms, output_value FROM pulses WHERE chain_index = $1 ORDER BY pulse_index DESC LIMIT 1";
pub const NEWEST_TIME: &str = "SELECT MAX(time_ms) FROM pulses";
pub const INSERT_MANIFEST: &str =
    "INSERT INTO source_manifests (chain_index, pulse_index, manifest) VALUES ($1, $2, $3)";
pub const MANIFEST: &str =
    "SELECT manifest FROM source_manifests WHERE chain_index = $1 AND pulse_index = $2";
pub const PUT_CERTIFICATE: &str = "INSERT INTO certificates (certificate_id, der, added_ms) VALUES ($1, $2, $3) ON CONFLICT (certificate_id) DO NOTHING";
pub const CERTIFICATE: &str = "SELECT der FROM certificates WHERE certificate_id = $1";
pub const ALL_CERTIFICATES: &str = "SELECT der FROM certificates ORDER BY added_ms, certificate_id";
pub const MANIFESTS_PAGE: &str = "SELECT chain_index, pulse_index, manifest FROM source_manifests WHERE chain_index = $1 AND pulse_index >= $2 AND pulse_index <= $3 ORDER BY pulse_index LIMIT $4";
pub const COUNTS: &str = "SELECT COUNT(*), COUNT(DISTINCT chain_index) FROM pulses";
pub const PUT_EXTERNAL_SOURCE: &str = "INSERT INTO external_sources (source_id, description, added_ms) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO NOTHING";
pub const EXTERNAL_SOURCE: &str = "SELECT description FROM external_sources WHERE source_id = $1";
pub const ALL_EXTERNAL_SOURCES: &str =
    "SELECT description FROM external_sources ORDER BY added_ms, source_id";
pub const PUT_DRAW: &str = "INSERT INTO draws (draw_id, spec, receipt, target_ms, registered_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (draw_id) DO NOTHING";
pub const DRAW: &str =
    "SELECT spec, receipt, target_ms, registered_ms FROM draws WHERE draw_id = $1";
pub const PUT_KEY_SWITCH: &str = "INSERT INTO key_switches (at_ms, chain_index, key_label, certificate_id, added_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (at_ms) DO UPDATE SET chain_index = excluded.chain_index, key_label = excluded.key_label, certificate_id = excluded.certificate_id, added_ms = excluded.added_ms";
pub const KEY_SWITCHES: &str =
    "SELECT at_ms, chain_index, key_label, certificate_id FROM key_switches ORDER BY at_ms";
pub const COUNT_CERTIFICATES: &str = "SELECT COUNT(*) FROM certificates";
pub const PUT_SECRET: &str = "INSERT INTO pending_secrets (chain_index, pulse_index, sealed, created_ms) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (chain_index, pulse_index) DO UPDATE SET sealed = excluded.sealed, created_ms = excluded.created_ms";
pub const SECRET: &str =
    "SELECT sealed FROM pending_secrets WHERE chain_index = $1 AND pulse_index = $2";
pub const DROP_SECRETS: &str =
    "DELETE FROM pending_secrets WHERE chain_index = $1 AND pulse_index <= $2";

/// A database integer for an index that came from a caller.
pub fn db_int(v: u64) -> i64 {
    // Indexes beyond i64::MAX cannot be stored, so asking for one simply finds nothing.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Rows in the first page of a range read: a reader that wants a few hundred rows (the API's
/// bulk routes take pages of 256) reads no more than it takes.
pub const FIRST_PAGE: i64 = 256;

/// The most rows in one page: each page after the first is twice the one before, up to this.
/// Large enough that a long read (a replay, a whole-chain download) costs few queries, small
/// enough that a page of pulses (about 1.5 kB each) stays near 3 MB.
pub const PAGE: i64 = 2048;

/// A range read as a stream of rows, one page at a time: `fetch(cursor, limit)` reads up to
/// `limit` rows from `cursor` on, on a connection that it gives back before it returns; `next`
/// gives the cursor after a row. So a slow consumer holds rows, never a connection. Pages grow
/// from [`FIRST_PAGE`] to [`PAGE`] rows.
pub fn paged<'a, T, F, Fut>(
    start: i64,
    fetch: F,
    next: fn(&T) -> Option<i64>,
) -> BoxStream<'a, Result<T, StoreError>>
where
    T: Send + 'a,
    F: FnMut(i64, i64) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>> + Send + 'a,
{
    stream::try_unfold(
        (Some(start), FIRST_PAGE, fetch),
        move |(cursor, limit, mut fetch)| async move {
            let Some(c) = cursor else {
                return Ok(None);
            };
            let page = fetch(c, limit).await?;
            let more = if page.len() as i64 >= limit {
                page.last().and_then(next)
            } else {
                None
            };
            Ok(Some((page, (more, (limit * 2).min(PAGE), fetch))))
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
