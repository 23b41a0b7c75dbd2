#!/usr/bin/env bash
# One-shot latency (issues 7 and 15, BENCHMARKS.md §4): one `tezos-hsm sign` process against one
# OpenSC `pkcs11-tool --sign --mechanism ECDSA` process, on the same throw-away SoftHSM2 token and
# key, interleaved: each round runs A, B, A, B... until each has run a fixed time (B first in
# every other round), no shell in between, output discarded; the ratio of each round is A's time
# per run over B's, and the script prints the median ratio over the rounds and its spread.
#
#   benches/oneshot.sh [ROUNDS] [SECONDS_A_SIDE]   # default 7 rounds, 0.5 s a side
#
# Needs pkcs11-tool (OpenSC), softhsm2-util, python3; builds tezos-hsm in release.
# Honours CARGO_TARGET_DIR and PKCS11_MODULE (default: Debian's SoftHSM2).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
side=${2:-0.5}
module=${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for tool in pkcs11-tool softhsm2-util python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (Debian: apt-get install opensc softhsm2 python3)" >&2; exit 1; }
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

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $rounds rounds x ${side} s a side"
python3 - "$rounds" "$side" "$module" "$id" "$dir/digest.bin" "$payload" "${cli[@]}" <<'PY'
import statistics, subprocess, sys, time

rounds, side = int(sys.argv[1]), float(sys.argv[2])
module, key_id, digest, payload = sys.argv[3:7]
cli = sys.argv[7:]
commands = {
    "pkcs11-tool": ["pkcs11-tool", "--module", module, "--token-label", "oneshot", "--login",
                    "--pin", "oneshot-user-pin", "--sign", "--mechanism", "ECDSA", "--id", key_id,
                    "--input-file", digest],
    "tezos-hsm sign": cli + ["sign", "oneshot-k1", payload],
    "tezos-hsm sign --no-verify": cli + ["sign", "--no-verify", "oneshot-k1", payload],
}

def run(name):
    done = subprocess.run(commands[name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit {done.returncode}): {' '.join(commands[name])}")

def timed(name):
    start = time.perf_counter()
    run(name)
    return time.perf_counter() - start

def round_of(first, second, seconds):
    """first, second, first, second... until each has run `seconds` in all: time per run."""
    total, runs = {first: 0.0, second: 0.0}, {first: 0, second: 0}
    while min(total.values()) < seconds:
        for name in (first, second):
            total[name] += timed(name)
            runs[name] += 1
    return {name: total[name] / runs[name] for name in total}

for name in commands:  # each works, and a warm-up
    for _ in range(5):
        timed(name)
print()
print("| A / B | A/B time per run: median | min–max | A: ms/run (median) | B: ms/run (median) |")
print("|---|---:|---:|---:|---:|")
for a in ("tezos-hsm sign", "tezos-hsm sign --no-verify"):
    b = "pkcs11-tool"
    ta, tb = [], []
    for r in range(rounds):
        times = round_of(a, b, side) if r % 2 == 0 else round_of(b, a, side)
        ta.append(times[a])
        tb.append(times[b])
    ratios = [x / y for x, y in zip(ta, tb)]
    print(f"| `{a}` / `{b}` | **{statistics.median(ratios):.3f}** | "
          f"{min(ratios):.3f}–{max(ratios):.3f} | {statistics.median(ta) * 1e3:.2f} | "
          f"{statistics.median(tb) * 1e3:.2f} |")
PY
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
