//! `token init` (a token in the local store) and `token info`.

use std::fmt;

use serde::Serialize;

use super::{Output, Rendered};
use crate::cli::{GlobalArgs, TokenCommand};
use crate::context::{Context, Target};
use crate::error::CliError;
use crate::text::{escape, Escaped};

/// Runs `token ...`.
pub fn run(globals: &GlobalArgs, command: TokenCommand) -> Result<Rendered, CliError> {
    let ctx = Context::new(globals)?;
    match command {
        TokenCommand::Init { label } => Rendered::new(&init(&ctx, &label)?, ctx.json),
        TokenCommand::Info => Rendered::new(&info(&ctx)?, ctx.json),
    }
}

/// A token created in the local store: `{"label","serial"}`.
#[derive(Serialize)]
pub struct Created {
    label: String,
    serial: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (label, serial) = (Escaped(&self.label), Escaped(&self.serial));
        write!(
            f,
            "created token '{label}' (serial {serial}); use it with --token {label}"
        )
    }
}

impl Output for Created {}

fn init(ctx: &Context, label: &str) -> Result<Created, CliError> {
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
    Ok(Created {
        label: label.to_string(),
        serial,
    })
}

/// `token info`: the token's description.
#[derive(Serialize)]
pub struct Info {
    label: String,
    model: String,
    manufacturer: String,
    serial: String,
    slot: u64,
    module: String,
    library: String,
    session_count: Option<u64>,
    rw_session_count: Option<u64>,
    max_session_count: String,
    mechanisms: Vec<String>,
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token    {}\nmodel    {} ({})\nserial   {}\nslot     {}\nmodule   {}\nsessions {} open, max {}\nmechanisms: {}",
            Escaped(&self.label),
            Escaped(&self.model),
            Escaped(&self.manufacturer),
            Escaped(&self.serial),
            self.slot,
            Escaped(&self.module),
            self.session_count.map_or("unknown".into(), |n| n.to_string()),
            Escaped(&self.max_session_count),
            escape(&self.mechanisms.join(" "))
        )
    }
}

impl Output for Info {}

fn info(ctx: &Context) -> Result<Info, CliError> {
    let info = ctx.open()?.token_info()?;
    Ok(Info {
        label: info.label,
        model: info.model,
        manufacturer: info.manufacturer,
        serial: info.serial,
        slot: info.slot_id,
        module: info.module,
        library: info.library,
        session_count: info.session_count,
        rw_session_count: info.rw_session_count,
        max_session_count: info.max_session_count,
        mechanisms: info.mechanisms,
    })
}
