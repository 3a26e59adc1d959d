// Packages the extension into OUT_DIR (`npm run package -- --out OUT_DIR/`) and checks the .vsix: named
// spark-ls-<version>.vsix, holding the manifest, the compiled entry point and the runtime dependency.
// Usage: node scripts/package-check.js OUT_DIR [NPM]
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const [outArg, npm = 'npm'] = process.argv.slice(2);
if (!outArg) {
  console.error('usage: node scripts/package-check.js OUT_DIR [NPM]');
  process.exit(2);
}
const outDir = path.resolve(outArg);

function fail(message) {
  console.error(`vscode package check: ${message}`);
  process.exit(1);
}

const check = spawnSync(process.execPath, [path.join(__dirname, 'check-modules.js')], { stdio: 'inherit' });
if (check.status !== 0) {
  process.exit(1);
}

const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = path.join(outDir, `${manifest.name}-${manifest.version}.vsix`);
fs.mkdirSync(outDir, { recursive: true });
fs.rmSync(vsix, { force: true });

const run = spawnSync(npm, ['run', 'package', '--', '--out', vsix], { cwd: root, stdio: 'inherit' });
if (run.status !== 0) {
  fail(`'npm run package' exited with ${run.status ?? run.signal}`);
}
if (!fs.existsSync(vsix)) {
  fail(`${vsix} was not written`);
}

// List the archive with yauzl (a dependency of @vscode/vsce), so no unzip tool is needed.
const yauzl = require(path.join(root, 'node_modules', 'yauzl'));
yauzl.open(vsix, { lazyEntries: true }, (error, zip) => {
  if (error) {
    fail(`cannot read ${vsix}: ${error.message}`);
  }
  const entries = new Set();
  zip.on('entry', (entry) => {
    entries.add(entry.fileName);
    zip.readEntry();
  });
  zip.on('end', () => {
    const required = [
      'extension/package.json',
      'extension/out/extension.js',
      'extension/node_modules/vscode-languageclient/package.json',
      'extension/node_modules/vscode-languageclient/lib/node/main.js',
      'extension/node_modules/vscode-jsonrpc/package.json',
    ];
    const missing = required.filter((name) => !entries.has(name));
    const unwanted = [...entries].filter((name) => /^extension\/(src|test)\//.test(name));
    if (missing.length > 0) {
      fail(`${vsix} lacks ${missing.join(', ')}`);
    }
    if (unwanted.length > 0) {
      fail(`${vsix} holds files that .vscodeignore should keep out: ${unwanted.slice(0, 5).join(', ')}`);
    }
    console.log(`vscode package check: ${vsix} (${entries.size} entries) is complete`);
  });
  zip.readEntry();
});
