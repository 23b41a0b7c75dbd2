//! Base58check: the fast encoder against `bs58`, the prefixes against the reference table, the
//! messages (secret text never echoed).

proptest::proptest! {
    #[test]
    fn fast_encoder_matches_bs58(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120), zeros in 0usize..4) {
        let mut input = vec![0u8; zeros];
        input.extend(bytes);
        let ours = super::encode_fast(&input);
        proptest::prop_assert_eq!(std::str::from_utf8(&ours).unwrap(), bs58::encode(&input).into_string());
    }
}

use super::*;

#[test]
fn prefixes_are_unambiguous() {
    for a in Prefix::ALL {
        for b in Prefix::ALL {
            if a != b {
                assert!(
                    !b.bytes().starts_with(a.bytes()),
                    "{a:?} is a prefix of {b:?}"
                );
            }
        }
    }
}

#[test]
fn encoded_lengths_match_the_reference_table() {
    // tezos.md §1, "Encoded chars" column.
    let table = [
        (Prefix::Tz1, 36),
        (Prefix::Tz2, 36),
        (Prefix::Tz3, 36),
        (Prefix::Tz4, 36),
        (Prefix::Kt1, 36),
        (Prefix::Edpk, 54),
        (Prefix::Sppk, 55),
        (Prefix::P2pk, 55),
        (Prefix::Blpk, 76),
        (Prefix::Edsig, 99),
        (Prefix::Spsig1, 99),
        (Prefix::P2sig, 98),
        (Prefix::Sig, 96),
        (Prefix::EdskSeed, 54),
        (Prefix::EdskKeypair, 98),
        (Prefix::Spsk, 54),
        (Prefix::P2sk, 54),
        (Prefix::Net, 15),
    ];
    for (prefix, len) in table {
        assert_eq!(prefix.encoded_len(), len, "{prefix:?}");
        let zeros = vec![0u8; prefix.payload_len()];
        assert_eq!(encode(prefix, &zeros).expect("encode").len(), len);
        let ones = vec![0xffu8; prefix.payload_len()];
        let text = encode(prefix, &ones).expect("encode");
        assert_eq!(text.len(), len, "{prefix:?}");
        assert!(text.starts_with(prefix.text()), "{prefix:?}: {text}");
    }
}

#[test]
fn describe_reads_well() {
    assert_eq!(describe(&[Prefix::Tz2, Prefix::Tz3]), "a tz2/tz3 address");
    assert_eq!(
        describe(&[Prefix::EdskSeed, Prefix::EdskKeypair, Prefix::Spsk]),
        "an edsk/spsk secret key"
    );
}

#[test]
fn wrong_prefix_message_names_what_was_found() {
    let edpk = "edpkuhmrbunxumoiVdQuxBZUPMmwkPt7yLtY5Qnua3VJVTLWr3vXXa";
    let err = decode(edpk, &[Prefix::Tz2, Prefix::Tz3]).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "expected a tz2/tz3 address, got something starting with 'edpk'"
    );
}

#[test]
fn secret_text_is_not_echoed() {
    // Taquito test key (tezos.md §9), a published test-only secret.
    let edsk = "edsk4TjJWEszkHKono7XMnepVqwi37FrpbVt1KCsifJeAGimxheShG";
    let err = decode(edsk, &[Prefix::Tz1]).expect_err("must fail");
    assert!(!err.to_string().contains(&edsk[4..]));
    let mut broken = edsk.to_owned();
    broken.replace_range(20..21, "0");
    let err = decode(&broken, &[Prefix::EdskSeed]).expect_err("must fail");
    assert!(!err.to_string().contains(&edsk[4..10]), "{err}");
}
