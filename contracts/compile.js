#!/usr/bin/env node
// Compile contracts/*.sol with the pinned solc-js (package.json) into contracts/artifacts/<Name>.json.
// Usage: node contracts/compile.js [outDir]   (default: contracts/artifacts)
// Output is deterministic: same sources + same compiler => byte-identical artifacts (the stale test relies on it).
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACTS = ["AnchorRegistry", "ContractTermsRegistry"];
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun", // runs on anvil, py-evm (eth-tester) and current public chains
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const srcDir = __dirname;
const outDir = path.resolve(process.argv[2] || path.join(srcDir, "artifacts"));
const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const name of CONTRACTS) {
  const c = output.contracts[`${name}.sol`][name];
  const artifact = {
    contractName: name,
    compiler: `solc-js ${solc.version()}`,
    settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion },
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
}
process.stdout.write(`compiled ${CONTRACTS.join(", ")} with solc ${solc.version()} -> ${outDir}\n`);
