//! Authenticated requests of the Octez remote-signer protocol: [`AuthorizedKeys`].
//!
//! When a signer requires authentication, octez-client asks `GET /authorized_keys` before every
//! signature, signs `0x04 ‖ 0x01 ‖ pkh ‖ data` with one of its keys that is on that list, and
//! sends the signature as `POST /keys/<pkh>?authentication=<sig>` (remote-signer.md §2.3). The
//! bytes are Octez's `Make_authenticated_request(Sign).to_sign`
//! (`src/lib_signer_services/signer_messages.ml`): the magic byte `0x04`, the request tag (`1`
//! for a signature), the signer key's hash in its 21-byte binary form (curve tag ‖ 20-byte
//! hash), then the data to sign (watermark included). The signature is checked like any Tezos
//! signature: BLAKE2b-256 of those bytes, verified against each authorized public key
//! (`src/bin_signer/handler.ml`, `check_authorization`).
//!
//! `GET /authorized_keys` is on octez-client's hot path, so its answer is built once, here, and
//! served from memory: `{"authorized_keys": ["tz1…", …]}` when some served key requires
//! authentication, `{}` otherwise (Octez's `No_authentication`).

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tezos_keys::{PublicKey, PublicKeyHash, Signature, Verifier};

/// The magic byte that starts an authenticated request (remote-signer.md §2.4).
pub const AUTHENTICATED_REQUEST_MAGIC: u8 = 0x04;

/// The request tag of a signing request in the authenticated bytes (`Sign`'s tag in
/// `signer_messages.ml`).
pub const SIGN_REQUEST_TAG: u8 = 1;

/// The bytes a client signs to authenticate `POST /keys/<pkh>` with body `data`:
/// `0x04 ‖ 0x01 ‖ pkh(21) ‖ data`.
///
/// ```
/// use tezos_keys::PublicKeyHash;
/// use tezos_signer::auth::sign_request_bytes;
/// let pkh: PublicKeyHash = "tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb".parse()?;
/// let bytes = sign_request_bytes(&pkh, &[0x03, 0xaa]);
/// assert_eq!(&bytes[..3], &[0x04, 0x01, 0x00]); // magic, sign tag, Ed25519 pkh tag
/// assert_eq!(bytes.len(), 2 + 21 + 2);
/// # Ok::<(), tezos_keys::Error>(())
/// ```
pub fn sign_request_bytes(pkh: &PublicKeyHash, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + tezos_keys::FORGED_PKH_LEN + data.len());
    bytes.push(AUTHENTICATED_REQUEST_MAGIC);
    bytes.push(SIGN_REQUEST_TAG);
    bytes.extend_from_slice(&pkh.to_forged());
    bytes.extend_from_slice(data);
    bytes
}

/// A request refused by [`AuthorizedKeys::check`]. Every variant is answered 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The key requires authentication and the request has no `authentication` parameter.
    #[error("key {pkh} requires authenticated requests: give ?authentication=<signature> by a key on the signer's authorized_keys (octez-client does it when GET /authorized_keys lists its key)")]
    Missing {
        /// The signer key requested.
        pkh: PublicKeyHash,
    },
    /// The `authentication` parameter is not a Tezos signature.
    #[error("the authentication parameter is not a signature (edsig…, spsig1…, p2sig… or sig…): {reason}")]
    Malformed {
        /// Why it could not be read.
        reason: String,
    },
    /// The signature is not by an authorized key over this request.
    #[error("the authentication signature is not by a key on the signer's authorized_keys, over 0x04 ‖ 0x01 ‖ {pkh} ‖ the request's bytes")]
    Refused {
        /// The signer key requested.
        pkh: PublicKeyHash,
    },
}

impl AuthError {
    /// A stable identifier: `authentication_required`, `authentication_malformed`,
    /// `authentication_refused`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "authentication_required",
            Self::Malformed { .. } => "authentication_malformed",
            Self::Refused { .. } => "authentication_refused",
        }
    }

    /// The HTTP status: 403 for all (Octez answers an unauthorized request with an error too).
    pub fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// The clients allowed to send authenticated requests, ready to verify, and the answer to
/// `GET /authorized_keys`. Build it once at startup; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct AuthorizedKeys {
    verifiers: Vec<Verifier>,
    body: Bytes,
}

impl AuthorizedKeys {
    /// The authorized `keys`; `required` says whether any served key requires authentication
    /// (then `GET /authorized_keys` lists them).
    ///
    /// # Errors
    /// A [`tezos_keys::Error`] if a key cannot be prepared for verification.
    pub fn new(keys: &[PublicKey], required: bool) -> Result<Self, tezos_keys::Error> {
        let verifiers = keys
            .iter()
            .map(Verifier::new)
            .collect::<Result<Vec<_>, _>>()?;
        let body = if required {
            let list: Vec<String> = keys.iter().map(|k| k.hash().to_base58()).collect();
            serde_json::json!({ "authorized_keys": list }).to_string()
        } else {
            "{}".to_owned()
        };
        Ok(Self {
            verifiers,
            body: Bytes::from(body),
        })
    }

    /// No authorized key, no authentication.
    pub fn none() -> Self {
        Self {
            verifiers: Vec::new(),
            body: Bytes::from_static(b"{}"),
        }
    }

    /// The JSON answer to `GET /authorized_keys`.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The answer to `GET /authorized_keys`, from memory (a cheap clone of the bytes).
    pub fn response(&self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.body.clone(),
        )
            .into_response()
    }

    /// Checks the `authentication` query parameter of `POST /keys/<pkh>` with body `data`
    /// (the bytes to sign, watermark included), when the key requires authentication.
    /// Returns the address of the client key that signed.
    ///
    /// # Errors
    /// [`AuthError`]: missing, not a signature, or not by an authorized key over these bytes.
    pub fn check(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&str>,
    ) -> Result<PublicKeyHash, AuthError> {
        let text = authentication
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing { pkh: *pkh })?;
        let message = sign_request_bytes(pkh, data);
        let typed = text.parse::<Signature>();
        if let Err(e) = &typed {
            if !matches!(e, tezos_keys::Error::GenericSignatureNeedsCurve) {
                return Err(AuthError::Malformed {
                    reason: e.to_string(),
                });
            }
        }
        for verifier in &self.verifiers {
            let curve = verifier.public_key().curve();
            let signature = match &typed {
                Ok(sig) if sig.curve() == curve => *sig,
                Ok(_) => continue,
                // A generic `sig…`: read it for this key's curve.
                Err(_) => match Signature::from_base58_for(text, curve) {
                    Ok(sig) => sig,
                    Err(e) => {
                        return Err(AuthError::Malformed {
                            reason: e.to_string(),
                        })
                    }
                },
            };
            if verifier.verify(&message, &signature).is_ok() {
                return Ok(verifier.public_key().hash());
            }
        }
        Err(AuthError::Refused { pkh: *pkh })
    }
}

#[cfg(test)]
mod tests;
