//! The `Store` methods both backends implement with the same code: the SQL is shared
//! (`sql.rs`) and so are these bodies. Each backend provides what differs: `begin_append`
//! (its way of serialising writers and checking leadership), `insert` (its statement size
//! limits), `acquire_leadership_impl` (its lock) and `one_row` (a one-pulse lookup: SQLite
//! answers those on its own read connections, much faster than through the async driver).

/// After a failed write transaction the connection is closed, never reused: its state is not
/// to be trusted (SQLite rolls a transaction back by itself on SQLITE_FULL, after which sqlx
/// still counts it as open and refuses every later `BEGIN` on that connection; a COMMIT that
/// failed may leave the transaction open). The pool opens a fresh one when needed.
pub(crate) fn discard_if_failed<DB: sqlx::Database, T>(
    conn: &mut sqlx::pool::PoolConnection<DB>,
    result: &Result<T, crate::StoreError>,
) {
    if result.is_err() {
        conn.close_on_drop();
    }
}

/// Implements `Store` for a backend type with a `pool` field.
#[macro_export]
#[doc(hidden)]
macro_rules! store_impl {
    ($ty:ty, $name:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn append(
                &self,
                pulse: &Pulse,
                manifest: Option<&str>,
                leader: Option<&Leadership>,
            ) -> Result<(), StoreError> {
                self.role.refuse_writes()?;
                let row = PulseRow::from_pulse(pulse)?;
                let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
                let result = async {
                    let (mut tx, head, newest) = self
                        .begin_append(&mut conn, pulse.chain_index, leader)
                        .await?;
                    check_extends(
                        pulse,
                        head.as_ref().map(|(i, t, o)| (*i, *t, o.as_slice())),
                        newest,
                    )?;
                    Self::insert(&mut tx, vec![row]).await?;
                    if let Some(m) = manifest {
                        sqlx::query(sql::INSERT_MANIFEST)
                            .bind(i(pulse.chain_index))
                            .bind(i(pulse.pulse_index))
                            .bind(m)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::from_sqlx)?;
                    }
                    tx.commit().await.map_err(StoreError::from_sqlx)
                }
                .await;
                $crate::shared::discard_if_failed(&mut conn, &result);
                result
            }

            async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
                self.role.refuse_writes()?;
                let Some(first) = pulses.first() else {
                    return Ok(0);
                };
                let rows = pulses
                    .iter()
                    .map(PulseRow::from_pulse)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
                let result = async {
                    let (mut tx, head, newest) = self
                        .begin_append(&mut conn, first.chain_index, None)
                        .await?;
                    $crate::check_run(pulses, head, newest)?;
                    Self::insert(&mut tx, rows).await?;
                    tx.commit().await.map_err(StoreError::from_sqlx)?;
                    Ok(pulses.len() as u64)
                }
                .await;
                $crate::shared::discard_if_failed(&mut conn, &result);
                result
            }

            async fn acquire_leadership(
                &self,
                wait: Option<Duration>,
            ) -> Result<Leadership, StoreError> {
                self.role.refuse_writes()?;
                self.acquire_leadership_impl(wait).await
            }

            async fn last(&self) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::LAST, &[]).await
            }
            async fn last_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::LAST_IN_CHAIN, &[i(chain)]).await
            }
            async fn first_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::FIRST_IN_CHAIN, &[i(chain)]).await
            }
            async fn by_index(&self, chain: u64, index: u64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::BY_INDEX, &[i(chain), i(index)]).await
            }
            async fn at_or_after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::AT_OR_AFTER, &[time_ms]).await
            }
            async fn before(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::BEFORE, &[time_ms]).await
            }
            async fn after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
                self.one_row(sql::AFTER, &[time_ms]).await
            }
            async fn first_in_period(
                &self,
                chain: u64,
                period: Period,
                time_ms: i64,
            ) -> Result<Option<Pulse>, StoreError> {
                let Some(start) = period.start_of(time_ms) else {
                    return Ok(None);
                };
                self.one_row(sql::FIRST_IN_SPAN, &[i(chain), start, time_ms])
                    .await
            }
            fn range_by_time(
                &self,
                from_ms: i64,
                to_ms: i64,
            ) -> BoxStream<'_, Result<Pulse, StoreError>> {
                use futures_util::StreamExt;
                let pool = &self.pool;
                sql::paged(
                    from_ms,
                    move |cursor| async move {
                        sqlx::query_as::<_, PulseRow>(sql::RANGE_BY_TIME_PAGE)
                            .bind(cursor)
                            .bind(to_ms)
                            .bind(sql::PAGE)
                            .fetch_all(pool)
                            .await
                            .map_err(StoreError::from_sqlx)
                    },
                    |r: &PulseRow| r.time_ms.checked_add(1),
                )
                .map(|r| r.and_then(PulseRow::into_pulse))
                .boxed()
            }
            fn range_by_index(
                &self,
                chain: u64,
                from: u64,
                to: u64,
            ) -> BoxStream<'_, Result<Pulse, StoreError>> {
                use futures_util::StreamExt;
                let pool = &self.pool;
                sql::paged(
                    i(from),
                    move |cursor| async move {
                        sqlx::query_as::<_, PulseRow>(sql::RANGE_BY_INDEX_PAGE)
                            .bind(i(chain))
                            .bind(cursor)
                            .bind(i(to))
                            .bind(sql::PAGE)
                            .fetch_all(pool)
                            .await
                            .map_err(StoreError::from_sqlx)
                    },
                    |r: &PulseRow| r.pulse_index.checked_add(1),
                )
                .map(|r| r.and_then(PulseRow::into_pulse))
                .boxed()
            }

            async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
                self.role.refuse_writes()?;
                let id = certificate_id(der);
                sqlx::query(sql::PUT_CERTIFICATE)
                    .bind(id.0.to_vec())
                    .bind(der)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(id)
            }
            async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
                sqlx::query_scalar(sql::CERTIFICATE)
                    .bind(id.0.to_vec())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)
            }
            async fn put_manifests(
                &self,
                manifests: &[(u64, u64, String)],
            ) -> Result<(), StoreError> {
                self.role.refuse_writes()?;
                let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
                let result = async {
                    let mut tx = sqlx::Connection::begin(&mut *conn)
                        .await
                        .map_err(StoreError::from_sqlx)?;
                    for (c, p, m) in manifests {
                        sqlx::query(sql::INSERT_MANIFEST)
                            .bind(i(*c))
                            .bind(i(*p))
                            .bind(m)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::from_sqlx)?;
                    }
                    tx.commit().await.map_err(StoreError::from_sqlx)
                }
                .await;
                $crate::shared::discard_if_failed(&mut conn, &result);
                result
            }
            async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
                sqlx::query_scalar(sql::ALL_CERTIFICATES)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)
            }
            fn manifests_by_index(
                &self,
                chain: u64,
                from: u64,
                to: u64,
            ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
                use futures_util::StreamExt;
                let pool = &self.pool;
                sql::paged(
                    i(from),
                    move |cursor| async move {
                        sqlx::query_as::<_, (i64, i64, String)>(sql::MANIFESTS_PAGE)
                            .bind(i(chain))
                            .bind(cursor)
                            .bind(i(to))
                            .bind(sql::PAGE)
                            .fetch_all(pool)
                            .await
                            .map_err(StoreError::from_sqlx)
                    },
                    |r: &(i64, i64, String)| r.1.checked_add(1),
                )
                .map(|r| r.map(|(c, p, m)| (c as u64, p as u64, m)))
                .boxed()
            }
            async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
                sqlx::query_scalar(sql::MANIFEST)
                    .bind(i(chain))
                    .bind(i(index))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)
            }
            async fn counts(&self) -> Result<Counts, StoreError> {
                let (pulses, chains): (i64, i64) = sqlx::query_as(sql::COUNTS)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                let certificates: i64 = sqlx::query_scalar(sql::COUNT_CERTIFICATES)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(Counts {
                    pulses: pulses as u64,
                    chains: chains as u64,
                    certificates: certificates as u64,
                })
            }

            async fn put_pending_secret(
                &self,
                chain: u64,
                index: u64,
                sealed: &[u8],
            ) -> Result<(), StoreError> {
                self.role.refuse_writes()?;
                sqlx::query(sql::PUT_SECRET)
                    .bind(i(chain))
                    .bind(i(index))
                    .bind(sealed)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(())
            }
            async fn pending_secret(
                &self,
                chain: u64,
                index: u64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                sqlx::query_scalar(sql::SECRET)
                    .bind(i(chain))
                    .bind(i(index))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)
            }
            async fn drop_pending_secrets(
                &self,
                chain: u64,
                up_to_index: u64,
            ) -> Result<(), StoreError> {
                self.role.refuse_writes()?;
                sqlx::query(sql::DROP_SECRETS)
                    .bind(i(chain))
                    .bind(i(up_to_index))
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(())
            }
        }
    };
}
