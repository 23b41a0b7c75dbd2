//! `tezos-hsm`: the HSM key-management runbook for Tezos signers, one command per step.
//!
//! With no module configured it works on a local SoftHSM2 development token (see [`home`]);
//! with `--module` (or `PKCS11_MODULE`) it drives that module, e.g. AWS CloudHSM's
//! `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so` with the PIN `<crypto user>:<password>`.

mod home;
mod output;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cryptoki_ops::secrecy::ExposeSecret;
use cryptoki_ops::secrecy::SecretBox;
use cryptoki_ops::{
    Curve, EcKeySpec, Hsm, HsmConfig, KeyClass, KeySelector, ModuleSource, PinSource, Role,
    TokenSelector, WrappingKeySpec,
};
use serde_json::{json, Value};
use tezos_keys::high_watermark::FileStore;
use tezos_keys::runbook::{
    check_consistency, export_hot_wallet, replicate, write_private_file, Backup, HotWalletConsent,
    KeySelection, ReplicationStatus, RestoreOptions,
};
use tezos_keys::{HighWatermark, HsmKey, KeyPolicy};

use crate::home::{Home, DEFAULT_TOKEN};
use crate::output::{consistency_text, key_json, key_line, parse_hex, CliError, ProgressLine};

/// Tezos keys in an HSM: generate, show, back up, share, sign, verify.
#[derive(Parser)]
#[command(name = "tezos-hsm", version, about)]
struct Cli {
    /// PKCS#11 module to use (AWS CloudHSM: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so). Without
    /// it, a local SoftHSM2 development store is used.
    #[arg(long, env = "PKCS11_MODULE", global = true)]
    module: Option<PathBuf>,
    /// Token label (or serial:XXXX, slot:N). Default: the first token, or `tezos-hsm` in the
    /// local store.
    #[arg(long, env = "TEZOS_HSM_TOKEN", global = true)]
    token: Option<String>,
    /// Where the user PIN comes from: env:VAR, file:PATH or cmd:COMMAND. Default: the
    /// environment variable TEZOS_HSM_PIN (CloudHSM: `<crypto user>:<password>`).
    #[arg(long, global = true)]
    pin: Option<PinSource>,
    /// Where the security officer's PIN comes from (for trusted wrapping keys and token init).
    #[arg(long, global = true)]
    so_pin: Option<PinSource>,
    /// Print one JSON value on stdout (errors as JSON on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Directory of the double-signing (high-watermark) records. Default:
    /// TEZOS_HSM_HOME/watermarks.
    #[arg(long, env = "TEZOS_HSM_WATERMARK_DIR", global = true)]
    watermark_dir: Option<PathBuf>,
    /// Path of AWS's cloudhsm-cli, for `user` and `key share` (default /opt/cloudhsm/bin/cloudhsm-cli).
    #[arg(long, global = true)]
    cloudhsm_cli: Option<PathBuf>,
    /// Seconds a cloudhsm-cli command may run before it is stopped (default 30).
    #[arg(long, env = "TEZOS_HSM_CLOUDHSM_CLI_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    cloudhsm_cli_timeout: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Verify {
        /// Public key, base58 (sppk..., p2pk..., edpk...).
        public_key: String,
        /// Payload as hex, watermark byte included.
        payload: String,
        /// Signature, base58 (spsig1..., p2sig..., edsig..., or generic sig...).
        signature: String,
    },
    /// Generate a secp256k1 and a P-256 key, show their addresses, sign and verify with each.
    Demo,
    /// Several tokens (HSMs) of one module together.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// HSM users (AWS CloudHSM only, through cloudhsm-cli; credentials from --pin).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
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

#[derive(Subcommand)]
enum ClusterCommand {
    /// Check that every token holds the same keys: per key label, present or missing on each
    /// token, same public key or not, attributes that differ; wrapping keys' check values.
    /// Exit code 0 only when everything is consistent.
    Check {
        /// Token labels, comma-separated (at least 2), e.g. --tokens tezos-hsm,second.
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token in the local store (a second "HSM" to try replication on).
    Init {
        /// Token label.
        #[arg(long)]
        label: String,
    },
    /// Show the token: label, model, serial, sessions, mechanisms.
    Info,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Share a key with another crypto user, e.g. the remote signer (CloudHSM only; run as the
    /// key's owner).
    Share {
        /// Key label, or CloudHSM key reference 0x...
        key: String,
        /// User to share it with.
        #[arg(long)]
        user: String,
    },
    /// Stop sharing a key with a user (CloudHSM only).
    Unshare {
        /// Key label, or CloudHSM key reference 0x...
        key: String,
        /// User to stop sharing it with.
        #[arg(long)]
        user: String,
    },
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
    Backup {
        /// Label (or id:HEX) of the key.
        label: KeySelector,
        /// The wrapping key (label or id:HEX); must be trusted and also be on the restoring token.
        #[arg(long)]
        wrap_key: KeySelector,
        /// The backup file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a key from a backup file onto this token, which must hold the same wrapping key.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Restore under this label instead of the recorded one.
        #[arg(long)]
        label: Option<String>,
        /// Use this wrapping key instead of the one with the recorded label (same check value).
        #[arg(long)]
        wrap_key: Option<KeySelector>,
        /// Make the restored key non-extractable (it can then never be backed up again).
        #[arg(long)]
        not_backupable: bool,
    },
    /// Copy keys from this token (--token) to another token of the module (--to), wrapped under
    /// a wrapping key both tokens hold.
    Replicate {
        /// The target token's label.
        #[arg(long)]
        to: String,
        /// The key to copy.
        #[arg(long, conflicts_with = "prefix", required_unless_present = "prefix")]
        label: Option<String>,
        /// Copy every key whose label starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// The wrapping key (label or id:HEX on this token; found by label on the target).
        #[arg(long)]
        wrap_key: KeySelector,
    },
    /// DANGEROUS, opt-in: export a backup-able key as a software secret key (spsk/p2sk) for a
    /// hot wallet. This defeats the HSM: the key can then be copied and used anywhere, forever.
    ExportHotWallet {
        /// Label (or id:HEX) of the key.
        label: KeySelector,
        /// The trusted wrapping key (label or id:HEX) whose value you hold.
        #[arg(long)]
        wrap_key: KeySelector,
        /// File holding that wrapping key's value as 64 hex characters (from its key ceremony).
        #[arg(long)]
        wrap_key_value_file: PathBuf,
        /// The file to create with the secret key (mode 0600; never overwrites).
        #[arg(long)]
        out: PathBuf,
        /// Required: you accept that the key will no longer be protected by the HSM.
        #[arg(long = "i-understand-this-defeats-the-hsm")]
        consent: bool,
    },
}

#[derive(Subcommand)]
enum WrapkeyCommand {
    /// Generate an AES-256 wrapping key on the token.
    Generate {
        /// Label.
        #[arg(long)]
        label: String,
        /// Mark it trusted (security officer), so it can wrap backup-able keys.
        #[arg(long)]
        trusted: bool,
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
        /// Mark it trusted (security officer).
        #[arg(long)]
        trusted: bool,
    },
}

#[derive(Args)]
struct SignArgs {
    /// Key label (or id:HEX).
    label: KeySelector,
    /// Payload as hex, watermark byte included (03... operation, 11/12/13... consensus).
    payload: String,
    /// Watermarks this request may carry, e.g. 0x11,0x12,0x13 for a baking key. Default: all.
    #[arg(long)]
    allow: Option<String>,
    /// Skip the software verification of the HSM's signature.
    #[arg(long)]
    no_verify: bool,
}

/// Where commands run: the local development store, or a configured module.
enum Target {
    Local { home: Home, token: String },
    Module { path: PathBuf },
}

struct Context {
    cli_token: Option<String>,
    pin: Option<PinSource>,
    so_pin: Option<PinSource>,
    json: bool,
    target: Target,
    /// Where the double-signing guard keeps its records.
    watermark_dir: PathBuf,
}

impl Context {
    fn new(cli: &Cli) -> Result<Self, CliError> {
        let target = match &cli.module {
            Some(path) => Target::Module { path: path.clone() },
            None => {
                let home = Home::locate()?;
                home.prepare()?;
                Target::Local {
                    home,
                    token: cli
                        .token
                        .clone()
                        .unwrap_or_else(|| DEFAULT_TOKEN.to_string()),
                }
            }
        };
        Ok(Self {
            cli_token: cli.token.clone(),
            pin: cli.pin.clone(),
            so_pin: cli.so_pin.clone(),
            json: cli.json,
            target,
            watermark_dir: match &cli.watermark_dir {
                Some(dir) => dir.clone(),
                None => Home::locate()?.dir().join("watermarks"),
            },
        })
    }

    fn config(&self, role: Role) -> Result<HsmConfig, CliError> {
        self.config_for(None, role)
    }

    /// The configuration for token `other` of the same module (the current token when `None`).
    /// Local store: that token's generated PINs; a module: the same --pin for every token.
    fn config_for(&self, other: Option<&str>, role: Role) -> Result<HsmConfig, CliError> {
        match &self.target {
            Target::Local {
                home,
                token: current,
            } => {
                let token = other.unwrap_or(current);
                let module = home.module()?;
                if token == DEFAULT_TOKEN && home.ensure_token(&module, token)? {
                    eprintln!(
                        "note: created the development token '{token}' in {} (SoftHSM2: keys are files on this disk, not in an HSM)",
                        home.dir().display()
                    );
                }
                let given = if other.is_none() {
                    match role {
                        Role::User => self.pin.clone(),
                        Role::SecurityOfficer => self.so_pin.clone(),
                    }
                } else {
                    None
                };
                let pin = match (given, role) {
                    (Some(pin), _) => pin,
                    (None, Role::User) => home.user_pin(token)?,
                    (None, Role::SecurityOfficer) => home.so_pin(token)?,
                };
                Ok(HsmConfig::new(TokenSelector::Label(token.to_string()), pin)
                    .with_module(ModuleSource::Path(module.path().to_path_buf()))
                    .with_role(role))
            }
            Target::Module { path } => {
                let token = match other.or(self.cli_token.as_deref()) {
                    Some(t) => t.parse()?,
                    None => TokenSelector::First,
                };
                let pin = match role {
                    Role::User => self.pin.clone().unwrap_or_else(|| PinSource::Env("TEZOS_HSM_PIN".into())),
                    Role::SecurityOfficer => self.so_pin.clone().ok_or_else(|| {
                        CliError::new("config", "this needs the security officer's PIN: pass --so-pin env:VAR (or file:, cmd:)")
                    })?,
                };
                Ok(HsmConfig::new(token, pin)
                    .with_module(ModuleSource::Path(path.clone()))
                    .with_role(role))
            }
        }
    }

    fn open(&self) -> Result<Hsm, CliError> {
        Ok(Hsm::open(&self.config(Role::User)?)?)
    }

    /// Token `label` of the same module, logged in as the user.
    fn open_token(&self, label: &str) -> Result<Hsm, CliError> {
        Ok(Hsm::open(&self.config_for(Some(label), Role::User)?)?)
    }

    fn open_as(&self, trusted: bool) -> Result<Hsm, CliError> {
        if trusted {
            Ok(Hsm::open(&self.config(Role::SecurityOfficer)?)?)
        } else {
            self.open()
        }
    }

    /// Prints `value` as JSON, or `text` for people.
    fn print(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(e) => ExitCode::from(e.report(json) as u8),
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Verify {
        public_key,
        payload,
        signature,
    } = &cli.command
    {
        // Pure software: no token needed.
        let bytes = parse_hex("the payload", payload)?;
        let valid = tezos_keys::verify_encoded(public_key, &bytes, signature);
        let ok = match valid {
            Ok(_) => true,
            Err(tezos_keys::Error::VerificationFailed { .. } | tezos_keys::Error::HighS) => false,
            Err(e) => return Err(e.into()),
        };
        if cli.json {
            println!("{}", json!({ "valid": ok }));
        } else {
            println!("{}", if ok { "valid" } else { "INVALID" });
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let users = users::Users {
        module: cli.module.as_ref(),
        credentials: cli
            .pin
            .clone()
            .unwrap_or_else(|| PinSource::Env("TEZOS_HSM_PIN".into())),
        program: cli.cloudhsm_cli.as_ref(),
        timeout: cli.cloudhsm_cli_timeout.map(std::time::Duration::from_secs),
        json: cli.json,
    };
    match &cli.command {
        Command::User(UserCommand::List) => return users.list(),
        Command::User(UserCommand::Create {
            username,
            password_file,
        }) => return users.create(username, password_file.clone()),
        Command::Key(KeyCommand::Share { key, user }) => return users.share(key, user, true),
        Command::Key(KeyCommand::Unshare { key, user }) => return users.share(key, user, false),
        _ => {}
    }
    let ctx = Context::new(&cli)?;
    match cli.command {
        Command::User(_) => Ok(ExitCode::SUCCESS),
        Command::Token(TokenCommand::Init { label }) => token_init(&ctx, &label),
        Command::Token(TokenCommand::Info) => token_info(&ctx),
        Command::Key(command) => key(&ctx, command),
        Command::Wrapkey(command) => wrapkey(&ctx, command),
        Command::Sign(args) => sign(&ctx, args),
        Command::Demo => demo(&ctx),
        Command::Cluster(ClusterCommand::Check { tokens }) => cluster_check(&ctx, &tokens),
        Command::Verify { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn token_init(ctx: &Context, label: &str) -> Result<ExitCode, CliError> {
    let Target::Local { home, .. } = &ctx.target else {
        return Err(CliError::new(
            "not_supported",
            "token init works on the local SoftHSM2 store only; initialise tokens of a real HSM with its own tools (CloudHSM tokens come initialised)",
        ));
    };
    let module = home.module()?;
    if !home.ensure_token(&module, label)? {
        return Err(CliError::new(
            "token_exists",
            format!(
                "a token labelled '{label}' already exists in {}; select it with --token {label}",
                home.dir().display()
            ),
        ));
    }
    let token = module.tokens()?.into_iter().find(|t| t.label == label);
    let serial = token.map(|t| t.serial).unwrap_or_default();
    ctx.print(json!({"label": label, "serial": serial}), || {
        format!("created token '{label}' (serial {serial}); use it with --token {label}")
    });
    Ok(ExitCode::SUCCESS)
}

fn token_info(ctx: &Context) -> Result<ExitCode, CliError> {
    let info = ctx.open()?.token_info()?;
    let value = json!({
        "label": info.label, "model": info.model, "manufacturer": info.manufacturer,
        "serial": info.serial, "slot": info.slot_id, "module": info.module, "library": info.library,
        "session_count": info.session_count, "rw_session_count": info.rw_session_count,
        "max_session_count": info.max_session_count, "mechanisms": info.mechanisms,
    });
    ctx.print(value, || {
        format!(
            "token    {}\nmodel    {} ({})\nserial   {}\nslot     {}\nmodule   {}\nsessions {} open, max {}\nmechanisms: {}",
            info.label, info.model, info.manufacturer, info.serial, info.slot_id, info.module,
            info.session_count.map_or("unknown".into(), |n| n.to_string()), info.max_session_count,
            info.mechanisms.join(" ")
        )
    });
    Ok(ExitCode::SUCCESS)
}

fn key(ctx: &Context, command: KeyCommand) -> Result<ExitCode, CliError> {
    let hsm = ctx.open()?;
    match command {
        KeyCommand::Generate {
            curve,
            label,
            backupable,
        } => {
            let mut spec = EcKeySpec::new(curve, label);
            spec.backupable = backupable;
            let pair = hsm.generate_ec_key(&spec)?;
            ctx.print(key_json(&pair, false)?, || {
                key_line(&pair).unwrap_or_default()
            });
        }
        KeyCommand::List => {
            let mut pairs = Vec::new();
            for key in hsm.list_keys()? {
                if key.class == KeyClass::Private && key.curve.is_some() {
                    pairs.push(hsm.key_pair(&KeySelector::Id(key.id))?);
                }
            }
            let values = pairs
                .iter()
                .map(|p| key_json(p, false))
                .collect::<Result<Vec<_>, _>>()?;
            ctx.print(Value::Array(values), || {
                if pairs.is_empty() {
                    "no keys; create one with: tezos-hsm key generate --curve secp256k1 --label NAME".into()
                } else {
                    pairs.iter().filter_map(|p| key_line(p).ok()).collect::<Vec<_>>().join("\n")
                }
            });
        }
        KeyCommand::Show { label } => {
            let pair = hsm.key_pair(&label)?;
            let value = key_json(&pair, true)?;
            ctx.print(value.clone(), || {
                format!(
                    "label       {}\nid          {}\ncurve       {}\npublic key  {}\naddress     {}\nextractable {}\nsensitive   {}",
                    value["label"].as_str().unwrap_or(""), value["id"].as_str().unwrap_or(""),
                    value["curve"].as_str().unwrap_or(""), value["public_key"].as_str().unwrap_or(""),
                    value["address"].as_str().unwrap_or(""), value["extractable"], value["sensitive"]
                )
            });
        }
        KeyCommand::Backup {
            label,
            wrap_key,
            out,
        } => {
            let backup = Backup::create(&hsm, &label, &wrap_key)?;
            backup.write(&out)?;
            ctx.print(
                json!({"file": out.display().to_string(), "label": backup.label, "address": backup.address.to_string()}),
                || format!("backed up '{}' ({}) to {}, wrapped under '{}' (check value {})", backup.label, backup.address, out.display(), backup.wrapping_key.label, hex::encode(&backup.wrapping_key.check_value)),
            );
        }
        KeyCommand::Restore {
            file,
            label,
            wrap_key,
            not_backupable,
        } => {
            let options = RestoreOptions {
                label,
                wrapping_key: wrap_key,
                backupable: !not_backupable,
            };
            let restored = Backup::read(&file)?.restore(&hsm, &options)?;
            let value = key_json(&restored.pair, true)?;
            ctx.print(value, || {
                format!(
                    "restored '{}' ({}) on token '{}'",
                    restored.pair.private.label,
                    restored.address,
                    hsm.token_label()
                )
            });
        }
        KeyCommand::Replicate {
            to,
            label,
            prefix,
            wrap_key,
        } => return key_replicate(ctx, &hsm, &to, label, prefix, &wrap_key),
        KeyCommand::ExportHotWallet {
            label,
            wrap_key,
            wrap_key_value_file,
            out,
            consent,
        } => {
            if !consent {
                return Err(CliError::new(
                    "consent_required",
                    "export-hot-wallet takes the key out of the HSM for good: anyone who ever reads the exported secret key can sign with it, and nothing can call it back. If that is what you want, pass --i-understand-this-defeats-the-hsm",
                ));
            }
            let value = read_key_value(&wrap_key_value_file)?;
            let secret = export_hot_wallet(
                &hsm,
                &label,
                &wrap_key,
                &value,
                HotWalletConsent::IUnderstandThisDefeatsTheHsm,
            )?;
            let address = secret.public_key().hash().to_string();
            let mut text = zeroize::Zeroizing::new(secret.to_base58().expose_secret().to_string());
            text.push('\n');
            write_private_file(&out, text.as_bytes())?;
            eprintln!("warning: the secret key of {address} is now in {}; it is no longer protected by the HSM", out.display());
            ctx.print(
                json!({"file": out.display().to_string(), "label": hsm.find_private_key(&label)?.label, "address": address}),
                || format!("wrote the secret key of {address} to {}", out.display()),
            );
        }
        // Not PKCS#11 operations: `run` sends them to the CloudHSM CLI before a token is opened.
        KeyCommand::Share { .. } | KeyCommand::Unshare { .. } => {}
        KeyCommand::Delete { label } => {
            let count = hsm.delete_key(&label)?;
            ctx.print(json!({"deleted": count}), || {
                format!("deleted {count} objects of key {label}")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn wrapkey(ctx: &Context, command: WrapkeyCommand) -> Result<ExitCode, CliError> {
    let (info, trusted) = match command {
        WrapkeyCommand::Generate { label, trusted } => {
            let mut spec = WrappingKeySpec::new(label);
            spec.trusted = trusted;
            (ctx.open_as(trusted)?.generate_wrapping_key(&spec)?, trusted)
        }
        WrapkeyCommand::Import {
            label,
            value_file,
            trusted,
        } => {
            let value = read_key_value(&value_file)?;
            let mut spec = WrappingKeySpec::new(label);
            spec.trusted = trusted;
            (
                ctx.open_as(trusted)?.import_wrapping_key(&spec, &value)?,
                trusted,
            )
        }
    };
    let check_value = info
        .check_value
        .as_deref()
        .map(hex::encode)
        .unwrap_or_default();
    ctx.print(
        json!({"label": info.label, "id": info.id_hex(), "check_value": check_value, "trusted": trusted}),
        || format!("wrapping key '{}' id {} check value {check_value}{}", info.label, info.id_hex(), if trusted { " (trusted)" } else { "" }),
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads an AES-256 key value written as 64 hex characters in a file.
fn read_key_value(path: &std::path::Path) -> Result<SecretBox<[u8; 32]>, CliError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CliError::new("io", format!("cannot read {}: {e}", path.display())))?,
    );
    let mut value = SecretBox::new(Box::new([0u8; 32]));
    {
        use cryptoki_ops::secrecy::ExposeSecretMut;
        hex::decode_to_slice(text.trim(), value.expose_secret_mut()).map_err(|_| {
            CliError::new(
                "invalid_input",
                format!(
                    "{} must hold exactly 64 hex characters (an AES-256 key)",
                    path.display()
                ),
            )
        })?;
    }
    Ok(value)
}

fn key_replicate(
    ctx: &Context,
    source: &Hsm,
    to: &str,
    label: Option<String>,
    prefix: Option<String>,
    wrap_key: &KeySelector,
) -> Result<ExitCode, CliError> {
    let selection = match (label, prefix) {
        (Some(label), _) => KeySelection::Label(label),
        (None, Some(prefix)) => KeySelection::Prefix(prefix),
        (None, None) => {
            return Err(CliError::new(
                "invalid_input",
                "name the key with --label, or the keys with --prefix",
            ))
        }
    };
    let target = ctx.open_token(to)?;
    let mut progress = ProgressLine::new(ctx.json, "replicating");
    let report = replicate(source, &target, &selection, wrap_key, &mut |p| {
        progress.show(p)
    });
    progress.finish();
    let report = report?;
    let value = serde_json::to_value(&report)
        .map_err(|e| CliError::new("internal", format!("cannot print the report: {e}")))?;
    ctx.print(value, || {
        report
            .keys
            .iter()
            .map(|k| {
                let status = match k.status {
                    ReplicationStatus::Replicated => "replicated".to_string(),
                    ReplicationStatus::AlreadyPresent => "already present".to_string(),
                    ReplicationStatus::Failed => {
                        format!("FAILED: {}", k.error.as_deref().unwrap_or(""))
                    }
                };
                format!(
                    "{:<20} {:<36} {}",
                    k.label,
                    k.address.as_deref().unwrap_or("-"),
                    status
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if report.is_complete() {
        Ok(ExitCode::SUCCESS)
    } else {
        let failed = report
            .keys
            .iter()
            .filter(|k| k.status == ReplicationStatus::Failed)
            .count();
        if !ctx.json {
            eprintln!(
                "error: {failed} of {} keys were not replicated to '{to}'",
                report.keys.len()
            );
        }
        Ok(ExitCode::FAILURE)
    }
}

fn cluster_check(ctx: &Context, tokens: &[String]) -> Result<ExitCode, CliError> {
    let hsms = tokens
        .iter()
        .map(|label| ctx.open_token(label))
        .collect::<Result<Vec<_>, _>>()?;
    let mut progress = ProgressLine::new(ctx.json, "reading token");
    let report = check_consistency(&hsms, &mut |p| progress.show(p));
    progress.finish();
    let report = report?;
    let value = serde_json::to_value(&report)
        .map_err(|e| CliError::new("internal", format!("cannot print the report: {e}")))?;
    ctx.print(value, || consistency_text(&report));
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn sign(ctx: &Context, args: SignArgs) -> Result<ExitCode, CliError> {
    let bytes = parse_hex("the payload", &args.payload)?;
    let policy = match args.allow.as_deref() {
        Some(list) => KeyPolicy::from_allow_list(list)?,
        None => KeyPolicy::all(),
    };
    // Every request goes through the double-signing guard: consensus payloads (blocks,
    // (pre)attestations) are refused at or below the recorded level/round unless they are the
    // very same bytes, which get the recorded signature back.
    let guard = HighWatermark::new(FileStore::open(&ctx.watermark_dir)?);
    let hsm = ctx.open()?;
    let key = HsmKey::open(&hsm, &args.label)?.with_verify_after_sign(!args.no_verify);
    let signature = guard.sign_keypair(&policy, &key, &bytes)?;
    ctx.print(
        json!({"signature": signature.to_string(), "address": key.address().to_string()}),
        || signature.to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

fn demo(ctx: &Context) -> Result<ExitCode, CliError> {
    let hsm = ctx.open()?;
    // A sample generic operation (watermark 0x03 + forged bytes of a reveal-like operation).
    let operation = parse_hex(
        "sample",
        "03d9f4b9f5d1f67e5d03a9b3d6ee1e2a0c8f1e2d3c4b5a69788796a5b4c3d2e1f06b00",
    )?;
    let mut results = Vec::new();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("demo-{}", curve.name());
        if hsm
            .find_private_key(&KeySelector::Label(label.clone()))
            .is_ok()
        {
            hsm.delete_key(&KeySelector::Label(label.clone()))?;
        }
        hsm.generate_ec_key(&EcKeySpec::new(curve, &label))?;
        let key = HsmKey::open(&hsm, &KeySelector::Label(label.clone()))?;
        let signature = key.sign(&operation)?;
        tezos_keys::verify(key.public_key(), &operation, &signature)?;
        results.push(json!({
            "label": label, "curve": curve.name(), "public_key": key.public_key().to_string(),
            "address": key.address().to_string(), "signature": signature.to_string(), "verified": true,
        }));
    }
    ctx.print(json!({"token": hsm.token_label(), "payload": hex::encode(&operation), "keys": results}), || {
        let mut lines = vec![format!("token '{}': signing payload {}", hsm.token_label(), hex::encode(&operation))];
        for r in &results {
            lines.push(format!(
                "{:<9} address {}\n          public key {}\n          signature {}\n          verified: yes",
                r["curve"].as_str().unwrap_or(""), r["address"].as_str().unwrap_or(""),
                r["public_key"].as_str().unwrap_or(""), r["signature"].as_str().unwrap_or("")
            ));
        }
        lines.push("all good: 2 keys generated, 2 signatures made on the token and verified".into());
        lines.join("\n")
    });
    Ok(ExitCode::SUCCESS)
}
