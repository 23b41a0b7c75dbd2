//! octez-signer's high-watermark files, read for `watermark import --from octez-signer DIR`.
//!
//! Octez `src/bin_signer/handler.ml`@f6578813 (`High_watermark`): with
//! `--check-high-watermark`, the signer keeps, in its base directory (`-d`, default
//! `~/.tezos-signer`), one JSON file per kind, named `<kind>_high_watermark` plus the `s` the
//! wallet adds to every file name (`src/lib_client_base_unix/client_context_unix.ml`@82155fa5,
//! `filename`): `block_high_watermarks`, `preattestation_high_watermarks`,
//! `attestation_high_watermarks`, and `endorsement_high_watermarks` for legacy `0x02`
//! endorsements. Octez releases before the attestation renaming wrote Tenderbake
//! (pre)attestations to `preendorsement_high_watermarks` / `endorsement_high_watermarks`; both
//! are read too, into the (pre)attestation records (a record can only go up, so reading an old
//! file never weakens anything).
//!
//! Each file is the `High_watermark.encoding`: an object of chain ids (`Net…`), each an object
//! of key hashes, each `{"level": int32, "round"?: int32, "hash": "<hex BLAKE2b-256 of the
//! signed bytes>", "signature"?: "<b58 signature>"}`:
//!
//! ```json
//! { "NetXdQprcVkpaWU":
//!     { "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At":
//!         { "level": 1000, "round": 2, "hash": "5e4f…", "signature": "p2sig…" } } }
//! ```
//!
//! Reading is strict, before anything is written: a file that is not a regular file of at most
//! [`MAX_FILE_BYTES`], not JSON, or with an unknown field, a bad chain id, key hash, level,
//! round, hash or signature is an error naming the file and the field. Keys this tool cannot
//! serve (tz4, tz5) are skipped and reported.

use std::path::Path;

use serde_json::{Map, Value};
use tezos_keys::durable;
use tezos_keys::high_watermark::{Height, Mark, MarkKind};
use tezos_keys::{ChainId, PublicKeyHash, Signature};

use crate::error::CliError;
use crate::text::escape;

/// The files read, and the record each feeds.
pub const FILES: [(&str, MarkKind); 5] = [
    ("block_high_watermarks", MarkKind::Block),
    ("preattestation_high_watermarks", MarkKind::Preattestation),
    ("attestation_high_watermarks", MarkKind::Attestation),
    ("preendorsement_high_watermarks", MarkKind::Preattestation),
    ("endorsement_high_watermarks", MarkKind::Attestation),
];

/// The largest file read: a mark is about 200 bytes, so this holds tens of thousands.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// One mark read from a file.
pub struct Imported {
    /// The file it comes from.
    pub file: &'static str,
    /// Its key.
    pub key: PublicKeyHash,
    /// Its chain.
    pub chain: ChainId,
    /// The record it feeds.
    pub kind: MarkKind,
    /// Level, round, digest, and the signature when Octez kept one.
    pub mark: Mark,
}

/// A key the files hold that this tool does not serve.
pub struct Skipped {
    /// The file.
    pub file: &'static str,
    /// The key, as written (escaped, at most 40 characters).
    pub key: String,
    /// Why.
    pub reason: String,
}

/// Everything read from a directory.
pub struct OctezMarks {
    /// The files found.
    pub files: Vec<&'static str>,
    /// The marks.
    pub marks: Vec<Imported>,
    /// The keys skipped.
    pub skipped: Vec<Skipped>,
}

fn invalid(message: String) -> CliError {
    CliError::new("watermark_import_invalid", message)
}

/// Reads every high-watermark file of octez-signer's base directory `dir`.
///
/// # Errors
/// `watermark_import_invalid` for a missing directory, a directory without any of the files, or
/// a file that cannot be read or parsed (naming the file and field).
pub fn read(dir: &Path) -> Result<OctezMarks, CliError> {
    if !dir.is_dir() {
        return Err(invalid(format!(
            "{} is not a directory: give octez-signer's base directory (its -d option, by default \
             ~/.tezos-signer)",
            dir.display()
        )));
    }
    let mut out = OctezMarks {
        files: Vec::new(),
        marks: Vec::new(),
        skipped: Vec::new(),
    };
    for (file, kind) in FILES {
        let path = dir.join(file);
        let bytes = durable::read_regular(&path, MAX_FILE_BYTES)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let Some(bytes) = bytes else { continue };
        out.files.push(file);
        parse_file(file, kind, &bytes, &mut out)?;
    }
    if out.files.is_empty() {
        return Err(invalid(format!(
            "no high-watermark file in {}: octez-signer writes block_high_watermarks, \
             preattestation_high_watermarks and attestation_high_watermarks in its base \
             directory when run with --check-high-watermark (-W)",
            dir.display()
        )));
    }
    Ok(out)
}

/// Text from a file, safe to print: escaped, at most 40 characters.
fn shown(text: &str) -> String {
    escape(&text.chars().take(40).collect::<String>())
}

fn parse_file(
    file: &'static str,
    kind: MarkKind,
    bytes: &[u8],
    out: &mut OctezMarks,
) -> Result<(), CliError> {
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("{file}: not valid JSON ({e})")))?;
    let chains = json.as_object().ok_or_else(|| {
        invalid(format!(
            "{file}: expected a JSON object of chain ids, as octez-signer writes"
        ))
    })?;
    for (chain_text, keys) in chains {
        let chain: ChainId = chain_text
            .parse()
            .map_err(|e| invalid(format!("{file}: chain id {:?}: {e}", shown(chain_text))))?;
        let keys = keys.as_object().ok_or_else(|| {
            invalid(format!(
                "{file}: chain {chain}: expected an object of key hashes"
            ))
        })?;
        for (key_text, fields) in keys {
            let at = |what: String| {
                invalid(format!(
                    "{file}: chain {chain}, key {}: {what}",
                    shown(key_text)
                ))
            };
            let key: PublicKeyHash = match key_text.parse() {
                Ok(key) => key,
                Err(_) if key_text.starts_with("tz4") || key_text.starts_with("tz5") => {
                    out.skipped.push(Skipped {
                        file,
                        key: shown(key_text),
                        reason: "tz4 (BLS) and tz5 (ML-DSA) keys cannot sign through PKCS#11, \
                                 so no key here can have this address"
                            .to_owned(),
                    });
                    continue;
                }
                Err(e) => return Err(at(format!("not a key hash: {e}"))),
            };
            let fields = fields
                .as_object()
                .ok_or_else(|| at("expected an object {level, round, hash, signature}".into()))?;
            let mark = parse_mark(&key, fields).map_err(at)?;
            out.marks.push(Imported {
                file,
                key,
                chain,
                kind,
                mark,
            });
        }
    }
    Ok(())
}

/// `{level, round?, hash, signature?}`; the error names the field.
fn parse_mark(key: &PublicKeyHash, fields: &Map<String, Value>) -> Result<Mark, String> {
    if let Some(unknown) = fields
        .keys()
        .find(|f| !["level", "round", "hash", "signature"].contains(&f.as_str()))
    {
        return Err(format!(
            "unknown field {:?} (octez-signer writes level, round, hash, signature)",
            shown(unknown)
        ));
    }
    let int32 = |name: &str| -> Result<Option<u32>, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .filter(|n| *n <= u64::from(i32::MAX.unsigned_abs()))
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    format!("field {name}: expected an integer from 0 to 2147483647, got {value}")
                }),
        }
    };
    let level = int32("level")?.ok_or("field level is missing")?;
    let round = int32("round")?;
    let hash = match fields.get("hash") {
        Some(Value::String(text)) => hex::decode(text)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .ok_or("field hash: expected 64 hex digits (BLAKE2b-256 of the signed bytes)")?,
        Some(_) => return Err("field hash: expected a string of 64 hex digits".into()),
        None => return Err("field hash is missing".into()),
    };
    let signature = match fields.get("signature") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            Signature::from_base58_for(text, key.curve())
                .map_err(|e| format!("field signature: {e}"))?,
        ),
        Some(_) => return Err("field signature: expected a base58 signature string".into()),
    };
    Ok(Mark {
        height: Height { level, round },
        digest: Some(hash),
        signature,
    })
}
