#!/usr/bin/env node
// Taquito's RemoteSigner (@taquito/remote-signer, a client no one in this project wrote) against
// `tezos-hsm serve`: for each pkh, gets the public key, signs generic operations forged by
// Taquito's LocalForger (watermark 0x03) and, when asked, Michelson data packed by Taquito's
// michel-codec (0x05), and checks every signature with Taquito's own verifySignature, never with
// this project's code. Run by tests/cli_serve_taquito.rs with NODE_PATH=target/taquito/node_modules
// (scripts/ensure-deps.sh --with-node installs it there from package-lock.json).
//
//   node tests/taquito/client.js --url http://127.0.0.1:PORT [--signatures N]
//        [--michelson allowed|refused] [--unknown] PKH...
//
// Prints one JSON summary on stdout; exits 0 when every check passed, 1 on any mismatch or
// error (listed in the summary's "errors"), 2 on bad arguments.
'use strict';

const crypto = require('crypto');
const { RemoteSigner } = require('@taquito/remote-signer');
const { LocalForger } = require('@taquito/local-forging');
const { packDataBytes } = require('@taquito/michel-codec');
const {
  b58cdecode,
  b58cencode,
  getPkhfromPk,
  prefix,
  Prefix,
  verifySignature,
} = require('@taquito/utils');

// The order of secp256k1's group, and half of it: Octez refuses a tz2 signature with s > n/2
// (libsecp256k1's low-S rule), which Taquito's verifier (elliptic) does not check.
const SECP256K1_N = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');

function usage(message) {
  process.stderr.write(
    `client.js: ${message}\nusage: node client.js --url URL [--signatures N] ` +
      '[--michelson allowed|refused] [--unknown] PKH...\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = { url: null, signatures: 2, michelson: null, unknown: false, pkhs: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      i += 1;
      if (i >= argv.length) usage(`${arg} needs a value`);
      return argv[i];
    };
    if (arg === '--url') args.url = value();
    else if (arg === '--signatures') args.signatures = Number(value());
    else if (arg === '--michelson') args.michelson = value();
    else if (arg === '--unknown') args.unknown = true;
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else args.pkhs.push(arg);
  }
  if (!args.url) usage('--url is required');
  if (!Number.isInteger(args.signatures) || args.signatures < 1) {
    usage('--signatures takes a positive integer');
  }
  if (args.michelson !== null && !['allowed', 'refused'].includes(args.michelson)) {
    usage('--michelson takes allowed or refused');
  }
  if (args.pkhs.length === 0 && !args.unknown) usage('no pkh given');
  return args;
}

const randomB58 = (length, kind) => b58cencode(crypto.randomBytes(length), prefix[kind]);

// A transaction from `source`, forged by Taquito: the bytes a wallet sends a remote signer.
async function forgedTransaction(source, counter) {
  return new LocalForger().forge({
    branch: randomB58(32, Prefix.B),
    contents: [
      {
        kind: 'transaction',
        source,
        fee: '1420',
        counter: String(counter),
        gas_limit: '10600',
        storage_limit: '0',
        amount: String(1000000 + counter),
        destination: randomB58(20, Prefix.TZ1),
      },
    ],
  });
}

// Checks one signature the way a client should: Taquito's verifySignature accepts it over the
// watermarked bytes and refuses it over other bytes, and a tz2 signature is low-S.
function checkSignature(what, watermarkedHex, publicKey, signature) {
  const problems = [];
  if (!verifySignature(watermarkedHex, publicKey, signature)) {
    problems.push(`${what}: Taquito's verifySignature refused the signature ${signature}`);
  }
  const last = parseInt(watermarkedHex.slice(-2), 16) ^ 0x01;
  const tampered = watermarkedHex.slice(0, -2) + last.toString(16).padStart(2, '0');
  if (verifySignature(tampered, publicKey, signature)) {
    problems.push(`${what}: the signature also verifies over other bytes`);
  }
  if (publicKey.startsWith('sppk')) {
    const raw = b58cdecode(signature, prefix[signature.slice(0, 5)]);
    const s = BigInt(`0x${Buffer.from(raw.slice(32, 64)).toString('hex')}`);
    if (s > SECP256K1_N / 2n) problems.push(`${what}: tz2 signature is high-S (Octez refuses it)`);
  }
  return problems;
}

async function checkKey(args, pkh, errors) {
  const signer = new RemoteSigner(pkh, args.url);
  const result = { pkh, public_key: null, generic: 0, michelson: 0, michelson_refused: false, verified: 0 };
  const publicKey = await signer.publicKey();
  result.public_key = publicKey;
  if (getPkhfromPk(publicKey) !== pkh) {
    errors.push(`${pkh}: the server's public key ${publicKey} hashes to ${getPkhfromPk(publicKey)}`);
  }
  if ((await signer.publicKeyHash()) !== pkh) errors.push(`${pkh}: publicKeyHash differs`);
  for (let n = 1; n <= args.signatures; n += 1) {
    const bytes = await forgedTransaction(pkh, n);
    // As TezosToolkit signs an operation: watermark 0x03 given separately. RemoteSigner.sign
    // itself verifies the signature and throws SignatureVerificationError on a mismatch.
    const signed = await signer.sign(bytes, new Uint8Array([3]));
    result.generic += 1;
    const problems = checkSignature(`${pkh} generic #${n}`, `03${bytes}`, publicKey, signed.prefixSig);
    if (signed.sbytes.slice(0, bytes.length) !== bytes) problems.push(`${pkh}: sbytes do not start with the bytes`);
    if (problems.length === 0) result.verified += 1;
    errors.push(...problems);
  }
  if (args.michelson !== null) {
    const packed = packDataBytes({ prim: 'Pair', args: [{ string: pkh }, { int: '42' }] }).bytes;
    try {
      const signed = await signer.sign(packed);
      result.michelson += 1;
      if (args.michelson === 'refused') {
        errors.push(`${pkh}: Michelson data was signed although the server should refuse it`);
      }
      const problems = checkSignature(`${pkh} michelson`, packed, publicKey, signed.prefixSig);
      if (problems.length === 0) result.verified += 1;
      errors.push(...problems);
    } catch (error) {
      // RemoteSigner turns a 403 into OperationNotAuthorizedError (named OperationNotAuthorized),
      // keeping the HTTP error as its cause.
      if (args.michelson === 'refused' && error.name === 'OperationNotAuthorized' && error.cause?.status === 403) {
        result.michelson_refused = true;
      } else {
        errors.push(`${pkh} michelson: ${error.name}: ${error.message}`);
      }
    }
  }
  return result;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const summary = { url: args.url, keys: [], unknown_key_not_found: null, errors: [] };
  for (const pkh of args.pkhs) {
    try {
      summary.keys.push(await checkKey(args, pkh, summary.errors));
    } catch (error) {
      summary.errors.push(`${pkh}: ${error.name}: ${error.message}`);
    }
  }
  if (args.unknown) {
    // A key the server does not serve: 404, which RemoteSigner turns into PublicKeyNotFoundError.
    const pkh = randomB58(20, Prefix.TZ3);
    try {
      await new RemoteSigner(pkh, args.url).publicKey();
      summary.unknown_key_not_found = false;
      summary.errors.push(`${pkh}: the server answered a public key for a key it does not serve`);
    } catch (error) {
      summary.unknown_key_not_found = error.name === 'PublicKeyNotFoundError';
      if (!summary.unknown_key_not_found) summary.errors.push(`${pkh}: ${error.name}: ${error.message}`);
    }
  }
  summary.ok = summary.errors.length === 0;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(summary.ok ? 0 : 1);
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ ok: false, errors: [`${error.name}: ${error.message}`] })}\n`);
  process.exit(1);
});
