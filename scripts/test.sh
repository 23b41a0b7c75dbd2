#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration against SoftHSM2 tokens, doc examples),
# after installing what they need (--with-interop: PyTezos, for tests/independent_tezos.rs;
# --with-node: Node.js and Taquito, for tests/cli_serve_taquito.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh --with-opensc --with-interop --with-node --with-postgres
# A private PostgreSQL for the watermark-postgres tests and the HA race (scripts/pg-cluster.sh):
# its URL in TEST_DATABASE_URL, its directory in TEST_PG_DIR (a test stops and restarts it);
# stopped and removed on exit, failure or interrupt.
TEST_PG_DIR=$(mktemp -d /tmp/tezos-hsm-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$TEST_PG_DIR"; rm -rf "$TEST_PG_DIR"' EXIT
trap 'exit 130' INT TERM
TEST_DATABASE_URL=$(scripts/pg-cluster.sh start "$TEST_PG_DIR")
export TEST_DATABASE_URL TEST_PG_DIR
# The CloudHSM-profile PKCS#11 module (cloudhsm-profile/) is a cdylib that the tests load from
# target/debug; build it first so a filtered run finds it too.
cargo build -p cloudhsm-profile
# Tests that need what a module cannot do skip themselves through
# test-support/src/capabilities.rs, which appends each skip to this file; the summary at the end
# counts them per module.
export TEST_SKIP_LOG="$PWD/target/test-skips.tsv"
rm -f "$TEST_SKIP_LOG"
cargo test --workspace --all-targets "$@"
# The integration tests of the library side a second time, through the CloudHSM profile (the CLI
# tests drive their own store and are not repeated).
# cryptoki-ops/tests/, tezos-keys/tests/ and tests/ (in one build):
TEST_VIA_CLOUDHSM_PROFILE=1 cargo test -p cryptoki-ops -p tezos-keys -p tezos-hsm \
    --test keys --test signing --test module_token --test pool --test pin_sources \
    --test multi_process --test wrap \
    --test tezos_signing --test runbook_backup --test runbook_replicate --test runbook_hot_wallet \
    --test independent_tezos "$@"
cargo test --workspace --doc
echo "Capabilities skipped, by module (test-support/src/capabilities.rs):"
for module in "SoftHSM2" "CloudHSM profile"; do
    if ! grep -q "^$module"$'\t' "$TEST_SKIP_LOG" 2>/dev/null; then
        echo "  $module: none"
        continue
    fi
    # One line per capability: how many distinct tests skipped it (or a step of it).
    grep "^$module"$'\t' "$TEST_SKIP_LOG" | sort -u | cut -f2 | sort | uniq -c |
        while read -r count capability; do
            echo "  $module: skipped $capability ($count tests)"
        done
done
