#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tezos_keys::{Curve, SecretKey};

use super::*;

fn client(curve: Curve, seed: u8) -> SecretKey {
    SecretKey::from_bytes(curve, &[seed; 32]).unwrap()
}

const CURVES: [Curve; 3] = [Curve::Ed25519, Curve::Secp256k1, Curve::P256];

/// A served key's address (any key will do: it is only hashed into the bytes).
fn signer_pkh() -> PublicKeyHash {
    client(Curve::Secp256k1, 0x42).public_key().hash()
}

#[test]
fn a_signature_by_an_authorized_key_over_the_request_is_accepted_on_every_curve() {
    let pkh = signer_pkh();
    let data = [0x03, 0xde, 0xad, 0xbe, 0xef];
    let clients: Vec<SecretKey> = CURVES.iter().map(|&c| client(c, 7)).collect();
    let keys: Vec<PublicKey> = clients.iter().map(SecretKey::public_key).collect();
    let auth = AuthorizedKeys::new(&keys, true).unwrap();
    for sk in &clients {
        let sig = sk.sign(&sign_request_bytes(&pkh, &data)).unwrap();
        for text in [sig.to_base58(), sig.to_generic_base58()] {
            assert_eq!(
                auth.check(&pkh, &data, Some(&text)),
                Ok(sk.public_key().hash()),
                "{text}"
            );
        }
    }
}

#[test]
fn anything_else_is_refused_with_its_reason() {
    let pkh = signer_pkh();
    let data = [0x11, 1, 2, 3];
    let authorized = client(Curve::P256, 1);
    let outsider = client(Curve::P256, 2);
    let auth = AuthorizedKeys::new(&[authorized.public_key()], true).unwrap();
    let good = authorized.sign(&sign_request_bytes(&pkh, &data)).unwrap();

    let refused = |pkh: &PublicKeyHash, data: &[u8], text: Option<&str>| {
        auth.check(pkh, data, text).unwrap_err().kind()
    };
    assert_eq!(refused(&pkh, &data, None), "authentication_required");
    assert_eq!(refused(&pkh, &data, Some("  ")), "authentication_required");
    assert_eq!(
        refused(&pkh, &data, Some("p2sigXYZ")),
        "authentication_malformed"
    );
    assert_eq!(
        refused(&pkh, &data, Some("sig123")),
        "authentication_malformed"
    );
    // Not an authorized key.
    let by_outsider = outsider.sign(&sign_request_bytes(&pkh, &data)).unwrap();
    assert_eq!(
        refused(&pkh, &data, Some(&by_outsider.to_base58())),
        "authentication_refused"
    );
    // The authorized key, over other data, for another signer key, or without the magic
    // byte and tag (a plain signature of the data).
    assert_eq!(
        refused(&pkh, &[0x11, 1, 2, 4], Some(&good.to_base58())),
        "authentication_refused"
    );
    let other_pkh = client(Curve::Ed25519, 9).public_key().hash();
    assert_eq!(
        refused(&other_pkh, &data, Some(&good.to_base58())),
        "authentication_refused"
    );
    let plain = authorized.sign(&data).unwrap();
    assert_eq!(
        refused(&pkh, &data, Some(&plain.to_base58())),
        "authentication_refused"
    );
    // A signature of another curve than every authorized key.
    let ed = client(Curve::Ed25519, 1)
        .sign(&sign_request_bytes(&pkh, &data))
        .unwrap();
    assert_eq!(
        refused(&pkh, &data, Some(&ed.to_base58())),
        "authentication_refused"
    );
    assert!(auth.check(&pkh, &data, Some(&good.to_base58())).is_ok());
    // The messages say what to do and hold no request bytes.
    let message = auth.check(&pkh, &data, None).unwrap_err().to_string();
    assert!(message.contains("authorized_keys") && message.contains(&pkh.to_base58()));
    assert_eq!(
        auth.check(&pkh, &data, None).unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn the_authorized_keys_answer_lists_addresses_only_when_required() {
    let keys = [
        client(Curve::Ed25519, 3).public_key(),
        client(Curve::P256, 4).public_key(),
    ];
    let listed = AuthorizedKeys::new(&keys, true).unwrap();
    let value: serde_json::Value = serde_json::from_slice(listed.body()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"authorized_keys": [keys[0].hash().to_base58(), keys[1].hash().to_base58()]})
    );
    let not_required = AuthorizedKeys::new(&keys, false).unwrap();
    assert_eq!(not_required.body().as_ref(), b"{}");
    assert_eq!(AuthorizedKeys::none().body().as_ref(), b"{}");
}

#[test]
fn the_bytes_are_octez_layout() {
    let pkh: PublicKeyHash = "tz3PXAQv7FytKr5a8eP2tbjBNaq5hbv6iPQU".parse().unwrap();
    let bytes = sign_request_bytes(&pkh, &[0x13, 0xff]);
    let mut expected = vec![0x04, 0x01, 0x02];
    expected.extend_from_slice(pkh.as_bytes());
    expected.extend_from_slice(&[0x13, 0xff]);
    assert_eq!(bytes, expected);
}

#[test]
fn error_kinds_are_stable() {
    let pkh = signer_pkh();
    let table = [
        (AuthError::Missing { pkh }, "authentication_required"),
        (
            AuthError::Malformed {
                reason: String::new(),
            },
            "authentication_malformed",
        ),
        (AuthError::Refused { pkh }, "authentication_refused"),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind);
    }
}
