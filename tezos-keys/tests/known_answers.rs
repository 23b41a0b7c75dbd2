//! Known-answer tests with the values quoted in `shared/reference/tezos.md`
//! §9 "Selected values"; each cites the repository and path it comes from.
//! All secret keys here are published test keys — TEST KEYS ONLY.

use secrecy::ExposeSecret;
use tezos_keys::base58::{self, Prefix};
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{
    verify, verify_digest, verify_encoded, ChainId, Curve, Error, PublicKey, PublicKeyHash,
    SecretKey, Signature,
};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

/// Source: tezos/tezos-mirror `src/lib_crypto/test/key_encoding_vectors.ml`@3bab4448
/// (secp256k1 and P-256 entries quoted in tezos.md §9).
#[test]
fn octez_key_encoding_vectors() {
    let cases = [
        (
            Curve::Secp256k1,
            "b4cfc339fea1412defe5e60a153feacfb0c171757751278e65c2654ea5cbce1f",
            "027d4fb1bd6eb3ee2a2e65fe4dd2fbc987a38a391ec23fbfbc878e95b2c8386003",
            "sppk7aFpmJLm3ZxMd3F4osvGBq77R1NeSpiJVnof3Wiv4mt84EBE9aX",
            "c6e57bc37f3f1f36da594339e171ed31ce8b8530",
            "tz2SSuN7FRcAurZPSAQS1swNWE8xxf71MTjt",
        ),
        (
            Curve::P256,
            "2bc87e75c79225a15e9ae381069c8de363ddecd9229ce177b51967d94b688d2e",
            "03028fd70c328e4897e23350cce32fdf4efd222f6bec494c89d4d34b47c8f8d09f",
            "p2pk66Y3178eHvgWFA4CDsgGPhbkWtwrYCVUKJnsAi41eGP7MbHKv24",
            "958d9c510a47b4f6741d577c288b261cb23a25cf",
            "tz3ZxowXGSjiVq227GQcwKdz87rKhq62rY4t",
        ),
    ];
    for (curve, secret, pk_hex, pk_b58, pkh_hex, address) in cases {
        let sk = SecretKey::from_bytes(curve, &unhex(secret)).expect("secret");
        let pk = sk.public_key();
        assert_eq!(hex::encode(pk.as_bytes()), pk_hex);
        assert_eq!(pk.to_base58(), pk_b58);
        assert_eq!(pk_b58.parse::<PublicKey>().expect("pk"), pk);
        assert_eq!(hex::encode(pk.hash().as_bytes()), pkh_hex);
        assert_eq!(pk.hash().to_string(), address);
        assert_eq!(address.parse::<PublicKeyHash>().expect("pkh"), pk.hash());
        // Round trip through the secret-key text form.
        let text = sk.to_base58();
        let again = SecretKey::from_base58(text.expose_secret()).expect("own encoding");
        assert_eq!(again.expose_secret(), sk.expose_secret());
        // Uncompressed SEC1 gives the same key.
        let uncompressed = pk.to_uncompressed().expect("ECDSA");
        assert_eq!(
            PublicKey::from_bytes(curve, &uncompressed).expect("sec1"),
            pk
        );
        // Forged forms round trip (tezos.md §3).
        assert_eq!(PublicKey::from_forged(&pk.to_forged()).expect("forged"), pk);
        assert_eq!(pk.to_forged()[0], curve.tag());
        assert_eq!(
            PublicKeyHash::from_forged(&pk.hash().to_forged()).expect("forged pkh"),
            pk.hash()
        );
    }
}

/// Source: tezos/tezos-mirror `sdk/rust/crypto/src/hash.rs` tests
/// (`tezos_crypto_rs`): digest = BLAKE2b-256 of the raw message.
#[test]
fn tezos_crypto_rs_signatures() {
    let sk = SecretKey::from_base58("spsk1sheno8Jt8FoBEoamFoNBxUEpjEggNNpepTFc8cEoJBA9QjDJq")
        .expect("spsk");
    let pk: PublicKey = "sppk7a2WEfU54QzcQZ2EMjihtcxLeRtNTVxHw4FW2e8W5kEJ8ZargSb"
        .parse()
        .expect("sppk");
    assert_eq!(sk.public_key(), pk);
    let sig: Signature = "spsig1QLf7cczTbt4UHFGQKUrB2pS3ZTu9wdXR29zKxVPQkhBaiLez6hRcM142ms7HagQa3vuPstvMtYq44y4x4RPcrLu76ZuQ7"
        .parse()
        .expect("spsig1");
    verify(&pk, b"hello, test", &sig).expect("valid");
    assert!(sig.is_low_s().expect("scalars"));

    // Its high-S twin (r, n - s) must be rejected, as Octez and the test
    // `test_secp256k1_high_s_signature_rejected` do.
    let twin = high_s_twin(&sig);
    assert!(!twin.is_low_s().expect("scalars"));
    assert_eq!(verify(&pk, b"hello, test", &twin), Err(Error::HighS));
    assert_eq!(twin.normalize_s().expect("normalise"), sig);

    let sk = SecretKey::from_base58("p2sk2bixvFTFTuw9HtD4ucuDsktZTcwRJ5V3gDsQauwE2VTuh6hBiP")
        .expect("p2sk");
    let pk: PublicKey = "p2pk65p7HKSGvkMdeK5yckM2nmi59oGNw4ksqdcvwxxF3AV3hopkfGS"
        .parse()
        .expect("p2pk");
    assert_eq!(sk.public_key(), pk);
    let sig: Signature = "p2sigefoF8vJvSshWmLL6NyX6QnQUyUhq76r3F3ST6mTNqeCFzosDQyaRanoZpm14eeakZhAJ3LdGHFE4z9cPv9yTWFqWM4j9A"
        .parse()
        .expect("p2sig");
    verify(&pk, b"hello, message", &sig).expect("valid");
    // P-256 high-S is accepted, as Octez (HACL*) and tezos_crypto_rs accept it.
    let twin = high_s_twin(&sig);
    verify(&pk, b"hello, message", &twin).expect("P-256 accepts high-S");
}

/// Source: tezos/tezos-mirror `sdk/rust/crypto/src/hash.rs`,
/// `test_encode_contract_tz2` / `_tz3` (hash prefixes quoted in tezos.md §9).
#[test]
fn tezos_crypto_rs_contract_prefixes() {
    for (address, curve, hash_prefix) in [
        (
            "tz2Cfwk4ortcaqAGcVJKSxLiAdcFxXBLBoyY",
            Curve::Secp256k1,
            "2fcb1d93",
        ),
        (
            "tz3NdTPb3Ax2rVW2Kq9QEdzfYFkRwhrQRPhX",
            Curve::P256,
            "193b2b3f",
        ),
    ] {
        let pkh: PublicKeyHash = address.parse().expect("address");
        assert_eq!(pkh.curve(), curve);
        let hash = hex::encode(pkh.as_bytes());
        assert!(hash.starts_with(hash_prefix), "{hash}");
        assert_eq!(pkh.to_string(), address);
    }
}

/// Source: ecadlabs/taquito `packages/taquito-signer/test/taquito-signer.spec.ts`@0ba5cb6a:
/// `sign('1234', [3])` signs the bytes `03 12 34`; signatures in generic `sig` form.
#[test]
fn taquito_signer_vectors() {
    let message = [0x03, 0x12, 0x34];
    let cases = [
        (
            "edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG",
            "edpkuhmrbunxumoiVdQuxBZUPMmwkPt7yLtY5Qnua3VJVTLWr3vXXa",
            "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv",
            "sigpKAnfQGzG4Rk5pV7z9mx2TL9veQCHD7qN4PhsUZMj1BqsumBoApBS9Ue616vKVymxrzfZE2L4h27zzxRUVy6BNPRMpufb",
        ),
        (
            "spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE",
            "sppk7aqSksZan1AGXuKtCz9UBLZZ77e3ZWGpFxR7ig1Z17GneEhSSbH",
            "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD",
            "sigREwM1SuRN5WzjH5xGJuyeZQ9kWi8XtbA4wRqGTumJwNY18PmF1XQMLCXEQBr4frnriKHWdPUynF1vGUvPcoWrNjb3s5xp",
        ),
        (
            "p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1",
            "p2pk66tTYL5EvahKAXncbtbRPBkAnxo3CszzUho5wPCgWauBMyvybuB",
            "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At",
            "sigRUobRZ4oG7CvdtQfNoDe3Gqn8zrLw6RXjXVa84rX3HMzWuCuncWgDqY8wRkssofLUsfbdR6MNGJzDWaNXEwTxDktfrKmj",
        ),
    ];
    for (sk_text, pk_text, address, sig_text) in cases {
        let sk = SecretKey::from_base58(sk_text).expect("secret");
        assert_eq!(sk.to_base58().expose_secret(), sk_text);
        let pk = sk.public_key();
        assert_eq!(pk.to_string(), pk_text);
        assert_eq!(pk.hash().to_string(), address);
        let key = verify_encoded(pk_text, &message, sig_text).expect("valid signature");
        assert_eq!(key, pk);
        // A generic sig alone cannot say its curve.
        assert_eq!(
            sig_text.parse::<Signature>(),
            Err(Error::GenericSignatureNeedsCurve)
        );
        let sig = Signature::from_base58_for(sig_text, pk.curve()).expect("sig");
        assert_eq!(sig.to_generic_base58(), sig_text);
        // Our own signature verifies; Ed25519 is deterministic, so it must be
        // exactly Taquito's.
        let ours = sk.sign(&message).expect("sign");
        verify(&pk, &message, &ours).expect("own signature");
        if pk.curve() == Curve::Ed25519 {
            assert_eq!(ours, sig);
        }
        let err = verify_encoded(pk_text, &[0x03, 0x12, 0x35], sig_text).expect_err("other bytes");
        assert!(matches!(err, Error::VerificationFailed { .. }), "{err:?}");
    }
}

/// Source: tezos.md §1 (mainnet chain id).
#[test]
fn mainnet_chain_id() {
    let id: ChainId = "NetXdQprcVkpaWU".parse().expect("chain id");
    assert_eq!(id, ChainId::MAINNET);
    assert_eq!(id.as_bytes(), &[0x7a, 0x06, 0xa7, 0x70]);
}

#[test]
fn unsupported_kinds_say_so() {
    for (prefix, what) in [
        (Prefix::Tz4, "tz4"),
        (Prefix::Kt1, "KT1"),
        (Prefix::Blpk, "BLpk"),
    ] {
        let text = base58::encode(prefix, &vec![1; prefix.payload_len()]).expect("encode");
        for err in [
            text.parse::<PublicKeyHash>().expect_err("unsupported"),
            text.parse::<PublicKey>().expect_err("unsupported"),
        ] {
            assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
            assert!(err.to_string().contains(what), "{err}");
            assert!(err.to_string().contains("not supported"), "{err}");
        }
    }
}

#[test]
fn curve_mismatch_is_reported() {
    let pk: PublicKey = "p2pk65p7HKSGvkMdeK5yckM2nmi59oGNw4ksqdcvwxxF3AV3hopkfGS"
        .parse()
        .expect("p2pk");
    let sig: Signature = "spsig1QLf7cczTbt4UHFGQKUrB2pS3ZTu9wdXR29zKxVPQkhBaiLez6hRcM142ms7HagQa3vuPstvMtYq44y4x4RPcrLu76ZuQ7"
        .parse()
        .expect("spsig1");
    assert!(matches!(
        verify(&pk, b"x", &sig),
        Err(Error::CurveMismatch { .. })
    ));
    let err = verify_encoded(&pk.to_string(), b"x", &sig.to_string()).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        "expected a p2sig/sig signature, got something starting with 'spsig1'"
    );
}

#[test]
fn der_signature_matches_raw() {
    let sk = SecretKey::from_base58("p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1")
        .expect("p2sk");
    let sig = sk.sign(&[0x03]).expect("sign");
    let (r, s) = sig.as_bytes().split_at(32);
    let der = der_encode(r, s);
    assert_eq!(Signature::from_der(Curve::P256, &der).expect("der"), sig);
}

#[test]
fn payload_digest_includes_watermark() {
    // tezos.md §4: digest = BLAKE2b-256(watermark ‖ payload). The Taquito vectors
    // sign '1234' with watermark 03; the digest of 03 12 34, computed independently
    // (Python `hashlib.blake2b(bytes.fromhex("031234"), digest_size=32)`, recorded
    // as digest_hex of those vectors in fixtures/tezos/vectors.json), is the message
    // Taquito's published Ed25519 signature signs.
    let digest = payload::digest(&[0x03, 0x12, 0x34]);
    assert_eq!(
        hex::encode(digest),
        "0ca34c8b7618c620b0bb3d45d91b98852df7cadae6d0cda161fcebb731dbeeb3"
    );
    let pk: PublicKey = "edpkvJELH15q7a8ShGRsoULGxLQfUQaGahwRTFywCsnWPPdwnmASRH"
        .parse()
        .expect("Taquito's tz1 key");
    let sig = Signature::from_base58_for(
        "sigeeho3jK4MZKsyqcTc9mjhtz9w6enG3AFniufgUXCuXFW7VjShxLoNmxqkQSRYUwP1LHRMere5LrvxcqLgU9KmDGN356Yz",
        Curve::Ed25519,
    )
    .expect("Taquito's signature");
    verify_digest(&pk, &digest, &sig).expect("Taquito's signature is over this digest");
    // Without the watermark: another digest (hashlib: 35826d51...), which it does not sign.
    let bare = payload::digest(&[0x12, 0x34]);
    assert_eq!(
        hex::encode(bare),
        "35826d51e070a6d9ac7e69df455191dc02f66678879a12511f5a91d8befacb11"
    );
    assert!(matches!(
        verify_digest(&pk, &bare, &sig),
        Err(Error::VerificationFailed { .. })
    ));
    assert_eq!(
        payload::classify(&[0x05, 0x00])
            .expect("michelson")
            .watermark,
        Watermark::Michelson
    );
}

/// `(r, n - s)` computed with plain big-endian arithmetic, independently of
/// the crate's own normalisation.
fn high_s_twin(sig: &Signature) -> Signature {
    let n: [u8; 32] = match sig.curve() {
        Curve::Secp256k1 => {
            unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
        }
        _ => unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    }
    .try_into()
    .expect("32 bytes");
    let mut bytes = *sig.as_bytes();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(n[i]) - i16::from(bytes[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        bytes[32 + i] = (d + 256 * borrow) as u8;
    }
    Signature::new(sig.curve(), bytes)
}

fn der_encode(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let body: Vec<u8> = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}
