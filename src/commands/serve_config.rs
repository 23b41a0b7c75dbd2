//! What `serve` serves, from the command line and `--config FILE`: [`Plan`]; and
//! `serve --check-config FILE` ([`check_config`]), and the log lines' setup ([`init_logging`]).
//!
//! The command line and the environment win over the file: a module, token, PIN or watermark
//! store given there is used, the file's is not. The keys are chosen by one of them only:
//! `--key`/`--allow`/`--require-authentication`, or the file's `[keys]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tezos_keys::{KeyPolicy, PublicKey};
use tezos_signer::api_key::ApiKey;
use tezos_signer::auth::AuthorizedKeys;
use tezos_signer::config::{ConfigSummary, ServeConfig, WatermarkStore, DEFAULT_API_KEY_HEADER};
use tezos_signer::policy::KeyRules;

use crate::cli::{GlobalArgs, ServeArgs};
use crate::error::CliError;

/// What the server will do, settled before the token is opened.
pub struct Plan {
    /// The global options, with the file's module, token, PIN and watermark store where the
    /// command line and environment gave none.
    pub globals: GlobalArgs,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The labels to serve (empty: every key on the token).
    pub labels: Vec<String>,
    rules: Rules,
    /// HTTPS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The API key every signer request must carry, when configured.
    pub api_key: Option<ApiKey>,
    /// The authorized client keys.
    pub authorized: AuthorizedKeys,
    /// Whether payloads are logged.
    pub log_payloads: bool,
}

enum Rules {
    /// Every served key alike (`--allow`, `--require-authentication`).
    Uniform(KeyRules),
    /// By label (`[keys]` of the file).
    PerLabel(BTreeMap<String, KeyRules>),
}

impl Plan {
    /// The plan for `args` (and `--config`).
    ///
    /// # Errors
    /// `usage` for contradicting or missing options; the configuration's, TLS files' and API
    /// key file's own errors.
    pub fn new(globals: &GlobalArgs, args: &ServeArgs) -> Result<Self, CliError> {
        let config = args.config.as_deref().map(ServeConfig::load).transpose()?;
        let mut globals = globals.clone();
        if let Some(config) = &config {
            fill_globals(&mut globals, config);
        }
        let listen = args
            .listen
            .or(config.as_ref().and_then(|c| c.listen))
            .ok_or_else(|| {
                CliError::new(
                    "usage",
                    "no address to listen on: give --listen ADDR (e.g. 127.0.0.1:6732), or listen in the --config file",
                )
            })?;

        let file_keys = config.as_ref().map(|c| &c.keys).filter(|k| !k.is_empty());
        let (labels, rules) = match file_keys {
            Some(keys) => {
                if !args.keys.is_empty() || args.allow.is_some() || args.require_authentication {
                    return Err(CliError::new(
                        "usage",
                        "--key, --allow and --require-authentication choose the keys, and so does \
                         [keys] in the --config file: use one of them",
                    ));
                }
                let rules: BTreeMap<String, KeyRules> = keys
                    .iter()
                    .map(|(label, key)| (label.clone(), key.rules.clone()))
                    .collect();
                (rules.keys().cloned().collect(), Rules::PerLabel(rules))
            }
            None => {
                let kinds = KeyPolicy::from_allow_list(args.allow.as_deref().unwrap_or("generic"))?;
                let mut rules = KeyRules::new(kinds);
                rules.require_authentication = args.require_authentication;
                (args.keys.clone(), Rules::Uniform(rules))
            }
        };

        let mut authorized: Vec<PublicKey> = config
            .as_ref()
            .map(|c| c.authorized_keys.clone())
            .unwrap_or_default();
        for text in &args.authorized_keys {
            let key = text.parse::<PublicKey>().map_err(|e| {
                CliError::new(
                    "invalid_input",
                    format!("--authorized-key: {e}: expected a public key (edpk..., sppk... or p2pk...)"),
                )
            })?;
            if !authorized.contains(&key) {
                authorized.push(key);
            }
        }
        let required = match &rules {
            Rules::Uniform(r) => r.require_authentication,
            Rules::PerLabel(map) => map.values().any(|r| r.require_authentication),
        };
        if required && authorized.is_empty() {
            return Err(CliError::new(
                "usage",
                "authentication is required but no key is authorized: give --authorized-key \
                 PUBLIC_KEY (octez-client's authentication key), or authorized_keys in the --config file",
            ));
        }
        let authorized = AuthorizedKeys::new(&authorized, required)?;

        let tls_files = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => config
                .as_ref()
                .and_then(|c| c.tls.as_ref())
                .map(|t| (t.cert.clone(), t.key.clone())),
        };
        let tls = tls_files
            .map(|(cert, key)| tezos_signer::tls::server_config(&cert, &key))
            .transpose()?;

        let api_key = match &args.api_key_file {
            Some(file) => Some(ApiKey::from_file(
                args.api_key_header
                    .as_deref()
                    .unwrap_or(DEFAULT_API_KEY_HEADER),
                file,
            )?),
            None => config
                .as_ref()
                .and_then(|c| c.api_key.as_ref())
                .map(|a| ApiKey::from_file(&a.header, &a.file))
                .transpose()?,
        };

        Ok(Self {
            globals,
            listen,
            labels,
            rules,
            tls,
            api_key,
            authorized,
            log_payloads: args.log_payloads || config.as_ref().is_some_and(|c| c.log_payloads),
        })
    }

    /// The rules of the key labelled `label`.
    pub fn rules_for(&self, label: &str) -> KeyRules {
        match &self.rules {
            Rules::Uniform(rules) => rules.clone(),
            Rules::PerLabel(map) => map
                .get(label)
                .cloned()
                // Unreachable: only the file's labels are loaded. Refuse everything if it ever is.
                .unwrap_or_else(|| KeyRules::new(KeyPolicy::new([]))),
        }
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The file's module, token, PIN and store where the command line and environment gave none.
fn fill_globals(globals: &mut GlobalArgs, config: &ServeConfig) {
    if globals.module.is_none() {
        globals.module.clone_from(&config.module);
    }
    if globals.token.is_none() {
        globals.token.clone_from(&config.token);
    }
    if globals.pin.is_none() {
        globals.pin.clone_from(&config.pin);
    }
    if globals.watermark_dir.is_none() && globals.watermark_db.is_none() {
        match &config.watermark {
            WatermarkStore::Default => {}
            WatermarkStore::Dir(dir) => globals.watermark_dir = Some(dir.clone()),
            WatermarkStore::Postgres(url) => globals.watermark_db = Some(url.clone()),
        }
    }
}

/// `serve --check-config FILE`: the file is valid, and so are the TLS and API key files it
/// names; what it would serve.
///
/// # Errors
/// The first problem, with its line and field.
pub fn check_config(path: &Path) -> Result<ConfigSummary, CliError> {
    let config = ServeConfig::load(path)?;
    if let Some(tls) = &config.tls {
        tezos_signer::tls::server_config(&tls.cert, &tls.key)?;
    }
    if let Some(api_key) = &config.api_key {
        ApiKey::from_file(&api_key.header, &api_key.file)?;
    }
    Ok(config.summary())
}

/// One log line per request on stderr (`tracing`), as text or JSON lines, at level INFO.
pub fn init_logging(json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_ansi(false);
    // Fails only when a subscriber is already set (a second `serve` in one process): keep it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
