//! `demo`: a secp256k1 and a P-256 key generated on the token, each signing a sample operation
//! that is then verified in software.

use std::fmt;

use cryptoki_ops::{Curve, EcKeySpec, KeyClass, KeySelector};
use serde::Serialize;
use tezos_keys::HsmKey;

use super::{parse_hex, Output};
use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::text::Escaped;

/// `demo`: `{"token","payload","keys":[...]}`.
#[derive(Serialize)]
pub struct Demo {
    token: String,
    payload: String,
    keys: Vec<DemoKey>,
}

/// One key of the demo: `{"label","curve","public_key","address","signature","verified"}`.
#[derive(Serialize)]
pub struct DemoKey {
    label: String,
    curve: &'static str,
    public_key: String,
    address: String,
    signature: String,
    verified: bool,
}

impl fmt::Display for Demo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "token '{}': signing payload {}",
            Escaped(&self.token),
            self.payload
        )?;
        for k in &self.keys {
            writeln!(
                f,
                "{:<9} address {}\n          public key {}\n          signature {}\n          verified: yes",
                k.curve, k.address, k.public_key, k.signature
            )?;
        }
        f.write_str("all good: 2 keys generated, 2 signatures made on the token and verified")
    }
}

impl Output for Demo {}

/// `demo`.
pub fn run(globals: &GlobalArgs) -> Result<Demo, CliError> {
    let hsm = Context::new(globals)?.open()?;
    // A sample generic operation (watermark 0x03 + forged bytes of a reveal-like operation).
    let operation = parse_hex(
        "sample",
        "03d9f4b9f5d1f67e5d03a9b3d6ee1e2a0c8f1e2d3c4b5a69788796a5b4c3d2e1f06b00",
    )?;
    let mut keys = Vec::new();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("demo-{}", curve.name());
        // Every earlier demo key of this label goes, also when there are several (left by a
        // crash or another program): deleting by label would refuse a duplicated one forever.
        for old in hsm.list_keys()? {
            if old.class == KeyClass::Private && old.label == label {
                hsm.delete_key(&KeySelector::Id(old.id))?;
            }
        }
        hsm.generate_ec_key(&EcKeySpec::new(curve, &label))?;
        let key = HsmKey::open(&hsm, &KeySelector::Label(label.clone()))?;
        let signature = key.sign(&operation)?;
        tezos_keys::verify(key.public_key(), &operation, &signature)?;
        keys.push(DemoKey {
            label,
            curve: curve.name(),
            public_key: key.public_key().to_string(),
            address: key.address().to_string(),
            signature: signature.to_string(),
            verified: true,
        });
    }
    Ok(Demo {
        token: hsm.token_label().to_string(),
        payload: hex::encode(&operation),
        keys,
    })
}
