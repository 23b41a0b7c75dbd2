//! Why the store could not be opened ([`PgStoreError`], with a stable `kind()`), and how a
//! database error becomes the guard's [`GuardError`] while a record is in use.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use tezos_keys::GuardError;
use tokio_postgres::error::SqlState;

use crate::conn::DbError;
use crate::target::Target;

/// Why [`crate::PostgresStore::open`] failed. No message holds the database password: the
/// URL is shown without it, and the driver's messages are scrubbed of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The URL is not a PostgreSQL connection URL (or key=value string).
    #[error(
        "the watermark database URL is not valid ({reason}); expected \
         postgres://USER@HOST[:PORT]/DATABASE (the password from PGPASSWORD, or \
         postgres://USER:PASSWORD@… in an environment variable, never on a command line)"
    )]
    InvalidUrl {
        /// What is wrong with it (never the URL itself, which may hold a password).
        reason: String,
    },
    /// The database could not be reached or refused the connection.
    #[error(
        "cannot connect to the watermark database {database}: {reason}; consensus signing \
         stops until it is reachable (check that PostgreSQL runs, the address, the user and \
         its password)"
    )]
    Unavailable {
        /// The database, without its password.
        database: String,
        /// The driver's message, without the password.
        reason: String,
    },
    /// The schema could not be created or migrated.
    #[error("cannot prepare the watermark tables in {database}: {reason}")]
    Schema {
        /// The database, without its password.
        database: String,
        /// What failed.
        reason: String,
    },
    /// The database holds a schema newer than this build knows.
    #[error(
        "the watermark database {database} has schema version {found}, newer than the {known} \
         this tezos-hsm knows: a newer tezos-hsm migrated it; upgrade this one rather than \
         sign with an older reading of the records"
    )]
    SchemaTooNew {
        /// The database, without its password.
        database: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
}

impl PgStoreError {
    /// A stable snake_case name of the error's kind:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | `watermark_db_url_invalid` | [`PgStoreError::InvalidUrl`] |
    /// | `watermark_db_unavailable` | [`PgStoreError::Unavailable`] |
    /// | `watermark_db_schema` | [`PgStoreError::Schema`], [`PgStoreError::SchemaTooNew`] |
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "watermark_db_url_invalid",
            Self::Unavailable { .. } => "watermark_db_unavailable",
            Self::Schema { .. } | Self::SchemaTooNew { .. } => "watermark_db_schema",
        }
    }
}

/// The guard's error for a database error `e` met while `action`-ing `key`'s record, `waited`
/// after the lock was asked for: a lock wait that ran out is [`GuardError::StoreBusy`];
/// anything else (connection refused or lost, a statement cancelled by `statement_timeout`,
/// no answer within the client-side deadline, the server shutting down) is
/// [`GuardError::StoreIo`]. Both refuse the signature; the server answers 503 to either.
pub(crate) fn guard_error(
    target: &Target,
    key: &str,
    action: &'static str,
    e: &DbError,
    waited: Duration,
) -> GuardError {
    let path = record_path(target, key);
    let kind = match e {
        DbError::Pg(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            return GuardError::StoreBusy { path, waited };
        }
        DbError::Pg(e) if e.is_closed() => ErrorKind::ConnectionAborted,
        DbError::Pg(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => ErrorKind::TimedOut,
        // No SQLSTATE: the driver's own failure (refused, reset, timed out connecting).
        DbError::Pg(e) if e.code().is_none() => ErrorKind::ConnectionRefused,
        DbError::Pg(_) | DbError::Runtime(_) => ErrorKind::Other,
        DbError::TimedOut(_) => ErrorKind::TimedOut,
    };
    GuardError::StoreIo {
        path,
        action,
        source: std::io::Error::new(kind, target.describe(e)),
    }
}

/// How the guard names `key`'s record: the database without its password, then the key.
pub(crate) fn record_path(target: &Target, key: &str) -> PathBuf {
    PathBuf::from(format!(
        "{} (tezos_watermarks, key {key})",
        target.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable() {
        let database = "postgres://u@h:5432/d".to_owned();
        let table = [
            (
                PgStoreError::InvalidUrl { reason: "r".into() },
                "watermark_db_url_invalid",
            ),
            (
                PgStoreError::Unavailable {
                    database: database.clone(),
                    reason: "r".into(),
                },
                "watermark_db_unavailable",
            ),
            (
                PgStoreError::Schema {
                    database: database.clone(),
                    reason: "r".into(),
                },
                "watermark_db_schema",
            ),
            (
                PgStoreError::SchemaTooNew {
                    database,
                    found: 9,
                    known: 1,
                },
                "watermark_db_schema",
            ),
        ];
        for (error, kind) in table {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
