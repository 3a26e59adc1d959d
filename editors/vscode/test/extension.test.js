// Activation wiring against the stubbed `vscode` and `vscode-languageclient/node` (test/stubs).
'use strict';
require('./stubs/register');
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vscode = require('vscode');
const { __instances: clients } = require('vscode-languageclient/node');
const extension = require('../out/extension');
const manifest = require('../package.json');

/** A fresh editor with a fake spark-ls executable set in `spark-ls.path`; returns the context to activate with. */
function setUp(t, settings = {}) {
  vscode.__reset();
  clients.length = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spark-ls-vscode-'));
  const executable = path.join(dir, 'spark-ls');
  fs.writeFileSync(executable, '#!/bin/sh\n');
  fs.chmodSync(executable, 0o755);
  Object.assign(vscode.__state.settings, { path: executable }, settings);
  const values = {};
  const context = {
    subscriptions: [],
    globalState: { get: (key) => values[key], update: async (key, value) => { values[key] = value; } },
  };
  t.after(async () => {
    await extension.deactivate();
    for (const disposable of context.subscriptions) disposable.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { context, executable };
}

const document = (languageId) => ({ languageId, uri: `file:///x.${languageId}` });

/** Calls the inline-completion middleware; returns whether the request went on to the server. */
async function requestGoesThrough(client, languageId) {
  let forwarded = false;
  const next = () => { forwarded = true; return { items: [] }; };
  await client.clientOptions.middleware.provideInlineCompletionItems(document(languageId), {}, {}, {}, next);
  return forwarded;
}

test('activation registers the contributed commands', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(contributed, Object.values(extension.COMMANDS).sort());
  assert.deepEqual([...vscode.__state.commands.keys()].sort(), contributed);
});

test('the server is launched over stdio with "serve" and the settings as initializationOptions', async (t) => {
  const { context, executable } = setUp(t, { maxTokens: 32, draftModel: 'default', 'trace.server': 'verbose' });
  await extension.activate(context);
  assert.equal(clients.length, 1);
  const [client] = clients;
  assert.equal(client.id, 'spark-ls');
  assert.equal(client.started, true);
  assert.deepEqual(client.serverOptions, { command: executable, args: ['serve'], transport: 0 });
  assert.deepEqual(client.clientOptions.initializationOptions,
    { model: '', draftModel: 'default', maxTokens: 32, timeBudgetMs: 2000, debounceMs: 0 });
});

test('the status bar shows the polled statistics', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  const [client] = clients;
  const [item] = vscode.__state.statusItems;
  assert.equal(item.visible, true);
  assert.ok(client.requests.some((r) => r.method === 'spark/stats'));
  assert.equal(item.text, '$(sparkle) 512 tok/s · 50% acc');
});

test('accept next word / line run the built-in inline-suggestion commands', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  await vscode.commands.executeCommand('spark-ls.acceptNextWord');
  await vscode.commands.executeCommand('spark-ls.acceptNextLine');
  const ids = vscode.__state.executed.map(([id]) => id);
  assert.deepEqual(ids, ['spark-ls.acceptNextWord', 'editor.action.inlineSuggest.acceptNextWord',
    'spark-ls.acceptNextLine', 'editor.action.inlineSuggest.acceptNextLine']);
});

test('toggle holds inline requests back and updates the status bar', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  const [client] = clients;
  const [item] = vscode.__state.statusItems;
  assert.equal(await requestGoesThrough(client, 'cpp'), true);
  await vscode.commands.executeCommand('spark-ls.toggle');
  assert.equal(await requestGoesThrough(client, 'cpp'), false);
  assert.equal(item.text, '$(circle-slash) spark-ls');
  assert.ok(vscode.__state.executed.some(([id]) => id === 'editor.action.inlineSuggest.hide'));
  await vscode.commands.executeCommand('spark-ls.toggle');
  assert.equal(await requestGoesThrough(client, 'cpp'), true);
});

test('per-language settings hold inline requests back', async (t) => {
  const { context } = setUp(t, { languages: { plaintext: false } });
  vscode.__state.languageSettings.markdown = { enable: false };
  await extension.activate(context);
  const [client] = clients;
  assert.equal(await requestGoesThrough(client, 'plaintext'), false);
  assert.equal(await requestGoesThrough(client, 'markdown'), false);
  assert.equal(await requestGoesThrough(client, 'python'), true);
});

test('server settings changes are sent with didChangeConfiguration; others are not', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  const [client] = clients;
  vscode.__state.settings.enable = false;
  vscode.__changeConfiguration(['spark-ls.enable']);
  assert.deepEqual(client.notifications, []);
  vscode.__state.settings.timeBudgetMs = 500;
  vscode.__changeConfiguration(['spark-ls.timeBudgetMs']);
  assert.deepEqual(client.notifications, [{
    method: 'workspace/didChangeConfiguration',
    params: { settings: { 'spark-ls': { model: '', draftModel: 'none', maxTokens: 64, timeBudgetMs: 500,
                                        debounceMs: 0 } } },
  }]);
});

test('show statistics requests spark/stats and shows the figures', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  const [client] = clients;
  client.stats = { requests: 9, engine: { loaded: true, tokensPerSecond: 100, acceptance: 0.25 } };
  await vscode.commands.executeCommand('spark-ls.showStats');
  const shown = vscode.__state.messages.filter((m) => m.kind === 'information');
  assert.equal(shown.length, 1);
  assert.match(shown[0].text, /Speed: 100\.0 tokens\/s/);
  assert.match(shown[0].text, /Requests: 9/);
});

test('a missing executable is reported and no client is started', async (t) => {
  const { context } = setUp(t);
  vscode.__state.settings.path = path.join(os.tmpdir(), 'no-such-dir', 'spark-ls');
  await extension.activate(context);
  assert.equal(clients.length, 0);
  const errors = vscode.__state.messages.filter((m) => m.kind === 'error');
  assert.equal(errors.length, 1);
  assert.match(errors[0].text, /spark-ls\.path/);
  assert.equal(vscode.__state.statusItems[0].text, '$(error) spark-ls');
  assert.equal(vscode.__state.commands.size, Object.keys(extension.COMMANDS).length);
});

test('deactivate stops the client', async (t) => {
  const { context } = setUp(t);
  await extension.activate(context);
  await extension.deactivate();
  assert.equal(clients[0].stopped, true);
});
