//! `key ...`: EC signing keys. Generate, list, show and delete here; backup and restore,
//! replication, hot-wallet export and CloudHSM sharing in the submodules.

mod backup;
mod export;
mod owner;
mod replicate;
mod share;

pub use export::read_key_value;

use std::fmt;

use cryptoki_ops::{EcKeySpec, KeyClass, KeyPairInfo, KeySelector};
use serde::Serialize;
use tezos_keys::high_watermark::FileStore;
use tezos_keys::tezos_public_key;

use super::user::Users;
use super::{Output, Rendered};
use crate::cli::{GlobalArgs, KeyCommand};
use crate::context::{Context, Session};
use crate::error::CliError;
use crate::text::Escaped;

/// Runs `key ...`.
pub fn run(globals: &GlobalArgs, command: KeyCommand) -> Result<Rendered, CliError> {
    let json = globals.json;
    match command {
        // Not PKCS#11 operations: they go to the CloudHSM CLI and open no token.
        KeyCommand::Share(args) => Rendered::new(
            &share::run(&Users::new(globals), &args.key, &args.user, true)?,
            json,
        ),
        KeyCommand::Unshare(args) => Rendered::new(
            &share::run(&Users::new(globals), &args.key, &args.user, false)?,
            json,
        ),
        KeyCommand::Generate {
            curve,
            label,
            backupable,
        } => {
            let (ctx, hsm) = open(globals)?;
            // A new signing key gets its double-signing records' directory now, so that
            // `sign` never has to create it.
            FileStore::create(&ctx.watermark_dir)?;
            let mut spec = EcKeySpec::new(curve, label);
            spec.backupable = backupable;
            let pair = hsm.generate_ec_key(&spec)?;
            Rendered::new(&KeyView::new(&pair, false)?, json)
        }
        KeyCommand::List => {
            let (_, hsm) = open(globals)?;
            let mut keys = Vec::new();
            for key in hsm.list_keys()? {
                if key.class == KeyClass::Private && key.curve.is_some() {
                    let pair = hsm.key_pair(&KeySelector::Id(key.id))?;
                    keys.push(KeyView::new(&pair, false)?);
                }
            }
            Rendered::new(&KeyList(keys), json)
        }
        KeyCommand::Show { label } => {
            let (_, hsm) = open(globals)?;
            let pair = hsm.key_pair(&label)?;
            Rendered::new(&KeyDetails(KeyView::new(&pair, true)?), json)
        }
        KeyCommand::Delete { label } => {
            let (_, hsm) = open(globals)?;
            let deleted = hsm.delete_key(&label)?;
            let key = label.to_string();
            Rendered::new(&Deleted { deleted, key }, json)
        }
        KeyCommand::Backup(args) => {
            let (_, hsm) = open(globals)?;
            owner::require(
                globals,
                &hsm,
                &owner::labels_of(&hsm, &args.label)?,
                "a backup",
            )?;
            Rendered::new(&backup::backup(&hsm, args)?, json)
        }
        KeyCommand::Restore(args) => {
            let (ctx, hsm) = open(globals)?;
            FileStore::create(&ctx.watermark_dir)?; // as for `key generate`
            Rendered::new(&backup::restore(&hsm, args)?, json)
        }
        KeyCommand::Replicate(args) => {
            let (ctx, hsm) = open(globals)?;
            let labels =
                owner::labels_matching(&hsm, args.label.as_deref(), args.prefix.as_deref())?;
            owner::require(globals, &hsm, &labels, "a replication")?;
            Rendered::new(&replicate::run(&ctx, &hsm, args)?, json)
        }
        KeyCommand::ExportHotWallet(args) => {
            let (_, hsm) = open(globals)?;
            owner::require(
                globals,
                &hsm,
                &owner::labels_of(&hsm, &args.label)?,
                "an export",
            )?;
            Rendered::new(&export::run(&hsm, args)?, json)
        }
    }
}

/// The context and its current token, logged in as the user.
fn open(globals: &GlobalArgs) -> Result<(Context, Session), CliError> {
    let ctx = Context::new(globals)?;
    let hsm = ctx.open()?;
    Ok((ctx, hsm))
}

/// A key pair: `{"label","id","curve","public_key","address"}`, plus `"extractable"` and
/// `"sensitive"` when asked for details. Displays as one line.
#[derive(Serialize)]
pub struct KeyView {
    label: String,
    id: String,
    curve: &'static str,
    public_key: String,
    address: String,
    /// With details only (`null` when the token does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    extractable: Option<Option<bool>>,
    /// With details only (`null` when the token does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitive: Option<Option<bool>>,
}

impl KeyView {
    /// The view of `pair`, with `extractable` and `sensitive` when `details`.
    pub fn new(pair: &KeyPairInfo, details: bool) -> Result<Self, CliError> {
        let public_key = tezos_public_key(&pair.public_key)?;
        Ok(Self {
            label: pair.private.label.clone(),
            id: pair.private.id_hex(),
            curve: pair.public_key.curve().name(),
            public_key: public_key.to_string(),
            address: public_key.hash().to_string(),
            extractable: details.then_some(pair.private.extractable),
            sensitive: details.then_some(pair.private.sensitive),
        })
    }
}

impl fmt::Display for KeyView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<20} {:<9} {}  {}  id {}",
            Escaped(&self.label),
            self.curve,
            self.address,
            self.public_key,
            self.id
        )
    }
}

impl Output for KeyView {}

/// `key list`: an array of key pairs, one line each.
#[derive(Serialize)]
#[serde(transparent)]
pub struct KeyList(Vec<KeyView>);

impl fmt::Display for KeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(
                "no keys; create one with: tezos-hsm key generate --curve secp256k1 --label NAME",
            );
        }
        let lines: Vec<String> = self.0.iter().map(KeyView::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl Output for KeyList {}

/// `key show` (and `key restore`): a key pair with details, one field per line.
#[derive(Serialize)]
#[serde(transparent)]
pub struct KeyDetails(KeyView);

impl fmt::Display for KeyDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.0;
        write!(
            f,
            "label       {}\nid          {}\ncurve       {}\npublic key  {}\naddress     {}\nextractable {}\nsensitive   {}",
            Escaped(&k.label),
            k.id,
            k.curve,
            k.public_key,
            k.address,
            flag(k.extractable.flatten()),
            flag(k.sensitive.flatten())
        )
    }
}

impl Output for KeyDetails {}

/// A yes/no attribute as JSON writes it: `true`, `false`, or `null` when unknown.
fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    }
}

/// `key delete`: `{"deleted": N}`.
#[derive(Serialize)]
pub struct Deleted {
    deleted: usize,
    #[serde(skip)]
    key: String,
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted {} objects of key {}",
            self.deleted,
            Escaped(&self.key)
        )
    }
}

impl Output for Deleted {}
