//! Property tests: base58 strictness, parsers that never panic, and
//! sign → normalise → verify on every curve.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tezos_keys::base58::{self, Prefix};
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{
    verify, verify_digest, verify_encoded, ChainId, Curve, Error, PublicKey, PublicKeyHash,
    SecretKey, Signature,
};

const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn any_prefix() -> impl Strategy<Value = Prefix> {
    proptest::sample::select(Prefix::ALL.to_vec())
}

fn supported_prefix() -> impl Strategy<Value = Prefix> {
    proptest::sample::select(
        Prefix::ALL
            .into_iter()
            .filter(|p| p.is_supported())
            .collect::<Vec<_>>(),
    )
}

fn prefix_and_payload() -> impl Strategy<Value = (Prefix, Vec<u8>)> {
    supported_prefix().prop_flat_map(|p| {
        (
            Just(p),
            proptest::collection::vec(any::<u8>(), p.payload_len()),
        )
    })
}

fn any_curve() -> impl Strategy<Value = Curve> {
    proptest::sample::select(Curve::ALL.to_vec())
}

/// A valid secret key on `curve` from 32 random bytes (rejection-free:
/// invalid scalars are practically impossible, and are filtered).
fn secret_key() -> impl Strategy<Value = SecretKey> {
    (any_curve(), any::<[u8; 32]>()).prop_filter_map("scalar out of range", |(c, b)| {
        SecretKey::from_bytes(c, &b).ok()
    })
}

fn ecdsa_secret_key() -> impl Strategy<Value = SecretKey> {
    secret_key().prop_filter("ECDSA only", |k| k.curve().is_ecdsa())
}

/// Raw base58 of `prefix ‖ payload ‖ checksum`, bypassing our encoder.
fn raw_b58check(body: &[u8]) -> String {
    let sum = Sha256::digest(Sha256::digest(body));
    let mut all = body.to_vec();
    all.extend_from_slice(&sum[..4]);
    bs58::encode(all).into_string()
}

/// `(r, n - s)`, computed independently of the crate.
fn twin(sig: &Signature) -> Signature {
    let n = if sig.curve() == Curve::Secp256k1 {
        SECP256K1_N
    } else {
        P256_N
    };
    let mut bytes = *sig.as_bytes();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(n[i]) - i16::from(bytes[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        bytes[32 + i] = u8::try_from(d + 256 * borrow).expect("byte");
    }
    Signature::new(sig.curve(), bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn base58_round_trips((prefix, payload) in prefix_and_payload()) {
        let text = base58::encode(prefix, &payload).expect("encode");
        prop_assert!(text.starts_with(prefix.text()));
        prop_assert_eq!(text.len(), prefix.encoded_len());
        prop_assert_eq!(&text, &raw_b58check(&[prefix.bytes(), &payload].concat()));
        let (p, bytes) = base58::decode(&text, &[prefix]).expect("decode");
        prop_assert_eq!(p, prefix);
        prop_assert_eq!(bytes.as_slice(), payload.as_slice());
    }

    #[test]
    fn bit_flips_are_rejected(
        (prefix, payload) in prefix_and_payload(),
        bit in any::<proptest::sample::Index>(),
    ) {
        let mut body = [prefix.bytes(), &payload].concat();
        let text = base58::encode(prefix, &payload).expect("encode");
        let mut all = bs58::decode(&text).into_vec().expect("own output");
        prop_assert_eq!(&all[..body.len()], body.as_slice());
        let i = bit.index(all.len() * 8);
        all[i / 8] ^= 1 << (i % 8);
        let flipped = bs58::encode(&all).into_string();
        let err = base58::decode(&flipped, &Prefix::ALL).expect_err("flipped");
        prop_assert!(matches!(err, Error::BadChecksum { .. }), "{:?}", err);
        // Flipping a bit before computing the checksum gives a valid
        // checksum, but then the prefix or payload is different.
        let j = i % body.len();
        body[j] ^= 1;
        if let Ok((p, bytes)) = base58::decode(&raw_b58check(&body), &Prefix::ALL) {
            prop_assert!(p != prefix || bytes.as_slice() != payload.as_slice());
        }
    }

    #[test]
    fn character_substitutions_are_rejected(
        (prefix, payload) in prefix_and_payload(),
        pos in any::<proptest::sample::Index>(),
        replacement in proptest::sample::select(
            "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".chars().collect::<Vec<_>>()
        ),
    ) {
        let text = base58::encode(prefix, &payload).expect("encode");
        let i = pos.index(text.len());
        let mut chars: Vec<char> = text.chars().collect();
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        // The checksum is checked first: any changed character is a bad checksum (but for
        // one chance in 2^32).
        let result = base58::decode(&changed, &Prefix::ALL);
        prop_assert!(matches!(result, Err(Error::BadChecksum { .. })), "{:?}", result.map(|(p, _)| p));
    }

    #[test]
    fn wrong_prefix_is_rejected(
        (prefix, payload) in prefix_and_payload(),
        others in proptest::collection::vec(supported_prefix(), 1..4),
    ) {
        let expected: Vec<Prefix> = others.into_iter().filter(|p| *p != prefix).collect();
        prop_assume!(!expected.is_empty());
        let text = base58::encode(prefix, &payload).expect("encode");
        let err = base58::decode(&text, &expected).expect_err("wrong prefix");
        prop_assert_eq!(
            err,
            Error::WrongPrefix { expected: err_expected(&expected), found: prefix.text() }
        );
    }

    #[test]
    fn wrong_length_is_rejected(
        prefix in any_prefix(),
        len in 0usize..80,
        fill in any::<u8>(),
    ) {
        prop_assume!(len != prefix.payload_len());
        let body = [prefix.bytes(), &vec![fill; len]].concat();
        let text = raw_b58check(&body);
        prop_assert_eq!(
            base58::encode(prefix, &vec![fill; len]),
            Err(Error::WrongLength { prefix: prefix.text(), expected: prefix.payload_len(), actual: len })
        );
        match base58::decode(&text, &Prefix::ALL) {
            Err(Error::WrongLength { prefix: p, expected, actual }) => {
                prop_assert_eq!(p, prefix.text());
                prop_assert_eq!(actual, len);
                prop_assert_eq!(expected, prefix.payload_len());
            }
            Err(Error::Unsupported { .. }) => prop_assert!(!prefix.is_supported()),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = base58::decode(&text, &Prefix::ALL);
        let _ = text.parse::<PublicKeyHash>();
        let _ = text.parse::<PublicKey>();
        let _ = text.parse::<Signature>();
        let _ = text.parse::<ChainId>();
        let _ = text.parse::<Watermark>();
        let _ = payload::parse_allow_list(&text);
        for curve in Curve::ALL {
            let _ = Signature::from_base58_for(&text, curve);
        }
        if let Err(err) = SecretKey::from_base58(&text) {
            if text.len() > 4 && text.is_char_boundary(4) {
                // Long tails only: a short one can occur in any English message.
                prop_assert!(text[4..].len() < 12 || !err.to_string().contains(&text[4..]));
            }
        }
        let _ = verify_encoded(&text, b"", &text);
    }

    #[test]
    fn arbitrary_base58_never_panics(text in "[1-9A-HJ-NP-Za-km-z]{0,120}") {
        let _ = base58::decode(&text, &Prefix::ALL);
        let _ = SecretKey::from_base58(&text);
        let _ = text.parse::<Signature>();
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = payload::classify(&bytes);
        let _ = payload::digest(&bytes);
        let _ = PublicKey::from_forged(&bytes);
        let _ = PublicKeyHash::from_forged(&bytes);
        let _ = ChainId::from_slice(&bytes);
        for curve in Curve::ALL {
            let _ = PublicKey::from_bytes(curve, &bytes);
            let _ = PublicKey::from_ec_point(curve, &bytes);
            let _ = Signature::from_der(curve, &bytes);
            let _ = SecretKey::from_bytes(curve, &bytes);
            if let Ok(sig) = Signature::from_slice(curve, &bytes) {
                let _ = sig.normalize_s();
                let _ = sig.is_low_s();
            }
        }
    }

    #[test]
    fn truncated_payloads_give_truncated_errors(
        watermark in proptest::sample::select(Watermark::ALL.to_vec()),
        rest in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let payload = [&[watermark.byte()][..], &rest].concat();
        match payload::classify(&payload) {
            Ok(info) => {
                prop_assert_eq!(info.watermark, watermark);
                prop_assert!(payload.len() >= watermark.min_len());
                prop_assert_eq!(info.level.is_some(), watermark.is_consensus());
            }
            Err(Error::TruncatedPayload { byte, min, actual, .. }) => {
                prop_assert_eq!(byte, watermark.byte());
                prop_assert_eq!(actual, payload.len());
                prop_assert!(min > actual);
            }
            Err(Error::InvalidPayload { byte, .. }) => prop_assert_eq!(byte, watermark.byte()),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn consensus_fields_are_read_at_fixed_offsets(
        kind in proptest::sample::select(vec![Watermark::Preattestation, Watermark::Attestation]),
        chain in any::<[u8; 4]>(),
        level in 0u32..=i32::MAX as u32,
        round in 0u32..=i32::MAX as u32,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut p = vec![kind.byte()];
        p.extend_from_slice(&chain);
        p.extend_from_slice(&[0xab; 35]); // branch, kind, slot
        p.extend_from_slice(&level.to_be_bytes());
        p.extend_from_slice(&round.to_be_bytes());
        p.extend_from_slice(&tail);
        let info = payload::classify(&p).expect("valid");
        prop_assert_eq!(info.chain_id, Some(ChainId::from_bytes(chain)));
        prop_assert_eq!((info.level, info.round), (Some(level), Some(round)));
    }
}

proptest! {
    // Software signing is slow in debug builds: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sign_normalise_verify_round_trip(
        sk in secret_key(),
        message in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let pk = sk.public_key();
        let sig = sk.sign(&message).expect("sign");
        prop_assert!(sig.is_low_s().expect("scalars"));
        verify(&pk, &message, &sig).expect("verifies");
        verify_digest(&pk, &payload::digest(&message), &sig).expect("verifies");
        let sig_text = sig.to_generic_base58();
        verify_encoded(&pk.to_string(), &message, &sig_text).expect("text verifies");
        let mut other = message.clone();
        other.push(0);
        let err = verify(&pk, &other, &sig).expect_err("other message");
        prop_assert_eq!(err, Error::VerificationFailed { curve: pk.curve() });
        // Round trips through text.
        prop_assert_eq!(sig.to_string().parse::<Signature>().expect("parse"), sig);
        prop_assert_eq!(pk.to_string().parse::<PublicKey>().expect("parse"), pk);
        prop_assert_eq!(pk.hash().to_string().parse::<PublicKeyHash>().expect("parse"), pk.hash());
    }

    #[test]
    fn high_s_secp256k1_rejected_low_s_twin_verifies(
        sk in ecdsa_secret_key(),
        message in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let pk = sk.public_key();
        let low = sk.sign(&message).expect("sign");
        let high = twin(&low);
        prop_assert!(!high.is_low_s().expect("scalars"));
        prop_assert_eq!(high.normalize_s().expect("normalise"), low);
        verify(&pk, &message, &low).expect("low-S verifies");
        match pk.curve() {
            Curve::Secp256k1 => prop_assert_eq!(verify(&pk, &message, &high), Err(Error::HighS)),
            _ => verify(&pk, &message, &high).expect("P-256 accepts high-S like Octez"),
        }
    }

    #[test]
    fn point_not_on_curve_is_rejected(
        sk in ecdsa_secret_key(),
        bit in 0usize..256,
    ) {
        let pk = sk.public_key();
        let mut uncompressed = pk.to_uncompressed().expect("ECDSA");
        prop_assert_eq!(PublicKey::from_bytes(pk.curve(), &uncompressed).expect("valid"), pk);
        // Change Y: (X, Y') is on the curve only for Y' = p - Y, which one
        // bit flip cannot produce.
        uncompressed[33 + bit / 8] ^= 1 << (bit % 8);
        let err = PublicKey::from_bytes(pk.curve(), &uncompressed).expect_err("off the curve");
        let is_invalid_key = matches!(err, Error::InvalidPublicKey { .. });
        prop_assert!(is_invalid_key, "{:?}", err);
    }

    #[test]
    fn secret_key_text_round_trips(sk in secret_key()) {
        use secrecy::ExposeSecret;
        let text = sk.to_base58();
        let again = SecretKey::from_base58(text.expose_secret()).expect("parse");
        prop_assert_eq!(again.expose_secret(), sk.expose_secret());
        prop_assert_eq!(again.public_key(), sk.public_key());
        let debug = format!("{:?}", sk);
        prop_assert!(!debug.contains(&hex::encode(sk.expose_secret())));
    }
}

fn err_expected(expected: &[Prefix]) -> String {
    // Mirror of the crate's description, checked against a fixed case in
    // the unit tests; here only its shape matters.
    match base58::decode("", expected) {
        Err(Error::EmptyText { expected }) => expected,
        other => panic!("unexpected {other:?}"),
    }
}
