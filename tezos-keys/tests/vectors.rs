//! Checks every vector in `fixtures/tezos/vectors.json` (published test
//! suites of Octez, Taquito, tezos_crypto_rs and PyTezos, copied as data;
//! each entry names its source). The file is part of the repository: a missing or unreadable
//! file fails every test, and each test checks that its section has exactly the number of
//! entries `fixtures/tezos/README.md` gives, so a renamed, emptied or cut section fails too.

use secrecy::ExposeSecret;
use serde_json::Value;
use tezos_keys::base58::{self, Prefix};
use tezos_keys::{
    payload, verify_digest, verify_encoded, ChainId, Curve, Error, PublicKey, PublicKeyHash,
    SecretKey, Signature,
};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/tezos/vectors.json"
);

/// The sections of `vectors.json` and how many entries each holds (`fixtures/tezos/README.md`).
const SECTIONS: [(&str, usize); 8] = [
    ("key_encodings", 307),
    ("pk_to_address", 3),
    ("pkh_encodings", 303),
    ("pkh_encodings_bls", 100),
    ("signatures", 30),
    ("raw_ecdsa_p256", 20),
    ("base58_roundtrips", 44),
    ("invalid", 53),
];

/// The parsed file; a missing or unreadable file is a failure, never a skip.
fn load() -> Value {
    let text = std::fs::read_to_string(PATH).unwrap_or_else(|e| {
        panic!("{PATH} not readable ({e}): the vectors are part of the repository")
    });
    serde_json::from_str(&text).expect("vectors.json is valid JSON")
}

/// The entries of one section, which must exist and hold exactly the documented number.
fn section<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    let expected = SECTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no section {name} in SECTIONS"))
        .1;
    let entries = v
        .get(name)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("vectors.json has no array {name}"));
    assert_eq!(entries.len(), expected, "entries in section {name}");
    entries
}

fn s<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string field {key} in {entry}"))
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex field")
}

fn curve_index(curve: Curve) -> usize {
    match curve {
        Curve::Ed25519 => 0,
        Curve::Secp256k1 => 1,
        Curve::P256 => 2,
    }
}

fn curve(entry: &Value) -> Option<Curve> {
    match s(entry, "curve") {
        "ed25519" => Some(Curve::Ed25519),
        "secp256k1" => Some(Curve::Secp256k1),
        "p256" => Some(Curve::P256),
        _ => None,
    }
}

#[test]
fn key_encodings() {
    let v = load();
    let entries = section(&v, "key_encodings");
    let mut per_curve = [0usize; 3];
    for e in entries {
        let curve = curve(e).expect("supported curve");
        per_curve[curve_index(curve)] += 1;
        let sk = SecretKey::from_base58(s(e, "secret_key")).expect("secret key parses");
        assert_eq!(sk.curve(), curve);
        assert_eq!(hex::encode(sk.expose_secret()), s(e, "secret_hex"), "{e}");
        let from_hex = SecretKey::from_bytes(curve, &unhex(s(e, "secret_hex"))).expect("hex");
        if s(e, "secret_key").len() == Prefix::EdskSeed.encoded_len() || curve != Curve::Ed25519 {
            assert_eq!(from_hex.to_base58().expose_secret(), s(e, "secret_key"));
        }
        let pk = sk.public_key();
        assert_eq!(hex::encode(pk.as_bytes()), s(e, "public_key_hex"), "{e}");
        assert_eq!(pk.to_base58(), s(e, "public_key"));
        assert_eq!(s(e, "public_key").parse::<PublicKey>().expect("pk"), pk);
        assert_eq!(
            PublicKey::from_bytes(curve, &unhex(s(e, "public_key_hex"))).expect("pk bytes"),
            pk
        );
        assert_eq!(
            hex::encode(pk.hash().as_bytes()),
            s(e, "public_key_hash_hex")
        );
        assert_eq!(pk.hash().to_string(), s(e, "address"));
        assert_eq!(
            s(e, "address").parse::<PublicKeyHash>().expect("address"),
            pk.hash()
        );
    }
    // 102 Ed25519, 103 secp256k1, 102 P-256 (fixtures/tezos/README.md).
    assert_eq!(per_curve, [102, 103, 102], "key_encodings per curve");
}

#[test]
fn pk_to_address() {
    let v = load();
    let mut checked = 0;
    for e in section(&v, "pk_to_address") {
        checked += 1;
        let pk: PublicKey = s(e, "public_key").parse().expect("pk");
        assert_eq!(Some(pk.curve()), curve(e));
        assert_eq!(hex::encode(pk.as_bytes()), s(e, "public_key_hex"));
        assert_eq!(
            hex::encode(pk.hash().as_bytes()),
            s(e, "public_key_hash_hex")
        );
        assert_eq!(pk.hash().to_string(), s(e, "address"));
    }
    assert_eq!(checked, 3);
}

#[test]
fn pkh_encodings() {
    let v = load();
    let entries = section(&v, "pkh_encodings");
    let mut per_curve = [0usize; 3];
    for e in entries {
        let curve = curve(e).expect("supported curve");
        per_curve[curve_index(curve)] += 1;
        let hash: [u8; 20] = unhex(s(e, "hash_hex")).try_into().expect("20 bytes");
        let pkh = PublicKeyHash::new(curve, hash);
        assert_eq!(pkh.to_string(), s(e, "address"));
        assert_eq!(
            s(e, "address").parse::<PublicKeyHash>().expect("parse"),
            pkh
        );
        assert_eq!(
            PublicKeyHash::from_forged(&pkh.to_forged()).expect("forged"),
            pkh
        );
    }
    assert_eq!(per_curve, [101, 101, 101], "pkh_encodings per curve");
}

#[test]
fn bls_addresses_are_recognised_as_unsupported() {
    let v = load();
    let mut checked = 0;
    for e in section(&v, "pkh_encodings_bls") {
        checked += 1;
        let address = s(e, "address");
        let err = address
            .parse::<PublicKeyHash>()
            .expect_err("tz4 unsupported");
        assert!(
            matches!(err, Error::Unsupported { .. }),
            "{address}: {err:?}"
        );
        // The bytes still encode to the same text: our tz4 prefix is right.
        assert_eq!(
            base58::encode(Prefix::Tz4, &unhex(s(e, "hash_hex"))).expect("encode"),
            address
        );
    }
    assert_eq!(checked, 100);
}

#[test]
fn raw_ecdsa_p256() {
    let v = load();
    let entries = section(&v, "raw_ecdsa_p256");
    let mut high = 0;
    for e in entries {
        let pk = PublicKey::from_bytes(Curve::P256, &unhex(s(e, "public_key_hex"))).expect("pk");
        let sk = SecretKey::from_bytes(Curve::P256, &unhex(s(e, "secret_hex"))).expect("sk");
        assert_eq!(sk.public_key(), pk);
        let digest: [u8; 32] = unhex(s(e, "digest_hex")).try_into().expect("32 bytes");
        let raw = [unhex(s(e, "r_hex")), unhex(s(e, "s_hex"))].concat();
        let sig = Signature::from_slice(Curve::P256, &raw).expect("64 bytes");
        let is_high = e.get("high_s").and_then(Value::as_bool).expect("high_s");
        assert_eq!(sig.is_low_s().expect("scalars"), !is_high, "{e}");
        high += usize::from(is_high);
        // Octez accepts high-S on P-256, and so do we.
        verify_digest(&pk, &digest, &sig).expect("valid");
        let low = sig.normalize_s().expect("normalise");
        assert!(low.is_low_s().expect("scalars"));
        verify_digest(&pk, &digest, &low).expect("normalised twin valid");
    }
    // Six of the 20 are high-S (fixtures/tezos/README.md).
    assert_eq!(high, 6, "high-S entries in raw_ecdsa_p256");
}

#[test]
fn base58_roundtrips() {
    let v = load();
    // Entries whose prefix we decode, whose prefix we know but refuse, and unknown prefixes.
    let mut branches = [0usize; 3];
    for e in section(&v, "base58_roundtrips") {
        let text = s(e, "encoded");
        let payload = unhex(s(e, "payload_hex"));
        let prefix_bytes = unhex(s(e, "prefix_hex"));
        let known = Prefix::ALL
            .into_iter()
            .find(|p| p.bytes() == prefix_bytes.as_slice() && p.payload_len() == payload.len());
        match known {
            Some(prefix) => {
                assert_eq!(prefix.text(), s(e, "prefix"));
                assert_eq!(base58::encode(prefix, &payload).expect("encode"), text);
                let decoded = base58::decode(text, &[prefix]);
                if prefix.is_supported() {
                    branches[0] += 1;
                    let (p, bytes) = decoded.expect("decode");
                    assert_eq!((p, bytes.as_slice()), (prefix, payload.as_slice()));
                } else {
                    branches[1] += 1;
                    assert!(matches!(decoded, Err(Error::Unsupported { .. })), "{text}");
                }
            }
            None => {
                branches[2] += 1;
                let err = base58::decode(text, &Prefix::ALL).expect_err("unknown prefix");
                assert!(
                    matches!(err, Error::UnknownPrefix { .. }),
                    "{text}: {err:?}"
                );
                assert!(!err.to_string().contains(&text[4..]), "{err}");
            }
        }
    }
    assert_eq!(
        branches,
        [36, 7, 1],
        "base58_roundtrips: decoded, refused, unknown prefix"
    );
}

#[test]
fn every_section_of_the_file_is_checked() {
    let v = load();
    let mut found: Vec<&str> = v
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "_comment")
        .collect();
    let mut known: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    found.sort_unstable();
    known.sort_unstable();
    assert_eq!(
        found, known,
        "sections in vectors.json vs the sections these tests check"
    );
}

#[test]
fn invalid_inputs_are_rejected() {
    let v = load();
    let entries = section(&v, "invalid");
    for e in entries {
        let input = s(e, "input");
        let kind = s(e, "parse_as");
        let result: Result<(), Error> = match kind {
            "address" | "pkh" => input.parse::<PublicKeyHash>().map(drop),
            "tz1" => PublicKeyHash::parse_for_curves(input, &[Curve::Ed25519]).map(drop),
            "tz2" => PublicKeyHash::parse_for_curves(input, &[Curve::Secp256k1]).map(drop),
            "tz3" => PublicKeyHash::parse_for_curves(input, &[Curve::P256]).map(drop),
            "tz4" => base58::decode(input, &[Prefix::Tz4]).map(drop),
            "KT1" => base58::decode(input, &[Prefix::Kt1]).map(drop),
            "Net" => input.parse::<ChainId>().map(drop),
            "public_key" => input.parse::<PublicKey>().map(drop),
            "edpk" => PublicKey::parse_for_curves(input, &[Curve::Ed25519]).map(drop),
            "sppk" => PublicKey::parse_for_curves(input, &[Curve::Secp256k1]).map(drop),
            "p2pk" => PublicKey::parse_for_curves(input, &[Curve::P256]).map(drop),
            "signature" | "spsig1" => base58::decode(
                input,
                &[Prefix::Edsig, Prefix::Spsig1, Prefix::P2sig, Prefix::Sig],
            )
            .map(drop),
            "secret_key" => SecretKey::from_base58(input).map(drop),
            other => panic!("unknown parse_as {other}"),
        };
        let err = result.expect_err(input);
        let expected_kind = match s(e, "our_decoder_says") {
            "bad checksum" => matches!(err, Error::BadChecksum { .. }),
            "too short" => matches!(err, Error::EmptyText { .. } | Error::BadChecksum { .. }),
            "wrong prefix" => {
                matches!(err, Error::WrongPrefix { .. } | Error::Unsupported { .. })
            }
            says if says.starts_with("bad char") => matches!(err, Error::InvalidBase58 { .. }),
            says => panic!("unknown our_decoder_says {says}"),
        };
        assert!(expected_kind, "{kind} {input}: got {err:?}, expected {e}");
        if kind == "secret_key" && input.len() > 4 {
            assert!(
                !err.to_string().contains(&input[4..]),
                "secret echoed: {err}"
            );
        }
    }
    let mut reasons = std::collections::BTreeMap::new();
    for e in entries {
        *reasons.entry(s(e, "our_decoder_says")).or_insert(0) += 1;
    }
    assert_eq!(
        reasons.into_iter().collect::<Vec<_>>(),
        [
            ("bad char 'I'", 3),
            ("bad checksum", 22),
            ("too short", 11),
            ("wrong prefix", 17)
        ]
    );
}

#[test]
fn signatures() {
    let v = load();
    let entries = section(&v, "signatures");
    let mut valid = 0;
    let mut resigned = 0;
    for e in entries {
        let message = unhex(s(e, "message_hex"));
        assert_eq!(hex::encode(payload::digest(&message)), s(e, "digest_hex"));
        let pk: PublicKey = s(e, "public_key").parse().expect("pk");
        assert_eq!(Some(pk.curve()), curve(e));
        let sig = Signature::from_base58_for(s(e, "signature"), pk.curve()).expect("sig");
        assert_eq!(hex::encode(sig.as_bytes()), s(e, "signature_hex"));
        if let Some(high) = e.get("high_s").and_then(Value::as_bool) {
            assert_eq!(sig.is_low_s().expect("scalars"), !high, "{e}");
        }
        let expect_valid = e
            .get("expect_valid")
            .and_then(Value::as_bool)
            .expect("flag");
        let result = verify_encoded(s(e, "public_key"), &message, s(e, "signature"));
        assert_eq!(result.is_ok(), expect_valid, "{e}: {result:?}");
        if let Err(err) = &result {
            let high = e.get("high_s").and_then(Value::as_bool) == Some(true);
            if pk.curve() == Curve::Secp256k1 && high {
                assert_eq!(err, &Error::HighS);
            } else {
                assert!(
                    matches!(err, Error::VerificationFailed { .. }),
                    "{e}: {err:?}"
                );
            }
        }
        valid += usize::from(expect_valid);
        if let Some(sk) = e.get("secret_key").and_then(Value::as_str) {
            resigned += 1;
            let sk = SecretKey::from_base58(sk).expect("secret key");
            assert_eq!(sk.public_key(), pk);
            let ours = sk.sign(&message).expect("sign");
            tezos_keys::verify(&pk, &message, &ours).expect("own signature verifies");
            if pk.curve() == Curve::Ed25519 && expect_valid {
                assert_eq!(ours, sig, "Ed25519 is deterministic");
            }
        }
    }
    assert_eq!(
        (valid, resigned),
        (17, 11),
        "signatures: valid ones, and ones re-signed from a published secret key"
    );
}
