//! HTTPS: a rustls server configuration from PEM files ([`server_config`]) and a listener that
//! hands axum TLS streams ([`TlsListener`]).
//!
//! Like `octez-signer launch https signer <cert> <key>` (remote-signer.md §2.2), the certificate
//! chain and private key come from files. rustls runs on `ring` (see Cargo.toml for why), with
//! its safe defaults: TLS 1.2 and 1.3, no client certificates, ALPN `http/1.1` (octez-client and
//! Taquito speak HTTP/1.1).
//!
//! Handshakes run in tasks of their own, at most [`MAX_HANDSHAKES`] at once, each within
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and stays silent cannot hold up the others;
//! a failed handshake is logged and dropped, and the server goes on.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at most; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;

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

/// A TCP listener whose accepted connections have completed a TLS handshake: give it to
/// `axum::serve` in place of a `TcpListener`.
///
/// Dropping it (as `axum::serve` does when it shuts down) stops accepting and closes the socket.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Accepts TCP connections on `listener` and runs the TLS handshake of each with `config`.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The listener's I/O error when it has no local address.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, accepted) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), sender));
        Ok(Self {
            accepted,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin
                // (as axum's own TcpListener does).
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // The server is gone when the receiver is: drop the connection.
                    let _ = sender.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when aborted, i.e. when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests;
