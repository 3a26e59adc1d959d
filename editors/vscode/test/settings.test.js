'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {
  serverSettings, didChangeConfigurationParams, affectsServer, isLanguageEnabled, SERVER_DEFAULTS,
} = require('../out/settings');

const reader = (values) => ({ get: (key) => values[key] });

test('server settings map onto the keys spark-ls reads', () => {
  const settings = serverSettings(reader({
    model: ' /models/target.gguf ', draftModel: 'default', maxTokens: 32, timeBudgetMs: 1500, debounceMs: 75,
    path: '/usr/bin/spark-ls', enable: false, languages: { go: false }, 'trace.server': 'verbose',
  }));
  assert.deepEqual(settings, {
    model: '/models/target.gguf', draftModel: 'default', maxTokens: 32, timeBudgetMs: 1500, debounceMs: 75,
  });
});

test('missing or mistyped settings fall back to the server defaults', () => {
  assert.deepEqual(serverSettings(reader({})), { ...SERVER_DEFAULTS });
  assert.deepEqual(
    serverSettings(reader({ model: 7, draftModel: '', maxTokens: '12', timeBudgetMs: NaN, debounceMs: -5 })),
    { model: '', draftModel: 'none', maxTokens: 64, timeBudgetMs: 2000, debounceMs: 0 },
  );
  assert.equal(serverSettings(reader({ maxTokens: 0 })).maxTokens, 1);
  assert.equal(serverSettings(reader({ maxTokens: 12.6 })).maxTokens, 13);
});

test('didChangeConfiguration carries the settings under "spark-ls"', () => {
  const settings = serverSettings(reader({ maxTokens: 16 }));
  assert.deepEqual(didChangeConfigurationParams(settings), { settings: { 'spark-ls': settings } });
});

test('only server settings count as changes the server must hear about', () => {
  const changed = (...keys) => (section) => keys.includes(section);
  assert.equal(affectsServer(changed('spark-ls.maxTokens')), true);
  assert.equal(affectsServer(changed('spark-ls.draftModel')), true);
  assert.equal(affectsServer(changed('spark-ls.enable', 'spark-ls.languages', 'spark-ls.path')), false);
  assert.equal(affectsServer(changed('editor.fontSize')), false);
});

test('per-language switch: languages map, then its "*", then enable', () => {
  assert.equal(isLanguageEnabled(undefined, undefined, 'cpp'), true);
  assert.equal(isLanguageEnabled({}, false, 'cpp'), false);
  assert.equal(isLanguageEnabled({ cpp: true }, false, 'cpp'), true);
  assert.equal(isLanguageEnabled({ cpp: false }, true, 'cpp'), false);
  assert.equal(isLanguageEnabled({ '*': false, python: true }, true, 'cpp'), false);
  assert.equal(isLanguageEnabled({ '*': false, python: true }, true, 'python'), true);
  assert.equal(isLanguageEnabled({ cpp: 'no' }, true, 'cpp'), true);
  assert.equal(isLanguageEnabled(null, 'yes', 'cpp'), true);
});
