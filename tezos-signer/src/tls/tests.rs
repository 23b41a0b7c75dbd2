#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsConnector;

use crate::ServeOptions;

use super::*;

/// A self-signed certificate for `localhost` and 127.0.0.1, written to `dir`: (cert, key,
/// the certificate's DER for a client to trust).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key, certified.cert.der().clone())
}

fn client(trusted: Option<CertificateDer<'static>>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// `GET path` over TLS; the whole response as text.
async fn get_over_tls(
    connector: &TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

async fn serve(
    config: Arc<rustls::ServerConfig>,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/hello", get(|| async { "over https" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(2),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        crate::serve_with(listener, router, shutdown, options, TlsAccept::new(config))
            .await
            .unwrap();
    });
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_certificate_gets_answers_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(dir.path());
    let (addr, stop, server) = serve(server_config(&cert, &key).unwrap()).await;

    let trusting = client(Some(der));
    let response = get_over_tls(&trusting, addr, "/hello").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("over https"), "{response}");

    // A client that does not trust it fails its handshake; the server goes on.
    let sceptic = client(None);
    let error = get_over_tls(&sceptic, addr, "/hello").await.unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("over https"));
    // A silent client (connected, no handshake) does not hold up the others.
    let _silent = TcpStream::connect(addr).await.unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        get_over_tls(&trusting, addr, "/hello"),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(response.ends_with("over https"), "{response}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    // Stopped: the port no longer accepts.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn unusable_files_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = self_signed(other.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all\n").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let open_key = dir.path().join("open-key.pem");
    std::fs::copy(&key, &open_key).unwrap();
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.path().join("missing.pem");

    let cases: [(&Path, &Path, &str, &str); 6] = [
        (&missing, &key, "tls_unreadable", "certificate file"),
        (&cert, &missing, "tls_unreadable", "key file"),
        (&garbage, &key, "tls_bad_pem", "no CERTIFICATE block"),
        (&cert, &garbage, "tls_bad_pem", "no usable private key"),
        (&cert, &open_key, "tls_unreadable", "chmod 600"),
        (&cert, &other_key, "tls_refused", "cannot be used together"),
    ];
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    for (cert, key, kind, needle) in cases {
        let error = server_config(cert, key).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.kind(), kind, "{message}");
        assert!(message.contains(needle), "{message}");
        assert!(!message.contains(key_body), "{message}");
    }
}
