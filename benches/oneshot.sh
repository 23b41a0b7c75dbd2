#!/usr/bin/env bash
# One-shot latency (issue 7, BENCHMARKS.md): one `tezos-hsm sign` process against one OpenSC
# `pkcs11-tool --sign --mechanism ECDSA` process, on the same throw-away SoftHSM2 token and key,
# both timed by hyperfine the same way (no shell in between, output discarded).
#
#   benches/oneshot.sh [RUNS]      # default 200 runs per command, after 10 warm-up runs
#
# Needs hyperfine, pkcs11-tool (OpenSC), softhsm2-util, python3; builds tezos-hsm in release.
# Honours CARGO_TARGET_DIR and PKCS11_MODULE (default: Debian's SoftHSM2).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
module=${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for tool in hyperfine pkcs11-tool softhsm2-util python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (Debian: apt-get install hyperfine opensc softhsm2 python3)" >&2; exit 1; }
done

cargo build --release --bin tezos-hsm
bin=${CARGO_TARGET_DIR:-target}/release/tezos-hsm

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$dir/tokens" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf
export ONESHOT_PIN=oneshot-user-pin
softhsm2-util --init-token --free --label oneshot --so-pin oneshot-so-pin --pin "$ONESHOT_PIN" >/dev/null

cli=("$bin" --module "$module" --token oneshot --pin env:ONESHOT_PIN)
id=$("${cli[@]}" --json key generate --curve secp256k1 --label oneshot-k1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
# A generic Tezos operation (watermark 0x03), and for pkcs11-tool a 32-byte digest to sign.
payload=03$(python3 -c 'print(bytes((i * 37 + 11) % 256 for i in range(127)).hex())')
python3 -c "import hashlib, sys; sys.stdout.buffer.write(hashlib.blake2b(bytes.fromhex('$payload'), digest_size=32).digest())" \
    >"$dir/digest.bin"

# Both commands work once before timing.
"${cli[@]}" sign oneshot-k1 "$payload" >/dev/null
pkcs11-tool --module "$module" --token-label oneshot --login --pin "$ONESHOT_PIN" \
    --sign --mechanism ECDSA --id "$id" --input-file "$dir/digest.bin" >/dev/null 2>&1

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; runs: $runs"
hyperfine -N --warmup 10 --runs "$runs" --export-json "$dir/oneshot.json" \
    -n pkcs11-tool "pkcs11-tool --module $module --token-label oneshot --login --pin $ONESHOT_PIN --sign --mechanism ECDSA --id $id --input-file $dir/digest.bin" \
    -n tezos-hsm "${cli[*]} sign oneshot-k1 $payload" \
    -n 'tezos-hsm --no-verify' "${cli[*]} sign --no-verify oneshot-k1 $payload"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$dir/oneshot.json" <<'EOF'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
base = results["pkcs11-tool"]
for name, r in results.items():
    print(f"{name:24} mean {r['mean'] * 1e3:7.2f} ms  median {r['median'] * 1e3:7.2f} ms  "
          f"ratio to pkcs11-tool: mean {r['mean'] / base['mean']:.3f}, median {r['median'] / base['median']:.3f}")
EOF
