'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { findServer, ServerNotFoundError, SERVER_ARGS } = require('../out/server');

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spark-ls-vscode-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeFile(dir, name, mode) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, '#!/bin/sh\n');
  fs.chmodSync(file, mode);
  return file;
}

test('the server is started with "serve"', () => {
  assert.deepEqual(SERVER_ARGS, ['serve']);
});

test('an explicit path wins over PATH', (t) => {
  const dir = tempDir(t);
  const onPath = path.join(dir, 'bin');
  fs.mkdirSync(onPath);
  writeFile(onPath, 'spark-ls', 0o755);
  const explicit = writeFile(dir, 'my-spark-ls', 0o755);
  assert.equal(findServer(explicit, { pathVariable: onPath, platform: 'linux' }), explicit);
  assert.equal(findServer(`  ${explicit}  `, { pathVariable: '', platform: 'linux' }), explicit);
});

test('an explicit path that is not an executable file is an error, not a PATH lookup', (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'spark-ls', 0o755);
  const plain = writeFile(dir, 'not-executable', 0o644);
  for (const bad of [plain, dir, path.join(dir, 'missing')]) {
    assert.throws(() => findServer(bad, { pathVariable: dir, platform: 'linux' }), (error) =>
      error instanceof ServerNotFoundError && error.message.includes('spark-ls.path'));
  }
});

test('PATH lookup takes the first executable spark-ls', (t) => {
  const dir = tempDir(t);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => {
    fs.mkdirSync(path.join(dir, name));
    return path.join(dir, name);
  });
  writeFile(a, 'spark-ls', 0o644);                 // not executable: skipped
  fs.mkdirSync(path.join(b, 'spark-ls'));          // a directory: skipped
  const expected = writeFile(c, 'spark-ls', 0o755);
  const pathVariable = ['', path.join(dir, 'missing'), a, b, c].join(':');
  assert.equal(findServer(undefined, { pathVariable, platform: 'linux' }), expected);
  assert.equal(findServer('', { pathVariable, platform: 'linux' }), expected);
});

test('nothing on PATH is an error naming the setting', (t) => {
  const dir = tempDir(t);
  assert.throws(() => findServer(undefined, { pathVariable: dir, platform: 'linux' }), (error) =>
    error instanceof ServerNotFoundError && /not found on PATH/.test(error.message) &&
    error.message.includes('spark-ls.path'));
});
