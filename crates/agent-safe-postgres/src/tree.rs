//! The transparency layer over the database's audit log (`agent-safe-tlog`): the Merkle tree
//! of `audit_log`'s lines in `seq` order, its stored hashes in `audit_tree` (schema 7; the
//! layout of the file log's `<log>.tree`), and the signed checkpoints in `audit_checkpoints`.
//!
//! [`PgTree`] keeps the tree's right frontier in memory and catches up by reading the lines
//! after the tree's last leaf, pushing them, then inserting the new stored hashes and moving
//! `audit_tree_state.leaves` with a compare-and-set in one transaction: replicas catching up
//! at once write identical hashes (`ON CONFLICT DO NOTHING`), and the one whose move fails
//! resumes at the size the other reached. The state also holds the last leaf's hash; a log
//! that no longer has that line there (the table cleared and filled again) is re-indexed
//! from its first line, with the reason kept ([`PgTree::rebuilt`]).

use agent_safe_tlog::{
    CheckpointRecord, CheckpointStore, Hash, HashReader, IndexError, StoreError, TreeBuilder,
    TreeError, TreeSource, consistency_proof, inclusion_proof, leaf_hash, stored_count, tree_hash,
};

use crate::database::{Database, DbError};

/// Lines read per catch-up round.
const PAGE: i64 = 10_000;

fn store_error(e: DbError) -> IndexError {
    IndexError::Tree(TreeError::Store(e.to_string()))
}

/// The stored hashes of a tree of `stored` hashes, read from `audit_tree`.
struct PgHashes<'a> {
    db: &'a Database,
    stored: u64,
}

impl HashReader for PgHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        if let Some(&index) = indexes.iter().find(|&&i| i >= self.stored) {
            return Err(TreeError::MissingHash { index });
        }
        let wanted: Vec<i64> = indexes.iter().map(|&i| i64::try_from(i).unwrap_or(-1)).collect();
        let rows: Vec<(i64, Vec<u8>)> = self
            .db
            .run(async |c| {
                let rows = c
                    .query("SELECT idx, hash FROM audit_tree WHERE idx = ANY($1)", &[&wanted])
                    .await?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .map_err(|e| TreeError::Store(e.to_string()))?;
        let found: std::collections::HashMap<i64, Vec<u8>> = rows.into_iter().collect();
        indexes
            .iter()
            .zip(&wanted)
            .map(|(&index, idx)| {
                found
                    .get(idx)
                    .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
                    .map(Hash)
                    .ok_or(TreeError::MissingHash { index })
            })
            .collect()
    }
}

/// The tree of the database's audit log.
pub struct PgTree {
    db: Database,
    builder: TreeBuilder,
    rebuilt: Option<String>,
}

impl std::fmt::Debug for PgTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTree")
            .field("database", &self.db.url())
            .field("leaves", &self.builder.size())
            .finish_non_exhaustive()
    }
}

impl PgTree {
    /// The tree of `db`'s audit log (schema 7 or later), caught up with it.
    pub fn open(db: Database) -> Result<PgTree, IndexError> {
        let mut tree = PgTree { db, builder: TreeBuilder::new(), rebuilt: None };
        tree.catch_up()?;
        Ok(tree)
    }

    fn hashes(&self) -> PgHashes<'_> {
        PgHashes { db: &self.db, stored: stored_count(self.builder.size()) }
    }

    /// `(leaves, last_leaf)` of `audit_tree_state`.
    fn state(&self) -> Result<(u64, Option<Vec<u8>>), DbError> {
        self.db.run(async |c| {
            let row = c
                .query_one("SELECT leaves, last_leaf FROM audit_tree_state WHERE id = 1", &[])
                .await?;
            Ok((u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), row.get(1)))
        })
    }

    /// Whether the line of `seq` `leaves` still hashes to `last_leaf`; `None`: all is well,
    /// else why the tree must be rebuilt.
    fn mismatch(&self, leaves: u64, last_leaf: Option<&[u8]>) -> Result<Option<String>, DbError> {
        if leaves == 0 {
            return Ok(None);
        }
        let seq = i64::try_from(leaves).unwrap_or(i64::MAX);
        let line: Option<String> = self.db.run(async |c| {
            let row = c.query_opt("SELECT line FROM audit_log WHERE seq = $1", &[&seq]).await?;
            Ok(row.map(|r| r.get(0)))
        })?;
        Ok(match line {
            None => Some(format!(
                "the log has no entry {leaves}, the tree's last leaf (cut short or replaced)"
            )),
            Some(line) if Some(&leaf_hash(line.as_bytes()).0[..]) != last_leaf => Some(format!(
                "the log's entry {leaves} is not the one the tree holds (rewritten or replaced)"
            )),
            Some(_) => None,
        })
    }

    /// Empties the tree if it still has `leaves` leaves.
    fn clear(&self, leaves: u64) -> Result<(), DbError> {
        let old = i64::try_from(leaves).unwrap_or(i64::MAX);
        self.db.run(async |c| {
            let tx = c.transaction().await?;
            let moved = tx
                .execute(
                    "UPDATE audit_tree_state SET leaves = 0, last_leaf = NULL \
                     WHERE id = 1 AND leaves = $1",
                    &[&old],
                )
                .await?;
            if moved == 1 {
                tx.execute("DELETE FROM audit_tree", &[]).await?;
            }
            tx.commit().await
        })
    }
}

impl TreeSource for PgTree {
    fn catch_up(&mut self) -> Result<u64, IndexError> {
        let mut added = 0;
        self.rebuilt = None;
        loop {
            let (leaves, last_leaf) = self.state().map_err(store_error)?;
            if let Some(reason) =
                self.mismatch(leaves, last_leaf.as_deref()).map_err(store_error)?
            {
                self.clear(leaves).map_err(store_error)?;
                self.builder = TreeBuilder::new();
                self.rebuilt = Some(reason);
                continue;
            }
            if self.builder.size() != leaves {
                let reader = PgHashes { db: &self.db, stored: stored_count(leaves) };
                self.builder = TreeBuilder::resume(leaves, &reader)?;
            }
            let after = i64::try_from(leaves).unwrap_or(i64::MAX);
            let rows: Vec<(i64, String)> = self
                .db
                .run(async |c| {
                    let rows = c
                        .query(
                            "SELECT seq, line FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                            &[&after, &PAGE],
                        )
                        .await?;
                    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
                })
                .map_err(store_error)?;
            if rows.is_empty() {
                return Ok(added);
            }
            let mut builder = self.builder.clone();
            let mut new = Vec::new();
            for (seq, line) in &rows {
                if u64::try_from(*seq).ok() != Some(builder.size() + 1) {
                    return Err(IndexError::Tree(TreeError::Store(format!(
                        "{}: audit_log has no entry {} before entry {seq}",
                        self.db.url(),
                        builder.size() + 1
                    ))));
                }
                builder.push(leaf_hash(line.as_bytes()), &mut new);
            }
            let first = i64::try_from(stored_count(leaves)).unwrap_or(i64::MAX);
            let idx: Vec<i64> = (0..new.len()).map(|i| first + i as i64).collect();
            let hashes: Vec<Vec<u8>> = new.iter().map(|h| h.0.to_vec()).collect();
            let size = i64::try_from(builder.size()).unwrap_or(i64::MAX);
            let last = rows.last().map(|(_, l)| leaf_hash(l.as_bytes()).0.to_vec());
            let moved = self
                .db
                .run(async |c| {
                    let tx = c.transaction().await?;
                    tx.execute(
                        "INSERT INTO audit_tree (idx, hash) \
                         SELECT * FROM UNNEST($1::bigint[], $2::bytea[]) ON CONFLICT DO NOTHING",
                        &[&idx, &hashes],
                    )
                    .await?;
                    let moved = tx
                        .execute(
                            "UPDATE audit_tree_state SET leaves = $1, last_leaf = $2 \
                             WHERE id = 1 AND leaves = $3",
                            &[&size, &last, &after],
                        )
                        .await?;
                    tx.commit().await?;
                    Ok(moved)
                })
                .map_err(store_error)?;
            if moved == 1 {
                added += builder.size() - leaves;
                self.builder = builder;
            }
            // Else another process moved the tree meanwhile: the next round resumes from it.
        }
    }

    fn size(&self) -> u64 {
        self.builder.size()
    }

    fn root(&self) -> Hash {
        self.builder.root()
    }

    fn rebuilt(&self) -> Option<&str> {
        self.rebuilt.as_deref()
    }

    fn root_at(&self, size: u64) -> Result<Hash, IndexError> {
        Ok(tree_hash(size, &self.hashes())?)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, IndexError> {
        Ok(inclusion_proof(index, size, &self.hashes())?)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, IndexError> {
        Ok(consistency_proof(old, new, &self.hashes())?)
    }
}

/// The database's signed checkpoints (`audit_checkpoints`) and its entries by event id.
#[derive(Debug)]
pub struct PgCheckpointStore {
    db: Database,
}

impl PgCheckpointStore {
    /// The checkpoints of `db` (schema 7 or later).
    pub fn new(db: Database) -> PgCheckpointStore {
        PgCheckpointStore { db }
    }
}

impl CheckpointStore for PgCheckpointStore {
    fn location(&self) -> String {
        format!("{} (audit_checkpoints)", self.db.url())
    }

    fn notes(&self) -> Result<Vec<String>, StoreError> {
        let records: Vec<(i64, String)> = self
            .db
            .run(async |c| {
                let rows =
                    c.query("SELECT id, record FROM audit_checkpoints ORDER BY id", &[]).await?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .map_err(|e| StoreError(e.to_string()))?;
        records
            .into_iter()
            .map(|(id, record)| {
                serde_json::from_str::<CheckpointRecord>(&record).map(|r| r.note).map_err(|e| {
                    StoreError(format!(
                        "{}: audit_checkpoints row {id} is not a checkpoint record: {e}",
                        self.db.url()
                    ))
                })
            })
            .collect()
    }

    fn append(&mut self, record: &CheckpointRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
        let size = i64::try_from(record.tree_size).unwrap_or(i64::MAX);
        self.db
            .run(async |c| {
                c.execute(
                    "INSERT INTO audit_checkpoints (tree_size, event_id, record) VALUES ($1, $2, $3)",
                    &[&size, &record.event_id, &text],
                )
                .await
            })
            .map(|_| ())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn entry(&self, event_id: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let row: Option<(i64, String)> = self
            .db
            .run(async |c| {
                let row = c
                    .query_opt(
                        "SELECT seq, line FROM audit_log WHERE event_id = $1 ORDER BY seq LIMIT 1",
                        &[&event_id],
                    )
                    .await?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            })
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(row.map(|(seq, line)| {
            (u64::try_from(seq).unwrap_or(0).saturating_sub(1), line.into_bytes())
        }))
    }
}
