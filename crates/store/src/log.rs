//! The transparency log's storage (docs/transparency.md): its entries, one hash per complete
//! subtree, the checkpoints the log signed, witnesses' cosignatures, and — for a beacon that
//! witnesses others — the last checkpoint it cosigned for each log.
//!
//! Entries and hashes are written only inside the transaction that stores their pulse (the
//! append, [`PooledStore::log_append_in`]) or their draw ([`PooledStore::put_draw`]), under the
//! log's own lock, so the log and the chain can never disagree and two writers never number two
//! entries alike. Everything else reads through the [`Log`] trait, implemented once for both
//! backends.

use crate::error::StoreError;
use crate::pooled::{BeginAppend, PooledStore};
use crate::row;
use crate::row::ReadColumns;
use crate::sql::{db_int, now_ms};
use lavabeacon_format::hash::Hash512;
use lavabeacon_tlog::merkle::{self, Hash, NodeId, ProofError};
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use std::collections::HashMap;

/// An entry about to be appended, and what it stands for.
pub(crate) struct NewEntry {
    pub entry: Vec<u8>,
    /// A pulse's (chain, index).
    pub pulse: Option<(u64, u64)>,
    /// A draw's id.
    pub draw: Option<Vec<u8>>,
}

/// The log as the store keeps it. Proofs and roots are made from stored subtree hashes (the
/// calls on `dyn Log`); nothing is held in memory.
#[async_trait::async_trait]
pub trait Log: Send + Sync {
    /// How many entries the log holds.
    async fn size(&self) -> Result<u64, StoreError>;
    /// The stored hashes of these complete subtrees, in the order asked; a subtree that is not
    /// stored is an error (callers ask only for subtrees of a tree the log has).
    async fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;
    /// Up to `count` entries from leaf `from` on, in order.
    async fn entries(&self, from: u64, count: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// The leaf index of a pulse, if it is in the log.
    async fn leaf_of_pulse(&self, chain: u64, index: u64) -> Result<Option<u64>, StoreError>;
    /// The leaf index of a draw registration, if it is in the log.
    async fn leaf_of_draw(&self, id: &Hash512) -> Result<Option<u64>, StoreError>;
    /// Keeps a checkpoint the log signed for `size` (a second one for that size is ignored:
    /// the first stays the answer).
    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError>;
    /// The checkpoint for `size`, or the newest (`None`): (size, signed note).
    async fn checkpoint(&self, size: Option<u64>) -> Result<Option<(u64, String)>, StoreError>;
    /// Keeps a witness's cosignature line on the checkpoint for `size`.
    async fn put_cosignature(&self, size: u64, witness: &str, line: &str)
        -> Result<(), StoreError>;
    /// The cosignature lines on the checkpoint for `size`: (witness, line).
    async fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError>;
    /// The largest size a witness cosigned for this log.
    async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError>;
    /// As a witness: the last (size, root) cosigned for the log `origin`.
    async fn witness_state(&self, origin: &str) -> Result<Option<(u64, Hash)>, StoreError>;
    /// As a witness: moves the log `origin` from `from` (as read; `None`: never seen) to `to`,
    /// only if it is still at `from`. False when another request moved it first. The database
    /// itself refuses a smaller size or another root at the same size.
    async fn advance_witness(
        &self,
        origin: &str,
        from: Option<(u64, Hash)>,
        to: (u64, Hash),
    ) -> Result<bool, StoreError>;
}

impl dyn Log + '_ {
    /// The root of the tree of the first `size` entries.
    pub async fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.range_hashes(&[(0, size)])
            .await
            .map(|v| v.first().copied().unwrap_or_else(merkle::empty_root))
    }

    /// The inclusion proof of leaf `index` in the tree of `size`.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let ranges = merkle::inclusion_ranges(index, size).map_err(refused)?;
        self.range_hashes(&ranges).await
    }

    /// The consistency proof from the tree of `old` to the tree of `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        let ranges = merkle::consistency_ranges(old, new).map_err(refused)?;
        self.range_hashes(&ranges).await
    }

    /// The hash of each range, from one read of the subtrees they are made of.
    async fn range_hashes(&self, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, StoreError> {
        let ids = merkle::nodes_for(ranges);
        let stored: HashMap<NodeId, Hash> =
            ids.iter().copied().zip(self.hashes(&ids).await?).collect();
        Ok(ranges
            .iter()
            .map(|&(lo, hi)| merkle::range_hash(lo, hi, &mut |id| stored[&id]))
            .collect())
    }
}

fn refused(e: ProofError) -> StoreError {
    StoreError::unsupported(e.to_string())
}

const SIZE: &str = "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_entries";
const ENTRIES: &str =
    "SELECT entry FROM log_entries WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index";
const LEAF_OF_PULSE: &str =
    "SELECT leaf_index FROM log_entries WHERE chain_index = $1 AND pulse_index = $2";
const LEAF_OF_DRAW: &str = "SELECT leaf_index FROM log_entries WHERE draw_id = $1";
const PUT_CHECKPOINT: &str = "INSERT INTO log_checkpoints (tree_size, note, signed_ms) VALUES ($1, $2, $3) ON CONFLICT (tree_size) DO NOTHING";
const CHECKPOINT: &str = "SELECT tree_size, note FROM log_checkpoints WHERE tree_size = $1";
const NEWEST_CHECKPOINT: &str =
    "SELECT tree_size, note FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1";
const PUT_COSIGNATURE: &str = "INSERT INTO log_cosignatures (tree_size, witness, line, added_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size, witness) DO NOTHING";
const COSIGNATURES: &str =
    "SELECT witness, line FROM log_cosignatures WHERE tree_size = $1 ORDER BY witness";
const COSIGNED_SIZE: &str = "SELECT MAX(tree_size) FROM log_cosignatures WHERE witness = $1";
const WITNESS_STATE: &str = "SELECT tree_size, root FROM witness_state WHERE origin = $1";
const WITNESS_FIRST: &str = "INSERT INTO witness_state (origin, tree_size, root, updated_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (origin) DO NOTHING";
const WITNESS_MOVE: &str = "UPDATE witness_state SET tree_size = $1, root = $2, updated_ms = $3 WHERE origin = $4 AND tree_size = $5 AND root = $6";
/// Is the newest pulse before `$1` missing from the log? (A store made before the log
/// existed.) Only that one is asked about: every append since writes its pulses' entries.
const BEHIND: &str = "SELECT COUNT(*) FROM pulses p WHERE p.time_ms = (SELECT MAX(time_ms) FROM pulses WHERE time_ms < $1) \
    AND NOT EXISTS (SELECT 1 FROM log_entries l WHERE l.chain_index = p.chain_index AND l.pulse_index = p.pulse_index)";
/// Every pulse not yet in the log, in publication order.
const MISSING: &str = "SELECT chain_index, pulse_index, output_value FROM pulses p \
    WHERE NOT EXISTS (SELECT 1 FROM log_entries l WHERE l.chain_index = p.chain_index AND l.pulse_index = p.pulse_index) \
    ORDER BY time_ms";

/// Rows per multi-row INSERT of entries or hashes (SQLite allows 32,766 parameters).
const ROWS_PER_INSERT: usize = 1000;

fn hash_of(bytes: Vec<u8>, what: &str) -> Result<Hash, StoreError> {
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{what}: a stored tree hash is not 32 bytes")))
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
    /// Appends `entries` to the log inside an append's transaction (the log's lock held): the
    /// pulses stored before the log existed first, then these. Returns the new size.
    pub(crate) async fn log_append_in(
        &self,
        tx: &mut Transaction<'_, DB>,
        mut entries: Vec<NewEntry>,
        new_pulses_from_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        let fail = self.fail();
        // `entries`' pulses are already inserted: "behind" asks about the newest one before
        // them (for a draw, the newest of all).
        let before_ms = new_pulses_from_ms.unwrap_or(i64::MAX);
        let behind: i64 = sqlx::query_scalar(BEHIND)
            .bind(before_ms)
            .fetch_one(&mut **tx)
            .await
            .map_err(fail)?;
        if behind > 0 {
            let missing: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(MISSING)
                .fetch_all(&mut **tx)
                .await
                .map_err(fail)?;
            let new: std::collections::HashSet<(u64, u64)> =
                entries.iter().filter_map(|e| e.pulse).collect();
            let mut all: Vec<NewEntry> = missing
                .into_iter()
                .filter(|(c, p, _)| !new.contains(&(*c as u64, *p as u64)))
                .map(|(c, p, out)| NewEntry {
                    entry: out,
                    pulse: Some((c as u64, p as u64)),
                    draw: None,
                })
                .collect();
            if !all.is_empty() {
                tracing::info!(
                    pulses = all.len(),
                    "the transparency log takes in the pulses stored before it existed"
                );
            }
            all.append(&mut entries);
            entries = all;
        }
        let size: i64 = sqlx::query_scalar(SIZE)
            .fetch_one(&mut **tx)
            .await
            .map_err(fail)?;
        let size = size as u64;
        let frontier_ids = merkle::frontier(size);
        let frontier: HashMap<NodeId, Hash> = frontier_ids
            .iter()
            .copied()
            .zip(self.read_hashes(&mut **tx, &frontier_ids).await?)
            .collect();
        let leaves: Vec<Hash> = entries
            .iter()
            .map(|e| merkle::leaf_hash(&e.entry))
            .collect();
        let nodes = merkle::appended(size, &leaves, &mut |id| frontier[&id]);
        for (n, chunk) in entries.chunks(ROWS_PER_INSERT).enumerate() {
            let statement = row::insert_rows::<DB>(
                "log_entries",
                &[
                    "leaf_index",
                    "entry",
                    "chain_index",
                    "pulse_index",
                    "draw_id",
                ],
                chunk.len(),
            );
            let mut q = sqlx::query(&statement);
            for (i, e) in chunk.iter().enumerate() {
                let leaf = size + (n * ROWS_PER_INSERT + i) as u64;
                q = q
                    .bind(db_int(leaf))
                    .bind(e.entry.clone())
                    .bind(e.pulse.map(|(c, _)| db_int(c)))
                    .bind(e.pulse.map(|(_, i)| db_int(i)))
                    .bind(e.draw.clone());
            }
            q.execute(&mut **tx).await.map_err(fail)?;
        }
        for chunk in nodes.chunks(ROWS_PER_INSERT) {
            let statement =
                row::insert_rows::<DB>("log_hashes", &["level", "idx", "hash"], chunk.len());
            let mut q = sqlx::query(&statement);
            for (id, h) in chunk {
                q = q
                    .bind(i64::from(id.level))
                    .bind(db_int(id.index))
                    .bind(h.to_vec());
            }
            q.execute(&mut **tx).await.map_err(fail)?;
        }
        Ok(size + entries.len() as u64)
    }

    /// Stored hashes, in the order asked, read with one statement: consecutive subtrees of a
    /// level (a tile) as one range condition.
    async fn read_hashes<'e, E>(&self, conn: E, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>
    where
        E: Executor<'e, Database = DB>,
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sorted = ids.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut runs: Vec<(u8, u64, u64)> = Vec::new();
        for id in &sorted {
            match runs.last_mut() {
                Some((l, _, end)) if *l == id.level && *end == id.index => *end += 1,
                _ => runs.push((id.level, id.index, id.index + 1)),
            }
        }
        let mut statement = String::from("SELECT level, idx, hash FROM log_hashes WHERE ");
        let mut p = 0;
        for (i, _) in runs.iter().enumerate() {
            if i > 0 {
                statement.push_str(" OR ");
            }
            statement.push_str("(level = ");
            p += 1;
            DB::push(&mut statement, p);
            statement.push_str(" AND idx >= ");
            p += 1;
            DB::push(&mut statement, p);
            statement.push_str(" AND idx < ");
            p += 1;
            DB::push(&mut statement, p);
            statement.push(')');
        }
        let mut q = sqlx::query_as::<DB, (i64, i64, Vec<u8>)>(&statement);
        for (level, from, to) in &runs {
            q = q
                .bind(i64::from(*level))
                .bind(db_int(*from))
                .bind(db_int(*to));
        }
        let rows = q.fetch_all(conn).await.map_err(self.fail())?;
        let mut found: HashMap<NodeId, Hash> = HashMap::with_capacity(rows.len());
        for (level, idx, hash) in rows {
            let id = NodeId {
                level: level as u8,
                index: idx as u64,
            };
            found.insert(id, hash_of(hash, "log_hashes")?);
        }
        ids.iter()
            .map(|id| {
                found.get(id).copied().ok_or_else(|| {
                    StoreError::corrupt(format!(
                        "the log's hash of level {} number {} is not stored",
                        id.level, id.index
                    ))
                })
            })
            .collect()
    }

    pub(crate) async fn log_size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar(SIZE)
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(size as u64)
    }

    pub(crate) async fn log_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.read_hashes(&self.pool, ids).await
    }

    pub(crate) async fn log_entries(
        &self,
        from: u64,
        count: u64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        sqlx::query_scalar(ENTRIES)
            .bind(db_int(from))
            .bind(db_int(from.saturating_add(count)))
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub(crate) async fn leaf_of_pulse(
        &self,
        chain: u64,
        index: u64,
    ) -> Result<Option<u64>, StoreError> {
        let leaf: Option<i64> = sqlx::query_scalar(LEAF_OF_PULSE)
            .bind(db_int(chain))
            .bind(db_int(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(leaf.map(|l| l as u64))
    }

    pub(crate) async fn leaf_of_draw(&self, id: &Hash512) -> Result<Option<u64>, StoreError> {
        let leaf: Option<i64> = sqlx::query_scalar(LEAF_OF_DRAW)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(leaf.map(|l| l as u64))
    }

    pub(crate) async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        sqlx::query(PUT_CHECKPOINT)
            .bind(db_int(size))
            .bind(note.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(())
    }

    pub(crate) async fn checkpoint(
        &self,
        size: Option<u64>,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let row: Option<(i64, String)> = match size {
            Some(s) => sqlx::query_as(CHECKPOINT).bind(db_int(s)),
            None => sqlx::query_as(NEWEST_CHECKPOINT),
        }
        .fetch_optional(&self.pool)
        .await
        .map_err(self.fail())?;
        Ok(row.map(|(s, n)| (s as u64, n)))
    }

    pub(crate) async fn put_cosignature(
        &self,
        size: u64,
        witness: &str,
        line: &str,
    ) -> Result<(), StoreError> {
        self.role.refuse_writes()?;
        sqlx::query(PUT_COSIGNATURE)
            .bind(db_int(size))
            .bind(witness.to_string())
            .bind(line.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(())
    }

    pub(crate) async fn cosignatures(
        &self,
        size: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(COSIGNATURES)
            .bind(db_int(size))
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail())
    }

    pub(crate) async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(COSIGNED_SIZE)
            .bind(witness.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail())?;
        Ok(size.map(|s| s as u64))
    }

    pub(crate) async fn witness_state(
        &self,
        origin: &str,
    ) -> Result<Option<(u64, Hash)>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(WITNESS_STATE)
            .bind(origin.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        row.map(|(s, r)| Ok((s as u64, hash_of(r, "witness_state")?)))
            .transpose()
    }

    pub(crate) async fn advance_witness(
        &self,
        origin: &str,
        from: Option<(u64, Hash)>,
        to: (u64, Hash),
    ) -> Result<bool, StoreError> {
        self.role.refuse_writes()?;
        let done = match from {
            None => sqlx::query(WITNESS_FIRST)
                .bind(origin.to_string())
                .bind(db_int(to.0))
                .bind(to.1.to_vec())
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(self.fail())?,
            Some((size, root)) => sqlx::query(WITNESS_MOVE)
                .bind(db_int(to.0))
                .bind(to.1.to_vec())
                .bind(now_ms())
                .bind(origin.to_string())
                .bind(db_int(size))
                .bind(root.to_vec())
                .execute(&self.pool)
                .await
                .map_err(self.fail())?,
        };
        Ok(done.rows() == 1)
    }

    /// Registers a draw and, when it is new, appends its log entry, in one transaction under
    /// the log's lock.
    pub(crate) async fn put_draw_logged(
        &self,
        writer: &impl BeginAppend<DB>,
        d: &crate::StoredDraw,
        entry: &[u8],
    ) -> Result<crate::StoredDraw, StoreError> {
        self.role.refuse_writes()?;
        let mut conn = self.pool.acquire().await.map_err(self.fail())?;
        let result = async {
            let mut tx = writer.begin_log(&mut conn).await?;
            let inserted = sqlx::query(crate::sql::PUT_DRAW)
                .bind(d.id.0.to_vec())
                .bind(d.spec.clone())
                .bind(d.receipt.clone())
                .bind(d.target_ms)
                .bind(d.registered_ms)
                .execute(&mut *tx)
                .await
                .map_err(self.fail())?;
            if inserted.rows() == 1 {
                self.log_append_in(
                    &mut tx,
                    vec![NewEntry {
                        entry: entry.to_vec(),
                        pulse: None,
                        draw: Some(d.id.0.to_vec()),
                    }],
                    None,
                )
                .await?;
            }
            tx.commit().await.map_err(self.fail())
        }
        .await;
        crate::pooled::discard_if_failed(&mut conn, &result);
        result?;
        self.draw(&d.id)
            .await?
            .ok_or_else(|| StoreError::corrupt("a draw just stored is not there"))
    }
}

/// `rows_affected` of both backends' query results.
pub(crate) trait RowsAffected {
    fn rows(&self) -> u64;
}
impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}
impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// The [`Log`] of a backend, each call the shared SQL's.
macro_rules! log_for {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::log::Log for $store {
            async fn size(&self) -> Result<u64, StoreError> {
                self.sql.log_size().await
            }
            async fn hashes(
                &self,
                ids: &[lavabeacon_tlog::NodeId],
            ) -> Result<Vec<lavabeacon_tlog::Hash>, StoreError> {
                self.sql.log_hashes(ids).await
            }
            async fn entries(&self, from: u64, count: u64) -> Result<Vec<Vec<u8>>, StoreError> {
                self.sql.log_entries(from, count).await
            }
            async fn leaf_of_pulse(
                &self,
                chain: u64,
                index: u64,
            ) -> Result<Option<u64>, StoreError> {
                self.sql.leaf_of_pulse(chain, index).await
            }
            async fn leaf_of_draw(&self, id: &Hash512) -> Result<Option<u64>, StoreError> {
                self.sql.leaf_of_draw(id).await
            }
            async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
                self.sql.put_checkpoint(size, note).await
            }
            async fn checkpoint(
                &self,
                size: Option<u64>,
            ) -> Result<Option<(u64, String)>, StoreError> {
                self.sql.checkpoint(size).await
            }
            async fn put_cosignature(
                &self,
                size: u64,
                witness: &str,
                line: &str,
            ) -> Result<(), StoreError> {
                self.sql.put_cosignature(size, witness, line).await
            }
            async fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
                self.sql.cosignatures(size).await
            }
            async fn cosigned_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
                self.sql.cosigned_size(witness).await
            }
            async fn witness_state(
                &self,
                origin: &str,
            ) -> Result<Option<(u64, lavabeacon_tlog::Hash)>, StoreError> {
                self.sql.witness_state(origin).await
            }
            async fn advance_witness(
                &self,
                origin: &str,
                from: Option<(u64, lavabeacon_tlog::Hash)>,
                to: (u64, lavabeacon_tlog::Hash),
            ) -> Result<bool, StoreError> {
                self.sql.advance_witness(origin, from, to).await
            }
        }
    };
}
pub(crate) use log_for;
