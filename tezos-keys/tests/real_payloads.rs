//! Real signing requests and Ledger signatures published in
//! ecadlabs/signatory `docs/debugging.md`@33d1d51c ("sample signing
//! commands … taken from an Ithaca chain"; key `tz1M3kiQUMPcTseo72i1twdiV4iTY5yiGNSz`,
//! `edpkuNyLH57vRp2dyzeDSg2G7AarZcp29DQnkQaXrSNdkRkAE4B1ZA`, chain
//! `NetXLH1uAxK7CCh` as printed by `tezos-signer setup ledger to bake`).
//! They check the fixed payload offsets (tezos.md §5) on bytes a real baker
//! produced, and Ed25519 verification of the whole watermarked payload.

use tezos_keys::payload::{self, Watermark};
use tezos_keys::{verify_encoded, ChainId, Error, PublicKey};

const PK: &str = "edpkuNyLH57vRp2dyzeDSg2G7AarZcp29DQnkQaXrSNdkRkAE4B1ZA";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

#[test]
fn key_matches_its_address() {
    let pk: PublicKey = PK.parse().expect("edpk");
    assert_eq!(
        pk.hash().to_string(),
        "tz1M3kiQUMPcTseo72i1twdiV4iTY5yiGNSz"
    );
}

#[test]
fn mainnet_attestation_and_preattestation() {
    let cases = [
        (
            Watermark::Attestation,
            "137a06a7703e47ad79416e7bdceb65156abdbcfd4b1237caf488cbfc39d88c836840bf0bc81509b9002513b8000000008c41b04d3a8648732fb22507447214aa698a235862f30b956e36a37a7d36eb7c",
            "edsigu66k8pYbKvhRbQizVL41XApHz9y6FSj4E6CowvWUsD13j7BDQJAJMh3id4LFhqsip6AhnpcYhRmvMyV4enAnyvEHbTiVZZ",
        ),
        (
            Watermark::Preattestation,
            "127a06a7703e47ad79416e7bdceb65156abdbcfd4b1237caf488cbfc39d88c836840bf0bc81409b9002513b8000000008c41b04d3a8648732fb22507447214aa698a235862f30b956e36a37a7d36eb7c",
            "edsigtaMbMAePuHrEi6cHAc8qKJjrdF9LWdewBJrmrYZTKWAyV1JYADySGovoqkuvwY68UwBxxyj3MJ2Ft7pNAKhbhc6gP4VP8p",
        ),
    ];
    for (kind, bytes, sig) in cases {
        let bytes = unhex(bytes);
        let info = payload::classify(&bytes).expect("classify");
        assert_eq!(info.watermark, kind);
        assert_eq!(info.chain_id, Some(ChainId::MAINNET));
        assert_eq!(info.level, Some(0x0025_13b8));
        assert_eq!(info.round, Some(0));
        verify_encoded(PK, &bytes, sig).expect("Ledger signature verifies");
        // Without the watermark byte the signature must not verify.
        let err = verify_encoded(PK, &bytes[1..], sig).expect_err("no watermark");
        assert!(matches!(err, Error::VerificationFailed { .. }), "{err:?}");
    }
}

#[test]
fn testnet_attestation_via_signatory() {
    let bytes = unhex(
        "131395aa01961837e74d50c9ce304c83e3baa60061f956d9c8703df1d6374e86417b3b753315000c000353cf00000000c18896cfe7d09893bc25997f24b46515e1e6c58a0deaba0a5f17dc0dc59ae038",
    );
    let info = payload::classify(&bytes).expect("classify");
    assert_eq!(info.watermark, Watermark::Attestation);
    assert_eq!(
        info.chain_id.map(|c| c.to_string()).as_deref(),
        Some("NetXLH1uAxK7CCh")
    );
    assert_eq!((info.level, info.round), (Some(0x0003_53cf), Some(0)));
    verify_encoded(
        PK,
        &bytes,
        "edsigtcnGArmYo9cSLnV3cVfd3Kmgm3pbEDpTG2DMwNPBCFzgtV19KToyhVeu3vNX99HXqAsFnC6oDigzkvEbYJpA6e9gieQAav",
    )
    .expect("signature returned by Signatory verifies");
}

#[test]
fn mainnet_block_round_is_the_last_fitness_field() {
    // Fitness (33 bytes): version 02, level 002397ee, locked round (empty),
    // predecessor round ffffffff (-1), round 00000000. Reading 4 bytes too
    // early would return the predecessor round, -1, and fail.
    let bytes = unhex(
        "117a06a770002397ee0c68e4ef4a35e2f768012c2f3b560bb80eb8849327696b6843e20842ca5e01345f000000006270c6650469204194e88ec93cdc7ee5d0aa42908ad49e4e0fb7242d406e73d3a48528d4af00000021000000010200000004002397ee0000000000000004ffffffff000000040000000076222f1388f0a7d6b53b96fde78a2b79b50a19282c48eb003cbdffb6b3669e3897440e9db3d73900616e3f720e162588071444071312d967a7d38f7ea23a480c0000000061fed54022b203000000",
    );
    let info = payload::classify(&bytes).expect("classify");
    assert_eq!(info.watermark, Watermark::Block);
    assert_eq!(info.chain_id, Some(ChainId::MAINNET));
    assert_eq!(info.level, Some(0x0023_97ee));
    assert_eq!(info.round, Some(0));
}
