#!/usr/bin/env python3
"""Checks Tezos addresses and signatures with PyTezos, an implementation independent of this project.

Reads JSON lines {"public_key", "address", "message_hex", "signature"} on stdin. For each line,
using only PyTezos (libsecp256k1 via coincurve for tz2, fastecdsa for tz3, libsodium for tz1):
  - `address` is a valid implicit-account address (prefix and base58check),
  - the address PyTezos derives from `public_key` equals `address`,
  - `signature` verifies over the bytes of `message_hex`, which include the watermark byte
    (PyTezos hashes them with BLAKE2b-256, as Tezos does; it rejects high-S secp256k1
    signatures, as the Octez node does).
Prints one line per input, "ok ..." or "FAIL ...: reason", and exits 1 if any line fails.
Run by tests/independent_tezos.rs; installed by scripts/ensure-deps.sh --with-interop.
"""
import json
import sys

from pytezos.crypto.encoding import is_pkh
from pytezos.crypto.key import Key


def check(record):
    public_key = record["public_key"]
    address = record["address"]
    signature = record["signature"]
    message = bytes.fromhex(record["message_hex"])
    if not is_pkh(address):
        return f"address {address} is not a valid tz1/tz2/tz3 address"
    key = Key.from_encoded_key(public_key)
    derived = key.public_key_hash()
    if derived != address:
        return f"address {address} differs from {derived}, derived from {public_key}"
    try:
        key.verify(signature, message)
    except ValueError as exc:
        return f"signature rejected: {exc}"
    return None


def main():
    failures = 0
    count = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        count += 1
        record = {}
        try:
            record = json.loads(line)
            problem = check(record)
        except Exception as exc:  # a malformed key or signature is a failure, not a crash
            problem = f"{type(exc).__name__}: {exc}"
        label = f"line {number} {record.get('address', '?')} {str(record.get('signature', '?'))[:12]}..."
        if problem is None:
            print(f"ok {label}")
        else:
            failures += 1
            print(f"FAIL {label}: {problem}")
    if count == 0:
        print("FAIL no input lines")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
