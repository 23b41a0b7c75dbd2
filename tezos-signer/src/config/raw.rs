//! The file as TOML reads it (every table `deny_unknown_fields`, values with their spans), and
//! errors that name the line: [`Source`], [`syntax_error`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) module: Option<PathBuf>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) pin: Option<Spanned<String>>,
    pub(super) watermark_dir: Option<Spanned<PathBuf>>,
    pub(super) watermark_db: Option<Spanned<String>>,
    pub(super) tls: Option<RawTls>,
    pub(super) api_key: Option<RawApiKey>,
    #[serde(default)]
    pub(super) authorized_keys: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) log_payloads: bool,
    #[serde(default)]
    pub(super) keys: BTreeMap<String, Spanned<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKey {
    pub(super) header: Option<Spanned<String>>,
    pub(super) file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) allow: Vec<Spanned<String>>,
    pub(super) generic_operations: Option<Vec<Spanned<String>>>,
    pub(super) chains: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) require_authentication: bool,
}

/// Reads spans back into line numbers and builds errors naming them.
pub(super) struct Source<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        span: &Range<usize>,
        field: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A TOML error with its line, and a hint for the usual mistakes.
pub(super) fn syntax_error(source: &Source<'_>, error: &toml::de::Error) -> ConfigError {
    let line = error.span().map_or(0, |span| source.line(&span));
    let message = without_values(error.message().trim());
    // The key the error is on (the text before `=`, or a `[table]` header), never the value:
    // a value may be a PIN written where its source belongs (`pin = 1234` is a type error).
    let at = error
        .span()
        .and_then(|span| source.text.get(..span.start.min(source.text.len())))
        .map(|before| {
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let line = source.text[start..].lines().next().unwrap_or("");
            match line.split_once('=') {
                Some((key, _)) => key.trim().to_owned(),
                None if line.trim_start().starts_with('[') && !line.contains('"') => {
                    line.trim().to_owned()
                }
                None => String::new(),
            }
        })
        .filter(|key| !key.is_empty() && key.len() <= 80);
    let message = match at {
        Some(key) => format!("{key}: {message}"),
        None => message,
    };
    let hint = if message.contains("unknown field") {
        " (remove it, or correct its spelling)"
    } else if message.contains("missing field") {
        " (add it)"
    } else {
        ""
    };
    ConfigError::Syntax {
        path: source.path.to_owned(),
        line,
        message: format!("{message}{hint}"),
    }
}

/// serde's `invalid type: string "…", expected …` repeats the value, which may be a secret
/// written in the wrong place (`pin = 1234`): keep the type only.
pub(super) fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let what = rest.split([' ', ',']).next().unwrap_or("");
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{prefix}{what}{expected}");
        }
    }
    message.to_owned()
}
