//! The file of a [`FileStore`](super::FileStore) record: one JSON document per key, described
//! on the type, read strictly and written whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::high_watermark::{GuardError, Height, KeyMarks, Mark, MarkKind};
use crate::{ChainId, PublicKeyHash, Signature};

const FORMAT: &str = "tezos-keys high-watermark v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecord {
    format: String,
    key: String,
    marks: Vec<FileMark>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMark {
    chain: String,
    kind: String,
    level: u32,
    round: Option<u32>,
    /// Absent (or `null`) for a floor set by hand; files written before floors existed always
    /// have it, and are read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    /// Absent (or `null`) for a floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

/// `key`'s record from the bytes of its file `path`, refusing anything but a well-formed record
/// of `key` (see [`FileStore`](super::FileStore)).
pub(super) fn parse(
    key: &PublicKeyHash,
    path: &Path,
    bytes: &[u8],
) -> Result<KeyMarks, GuardError> {
    let corrupt = |reason: String| GuardError::StoreCorrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".to_owned()));
    }
    let record: FileRecord =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a valid record: {e}")))?;
    if record.format != FORMAT {
        return Err(corrupt(format!(
            "format is {:?}, expected {FORMAT:?}",
            record.format
        )));
    }
    if record.key != key.to_string() {
        return Err(corrupt(format!(
            "it belongs to key {}, not {key}",
            record.key
        )));
    }
    let mut marks = KeyMarks::new();
    for (i, m) in record.marks.iter().enumerate() {
        let at = |what: String| corrupt(format!("mark {i}: {what}"));
        let chain: ChainId = m
            .chain
            .parse()
            .map_err(|e| at(format!("chain {:?}: {e}", m.chain)))?;
        let kind = MarkKind::from_name(&m.kind).ok_or_else(|| at(format!("kind {:?}", m.kind)))?;
        let digest = match &m.digest {
            None => None,
            Some(text) => Some(
                hex::decode(text)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or_else(|| at("digest is not 64 hex digits".to_owned()))?,
            ),
        };
        let signature = match &m.signature {
            None => None,
            Some(text) => {
                let signature: Signature =
                    text.parse().map_err(|e| at(format!("signature: {e}")))?;
                if signature.curve() != key.curve() {
                    return Err(at("signature is for another curve than the key".to_owned()));
                }
                Some(signature)
            }
        };
        if digest.is_none() && signature.is_some() {
            return Err(at("a signature without the digest it signed".to_owned()));
        }
        let mark = Mark {
            height: Height {
                level: m.level,
                round: m.round,
            },
            digest,
            signature,
        };
        if marks.insert((chain, kind), mark).is_some() {
            return Err(at(format!("second {kind} mark for chain {chain}")));
        }
    }
    Ok(marks)
}

/// The bytes of the file holding `marks` as `key`'s record.
pub(super) fn render(key: &PublicKeyHash, marks: &KeyMarks) -> Result<Vec<u8>, serde_json::Error> {
    let record = FileRecord {
        format: FORMAT.to_owned(),
        key: key.to_string(),
        marks: marks
            .iter()
            .map(|((chain, kind), mark)| FileMark {
                chain: chain.to_string(),
                kind: kind.name().to_owned(),
                level: mark.height.level,
                round: mark.height.round,
                digest: mark.digest.map(hex::encode),
                signature: mark.signature.map(|s| s.to_string()),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&record)?;
    bytes.push(b'\n');
    Ok(bytes)
}
