//! How to reach a token: module, token, PIN and pool settings, from code or the environment.

use std::time::Duration;

use crate::error::Result;
use crate::module::{ModuleSource, MODULE_ENV};
use crate::pin::PinSource;
use crate::token::TokenSelector;

/// Environment variable selecting the token (`label`, `serial:XXXX` or `slot:N`).
pub const TOKEN_ENV: &str = "PKCS11_TOKEN";
/// Environment variable holding the user PIN itself (CloudHSM: `user:password`).
pub const PIN_ENV: &str = "PKCS11_PIN";
/// Environment variable naming where the PIN comes from (`env:VAR`, `file:PATH`, `cmd:COMMAND`);
/// overrides [`PIN_ENV`].
pub const PIN_SOURCE_ENV: &str = "PKCS11_PIN_SOURCE";
/// Environment variable setting how long a `cmd:` PIN source may run, in whole seconds
/// (default 30).
pub const PIN_TIMEOUT_ENV: &str = "PKCS11_PIN_TIMEOUT";

/// Who logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The normal (crypto) user: generates keys, signs, wraps.
    #[default]
    User,
    /// The security officer: initialises PINs and can mark wrapping keys trusted. PKCS#11 keeps
    /// one login state per application and token, so a process cannot be logged in as both on
    /// one token at once.
    SecurityOfficer,
}

/// Everything [`crate::Hsm::open`] needs.
///
/// ```
/// use cryptoki_ops::{HsmConfig, PinSource, TokenSelector};
/// use std::time::Duration;
/// let config = HsmConfig::new(TokenSelector::Label("signer".into()), PinSource::Env("SIGNER_PIN".into()))
///     .with_max_sessions(8)
///     .with_checkout_timeout(Duration::from_secs(2));
/// assert_eq!(config.max_sessions, 8);
/// ```
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Where the PKCS#11 module is.
    pub module: ModuleSource,
    /// Which token of the module.
    pub token: TokenSelector,
    /// Where the PIN comes from.
    pub pin: PinSource,
    /// Who logs in.
    pub role: Role,
    /// Most sessions the pool opens (CloudHSM allows 1,024 per application). Default 4.
    pub max_sessions: usize,
    /// How long a caller waits for a free session before [`crate::Error::PoolExhausted`].
    /// Default 10 s.
    pub checkout_timeout: Duration,
    /// How long a `cmd:` PIN source may run before it is killed with everything it started.
    /// Default 30 s ([`crate::pin::DEFAULT_PIN_COMMAND_TIMEOUT`]); from the environment,
    /// [`PIN_TIMEOUT_ENV`].
    pub pin_timeout: Duration,
    /// Whether logging in as the crypto user `kmsuser` is allowed on AWS CloudHSM (default
    /// false: [`crate::Error::KmsUserRefused`]). AWS KMS logs in as `kmsuser` for a custom key
    /// store on the cluster and rotates its password every time the store connects (AWS KMS
    /// developer guide `connect-keystore`), so a signer configured with it breaks at the next
    /// connect.
    pub allow_kmsuser: bool,
}

impl HsmConfig {
    /// A configuration for `token` with the PIN from `pin`, module found automatically.
    pub fn new(token: TokenSelector, pin: PinSource) -> Self {
        Self {
            module: ModuleSource::Auto,
            token,
            pin,
            role: Role::User,
            max_sessions: 4,
            checkout_timeout: Duration::from_secs(10),
            pin_timeout: crate::pin::DEFAULT_PIN_COMMAND_TIMEOUT,
            allow_kmsuser: false,
        }
    }

    /// From the environment: `PKCS11_MODULE` (else the usual paths), `PKCS11_TOKEN` (else the
    /// first token), the PIN from `PKCS11_PIN_SOURCE` if set, else from `PKCS11_PIN`, and the
    /// `cmd:` PIN timeout from `PKCS11_PIN_TIMEOUT` (seconds).
    ///
    /// ```
    /// let config = cryptoki_ops::HsmConfig::from_env()?;
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`], reading variables through `lookup` (for tests and for
    /// configuration held elsewhere, e.g. a parsed file).
    ///
    /// ```
    /// use cryptoki_ops::{HsmConfig, PinSource, TokenSelector};
    /// let config = HsmConfig::from_lookup(|name| match name {
    ///     "PKCS11_TOKEN" => Some("serial:0a1b".into()),
    ///     "PKCS11_PIN_SOURCE" => Some("file:/run/secrets/pin".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(config.token, TokenSelector::Serial("0a1b".into()));
    /// assert_eq!(config.pin, PinSource::File("/run/secrets/pin".into()));
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let token = match lookup(TOKEN_ENV) {
            Some(t) => t.parse()?,
            None => TokenSelector::First,
        };
        let pin = match lookup(PIN_SOURCE_ENV) {
            Some(spec) => spec.parse()?,
            None => PinSource::Env(PIN_ENV.to_string()),
        };
        let mut config = Self::new(token, pin);
        if let Some(seconds) = lookup(PIN_TIMEOUT_ENV) {
            config.pin_timeout = seconds
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| crate::Error::InvalidInput {
                    what: "PIN timeout",
                    reason: format!(
                        "{PIN_TIMEOUT_ENV} must be a whole number of seconds above 0, e.g. 30"
                    ),
                })?;
        }
        if let Some(path) = lookup(MODULE_ENV).filter(|p| !p.is_empty()) {
            config.module = ModuleSource::Path(path.into());
        }
        Ok(config)
    }

    /// From a file of `NAME=value` lines with the same variables as [`Self::from_env`] (the
    /// systemd `EnvironmentFile` format: `#` comments, blank lines, optional quotes). Variables
    /// set in the environment are ignored here: the file is the whole configuration.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("hsm-config-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("signer.env");
    /// std::fs::write(&path, "# the CloudHSM signer\nPKCS11_MODULE=/opt/cloudhsm/lib/libcloudhsm_pkcs11.so\n\
    ///     PKCS11_PIN_SOURCE='file:/run/secrets/signer-pin'\n")?;
    /// let config = cryptoki_ops::HsmConfig::from_file(&path)?;
    /// assert_eq!(config.pin, cryptoki_ops::PinSource::File("/run/secrets/signer-pin".into()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::InvalidInput {
            what: "configuration file",
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut vars = std::collections::HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| crate::Error::InvalidInput {
                    what: "configuration file",
                    reason: format!(
                        "{} line {}: expected NAME=value",
                        path.display(),
                        number + 1
                    ),
                })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            vars.insert(name.trim().to_string(), value.to_string());
        }
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Uses the module at `path`.
    pub fn with_module(mut self, module: ModuleSource) -> Self {
        self.module = module;
        self
    }

    /// Logs in as `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Allows (or not, the default) logging in as AWS KMS's crypto user `kmsuser` on CloudHSM
    /// (see [`Self::allow_kmsuser`](HsmConfig#structfield.allow_kmsuser)).
    pub fn with_allow_kmsuser(mut self, allow: bool) -> Self {
        self.allow_kmsuser = allow;
        self
    }

    /// Sets the pool size.
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// Sets how long a `cmd:` PIN source may run before it is killed.
    pub fn with_pin_timeout(mut self, timeout: Duration) -> Self {
        self.pin_timeout = timeout;
        self
    }

    /// Sets how long a checkout waits for a free session.
    pub fn with_checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }
}
