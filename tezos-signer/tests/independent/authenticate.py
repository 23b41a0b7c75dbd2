#!/usr/bin/env python3
"""Builds Octez authenticated-request signatures with PyTezos, independently of this project.

Reads JSON lines {"secret_hex", "curve" ("ed"|"sp"|"p2"), "signer", "data_hex", "layout"} on
stdin; for each, makes the client key from the secret exponent and signs, with PyTezos only:
  - layout "octez": 0x04 || 0x01 || forge(signer) || data, the bytes octez-client signs for
    POST /keys/<signer>?authentication=... (Octez src/lib_signer_services/signer_messages.ml),
  - layout "plain": data alone (a signature a signer must refuse as authentication).
Prints one JSON line per input: {"public_key", "address", "authentication", "generic"}.
Run by tezos-signer/tests/auth_pytezos.rs, with the virtualenv of scripts/ensure-deps.sh --with-interop.
"""
import json
import sys

from pytezos.crypto.key import Key
from pytezos.michelson.forge import forge_address


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        key = Key.from_secret_exponent(bytes.fromhex(record["secret_hex"]), curve=record["curve"].encode())
        data = bytes.fromhex(record["data_hex"])
        if record["layout"] == "octez":
            message = b"\x04\x01" + forge_address(record["signer"], tz_only=True) + data
        else:
            message = data
        print(json.dumps({
            "public_key": key.public_key(),
            "address": key.public_key_hash(),
            "authentication": key.sign(message),
            "generic": key.sign(message, generic=True),
        }))


if __name__ == "__main__":
    main()
