//! HTTPS: a rustls server configuration from PEM files ([`server_config`]) and the TLS
//! handshake of each connection for [`crate::serve_with`] ([`TlsAccept`]).
//!
//! Like `octez-signer launch https signer <cert> <key>` (remote-signer.md §2.2), the certificate
//! chain and private key come from files. rustls runs on `ring` (see Cargo.toml for why), with
//! its safe defaults: TLS 1.2 and 1.3, no client certificates, ALPN `http/1.1` (octez-client and
//! Taquito speak HTTP/1.1).
//!
//! Each handshake runs in its connection's own task within the header timeout of
//! [`crate::ServeOptions`], so a client that connects and stays silent cannot hold up the
//! others; a failed handshake is logged and dropped, and the server goes on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::server::Accept;

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} file {path}: {reason}")]
    Unreadable {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file holds no usable PEM content.
    #[error("the TLS {what} file {path} {reason}")]
    BadPem {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it (never key bytes).
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("TLS certificate {cert} and key {key} cannot be used together: {reason}")]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
}

impl TlsError {
    /// A stable identifier: `tls_unreadable`, `tls_bad_pem`, `tls_refused`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "tls_unreadable",
            Self::BadPem { .. } => "tls_bad_pem",
            Self::Refused { .. } => "tls_refused",
        }
    }
}

/// A rustls server configuration from a PEM certificate chain (leaf first) and a PEM private
/// key (PKCS#8, PKCS#1 or SEC1). The key file must give no access to others (`chmod 600` or
/// `640`).
///
/// # Errors
/// [`TlsError`] naming the file and what to do.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Unreadable {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let cert_pem = read("certificate", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what: "certificate",
            path: cert.to_owned(),
            reason: format!("is not valid PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::BadPem {
            what: "certificate",
            path: cert.to_owned(),
            reason: "holds no CERTIFICATE block: give the certificate chain in PEM, leaf first"
                .to_owned(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key)
            .map_err(|e| TlsError::Unreadable {
                what: "key",
                path: key.to_owned(),
                reason: e.to_string(),
            })?
            .permissions()
            .mode();
        if mode & 0o007 != 0 {
            return Err(TlsError::Unreadable {
                what: "key",
                path: key.to_owned(),
                reason: "others may read it: chmod 600 (or 640 for a group) it".to_owned(),
            });
        }
    }
    let key_pem = zeroize::Zeroizing::new(read("key", key)?);
    // The parser's error names the PEM problem, never the key's bytes.
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadPem {
        what: "key",
        path: key.to_owned(),
        reason: format!(
            "holds no usable private key ({e}): give it in PEM (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY), unencrypted"
        ),
    })?;
    let refused = |e: rustls::Error| TlsError::Refused {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(refused)?
    .with_no_client_auth()
    .with_single_cert(chain, private_key)
    .map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// HTTPS for [`crate::serve_with`]: the TLS handshake of each accepted connection (bounded by
/// [`crate::ServeOptions::header_read_timeout`], in the connection's own task, so a client that
/// connects and stays silent holds up no one).
///
/// ```no_run
/// # async fn run(router: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// use std::path::Path;
/// use tezos_signer::tls::{server_config, TlsAccept};
/// let tls = TlsAccept::new(server_config(Path::new("cert.pem"), Path::new("key.pem"))?);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:6732").await?;
/// tezos_signer::serve_with(listener, router, tezos_signer::shutdown_signal()?, Default::default(), tls).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsAccept(TlsAcceptor);

impl std::fmt::Debug for TlsAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAccept")
    }
}

impl TlsAccept {
    /// Handshakes with `config` (from [`server_config`]).
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self(TlsAcceptor::from(config))
    }
}

impl Accept for TlsAccept {
    type Io = TlsStream<TcpStream>;

    async fn accept(&self, stream: TcpStream) -> io::Result<Self::Io> {
        let peer = stream.peer_addr().ok();
        self.0.accept(stream).await.inspect_err(|e| {
            tracing::info!(peer = ?peer, error = %e, "TLS handshake failed");
        })
    }
}

#[cfg(test)]
mod tests;
