//! What a configuration would serve, for `tezos-hsm serve --check-config`: [`ConfigSummary`],
//! `Serialize` (the `--json` output) and `Display` (the text output). It holds no secret: the
//! PIN appears as its source, a database URL with its password masked.

use std::fmt;

use serde::Serialize;

use super::ServeConfig;

/// What a configuration would serve.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSummary {
    /// The configuration file.
    pub file: String,
    /// The listening address, or `null` when the command line must give it.
    pub listen: Option<String>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The PKCS#11 module, when set.
    pub module: Option<String>,
    /// The token, when set.
    pub token: Option<String>,
    /// Where the PIN comes from (never the PIN), when set.
    pub pin: Option<String>,
    /// The double-signing record store.
    pub watermark_store: String,
    /// `{"cert","key"}` paths, when HTTPS.
    pub tls: Option<TlsSummary>,
    /// `{"header","file"}`, when an API key is required.
    pub api_key: Option<ApiKeySummary>,
    /// The addresses (`tz…`) of the authorized clients.
    pub authorized_keys: Vec<String>,
    /// Whether `GET /authorized_keys` answers the list (some key requires authentication).
    pub authentication_required: bool,
    /// Whether request payloads are logged.
    pub log_payloads: bool,
    /// The served keys, by label.
    pub keys: Vec<KeySummary>,
}

/// `[tls]` in a [`ConfigSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct TlsSummary {
    /// The certificate file.
    pub cert: String,
    /// The key file.
    pub key: String,
}

/// `[api_key]` in a [`ConfigSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeySummary {
    /// The header name.
    pub header: String,
    /// The file holding the key.
    pub file: String,
}

/// One served key in a [`ConfigSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// The key's label on the token.
    pub label: String,
    /// The request kinds it may sign.
    pub allow: Vec<&'static str>,
    /// For `generic`, the operation kinds allowed (`null`: any decodable operation except
    /// `drain_delegate` and `update_consensus_key`).
    pub generic_operations: Option<Vec<String>>,
    /// The chains (`null`: every chain).
    pub chains: Option<Vec<String>>,
    /// Whether its requests must be authenticated.
    pub require_authentication: bool,
}

impl ServeConfig {
    /// What this configuration would serve.
    pub fn summary(&self) -> ConfigSummary {
        ConfigSummary {
            file: self.path.display().to_string(),
            listen: self.listen.map(|a| a.to_string()),
            scheme: if self.tls.is_some() { "https" } else { "http" },
            module: self.module.as_ref().map(|m| m.display().to_string()),
            token: self.token.clone(),
            pin: self.pin.as_ref().map(ToString::to_string),
            watermark_store: self.watermark.describe(),
            tls: self.tls.as_ref().map(|t| TlsSummary {
                cert: t.cert.display().to_string(),
                key: t.key.display().to_string(),
            }),
            api_key: self.api_key.as_ref().map(|a| ApiKeySummary {
                header: a.header.clone(),
                file: a.file.display().to_string(),
            }),
            authorized_keys: self
                .authorized_keys
                .iter()
                .map(|k| k.hash().to_string())
                .collect(),
            authentication_required: self.requires_authentication(),
            log_payloads: self.log_payloads,
            keys: self
                .keys
                .values()
                .map(|k| KeySummary {
                    label: k.label.clone(),
                    allow: k.rules.kinds.allowed.iter().map(|w| w.name()).collect(),
                    generic_operations: k
                        .rules
                        .generic_operations
                        .as_ref()
                        .map(|ops| ops.iter().map(|k| k.name().to_owned()).collect()),
                    chains: k
                        .rules
                        .chains
                        .as_ref()
                        .map(|c| c.iter().map(ToString::to_string).collect()),
                    require_authentication: k.rules.require_authentication,
                })
                .collect(),
        }
    }
}

impl fmt::Display for ConfigSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or =
            |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_owned());
        writeln!(f, "configuration {}: valid", self.file)?;
        writeln!(
            f,
            "listen           {} ({})",
            or(&self.listen, "from --listen"),
            self.scheme
        )?;
        writeln!(
            f,
            "module           {}",
            or(&self.module, "from --module or PKCS11_MODULE")
        )?;
        writeln!(f, "token            {}", or(&self.token, "from --token"))?;
        writeln!(f, "pin              {}", or(&self.pin, "from --pin"))?;
        writeln!(f, "watermark store  {}", self.watermark_store)?;
        if let Some(tls) = &self.tls {
            writeln!(
                f,
                "tls              certificate {}, key {}",
                tls.cert, tls.key
            )?;
        }
        match &self.api_key {
            Some(a) => writeln!(f, "api key          header {}, key in {}", a.header, a.file)?,
            None => writeln!(f, "api key          none")?,
        }
        if self.authorized_keys.is_empty() {
            writeln!(f, "authorized keys  none")?;
        } else {
            writeln!(f, "authorized keys  {}", self.authorized_keys.join(", "))?;
        }
        writeln!(
            f,
            "log payloads     {}",
            if self.log_payloads { "yes" } else { "no" }
        )?;
        if self.keys.is_empty() {
            write!(
                f,
                "keys             none listed: the command line's --key/--allow apply"
            )?;
        } else {
            write!(f, "keys")?;
        }
        for key in &self.keys {
            write!(
                f,
                "\n  {}: {}",
                key.label.escape_debug(),
                key.allow.join(",")
            )?;
            if let Some(ops) = &key.generic_operations {
                write!(f, " (generic operations: {})", ops.join(","))?;
            }
            match &key.chains {
                Some(chains) => write!(f, "; chains {}", chains.join(","))?,
                None => write!(f, "; every chain")?,
            }
            if key.require_authentication {
                write!(f, "; authentication required")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use std::path::Path;

    use super::super::WatermarkStore;
    use super::*;

    #[test]
    fn summary_masks_the_database_password_and_shows_the_pin_source_only() {
        let config = ServeConfig::parse(
            Path::new("/etc/s.toml"),
            "pin = \"cmd:helper --secret hunter2\"\nwatermark_db = \"postgres://signer:hunter2@db/tezos?password=hunter2\"\n",
        )
        .unwrap();
        let summary = config.summary();
        let text = summary.to_string();
        let json = serde_json::to_string(&summary).unwrap();
        for out in [&text, &json] {
            assert!(!out.contains("hunter2"), "{out}");
            assert!(out.contains("postgres://signer:***@db/tezos"), "{out}");
            assert!(out.contains("command `helper ...`"), "{out}");
        }
        assert!(matches!(config.watermark, WatermarkStore::Postgres(_)));
    }
}
