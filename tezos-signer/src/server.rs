//! The HTTP server: [`router`] (the Octez services over a [`Signer`]) and [`serve`] (the
//! connections: limits, timeouts, graceful shutdown).
//!
//! Limits, against clients that are slow, stuck or hostile:
//! - a request body of at most [`MAX_BODY_BYTES`] (the largest Octez operation in hex), else 413;
//! - the whole request, body included, within the signer's deadline
//!   ([`crate::DEFAULT_REQUEST_DEADLINE`]), else 503;
//! - request headers within [`ServeOptions::header_read_timeout`], which also closes a
//!   keep-alive connection left idle that long (hyper starts the timer as soon as a connection
//!   waits for its next request);
//! - at most [`ServeOptions::max_connections`] connections at once; each connection is its own
//!   task, so a slow client holds one connection, never the others;
//! - HSM calls and the watermark store on blocking threads, never on the async ones.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::error::SignerError;
use crate::health::HealthProbe;
use crate::metrics::Metrics;
use crate::protocol::{self, PublicKeyAnswer, SignQuery, SignatureAnswer, MAX_BODY_BYTES};
use crate::signer::Signer;

/// The Octez remote-signer services over `signer` (see [`crate::protocol`]), with the body
/// limit and the per-request deadline. Add routes (`merge`) and layers (`layer`) to it for
/// metrics, health, authentication.
///
/// Also `GET /metrics` ([`crate::metrics`]) and `GET /healthz` ([`crate::health`]); with an
/// API key ([`Signer::with_api_key`]) every Octez service requires it, `/metrics` and
/// `/healthz` do not (a load balancer's or Prometheus's probe).
pub fn router(signer: Signer) -> Router {
    let deadline = signer.deadline();
    let mut octez = Router::new()
        .route("/keys/{pkh}", get(public_key).post(sign))
        .route("/authorized_keys", get(authorized_keys))
        .route("/known_keys", get(known_keys))
        .route("/bls_prove_possession/{pkh}", get(prove_possession));
    if signer.api_key().is_some() {
        octez = octez.layer(middleware::from_fn_with_state(
            signer.clone(),
            require_api_key,
        ));
    }
    let operations = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz));
    octez
        .merge(operations)
        .fallback(no_such_service)
        .method_not_allowed_fallback(no_such_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(deadline, within_deadline))
        .with_state(signer)
}

async fn public_key(
    State(signer): State<Signer>,
    Path(pkh): Path<String>,
) -> Result<Json<PublicKeyAnswer>, SignerError> {
    let served = signer.key(&pkh)?;
    Ok(Json(PublicKeyAnswer {
        public_key: served.key.public_key().to_string(),
    }))
}

async fn sign(
    State(signer): State<Signer>,
    Path(pkh): Path<String>,
    query: Result<Query<SignQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SignatureAnswer>, SignerError> {
    let Query(query) = query.map_err(|e| {
        SignerError::InvalidRequest(format!("the query cannot be read: {}", e.body_text()))
    })?;
    // Unknown and unsupported keys first, as octez-signer does (its handler finds the key
    // before it looks at the data).
    signer.key(&pkh)?;
    let body = body.map_err(|e| match e.status().as_u16() {
        413 => SignerError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        },
        _ => SignerError::InvalidRequest(format!("the body cannot be read: {}", e.body_text())),
    })?;
    let payload = protocol::parse_payload(&body)?;
    let signature = signer.sign(pkh, query, payload).await?;
    Ok(Json(signature.into()))
}

/// `GET /authorized_keys`, from memory: octez-client asks it before every signature.
async fn authorized_keys(State(signer): State<Signer>) -> Response {
    signer.authorized_keys().response()
}

/// `GET /metrics`.
async fn metrics(State(signer): State<Signer>) -> Response {
    Metrics::handler(State(Arc::clone(signer.metrics()))).await
}

/// `GET /healthz`.
async fn healthz(State(signer): State<Signer>) -> Response {
    HealthProbe::handler(State(Arc::clone(signer.health()))).await
}

/// The API key of [`Signer::with_api_key`] on an Octez service; a refusal is counted.
async fn require_api_key(State(signer): State<Signer>, request: Request, next: Next) -> Response {
    let Some(api_key) = signer.api_key() else {
        return next.run(request).await;
    };
    match api_key.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            signer.metrics().refusal(refusal.kind());
            tracing::info!(
                outcome = refusal.kind(),
                status = refusal.status().as_u16(),
                path = ?request.uri().path().chars().take(80).collect::<String>(),
                "refused"
            );
            refusal.into_response()
        }
    }
}

async fn known_keys() -> SignerError {
    SignerError::NotAllowed(protocol::KNOWN_KEYS_NOT_ALLOWED)
}

async fn prove_possession(Path(pkh): Path<String>) -> SignerError {
    match protocol::parse_address(&pkh) {
        Err(e) => e,
        Ok(_) => SignerError::NotAllowed(protocol::PROVE_POSSESSION_NOT_ALLOWED),
    }
}

async fn no_such_service(request: Request) -> SignerError {
    SignerError::InvalidRequest(format!(
        "no service {} {}; this is an Octez remote signer: GET/POST /keys/<address>, GET \
         /authorized_keys",
        request.method(),
        request.uri().path().chars().take(80).collect::<String>()
    ))
}

async fn no_such_method(request: Request) -> SignerError {
    SignerError::InvalidRequest(format!(
        "{} is not a method of {}",
        request.method(),
        request.uri().path().chars().take(80).collect::<String>()
    ))
}

/// The whole request, body included, within the deadline.
async fn within_deadline(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => SignerError::DeadlineExceeded { deadline }.into_response(),
    }
}

/// How [`serve_with`] treats connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (and, for a TLS acceptor, its
    /// handshake), and how long a keep-alive connection may stay idle. Default 10 s.
    pub header_read_timeout: Duration,
    /// The most connections served at once; more wait in the listen queue. Default 1,024.
    pub max_connections: usize,
    /// After shutdown is asked, how long in-flight requests get to finish. Default 10 s: more
    /// than a request's deadline.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Turns an accepted TCP connection into the stream HTTP is spoken on: [`PlainTcp`] as it is,
/// or a TLS acceptor's handshake.
pub trait Accept: Clone + Send + Sync + 'static {
    /// The stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Accepts `stream` (bounded by [`ServeOptions::header_read_timeout`]).
    fn accept(&self, stream: TcpStream) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// Plain HTTP: the TCP stream as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainTcp;

impl Accept for PlainTcp {
    type Io = TcpStream;

    async fn accept(&self, stream: TcpStream) -> io::Result<TcpStream> {
        Ok(stream)
    }
}

/// Serves `router` on `listener` over plain HTTP with the default [`ServeOptions`] until
/// `shutdown` completes, then stops accepting and lets in-flight requests finish (see
/// [`serve_with`]).
///
/// # Errors
/// None yet: accept errors (e.g. too many open files) are waited out, not returned.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with(
        listener,
        router,
        shutdown,
        ServeOptions::default(),
        PlainTcp,
    )
    .await
}

/// Serves `router` on `listener`, each connection through `acceptor`, until `shutdown`
/// completes; then stops accepting (the listener is closed), waits up to
/// [`ServeOptions::shutdown_grace`] for the requests in flight to be answered (idle keep-alive
/// connections are closed at once), and returns.
///
/// # Errors
/// None yet: accept errors (e.g. too many open files) are waited out, not returned.
pub async fn serve_with<A: Accept>(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
    acceptor: A,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(_) => {
                    // Out of file descriptors, a connection reset before accept…: wait a
                    // little rather than spin, and go on.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let header_timeout = options.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let io = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(io)) => io,
                Ok(Err(_)) | Err(_) => return,
            };
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await;
    Ok(())
}

/// Completes on SIGTERM or SIGINT (Ctrl-C): the `shutdown` of [`serve`] for a service.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
