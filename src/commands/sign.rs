//! `sign`: a Tezos payload signed by a key on the token, through the double-signing guard.

use std::fmt;

use serde::Serialize;
use tezos_keys::{HighWatermark, HsmKey, KeyPolicy};

use super::{parse_hex, Output};
use crate::cli::{GlobalArgs, SignArgs};
use crate::context::Context;
use crate::error::CliError;

/// `sign`: `{"signature","address"}`; the text is the signature alone.
#[derive(Serialize)]
pub struct Signed {
    signature: String,
    address: String,
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.signature)
    }
}

impl Output for Signed {}

/// `sign LABEL PAYLOAD [--allow W,...] [--no-verify]`.
pub fn run(globals: &GlobalArgs, args: SignArgs) -> Result<Signed, CliError> {
    let ctx = Context::new(globals)?;
    let bytes = parse_hex("the payload", &args.payload)?;
    let policy = match args.allow.as_deref() {
        Some(list) => KeyPolicy::from_allow_list(list)?,
        None => KeyPolicy::all(),
    };
    // Every request goes through the double-signing guard: consensus payloads (blocks,
    // (pre)attestations) are refused at or below the recorded level/round unless they are the
    // very same bytes, which get the recorded signature back.
    // The file store, or PostgreSQL with --watermark-db.
    let guard = HighWatermark::new(ctx.watermark_store()?);
    let hsm = ctx.open()?;
    let key = HsmKey::open(&hsm, &args.label)?.with_verify_after_sign(!args.no_verify);
    let signature = guard.sign_keypair(&policy, &key, &bytes)?;
    Ok(Signed {
        signature: signature.to_string(),
        address: key.address().to_string(),
    })
}
