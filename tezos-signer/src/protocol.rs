//! The Octez remote-signer HTTP protocol, as octez-client and Taquito speak it: what requests
//! carry and what answers look like.
//!
//! Services (Octez `src/lib_signer_services/signer_services.ml`, `src/bin_signer/http_daemon.ml`):
//!
//! | Method and path | Query | Body | Answer |
//! |---|---|---|---|
//! | `GET /keys/<pkh>` | | | `{"public_key": "<b58>"}` |
//! | `POST /keys/<pkh>` | `version=0..3`, `authentication=<sig>` | `"<hex>"` (watermark ‖ payload) | `{"signature": "<b58>"}` |
//! | `GET /authorized_keys` | | | `{}` without authentication, else `{"authorized_keys": [pkh…]}` |
//! | `GET /known_keys` | | | refused unless allowed: "List known keys request not allowed." |
//! | `GET /bls_prove_possession/<pkh>` | `bls_pk` | | refused: "Request to prove possession is not allowed." |
//!
//! Errors are answered as [`crate::error`] describes.

use serde::{Deserialize, Serialize};
use tezos_keys::{PublicKeyHash, Signature};

use crate::error::SignerError;

/// The largest payload signed, watermark byte included: Octez's `max_operation_data_length`
/// (32 KiB, `src/proto_alpha/lib_protocol/constants_repr.ml`) plus the watermark byte. Every
/// operation a node accepts fits (its signature included); block headers and consensus
/// operations are a few hundred bytes; Michelson data (`0x05`) is checked on chain inside an
/// operation, so it fits too.
pub const MAX_PAYLOAD_BYTES: usize = 1 + 32 * 1024;

/// The largest request body read: [`MAX_PAYLOAD_BYTES`] in hex inside a JSON string, plus 1 KiB
/// for quotes, a `0x`, white space and escapes. Anything longer is refused (413) before it is
/// read in full.
pub const MAX_BODY_BYTES: usize = 2 * MAX_PAYLOAD_BYTES + 1024;

/// The highest signing `version` octez-client sends (Octez `Signature.version`: 0 to 3 in
/// 2026; it matters only for BLS keys, which are not served).
pub const MAX_SIGNATURE_VERSION: u8 = 3;

/// The query of `POST /keys/<pkh>`.
#[derive(Debug, Default, Deserialize)]
pub struct SignQuery {
    /// `version`: the signature version octez-client asks for (0 to 3). It changes nothing for
    /// tz1, tz2 and tz3 keys; any other value is refused.
    pub version: Option<String>,
    /// `authentication`: a signature by an authorized key over `0x04 ‖ tag ‖ pkh ‖ data`.
    pub authentication: Option<String>,
}

impl SignQuery {
    /// Checks the query's values (the authentication signature is checked by whoever checks
    /// authentication).
    ///
    /// # Errors
    /// [`SignerError::InvalidRequest`] for a `version` that is not 0 to 3.
    pub fn check(&self) -> Result<(), SignerError> {
        if let Some(version) = &self.version {
            match version.parse::<u8>() {
                Ok(v) if v <= MAX_SIGNATURE_VERSION => {}
                _ => {
                    return Err(SignerError::InvalidRequest(format!(
                    "the query parameter version must be 0 to {MAX_SIGNATURE_VERSION}, not {:?}",
                    cut(version)
                )))
                }
            }
        }
        Ok(())
    }
}

/// `GET /keys/<pkh>`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublicKeyAnswer {
    /// The public key, base58 (`edpk`/`sppk`/`p2pk`).
    pub public_key: String,
}

/// `POST /keys/<pkh>`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignatureAnswer {
    /// The signature, base58 (`edsig`/`spsig1`/`p2sig`).
    pub signature: String,
}

impl From<Signature> for SignatureAnswer {
    fn from(signature: Signature) -> Self {
        Self {
            signature: signature.to_string(),
        }
    }
}

/// `GET /authorized_keys`'s answer: `{}` when authentication is off.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AuthorizedKeysAnswer {
    /// The keys whose `authentication` signatures are accepted, when authentication is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_keys: Option<Vec<String>>,
}

/// octez-signer's message when `GET /known_keys` is not allowed (`src/bin_signer/handler.ml`).
pub const KNOWN_KEYS_NOT_ALLOWED: &str = "List known keys request not allowed.";

/// octez-signer's message when `GET /bls_prove_possession/<pkh>` is not allowed
/// (`src/bin_signer/handler.ml`).
pub const PROVE_POSSESSION_NOT_ALLOWED: &str = "Request to prove possession is not allowed.";

/// The address in a request's path. tz4 (BLS12-381) and tz5 (ML-DSA-44) addresses are
/// answered "not supported": no PKCS#11 HSM signs with those schemes.
///
/// # Errors
/// [`SignerError::UnsupportedKeyType`] for tz4/tz5, [`SignerError::InvalidRequest`] for text
/// that is not an address.
pub fn parse_address(text: &str) -> Result<PublicKeyHash, SignerError> {
    if text.starts_with("tz4") {
        return Err(SignerError::UnsupportedKeyType {
            what: "tz4 (BLS)",
            scheme: "BLS12-381",
        });
    }
    if text.starts_with("tz5") {
        return Err(SignerError::UnsupportedKeyType {
            what: "tz5 (ML-DSA)",
            scheme: "ML-DSA-44",
        });
    }
    text.parse().map_err(|e| {
        SignerError::InvalidRequest(format!(
            "{:?} is not a tz1, tz2 or tz3 address ({e})",
            cut(text)
        ))
    })
}

/// The payload of a signing request's body: one JSON string of hex (`"03ab…"`, also with a
/// `0x` prefix), decoded.
///
/// # Errors
/// [`SignerError::InvalidRequest`] saying what is wrong (not JSON, not a string, not hex, odd
/// length), [`SignerError::BodyTooLarge`] for a payload over [`MAX_PAYLOAD_BYTES`].
pub fn parse_payload(body: &[u8]) -> Result<Vec<u8>, SignerError> {
    let text: String = serde_json::from_slice(body).map_err(|e| {
        SignerError::InvalidRequest(format!(
            "the body must be one JSON string of hex bytes, e.g. \"03ab12\" ({e})"
        ))
    })?;
    let hex_text = text.strip_prefix("0x").unwrap_or(&text);
    if hex_text.len() > 2 * MAX_PAYLOAD_BYTES {
        return Err(SignerError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    hex::decode(hex_text).map_err(|e| {
        SignerError::InvalidRequest(format!(
            "the body's string is not hex bytes ({e}); send the payload as hex, watermark byte \
             first, e.g. \"03ab12\""
        ))
    })
}

/// At most 40 characters of something a client sent, for a message.
fn cut(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_json_hex_strings() {
        assert_eq!(parse_payload(br#""03ab""#).unwrap(), vec![3, 0xab]);
        assert_eq!(parse_payload(br#" "0x03ab" "#).unwrap(), vec![3, 0xab]);
        for (body, says) in [
            (&br#"03ab"#[..], "one JSON string"),
            (br#"{"a":1}"#, "one JSON string"),
            (br#""03a""#, "Odd number of digits"),
            (br#""zz""#, "not hex"),
            (b"", "one JSON string"),
        ] {
            let err = parse_payload(body).unwrap_err();
            assert_eq!(err.kind(), "invalid_request");
            assert!(err.to_string().contains(says), "{err}");
        }
        let big = format!("\"{}\"", "00".repeat(MAX_PAYLOAD_BYTES + 1));
        assert_eq!(
            parse_payload(big.as_bytes()).unwrap_err().kind(),
            "body_too_large"
        );
    }

    #[test]
    fn addresses_bls_and_mldsa_are_not_supported() {
        assert!(parse_address("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD").is_ok());
        for text in ["tz4HVR6aty9KwsQFHh81C1G7gBdhxT8kuytm", "tz5abc"] {
            let err = parse_address(text).unwrap_err();
            assert_eq!(err.kind(), "unsupported_key_type");
            assert!(err.to_string().contains("not supported"), "{err}");
        }
        assert_eq!(
            parse_address("nonsense").unwrap_err().kind(),
            "invalid_request"
        );
    }

    #[test]
    fn versions_zero_to_three() {
        for v in ["0", "1", "2", "3"] {
            let q = SignQuery {
                version: Some(v.into()),
                authentication: None,
            };
            assert!(q.check().is_ok());
        }
        for v in ["4", "-1", "x", ""] {
            let q = SignQuery {
                version: Some(v.into()),
                authentication: None,
            };
            assert_eq!(q.check().unwrap_err().kind(), "invalid_request");
        }
    }
}
