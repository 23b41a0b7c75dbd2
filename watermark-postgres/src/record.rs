//! One key's record, locked: a transaction holding the key's advisory lock.

use std::time::{Duration, Instant};

use tezos_keys::high_watermark::{GuardError, Height, KeyMarks, LockedRecord, Mark, MarkKind};
use tezos_keys::{ChainId, PublicKeyHash, Signature};
use tokio_postgres::Statement;

use crate::conn::{Conn, DbError};
use crate::error::{guard_error, record_path};
use crate::PostgresStore;

const LOAD: &str = "SELECT chain, kind, level, round, digest, signature \
                    FROM tezos_watermarks WHERE key = $1";
/// Inserts a mark, or raises the row's: the `WHERE` writes only a height strictly above the
/// row's, so the database itself never lowers a record nor replaces, at the same height, the
/// bytes (and the signature) it holds.
const UPSERT: &str = "INSERT INTO tezos_watermarks AS w \
                          (key, chain, kind, level, round, digest, signature) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (key, chain, kind) DO UPDATE SET \
                          level = EXCLUDED.level, round = EXCLUDED.round, \
                          digest = EXCLUDED.digest, signature = EXCLUDED.signature, \
                          updated_at = now() \
                      WHERE tezos_watermark_below(w.level, w.round, \
                                                  EXCLUDED.level, EXCLUDED.round)";
const RECORDED: &str = "SELECT level, round, digest FROM tezos_watermarks \
                        WHERE key = $1 AND chain = $2 AND kind = $3";

/// A key's record, locked by an open transaction that holds its advisory lock. `save`
/// commits, which releases the lock; a later `load` or `save` through the same record begins
/// a new transaction and takes the lock again first. Dropped without a save: rolled back.
pub(crate) struct PgRecord<'a> {
    pub(crate) store: &'a PostgresStore,
    pub(crate) key: PublicKeyHash,
    /// `None` once the connection was found broken (it is then closed, never reused).
    pub(crate) conn: Option<Conn>,
    /// Whether a transaction holding the lock is open.
    pub(crate) locked: bool,
    /// The record as read or written in the current transaction.
    pub(crate) loaded: Option<KeyMarks>,
    /// Whether the connection was found closed by the last failure.
    pub(crate) broken: bool,
}

impl PgRecord<'_> {
    fn key_text(&self) -> String {
        self.key.to_string()
    }

    /// The guard's error for `e`, met while `action`-ing; the connection is closed (its
    /// transaction is aborted, and may be ambiguous after a failed COMMIT).
    fn fail(&mut self, action: &'static str, e: &DbError) -> GuardError {
        self.locked = false;
        self.loaded = None;
        if let Some(conn) = self.conn.take() {
            self.broken = conn.is_closed();
            self.store.pool.checkin(conn, false);
        }
        guard_error(
            self.store.pool.target(),
            &self.key_text(),
            action,
            e,
            Duration::ZERO,
        )
    }

    fn corrupt(&self, reason: String) -> GuardError {
        GuardError::StoreCorrupt {
            path: record_path(self.store.pool.target(), &self.key_text()),
            reason,
        }
    }

    /// The connection, or an error if it was closed after an earlier failure.
    fn conn(&mut self) -> Result<&mut Conn, GuardError> {
        let path = record_path(self.store.pool.target(), &self.key.to_string());
        self.conn.as_mut().ok_or_else(|| GuardError::StoreIo {
            path,
            action: "use",
            source: std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the connection was closed after an earlier error; lock the record again",
            ),
        })
    }

    /// Begins the transaction and takes the key's lock, and prepares the statements.
    pub(crate) fn lock(&mut self) -> Result<(), GuardError> {
        self.ready().map(drop)
    }

    /// The statements, with the key's lock held in an open transaction (taken again after
    /// a commit) and the statements prepared on the connection.
    fn ready(&mut self) -> Result<[Statement; 3], GuardError> {
        if !self.locked {
            let started = Instant::now();
            let sql = PostgresStore::lock_sql(&self.key);
            if let Err(e) = self.conn()?.batch(&sql) {
                let waited = started.elapsed();
                let target = self.store.pool.target();
                let err = guard_error(target, &self.key.to_string(), "lock", &e, waited);
                self.fail("lock", &e);
                return Err(err);
            }
            self.locked = true;
        }
        let conn = self.conn()?;
        if let Some(statements) = &conn.statements {
            return Ok(statements.clone());
        }
        let prepared = (|| {
            Ok::<_, DbError>([
                conn.prepare(LOAD)?,
                conn.prepare(UPSERT)?,
                conn.prepare(RECORDED)?,
            ])
        })();
        match prepared {
            Ok(statements) => {
                conn.statements = Some(statements.clone());
                Ok(statements)
            }
            Err(e) => Err(self.fail("prepare statements for", &e)),
        }
    }

    fn parse_row(
        &self,
        row: &tokio_postgres::Row,
    ) -> Result<((ChainId, MarkKind), Mark), GuardError> {
        let chain: String = row.get(0);
        let kind: String = row.get(1);
        let at = |what: String| self.corrupt(format!("row ({chain}, {kind}): {what}"));
        let chain_id: ChainId = chain
            .parse()
            .map_err(|e| at(format!("chain {chain:?}: {e}")))?;
        let mark_kind = MarkKind::from_name(&kind).ok_or_else(|| at(format!("kind {kind:?}")))?;
        let level =
            u32::try_from(row.get::<_, i64>(2)).map_err(|_| at("level out of range".to_owned()))?;
        let round = row
            .get::<_, Option<i64>>(3)
            .map(u32::try_from)
            .transpose()
            .map_err(|_| at("round out of range".to_owned()))?;
        let digest = row
            .get::<_, Option<Vec<u8>>>(4)
            .map(<[u8; 32]>::try_from)
            .transpose()
            .map_err(|_| at("digest is not 32 bytes".to_owned()))?;
        let signature = match row.get::<_, Option<String>>(5) {
            None => None,
            Some(text) => {
                let signature: Signature =
                    text.parse().map_err(|e| at(format!("signature: {e}")))?;
                if signature.curve() != self.key.curve() {
                    return Err(at("signature is for another curve than the key".to_owned()));
                }
                Some(signature)
            }
        };
        // A mark without signature is a floor (tezos_keys::high_watermark::Mark::floor).
        let mark = Mark {
            height: Height { level, round },
            digest,
            signature,
        };
        Ok(((chain_id, mark_kind), mark))
    }
}

impl LockedRecord for PgRecord<'_> {
    fn load(&mut self) -> Result<KeyMarks, GuardError> {
        let key = self.key_text();
        let [load, _, _] = self.ready()?;
        let rows = match self.conn()?.query(&load, &[&key]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail("read", &e)),
        };
        let mut marks = KeyMarks::new();
        for row in &rows {
            let (at, mark) = self.parse_row(row)?;
            marks.insert(at, mark);
        }
        self.loaded = Some(marks.clone());
        Ok(marks)
    }

    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError> {
        let current = match (self.locked, self.loaded.take()) {
            (true, Some(current)) => current,
            _ => self.load()?,
        };
        tezos_keys::high_watermark::refuse_regression(&self.key, &current, marks)?;
        let key = self.key_text();
        let [_, upsert, recorded] = self.ready()?;
        for ((chain, kind), mark) in marks {
            if current.get(&(*chain, *kind)) == Some(mark) {
                continue;
            }
            let chain_text = chain.to_string();
            let written = self.conn()?.execute(
                &upsert,
                &[
                    &key,
                    &chain_text,
                    &kind.name(),
                    &i64::from(mark.height.level),
                    &mark.height.round.map(i64::from),
                    &mark.digest.as_ref().map(<[u8; 32]>::as_slice),
                    &mark.signature.map(|s| s.to_string()),
                ],
            );
            match written {
                Ok(1) => {}
                Ok(_) => {
                    // Not written: the row is at or above this height. The very same bytes
                    // at the same height are already recorded (their signature kept); else
                    // somebody wrote without this key's lock: refuse, write nothing.
                    let row = self
                        .conn()?
                        .query(&recorded, &[&key, &chain_text, &kind.name()])
                        .map(|rows| rows.into_iter().next());
                    let row = match row {
                        Ok(Some(row)) => row,
                        Ok(None) => {
                            return Err(self.corrupt(format!(
                                "the ({chain}, {kind}) row was not written and is not there"
                            )))
                        }
                        Err(e) => return Err(self.fail("read", &e)),
                    };
                    let wide = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
                    let recorded = Height {
                        level: wide(row.get::<_, i64>(0)),
                        round: row.get::<_, Option<i64>>(1).map(wide),
                    };
                    // A floor (no signature) is never "the same bytes": it refuses its height.
                    let same_bytes = mark.signature.is_some()
                        && row.get::<_, Option<Vec<u8>>>(2).as_deref()
                            == mark.digest.as_ref().map(<[u8; 32]>::as_slice);
                    if same_bytes && recorded.compare(&mark.height) == core::cmp::Ordering::Equal {
                        continue;
                    }
                    self.rollback();
                    return Err(GuardError::DoubleSign {
                        key: self.key,
                        chain: *chain,
                        kind: *kind,
                        requested: mark.height,
                        recorded,
                    });
                }
                Err(e) => return Err(self.fail("write", &e)),
            }
        }
        // COMMIT returns once the record is durable (synchronous_commit is on for the
        // session). If it fails the outcome is unknown: the error is returned, so the
        // signature never leaves the guard, and the next request reads whichever is there.
        if let Err(e) = self.conn()?.batch("COMMIT") {
            return Err(self.fail("commit", &e));
        }
        self.locked = false;
        self.loaded = Some(marks.clone());
        Ok(())
    }
}

impl PgRecord<'_> {
    /// Ends the open transaction without writing; a connection that cannot is closed.
    fn rollback(&mut self) {
        if !self.locked {
            return;
        }
        self.locked = false;
        self.loaded = None;
        if let Some(conn) = self.conn.as_mut() {
            if conn.batch("ROLLBACK").is_err() {
                if let Some(conn) = self.conn.take() {
                    self.store.pool.checkin(conn, false);
                }
            }
        }
    }
}

impl Drop for PgRecord<'_> {
    fn drop(&mut self) {
        self.rollback();
        if let Some(conn) = self.conn.take() {
            self.store.pool.checkin(conn, true);
        }
    }
}
