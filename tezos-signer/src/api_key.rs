//! An optional API-key header on every signer request: [`ApiKey`].
//!
//! octez-client cannot authenticate to a signer with anything but the Octez `authentication`
//! signature, except through extra headers: `TEZOS_SIGNER_HTTP_HEADERS` adds `host` and `x-…`
//! headers to every request (`src/lib_signer_backends/http_gen.ml`; remote-signer.md §2.3). So
//! the key travels in an `x-…` header (`x-api-key` unless configured), e.g.
//! `TEZOS_SIGNER_HTTP_HEADERS="x-api-key: $(cat api-key)" octez-client …`.
//!
//! The key is read from a file (never a command-line value: it would show in `ps`), kept in a
//! [`SecretString`], and compared in constant time: both sides are hashed (BLAKE2b-256) and the
//! digests compared with [`subtle`], so neither the content nor the length of the key leaks
//! through timing. A missing header is answered 401, a wrong key 403, both with a JSON error
//! that never repeats what was sent.

use std::path::Path;

use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tezos_keys::payload::digest;

/// Largest API-key file read.
const MAX_FILE_BYTES: u64 = 4096;

/// Shortest key accepted: shorter keys are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// The API key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("API key file {path}: {reason}")]
pub struct ApiKeyFileError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What is wrong and how to fix it (never the key).
    pub reason: String,
}

impl ApiKeyFileError {
    /// A stable identifier: `api_key_file`.
    pub fn kind(&self) -> &'static str {
        "api_key_file"
    }
}

/// Why a request was refused by [`ApiKey::check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyRefusal {
    /// The header is absent (401).
    #[error("this signer requires an API key in the {0} header (octez-client: TEZOS_SIGNER_HTTP_HEADERS=\"{0}: <key>\")")]
    Missing(HeaderName),
    /// The header does not hold the key (403).
    #[error("the API key in the {0} header is not this signer's")]
    Wrong(HeaderName),
}

impl ApiKeyRefusal {
    /// A stable identifier: `api_key_missing`, `api_key_wrong`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing(_) => "api_key_missing",
            Self::Wrong(_) => "api_key_wrong",
        }
    }

    /// 401 for a missing key, 403 for a wrong one.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing(_) => StatusCode::UNAUTHORIZED,
            Self::Wrong(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for ApiKeyRefusal {
    fn into_response(self) -> Response {
        // The error body of every signer error (`crate::error`): an Octez error trace.
        let body = serde_json::json!([{
            "kind": self.kind(),
            "id": format!("tezos_hsm.{}", self.kind()),
            "msg": self.to_string(),
        }]);
        (self.status(), axum::Json(body)).into_response()
    }
}

/// The API key and the header it comes in. `Send + Sync`; share it in an `Arc`.
pub struct ApiKey {
    header: HeaderName,
    key: SecretString,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// The key in the first line of `path`, expected in header `header` (`x-…`). The file must
    /// be a regular file of at most 4 KiB, without access for group or others (`chmod 600`),
    /// and the key at least [`MIN_KEY_LEN`] characters.
    ///
    /// # Errors
    /// [`ApiKeyFileError`] saying what is wrong (never the key).
    pub fn from_file(header: &str, path: &Path) -> Result<Self, ApiKeyFileError> {
        let fail = |reason: String| ApiKeyFileError {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".to_owned()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(fail(
                    "group or others may read it: chmod 600 it (it holds a secret)".to_owned(),
                ));
            }
        }
        let text =
            SecretString::from(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
        let key = text.expose_secret().lines().next().unwrap_or("").trim();
        if key.len() < MIN_KEY_LEN {
            return Err(fail(format!(
                "the key (its first line) is shorter than {MIN_KEY_LEN} characters: make one with `openssl rand -hex 32`"
            )));
        }
        Self::new(header, SecretString::from(key.to_owned()))
            .map_err(|reason| fail(reason.to_owned()))
    }

    /// The key `key`, expected in header `header`.
    ///
    /// # Errors
    /// The reason when `header` is not a valid header name.
    pub fn new(header: &str, key: SecretString) -> Result<Self, &'static str> {
        let lower = header.trim().to_ascii_lowercase();
        let name = HeaderName::from_bytes(lower.as_bytes())
            .map_err(|_| "the header name is not a valid HTTP header name")?;
        Ok(Self { header: name, key })
    }

    /// The header name.
    pub fn header(&self) -> &str {
        self.header.as_str()
    }

    /// Checks the request's headers.
    ///
    /// ```
    /// use axum::http::{HeaderMap, HeaderValue};
    /// use secrecy::SecretString;
    /// use tezos_signer::api_key::ApiKey;
    /// let key = ApiKey::new("x-api-key", SecretString::from("0123456789abcdef")).unwrap();
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(key.check(&headers).unwrap_err().kind(), "api_key_missing");
    /// headers.insert("x-api-key", HeaderValue::from_static("0123456789abcdeX"));
    /// assert_eq!(key.check(&headers).unwrap_err().kind(), "api_key_wrong");
    /// headers.insert("x-api-key", HeaderValue::from_static("0123456789abcdef"));
    /// assert!(key.check(&headers).is_ok());
    /// ```
    ///
    /// # Errors
    /// [`ApiKeyRefusal`]: missing (401) or wrong (403).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiKeyRefusal> {
        let mut values = headers.get_all(&self.header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            // None, or several (ambiguous: refused as missing).
            return Err(ApiKeyRefusal::Missing(self.header.clone()));
        };
        let given = digest(value.as_bytes());
        let expected = digest(self.key.expose_secret().as_bytes());
        if bool::from(given.ct_eq(&expected)) {
            Ok(())
        } else {
            Err(ApiKeyRefusal::Wrong(self.header.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use std::os::unix::fs::PermissionsExt;

    use axum::http::HeaderValue;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_key_comes_from_the_first_line_of_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            dir.path(),
            "k",
            "  0123456789abcdef0123  \nignored\n",
            0o600,
        );
        let key = ApiKey::from_file("X-Signer-Key", &good).unwrap();
        assert_eq!(key.header(), "x-signer-key");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signer-key",
            HeaderValue::from_static("0123456789abcdef0123"),
        );
        assert!(key.check(&headers).is_ok());
        assert!(!format!("{key:?}").contains("0123456789"));

        let cases = [
            (
                write(dir.path(), "open", "0123456789abcdef0123", 0o644),
                "chmod 600",
            ),
            (
                write(dir.path(), "short", "s3cret\n", 0o600),
                "shorter than 16",
            ),
            (write(dir.path(), "empty", "", 0o600), "shorter than 16"),
            (dir.path().to_owned(), "not a regular file"),
            (dir.path().join("missing"), "No such file"),
        ];
        for (path, needle) in cases {
            let error = ApiKey::from_file("x-api-key", &path).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(needle), "{message}");
            assert!(!message.contains("s3cret") && !message.contains("0123456789"));
            assert_eq!(error.kind(), "api_key_file");
        }
    }

    #[test]
    fn missing_duplicated_and_wrong_keys_are_refused_401_and_403() {
        let key = ApiKey::new("x-api-key", SecretString::from("correct horse battery")).unwrap();
        let mut headers = HeaderMap::new();
        let missing = key.check(&headers).unwrap_err();
        assert_eq!(
            (missing.status(), missing.kind()),
            (StatusCode::UNAUTHORIZED, "api_key_missing")
        );
        headers.insert("x-other", HeaderValue::from_static("correct horse battery"));
        assert_eq!(key.check(&headers).unwrap_err().kind(), "api_key_missing");
        for wrong in [
            "correct horse batter",
            "correct horse battery ",
            "",
            "Correct horse battery",
        ] {
            headers.insert("x-api-key", HeaderValue::from_str(wrong).unwrap());
            let refusal = key.check(&headers).unwrap_err();
            assert_eq!(
                (refusal.status(), refusal.kind()),
                (StatusCode::FORBIDDEN, "api_key_wrong")
            );
        }
        headers.insert(
            "X-API-KEY",
            HeaderValue::from_static("correct horse battery"),
        );
        assert!(key.check(&headers).is_ok());
        headers.append(
            "x-api-key",
            HeaderValue::from_static("correct horse battery"),
        );
        assert_eq!(key.check(&headers).unwrap_err().kind(), "api_key_missing");
    }

    #[test]
    fn refusal_kinds_are_stable() {
        let name = HeaderName::from_static("x-api-key");
        assert_eq!(
            ApiKeyRefusal::Missing(name.clone()).kind(),
            "api_key_missing"
        );
        assert_eq!(ApiKeyRefusal::Wrong(name).kind(), "api_key_wrong");
    }
}
