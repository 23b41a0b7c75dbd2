#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration against SoftHSM2 tokens, doc examples),
# after installing what they need (--with-interop: PyTezos, for tests/independent_tezos.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh --with-opensc --with-interop
# The CloudHSM-profile PKCS#11 module (cloudhsm-profile/) is a cdylib that tests/cloudhsm_profile.rs
# loads from target/debug; build it first so a filtered run finds it too.
cargo build -p cloudhsm-profile
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
