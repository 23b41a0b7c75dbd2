#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration against SoftHSM2 tokens, doc examples),
# after installing what they need.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh --with-opensc
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
