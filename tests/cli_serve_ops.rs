//! `tezos-hsm serve` run as an operator runs it, on real SoftHSM2 tokens: the configuration
//! file and `--check-config`, authenticated requests, the API key, `/metrics`, `/healthz`
//! (also after the module fails, through the CloudHSM profile's injected faults), HTTPS with a
//! certificate made here, and the log lines.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::cli::CliHome;
use common::payloads;
use common::serve::{Answer, Served};
use tezos_keys::{Curve, SecretKey};

/// A home with a secp256k1 key `baker` and a P-256 key `payout`; their addresses.
fn home() -> (CliHome, String, String) {
    let home = CliHome::new();
    let mut addresses =
        ["secp256k1", "p256"]
            .iter()
            .zip(["baker", "payout"])
            .map(|(curve, label)| {
                let key = home.json(&["key", "generate", "--curve", curve, "--label", label]);
                key["address"].as_str().unwrap().to_string()
            });
    let baker = addresses.next().unwrap();
    let payout = addresses.next().unwrap();
    (home, baker, payout)
}

fn write_private(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn serve(home: &CliHome, args: &[&str]) -> Served {
    Served::start(home.path(), args, &[]).unwrap_or_else(|stderr| panic!("serve failed:\n{stderr}"))
}

/// One request with extra headers, over `stream` (plain TCP or TLS).
fn exchange(
    mut stream: impl Read + Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after `connection: close`: keep what came.
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    Answer {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        body: body.to_string(),
    }
}

fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(stream, method, path, headers, body)
}

fn sign_body(payload: &[u8]) -> String {
    format!("\"{}\"", hex::encode(payload))
}

/// The value of the sample `series` (name and labels exactly) in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn assert_refused(answer: &Answer, status: u16, kind: &str) {
    assert_eq!(
        (answer.status, answer.kind().as_str()),
        (status, kind),
        "{}",
        answer.body
    );
}

#[test]
fn check_config_validates_the_file_and_prints_what_would_be_served() {
    let home = CliHome::new();
    let dir = home.path();
    let good = write_private(
        dir,
        "serve.toml",
        r#"
listen = "127.0.0.1:6732"
pin = "env:SIGNER_PIN"
watermark_db = "postgres://signer:s3cret@db.internal/signer"
authorized_keys = ["edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav"]

[keys.baker]
allow = ["block", "preattestation", "attestation"]
chains = ["NetXdQprcVkpaWU"]
require_authentication = true

[keys.payout]
allow = ["generic"]
generic_operations = ["transaction", "reveal"]
"#,
    );
    let run = home.run(&["serve", "--check-config", good.to_str().unwrap()]);
    assert!(run.success(), "{}", run.stderr);
    for needle in [
        "valid",
        "127.0.0.1:6732 (http)",
        "environment variable SIGNER_PIN",
        "postgres://signer:***@db.internal/signer",
        "baker: block,preattestation,attestation; chains NetXdQprcVkpaWU; authentication required",
        "payout: generic (generic operations: reveal,transaction); every chain",
        "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} not in\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("s3cret"));
    let json = home.json(&["serve", "--check-config", good.to_str().unwrap()]);
    assert_eq!(json["listen"], "127.0.0.1:6732");
    assert_eq!(json["authentication_required"], true);
    assert_eq!(json["keys"][0]["label"], "baker");
    assert_eq!(
        json["keys"][1]["generic_operations"],
        serde_json::json!(["reveal", "transaction"])
    );

    let bad = write_private(
        dir,
        "bad.toml",
        "[keys.baker]\nallow = [\"block\"]\nrequire_authentification = true\n",
    );
    let run = home.run(&["serve", "--check-config", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("bad.toml, line 3") && run.stderr.contains("require_authentification"),
        "{}",
        run.stderr
    );
    let error = home
        .run(&["--json", "serve", "--check-config", bad.to_str().unwrap()])
        .error();
    assert_eq!(error["kind"], "config_invalid");
    // A TLS file the configuration names must be usable too.
    let tls = write_private(
        dir,
        "tls.toml",
        "[tls]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n",
    );
    let error = home
        .run(&["--json", "serve", "--check-config", tls.to_str().unwrap()])
        .error();
    assert_eq!(error["kind"], "tls_unreadable", "{error}");
}

#[test]
fn authenticated_requests_are_checked_per_key_and_counted() {
    let (home, baker, payout) = home();
    let client = SecretKey::from_bytes(Curve::Ed25519, &[0x5a; 32]).unwrap();
    let stranger = SecretKey::from_bytes(Curve::Ed25519, &[0x5b; 32]).unwrap();
    let config = write_private(
        home.path(),
        "serve.toml",
        &format!(
            "authorized_keys = [\"{}\"]\n[keys.baker]\nallow = [\"generic\", \"attestation\"]\nrequire_authentication = true\n[keys.payout]\nallow = [\"generic\"]\n",
            client.public_key()
        ),
    );
    let served = serve(&home, &["--config", config.to_str().unwrap()]);
    let authorized = served.get("/authorized_keys").json();
    assert_eq!(
        authorized,
        serde_json::json!({"authorized_keys": [client.public_key().hash().to_string()]})
    );

    let payload = payloads::transaction(7);
    let authenticate = |key: &SecretKey, signer: &str, data: &[u8]| {
        let pkh = signer.parse().unwrap();
        key.sign(&tezos_signer::auth::sign_request_bytes(&pkh, data))
            .unwrap()
            .to_string()
    };
    let body = sign_body(&payload);
    let post = |query: &str| {
        request(
            served.address,
            "POST",
            &format!("/keys/{baker}{query}"),
            &[],
            Some(body.as_bytes()),
        )
    };

    assert_refused(&post(""), 403, "authentication_required");
    assert_refused(
        &post(&format!(
            "?authentication={}",
            authenticate(&stranger, &baker, &payload)
        )),
        403,
        "authentication_refused",
    );
    // By the authorized key, but over other bytes, or for the other key.
    let other = authenticate(&client, &baker, &payloads::transaction(8));
    assert_refused(
        &post(&format!("?authentication={other}")),
        403,
        "authentication_refused",
    );
    let for_payout = authenticate(&client, &payout, &payload);
    assert_refused(
        &post(&format!("?authentication={for_payout}")),
        403,
        "authentication_refused",
    );
    assert_refused(
        &post("?authentication=edsigNOTASIGNATURE"),
        403,
        "authentication_malformed",
    );

    let good = authenticate(&client, &baker, &payload);
    let answer = post(&format!("?version=1&authentication={good}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let public_key = served.get(&format!("/keys/{baker}")).json()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    tezos_keys::verify_encoded(
        &public_key,
        &payload,
        answer.json()["signature"].as_str().unwrap(),
    )
    .unwrap();
    // A key that does not require authentication signs without it.
    assert_eq!(served.sign(&payout, &payload).status, 200);

    let metrics = served.get("/metrics").body;
    assert_eq!(
        sample(
            &metrics,
            "tezos_signer_signatures_total{key=\"baker\",kind=\"generic\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "tezos_signer_signatures_total{key=\"payout\",kind=\"generic\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "tezos_signer_refusals_total{reason=\"authentication_required\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "tezos_signer_refusals_total{reason=\"authentication_refused\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "tezos_signer_refusals_total{reason=\"authentication_malformed\"}"
        ),
        Some(1.0)
    );
}

/// An `authentication` made by PyTezos, an implementation independent of this project
/// (`tezos-signer/tests/independent/authenticate.py`, the virtualenv of `scripts/ensure-deps.sh
/// --with-interop`): (its client public key, the signature) for `signer` and `data`.
fn pytezos_authentication(signer: &str, data: &[u8]) -> (String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("TEZOS_HSM_INTEROP_PYTHON").map_or_else(
        || root.join("target/interop/venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        python.is_file(),
        "PyTezos is not installed: run scripts/ensure-deps.sh --with-interop"
    );
    let mut child = std::process::Command::new(python)
        .arg(root.join("tezos-signer/tests/independent/authenticate.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let record = serde_json::json!({
        "secret_hex": "42".repeat(32), "curve": "p2", "signer": signer,
        "data_hex": hex::encode(data), "layout": "octez",
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{record}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        answer["public_key"].as_str().unwrap().to_string(),
        answer["authentication"].as_str().unwrap().to_string(),
    )
}

#[test]
fn an_authentication_made_by_pytezos_is_accepted() {
    let (home, baker, _) = home();
    let payload = payloads::transaction(9);
    let (client, authentication) = pytezos_authentication(&baker, &payload);
    let served = serve(
        &home,
        &[
            "--key",
            "baker",
            "--require-authentication",
            "--authorized-key",
            &client,
        ],
    );
    let body = sign_body(&payload);
    let post = |query: &str| {
        request(
            served.address,
            "POST",
            &format!("/keys/{baker}{query}"),
            &[],
            Some(body.as_bytes()),
        )
    };
    assert_eq!(
        post(&format!("?authentication={authentication}")).status,
        200
    );
    assert_refused(&post(""), 403, "authentication_required");
    let (_, for_other_bytes) = pytezos_authentication(&baker, &payloads::transaction(10));
    assert_refused(
        &post(&format!("?authentication={for_other_bytes}")),
        403,
        "authentication_refused",
    );
}

#[test]
fn the_api_key_is_required_on_signer_requests_only() {
    let (home, baker, _) = home();
    let key_file = write_private(home.path(), "api-key", "0123456789abcdef0123456789abcdef\n");
    let served = serve(&home, &["--api-key-file", key_file.to_str().unwrap()]);
    let body = sign_body(&payloads::transaction(1));
    let sign = |headers: &[(&str, &str)]| {
        request(
            served.address,
            "POST",
            &format!("/keys/{baker}"),
            headers,
            Some(body.as_bytes()),
        )
    };

    let missing = sign(&[]);
    assert_refused(&missing, 401, "api_key_missing");
    assert!(missing.message().contains("x-api-key"), "{}", missing.body);
    assert_refused(
        &sign(&[("x-api-key", "0123456789abcdef0123456789abcdeX")]),
        403,
        "api_key_wrong",
    );
    assert_refused(
        &sign(&[("x-other", "0123456789abcdef0123456789abcdef")]),
        401,
        "api_key_missing",
    );
    assert_eq!(
        sign(&[("X-Api-Key", "0123456789abcdef0123456789abcdef")]).status,
        200
    );
    assert_refused(
        &served.get(&format!("/keys/{baker}")),
        401,
        "api_key_missing",
    );
    assert_refused(&served.get("/authorized_keys"), 401, "api_key_missing");
    // Probes and scrapes need no key.
    assert_eq!(served.get("/healthz").status, 200);
    let metrics = served.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        sample(
            &metrics.body,
            "tezos_signer_refusals_total{reason=\"api_key_missing\"}"
        ),
        Some(4.0),
        "{}",
        metrics.body
    );
    assert_eq!(
        sample(
            &metrics.body,
            "tezos_signer_refusals_total{reason=\"api_key_wrong\"}"
        ),
        Some(1.0)
    );
    assert!(
        !served.stderr().contains("0123456789abcdef"),
        "the key is never logged"
    );

    // An API key file others can read is refused at startup.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = Served::start(
        home.path(),
        &["--api-key-file", key_file.to_str().unwrap()],
        &[],
    )
    .err()
    .unwrap();
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn metrics_health_and_log_lines_follow_what_happened() {
    let (home, baker, _) = home();
    let served = serve(&home, &["--allow", "attestation,generic", "--log-payloads"]);
    let health = served.get("/healthz");
    assert_eq!(
        (health.status, health.json()),
        (200, serde_json::json!({"ready": true}))
    );

    for level in 10..13 {
        assert_eq!(
            served
                .sign(&baker, &payloads::attestation(level, 0, 1))
                .status,
            200
        );
    }
    // The same bytes again: the recorded signature (counted); other bytes at the same level: 409.
    assert_eq!(
        served.sign(&baker, &payloads::attestation(12, 0, 1)).status,
        200
    );
    assert_refused(
        &served.sign(&baker, &payloads::attestation(12, 0, 2)),
        409,
        "double_sign",
    );
    assert_refused(
        &served.sign(&baker, &[0x05, 0x01, 0x00]),
        403,
        "policy_kind_not_allowed",
    );

    let metrics = served.get("/metrics").body;
    let value = |series: &str| {
        sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert_eq!(
        value("tezos_signer_signatures_total{key=\"baker\",kind=\"attestation\"}"),
        4.0
    );
    assert_eq!(
        value("tezos_signer_refusals_total{reason=\"double_sign\"}"),
        1.0
    );
    assert_eq!(
        value("tezos_signer_refusals_total{reason=\"policy_kind_not_allowed\"}"),
        1.0
    );
    // Three HSM signatures for the attestations (the replay and the refusals use none; the
    // health probe's is not a request's).
    assert_eq!(value("tezos_signer_hsm_sign_seconds_count"), 3.0);
    assert!(value("tezos_signer_watermark_store_seconds_count") >= 5.0);
    assert_eq!(value("tezos_signer_request_seconds_count"), 6.0);
    assert_eq!(value("tezos_signer_pool_sessions{state=\"in_use\"}"), 0.0);
    assert!(value("tezos_signer_pool_sessions{state=\"idle\"}") >= 1.0);
    assert_eq!(value("tezos_signer_pool_sessions_replaced_total"), 0.0);
    assert_eq!(value("tezos_signer_ready"), 1.0);

    // One log line per request: key, kind, level, outcome, latency; the payload only because
    // --log-payloads was given.
    let stderr = served.stderr_when(|s| s.lines().filter(|l| l.contains(" sign ")).count() >= 6);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" sign ")).collect();
    assert_eq!(lines.len(), 6, "{stderr}");
    assert!(
        lines[0].contains("key=\"baker\"") || lines[0].contains("key=baker"),
        "{}",
        lines[0]
    );
    for needle in [
        "kind=\"attestation\"",
        "level=10",
        "round=0",
        "outcome=\"signed\"",
        "status=200",
        "latency_ms=",
    ] {
        let bare = needle.replace('"', "");
        assert!(
            lines[0].contains(needle) || lines[0].contains(&bare),
            "{needle} not in {}",
            lines[0]
        );
    }
    assert!(
        lines[0].contains(&hex::encode(payloads::attestation(10, 0, 1))),
        "{}",
        lines[0]
    );
    assert!(
        lines[4].contains("double_sign") && lines[4].contains("409"),
        "{}",
        lines[4]
    );

    // Without --log-payloads, no payload.
    drop(served);
    let served = serve(&home, &["--allow", "attestation,generic", "--log-json"]);
    assert_eq!(
        served.sign(&baker, &payloads::attestation(20, 0, 1)).status,
        200
    );
    let stderr = served.stderr_when(|s| s.contains("\"sign\""));
    let line = stderr
        .lines()
        .find(|l| l.contains("\"sign\""))
        .unwrap_or_else(|| panic!("{stderr}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(json["fields"]["outcome"], "signed", "{line}");
    assert_eq!(json["fields"]["level"], 20, "{line}");
    assert!(
        !line.contains(&hex::encode(payloads::attestation(20, 0, 1))),
        "{line}"
    );
}

/// A self-signed certificate for localhost in `dir`: (cert path, key path, cert DER).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, rustls::pki_types::CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = write_private(dir, "cert.pem", &certified.cert.pem());
    let key = write_private(dir, "key.pem", &certified.signing_key.serialize_pem());
    (cert, key, certified.cert.der().clone())
}

#[test]
fn https_with_a_certificate_from_files() {
    let (home, baker, _) = home();
    let (cert, key, der) = self_signed(home.path());
    let mut child = common::cli::command_in(
        home.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    )
    .stderr(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let address: SocketAddr = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "serve exited"
        );
        if let Some(rest) = line
            .trim()
            .strip_prefix("tezos-hsm serve: listening on https://")
        {
            break rest.parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let https = |method: &str, path: &str, body: Option<&[u8]>| {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::clone(&config), name).unwrap();
        let tcp = TcpStream::connect(address).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        exchange(
            rustls::StreamOwned::new(connection, tcp),
            method,
            path,
            &[],
            body,
        )
    };
    let public_key = https("GET", &format!("/keys/{baker}"), None).json()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = payloads::transaction(3);
    let answer = https(
        "POST",
        &format!("/keys/{baker}"),
        Some(sign_body(&payload).as_bytes()),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    tezos_keys::verify_encoded(
        &public_key,
        &payload,
        answer.json()["signature"].as_str().unwrap(),
    )
    .unwrap();

    // Plain HTTP on the HTTPS port gets no answer, and the server goes on.
    let mut plain = TcpStream::connect(address).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(format!("GET /keys/{baker} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(!String::from_utf8_lossy(&raw).contains("public_key"));
    assert_eq!(https("GET", "/healthz", None).status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn tls_and_config_errors_stop_it_before_it_listens() {
    let (home, _, _) = home();
    let (cert, key, _) = self_signed(home.path());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = Served::start(
        home.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    )
    .err()
    .unwrap();
    assert!(stderr.contains("chmod 600"), "{stderr}");
    let config = write_private(home.path(), "c.toml", "[keys.baker]\nallow = [\"blok\"]\n");
    let stderr = Served::start(home.path(), &["--config", config.to_str().unwrap()], &[])
        .err()
        .unwrap();
    assert!(
        stderr.contains("c.toml, line 2: keys.baker.allow: unknown kind \"blok\""),
        "{stderr}"
    );
    let config = write_private(home.path(), "d.toml", "[keys.baker]\nallow = [\"block\"]\n");
    let stderr = Served::start(
        home.path(),
        &["--config", config.to_str().unwrap(), "--key", "baker"],
        &[],
    )
    .err()
    .unwrap();
    assert!(stderr.contains("use one of them"), "{stderr}");
}

/// A P-256 key `baker` on the test token, and `serve --key baker` through the CloudHSM profile
/// with its fault variables `faults`: (the server, the key's address, the home).
fn serve_through_profile(
    token: &common::TestToken,
    faults: &[(&str, &str)],
) -> (Served, String, CliHome) {
    let baker = {
        let hsm = token.open();
        hsm.generate_ec_key(&cryptoki_ops::EcKeySpec::new(
            cryptoki_ops::Curve::P256,
            "baker",
        ))
        .unwrap();
        let key = tezos_keys::HsmKey::open(&hsm, &cryptoki_ops::KeySelector::Label("baker".into()))
            .unwrap();
        key.address().to_string()
    };
    let home = CliHome::new();
    let module = common::profile_module();
    // The test's own SoftHSM2 store, which the tool keeps only when given a module.
    let conf = std::env::var("SOFTHSM2_CONF").unwrap();
    let mut envs = vec![
        ("SOFTHSM2_CONF", conf.as_str()),
        ("CLOUDHSM_PROFILE_SOFTHSM2", token.module.to_str().unwrap()),
        ("PROFILE_TEST_PIN", common::USER_PIN),
    ];
    envs.extend_from_slice(faults);
    let watermarks = home.path().join("watermarks");
    std::fs::create_dir_all(&watermarks).unwrap();
    let args = [
        "--module",
        module.to_str().unwrap(),
        "--token",
        &token.label,
        "--pin",
        "env:PROFILE_TEST_PIN",
        "--watermark-dir",
        watermarks.to_str().unwrap(),
        "--key",
        "baker",
    ];
    let served = Served::start(home.path(), &args, &envs).unwrap_or_else(|e| panic!("{e}"));
    (served, baker, home)
}

softhsm_test!(fn healthz_is_503_once_the_module_has_failed(token) {
    // After this many session calls the device is gone (cloudhsm-profile/src/faults.rs).
    let (served, baker, _home) = serve_through_profile(token, &[("CLOUDHSM_PROFILE_REMOVE_AFTER", "60")]);
    assert_eq!(served.get("/healthz").json(), serde_json::json!({"ready": true}));
    // Sign until the device is gone: a 503, never a crash.
    let mut failed = None;
    for n in 0..200u8 {
        let answer = served.sign(&baker, &payloads::transaction(n));
        if answer.status != 200 {
            failed = Some(answer);
            break;
        }
    }
    let failed = failed.expect("the device should be removed within 200 signatures");
    assert_eq!(failed.status, 503, "{}", failed.body);
    // The cached answer expires (5 s) and the next probe cannot sign.
    std::thread::sleep(Duration::from_millis(5200));
    let health = served.get("/healthz");
    assert_eq!((health.status, health.json()), (503, serde_json::json!({"ready": false})));
    let metrics = served.get("/metrics").body;
    assert_eq!(sample(&metrics, "tezos_signer_ready"), Some(0.0), "{metrics}");
});

softhsm_test!(fn replaced_sessions_are_counted_while_every_signature_succeeds(token) {
    // Every session dies at its 5th, 10th, ... call: the pool replaces it and retries.
    let (served, baker, _home) = serve_through_profile(token, &[("CLOUDHSM_PROFILE_DEAD_SESSION_EVERY", "5")]);
    for n in 0..20u8 {
        let answer = served.sign(&baker, &payloads::transaction(n));
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let metrics = served.get("/metrics").body;
    let replaced = sample(&metrics, "tezos_signer_pool_sessions_replaced_total").unwrap();
    assert!(replaced >= 1.0, "{metrics}");
    assert_eq!(sample(&metrics, "tezos_signer_signatures_total{key=\"baker\",kind=\"generic\"}"), Some(20.0));
});

softhsm_test!(fn the_configuration_file_alone_names_module_token_pin_store_and_keys(token) {
    let address = {
        let hsm = token.open();
        hsm.generate_ec_key(&cryptoki_ops::EcKeySpec::new(cryptoki_ops::Curve::Secp256k1, "baker")).unwrap();
        hsm.generate_ec_key(&cryptoki_ops::EcKeySpec::new(cryptoki_ops::Curve::Secp256k1, "other")).unwrap();
        let key = tezos_keys::HsmKey::open(&hsm, &cryptoki_ops::KeySelector::Label("baker".into())).unwrap();
        key.address().to_string()
    };
    let home = CliHome::new();
    let dir = home.path().join("etc");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(dir.join("watermarks")).unwrap();
    write_private(&dir, "pin", &format!("{}\n", common::USER_PIN));
    // Relative paths: relative to the file's directory.
    let config = write_private(
        &dir,
        "serve.toml",
        &format!(
            "module = \"{}\"\ntoken = \"{}\"\npin = \"file:pin\"\nwatermark_dir = \"watermarks\"\n\
             [keys.baker]\nallow = [\"attestation\"]\nchains = [\"NetXdQprcVkpaWU\"]\n",
            token.module.display(),
            token.label
        ),
    );
    let conf = std::env::var("SOFTHSM2_CONF").unwrap();
    let served = Served::start(home.path(), &["--config", config.to_str().unwrap()], &[("SOFTHSM2_CONF", &conf)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(served.sign(&address, &payloads::attestation(7, 0, 1)).status, 200);
    assert!(dir.join("watermarks").join(format!("{address}.json")).is_file(), "the file's store holds the record");
    // Its rules: attestations on mainnet only; only the listed key is served.
    assert_refused(&served.sign(&address, &payloads::transaction(1)), 403, "policy_kind_not_allowed");
    let mut elsewhere = payloads::attestation(8, 0, 1);
    elsewhere[1..5].copy_from_slice(&[1, 2, 3, 4]);
    assert_refused(&served.sign(&address, &elsewhere), 403, "policy_chain_not_allowed");
    let known = served.get("/metrics").body;
    assert!(!known.contains("other"), "{known}");
});
