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
}

impl fmt::Display for Initialised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "double-signing records in {} (mode 0700)", self.dir)
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
            Ok(Initialised {
                dir: dir.display().to_string(),
            })
        }
    }
}
