//! `tezos-hsm`: the HSM key-management runbook as a command-line tool (work in progress).
fn main() {}
