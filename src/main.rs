//! `tezos-hsm`: the HSM key-management runbook for Tezos signers, one command per step.
//!
//! With no module configured it works on a local SoftHSM2 development token (see [`home`]);
//! with `--module` (or `PKCS11_MODULE`) it drives that module, e.g. AWS CloudHSM's
//! `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so` with the PIN `<crypto user>:<password>`.

mod home;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cryptoki_ops::secrecy::SecretBox;
use cryptoki_ops::{
    Curve, EcKeySpec, Hsm, HsmConfig, KeyClass, KeySelector, ModuleSource, PinSource, Role,
    TokenSelector, WrappingKeySpec,
};
use serde_json::{json, Value};
use tezos_keys::{payload, HsmKey};

use crate::home::{Home, DEFAULT_TOKEN};
use crate::output::{key_json, key_line, parse_hex, CliError};

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
                    token: cli.token.clone().unwrap_or_else(|| DEFAULT_TOKEN.to_string()),
                }
            }
        };
        Ok(Self {
            cli_token: cli.token.clone(),
            pin: cli.pin.clone(),
            so_pin: cli.so_pin.clone(),
            json: cli.json,
            target,
        })
    }

    fn config(&self, role: Role) -> Result<HsmConfig, CliError> {
        match &self.target {
            Target::Local { home, token } => {
                let module = home.module()?;
                if token == DEFAULT_TOKEN && home.ensure_token(&module, token)? {
                    eprintln!(
                        "note: created the development token '{token}' in {} (SoftHSM2: keys are files on this disk, not in an HSM)",
                        home.dir().display()
                    );
                }
                let pin = match role {
                    Role::User => self.pin.clone().unwrap_or_else(|| home.user_pin(token)),
                    Role::SecurityOfficer => self.so_pin.clone().unwrap_or_else(|| home.so_pin(token)),
                };
                Ok(HsmConfig::new(TokenSelector::Label(token.clone()), pin)
                    .with_module(ModuleSource::Path(module.path().to_path_buf()))
                    .with_role(role))
            }
            Target::Module { path } => {
                let token = match &self.cli_token {
                    Some(t) => t.parse()?,
                    None => TokenSelector::First,
                };
                let pin = match role {
                    Role::User => self.pin.clone().unwrap_or_else(|| PinSource::Env("TEZOS_HSM_PIN".into())),
                    Role::SecurityOfficer => self.so_pin.clone().ok_or_else(|| {
                        CliError::new("config", "this needs the security officer's PIN: pass --so-pin env:VAR (or file:, cmd:)")
                    })?,
                };
                Ok(HsmConfig::new(token, pin).with_module(ModuleSource::Path(path.clone())).with_role(role))
            }
        }
    }

    fn open(&self) -> Result<Hsm, CliError> {
        Ok(Hsm::open(&self.config(Role::User)?)?)
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
    if let Command::Verify { public_key, payload, signature } = &cli.command {
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
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let ctx = Context::new(&cli)?;
    match cli.command {
        Command::Token(TokenCommand::Init { label }) => token_init(&ctx, &label),
        Command::Token(TokenCommand::Info) => token_info(&ctx),
        Command::Key(command) => key(&ctx, command),
        Command::Wrapkey(command) => wrapkey(&ctx, command),
        Command::Sign(args) => sign(&ctx, args),
        Command::Demo => demo(&ctx),
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
        return Err(CliError::new("token_exists", format!("a token labelled '{label}' already exists in {}; select it with --token {label}", home.dir().display())));
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
        KeyCommand::Generate { curve, label, backupable } => {
            let mut spec = EcKeySpec::new(curve, label);
            spec.backupable = backupable;
            let pair = hsm.generate_ec_key(&spec)?;
            ctx.print(key_json(&pair, false)?, || key_line(&pair).unwrap_or_default());
        }
        KeyCommand::List => {
            let mut pairs = Vec::new();
            for key in hsm.list_keys()? {
                if key.class == KeyClass::Private && key.curve.is_some() {
                    pairs.push(hsm.key_pair(&KeySelector::Id(key.id))?);
                }
            }
            let values = pairs.iter().map(|p| key_json(p, false)).collect::<Result<Vec<_>, _>>()?;
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
        KeyCommand::Delete { label } => {
            let count = hsm.delete_key(&label)?;
            ctx.print(json!({"deleted": count}), || format!("deleted {count} objects of key {label}"));
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
        WrapkeyCommand::Import { label, value_file, trusted } => {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(&value_file).map_err(|e| {
                CliError::new("io", format!("cannot read {}: {e}", value_file.display()))
            })?);
            let mut value = SecretBox::new(Box::new([0u8; 32]));
            {
                use cryptoki_ops::secrecy::ExposeSecretMut;
                hex::decode_to_slice(text.trim(), value.expose_secret_mut()).map_err(|_| {
                    CliError::new("invalid_input", format!("{} must hold exactly 64 hex characters (an AES-256 key)", value_file.display()))
                })?;
            }
            let mut spec = WrappingKeySpec::new(label);
            spec.trusted = trusted;
            (ctx.open_as(trusted)?.import_wrapping_key(&spec, &value)?, trusted)
        }
    };
    let check_value = info.check_value.as_deref().map(hex::encode).unwrap_or_default();
    ctx.print(
        json!({"label": info.label, "id": info.id_hex(), "check_value": check_value, "trusted": trusted}),
        || format!("wrapping key '{}' id {} check value {check_value}{}", info.label, info.id_hex(), if trusted { " (trusted)" } else { "" }),
    );
    Ok(ExitCode::SUCCESS)
}

fn sign(ctx: &Context, args: SignArgs) -> Result<ExitCode, CliError> {
    let bytes = parse_hex("the payload", &args.payload)?;
    let allowed = args.allow.as_deref().map(payload::parse_allow_list).transpose()?;
    let hsm = ctx.open()?;
    let key = HsmKey::open(&hsm, &args.label)?.with_verify_after_sign(!args.no_verify);
    let (signature, _) = key.sign_allowed(&bytes, allowed.as_deref())?;
    ctx.print(json!({"signature": signature.to_string(), "address": key.address().to_string()}), || signature.to_string());
    Ok(ExitCode::SUCCESS)
}

fn demo(ctx: &Context) -> Result<ExitCode, CliError> {
    let hsm = ctx.open()?;
    // A sample generic operation (watermark 0x03 + forged bytes of a reveal-like operation).
    let operation = parse_hex("sample", "03d9f4b9f5d1f67e5d03a9b3d6ee1e2a0c8f1e2d3c4b5a69788796a5b4c3d2e1f06b00")?;
    let mut results = Vec::new();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("demo-{}", curve.name());
        if hsm.find_private_key(&KeySelector::Label(label.clone())).is_ok() {
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
