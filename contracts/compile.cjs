#!/usr/bin/env node
// Compiles ImageLedger.sol with the pinned npm solc through its standard-JSON
// interface and writes the committed artifact ImageLedger.json.
//   node contracts/compile.cjs           write the artifact
//   node contracts/compile.cjs --check   exit 1 when the committed artifact differs
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..');
// The metadata hash embedded in the bytecode covers the source's name, so it
// must stay the same wherever the checkout lives.
const SOURCE_NAME = 'ImageLedger.sol';
const CONTRACT = 'ImageLedger';
const EVM_VERSION = 'cancun';
const RUNS = 200;
const ARTIFACT = path.join(HERE, 'ImageLedger.json');

function loadSolc() {
  const peers = process.env.SEDIS_PEERS_DIR || path.join(ROOT, '.cache', 'peers');
  try {
    return require(require.resolve('solc', { paths: [peers] }));
  } catch (err) {
    console.error(`compile.cjs: npm solc not found under ${peers} (run: bash tools/install-peers.sh)`);
    process.exit(2);
  }
}

function compile() {
  const solc = loadSolc();
  const source = fs.readFileSync(path.join(HERE, SOURCE_NAME), 'utf8');
  const input = {
    language: 'Solidity',
    sources: { [SOURCE_NAME]: { content: source } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: RUNS },
      outputSelection: { [SOURCE_NAME]: { [CONTRACT]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage || e.message);
  if (problems.length) process.exit(1);
  const c = output.contracts[SOURCE_NAME][CONTRACT];
  const artifact = {
    contractName: CONTRACT,
    sourceName: SOURCE_NAME,
    sourceSha256: crypto.createHash('sha256').update(source, 'utf8').digest('hex'),
    compiler: { name: 'solc', version: solc.version(), evmVersion: EVM_VERSION, optimizer: { enabled: true, runs: RUNS } },
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  };
  return JSON.stringify(artifact, null, 2) + '\n';
}

const text = compile();
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(ARTIFACT) ? fs.readFileSync(ARTIFACT, 'utf8') : '';
  if (committed !== text) {
    console.error(`compile.cjs: ${path.relative(ROOT, ARTIFACT)} is out of date; run: make contracts`);
    process.exit(1);
  }
  console.log(`${path.relative(ROOT, ARTIFACT)} matches ${SOURCE_NAME}`);
} else {
  const tmp = ARTIFACT + '.tmp';
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, ARTIFACT);
  console.log(`wrote ${path.relative(ROOT, ARTIFACT)}`);
}
