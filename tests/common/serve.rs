//! Running `tezos-hsm serve` as a process and talking HTTP to it with a minimal blocking
//! client (raw `TcpStream`, so tests control every byte: slow clients, oversized bodies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::cli::command_in;

/// The line `serve` prints on stderr once it listens.
pub const LISTENING: &str = "tezos-hsm serve: listening on http://";

/// A running `tezos-hsm serve`, killed when dropped.
pub struct Served {
    child: Option<Child>,
    /// The address it listens on (from its line on stderr).
    pub address: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The `kind` of an error body `[{"kind","id","msg"}]`.
    pub fn kind(&self) -> String {
        self.json()[0]["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {} {}", self.status, self.body))
            .to_string()
    }

    /// The `msg` of an error body.
    pub fn message(&self) -> String {
        self.json()[0]["msg"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Served {
    /// Starts `tezos-hsm serve --listen 127.0.0.1:0 ARGS` on the store in `home` and waits
    /// (at most 60 s) for its listening line; `Err(stderr)` if it exits first.
    pub fn start(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Self, String> {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = command_in(home, &all, envs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tezos-hsm serve");
        let stderr = child.stderr.take().expect("stderr");
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let collected = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(LISTENING) {
                    let _ = tx.send(rest.to_string());
                }
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(rest) => {
                let address = rest
                    .parse()
                    .unwrap_or_else(|e| panic!("bad address {rest:?} in the line: {e}"));
                Ok(Self {
                    child: Some(child),
                    address,
                    stderr: text,
                })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                let stderr = text.lock().unwrap().clone();
                Err(stderr)
            }
        }
    }

    /// One request on a connection of its own.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        http(self.address, method, path, body).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}\nserver stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None)
    }

    /// `POST /keys/<address>` with the JSON hex string of `payload`.
    pub fn sign(&self, address: &str, payload: &[u8]) -> Answer {
        let body = format!("\"{}\"", hex::encode(payload));
        self.request("POST", &format!("/keys/{address}"), Some(body.as_bytes()))
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What it printed on stderr, once `done` holds for it (at most 10 s): a line the server
    /// wrote before answering may reach the reader thread after the answer reached the test.
    pub fn stderr_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.stderr();
            if done(&text) || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM (and returns at once).
    pub fn send_term(&self) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (at most 30 s) for the exit; returns its status and stdout.
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        (status, stdout)
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit; returns its status and stdout.
    pub fn terminate(&mut self) -> (ExitStatus, String) {
        self.send_term();
        self.wait_exit()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 request (`Connection: close`) and its whole answer.
pub fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) and close before a large body is sent in full.
    let _ = stream.write_all(body);
    read_answer(&mut stream)
}

/// Reads an HTTP answer to the end of the connection: `UnexpectedEof` when the connection
/// closed before any byte of an answer, `InvalidData` for a partial answer.
pub fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    if raw.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection closed before an answer",
        ));
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no complete answer: {text:?}"),
        )
    })?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad status line: {head:?}"),
            )
        })?;
    Ok(Answer {
        status,
        body: body.to_string(),
    })
}
