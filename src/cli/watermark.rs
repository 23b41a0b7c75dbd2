//! `watermark`: the high-watermark commands' arguments.

use std::path::PathBuf;

use clap::Subcommand;
use tezos_keys::ChainId;

/// `watermark ...`
#[derive(Subcommand)]
pub enum WatermarkCommand {
    /// Create the directory of the double-signing records (mode 0700), for a new signer.
    /// `sign` never creates it: a missing one may be an unmounted volume or a wrong path.
    Init,
    /// Raise the records to at least another signer's, before signing with the keys here.
    /// Stop the other signer first: whatever it signs after the import is not known here.
    Import {
        /// The signer the records come from.
        #[arg(long, value_enum)]
        from: ImportSource,
        /// Its base directory (octez-signer: its -d, by default ~/.tezos-signer).
        dir: PathBuf,
    },
    /// Set a floor: refuse every consensus payload at or below LEVEL (and ROUND) for a key,
    /// chain and kind. Refused if it would not raise the record (a record never goes down).
    Set {
        /// The key: its label on the token, or its address (tz1/tz2/tz3, no token opened).
        #[arg(long)]
        key: String,
        /// The chain id, e.g. NetXdQprcVkpaWU (mainnet).
        #[arg(long)]
        chain: ChainId,
        /// block, preattestation or attestation.
        #[arg(long)]
        kind: String,
        /// The level.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=2_147_483_647))]
        level: u32,
        /// The round; without it the whole level is refused.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=2_147_483_647))]
        round: Option<u32>,
    },
    /// Show the records: of one key (label or address), or of every key on the token.
    Show {
        /// The key: its label on the token, or its address (no token opened).
        #[arg(long)]
        key: Option<String>,
    },
}

/// Where `watermark import` reads records from.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ImportSource {
    /// octez-signer's `*_high_watermarks` files (`--check-high-watermark`).
    OctezSigner,
}
