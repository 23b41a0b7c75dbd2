//! `tezos-hsm serve` driven by real clients (issue 16): Taquito's `@taquito/remote-signer`, a
//! client no one in this project wrote, on secp256k1, P-256 and Ed25519 keys, checking every
//! signature with Taquito's own verifier; consensus requests in octez-client's shape
//! (`GET /authorized_keys`, then `POST /keys/<pkh>?version=N`); and a bounded load of
//! concurrent clients.
//!
//! The Taquito client is `tests/taquito/client.js`, run with the `node_modules` that
//! `scripts/ensure-deps.sh --with-node` installs in `target/taquito` (pinned by
//! `tests/taquito/package-lock.json`). Without them the Taquito test fails, saying how to
//! install them.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::cli::CliHome;
use common::http::{Client, Response};
use common::payloads;
use common::serve::Served;
use serde_json::Value;
use tezos_keys::{Curve, PublicKey, PublicKeyHash, SecretKey, Signature};

const INSTALL_HINT: &str =
    "Node.js or Taquito is not installed: run scripts/ensure-deps.sh --with-node";

/// `tezos-hsm serve` (test-support's [`Served`]) with keep-alive clients.
struct Server(Served);

impl Server {
    /// Starts `tezos-hsm serve --listen 127.0.0.1:0 ARGS` on the store in `home`.
    fn start(home: &std::path::Path, args: &[&str]) -> Self {
        let served = Served::start(home, args, &[])
            .unwrap_or_else(|stderr| panic!("serve {args:?} did not start:\n{stderr}"));
        Self(served)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.address)
    }

    fn client(&self) -> Client {
        Client::new(self.0.address)
    }

    fn stderr(&self) -> String {
        self.0.stderr()
    }

    /// SIGTERM; the exit status and what it logged.
    fn stop(mut self) -> (ExitStatus, String) {
        let (status, _) = self.0.terminate();
        (status, self.0.stderr())
    }
}

/// A key generated on the home's token: its label, address and public key.
struct Key {
    label: String,
    pkh: String,
    public_key: String,
}

/// Generates one key per curve given, labelled after the curve.
fn generate(home: &CliHome, curves: &[&str]) -> Vec<Key> {
    curves
        .iter()
        .map(|curve| {
            let label = format!("{curve}-key");
            let out = home.json(&["key", "generate", "--curve", curve, "--label", &label]);
            Key {
                label,
                pkh: out["address"].as_str().unwrap().to_string(),
                public_key: out["public_key"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// Runs the Taquito client against `url`; returns its exit status and JSON summary.
fn taquito(url: &str, args: &[&str]) -> (bool, Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join("target/taquito/node_modules");
    assert!(
        modules.join("@taquito/remote-signer").is_dir(),
        "{INSTALL_HINT} ({} is missing)",
        modules.display()
    );
    let out = Command::new("node")
        .arg(root.join("tests/taquito/client.js"))
        .args(["--url", url])
        .args(args)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap_or_else(|e| panic!("{INSTALL_HINT}: cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the Taquito client printed no JSON summary ({e}):\n{stdout}\n{stderr}")
    });
    (out.status.success(), summary)
}

#[test]
fn taquito_remote_signer_signs_and_verifies_on_all_three_curves() {
    let home = CliHome::new();
    let keys = generate(&home, &["secp256k1", "p256", "ed25519"]);
    let pkhs: Vec<&str> = keys.iter().map(|k| k.pkh.as_str()).collect();

    let server = Server::start(home.path(), &["--allow", "generic,michelson"]);
    let (ok, summary) = taquito(
        &server.url(),
        &[
            &["--signatures", "3", "--michelson", "allowed", "--unknown"],
            &pkhs[..],
        ]
        .concat(),
    );
    assert!(
        ok,
        "Taquito found a problem: {summary:#}\n{}",
        server.stderr()
    );
    let served = summary["keys"].as_array().unwrap();
    assert_eq!(served.len(), 3, "{summary:#}");
    for (key, result) in keys.iter().zip(served) {
        assert_eq!(result["pkh"], key.pkh.as_str(), "{summary:#}");
        assert_eq!(result["public_key"], key.public_key.as_str(), "{summary:#}");
        assert_eq!(result["generic"], 3, "{summary:#}");
        assert_eq!(result["michelson"], 1, "{summary:#}");
        assert_eq!(result["verified"], 4, "{summary:#}");
    }
    assert_eq!(summary["unknown_key_not_found"], true, "{summary:#}");
    let (status, log) = server.stop();
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM:\n{log}"
    );

    // Served without `michelson`: Taquito gets a 403 (OperationNotAuthorizedError) for packed
    // data, and still signs operations; with --no-verify too (Taquito still checks them).
    let server = Server::start(
        home.path(),
        &["--allow", "generic", "--key", &keys[1].label, "--no-verify"],
    );
    let (ok, summary) = taquito(
        &server.url(),
        &["--signatures", "1", "--michelson", "refused", &keys[1].pkh],
    );
    assert!(
        ok,
        "Taquito found a problem: {summary:#}\n{}",
        server.stderr()
    );
    assert_eq!(summary["keys"][0]["michelson_refused"], true, "{summary:#}");
    assert_eq!(summary["keys"][0]["verified"], 1, "{summary:#}");
    // A key not listed with --key is not served.
    let (ok, summary) = taquito(&server.url(), &["--signatures", "1", &keys[0].pkh]);
    assert!(!ok, "a key left out of --key was served: {summary:#}");
    assert!(
        summary["errors"][0]
            .as_str()
            .unwrap()
            .contains("PublicKeyNotFoundError"),
        "{summary:#}"
    );
}

/// Signs `payload` as octez-client does: `GET /authorized_keys` first, then
/// `POST /keys/<pkh>?version=N` with the hex string.
fn octez_sign(client: &mut Client, pkh: &str, payload: &[u8], version: u8) -> Response {
    octez_sign_as(client, pkh, payload, version, None)
}

/// [`octez_sign`] with octez-client's authentication key `auth`: when `GET /authorized_keys`
/// lists keys, the request carries `authentication=<auth's signature>` over
/// `0x04 ‖ 0x01 ‖ pkh(21) ‖ payload` (Octez `src/lib_signer_services/signer_messages.ml`,
/// `Make_authenticated_request(Sign).to_sign`, tag 1), built here from that source, not with
/// the server's code.
fn octez_sign_as(
    client: &mut Client,
    pkh: &str,
    payload: &[u8],
    version: u8,
    auth: Option<&SecretKey>,
) -> Response {
    let authorized = client.get("/authorized_keys").unwrap();
    assert_eq!(authorized.status, 200, "{}", authorized.body);
    let listed = authorized.json();
    assert!(listed.is_object(), "{}", authorized.body);
    let mut query = format!("version={version}");
    if let (Some(key), Some(list)) = (auth, listed["authorized_keys"].as_array()) {
        let mine = key.public_key().hash().to_string();
        if list.iter().any(|k| k.as_str() == Some(mine.as_str())) {
            let mut bytes = vec![0x04, 0x01];
            bytes.extend_from_slice(&pkh.parse::<PublicKeyHash>().unwrap().to_forged());
            bytes.extend_from_slice(payload);
            query.push_str(&format!("&authentication={}", key.sign(&bytes).unwrap()));
        }
    }
    let body = format!("\"{}\"", hex::encode(payload));
    client.post(&format!("/keys/{pkh}?{query}"), &body).unwrap()
}

/// The signature of a 200 reply, checked against `public_key` over `payload`.
fn signature_of(reply: &Response, public_key: &PublicKey, payload: &[u8]) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let text = reply.json()["signature"].as_str().unwrap().to_string();
    let signature: Signature = text.parse().unwrap();
    tezos_keys::verify(public_key, payload, &signature).unwrap();
    text
}

/// A refusal: `status` with a JSON error body in Octez's error-trace shape,
/// `[{"id","kind","msg"}]`; a 409 is `double_sign`.
fn assert_refused(reply: &Response, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    let kind = reply.json()[0]["kind"].as_str().map(str::to_string);
    let kind = kind.unwrap_or_else(|| panic!("{what}: not an error trace: {}", reply.body));
    if status == 409 {
        assert_eq!(kind, "double_sign", "{what}: {}", reply.body);
    }
}

#[test]
fn consensus_requests_in_octez_client_shape_go_through_the_watermark() {
    let home = CliHome::new();
    let keys = generate(&home, &["secp256k1", "p256", "ed25519"]);
    let server = Server::start(
        home.path(),
        &["--allow", "block,preattestation,attestation"],
    );
    let mut client = server.client();
    for key in &keys {
        let public_key: PublicKey = key.public_key.parse().unwrap();
        let got = client.get(&format!("/keys/{}", key.pkh)).unwrap();
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(got.json()["public_key"], key.public_key.as_str());
        let pkh = key.pkh.as_str();
        let sign = |client: &mut Client, payload: &[u8], version| {
            octez_sign(client, pkh, payload, version)
        };

        // Blocks at increasing levels, each `version` octez-client may send.
        let mut last = String::new();
        for (level, version) in [(100, 0), (101, 1), (102, 2)] {
            let payload = payloads::block(level, 0, 1);
            last = signature_of(&sign(&mut client, &payload, version), &public_key, &payload);
        }
        // The same bytes again: the recorded signature, byte for byte.
        let again = sign(&mut client, &payloads::block(102, 0, 1), 1);
        assert_eq!(
            signature_of(&again, &public_key, &payloads::block(102, 0, 1)),
            last
        );
        // Lower level, or other bytes at the same level and round: 409, nothing signed.
        assert_refused(
            &sign(&mut client, &payloads::block(101, 0, 9), 1),
            409,
            "lower level",
        );
        assert_refused(
            &sign(&mut client, &payloads::block(102, 0, 2), 1),
            409,
            "other block",
        );
        // A higher round at the same level is a new block.
        let payload = payloads::block(102, 1, 3);
        signature_of(&sign(&mut client, &payload, 1), &public_key, &payload);

        // Attestations have a watermark of their own: a lower level than the blocks is fine.
        let mut last = String::new();
        for level in [50, 51] {
            let payload = payloads::attestation(level, 0, 1);
            last = signature_of(&sign(&mut client, &payload, 1), &public_key, &payload);
        }
        let again = sign(&mut client, &payloads::attestation(51, 0, 1), 1);
        assert_eq!(
            signature_of(&again, &public_key, &payloads::attestation(51, 0, 1)),
            last
        );
        assert_refused(
            &sign(&mut client, &payloads::attestation(50, 0, 2), 1),
            409,
            "lower",
        );
        assert_refused(
            &sign(&mut client, &payloads::attestation(51, 0, 2), 1),
            409,
            "other",
        );

        // Not allowed on this server: a generic operation, 403 before the HSM.
        let forged = pkh.parse::<PublicKeyHash>().unwrap().to_forged();
        let refused = sign(&mut client, &payloads::transaction_from(&forged, 1), 1);
        assert_refused(&refused, 403, "generic not allowed");
    }

    // The watermark outlives the process: a restarted server still refuses the old level.
    let (status, log) = server.stop();
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM:\n{log}"
    );
    let server = Server::start(home.path(), &["--allow", "block"]);
    let reply = octez_sign(
        &mut server.client(),
        &keys[1].pkh,
        &payloads::block(101, 0, 7),
        1,
    );
    assert_refused(&reply, 409, "lower level after a restart");
}

#[test]
fn authenticated_requests_as_octez_client_sends_them() {
    let home = CliHome::new();
    let keys = generate(&home, &["p256", "secp256k1"]);
    // octez-client's authentication key, and a key the server does not know.
    let client_key = SecretKey::from_bytes(Curve::Ed25519, &[0x41; 32]).unwrap();
    let stranger = SecretKey::from_bytes(Curve::P256, &[0x42; 32]).unwrap();
    let config = home.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "authorized_keys = [\"{}\"]\n\n[keys.{}]\nallow = [\"block\", \"generic\"]\nrequire_authentication = true\n\n[keys.{}]\nallow = [\"block\"]\n",
            client_key.public_key(),
            keys[0].label,
            keys[1].label,
        ),
    )
    .unwrap();
    let server = Server::start(home.path(), &["--config", config.to_str().unwrap()]);
    let mut client = server.client();
    let listed = client.get("/authorized_keys").unwrap().json();
    assert_eq!(
        listed["authorized_keys"],
        serde_json::json!([client_key.public_key().hash().to_string()]),
        "{listed}"
    );

    let (pkh, public_key) = (
        &keys[0].pkh,
        keys[0].public_key.parse::<PublicKey>().unwrap(),
    );
    let payload = payloads::block(7, 0, 1);
    // Without authentication, or by a key not on the list: 403, and nothing signed, so the
    // authenticated request at the same level afterwards is the first one signed.
    assert_refused(
        &octez_sign(&mut client, pkh, &payload, 1),
        403,
        "no authentication",
    );
    let list = serde_json::json!([stranger.public_key().hash().to_string()]);
    let mut bytes = vec![0x04, 0x01];
    bytes.extend_from_slice(&pkh.parse::<PublicKeyHash>().unwrap().to_forged());
    bytes.extend_from_slice(&payload);
    let forged = stranger.sign(&bytes).unwrap();
    let body = format!("\"{}\"", hex::encode(&payload));
    let reply = client
        .post(
            &format!("/keys/{pkh}?version=1&authentication={forged}"),
            &body,
        )
        .unwrap();
    assert_refused(
        &reply,
        403,
        &format!("authentication by a key not in {list}"),
    );
    // The authorized key's signature over other bytes does not authenticate these.
    let other = client_key
        .sign(&[&bytes[..bytes.len() - 1], &[0xff]].concat())
        .unwrap();
    let reply = client
        .post(
            &format!("/keys/{pkh}?version=1&authentication={other}"),
            &body,
        )
        .unwrap();
    assert_refused(&reply, 403, "authentication over other bytes");
    let signed = octez_sign_as(&mut client, pkh, &payload, 1, Some(&client_key));
    signature_of(&signed, &public_key, &payload);

    // The key that does not require authentication signs without it.
    let public_key = keys[1].public_key.parse::<PublicKey>().unwrap();
    let signed = octez_sign(&mut client, &keys[1].pkh, &payload, 1);
    signature_of(&signed, &public_key, &payload);
}

/// Load on loopback, bounded in count and time: `CLIENTS` threads with a keep-alive connection
/// each send `REQUESTS` generic operations (every key), while one more thread bakes blocks at
/// increasing levels; every request must succeed and every signature verify.
#[test]
fn concurrent_clients_get_every_signature_with_no_error() {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 15;
    const BLOCKS: u32 = 20;
    let home = CliHome::new();
    let keys = generate(&home, &["secp256k1", "p256", "ed25519"]);
    let server = Server::start(home.path(), &["--allow", "generic,block"]);
    let keys: Vec<(String, PublicKey)> = keys
        .iter()
        .map(|k| (k.pkh.clone(), k.public_key.parse().unwrap()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);

    let (errors, signed) = std::thread::scope(|scope| {
        let generic: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (server, keys) = (&server, &keys);
                scope.spawn(move || {
                    let mut client = server.client();
                    let mut errors = Vec::new();
                    for r in 0..REQUESTS {
                        if Instant::now() > deadline {
                            errors.push(format!("client {c}: out of time at request {r}"));
                            break;
                        }
                        let (pkh, public_key) = &keys[(c + r) % keys.len()];
                        let forged = pkh.parse::<PublicKeyHash>().unwrap().to_forged();
                        let payload =
                            payloads::transaction_from(&forged, (c * REQUESTS + r) as u64);
                        let body = format!("\"{}\"", hex::encode(&payload));
                        match client.post(&format!("/keys/{pkh}"), &body) {
                            Ok(reply) if reply.status == 200 => {
                                let text = reply.json()["signature"].as_str().unwrap().to_string();
                                let signature: Signature = text.parse().unwrap();
                                if let Err(e) = tezos_keys::verify(public_key, &payload, &signature)
                                {
                                    errors.push(format!("client {c}: bad signature: {e}"));
                                }
                            }
                            Ok(reply) => {
                                errors.push(format!("client {c}: {} {}", reply.status, reply.body))
                            }
                            Err(e) => errors.push(format!("client {c}: {e}")),
                        }
                    }
                    errors
                })
            })
            .collect();
        let baker = scope.spawn(|| {
            let mut client = server.client();
            let (pkh, public_key) = &keys[1];
            let mut errors = Vec::new();
            for level in 1..=BLOCKS {
                let payload = payloads::block(level, 0, 1);
                let reply = octez_sign(&mut client, pkh, &payload, 1);
                if reply.status != 200 {
                    errors.push(format!("block {level}: {} {}", reply.status, reply.body));
                    continue;
                }
                let signature: Signature =
                    reply.json()["signature"].as_str().unwrap().parse().unwrap();
                if let Err(e) = tezos_keys::verify(public_key, &payload, &signature) {
                    errors.push(format!("block {level}: bad signature: {e}"));
                }
            }
            errors
        });
        let mut errors: Vec<String> = generic
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        errors.extend(baker.join().unwrap());
        let signed = CLIENTS * REQUESTS + BLOCKS as usize;
        (errors, signed)
    });
    assert!(
        errors.is_empty(),
        "{} of {signed} requests failed: {errors:#?}\n{}",
        errors.len(),
        server.stderr()
    );
    let alive = server.client().get("/authorized_keys").unwrap();
    assert_eq!(
        alive.status, 200,
        "the server is not well after the load: {}",
        alive.body
    );
}
