//! The processes the serve benchmark starts: `tezos-hsm serve` on the bench token, and a private
//! PostgreSQL cluster.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{self, Store};
use crate::{KEY_LABEL, PIN_VAR};

/// A `tezos-hsm serve` child process on the bench token.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(
        store: &Store,
        watermarks: &std::path::Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let module = store.module.path().to_string_lossy().into_owned();
        let pin = format!("env:{PIN_VAR}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tezos-hsm"))
            .args(["serve", "--listen", "127.0.0.1:0", "--module", &module])
            .args(["--token", &store.label, "--pin", &pin, "--key", KEY_LABEL])
            .arg("--watermark-dir")
            .arg(watermarks)
            .args(extra)
            .env(PIN_VAR, support::USER_PIN)
            .envs(envs.iter().copied())
            .env("SOFTHSM2_CONF", store.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tezos-hsm serve");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match line.split_once("listening on http://") {
                    Some((_, addr)) => {
                        let _ = tx.send(addr.trim().trim_end_matches('/').to_string());
                    }
                    // Its log line per signature is drained, not echoed; problems are shown.
                    None if line.contains(" INFO ") => {}
                    None => eprintln!("serve: {line}"),
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("tezos-hsm serve did not say where it listens");
        Self {
            child,
            addr: addr.parse().expect("the address it listens on"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL cluster started with `scripts/pg-cluster.sh`, stopped when dropped.
pub(crate) struct PgCluster {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
}

impl PgCluster {
    /// Starts one, or says why not and returns `None`.
    pub(crate) fn start() -> Option<Self> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
        let dir = tempfile::Builder::new()
            .prefix("serve-bench-pg-")
            .tempdir()
            .ok()?;
        let out = Command::new(script)
            .arg("start")
            .arg(dir.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "serve: no PostgreSQL cluster ({}): the PostgreSQL pair is left out",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(Self { dir, url })
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
        let _ = Command::new(script)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
