//! `watermark ...`: the double-signing guard's records.
//!
//! - `init`: the directory of the file store, created for a new signer. `sign` only opens it
//!   ([`FileStore::open`]), so a missing directory (an unmounted volume, a typo, another
//!   `HOME`) stops signing instead of starting from an empty record.
//! - `import --from octez-signer DIR`: raises the records to at least octez-signer's
//!   ([`octez`]), so a baker moving here has no window where a level it already signed
//!   elsewhere could be signed again.
//! - `set`: a floor for one key, chain and kind.
//! - `show`: the records, of one key or of every key on the token.
//!
//! `import` and `set` only ever raise a record ([`raises`]), each key under its store lock, so
//! they may run while `sign` or `serve` sign with the same store: a concurrent signature is
//! either seen (and kept when higher) or refused after the change.

mod octez;
mod view;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cryptoki_ops::{KeyClass, KeySelector};
use tezos_keys::high_watermark::{FileStore, Height, Mark, MarkKind, WatermarkStore};
use tezos_keys::{tezos_public_key, ChainId, PublicKeyHash};

use super::Rendered;
use crate::cli::{GlobalArgs, ImportSource, WatermarkCommand};
use crate::context::{open_watermark_store, watermark_dir, Context};
use crate::error::CliError;
use view::{Action, ImportRow, Imported, Initialised, KeyRecords, Records, SetFloor};

/// Runs `watermark ...`. Opens a token only to find a key by label, or to list its keys.
pub fn run(globals: &GlobalArgs, command: WatermarkCommand) -> Result<Rendered, CliError> {
    let json = globals.json;
    match command {
        WatermarkCommand::Init => Rendered::new(&init(globals)?, json),
        WatermarkCommand::Import {
            from: ImportSource::OctezSigner,
            dir,
        } => Rendered::new(&import(globals, &dir)?, json),
        WatermarkCommand::Set {
            key,
            chain,
            kind,
            level,
            round,
        } => {
            let kind = MarkKind::from_name(kind.trim()).ok_or_else(|| {
                CliError::new(
                    "invalid_input",
                    "--kind must be block, preattestation or attestation",
                )
            })?;
            let height = Height { level, round };
            Rendered::new(&set(globals, &key, chain, kind, height)?, json)
        }
        WatermarkCommand::Show { key } => Rendered::new(&show(globals, key.as_deref())?, json),
    }
}

fn init(globals: &GlobalArgs) -> Result<Initialised, CliError> {
    let dir = watermark_dir(globals)?;
    // Created 0700 if missing; an existing directory is checked, never changed.
    FileStore::create(&dir)?;
    let mode = std::fs::metadata(&dir)
        .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777)
        .map_err(|e| CliError::new("io", format!("cannot inspect {}: {e}", dir.display())))?;
    Ok(Initialised::new(&dir, mode))
}

/// The store of the records: PostgreSQL with `--watermark-db`, else the file store of
/// `--watermark-dir`, created (mode 0700) for the commands that set up a signer (`import`,
/// `set`); `show` only opens it.
fn open_store(globals: &GlobalArgs, create: bool) -> Result<Arc<dyn WatermarkStore>, CliError> {
    let dir = watermark_dir(globals)?;
    if create && globals.watermark_db.is_none() {
        FileStore::create(&dir)?;
    }
    open_watermark_store(globals.watermark_db.as_ref(), &dir)
}

/// `--key`: an address is used as it is (no token opened); anything else is a key label (or
/// `id:HEX`) on the token. Returns the label, when known, and the address.
fn resolve_key(
    globals: &GlobalArgs,
    text: &str,
) -> Result<(Option<String>, PublicKeyHash), CliError> {
    let text = text.trim();
    if let Ok(address) = text.parse::<PublicKeyHash>() {
        return Ok((None, address));
    }
    if text.len() == 36
        && ["tz1", "tz2", "tz3", "tz4", "tz5", "KT1"]
            .iter()
            .any(|p| text.starts_with(p))
    {
        // Looks like an address but is not a valid one: say why, rather than look for a label.
        text.parse::<PublicKeyHash>()?;
    }
    let selector: KeySelector = text.parse()?;
    let ctx = Context::new(globals)?;
    let hsm = ctx.open()?;
    let pair = hsm.key_pair(&selector)?;
    let address = tezos_public_key(&pair.public_key)?.hash();
    Ok((Some(pair.private.label), address))
}

/// Whether `new` may replace `current`: it is strictly above it, compared as the guard
/// compares (by level and round, by level alone when either has no round). The one rule
/// `import` and `set` follow, the same every store enforces on save: a record never goes down,
/// and a height already recorded is never rewritten (its digest and signature stay).
fn raises(new: &Mark, current: &Mark) -> bool {
    new.height.compare(&current.height) == core::cmp::Ordering::Greater
}

fn import(globals: &GlobalArgs, dir: &Path) -> Result<Imported, CliError> {
    // Everything is read and checked before anything is written.
    let read = octez::read(dir)?;
    let store = open_store(globals, true)?;
    let mut by_key: BTreeMap<String, Vec<&octez::Imported>> = BTreeMap::new();
    for mark in &read.marks {
        by_key.entry(mark.key.to_string()).or_default().push(mark);
    }
    let mut rows = Vec::new();
    for marks in by_key.values() {
        let Some(key) = marks.first().map(|m| m.key) else {
            continue;
        };
        // Under the key's lock: a signature made meanwhile is seen here, or made after.
        let mut record = store.lock(&key)?;
        let mut current = record.load()?;
        let mut changed = false;
        for imported in marks {
            let slot = (imported.chain, imported.kind);
            let action = match current.get(&slot) {
                None => Action::Created,
                Some(mark) if raises(&imported.mark, mark) => Action::Raised {
                    from: view::HeightView::from(mark.height),
                },
                Some(mark) => Action::Kept {
                    at: view::HeightView::from(mark.height),
                },
            };
            if !matches!(action, Action::Kept { .. }) {
                current.insert(slot, imported.mark);
                changed = true;
            }
            rows.push(ImportRow::new(imported.file, imported, action));
        }
        if changed {
            record.save(&current)?;
        }
    }
    Ok(Imported::new(dir, read.files, rows, read.skipped))
}

fn set(
    globals: &GlobalArgs,
    key_text: &str,
    chain: ChainId,
    kind: MarkKind,
    height: Height,
) -> Result<SetFloor, CliError> {
    let (label, key) = resolve_key(globals, key_text)?;
    let store = open_store(globals, true)?;
    let floor = Mark::floor(height);
    let mut record = store.lock(&key)?;
    let mut marks = record.load()?;
    let previous = marks.get(&(chain, kind)).copied();
    if let Some(current) = previous.filter(|current| !raises(&floor, current)) {
        return Err(CliError::new(
            "watermark_not_raised",
            format!(
                "the {kind} record of {key} on {chain} is at {}; a floor at {height} would not \
                 raise it, and a record is never lowered (that would reopen a double-signing \
                 window): nothing changed",
                current.height
            ),
        ));
    }
    marks.insert((chain, kind), floor);
    record.save(&marks)?;
    Ok(SetFloor::new(
        label,
        key,
        chain,
        kind,
        height,
        previous.map(|m| m.height),
    ))
}

fn show(globals: &GlobalArgs, key: Option<&str>) -> Result<Records, CliError> {
    let keys = match key {
        Some(text) => vec![resolve_key(globals, text)?],
        None => token_keys(globals)?,
    };
    let store = open_store(globals, false)?;
    let mut out = Vec::new();
    for (label, key) in keys {
        let marks = store.load(&key)?;
        out.push(KeyRecords::new(label, key, &marks));
    }
    Ok(Records(out))
}

/// Every signing key on the token: its label and address.
fn token_keys(globals: &GlobalArgs) -> Result<Vec<(Option<String>, PublicKeyHash)>, CliError> {
    let ctx = Context::new(globals)?;
    let hsm = ctx.open()?;
    let mut keys = Vec::new();
    for key in hsm.list_keys()? {
        if key.class == KeyClass::Private && key.curve.is_some() {
            let pair = hsm.key_pair(&KeySelector::Id(key.id))?;
            let address = tezos_public_key(&pair.public_key)?.hash();
            keys.push((Some(pair.private.label), address));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tezos_keys::{Curve, Signature};

    fn h(level: u32, round: Option<u32>) -> Height {
        Height { level, round }
    }

    #[test]
    fn a_record_only_goes_up() {
        let signed = |height| Mark::signed(height, [1; 32], Signature::new(Curve::P256, [2; 64]));
        let floor = Mark::floor;
        for (new, current, expected) in [
            (floor(h(6, Some(0))), signed(h(5, Some(9))), true),
            (floor(h(5, Some(2))), signed(h(5, Some(1))), true),
            (floor(h(6, None)), signed(h(5, Some(3))), true),
            (floor(h(5, Some(1))), signed(h(5, Some(1))), false), // would lose the signature
            (floor(h(5, Some(0))), signed(h(5, Some(1))), false),
            (floor(h(4, None)), floor(h(5, Some(0))), false),
            (floor(h(5, None)), signed(h(5, Some(3))), false), // same level: never rewritten
            (floor(h(5, Some(9))), floor(h(5, None)), false),
            (signed(h(5, Some(1))), floor(h(5, Some(1))), false),
            (floor(h(5, Some(1))), floor(h(5, Some(1))), false),
        ] {
            assert_eq!(
                raises(&new, &current),
                expected,
                "{} over {}",
                new.height,
                current.height
            );
        }
    }
}
