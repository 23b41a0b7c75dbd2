#!/usr/bin/env bash
# Installs what the build, the demo and the tests need beyond Rust and a C compiler: OpenSSL's
# headers and pkg-config (tezos-keys verifies P-256 with the system's libcrypto: openssl-sys),
# SoftHSM2 (the PKCS#11 token),
# with --with-opensc OpenSC (pkcs11-tool, an independent PKCS#11 client the interoperability tests
# use), and with --with-interop PyTezos (an independent Tezos implementation that
# tests/independent_tezos.rs checks addresses and signatures against), with --with-node Node.js,
# npm and Taquito (@taquito/remote-signer, the client tests/cli_serve_taquito.rs runs against
# `tezos-hsm serve`), and with --with-postgres PostgreSQL's server binaries (Debian's postgresql
# package; scripts/pg-cluster.sh starts a private cluster with them for the watermark-postgres
# tests and the HA race).
# System packages: as root it installs them with apt-get; otherwise it says in one line what to
# install. PyTezos goes into a virtualenv in target/interop/venv (no root needed), pinned by
# tests/independent/requirements.txt; Taquito goes into target/taquito/node_modules, pinned by
# tests/taquito/package-lock.json (`npm ci`); a second run with nothing to do takes well under a
# second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

with_opensc="" with_interop="" with_node="" with_postgres=""
for arg in "$@"; do
  case "$arg" in
    --with-opensc) with_opensc=1 ;;
    --with-interop) with_interop=1 ;;
    --with-node) with_node=1 ;;
    --with-postgres) with_postgres=1 ;;
    *) echo "usage: scripts/ensure-deps.sh [--with-opensc] [--with-interop] [--with-node] [--with-postgres]" >&2; exit 2 ;;
  esac
done

missing=()
softhsm_found=""
for lib in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
           /opt/homebrew/lib/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  [ -f "$lib" ] && softhsm_found=1
done
[ -n "$softhsm_found" ] || missing+=(softhsm2)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
  missing+=(libssl-dev)
fi
if [ -n "$with_opensc" ] && ! command -v pkcs11-tool >/dev/null 2>&1; then
  missing+=(opensc)
fi
# The multi-process and server tests signal their children with kill(1) (Debian: procps, which a
# minimal system lacks; the shell's builtin does not count for a program that runs it).
if [ -n "$with_opensc" ] && ! type -P kill >/dev/null 2>&1; then
  missing+=(procps)
fi
if [ -n "$with_postgres" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi

venv=$root/target/interop/venv
requirements=$root/tests/independent/requirements.txt
interop_ready() { # the virtualenv exists and was built from the current requirements.txt
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$(cksum <"$requirements")" ]
}
if [ -n "$with_interop" ] && ! interop_ready; then
  # Python with venv (Debian splits it into python3-venv), and libsodium, which PyTezos loads at
  # run time for Ed25519. coincurve (libsecp256k1) and fastecdsa come as binary wheels.
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if ! command -v python3 >/dev/null 2>&1 \
     || ! python3 -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("sodium") is None)' 2>/dev/null; then
    missing+=(libsodium23)
  fi
fi

taquito=$root/target/taquito
taquito_src=$root/tests/taquito
taquito_ready() { # node_modules exists and was installed from the current package files
  [ -d "$taquito/node_modules/@taquito/remote-signer" ] \
    && [ "$(cat "$taquito/.installed" 2>/dev/null)" = "$(cat "$taquito_src/package.json" "$taquito_src/package-lock.json" | cksum)" ]
}
if [ -n "$with_node" ]; then
  # Debian 12 ships Node 18, the oldest the pinned Taquito (21.x) supports.
  if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
    missing+=(nodejs)
  fi
  if ! taquito_ready && ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  else
    echo "missing: ${missing[*]}; install SoftHSM2, OpenSSL headers, pkg-config, OpenSC, Python 3 with venv, libsodium and Node.js >= 18 with npm and PostgreSQL with your package manager (Fedora: dnf install softhsm openssl-devel pkgconf opensc python3 libsodium nodejs npm postgresql-server; macOS: brew install softhsm openssl pkg-config opensc python libsodium node postgresql)" >&2
    exit 1
  fi
fi

if [ -n "$with_interop" ] && ! interop_ready; then
  echo "installing PyTezos into target/interop/venv (pinned by tests/independent/requirements.txt)..." >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >"$venv.log" 2>&1 \
     || ! "$venv/bin/python" -c 'import pytezos.crypto.key' >>"$venv.log" 2>&1; then
    echo "installing PyTezos failed (see $venv.log): $(tail -1 "$venv.log")" >&2
    exit 1
  fi
  cksum <"$requirements" >"$venv/.requirements"
fi

if [ -n "$with_node" ] && ! taquito_ready; then
  echo "installing Taquito into target/taquito (pinned by tests/taquito/package-lock.json)..." >&2
  rm -rf "$taquito"
  mkdir -p "$taquito"
  cp "$taquito_src/package.json" "$taquito_src/package-lock.json" "$taquito/"
  # --ignore-scripts: nothing from the registry runs at install time (the one install script in
  # the tree patches an Angular build, irrelevant here); --prefer-offline uses npm's cache first.
  if ! (cd "$taquito" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline) >"$taquito.log" 2>&1 \
     || ! NODE_PATH="$taquito/node_modules" node -e 'require("@taquito/remote-signer"); require("@taquito/utils")' >>"$taquito.log" 2>&1; then
    echo "installing Taquito failed (see $taquito.log): $(tail -1 "$taquito.log")" >&2
    exit 1
  fi
  cat "$taquito_src/package.json" "$taquito_src/package-lock.json" | cksum >"$taquito/.installed"
fi
