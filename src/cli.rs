//! The command line: global arguments and one subcommand per command group (clap types only).

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use cryptoki_ops::{Curve, KeySelector, PinSource};
use secrecy::SecretString;

mod serve;
mod watermark;

pub use serve::ServeArgs;
pub use watermark::{ImportSource, WatermarkCommand};

/// Tezos keys in an HSM: generate, show, back up, share, sign, verify.
#[derive(Parser)]
#[command(name = "tezos-hsm", version, about)]
pub struct Cli {
    /// Arguments every command takes.
    #[command(flatten)]
    pub globals: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Arguments every command takes (before or after the command's name).
#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// PKCS#11 module to use (AWS CloudHSM: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so). Without
    /// it, a local SoftHSM2 development store is used.
    #[arg(long, env = "PKCS11_MODULE", global = true)]
    pub module: Option<PathBuf>,
    /// Token label (or serial:XXXX, slot:N). Default: the first token, or `tezos-hsm` in the
    /// local store.
    #[arg(long, env = "TEZOS_HSM_TOKEN", global = true)]
    pub token: Option<String>,
    /// Where the user PIN comes from: env:VAR, file:PATH or cmd:COMMAND. Default: the
    /// environment variable TEZOS_HSM_PIN (CloudHSM: `<crypto user>:<password>`).
    #[arg(long, global = true, value_parser = PinSourceParser, allow_hyphen_values = true)]
    pub pin: Option<PinSource>,
    /// Where the security officer's PIN comes from (for trusted wrapping keys and token init).
    #[arg(long, global = true, value_parser = PinSourceParser, allow_hyphen_values = true)]
    pub so_pin: Option<PinSource>,
    /// Where an AWS CloudHSM admin's credentials come from (`<admin>:<password>`; env:, file:,
    /// cmd:), to mark a wrapping key trusted with cloudhsm-cli (`wrapkey ... --trusted` on
    /// CloudHSM). Default: --so-pin.
    #[arg(long, global = true, value_parser = PinSourceParser, allow_hyphen_values = true)]
    pub admin_pin: Option<PinSource>,
    /// The CloudHSM cluster cloudhsm-cli acts on (`--cluster-id`), needed once cloudhsm-cli is
    /// configured for several clusters.
    #[arg(
        long,
        env = "TEZOS_HSM_CLOUDHSM_CLUSTER_ID",
        global = true,
        value_name = "CLUSTER_ID"
    )]
    pub cluster_id: Option<String>,
    /// Allow logging in as the CloudHSM crypto user `kmsuser`, which AWS KMS uses for a custom
    /// key store and whose password KMS rotates on every connect (refused by default).
    #[arg(long, global = true)]
    pub allow_kmsuser: bool,
    /// Print one JSON value on stdout (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Directory of the double-signing (high-watermark) records. Default:
    /// TEZOS_HSM_HOME/watermarks.
    #[arg(long, env = "TEZOS_HSM_WATERMARK_DIR", global = true)]
    pub watermark_dir: Option<PathBuf>,
    /// Keep the double-signing records in PostgreSQL instead (shared by several signers):
    /// postgres://USER@HOST:PORT/DATABASE, the password from PGPASSWORD (or in the URL, given
    /// through the environment variable, never on a command line). Default: --watermark-dir.
    #[arg(long, env = "TEZOS_HSM_WATERMARK_DB", global = true, value_name = "URL",
          hide_env_values = true, value_parser = parse_secret)]
    pub watermark_db: Option<SecretString>,
    /// Path of AWS's cloudhsm-cli, for `user` and `key share` (default /opt/cloudhsm/bin/cloudhsm-cli).
    #[arg(long, global = true)]
    pub cloudhsm_cli: Option<PathBuf>,
    /// Seconds a cloudhsm-cli command may run before it is stopped (default 30).
    #[arg(long, env = "TEZOS_HSM_CLOUDHSM_CLI_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub cloudhsm_cli_timeout: Option<u64>,
    /// Seconds a cmd: PIN source may run before it is stopped with everything it started
    /// (default 30).
    #[arg(long, env = "TEZOS_HSM_PIN_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pin_timeout: Option<u64>,
}

/// Whether `--json` is on the command line, for reporting an argument error the parser gave
/// before it could say.
pub fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// Parses a value that may hold a secret (a database URL with its password).
fn parse_secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// Parses `--pin` and `--so-pin`: where a PIN comes from, never a PIN. A value that is not a
/// source may be the PIN itself, so the error says which forms are accepted and never repeats it.
#[derive(Clone)]
pub(crate) struct PinSourceParser;

impl TypedValueParser for PinSourceParser {
    type Value = PinSource;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<PinSource, clap::Error> {
        value.to_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
            let option = arg
                .and_then(clap::Arg::get_long)
                .map_or_else(|| "the PIN option".to_string(), |long| format!("--{long}"));
            clap::Error::raw(
                ErrorKind::InvalidValue,
                format!(
                    "{option} takes where the PIN comes from, not the PIN itself: env:VAR, \
                     file:PATH or cmd:COMMAND (the value given is not repeated here)\n"
                ),
            )
            .with_cmd(cmd)
        })
    }
}

/// The command groups.
#[derive(Subcommand)]
pub enum Command {
    /// Tokens: create one in the local store, or show one.
    #[command(subcommand)]
    Token(TokenCommand),
    /// EC signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// AES-256 wrapping keys (for backups and a second HSM).
    #[command(subcommand)]
    Wrapkey(WrapkeyCommand),
    /// Sign a Tezos payload (hex, watermark byte included) with key LABEL.
    Sign(SignArgs),
    /// Verify a Tezos signature: public key (sppk/p2pk/edpk), payload hex, signature.
    Verify(VerifyArgs),
    /// Generate a secp256k1 and a P-256 key, show their addresses, sign and verify with each.
    Demo,
    /// Several tokens (HSMs) of one module together.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// HSM users (AWS CloudHSM only, through cloudhsm-cli; credentials from --pin).
    #[command(subcommand)]
    User(UserCommand),
    /// The double-signing guard's records (--watermark-dir).
    #[command(subcommand)]
    Watermark(WatermarkCommand),
    /// Serve keys of the token to Octez bakers and wallets over HTTP (an Octez remote signer).
    Serve(ServeArgs),
}

/// `user ...`
#[derive(Subcommand)]
pub enum UserCommand {
    /// List the HSM's users and their roles.
    List,
    /// Create a crypto user, e.g. the remote signer's (needs an admin's --pin user:password).
    Create {
        /// User name (at most 31 letters, digits or _).
        #[arg(long)]
        username: String,
        /// File holding the new user's password (mode 0600).
        #[arg(long)]
        password_file: PathBuf,
    },
}

/// `cluster ...`
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Check that every token holds the same keys: per key label, present or missing on each
    /// token, same public key or not, attributes that differ; wrapping keys' check values.
    /// Exit code 0 only when everything is consistent.
    Check {
        /// Token labels, comma-separated (at least 2; on AWS CloudHSM one cluster may be checked
        /// alone, for coverage), e.g. --tokens tezos-hsm,second.
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<String>,
    },
    /// The customer CA that signs the cluster's CSR (AWS CloudHSM initialization).
    #[command(subcommand)]
    Ca(crate::commands::cluster_init::CaCommand),
    /// The cluster's certificate signing request: sign it with the customer CA.
    #[command(subcommand)]
    Csr(crate::commands::cluster_init::CsrCommand),
    /// The CloudHSM client's trust anchor (customerCA.crt).
    #[command(subcommand)]
    TrustAnchor(crate::commands::cluster_init::TrustAnchorCommand),
    /// Verify the HSM's identity before signing its CSR: both certificate chains (AWS and the
    /// manufacturer) to the HSM certificate, and that the CSR carries the HSM's key. Exit code 0
    /// only when every link holds.
    VerifyIdentity(crate::commands::cluster_init::VerifyIdentityArgs),
}

/// `token ...`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token in the local store (a second "HSM" to try replication on).
    Init {
        /// Token label.
        #[arg(long)]
        label: String,
    },
    /// Show the token: label, model, serial, sessions, mechanisms.
    Info,
}

/// `key ...`
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Share a key with another crypto user, e.g. the remote signer (CloudHSM only; run as the
    /// key's owner).
    Share(ShareArgs),
    /// Stop sharing a key with a user (CloudHSM only).
    Unshare(UnshareArgs),
    /// Generate an EC key pair.
    Generate {
        /// secp256k1 (tz2), p256 (tz3) or ed25519 (tz1).
        #[arg(long)]
        curve: Curve,
        /// Label of both halves.
        #[arg(long)]
        label: String,
        /// Make the private key extractable under a trusted wrapping key, for backups.
        #[arg(long)]
        backupable: bool,
    },
    /// List the EC key pairs.
    List,
    /// Show a key: public key and Tezos address.
    Show {
        /// Label (or id:HEX).
        label: KeySelector,
    },
    /// Delete a key pair.
    Delete {
        /// Label (or id:HEX).
        label: KeySelector,
    },
    /// Write a backup of a backup-able key, wrapped under a trusted wrapping key, to a new file
    /// (JSON, mode 0600; never overwrites).
    Backup(BackupArgs),
    /// Restore a key from a backup file onto this token, which must hold the same wrapping key.
    Restore(RestoreArgs),
    /// Copy keys from this token (--token) to another token of the module (--to), wrapped under
    /// a wrapping key both tokens hold.
    Replicate(ReplicateArgs),
    /// DANGEROUS, opt-in: export a backup-able key as a software secret key (spsk/p2sk) for a
    /// hot wallet. This defeats the HSM: the key can then be copied and used anywhere, forever.
    ExportHotWallet(ExportArgs),
}

/// `key share`.
#[derive(Args)]
pub struct ShareArgs {
    /// Key label, or CloudHSM key reference 0x...
    pub key: String,
    /// User to share it with.
    #[arg(long)]
    pub user: String,
}

/// `key unshare`.
#[derive(Args)]
pub struct UnshareArgs {
    /// Key label, or CloudHSM key reference 0x...
    pub key: String,
    /// User to stop sharing it with.
    #[arg(long)]
    pub user: String,
}

/// `key backup`.
#[derive(Args)]
pub struct BackupArgs {
    /// Label (or id:HEX) of the key.
    pub label: KeySelector,
    /// The wrapping key (label or id:HEX); must be trusted and also be on the restoring token.
    #[arg(long)]
    pub wrap_key: KeySelector,
    /// The backup file to create.
    #[arg(long)]
    pub out: PathBuf,
}

/// `key restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Restore under this label instead of the recorded one.
    #[arg(long)]
    pub label: Option<String>,
    /// Use this wrapping key instead of the one with the recorded label (same check value).
    #[arg(long)]
    pub wrap_key: Option<KeySelector>,
    /// Make the restored key non-extractable (it can then never be backed up again).
    #[arg(long)]
    pub not_backupable: bool,
    /// Give the restored key a fresh random CKA_ID instead of the recorded one: needed for a
    /// copy on a token that still holds the original (or another key with that id).
    #[arg(long)]
    pub new_id: bool,
}

/// `key replicate`.
#[derive(Args)]
pub struct ReplicateArgs {
    /// The target token's label.
    #[arg(long)]
    pub to: String,
    /// The key to copy.
    #[arg(long, conflicts_with = "prefix", required_unless_present = "prefix")]
    pub label: Option<String>,
    /// Copy every key whose label starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The wrapping key (label or id:HEX on this token; found by label on the target).
    #[arg(long)]
    pub wrap_key: KeySelector,
}

/// `key export-hot-wallet`.
#[derive(Args)]
pub struct ExportArgs {
    /// Label (or id:HEX) of the key.
    pub label: KeySelector,
    /// The trusted wrapping key (label or id:HEX) whose value you hold.
    #[arg(long)]
    pub wrap_key: KeySelector,
    /// File holding that wrapping key's value as 64 hex characters (from its key ceremony).
    #[arg(long)]
    pub wrap_key_value_file: PathBuf,
    /// The file to create with the secret key (mode 0600; never overwrites).
    #[arg(long)]
    pub out: PathBuf,
    /// Required: you accept that the key will no longer be protected by the HSM.
    #[arg(long = "i-understand-this-defeats-the-hsm")]
    pub consent: bool,
}

/// `wrapkey ...`
#[derive(Subcommand)]
pub enum WrapkeyCommand {
    /// Generate an AES-256 wrapping key on the token.
    Generate {
        /// Label.
        #[arg(long)]
        label: String,
        /// Mark it trusted, so it can wrap backup-able keys: on AWS CloudHSM the crypto user
        /// (--pin) creates it and an admin (--admin-pin) marks it trusted through cloudhsm-cli;
        /// elsewhere the security officer (--so-pin) creates it trusted.
        #[arg(long)]
        trusted: bool,
        /// CloudHSM: crypto users to share the trusted key with (comma-separated).
        #[arg(long, value_delimiter = ',', requires = "trusted")]
        share_with: Vec<String>,
    },
    /// Import an AES-256 wrapping key of known value (64 hex characters in a file), e.g. from a
    /// key ceremony that puts the same key on two HSMs.
    Import {
        /// Label.
        #[arg(long)]
        label: String,
        /// File holding the key as 64 hex characters (keep it 0600; delete it afterwards).
        #[arg(long)]
        value_file: PathBuf,
        /// Mark it trusted (as for `wrapkey generate --trusted`).
        #[arg(long)]
        trusted: bool,
        /// CloudHSM: crypto users to share the trusted key with (comma-separated).
        #[arg(long, value_delimiter = ',', requires = "trusted")]
        share_with: Vec<String>,
    },
}

/// `sign`.
#[derive(Args)]
pub struct SignArgs {
    /// Key label (or id:HEX).
    pub label: KeySelector,
    /// Payload as hex, watermark byte included (03... operation, 11/12/13... consensus).
    pub payload: String,
    /// Watermarks this request may carry, e.g. 0x11,0x12,0x13 for a baking key. Default: all.
    #[arg(long)]
    pub allow: Option<String>,
    /// Skip the software verification of the HSM's signature.
    #[arg(long)]
    pub no_verify: bool,
}

/// `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Public key, base58 (sppk..., p2pk..., edpk...).
    pub public_key: String,
    /// Payload as hex, watermark byte included.
    pub payload: String,
    /// Signature, base58 (spsig1..., p2sig..., edsig..., or generic sig...).
    pub signature: String,
}
