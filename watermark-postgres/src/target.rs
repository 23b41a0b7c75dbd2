//! The database a store talks to: the parsed URL, its display without the password, and the
//! scrubbing of the password out of the driver's messages.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::conn::DbError;
use crate::PgStoreError;

/// A parsed connection URL. `Debug` and [`Target::display`] never show the password.
#[derive(Clone)]
pub(crate) struct Target {
    config: tokio_postgres::Config,
    display: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Target").field(&self.display).finish()
    }
}

impl Target {
    /// Parses `url` (`postgres://…` or `host=… user=…`). Without a password in it, the one in
    /// the environment variable `PGPASSWORD` is used, as libpq does.
    pub(crate) fn parse(url: &str) -> Result<Self, PgStoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| PgStoreError::InvalidUrl {
                // The driver's parse errors name options, not values; scrub the whole URL's
                // password-looking part anyway by never echoing the URL.
                reason: e.to_string(),
            })?;
        if config.get_hosts().is_empty() {
            return Err(PgStoreError::InvalidUrl {
                reason: "it names no host".to_owned(),
            });
        }
        if config.get_user().is_none() {
            return Err(PgStoreError::InvalidUrl {
                reason: "it names no user".to_owned(),
            });
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("tezos-hsm");
        }
        let display = display(&config);
        Ok(Self { config, display })
    }

    /// The configuration to connect with, with bounded waits: `connect` for each connection
    /// attempt, `io` for an unacknowledged write on an established one (`TCP_USER_TIMEOUT`:
    /// a database host that vanished turns into an error, not a hang).
    pub(crate) fn config(&self, connect: Duration, io: Duration) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        config.connect_timeout(connect);
        config.tcp_user_timeout(io);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config
    }

    /// `postgres://USER@HOST:PORT/DATABASE`, without the password.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// `e`'s message (with the server's or operating system's beneath it), with the
    /// password, if it appears, replaced by `***`.
    pub(crate) fn describe(&self, e: &DbError) -> String {
        self.scrub(&e.to_string())
    }

    /// `text` with the password, if it appears, replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match self.config.get_password().map(String::from_utf8_lossy) {
            Some(password) if !password.is_empty() => text.replace(password.as_ref(), "***"),
            _ => text.to_owned(),
        }
    }
}

fn display(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let dbname = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{}/{dbname}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let target =
            Target::parse("postgres://signer:s3cr%2Et@db.example:6432/hwm").expect("valid");
        assert_eq!(target.display(), "postgres://signer@db.example:6432/hwm");
        assert!(!format!("{target:?}").contains("s3cr"));
        assert_eq!(target.scrub("auth s3cr.t failed"), "auth *** failed");
        let target = Target::parse("host=/run/pg user=signer password=pw").expect("valid");
        assert_eq!(target.display(), "postgres://signer@/run/pg:5432/signer");
    }

    #[test]
    fn bad_urls_are_refused_without_echo() {
        for url in [
            "postgres://u:pw@h:notaport/d",
            "postgres:///d?user=u",
            "postgres://h/d",
        ] {
            let e = Target::parse(url).expect_err(url);
            assert_eq!(e.kind(), "watermark_db_url_invalid", "{url}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
