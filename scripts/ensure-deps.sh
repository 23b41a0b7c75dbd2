#!/usr/bin/env bash
# Installs what the demo and the tests need beyond Rust: SoftHSM2 (the PKCS#11 token) and OpenSC
# (pkcs11-tool, an independent PKCS#11 client the interoperability tests use).
# As root it installs them with apt-get; otherwise it says in one line what to install.
set -euo pipefail

missing=()
softhsm_found=""
for lib in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
           /opt/homebrew/lib/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  [ -f "$lib" ] && softhsm_found=1
done
[ -n "$softhsm_found" ] || missing+=(softhsm2)
if [ "${1:-}" = "--with-opensc" ] && ! command -v pkcs11-tool >/dev/null 2>&1; then
  missing+=(opensc)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
else
  echo "missing: ${missing[*]}; install SoftHSM2 and OpenSC with your package manager (Fedora: dnf install softhsm opensc; macOS: brew install softhsm opensc)" >&2
  exit 1
fi
