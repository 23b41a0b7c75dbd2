//! The server's limits against slow, idle and hostile clients, and its graceful shutdown, on
//! the library API (no HSM needed: these paths answer before any key is used).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tezos_keys::high_watermark::MemoryStore;
use tezos_signer::{KeySet, PlainTcp, ServeOptions, Signer};
use tokio::sync::oneshot;

/// A server on 127.0.0.1:0 with `options`, on a runtime of its own thread; stopped (and
/// joined) by sending on the returned channel.
struct TestServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(options: ServeOptions, deadline: Duration) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                let signer = Signer::new(KeySet::new(), Arc::new(MemoryStore::new()))
                    .with_deadline(deadline);
                // A route that reads its whole body: a request in flight for as long as the
                // client takes to send it.
                let router = tezos_signer::router(signer).route(
                    "/echo",
                    axum::routing::post(
                        |body: axum::body::Bytes| async move { body.len().to_string() },
                    ),
                );
                let shutdown = async move {
                    let _ = stopped.await;
                };
                tezos_signer::serve_with(listener, router, shutdown, options, PlainTcp)
                    .await
                    .unwrap();
            });
        });
        Self {
            address: ready_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
    }

    /// One complete request on a new connection: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = self.connect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        read_answer(&mut stream)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ),
    }
}

fn options(header_read_timeout: Duration) -> ServeOptions {
    let mut options = ServeOptions::default();
    options.header_read_timeout = header_read_timeout;
    options
}

#[test]
fn slow_headers_and_idle_connections_are_closed_and_block_no_one() {
    let server = TestServer::start(options(Duration::from_millis(800)), Duration::from_secs(3));
    // Clients that send half a request line, or nothing at all.
    let mut stalled: Vec<TcpStream> = (0..20)
        .map(|i| {
            let mut s = server.connect();
            if i % 2 == 0 {
                s.write_all(b"GET /authorized_ke").unwrap();
            }
            s
        })
        .collect();
    // Others are served meanwhile.
    for _ in 0..10 {
        assert_eq!(server.get("/authorized_keys"), (200, "{}".to_string()));
    }
    // And the stalled ones are closed once the header timeout has passed.
    for s in &mut stalled {
        assert!(
            closed_within(s, Duration::from_secs(10)),
            "a stalled client stayed connected"
        );
    }

    // A keep-alive connection left idle after an answer is closed too.
    let mut kept = server.connect();
    write!(kept, "GET /authorized_keys HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut kept, Duration::from_secs(10)),
        "an idle keep-alive connection stayed open"
    );
}

#[test]
fn shutdown_stops_accepting_and_finishes_in_flight_requests() {
    let mut server = TestServer::start(options(Duration::from_secs(5)), Duration::from_secs(3));
    // A request in flight: its headers read and its handler waiting for the body (the server
    // said `100 Continue`), half of which is sent now, the rest after the shutdown.
    let mut in_flight = server.connect();
    in_flight
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n")
        .unwrap();
    read_continue(&mut in_flight);
    in_flight.write_all(b"01234").unwrap();
    // An idle keep-alive connection: closed at once by the shutdown.
    let mut idle = server.connect();
    write!(idle, "GET /authorized_keys HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let address = server.address;
    let stop = server.stop.take().unwrap();
    stop.send(()).unwrap();
    // No new connection is accepted…
    assert!(refused_soon(address), "still accepting after shutdown");
    // …and the one in flight is answered.
    assert!(
        closed_within(&mut idle, Duration::from_secs(2)),
        "an idle connection kept the server"
    );
    in_flight.write_all(b"56789").unwrap();
    assert_eq!(read_answer(&mut in_flight), (200, "10".to_string()));
    server.thread.take().unwrap().join().unwrap();
}

/// Reads the interim `100 Continue` answer: the server has parsed the request's headers and
/// its handler is reading the body, so the request is in flight.
fn read_continue(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed before 100 Continue"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// Whether connections to `address` are refused within 2 s (the listener closed).
fn refused_soon(address: std::net::SocketAddr) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if TcpStream::connect(address).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
