//! `watermark init`: the directory of the double-signing guard's records, created for a new
//! signer. `sign` only opens it ([`FileStore::open`]), so a missing directory (an unmounted
//! volume, a typo, another `HOME`) stops signing instead of starting from an empty record.

use std::fmt;

use serde::Serialize;
use tezos_keys::high_watermark::FileStore;

use super::Output;
use crate::cli::{GlobalArgs, WatermarkCommand};
use crate::context::watermark_dir;
use crate::error::CliError;

/// `watermark init`: `{"dir"}`.
#[derive(Serialize)]
pub struct Initialised {
    dir: String,
    #[serde(skip)]
    mode: u32,
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

/// Runs `watermark ...`. Opens no token.
pub fn run(globals: &GlobalArgs, command: WatermarkCommand) -> Result<Initialised, CliError> {
    match command {
        WatermarkCommand::Init => {
            let dir = watermark_dir(globals)?;
            // Created 0700 if missing; an existing directory is checked, never changed.
            FileStore::create(&dir)?;
            let mode = std::fs::metadata(&dir)
                .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777)
                .map_err(|e| {
                    CliError::new("io", format!("cannot inspect {}: {e}", dir.display()))
                })?;
            Ok(Initialised {
                dir: dir.display().to_string(),
                mode,
            })
        }
    }
}
