'use strict';
// Shared by the tests in this folder: loads tools/lsp-client (failing loudly, never skipping, when its
// node_modules was not fetched) and holds the expectations docs/LSP.md states once for all tests.

const fs = require('node:fs');
const path = require('node:path');

const CLIENT_DIR = path.resolve(__dirname, '..', '..', 'tools', 'lsp-client');

for (const dependency of ['vscode-jsonrpc', 'vscode-languageserver-protocol']) {
  if (!fs.existsSync(path.join(CLIENT_DIR, 'node_modules', dependency, 'package.json'))) {
    throw new Error(
      `tools/lsp-client/node_modules/${dependency} is missing: run scripts/fetch-third-party.sh ` +
        '(from any directory) to install the pinned LSP client packages',
    );
  }
}

const client = require(CLIENT_DIR);

// Generous failure guards: the AddressSanitizer build is several times slower than a release build, and the
// machines running the tests may be small and busy.
const GUARD_MS = Number(process.env.SPARK_LSP_TEST_GUARD_MS || 60000);

/** The initialize result of docs/LSP.md "Lifecycle", for a negotiated `positionEncoding`. */
function expectedInitializeResult(positionEncoding) {
  return {
    capabilities: {
      positionEncoding,
      textDocumentSync: { openClose: true, change: 2, save: { includeText: false } },
      inlineCompletionProvider: {},
      completionProvider: { resolveProvider: false },
      executeCommandProvider: { commands: ['spark-ls.accept', 'spark-ls.reject'] },
    },
    serverInfo: { name: 'spark-ls', version: '0.1.0' },
  };
}

// The members of `spark/stats` (docs/LSP.md "spark/stats"), at each level.
const STATS_KEYS = [
  'requests',
  'engineRuns',
  'cacheHits',
  'prefetchHits',
  'cancelled',
  'superseded',
  'contentModified',
  'empty',
  'errors',
  'shown',
  'accepted',
  'rejected',
  'partiallyAccepted',
  'prefetches',
  'latencyMs',
  'engine',
].sort();
const LATENCY_KEYS = ['count', 'p50', 'p90', 'p99', 'mean'].sort();
const ENGINE_KEYS = [
  'loaded',
  'completed',
  'cancelled',
  'generatedTokens',
  'tokensPerSecond',
  'acceptance',
  'draftedTokens',
  'acceptedTokens',
  'promptTokens',
  'promptReused',
].sort();

/** Asserts that `stats` has exactly the documented members, each a finite non-negative number. */
function assertStatsShape(assert, stats) {
  assert.deepEqual(Object.keys(stats).sort(), STATS_KEYS);
  assert.deepEqual(Object.keys(stats.latencyMs).sort(), LATENCY_KEYS);
  assert.deepEqual(Object.keys(stats.engine).sort(), ENGINE_KEYS);
  const numbers = [
    ...STATS_KEYS.filter((k) => k !== 'latencyMs' && k !== 'engine').map((k) => [k, stats[k]]),
    ...LATENCY_KEYS.map((k) => [`latencyMs.${k}`, stats.latencyMs[k]]),
    ...ENGINE_KEYS.filter((k) => k !== 'loaded').map((k) => [`engine.${k}`, stats.engine[k]]),
  ];
  assert.equal(typeof stats.engine.loaded, 'boolean');
  for (const [name, value] of numbers) {
    assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${name} = ${value}`);
  }
}

/**
 * Asserts that `item` is an inline completion item as docs/LSP.md describes it (a plain-string insertText, a
 * range, the accept command with the completion id), and returns the completion id.
 */
function assertInlineItemShape(assert, item) {
  assert.deepEqual(Object.keys(item).sort(), ['command', 'insertText', 'range']);
  assert.equal(typeof item.insertText, 'string');
  assert.deepEqual(Object.keys(item.command).sort(), ['arguments', 'command', 'title']);
  assert.equal(item.command.title, 'Accept completion');
  assert.equal(item.command.command, 'spark-ls.accept');
  assert.equal(item.command.arguments.length, 1);
  const [id] = item.command.arguments;
  assert.ok(typeof id === 'string' && id.length > 0, `completion id ${JSON.stringify(id)}`);
  return id;
}

// Lines of a sanitizer report (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer).
const SANITIZER_LINE = /runtime error:|ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer|^\s+#\d+ 0x/;

/**
 * Adds the server's stderr to a failure, so a failing run says what the server logged: a sanitizer report first
 * when there is one, then the tail of the log. When the server has died, its stderr is read to the end first.
 */
async function withServerLog(session, body) {
  try {
    return await body();
  } catch (error) {
    const child = session && session.child;
    const dead = child && (child.exitCode !== null || child.signalCode !== null || error.code === 'EPIPE');
    if (dead && child.closed) {
      let timer;
      await Promise.race([child.closed, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
    }
    const log = (session && session.stderr) || '';
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      error.message += `\n--- spark-ls exited: code ${child.exitCode}, signal ${child.signalCode} ---`;
    }
    const report = log.split('\n').filter((line) => SANITIZER_LINE.test(line));
    if (report.length > 0) {
      error.message += `\n--- sanitizer report ---\n${report.slice(0, 40).join('\n')}`;
    }
    if (log) {
      error.message += `\n--- spark-ls stderr (tail) ---\n${log.slice(-4000)}`;
    }
    throw error;
  }
}

module.exports = {
  ...client,
  client,
  GUARD_MS,
  expectedInitializeResult,
  assertStatsShape,
  assertInlineItemShape,
  withServerLog,
};
