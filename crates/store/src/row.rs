//! The one mapping between a [`Pulse`] and a row of the `pulses` table, for both backends and
//! both SQLite drivers: [`COLUMNS`] is the column table (the SELECT lists and the INSERT in
//! `sql.rs` are made from it), [`PulseRow::decode`] (sqlx) and [`RowView::of_rusqlite`] the
//! ways a row is read (by the table's positions, found at compile time from the column names),
//! [`RowView::into_pulse`] the one way a row becomes a pulse, and [`insert_statement`] with
//! [`bind`] the one way rows are written.
//!
//! Over 400 lines on purpose: the whole row layout (the column table, the decode for both
//! drivers, the encode and the pulse conversions) stays in one file, so it is spelled once.

use crate::error::StoreError;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::pulse::{External, Externals, ListValue, LIST_TYPES};
use lavabeacon_format::time::{format_time_stamp, parse_time_stamp};
use lavabeacon_format::Pulse;
use serde::{Deserialize, Serialize};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// The columns of `pulses`, in the order of every SELECT list and INSERT (`sql.rs`) and of
/// [`PulseRow`]'s fields.
pub(crate) const COLUMNS: [&str; 27] = [
    "chain_index",
    "pulse_index",
    "time_ms",
    "uri",
    "version",
    "cipher_suite",
    "period",
    "certificate_id",
    "local_random_value",
    "ext_source_id",
    "ext_status",
    "ext_value",
    "previous_value",
    "hour_value",
    "day_value",
    "month_value",
    "year_value",
    "previous_index",
    "hour_index",
    "day_index",
    "month_index",
    "year_index",
    "precommitment",
    "status_code",
    "signature",
    "output_value",
    "extra",
];

/// The position of column `name` in [`COLUMNS`]; used in `const` blocks, so a name that is not
/// in the table fails the build.
const fn at(name: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        if eq(COLUMNS[i].as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("not a column of pulses")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A row of `pulses`, column for column (see [`COLUMNS`]).
pub(crate) struct PulseRow {
    pub chain_index: i64,
    pub pulse_index: i64,
    pub time_ms: i64,
    pub uri: String,
    pub version: String,
    pub cipher_suite: i64,
    pub period: i64,
    pub certificate_id: Vec<u8>,
    pub local_random_value: Vec<u8>,
    pub ext_source_id: Option<Vec<u8>>,
    pub ext_status: i64,
    pub ext_value: Option<Vec<u8>>,
    pub previous_value: Vec<u8>,
    pub hour_value: Vec<u8>,
    pub day_value: Vec<u8>,
    pub month_value: Vec<u8>,
    pub year_value: Vec<u8>,
    pub previous_index: Option<i64>,
    pub hour_index: Option<i64>,
    pub day_index: Option<i64>,
    pub month_index: Option<i64>,
    pub year_index: Option<i64>,
    pub precommitment: Vec<u8>,
    pub status_code: i64,
    pub signature: Vec<u8>,
    pub output_value: Vec<u8>,
    pub extra: Option<String>,
}

/// A row being read, from whichever driver: the column at a position, typed.
pub(crate) trait ReadColumns {
    fn int(&self, at: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, at: usize) -> Result<Option<i64>, StoreError>;
    fn text(&self, at: usize) -> Result<String, StoreError>;
    fn opt_text(&self, at: usize) -> Result<Option<String>, StoreError>;
    fn blob(&self, at: usize) -> Result<Vec<u8>, StoreError>;
    fn opt_blob(&self, at: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A column of the wrong type: the row was not written by this store.
fn wrong_type(at: usize, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("column {}: {e}", COLUMNS[at]))
}

/// Rows of sqlx (both backends, the range reads).
impl<R> ReadColumns for R
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, at: usize) -> Result<i64, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
    fn opt_int(&self, at: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
    fn text(&self, at: usize) -> Result<String, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
    fn opt_text(&self, at: usize) -> Result<Option<String>, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
    fn blob(&self, at: usize) -> Result<Vec<u8>, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
    fn opt_blob(&self, at: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(at).map_err(|e| wrong_type(at, e))
    }
}

impl PulseRow {
    /// Reads a row selected with the [`COLUMNS`] list, whichever driver it came from.
    pub fn decode(r: &impl ReadColumns) -> Result<PulseRow, StoreError> {
        Ok(PulseRow {
            chain_index: r.int(const { at("chain_index") })?,
            pulse_index: r.int(const { at("pulse_index") })?,
            time_ms: r.int(const { at("time_ms") })?,
            uri: r.text(const { at("uri") })?,
            version: r.text(const { at("version") })?,
            cipher_suite: r.int(const { at("cipher_suite") })?,
            period: r.int(const { at("period") })?,
            certificate_id: r.blob(const { at("certificate_id") })?,
            local_random_value: r.blob(const { at("local_random_value") })?,
            ext_source_id: r.opt_blob(const { at("ext_source_id") })?,
            ext_status: r.int(const { at("ext_status") })?,
            ext_value: r.opt_blob(const { at("ext_value") })?,
            previous_value: r.blob(const { at("previous_value") })?,
            hour_value: r.blob(const { at("hour_value") })?,
            day_value: r.blob(const { at("day_value") })?,
            month_value: r.blob(const { at("month_value") })?,
            year_value: r.blob(const { at("year_value") })?,
            previous_index: r.opt_int(const { at("previous_index") })?,
            hour_index: r.opt_int(const { at("hour_index") })?,
            day_index: r.opt_int(const { at("day_index") })?,
            month_index: r.opt_int(const { at("month_index") })?,
            year_index: r.opt_int(const { at("year_index") })?,
            precommitment: r.blob(const { at("precommitment") })?,
            status_code: r.int(const { at("status_code") })?,
            signature: r.blob(const { at("signature") })?,
            output_value: r.blob(const { at("output_value") })?,
            extra: r.opt_text(const { at("extra") })?,
        })
    }
}

/// What a row cannot derive from its columns, kept so that storing loses nothing.
#[derive(Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Extra {
    /// The timestamp text, when it is not the canonical form of `time_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    time_stamp: Option<String>,
    /// The list URIs, when they do not follow `{base}/pulse/{index}` of the pulse's own URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    list_uris: Option<Vec<Option<String>>>,
}

/// The URI of pulse `index` of the same chain as a pulse with URI `uri` and index `own`.
fn sibling_uri(uri: &str, own: u64, index: u64) -> Option<String> {
    pulse_base(uri, own).map(|base| uri_of(base, index))
}

/// `{base}/pulse/` of a pulse with URI `uri` and index `own`, when its URI has that form.
fn pulse_base(uri: &str, own: u64) -> Option<&str> {
    let base = uri.strip_suffix(&own.to_string())?;
    base.ends_with("/pulse/").then_some(base)
}

/// `{base}{index}`. Found once per pulse read and used for its five list URIs: a replay reads
/// every pulse, and formatting each URI from scratch was a tenth of reading a row.
fn uri_of(base: &str, index: u64) -> String {
    use std::fmt::Write;
    let mut uri = String::with_capacity(base.len() + 20);
    uri.push_str(base);
    let _ = write!(uri, "{index}");
    uri
}

fn index_in_uri(uri: &str) -> Option<u64> {
    uri.rsplit('/').next()?.parse().ok()
}

fn int(field: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::unsupported(format!("{field} {v} does not fit a database integer"))
    })
}

fn opt_hash(h: &Hash512) -> Option<Vec<u8>> {
    (!h.is_zero()).then(|| h.0.to_vec())
}

impl PulseRow {
    /// The row for a pulse. Only NIST-shaped pulses are stored: one external value and the five
    /// list values in order (CLCERT's list of externals is verified, never published by us).
    pub fn from_pulse(p: &Pulse) -> Result<PulseRow, StoreError> {
        let external = match &p.external {
            Externals::One(e) => *e,
            Externals::List(_) => {
                return Err(StoreError::unsupported(
                    "a list of external values (CLCERT) cannot be stored",
                ))
            }
        };
        if p.hashed_message.is_some() || p.sloth.is_some() {
            return Err(StoreError::unsupported(
                "CLCERT's hashedMessage and Sloth witness cannot be stored",
            ));
        }
        let kinds: Vec<&str> = p.list_values.iter().map(|l| l.kind.as_str()).collect();
        if kinds != LIST_TYPES {
            return Err(StoreError::unsupported(format!(
                "listValues must be {} in that order, found {}",
                LIST_TYPES.join(","),
                kinds.join(",")
            )));
        }
        let time_ms =
            parse_time_stamp(&p.time_stamp).map_err(|e| StoreError::unsupported(e.to_string()))?;
        let mut extra = Extra::default();
        if format_time_stamp(time_ms).as_deref() != Some(p.time_stamp.as_str()) {
            extra.time_stamp = Some(p.time_stamp.clone());
        }
        let mut indexes = [None; 5];
        let mut derivable = true;
        for (slot, l) in indexes.iter_mut().zip(&p.list_values) {
            if let Some(u) = &l.uri {
                *slot = index_in_uri(u);
                let rebuilt = slot.and_then(|i| sibling_uri(&p.uri, p.pulse_index, i));
                derivable &= rebuilt.as_deref() == Some(u.as_str());
            }
        }
        if !derivable {
            extra.list_uris = Some(p.list_values.iter().map(|l| l.uri.clone()).collect());
        }
        let idx = |i: usize| indexes[i].map(|v| int("list index", v)).transpose();
        Ok(PulseRow {
            chain_index: int("chainIndex", p.chain_index)?,
            pulse_index: int("pulseIndex", p.pulse_index)?,
            time_ms,
            uri: p.uri.clone(),
            version: p.version.clone(),
            cipher_suite: i64::from(p.cipher_suite),
            period: i64::from(p.period),
            certificate_id: p.certificate_id.0.to_vec(),
            local_random_value: p.local_random_value.0.to_vec(),
            ext_source_id: opt_hash(&external.source_id),
            ext_status: i64::from(external.status_code),
            ext_value: opt_hash(&external.value),
            previous_value: p.list_values[0].value.0.to_vec(),
            hour_value: p.list_values[1].value.0.to_vec(),
            day_value: p.list_values[2].value.0.to_vec(),
            month_value: p.list_values[3].value.0.to_vec(),
            year_value: p.list_values[4].value.0.to_vec(),
            previous_index: idx(0)?,
            hour_index: idx(1)?,
            day_index: idx(2)?,
            month_index: idx(3)?,
            year_index: idx(4)?,
            precommitment: p.precommitment_value.0.to_vec(),
            status_code: i64::from(p.status_code),
            signature: p.signature_value.clone(),
            output_value: p.output_value.0.to_vec(),
            extra: (extra != Extra::default())
                .then(|| serde_json::to_string(&extra).expect("extra serialises")),
        })
    }

    /// The pulse this row holds.
    pub fn into_pulse(self) -> Result<Pulse, StoreError> {
        self.view().into_pulse()
    }

    /// The row's columns, borrowed.
    fn view(&self) -> RowView<'_> {
        RowView {
            chain_index: self.chain_index,
            pulse_index: self.pulse_index,
            time_ms: self.time_ms,
            uri: &self.uri,
            version: &self.version,
            cipher_suite: self.cipher_suite,
            period: self.period,
            certificate_id: &self.certificate_id,
            local_random_value: &self.local_random_value,
            ext_source_id: self.ext_source_id.as_deref(),
            ext_status: self.ext_status,
            ext_value: self.ext_value.as_deref(),
            values: [
                &self.previous_value,
                &self.hour_value,
                &self.day_value,
                &self.month_value,
                &self.year_value,
            ],
            indexes: [
                self.previous_index,
                self.hour_index,
                self.day_index,
                self.month_index,
                self.year_index,
            ],
            precommitment: &self.precommitment,
            status_code: self.status_code,
            signature: &self.signature,
            output_value: &self.output_value,
            extra: self.extra.as_deref(),
        }
    }
}

/// A row of `pulses` as the driver holds it, column for column like [`PulseRow`] but borrowed:
/// rusqlite's rows are read straight into a [`Pulse`] through it, without a vector per hash
/// column first (a replay reads every row, and those copies were a tenth of reading one).
pub(crate) struct RowView<'a> {
    chain_index: i64,
    pulse_index: i64,
    time_ms: i64,
    uri: &'a str,
    version: &'a str,
    cipher_suite: i64,
    period: i64,
    certificate_id: &'a [u8],
    local_random_value: &'a [u8],
    ext_source_id: Option<&'a [u8]>,
    ext_status: i64,
    ext_value: Option<&'a [u8]>,
    /// previous, hour, day, month, year.
    values: [&'a [u8]; 5],
    indexes: [Option<i64>; 5],
    precommitment: &'a [u8],
    status_code: i64,
    signature: &'a [u8],
    output_value: &'a [u8],
    extra: Option<&'a str>,
}

impl<'a> RowView<'a> {
    /// A rusqlite row selected with the [`COLUMNS`] list.
    pub fn of_rusqlite(r: &'a rusqlite::Row<'_>) -> Result<RowView<'a>, StoreError> {
        use rusqlite::types::ValueRef;
        let get = |at: usize| r.get_ref(at).map_err(StoreError::from_rusqlite);
        let int = |at: usize| get(at)?.as_i64().map_err(|e| wrong_type(at, e));
        let opt_int = |at: usize| get(at)?.as_i64_or_null().map_err(|e| wrong_type(at, e));
        let text = |at: usize| get(at)?.as_str().map_err(|e| wrong_type(at, e));
        let opt_text = |at: usize| get(at)?.as_str_or_null().map_err(|e| wrong_type(at, e));
        let blob = |at: usize| get(at)?.as_blob().map_err(|e| wrong_type(at, e));
        let opt_blob = |at: usize| match get(at)? {
            ValueRef::Null => Ok(None),
            v => v.as_blob().map(Some).map_err(|e| wrong_type(at, e)),
        };
        Ok(RowView {
            chain_index: int(const { at("chain_index") })?,
            pulse_index: int(const { at("pulse_index") })?,
            time_ms: int(const { at("time_ms") })?,
            uri: text(const { at("uri") })?,
            version: text(const { at("version") })?,
            cipher_suite: int(const { at("cipher_suite") })?,
            period: int(const { at("period") })?,
            certificate_id: blob(const { at("certificate_id") })?,
            local_random_value: blob(const { at("local_random_value") })?,
            ext_source_id: opt_blob(const { at("ext_source_id") })?,
            ext_status: int(const { at("ext_status") })?,
            ext_value: opt_blob(const { at("ext_value") })?,
            values: [
                blob(const { at("previous_value") })?,
                blob(const { at("hour_value") })?,
                blob(const { at("day_value") })?,
                blob(const { at("month_value") })?,
                blob(const { at("year_value") })?,
            ],
            indexes: [
                opt_int(const { at("previous_index") })?,
                opt_int(const { at("hour_index") })?,
                opt_int(const { at("day_index") })?,
                opt_int(const { at("month_index") })?,
                opt_int(const { at("year_index") })?,
            ],
            precommitment: blob(const { at("precommitment") })?,
            status_code: int(const { at("status_code") })?,
            signature: blob(const { at("signature") })?,
            output_value: blob(const { at("output_value") })?,
            extra: opt_text(const { at("extra") })?,
        })
    }

    /// The pulse this row holds: the one conversion, for both drivers.
    pub fn into_pulse(self) -> Result<Pulse, StoreError> {
        // The pulse is named only in an error: this runs for every row a replay reads.
        let (chain, index) = (self.chain_index, self.pulse_index);
        let corrupt = |what: &str| StoreError::corrupt(format!("pulse {chain}/{index}: {what}"));
        let hash = |what: &str, v: &[u8]| -> Result<Hash512, StoreError> {
            v.try_into()
                .map(Hash512)
                .map_err(|_| corrupt(&format!("{what} is {} bytes, not 64", v.len())))
        };
        let opt = |what: &str, v: Option<&[u8]>| v.map_or(Ok(Hash512::ZERO), |b| hash(what, b));
        let u32_of = |what: &str, v: i64| {
            u32::try_from(v).map_err(|_| corrupt(&format!("{what} {v} out of range")))
        };
        let extra: Extra = match self.extra {
            Some(t) => serde_json::from_str(t).map_err(|e| corrupt(&format!("extra: {e}")))?,
            None => Extra::default(),
        };
        let pulse_index = self.pulse_index as u64;
        let base = pulse_base(self.uri, pulse_index);
        let mut list_values = Vec::with_capacity(5);
        for (i, kind) in LIST_TYPES.iter().enumerate() {
            let uri = match &extra.list_uris {
                Some(uris) => uris.get(i).cloned().flatten(),
                None => self.indexes[i].and_then(|ix| base.map(|b| uri_of(b, ix as u64))),
            };
            list_values.push(ListValue {
                uri,
                kind: kind.to_string(),
                value: hash(kind, self.values[i])?,
            });
        }
        let time_stamp = match extra.time_stamp {
            Some(t) => t,
            None => format_time_stamp(self.time_ms).ok_or_else(|| corrupt("time out of range"))?,
        };
        Ok(Pulse {
            certificate_id: hash("certificate_id", self.certificate_id)?,
            local_random_value: hash("local_random_value", self.local_random_value)?,
            external: Externals::One(External {
                source_id: opt("ext_source_id", self.ext_source_id)?,
                status_code: u32_of("ext_status", self.ext_status)?,
                value: opt("ext_value", self.ext_value)?,
            }),
            precommitment_value: hash("precommitment", self.precommitment)?,
            output_value: hash("output_value", self.output_value)?,
            cipher_suite: u32_of("cipher_suite", self.cipher_suite)?,
            period: u32_of("period", self.period)?,
            status_code: u32_of("status_code", self.status_code)?,
            uri: self.uri.to_string(),
            version: self.version.to_string(),
            chain_index: self.chain_index as u64,
            pulse_index,
            time_stamp,
            list_values,
            signature_value: self.signature.to_vec(),
            hashed_message: None,
            sloth: None,
        })
    }
}

/// The INSERT of `rows` rows into `pulses`: the column list from [`COLUMNS`] and one
/// `($1, …, $27)` group of placeholders per row, for [`bind`] to fill.
pub(crate) fn insert_statement<DB: Parameters>(rows: usize) -> String {
    insert_rows::<DB>("pulses", &COLUMNS, rows)
}

/// The INSERT of `rows` rows of `columns` into `table`, one group of placeholders per row, in
/// the backend's spelling ([`Parameters`]).
pub(crate) fn insert_rows<DB: Parameters>(table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            DB::push(&mut sql, r * columns.len() + c + 1);
        }
        sql.push(')');
    }
    sql
}

/// How a backend writes the n-th parameter of a statement. PostgreSQL numbers them (`$1`).
/// SQLite gets plain `?`: sqlx looks every numbered name up in SQLite's list of names, which
/// takes time in proportion to the list, so a 1,000-row insert (27,000 parameters) took
/// minutes instead of milliseconds.
pub(crate) trait Parameters {
    fn push(sql: &mut String, n: usize);
}

impl Parameters for sqlx::Sqlite {
    fn push(sql: &mut String, _n: usize) {
        sql.push('?');
    }
}

impl Parameters for sqlx::Postgres {
    fn push(sql: &mut String, n: usize) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }
}

/// Binds a row's values to `q`, in [`COLUMNS`] order (the round-trip tests of both backends
/// read every column back).
pub(crate) fn bind<'q, DB>(
    q: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    r: PulseRow,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
{
    q.bind(r.chain_index)
        .bind(r.pulse_index)
        .bind(r.time_ms)
        .bind(r.uri)
        .bind(r.version)
        .bind(r.cipher_suite)
        .bind(r.period)
        .bind(r.certificate_id)
        .bind(r.local_random_value)
        .bind(r.ext_source_id)
        .bind(r.ext_status)
        .bind(r.ext_value)
        .bind(r.previous_value)
        .bind(r.hour_value)
        .bind(r.day_value)
        .bind(r.month_value)
        .bind(r.year_value)
        .bind(r.previous_index)
        .bind(r.hour_index)
        .bind(r.day_index)
        .bind(r.month_index)
        .bind(r.year_index)
        .bind(r.precommitment)
        .bind(r.status_code)
        .bind(r.signature)
        .bind(r.output_value)
        .bind(r.extra)
}
