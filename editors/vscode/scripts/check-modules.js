// Fails with a clear message when node_modules lacks a package this project declares. They are installed, pinned
// by package-lock.json, with scripts/fetch-third-party.sh at the repository root (`npm ci` here works too).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const declared = [...Object.keys(manifest.dependencies || {}), ...Object.keys(manifest.devDependencies || {})];
const missing = declared.filter((name) => !fs.existsSync(path.join(root, 'node_modules', name, 'package.json')));

if (missing.length > 0) {
  console.error(
    `editors/vscode/node_modules is missing ${missing.join(', ')}.\n` +
      'Run scripts/fetch-third-party.sh (from any directory) to install the pinned packages.',
  );
  process.exit(1);
}
