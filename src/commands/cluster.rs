//! `cluster check`: whether several tokens (HSMs) of one module hold the same keys.

use std::fmt;

use serde::{Serialize, Serializer};
use tezos_keys::runbook::{check_consistency, ConsistencyReport};

use super::coverage::{self, Coverage};
use super::user::Users;
use super::Output;
use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::progress::ProgressLine;
use crate::text::escape;

/// `cluster check`: the consistency report of the tokens (when there are two or more) and, on
/// AWS CloudHSM, the coverage of the cluster's users and keys; exit code 0 only when both are
/// good.
pub struct Checked {
    tokens: Vec<String>,
    report: Option<ConsistencyReport>,
    coverage: Option<Coverage>,
}

impl Checked {
    fn consistent(&self) -> bool {
        self.report
            .as_ref()
            .is_none_or(ConsistencyReport::is_consistent)
            && self.coverage.as_ref().is_none_or(Coverage::is_complete)
    }
}

impl Serialize for Checked {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = match &self.report {
            Some(report) => serde_json::to_value(report).map_err(S::Error::custom)?,
            None => serde_json::json!({"tokens": self.tokens, "keys": [], "wrapping_keys": []}),
        };
        if let Some(object) = value.as_object_mut() {
            if let Some(coverage) = &self.coverage {
                object.insert(
                    "coverage".into(),
                    serde_json::to_value(coverage).map_err(S::Error::custom)?,
                );
            }
            object.insert("consistent".into(), self.consistent().into());
        }
        value.serialize(serializer)
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(report) = &self.report {
            parts.push(consistency_text(report));
        }
        if let Some(coverage) = &self.coverage {
            parts.push(coverage.to_string());
        }
        f.write_str(&parts.join("\n"))
    }
}

impl Output for Checked {
    fn success(&self) -> bool {
        self.consistent()
    }
}

/// Runs `cluster ...`.
pub fn run(globals: &GlobalArgs, tokens: Vec<String>) -> Result<Checked, CliError> {
    // A token compared with itself is always "consistent": refuse it, by name first, then by
    // serial (two names, e.g. a label and serial:..., can select one token).
    for (i, name) in tokens.iter().enumerate() {
        if tokens[..i].contains(name) {
            return Err(CliError::new(
                "invalid_input",
                format!("--tokens names '{name}' twice; name each token once"),
            ));
        }
    }
    let ctx = Context::new(globals)?;
    let sessions = tokens
        .iter()
        .map(|label| ctx.open_token(label))
        .collect::<Result<Vec<_>, _>>()?;
    // Clones of the sessions, which hold the store until the end of the command.
    let hsms: Vec<cryptoki_ops::Hsm> = sessions
        .iter()
        .map(|s| cryptoki_ops::Hsm::clone(s))
        .collect();
    let serials = hsms
        .iter()
        .map(|hsm| Ok(hsm.token_info()?.serial))
        .collect::<Result<Vec<_>, CliError>>()?;
    for (i, serial) in serials.iter().enumerate() {
        if let Some(j) = serials[..i].iter().position(|s| s == serial) {
            return Err(CliError::new(
                "invalid_input",
                format!(
                    "--tokens '{}' and '{}' are the same token (serial {serial}); name each token once",
                    tokens[j], tokens[i]
                ),
            ));
        }
    }
    let cloudhsm = hsms.first().is_some_and(|h| h.module().is_cloudhsm());
    // On CloudHSM one cluster is one token: alone, it is checked for coverage only.
    let report = if hsms.len() >= 2 || !cloudhsm {
        let mut progress = ProgressLine::new(ctx.json, "reading token");
        let report = check_consistency(&hsms, &mut |p| progress.show(p));
        progress.finish();
        Some(report?)
    } else {
        None
    };
    let coverage = if cloudhsm {
        Some(coverage::check(&Users::new(globals))?)
    } else {
        None
    };
    Ok(Checked {
        tokens,
        report,
        coverage,
    })
}

/// The consistency report for people: one line per key and wrapping key, problems spelled out.
fn consistency_text(report: &ConsistencyReport) -> String {
    let mut lines = vec![format!("tokens: {}", report.tokens.join(", "))];
    for key in &report.keys {
        let mut problems = Vec::new();
        let missing = key.missing_on();
        if !missing.is_empty() {
            problems.push(format!("missing on {}", missing.join(", ")));
        }
        if !key.same_public_key {
            let addresses: Vec<String> = key
                .tokens
                .iter()
                .filter(|t| t.present)
                .map(|t| format!("{}={}", t.token, t.address.as_deref().unwrap_or("?")))
                .collect();
            problems.push(format!("DIFFERENT public keys ({})", addresses.join(", ")));
        }
        for d in &key.differences {
            let values: Vec<String> = d
                .values
                .iter()
                .zip(&report.tokens)
                .map(|(v, t)| format!("{t}={}", v.as_deref().unwrap_or("-")))
                .collect();
            problems.push(format!("{} differs ({})", d.attribute, values.join(", ")));
        }
        for t in key.tokens.iter().filter(|t| t.count > 1) {
            problems.push(format!("{} keys share the label on {}", t.count, t.token));
        }
        for t in &key.tokens {
            if let Some(e) = &t.error {
                problems.push(format!("on {}: {e}", t.token));
            }
        }
        let address = key
            .tokens
            .iter()
            .find_map(|t| t.address.as_deref())
            .unwrap_or("-");
        lines.push(format!(
            "key {:<20} {:<36} {}",
            key.label,
            address,
            if problems.is_empty() {
                "ok".to_string()
            } else {
                problems.join("; ")
            }
        ));
    }
    for w in &report.wrapping_keys {
        let values: Vec<String> = w
            .tokens
            .iter()
            .map(|t| {
                format!(
                    "{}={}",
                    t.token,
                    if t.present {
                        t.check_value.as_deref().unwrap_or("?")
                    } else {
                        "missing"
                    }
                )
            })
            .collect();
        lines.push(format!(
            "wrapping key {:<11} {} {}",
            w.label,
            if w.is_consistent() { "ok" } else { "DIFFERS" },
            values.join(", ")
        ));
    }
    lines.push(if report.is_consistent() {
        "consistent: every token holds the same keys".to_string()
    } else {
        "NOT consistent: see above".to_string()
    });
    // Labels, token names and errors come from the tokens: one line each, escaped.
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("\n")
}
