//! The tables, and their versioned migrations, applied at open under an advisory lock.
//!
//! `tezos_watermarks_schema` holds one row per migration applied (version, description,
//! time). [`migrate`] takes a transaction-scoped advisory lock, so concurrent opens (two
//! signers starting together) apply each migration exactly once; the migrations and the rows
//! that record them commit in one transaction, so a crash leaves the schema as it was.

use crate::conn::{Conn, DbError};
use crate::{PgStoreError, Target};

/// The advisory lock class (first key of the two-key form) of the per-key record locks:
/// `'tzhw'`. The second key is [`crate::PostgresStore::lock_id`].
pub(crate) const RECORD_LOCK_CLASS: i32 = 0x747a_6877;

/// The advisory lock (class, id) held while migrating: `'tzmg'`, 0.
const MIGRATION_LOCK: (i32, i32) = (0x747a_6d67, 0);

/// The migrations, in order; version `i + 1` is `MIGRATIONS[i]`. Never edit one that has
/// shipped: add the next.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "one row per (key, chain, kind); heights never move backwards",
        r"
CREATE FUNCTION tezos_watermark_below(level bigint, round bigint, old_level bigint, old_round bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    -- Octez's rule (src/bin_signer/handler.ml): by (level, round), by level alone for a
    -- legacy entry without a round.
    SELECT CASE WHEN round IS NULL OR old_round IS NULL THEN level < old_level
                ELSE (level, round) < (old_level, old_round) END
$$;

CREATE TABLE tezos_watermarks (
    key        text        NOT NULL,
    chain      text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('block', 'preattestation', 'attestation')),
    level      bigint      NOT NULL CHECK (level BETWEEN 0 AND 4294967295),
    round      bigint               CHECK (round BETWEEN 0 AND 4294967295),
    digest     bytea       NOT NULL CHECK (octet_length(digest) = 32),
    signature  text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, chain, kind)
);

-- Whoever writes (this store, an operator with psql): a height never moves backwards, and a
-- row never changes its key, chain or kind.
CREATE FUNCTION tezos_watermarks_no_regression() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.key, NEW.chain, NEW.kind) IS DISTINCT FROM (OLD.key, OLD.chain, OLD.kind) THEN
        RAISE EXCEPTION 'tezos_watermarks: a row keeps its key, chain and kind'
            USING ERRCODE = 'check_violation';
    END IF;
    IF tezos_watermark_below(NEW.level, NEW.round, OLD.level, OLD.round) THEN
        RAISE EXCEPTION 'tezos_watermarks: % % on % would move back from level % round % to level % round %',
            OLD.key, OLD.kind, OLD.chain, OLD.level, OLD.round, NEW.level, NEW.round
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tezos_watermarks_no_regression BEFORE UPDATE ON tezos_watermarks
    FOR EACH ROW EXECUTE FUNCTION tezos_watermarks_no_regression();
",
    ),
    (
        "floors: a mark without signature (watermark set, watermark import) refuses its own height",
        r"
ALTER TABLE tezos_watermarks
    ALTER COLUMN digest DROP NOT NULL,
    ALTER COLUMN signature DROP NOT NULL,
    ADD CONSTRAINT tezos_watermarks_signature_has_digest
        CHECK (signature IS NULL OR digest IS NOT NULL);
",
    ),
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Brings the schema to [`LATEST`], under the migration lock; refuses a newer schema.
pub(crate) fn migrate(conn: &mut Conn, target: &Target) -> Result<i32, PgStoreError> {
    let result = migrate_in_transaction(conn, target);
    if result.is_err() {
        // Best effort: a connection that cannot roll back is closed by the caller.
        let _ = conn.batch("ROLLBACK");
    }
    result
}

fn migrate_in_transaction(conn: &mut Conn, target: &Target) -> Result<i32, PgStoreError> {
    let failed = |e: DbError| PgStoreError::Schema {
        database: target.display().to_owned(),
        reason: target.describe(&e),
    };
    conn.batch(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({}, {})",
        MIGRATION_LOCK.0, MIGRATION_LOCK.1
    ))
    .map_err(failed)?;
    // Looked up first: CREATE TABLE IF NOT EXISTS needs the CREATE privilege even when the
    // table exists, and a signer's role, once the tables are made, needs no more than
    // SELECT, INSERT and UPDATE.
    let exists: bool = conn
        .query_one(
            "SELECT to_regclass('tezos_watermarks_schema') IS NOT NULL",
            &[],
        )
        .map_err(failed)?
        .get(0);
    if !exists {
        conn.batch(
            "CREATE TABLE tezos_watermarks_schema (
                 version     integer     PRIMARY KEY,
                 description text        NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .map_err(failed)?;
    }
    let current: i32 = conn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM tezos_watermarks_schema",
            &[],
        )
        .map_err(failed)?
        .get(0);
    if current > LATEST {
        return Err(PgStoreError::SchemaTooNew {
            database: target.display().to_owned(),
            found: current,
            known: LATEST,
        });
    }
    for (version, (description, sql)) in (1..).zip(MIGRATIONS) {
        if version <= current {
            continue;
        }
        conn.batch(sql).map_err(failed)?;
        conn.query_one(
            "INSERT INTO tezos_watermarks_schema (version, description) VALUES ($1, $2) \
             RETURNING version",
            &[&version, description],
        )
        .map_err(failed)?;
    }
    conn.batch("COMMIT").map_err(failed)?;
    Ok(LATEST)
}
