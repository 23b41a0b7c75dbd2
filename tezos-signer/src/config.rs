//! The TOML configuration of `tezos-hsm serve --config FILE`: [`ServeConfig::load`].
//!
//! ```toml
//! listen = "127.0.0.1:6732"
//! module = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
//! token = "signer"                 # a label, serial:XXXX or slot:N
//! pin = "env:TEZOS_HSM_PIN"        # a PIN *source*: env:VAR, file:PATH or cmd:COMMAND
//! watermark_dir = "/var/lib/tezos-hsm/watermarks"   # or watermark_db = "postgres://..."
//! authorized_keys = ["edpk..."]    # clients allowed to send authenticated requests
//! log_payloads = false
//!
//! [tls]
//! cert = "/etc/tezos-hsm/tls/cert.pem"
//! key = "/etc/tezos-hsm/tls/key.pem"
//!
//! [api_key]
//! file = "/etc/tezos-hsm/api-key"  # header defaults to x-api-key
//!
//! [keys.baker]
//! allow = ["block", "preattestation", "attestation", "generic"]
//! generic_operations = ["reveal", "delegation", "transaction"]
//! chains = ["NetXdQprcVkpaWU"]
//! require_authentication = true
//! ```
//!
//! Rules:
//! - Every table refuses fields it does not know (`deny_unknown_fields`), so a misspelt
//!   `require_authentification` is an error naming its line, never a silently ignored safety.
//! - No secret in the file: the PIN is a source (`env:`, `file:`, `cmd:`, as `--pin` takes it,
//!   [`cryptoki_ops::PinSource`]); the API key is a file of its own. A `watermark_db` URL may hold
//!   a password: it is kept in a [`SecretString`] and shown with the password masked.
//! - Relative paths are relative to the directory of the configuration file, so the file means
//!   the same whatever directory the service starts in.
//! - Kinds (`allow`) are the request kinds of `--allow`: `block`, `preattestation`,
//!   `attestation`, `generic`, `michelson`; chains are `Net…` chain ids.

mod key_rules;
mod raw;
mod summary;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cryptoki_ops::{PinSource, TokenSelector};
use secrecy::{ExposeSecret, SecretString};
use tezos_keys::payload::Watermark;
use tezos_keys::PublicKey;

use self::key_rules::key_rules;
use self::raw::{syntax_error, RawConfig, Source};
use crate::policy::KeyRules;

pub use summary::{ConfigSummary, KeySummary};

/// The request kinds a key may be allowed, by their names in `allow` (and `--allow`).
pub const KINDS: [Watermark; 5] = [
    Watermark::Block,
    Watermark::Preattestation,
    Watermark::Attestation,
    Watermark::Generic,
    Watermark::Michelson,
];

/// The header octez-client sends the API key in when none is configured: octez-client adds
/// headers from `TEZOS_SIGNER_HTTP_HEADERS`, and only `host` and `x-…` ones
/// (`src/lib_signer_backends/http_gen.ml`; remote-signer.md §2.3).
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// Largest configuration file read (a configuration is a few KiB at most).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why (the I/O error, or the size limit).
        reason: String,
    },
    /// The file is not valid TOML, or a field is unknown, missing or of the wrong type.
    #[error("{path}, line {line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the problem (0 when the parser gave none).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value is well-formed TOML but not acceptable (an unknown kind, a bad chain id, a rule
    /// that contradicts another).
    #[error("{path}, line {line}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the value.
        line: usize,
        /// The field, as a TOML path (`keys.baker.allow`).
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ConfigError {
    /// A stable identifier: `config_unreadable` for [`ConfigError::Unreadable`],
    /// `config_invalid` for [`ConfigError::Syntax`] and [`ConfigError::Invalid`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "config_unreadable",
            Self::Syntax { .. } | Self::Invalid { .. } => "config_invalid",
        }
    }
}

/// Where the double-signing records live.
#[derive(Debug, Clone, Default)]
pub enum WatermarkStore {
    /// Not set in the file: the command line's choice (`--watermark-dir`, `--watermark-db`, or the
    /// default file store).
    #[default]
    Default,
    /// The file store in this directory (`watermark_dir`).
    Dir(PathBuf),
    /// The PostgreSQL store at this URL (`watermark_db`); may hold a password.
    Postgres(SecretString),
}

impl WatermarkStore {
    /// The store for humans: the directory, or the URL with its password masked.
    pub fn describe(&self) -> String {
        match self {
            Self::Default => {
                "the command line's (--watermark-dir/--watermark-db, or the default)".to_owned()
            }
            Self::Dir(dir) => format!("file store in {}", dir.display()),
            Self::Postgres(url) => format!("PostgreSQL {}", redact_url(url.expose_secret())),
        }
    }
}

/// `[tls]`: HTTPS with a certificate and key from PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[api_key]`: every signer request must carry this header with the key in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyFile {
    /// The header name, lower case (`x-api-key` unless set).
    pub header: String,
    /// The file holding the key (its first line).
    pub file: PathBuf,
}

/// A served key's entry (`[keys.LABEL]`).
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// The key's label on the token.
    pub label: String,
    /// What it may sign.
    pub rules: KeyRules,
}

/// A validated configuration file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// `listen`: the address to listen on.
    pub listen: Option<SocketAddr>,
    /// `module`: the PKCS#11 module.
    pub module: Option<PathBuf>,
    /// `token`: which token (as the text `--token` takes).
    pub token: Option<String>,
    /// `pin`: where the PIN comes from.
    pub pin: Option<PinSource>,
    /// `watermark_dir` / `watermark_db`.
    pub watermark: WatermarkStore,
    /// `[tls]`.
    pub tls: Option<TlsFiles>,
    /// `[api_key]`.
    pub api_key: Option<ApiKeyFile>,
    /// `authorized_keys`: the clients whose `authentication` signatures are accepted.
    pub authorized_keys: Vec<PublicKey>,
    /// `log_payloads`: log the bytes of each signing request (off by default).
    pub log_payloads: bool,
    /// `[keys.LABEL]`, by label.
    pub keys: BTreeMap<String, KeyConfig>,
}

impl ServeConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// [`ConfigError`], naming the line and field and saying how to fix it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let unreadable = |reason: String| ConfigError::Unreadable {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
        if !meta.is_file() {
            return Err(unreadable("not a regular file".to_owned()));
        }
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(unreadable(format!(
                "larger than {MAX_CONFIG_BYTES} bytes: is this the right file?"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        Self::parse(path, &text)
    }

    /// Validates configuration text; `path` names it in errors and anchors relative paths.
    ///
    /// ```
    /// use std::path::Path;
    /// use tezos_signer::config::ServeConfig;
    /// let config = ServeConfig::parse(Path::new("/etc/tezos-hsm/serve.toml"), r#"
    ///     listen = "127.0.0.1:6732"
    ///     pin = "file:pin"
    ///     [keys.baker]
    ///     allow = ["block", "preattestation", "attestation"]
    /// "#)?;
    /// assert_eq!(config.listen, Some("127.0.0.1:6732".parse().unwrap()));
    /// assert!(config.keys["baker"].rules.kinds.allows(tezos_keys::payload::Watermark::Block));
    ///
    /// let typo = ServeConfig::parse(Path::new("serve.toml"), "[keys.baker]\nallow = [\"blok\"]\n");
    /// assert!(typo.unwrap_err().to_string().contains("line 2: keys.baker.allow"));
    /// # Ok::<(), tezos_signer::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// As [`ServeConfig::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let source = Source { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(&source, &e))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };

        let listen = raw
            .listen
            .map(|l| {
                l.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                    source.invalid(
                        &l.span(),
                        "listen",
                        "expected an IP address and port, e.g. \"127.0.0.1:6732\" or \"[::1]:6732\"",
                    )
                })
            })
            .transpose()?;
        let token = raw
            .token
            .map(|t| {
                t.get_ref()
                    .parse::<TokenSelector>()
                    .map(|_| t.get_ref().clone())
                    .map_err(|e| source.invalid(&t.span(), "token", e.to_string()))
            })
            .transpose()?;
        let pin = raw
            .pin
            .map(|p| {
                p.get_ref().parse::<PinSource>().map_err(|e| {
                    source.invalid(
                        &p.span(),
                        "pin",
                        format!("{e}; never put the PIN itself in this file"),
                    )
                })
            })
            .transpose()?
            .map(|pin| match pin {
                PinSource::File(p) => PinSource::File(resolve(p)),
                other => other,
            });
        let watermark =
            match (raw.watermark_dir, raw.watermark_db) {
                (Some(_), Some(db)) => return Err(source.invalid(
                    &db.span(),
                    "watermark_db",
                    "watermark_dir and watermark_db are both set: keep one (the PostgreSQL store \
                     for several signer instances, the file store for one)",
                )),
                (Some(dir), None) => WatermarkStore::Dir(resolve(dir.into_inner())),
                (None, Some(db)) => {
                    let url = db.get_ref();
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        return Err(source.invalid(
                            &db.span(),
                            "watermark_db",
                            "expected a postgres:// (or postgresql://) URL",
                        ));
                    }
                    WatermarkStore::Postgres(SecretString::from(db.into_inner()))
                }
                (None, None) => WatermarkStore::Default,
            };
        let tls = raw.tls.map(|t| TlsFiles {
            cert: resolve(t.cert),
            key: resolve(t.key),
        });
        let api_key = raw
            .api_key
            .map(|a| -> Result<ApiKeyFile, ConfigError> {
                let header = match a.header {
                    None => DEFAULT_API_KEY_HEADER.to_owned(),
                    Some(h) => check_api_key_header(h.get_ref())
                        .map_err(|reason| source.invalid(&h.span(), "api_key.header", reason))?,
                };
                Ok(ApiKeyFile {
                    header,
                    file: resolve(a.file),
                })
            })
            .transpose()?;
        let mut authorized_keys = Vec::new();
        for key in &raw.authorized_keys {
            let pk = key.get_ref().parse::<PublicKey>().map_err(|e| {
                source.invalid(
                    &key.span(),
                    "authorized_keys",
                    format!("{e}: expected a public key (edpk…, sppk… or p2pk…), as `octez-client show address NAME` prints it"),
                )
            })?;
            if !authorized_keys.contains(&pk) {
                authorized_keys.push(pk);
            }
        }
        let mut keys = BTreeMap::new();
        for (label, entry) in raw.keys {
            let rules = key_rules(&source, &label, &entry, !authorized_keys.is_empty())?;
            keys.insert(label.clone(), KeyConfig { label, rules });
        }
        Ok(Self {
            path: path.to_owned(),
            listen,
            module: raw.module.map(resolve),
            token,
            pin,
            watermark,
            tls,
            api_key,
            authorized_keys,
            log_payloads: raw.log_payloads,
            keys,
        })
    }

    /// Whether any served key requires authentication: then `GET /authorized_keys` answers the
    /// list, and octez-client authenticates its requests.
    pub fn requires_authentication(&self) -> bool {
        self.keys.values().any(|k| k.rules.require_authentication)
    }
}

/// An API-key header name: `x-…` (the only headers octez-client adds besides `host`), lower
/// case, letters, digits and `-`.
fn check_api_key_header(name: &str) -> Result<String, String> {
    let lower = name.trim().to_ascii_lowercase();
    let valid = lower.len() > 2
        && lower.starts_with("x-")
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "{name:?} is not usable: octez-client only sends x-… headers (TEZOS_SIGNER_HTTP_HEADERS), e.g. \"x-api-key\""
        ))
    }
}

/// A URL with the password of its user-info part replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            // A password may also be a query parameter (`?password=`): drop the query.
            let path = tail.split('?').next().unwrap_or("");
            format!("{scheme}://{user}{masked}@{host}{path}")
        }
        None => format!(
            "{scheme}://{authority}{}",
            tail.split('?').next().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests;
