'use strict';
// Cancellation as docs/LSP.md specifies it, against `spark-ls serve --test-double slow-engine` (the real engine,
// 20 ms per token, stop rules ignored, so a completion runs until it is cancelled or reaches maxTokens):
// - $/cancelRequest answers the request with -32800 and stops its engine run;
// - an edit to the document answers its running request with -32801 and stops the run;
// - a newer inline request for the same document answers the running one with -32800 at once.
//
// "Stops the run" is observed twice: spark/stats counts the run in engine.cancelled, and a follow-up request is
// answered promptly. The engine is single-threaded, so the follow-up can only start once the cancelled run ended,
// and a run that was not stopped would hold it for LONG_RUN_TOKENS × 20 ms, well past the guard.
//
//   node --test tests/lsp/cancel.test.js

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');

const { CancellationTokenSource, ErrorCode, GUARD_MS, startStdio, withServerLog, withTimeout } = require('./common');

// A run that only cancellation ends within the test: 3000 tokens take a minute at 20 ms each.
const LONG_RUN_TOKENS = 3000;
// A short run for follow-ups: 2 tokens.
const SHORT_RUN_TOKENS = 2;
// A follow-up must be answered well before a run that was not stopped could have ended (60 s).
const FOLLOW_UP_GUARD_MS = Math.min(GUARD_MS, 30000);

describe('cancellation with the slow engine', () => {
  let session;
  let documents = 0;

  before(async () => {
    session = await startStdio({ args: ['--test-double', 'slow-engine'] });
    await session.initialize({
      positionEncodings: ['utf-8'],
      initializationOptions: { maxTokens: SHORT_RUN_TOKENS, timeBudgetMs: 600000, debounceMs: 0 },
    });
    // Wait for the models: completion requests made while they load wait for them, so one completed request
    // means they are loaded and the engine is idle.
    const uri = await openDocument('warm-up');
    await withTimeout(session.inlineCompletion(uri, cursorOf()), 4 * GUARD_MS, 'the warm-up completion');
  });

  after(async () => {
    if (session) {
      await session.dispose();
    }
  });

  // Every test uses documents of its own with distinct text, so that no suggestion can come from the forwarding
  // cache: each request must run the engine.
  const PREFIX = 'def fibonacci(n):\n    ';
  function cursorOf() {
    return { line: 2, character: 4 };
  }
  async function openDocument(name) {
    documents += 1;
    const uri = `file:///work/${name}-${documents}.py`;
    await session.open(uri, 'python', `# ${name} ${documents}\n${PREFIX}`);
    return uri;
  }

  // A follow-up request that runs SHORT_RUN_TOKENS on the engine: answered only once the engine is free.
  async function followUp() {
    await session.configure({ maxTokens: SHORT_RUN_TOKENS });
    const uri = await openDocument('follow-up');
    const result = await withTimeout(
      session.inlineCompletion(uri, cursorOf()),
      FOLLOW_UP_GUARD_MS,
      'a follow-up completion (was the cancelled engine run stopped?)',
    );
    assert.ok(Array.isArray(result.items), JSON.stringify(result));
  }

  // Starts a long inline completion and resolves once the server has it: a spark/stats round trip after the
  // request shows the request arrived (and the idle engine took it) before anything the test sends next.
  async function startLongCompletion(uri, token) {
    await session.configure({ maxTokens: LONG_RUN_TOKENS });
    const statsBefore = await session.stats();
    const pending = session.inlineCompletion(uri, cursorOf(), { token });
    // Attach a handler now; the test awaits the outcome later.
    pending.catch(() => {});
    const statsNow = await session.stats();
    assert.equal(statsNow.requests, statsBefore.requests + 1, 'the request arrived');
    return { pending, statsBefore };
  }

  const run = (body) => () => withServerLog(session, () => withTimeout(body(), 4 * GUARD_MS, 'test body'));

  it(
    '$/cancelRequest answers -32800 and stops the engine run',
    run(async () => {
      const uri = await openDocument('cancel');
      const source = new CancellationTokenSource();
      const { pending, statsBefore } = await startLongCompletion(uri, source.token);
      source.cancel(); // vscode-jsonrpc sends $/cancelRequest with the request's id
      await assert.rejects(pending, { code: ErrorCode.RequestCancelled });
      await followUp();
      const statsAfter = await session.stats();
      assert.equal(statsAfter.requests, statsBefore.requests + 2);
      assert.equal(statsAfter.cancelled, statsBefore.cancelled + 1);
      assert.equal(statsAfter.engine.cancelled, statsBefore.engine.cancelled + 1);
      assert.equal(statsAfter.engine.completed, statsBefore.engine.completed + 1); // the follow-up
      // Latency is recorded for answered requests only: the follow-up, not the cancelled one.
      assert.equal(statsAfter.latencyMs.count, statsBefore.latencyMs.count + 1);
    }),
  );

  it(
    'an edit during a running completion answers -32801 and stops the engine run',
    run(async () => {
      const uri = await openDocument('edit');
      const { pending, statsBefore } = await startLongCompletion(uri);
      const start = { line: 0, character: 0 };
      await session.change(uri, 2, [{ range: { start, end: start }, text: '# edited\n' }]);
      await assert.rejects(pending, { code: ErrorCode.ContentModified });
      await followUp();
      const statsAfter = await session.stats();
      assert.equal(statsAfter.contentModified, statsBefore.contentModified + 1);
      assert.equal(statsAfter.engine.cancelled, statsBefore.engine.cancelled + 1);
      assert.equal(statsAfter.engine.completed, statsBefore.engine.completed + 1);
      // The edit itself was applied.
      assert.match((await session.document(uri)).text, /^# edited\n# edit \d+\n/);
    }),
  );

  it(
    'a newer inline request for the same document supersedes the running one with -32800',
    run(async () => {
      const uri = await openDocument('supersede');
      const { pending, statsBefore } = await startLongCompletion(uri);
      // The newer request runs short, so that it ends by itself once the superseded run has stopped.
      await session.configure({ maxTokens: SHORT_RUN_TOKENS });
      const newer = session.inlineCompletion(uri, cursorOf());
      newer.catch(() => {});
      await assert.rejects(pending, { code: ErrorCode.RequestCancelled });
      const result = await withTimeout(newer, FOLLOW_UP_GUARD_MS, 'the newer request (was the older run stopped?)');
      assert.ok(Array.isArray(result.items), JSON.stringify(result));
      const statsAfter = await session.stats();
      assert.equal(statsAfter.superseded, statsBefore.superseded + 1);
      assert.equal(statsAfter.engine.cancelled, statsBefore.engine.cancelled + 1);
      assert.equal(statsAfter.requests, statsBefore.requests + 2);
    }),
  );

  it(
    'a request cancelled while queued behind a running one is answered -32800 at once and never runs',
    run(async () => {
      // Occupy the engine with a long run on one document, queue a request for another behind it, cancel the
      // queued one, then end the long one with an edit.
      const busyUri = await openDocument('busy');
      const queuedUri = await openDocument('queued');
      const { pending: busy, statsBefore } = await startLongCompletion(busyUri);
      let busySettled = false;
      busy.then(
        () => (busySettled = true),
        () => (busySettled = true),
      );
      const source = new CancellationTokenSource();
      const queued = session.inlineCompletion(queuedUri, cursorOf(), { token: source.token });
      queued.catch(() => {});
      source.cancel();
      await assert.rejects(queued, { code: ErrorCode.RequestCancelled });
      assert.equal(busySettled, false, 'the queued request was answered while the long run still ran');
      await session.change(busyUri, 2, [{ text: `# busy, edited\n${PREFIX}` }]);
      await assert.rejects(busy, { code: ErrorCode.ContentModified });
      await followUp();
      const statsAfter = await session.stats();
      assert.equal(statsAfter.cancelled, statsBefore.cancelled + 1);
      assert.equal(statsAfter.contentModified, statsBefore.contentModified + 1);
      // The queued request did not run to completion: only the follow-up completed. (Whether a request the
      // engine dequeued already cancelled counts in engine.cancelled is not specified, so that is not checked.)
      assert.equal(statsAfter.engine.completed, statsBefore.engine.completed + 1);
    }),
  );

  it(
    'ends cleanly',
    run(async () => {
      assert.equal(await session.shutdownAndExit(), 0);
    }),
  );
});
