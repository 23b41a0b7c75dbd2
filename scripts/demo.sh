#!/usr/bin/env bash
# The main job: on a local SoftHSM2 token, generate a secp256k1 and a P-256 key, show their Tezos
# addresses, sign a sample operation with each and verify it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo run --quiet --bin tezos-hsm -- demo "$@"
