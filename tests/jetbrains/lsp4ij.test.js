'use strict';
// The JetBrains template (editors/jetbrains, imported into LSP4IJ as a user-defined language server) checked two
// ways: its files parse and say what LSP4IJ needs (a command that runs `spark-ls serve`, file mappings for the
// languages spark-ls knows, settings docs/LSP.md accepts), and the messages LSP4IJ sends with it are replayed
// against a real spark-ls over stdio: an initialize that offers only utf-16, allows dynamic registration of inline
// completion and supports work-done progress; didChangeConfiguration with settings.json; didOpen of Java and Python
// files; inline completion requests with triggerKind 2 (the only kind LSP4IJ sends); shutdown and exit.
//
//   SPARK_LS=build/app/spark-ls node --test tests/jetbrains/lsp4ij.test.js
//
// SPARK_LS names the binary (default build/app/spark-ls).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, it } = require('node:test');

const {
  GUARD_MS,
  assertInlineItemShape,
  startStdio,
  withServerLog,
  withTimeout,
} = require('../lsp/common');

const TEMPLATE_DIR = path.resolve(__dirname, '..', '..', 'editors', 'jetbrains');

function readJson(name) {
  const file = path.join(TEMPLATE_DIR, name);
  const source = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(source);
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${error.message}`);
  }
}

// The settings keys of docs/LSP.md "Settings" and the JSON type of each.
const SETTING_TYPES = {
  model: 'string',
  draftModel: 'string',
  threads: 'number',
  maxTokens: 'number',
  timeBudgetMs: 'number',
  debounceMs: 'number',
  fimRatio: 'number',
  multiline: 'boolean',
  contextFiles: 'boolean',
  naiveBaseline: 'boolean',
};

function assertSettings(settings, where) {
  assert.ok(settings && typeof settings === 'object' && !Array.isArray(settings), `${where} is an object`);
  for (const [key, value] of Object.entries(settings)) {
    assert.ok(key in SETTING_TYPES, `${where}: unknown setting ${key}`);
    assert.equal(typeof value, SETTING_TYPES[key], `${where}: type of ${key}`);
  }
}

// The language ids the template must map (languages spark-ls parses), with a file name of each.
const REQUIRED_MAPPINGS = {
  python: 'main.py',
  c: 'main.c',
  cpp: 'main.cpp',
  javascript: 'main.js',
  typescript: 'main.ts',
  typescriptreact: 'App.tsx',
  rust: 'main.rs',
  go: 'main.go',
  java: 'Main.java',
};

/** A glob of LSP4IJ's file name patterns (`*` and `?`) as a RegExp. */
function globToRegExp(glob) {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

describe('editors/jetbrains template files', () => {
  it('template.json names the server, runs `spark-ls serve` and maps every supported language', () => {
    const template = readJson('template.json');
    assert.equal(template.id, 'spark-ls');
    assert.equal(typeof template.name, 'string');
    assert.ok(template.name.length > 0);
    assert.equal(typeof template.programArgs, 'object');
    assert.equal(typeof template.programArgs.default, 'string');
    for (const [os, command] of Object.entries(template.programArgs)) {
      assert.match(command, /\bspark-ls(\.exe)?\s+serve\b/, `programArgs.${os}`);
    }

    assert.ok(Array.isArray(template.fileTypeMappings) && template.fileTypeMappings.length > 0);
    const idsByFile = new Map();
    for (const mapping of template.fileTypeMappings) {
      assert.equal(typeof mapping.languageId, 'string');
      assert.ok(Array.isArray(mapping.fileType.patterns) && mapping.fileType.patterns.length > 0);
      for (const pattern of mapping.fileType.patterns) {
        assert.equal(typeof pattern, 'string');
        for (const file of Object.values(REQUIRED_MAPPINGS)) {
          if (globToRegExp(pattern).test(file)) {
            assert.ok(!idsByFile.has(file) || idsByFile.get(file) === mapping.languageId, `${file} mapped twice`);
            idsByFile.set(file, mapping.languageId);
          }
        }
      }
    }
    for (const [languageId, file] of Object.entries(REQUIRED_MAPPINGS)) {
      assert.equal(idsByFile.get(file), languageId, `${file} maps to ${languageId}`);
    }
  });

  it('initializationOptions.json holds server settings of the documented types', () => {
    assertSettings(readJson('initializationOptions.json'), 'initializationOptions.json');
  });

  it('settings.json holds {"spark-ls": settings} for workspace/didChangeConfiguration', () => {
    const settings = readJson('settings.json');
    assert.deepEqual(Object.keys(settings), ['spark-ls']);
    assertSettings(settings['spark-ls'], 'settings.json spark-ls');
  });

  it('README.md explains the import', () => {
    const readme = fs.readFileSync(path.join(TEMPLATE_DIR, 'README.md'), 'utf8');
    assert.match(readme, /Language Servers/);
    assert.match(readme, /Template/);
    assert.match(readme, /spark-ls serve/);
  });
});

// Client capabilities as LSP4IJ sends them (the parts spark-ls reads, in LSP4IJ's shape).
function lsp4ijCapabilities() {
  return {
    general: { positionEncodings: ['utf-16'] },
    window: { workDoneProgress: true, showMessage: {}, showDocument: { support: true } },
    workspace: {
      configuration: true,
      didChangeConfiguration: { dynamicRegistration: true },
      workspaceFolders: true,
      executeCommand: { dynamicRegistration: true },
    },
    textDocument: {
      synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
      inlineCompletion: { dynamicRegistration: true },
      completion: {
        dynamicRegistration: true,
        completionItem: { snippetSupport: true, resolveSupport: { properties: ['documentation', 'detail'] } },
        contextSupport: true,
      },
    },
  };
}

describe('LSP4IJ messages against spark-ls', () => {
  let session;
  let initializeResult;

  const javaUri = 'file:///work/project/src/Main.java';
  const javaText = 'public class Main {\n    public static void main(String[] args) {\n        \n    }\n}\n';
  const pythonUri = 'file:///work/project/fib.py';
  const pythonText = '# Fibonacci numbers, naïvely.\ndef fibonacci(n):\n    ';

  before(async () => {
    session = await startStdio();
    // LSP4IJ sends its own capabilities; the harness's defaults are replaced, not merged, below.
    const params = {
      processId: process.pid,
      clientInfo: { name: 'IntelliJ IDEA', version: '2024.3' },
      locale: 'en',
      rootUri: 'file:///work/project',
      workspaceFolders: [{ uri: 'file:///work/project', name: 'project' }],
      capabilities: lsp4ijCapabilities(),
      initializationOptions: readJson('initializationOptions.json'),
    };
    initializeResult = await withServerLog(session, () =>
      withTimeout(session.request('initialize', params), GUARD_MS, 'initialize'),
    );
    await session.notify('initialized', {});
  });
  after(async () => {
    await session.dispose();
  });

  const run = (body) => () => withServerLog(session, () => withTimeout(body(), 4 * GUARD_MS, 'test body'));

  it(
    'negotiates utf-16 and advertises inline completion statically',
    run(async () => {
      const { capabilities } = initializeResult;
      assert.equal(capabilities.positionEncoding, 'utf-16');
      assert.deepEqual(capabilities.inlineCompletionProvider, {});
      assert.deepEqual(capabilities.textDocumentSync, { openClose: true, change: 2, save: { includeText: false } });
      assert.deepEqual(capabilities.executeCommandProvider.commands, ['spark-ls.accept', 'spark-ls.reject']);
      assert.equal(initializeResult.serverInfo.name, 'spark-ls');
    }),
  );

  it(
    'reports model loading through window/workDoneProgress/create, which the client answers',
    run(async () => {
      const create = await session.waitFor(
        'serverRequest',
        session.serverRequests,
        (r) => r.method === 'window/workDoneProgress/create',
        { timeoutMs: GUARD_MS },
      );
      const { token } = create.params;
      assert.ok(typeof token === 'string' || typeof token === 'number', `token ${JSON.stringify(token)}`);
      const begin = await session.waitForProgress((p) => p.token === token && p.value.kind === 'begin', {
        timeoutMs: GUARD_MS,
      });
      assert.equal(typeof begin.value.title, 'string');
      await session.waitForProgress((p) => p.token === token && p.value.kind === 'end', { timeoutMs: 4 * GUARD_MS });
    }),
  );

  it(
    'takes initializationOptions.json and settings.json (didChangeConfiguration) without complaint',
    run(async () => {
      const settings = readJson('settings.json');
      await session.notify('workspace/didChangeConfiguration', { settings });
      // The server handles messages in order: once a later request is answered, the settings were applied.
      await session.stats();
      const complaints = session.logMessages.filter((m) => /setting|config/i.test(m.message) && m.type <= 2);
      assert.deepEqual(complaints, []);
      assert.deepEqual(session.showMessages, []);
    }),
  );

  it(
    'opens a Java and a Python document',
    run(async () => {
      await session.open(javaUri, 'java', javaText);
      await session.open(pythonUri, 'python', pythonText);
      assert.deepEqual(await session.document(javaUri), {
        uri: javaUri,
        languageId: 'java',
        version: 1,
        text: javaText,
      });
      assert.deepEqual(await session.document(pythonUri), {
        uri: pythonUri,
        languageId: 'python',
        version: 1,
        text: pythonText,
      });
    }),
  );

  for (const { name, uri, position } of [
    { name: 'Python function body', uri: pythonUri, position: { line: 2, character: 4 } },
    { name: 'Java method body', uri: javaUri, position: { line: 2, character: 8 } },
  ]) {
    it(
      `answers an automatic (triggerKind 2) inline completion in a ${name} with an item at the cursor`,
      run(async () => {
        const result = await session.request('textDocument/inlineCompletion', {
          textDocument: { uri },
          position,
          context: { triggerKind: 2 },
        });
        assert.deepEqual(Object.keys(result), ['items']);
        assert.equal(result.items.length, 1, `one item: ${JSON.stringify(result)}`);
        const [item] = result.items;
        assertInlineItemShape(assert, item);
        assert.deepEqual(item.range, { start: position, end: position });
        assert.ok(item.insertText.trim().length > 0, `a non-blank suggestion: ${JSON.stringify(item.insertText)}`);
      }),
    );
  }

  it(
    'never asks the client to register inline completion dynamically',
    run(async () => {
      const registrations = session.serverRequests
        .filter((r) => r.method === 'client/registerCapability')
        .flatMap((r) => r.params.registrations || [])
        .filter((r) => r.method === 'textDocument/inlineCompletion');
      assert.deepEqual(registrations, []);
    }),
  );

  it(
    'shuts down and exits with code 0',
    run(async () => {
      assert.equal(await session.shutdownAndExit(), 0);
    }),
  );
});
