//! One connection, used synchronously with a client-side deadline on every call.
//!
//! Each connection has a small single-threaded runtime of its own that drives it while a call
//! runs (what the synchronous `postgres` crate does), and every call is bounded by
//! `tokio::time::timeout`: the server's own timeouts (`lock_timeout`, `statement_timeout`)
//! cannot fire when the server does not run at all (a stopped or stalled backend, whose kernel
//! still acknowledges what is sent), and `TCP_USER_TIMEOUT` only catches unacknowledged writes.
//! A connection that ran out of time is closed, never reused.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// A failed call: the database's or driver's error, or the deadline.
#[derive(Debug)]
pub(crate) enum DbError {
    /// The database or the driver failed.
    Pg(tokio_postgres::Error),
    /// No answer within the deadline.
    TimedOut(Duration),
    /// The connection's runtime could not be made.
    Runtime(std::io::Error),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl fmt::Display for DbError {
    /// The message, followed by those of its sources (the driver puts the server's message
    /// and the operating system's error there).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pg(e) => {
                write!(f, "{e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(inner) = source {
                    write!(f, ": {inner}")?;
                    source = inner.source();
                }
                Ok(())
            }
            Self::TimedOut(after) => {
                write!(f, "the database did not answer within {after:?}")
            }
            Self::Runtime(e) => write!(f, "cannot start the connection's runtime: {e}"),
        }
    }
}

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    runtime: Runtime,
    client: Client,
    /// The deadline of each call.
    deadline: Duration,
    /// Set when a call ran out of time: the connection's state is unknown.
    timed_out: bool,
    /// Prepared on first use: `load`, `upsert`, `recorded`.
    pub(crate) statements: Option<[Statement; 3]>,
    /// Opened for this request (not taken from the idle list).
    pub(crate) fresh: bool,
}

impl Conn {
    /// Connects with `config` within `connect` (each address tried is bounded by the
    /// config's own connect timeout too); each later call is bounded by `deadline`.
    pub(crate) fn connect(
        config: &tokio_postgres::Config,
        connect: Duration,
        deadline: Duration,
    ) -> Result<Self, DbError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(DbError::Runtime)?;
        let connecting =
            runtime.block_on(async { tokio::time::timeout(connect, config.connect(NoTls)).await });
        let (client, connection) = match connecting {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(DbError::Pg(e)),
            Err(_) => return Err(DbError::TimedOut(connect)),
        };
        // Driven whenever the runtime runs a call; ends when the server or the client closes.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            runtime,
            client,
            deadline,
            timed_out: false,
            statements: None,
            fresh: true,
        })
    }

    /// Whether the connection is closed or in an unknown state.
    pub(crate) fn is_closed(&self) -> bool {
        self.timed_out || self.client.is_closed()
    }

    /// The parts a call borrows: the runtime, the client, the deadline, the timed-out flag.
    fn parts(&mut self) -> (&Runtime, &Client, Duration, &mut bool) {
        (
            &self.runtime,
            &self.client,
            self.deadline,
            &mut self.timed_out,
        )
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        let (runtime, client, deadline, timed_out) = self.parts();
        run(runtime, deadline, timed_out, client.batch_execute(sql))
    }

    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, DbError> {
        let (runtime, client, deadline, timed_out) = self.parts();
        run(runtime, deadline, timed_out, client.prepare(sql))
    }

    pub(crate) fn query(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        let (runtime, client, deadline, timed_out) = self.parts();
        run(
            runtime,
            deadline,
            timed_out,
            client.query(statement, params),
        )
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, DbError> {
        let (runtime, client, deadline, timed_out) = self.parts();
        run(runtime, deadline, timed_out, client.query_one(sql, params))
    }

    pub(crate) fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DbError> {
        let (runtime, client, deadline, timed_out) = self.parts();
        run(
            runtime,
            deadline,
            timed_out,
            client.execute(statement, params),
        )
    }
}

/// Runs `call` on `runtime` within `deadline`; past it, marks the connection `timed_out`.
fn run<T, F>(
    runtime: &Runtime,
    deadline: Duration,
    timed_out: &mut bool,
    call: F,
) -> Result<T, DbError>
where
    F: Future<Output = Result<T, tokio_postgres::Error>>,
{
    match runtime.block_on(async { tokio::time::timeout(deadline, call).await }) {
        Ok(result) => result.map_err(DbError::Pg),
        Err(_) => {
            *timed_out = true;
            Err(DbError::TimedOut(deadline))
        }
    }
}
