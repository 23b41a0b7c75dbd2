//! What the `watermark` commands print: JSON under `--json`, a table otherwise.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use tezos_keys::high_watermark::{Height, KeyMarks, MarkKind};
use tezos_keys::{ChainId, PublicKeyHash};

use super::octez;
use crate::commands::Output;
use crate::text::Escaped;

/// `watermark init`: `{"dir"}`.
#[derive(Serialize)]
pub struct Initialised {
    dir: String,
    #[serde(skip)]
    mode: u32,
}

impl Initialised {
    /// The directory and its mode.
    pub fn new(dir: &Path, mode: u32) -> Self {
        Self {
            dir: dir.display().to_string(),
            mode,
        }
    }
}

impl fmt::Display for Initialised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "double-signing records in {} (mode {:04o})",
            self.dir, self.mode
        )
    }
}

impl Output for Initialised {}

/// A height: `{"level","round"}` (`round` null for a whole level).
#[derive(Clone, Copy, Serialize)]
pub struct HeightView {
    level: u32,
    round: Option<u32>,
}

impl From<Height> for HeightView {
    fn from(h: Height) -> Self {
        Self {
            level: h.level,
            round: h.round,
        }
    }
}

impl fmt::Display for HeightView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.round {
            Some(round) => write!(f, "{} round {round}", self.level),
            None => write!(f, "{} (whole level)", self.level),
        }
    }
}

/// What `import` did with one mark.
#[derive(Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// No record for this chain and kind: the imported one now is.
    Created,
    /// The record was below: raised.
    Raised {
        /// The record before.
        from: HeightView,
    },
    /// The record was at or above: kept as it was.
    Kept {
        /// The record, unchanged.
        at: HeightView,
    },
}

/// One imported mark.
#[derive(Serialize)]
pub struct ImportRow {
    file: &'static str,
    key: String,
    chain: String,
    kind: &'static str,
    level: u32,
    round: Option<u32>,
    /// Whether octez-signer kept the signature (then the very same bytes get it back).
    signature: bool,
    #[serde(flatten)]
    action: Action,
}

impl ImportRow {
    /// The row for `mark`, read from `file`.
    pub fn new(file: &'static str, mark: &octez::Imported, action: Action) -> Self {
        Self {
            file,
            key: mark.key.to_string(),
            chain: mark.chain.to_string(),
            kind: mark.kind.name(),
            level: mark.mark.height.level,
            round: mark.mark.height.round,
            signature: mark.mark.signature.is_some(),
            action,
        }
    }
}

/// A key the files hold that was not imported.
#[derive(Serialize)]
pub struct SkippedView {
    file: &'static str,
    key: String,
    reason: String,
}

/// `watermark import`: `{"from","dir","files","marks","skipped"}`.
#[derive(Serialize)]
pub struct Imported {
    from: &'static str,
    dir: String,
    files: Vec<&'static str>,
    marks: Vec<ImportRow>,
    skipped: Vec<SkippedView>,
}

impl Imported {
    /// The output of an import from octez-signer's `dir`.
    pub fn new(
        dir: &Path,
        files: Vec<&'static str>,
        marks: Vec<ImportRow>,
        skipped: Vec<octez::Skipped>,
    ) -> Self {
        Self {
            from: "octez-signer",
            dir: dir.display().to_string(),
            files,
            marks,
            skipped: skipped
                .into_iter()
                .map(|s| SkippedView {
                    file: s.file,
                    key: s.key,
                    reason: s.reason,
                })
                .collect(),
        }
    }
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "from octez-signer {} ({})",
            Escaped(&self.dir),
            self.files.join(", ")
        )?;
        writeln!(
            f,
            "{:<36}  {:<15}  {:<14}  {:<22}  {:<9}  result",
            "key", "chain", "kind", "level", "recorded"
        )?;
        for row in &self.marks {
            let height = HeightView {
                level: row.level,
                round: row.round,
            };
            let result = match &row.action {
                Action::Created => "created".to_owned(),
                Action::Raised { from } => format!("raised from {from}"),
                Action::Kept { at } => format!("kept: already at {at}"),
            };
            writeln!(
                f,
                "{:<36}  {:<15}  {:<14}  {:<22}  {:<9}  {result}",
                row.key,
                row.chain,
                row.kind,
                height.to_string(),
                if row.signature { "signature" } else { "floor" },
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped {} in {}: {}", s.key, s.file, Escaped(&s.reason))?;
        }
        let changed = self
            .marks
            .iter()
            .filter(|r| !matches!(r.action, Action::Kept { .. }))
            .count();
        write!(
            f,
            "{changed} of {} records created or raised; none lowered",
            self.marks.len()
        )
    }
}

impl Output for Imported {}

/// `watermark set`: `{"label","key","chain","kind","level","round","previous"}`.
#[derive(Serialize)]
pub struct SetFloor {
    label: Option<String>,
    key: String,
    chain: String,
    kind: &'static str,
    level: u32,
    round: Option<u32>,
    previous: Option<HeightView>,
}

impl SetFloor {
    /// The floor set, and the record it replaced.
    pub fn new(
        label: Option<String>,
        key: PublicKeyHash,
        chain: ChainId,
        kind: MarkKind,
        height: Height,
        previous: Option<Height>,
    ) -> Self {
        Self {
            label,
            key: key.to_string(),
            chain: chain.to_string(),
            kind: kind.name(),
            level: height.level,
            round: height.round,
            previous: previous.map(HeightView::from),
        }
    }
}

impl fmt::Display for SetFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let height = HeightView {
            level: self.level,
            round: self.round,
        };
        write!(
            f,
            "{} {} on {}: floor at level {height}",
            self.key, self.kind, self.chain
        )?;
        match &self.previous {
            Some(previous) => write!(f, " (was {previous})"),
            None => write!(f, " (no record before)"),
        }
    }
}

impl Output for SetFloor {}

/// One mark of `watermark show`.
#[derive(Serialize)]
pub struct MarkView {
    chain: String,
    kind: &'static str,
    level: u32,
    round: Option<u32>,
    /// Whether a signature is recorded (then the very same bytes get it back); `false` for a
    /// floor, which refuses its own height too.
    signature: bool,
}

/// One key of `watermark show`.
#[derive(Serialize)]
pub struct KeyRecords {
    label: Option<String>,
    key: String,
    marks: Vec<MarkView>,
}

impl KeyRecords {
    /// The records of `key`.
    pub fn new(label: Option<String>, key: PublicKeyHash, marks: &KeyMarks) -> Self {
        Self {
            label,
            key: key.to_string(),
            marks: marks
                .iter()
                .map(|((chain, kind), mark)| MarkView {
                    chain: chain.to_string(),
                    kind: kind.name(),
                    level: mark.height.level,
                    round: mark.height.round,
                    signature: mark.signature.is_some(),
                })
                .collect(),
        }
    }
}

/// `watermark show`: `{"keys": [{"label","key","marks": [{"chain","kind","level","round",
/// "signature"}]}]}`.
#[derive(Serialize)]
pub struct Records(#[serde(serialize_with = "keys")] pub Vec<KeyRecords>);

fn keys<S: serde::Serializer>(keys: &[KeyRecords], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("keys", keys)?;
    map.end()
}

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "no signing key on the token");
        }
        write!(
            f,
            "{:<36}  {:<15}  {:<14}  {:<22}  recorded",
            "key", "chain", "kind", "level"
        )?;
        for key in &self.0 {
            let name = match &key.label {
                Some(label) => format!("{} ({})", key.key, Escaped(label)),
                None => key.key.clone(),
            };
            if key.marks.is_empty() {
                write!(f, "\n{name:<36}  nothing signed yet")?;
            }
            for m in &key.marks {
                let height = HeightView {
                    level: m.level,
                    round: m.round,
                };
                write!(
                    f,
                    "\n{name:<36}  {:<15}  {:<14}  {:<22}  {}",
                    m.chain,
                    m.kind,
                    height.to_string(),
                    if m.signature { "signature" } else { "floor" }
                )?;
            }
        }
        Ok(())
    }
}

impl Output for Records {}
