//! `tezos-hsm serve` under load and faults: slow clients, a held watermark record, SIGTERM
//! while requests are in flight. Each on a real SoftHSM2 token, against the real binary.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cli::CliHome;
use common::payloads;
use common::serve::{http, read_answer, Served};

/// A home with keys `labels` (curve, label) generated, and their addresses.
fn home_with(keys: &[(&str, &str)]) -> (CliHome, Vec<String>) {
    let home = CliHome::new();
    let addresses = keys
        .iter()
        .map(|(curve, label)| {
            let key = home.json(&["key", "generate", "--curve", curve, "--label", label]);
            key["address"].as_str().unwrap().to_string()
        })
        .collect();
    (home, addresses)
}

fn serve(home: &CliHome, args: &[&str]) -> Served {
    Served::start(home.path(), args, &[]).unwrap_or_else(|stderr| panic!("serve failed:\n{stderr}"))
}

#[test]
fn slow_clients_get_the_deadline_answer_and_block_no_one() {
    let (home, addresses) = home_with(&[("secp256k1", "baker")]);
    let key = &addresses[0];
    let served = serve(&home, &[]);
    // Clients that send their headers and part of a body, then nothing.
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(served.address).unwrap();
            write!(
                stream,
                "POST /keys/{key} HTTP/1.1\r\nhost: x\r\ncontent-length: 200\r\n\
                 connection: close\r\n\r\n\"03"
            )
            .unwrap();
            stream
        })
        .collect();
    // Everyone else is served meanwhile.
    for nonce in 0..10 {
        let answer = served.sign(key, &payloads::transaction(nonce));
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    // The slow ones get the deadline's answer, not a signature and not silence.
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let answer = read_answer(stream).unwrap();
        assert_eq!(
            (answer.status, answer.kind().as_str()),
            (503, "deadline_exceeded")
        );
    }
    assert_eq!(served.get(&format!("/keys/{key}")).status, 200);
}

#[test]
fn a_held_watermark_record_is_a_503_within_the_deadline() {
    let (home, addresses) = home_with(&[("p256", "baker")]);
    let key = &addresses[0];
    let served = serve(&home, &["--allow", "attestation,generic"]);
    assert_eq!(
        served.sign(key, &payloads::attestation(3, 0, 1)).status,
        200
    );
    // Another signer (here: this test) holds the key's record lock, as a stuck process would.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(home.path().join("watermarks").join(format!("{key}.lock")))
        .unwrap();
    lock.lock().unwrap();
    let answer = served.sign(key, &payloads::attestation(4, 0, 1));
    // The store gives up after 2 s, inside the 3 s deadline; on a machine loaded enough to
    // start the signing thread late, the deadline answers first: a 503 either way, unsigned.
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        ["watermark_store_busy", "deadline_exceeded"].contains(&answer.kind().as_str()),
        "{}",
        answer.body
    );
    // Generic operations need no record.
    assert_eq!(served.sign(key, &payloads::transaction(1)).status, 200);
    lock.unlock().unwrap();
    assert_eq!(
        served.sign(key, &payloads::attestation(4, 0, 1)).status,
        200
    );
}

#[test]
fn sigterm_answers_the_requests_in_flight_and_accepts_no_more() {
    let (home, addresses) = home_with(&[("secp256k1", "baker")]);
    let key = addresses[0].clone();
    let shown = home.json(&["key", "show", "baker"]);
    let mut served = serve(&home, &[]);
    let address = served.address;

    // Load: clients signing in a loop on connections of their own until the server is gone.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u8)
        .map(|client| {
            let key = key.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut signed = Vec::new();
                for i in 0..=u8::MAX {
                    let payload = payloads::transaction(client.wrapping_mul(64).wrapping_add(i));
                    let body = format!("\"{}\"", hex::encode(&payload));
                    match http(
                        address,
                        "POST",
                        &format!("/keys/{key}"),
                        Some(body.as_bytes()),
                    ) {
                        Ok(answer) => {
                            assert_eq!(answer.status, 200, "{}", answer.body);
                            signed.push((payload, answer.json()["signature"].clone()));
                        }
                        // Refused, reset, or closed before any byte of an answer: after the
                        // shutdown only. A partial answer is an error of its own kind.
                        Err(e) => {
                            assert!(stop.load(Ordering::SeqCst), "before SIGTERM: {e}");
                            assert_ne!(e.kind(), ErrorKind::InvalidData, "{e}");
                            break;
                        }
                    }
                }
                signed
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // A request in flight when the signal comes: its headers read and its handler waiting for
    // the body (the server said `100 Continue`).
    let payload = payloads::transaction(99);
    let body = format!("\"{}\"", hex::encode(&payload));
    let mut in_flight = TcpStream::connect(address).unwrap();
    write!(
        in_flight,
        "POST /keys/{key}?version=1 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    read_continue(&mut in_flight);
    stop.store(true, Ordering::SeqCst);
    served.send_term();
    assert!(
        refused_soon(address),
        "still accepting connections after SIGTERM"
    );
    in_flight.write_all(body.as_bytes()).unwrap();
    let answer = read_answer(&mut in_flight).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let public_key = shown["public_key"].as_str().unwrap();
    tezos_keys::verify_encoded(
        public_key,
        &payload,
        answer.json()["signature"].as_str().unwrap(),
    )
    .unwrap();

    let (status, stdout) = served.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(stdout.contains("stopped"), "{stdout}");
    let mut total = 0;
    for client in clients {
        for (payload, signature) in client.join().unwrap() {
            tezos_keys::verify_encoded(public_key, &payload, signature.as_str().unwrap()).unwrap();
            total += 1;
        }
    }
    assert!(total > 0, "no request was served under load");
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
