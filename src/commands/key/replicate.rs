//! `key replicate`: copy keys from this token to another token of the module, wrapped under a
//! wrapping key both hold.

use std::fmt;

use cryptoki_ops::Hsm;
use serde::{Serialize, Serializer};
use tezos_keys::runbook::{replicate, KeySelection, ReplicationReport, ReplicationStatus};

use crate::cli::ReplicateArgs;
use crate::commands::Output;
use crate::context::Context;
use crate::error::CliError;
use crate::progress::ProgressLine;
use crate::text::{escape, Escaped};

/// `key replicate`: the replication report, one line per key; exit code 1 if any failed.
pub struct Replicated {
    report: ReplicationReport,
    to: String,
}

impl Serialize for Replicated {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.report.serialize(serializer)
    }
}

impl fmt::Display for Replicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .report
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
            .collect();
        f.write_str(
            &lines
                .iter()
                .map(|l| escape(l))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}

impl Output for Replicated {
    fn success(&self) -> bool {
        self.report.is_complete()
    }

    fn failure_note(&self) -> Option<String> {
        let failed = self
            .report
            .keys
            .iter()
            .filter(|k| k.status == ReplicationStatus::Failed)
            .count();
        Some(format!(
            "error: {failed} of {} keys were not replicated to '{}'",
            self.report.keys.len(),
            Escaped(&self.to)
        ))
    }
}

/// `key replicate --to T (--label L | --prefix P) --wrap-key W` from `source`.
pub fn run(ctx: &Context, source: &Hsm, args: ReplicateArgs) -> Result<Replicated, CliError> {
    let selection = match (args.label, args.prefix) {
        (Some(label), _) => KeySelection::Label(label),
        (None, Some(prefix)) => KeySelection::Prefix(prefix),
        (None, None) => {
            return Err(CliError::new(
                "invalid_input",
                "name the key with --label, or the keys with --prefix",
            ))
        }
    };
    let target = ctx.open_token(&args.to)?;
    let mut progress = ProgressLine::new(ctx.json, "replicating");
    let report = replicate(source, &target, &selection, &args.wrap_key, &mut |p| {
        progress.show(p)
    });
    progress.finish();
    Ok(Replicated {
        report: report?,
        to: args.to,
    })
}
