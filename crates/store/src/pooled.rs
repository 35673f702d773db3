//! The store's SQL on a sqlx pool, the same for both backends: [`PooledStore`] is generic over
//! the database, and `sqlite.rs` and `postgres.rs` call it for everything they do not do
//! differently (certificates, manifests, pending secrets, counts, range reads, the insert of
//! an append). What differs stays with them: opening, how writers are serialised, the leader
//! lock, SQLite's one-row reads outside the async driver.
//!
//! The sqlx bounds are written once, on the `impl` block: they say "a database that can bind
//! and read the column types of `pulses`", which both backends are.

use crate::append::{check_run, head_of, HeadRow};
use crate::error::StoreError;
use crate::leader::Leadership;
use crate::lookup::Range;
use crate::role::Role;
use crate::row::{self, PulseRow, ReadColumns};
use crate::sql::{self, db_int, now_ms, OneRow};
use crate::Counts;
use futures_util::stream::{BoxStream, StreamExt};
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::Pulse;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

/// A pool, the role it was opened for, and the backend's name for errors.
pub(crate) struct PooledStore<DB: Database> {
    pub pool: Pool<DB>,
    pub role: Role,
    pub backend: &'static str,
}

/// What a backend does to start an append: begin the transaction in its own way of keeping
/// two writers from extending the same head, and check `leader` is still held. The head is
/// read after it, in that transaction ([`PooledStore::append_run`]).
pub(crate) trait BeginAppend<DB: Database>: Sync {
    fn begin_append<'c>(
        &'c self,
        conn: &'c mut DB::Connection,
        chain: u64,
        leader: Option<&'c Leadership>,
    ) -> impl std::future::Future<Output = Result<Transaction<'c, DB>, StoreError>> + Send + 'c;

    /// Takes the transparency log's lock inside an append's transaction, so two writers (the
    /// engine and a draw registration) never number two entries alike.
    fn lock_log<'t>(
        &'t self,
        tx: &'t mut Transaction<'_, DB>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 't;

    /// Begins a transaction that appends to the log alone (a draw), the log's lock held.
    fn begin_log<'c>(
        &'c self,
        conn: &'c mut DB::Connection,
    ) -> impl std::future::Future<Output = Result<Transaction<'c, DB>, StoreError>> + Send + 'c;
}

/// After a failed write transaction the connection is closed, never reused: its state is not
/// to be trusted (SQLite rolls a transaction back by itself on SQLITE_FULL, after which sqlx
/// still counts it as open and refuses every later `BEGIN` on that connection; a COMMIT that
/// failed may leave the transaction open). The pool opens a fresh one when needed.
pub(crate) fn discard_if_failed<DB: Database, T>(
    conn: &mut PoolConnection<DB>,
    result: &Result<T, StoreError>,
) {
    if result.is_err() {
        conn.close_on_drop();
    }
}

impl<DB: Database> PooledStore<DB> {
    /// The backend's mapping of a driver error.
    pub(crate) fn fail(&self) -> impl Fn(sqlx::Error) -> StoreError + Copy + Send + Sync + 'static {
        let backend = self.backend;
        move |e| StoreError::from_sqlx(backend, e)
    }
}

impl<DB> PooledStore<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> (i64, i64, Vec<u8>): FromRow<'r, DB::Row>,
    for<'r> (i64, i64, String): FromRow<'r, DB::Row>,
    for<'r> (i64, Vec<u8>): FromRow<'r, DB::Row>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
    DB::Row: ReadColumns,
    DB: row::Parameters,
    DB::QueryResult: crate::log::RowsAffected,
{
    /// A connection of the pool, for a write transaction.
    async fn acquire(&self) -> Result<PoolConnection<DB>, StoreError> {
        self.pool.acquire().await.map_err(self.fail())
    }

    /// Appends `pulses` (a run of one chain, each extending the one before, the first its
    /// chain's head) and `manifests` in one transaction begun by `writer`; `per_statement` is
    /// how many rows one INSERT may carry on this backend.
    pub async fn append_run(
        &self,
        writer: &impl BeginAppend<DB>,
        pulses: &[Pulse],
        manifests: &[(u64, u64, String)],
        leader: Option<&Leadership>,
        per_statement: usize,
    ) -> Result<u64, StoreError> {
        self.role.refuse_writes()?;
        let Some(first) = pulses.first() else {
            return Ok(0);
        };
        let chain = first.chain_index;
        let rows = pulses
            .iter()
            .map(PulseRow::from_pulse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.acquire().await?;
        let result = async {
            let mut tx = writer.begin_append(&mut conn, chain, leader).await?;
            let (head, newest) = self.head(&mut tx, chain).await?;
            let head = head.map(|h| head_of(chain, &h)).transpose()?;
            check_run(pulses, head, newest)?;
            self.insert(&mut tx, rows, per_statement, manifests).await?;
            writer.lock_log(&mut tx).await?;
            let entries = pulses
                .iter()
                .map(|p| crate::log::NewEntry {
                    entry: p.output_value.0.to_vec(),
                    pulse: Some((p.chain_index, p.pulse_index)),
                    draw: None,
                })
                .collect();
            let first_ms = pulses.first().and_then(|p| p.time_ms().ok());
            self.log_append_in(&mut tx, entries, first_ms).await?;
            self.commit(tx).await?;
            Ok(pulses.len() as u64)
        }
        .await;
        discard_if_failed(&mut conn, &result);
        result
    }

    /// A one-pulse lookup through the pool.
    pub async fn one(&self, q: OneRow) -> Result<Option<Pulse>, StoreError> {
        let mut query = sqlx::query(q.sql);
        for a in q.args() {
            query = query.bind(*a);
        }
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        match row {
            Some(r) => PulseRow::decode(&r)?.into_pulse().map(Some),
            None => Ok(None),
        }
    }

    /// The head of `chain` and the newest time of any chain, read in the append's transaction.
    async fn head(
        &self,
        tx: &mut Transaction<'_, DB>,
        chain: u64,
    ) -> Result<(Option<HeadRow>, Option<i64>), StoreError> {
        let head: Option<HeadRow> = sqlx::query_as(sql::HEAD)
            .bind(db_int(chain))
            .fetch_optional(&mut **tx)
            .await
            .map_err(self.fail())?;
        let newest: Option<i64> = sqlx::query_scalar(sql::NEWEST_TIME)
            .fetch_one(&mut **tx)
            .await
            .map_err(self.fail())?;
        Ok((head, newest))
    }

    /// Inserts `rows` (already checked) in statements of at most `per_statement` rows (each
    /// backend's limit on parameters), then `manifests`; the first pulse names any conflict.
    async fn insert(
        &self,
        tx: &mut Transaction<'_, DB>,
        rows: Vec<PulseRow>,
        per_statement: usize,
        manifests: &[(u64, u64, String)],
    ) -> Result<(), StoreError> {
        let backend = self.backend;
        let mut rows = rows.into_iter().peekable();
        while let Some(first) = rows.peek() {
            let (chain, index) = (first.chain_index as u64, first.pulse_index as u64);
            let chunk: Vec<PulseRow> = rows.by_ref().take(per_statement).collect();
            let statement = row::insert_statement::<DB>(chunk.len());
            let mut query = sqlx::query(&statement);
            for r in chunk {
                query = row::bind(query, r);
            }
            query
                .execute(&mut **tx)
                .await
                .map_err(|e| StoreError::from_insert(backend, chain, index, e))?;
        }
        for (chain, index, m) in manifests {
            sqlx::query(sql::INSERT_MANIFEST)
                .bind(db_int(*chain))
                .bind(db_int(*index))
                .bind(m.clone())
                .execute(&mut **tx)
                .await
                .map_err(|e| StoreError::from_insert(backend, *chain, *index, e))?;
        }
        Ok(())
    }

    /// Commits an append's transaction.
    async fn commit(&self, tx: Transaction<'_, DB>) -> Result<(), StoreError> {
        tx.commit().await.map_err(self.fail())
    }

    /// A range read, a page at a time.
    pub fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        let pool = &self.pool;
        let fail = self.fail();
        let stream = match range {
            Range::ByTime { from_ms, to_ms } => sql::paged(
                from_ms,
                move |cursor, limit| async move {
                    let rows = sqlx::query(sql::RANGE_BY_TIME_PAGE.as_str())
                        .bind(cursor)
                        .bind(to_ms)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                        .map_err(fail)?;
                    rows.iter().map(PulseRow::decode).collect()
                },
                |r: &PulseRow| r.time_ms.checked_add(1),
            ),
            Range::ByIndex { chain, from, to } => sql::paged(
                db_int(from),
                move |cursor, limit| async move {
                    let rows = sqlx::query(sql::RANGE_BY_INDEX_PAGE.as_str())
                        .bind(db_int(chain))
                        .bind(cursor)
                        .bind(db_int(to))
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                        .map_err(fail)?;
                    rows.iter().map(PulseRow::decode).collect()
                },
                |r: &PulseRow| r.pulse_index.checked_add(1),
            ),
        };
        stream.map(|r| r.and_then(PulseRow::into_pulse)).boxed()
    }

    pub async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        self.role.refuse_writes()?;
        let id = certificate_id(der);
        sqlx::query(sql::PUT_CERTIFICATE)
            .bind(id.0.to_vec())
            .bind(der.to_vec())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(id)
    }

    pub async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::CERTIFICATE)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::ALL_CERTIFICATES)
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError> {
        self.role.refuse_writes()?;
        let id = lavabeacon_format::hash::sha512(&[description.as_bytes()]);
        sqlx::query(sql::PUT_EXTERNAL_SOURCE)
            .bind(id.0.to_vec())
            .bind(description.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(id)
    }

    pub async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(sql::EXTERNAL_SOURCE)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub async fn external_sources(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(sql::ALL_EXTERNAL_SOURCES)
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub async fn put_key_switch(&self, s: &crate::KeySwitch) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        sqlx::query(sql::PUT_KEY_SWITCH)
            .bind(s.at_ms)
            .bind(db_int(s.chain))
            .bind(s.key_label.clone())
            .bind(s.certificate_id.0.to_vec())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(())
    }

    pub async fn key_switches(&self) -> Result<Vec<crate::KeySwitch>, StoreError> {
        let rows: Vec<(i64, i64, String, Vec<u8>)> = sqlx::query_as(sql::KEY_SWITCHES)
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail())?;
        rows.into_iter()
            .map(|(at_ms, chain, key_label, id)| {
                let corrupt =
                    |what: &str| StoreError::corrupt(format!("key switch at {at_ms}: {what}"));
                Ok(crate::KeySwitch {
                    at_ms,
                    chain: u64::try_from(chain)
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| corrupt("a chain index below 1"))?,
                    key_label,
                    certificate_id: Hash512(id.try_into().map_err(|_| {
                        StoreError::corrupt(format!(
                            "key switch at {at_ms}: a certificate id not 64 bytes"
                        ))
                    })?),
                })
            })
            .collect()
    }

    pub async fn draw(&self, id: &Hash512) -> Result<Option<crate::StoredDraw>, StoreError> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(sql::DRAW)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(row.map(
            |(spec, receipt, target_ms, registered_ms)| crate::StoredDraw {
                id: *id,
                spec,
                receipt,
                target_ms,
                registered_ms,
            },
        ))
    }

    pub async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        let mut conn = self.acquire().await?;
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(self.fail())?;
            self.insert(&mut tx, Vec::new(), 1, manifests).await?;
            self.commit(tx).await
        }
        .await;
        discard_if_failed(&mut conn, &result);
        result
    }

    pub async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(sql::MANIFEST)
            .bind(db_int(chain))
            .bind(db_int(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        let pool = &self.pool;
        let fail = self.fail();
        sql::paged(
            db_int(from),
            move |cursor, limit| async move {
                sqlx::query_as::<_, (i64, i64, String)>(sql::MANIFESTS_PAGE)
                    .bind(db_int(chain))
                    .bind(cursor)
                    .bind(db_int(to))
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(fail)
            },
            |r: &(i64, i64, String)| r.1.checked_add(1),
        )
        .map(|r| r.map(|(c, p, m)| (c as u64, p as u64, m)))
        .boxed()
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let (pulses, chains): (i64, i64) = sqlx::query_as(sql::COUNTS)
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail())?;
        let certificates: i64 = sqlx::query_scalar(sql::COUNT_CERTIFICATES)
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(Counts {
            pulses: pulses as u64,
            chains: chains as u64,
            certificates: certificates as u64,
        })
    }

    pub async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        sqlx::query(sql::PUT_SECRET)
            .bind(db_int(chain))
            .bind(db_int(index))
            .bind(sealed.to_vec())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(())
    }

    pub async fn pending_secret(
        &self,
        chain: u64,
        index: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::SECRET)
            .bind(db_int(chain))
            .bind(db_int(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub async fn drop_pending_secrets(
        &self,
        chain: u64,
        up_to_index: u64,
    ) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        sqlx::query(sql::DROP_SECRETS)
            .bind(db_int(chain))
            .bind(db_int(up_to_index))
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(())
    }
}
