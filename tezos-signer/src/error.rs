//! Why a request got no signature: [`SignerError`], its stable `kind()`, its HTTP status, and
//! the JSON body it is answered with.
//!
//! # The error body
//!
//! Every error is answered with a JSON **array of one object**, `[{"kind", "id", "msg"}]`:
//! `kind` is the stable snake_case kind of [`SignerError::kind`], `id` is `tezos_hsm.<kind>`
//! and `msg` says what was wrong and how to fix it. The array is the shape of an Octez error
//! trace: octez-client decodes the body of a 403, 404, 409 or 500 answer as one
//! (`src/lib_rpc_http/RPC_client.ml`, `handle`: `Forbidden (Some err)` … `Lwt.return_error
//! err`), and an object whose `id` it does not know becomes its catch-all
//! `Unregistered_error`, printed with the whole JSON (Octez's error monad: "Catch all error
//! when 'deserializing' an error"), so the baker's log shows our message. A 400, 413 or 503 answer is shown by octez-client with
//! its body as it is (`Bad_request`, `Unexpected_status_code`). Signatory answers with the same
//! array shape (its server package, `tezosJSONError`), which Taquito reads as text.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tezos_keys::GuardError;

use crate::auth::AuthError;
use crate::policy::PolicyError;

/// Why a request got no signature (or no answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The request cannot be decoded: not JSON, not a hex string, odd hex, a bad query.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body is larger than [`crate::protocol::MAX_BODY_BYTES`].
    #[error(
        "the request body is larger than {limit} bytes; a signing request is one JSON hex string \
         of at most {} payload bytes (Octez's max_operation_data_length plus the watermark)",
        crate::protocol::MAX_PAYLOAD_BYTES
    )]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// No key with this address is served.
    #[error("no key {address} is served here; GET /keys/<address> for one of the served keys")]
    UnknownKey {
        /// The address asked for (as sent, cut short).
        address: String,
    },
    /// The address is of a key type no PKCS#11 HSM can hold.
    #[error(
        "{what} keys are not supported: no PKCS#11 HSM signs {scheme}; serve tz1, tz2 or tz3 keys"
    )]
    UnsupportedKeyType {
        /// `tz4` or `tz5`.
        what: &'static str,
        /// The signature scheme.
        scheme: &'static str,
    },
    /// A request this signer refuses by configuration, answered with octez-signer's message.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The key requires authenticated requests and this one is not (see [`crate::auth`]).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The key's rules refuse the request.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The double-signing guard, the watermark store or the HSM refused or failed.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// The request did not finish within the per-request deadline.
    #[error(
        "the request did not finish within {:.1} s; if a signature was made it is recorded and the \
         same request gets it back",
        deadline.as_secs_f64()
    )]
    DeadlineExceeded {
        /// The deadline.
        deadline: Duration,
    },
    /// A bug: a signing task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SignerError {
    /// A stable snake_case name of the error's kind (the `kind` of the JSON body), with the
    /// HTTP status it is answered with:
    ///
    /// | Kind | Status | Variant |
    /// |---|---|---|
    /// | `invalid_request` | 400 | [`SignerError::InvalidRequest`] |
    /// | `invalid_input`, `operation_*` | 400 | an undecodable payload (empty, unknown watermark, truncated; a generic operation that cannot be decoded) |
    /// | `body_too_large` | 413 | [`SignerError::BodyTooLarge`] |
    /// | `unknown_key` | 404 | [`SignerError::UnknownKey`] |
    /// | `unsupported_key_type` | 404 | [`SignerError::UnsupportedKeyType`] (tz4, tz5) |
    /// | `not_allowed` | 403 | [`SignerError::NotAllowed`] (`known_keys`, `bls_prove_possession`) |
    /// | `authentication_required`, `authentication_malformed`, `authentication_refused` | 403 | [`SignerError::Auth`] ([`AuthError::kind`]) |
    /// | `policy_kind_not_allowed`, `policy_chain_not_allowed`, `policy_operation_not_allowed`, `policy_operation_not_listed` | 403 | the key's rules refuse it ([`PolicyError`]) |
    /// | `watermark_not_allowed` | 403 | the guard's own kind check ([`GuardError::PolicyRefused`]) |
    /// | `double_sign` | 409 | [`GuardError::DoubleSign`]: the high-watermark refused it |
    /// | `watermark_store_corrupt`, `watermark_store_missing`, `watermark_store_unsafe`, `watermark_store_busy`, `io` | 503 | the watermark store cannot be used: nothing was signed |
    /// | the HSM's kind (`pool_exhausted`, `pkcs11`, `pin_incorrect`, `verify_failed`…) | 503 | [`GuardError::Signer`] |
    /// | `deadline_exceeded` | 503 | [`SignerError::DeadlineExceeded`] |
    /// | `internal` | 500 | [`SignerError::Internal`] |
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnknownKey { .. } => "unknown_key",
            Self::UnsupportedKeyType { .. } => "unsupported_key_type",
            Self::NotAllowed(_) => "not_allowed",
            Self::Auth(e) => e.kind(),
            Self::Policy(e) => e.kind(),
            Self::Guard(e) => e.kind(),
            Self::DeadlineExceeded { .. } => "deadline_exceeded",
            Self::Internal(_) => "internal",
        }
    }

    /// The HTTP status this error is answered with (see [`SignerError::kind`]).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownKey { .. } | Self::UnsupportedKeyType { .. } => StatusCode::NOT_FOUND,
            Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::Auth(e) => e.status(),
            Self::Policy(e) if !e.is_refusal() => StatusCode::BAD_REQUEST,
            Self::Policy(_) => StatusCode::FORBIDDEN,
            Self::Guard(e) => guard_status(e),
            Self::DeadlineExceeded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: `[{"kind", "id", "msg"}]` (see the [module documentation](self)).
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!([{
            "kind": self.kind(),
            "id": format!("tezos_hsm.{}", self.kind()),
            "msg": self.to_string(),
        }])
    }
}

/// A refusal is the client's (400/403/409); anything else is the store or the HSM failing,
/// which a retry or another signer may get past (503), and never an unguarded signature.
fn guard_status(error: &GuardError) -> StatusCode {
    match error {
        GuardError::DoubleSign { .. } => StatusCode::CONFLICT,
        GuardError::PolicyRefused { .. } => StatusCode::FORBIDDEN,
        GuardError::Payload(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for SignerError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use tezos_keys::high_watermark::{Height, MarkKind};
    use tezos_keys::payload::Watermark;
    use tezos_keys::{ChainId, Curve, PublicKeyHash};

    #[test]
    fn every_kind_has_its_status() {
        let key = PublicKeyHash::new(Curve::Secp256k1, [1; 20]);
        let cases: Vec<(SignerError, &str, u16)> = vec![
            (
                SignerError::InvalidRequest("x".into()),
                "invalid_request",
                400,
            ),
            (
                SignerError::Policy(PolicyError::Payload(tezos_keys::Error::EmptyPayload)),
                "invalid_input",
                400,
            ),
            (
                SignerError::Guard(GuardError::Payload(tezos_keys::Error::EmptyPayload)),
                "invalid_input",
                400,
            ),
            (
                SignerError::BodyTooLarge { limit: 10 },
                "body_too_large",
                413,
            ),
            (
                SignerError::UnknownKey {
                    address: "tz1".into(),
                },
                "unknown_key",
                404,
            ),
            (
                SignerError::UnsupportedKeyType {
                    what: "tz4",
                    scheme: "BLS12-381",
                },
                "unsupported_key_type",
                404,
            ),
            (SignerError::NotAllowed("no"), "not_allowed", 403),
            (
                SignerError::Auth(crate::auth::AuthError::Missing { pkh: key }),
                "authentication_required",
                403,
            ),
            (
                SignerError::Auth(crate::auth::AuthError::Refused { pkh: key }),
                "authentication_refused",
                403,
            ),
            (
                SignerError::Policy(PolicyError::KindNotAllowed {
                    watermark: Watermark::Block,
                    allowed: vec![],
                }),
                "policy_kind_not_allowed",
                403,
            ),
            (
                SignerError::Guard(GuardError::PolicyRefused {
                    key,
                    watermark: Watermark::Block,
                    allowed: vec![],
                }),
                "watermark_not_allowed",
                403,
            ),
            (
                SignerError::Guard(GuardError::DoubleSign {
                    key,
                    chain: ChainId::MAINNET,
                    kind: MarkKind::Block,
                    requested: Height::new(1, 0),
                    recorded: Height::new(2, 0),
                }),
                "double_sign",
                409,
            ),
            (
                SignerError::Guard(GuardError::StoreMissing {
                    dir: PathBuf::from("/x"),
                }),
                "watermark_store_missing",
                503,
            ),
            (
                SignerError::Guard(GuardError::StoreBusy {
                    path: PathBuf::from("/x"),
                    waited: Duration::from_secs(1),
                }),
                "watermark_store_busy",
                503,
            ),
            (
                SignerError::DeadlineExceeded {
                    deadline: Duration::from_secs(3),
                },
                "deadline_exceeded",
                503,
            ),
            (SignerError::Internal("x".into()), "internal", 500),
        ];
        for (error, kind, status) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.status().as_u16(), status, "{error}");
            let body = error.body();
            assert_eq!(body[0]["kind"], kind);
            assert_eq!(body[0]["id"], format!("tezos_hsm.{kind}"));
            assert_eq!(body[0]["msg"], error.to_string());
        }
    }
}
