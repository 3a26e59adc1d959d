'use strict';
// The LSP contract of docs/LSP.md, checked against a real spark-ls over stdio and over TCP: initialize and
// position encodings, document synchronisation with non-ASCII text in every encoding, completions in all three
// dialects, the forwarding cache, errors, and the lifecycle.
//
//   node --test tests/lsp/protocol.test.js                 # both transports
//   SPARK_LSP_TRANSPORT=tcp node --test tests/lsp/protocol.test.js
//
// SPARK_LS names the binary (default build/app/spark-ls).

const assert = require('node:assert/strict');
const { after, before, describe, it } = require('node:test');

const {
  ENCODINGS,
  ErrorCode,
  GUARD_MS,
  applyContentChanges,
  assertInlineItemShape,
  assertStatsShape,
  expectedInitializeResult,
  positionAt,
  rangeAt,
  startStdio,
  startTcpServer,
  unitLength,
  withServerLog,
  withTimeout,
} = require('./common');

const TRANSPORTS = process.env.SPARK_LSP_TRANSPORT ? [process.env.SPARK_LSP_TRANSPORT] : ['stdio', 'tcp'];

// Offers of `capabilities.general.positionEncodings` and the encoding docs/LSP.md says the server picks.
const ENCODING_OFFERS = [
  { offer: ['utf-8', 'utf-16', 'utf-32'], chosen: 'utf-8' },
  { offer: ['utf-32', 'utf-16', 'utf-8'], chosen: 'utf-8' },
  { offer: ['utf-16'], chosen: 'utf-16' },
  { offer: undefined, chosen: 'utf-16' },
  { offer: [], chosen: 'utf-16' },
  { offer: ['utf-32'], chosen: 'utf-32' },
];

// The encoding to offer so that the server picks `encoding`.
function offerFor(encoding) {
  return [encoding];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A document as the client sees it, kept in step with the server's copy: every edit is computed from UTF-16
 * offsets of the expected text, sent as LSP ranges in the negotiated encoding, applied locally, and then the
 * server's copy (`spark/document`) must equal the local one exactly.
 */
class TrackedDocument {
  constructor(session, uri, languageId, text) {
    this.session = session;
    this.uri = uri;
    this.languageId = languageId;
    this.text = text;
    this.version = 1; // the version of the last change the server applied
    this.nextVersion = 2; // versions only grow, also over notifications the server must refuse
    this.encoding = session.positionEncoding;
  }

  async open() {
    await this.session.open(this.uri, this.languageId, this.text, this.version);
    await this.check();
    return this;
  }

  /** Asserts that the server's copy is exactly the expected document. */
  async check(message) {
    assert.deepEqual(
      await this.session.document(this.uri),
      { uri: this.uri, languageId: this.languageId, version: this.version, text: this.text },
      message,
    );
  }

  /**
   * One didChange with the given edits applied in order. Each edit is `{start, end, text}` in UTF-16 offsets of
   * the text as it is when the edit applies, or a function of that text returning one.
   * `extra` members are added to every content change (e.g. a stale `rangeLength`, which the server ignores).
   */
  async edit(edits, extra = {}) {
    const changes = [];
    let text = this.text;
    for (const e of edits) {
      const { start, end, text: inserted } = typeof e === 'function' ? e(text) : e;
      assert.ok(start >= 0 && start <= end && end <= text.length, 'edit inside the document');
      changes.push({ range: rangeAt(text, start, end, this.encoding), ...extra, text: inserted });
      text = text.slice(0, start) + inserted + text.slice(end);
    }
    // The test's own position arithmetic must agree with itself before the server is judged by it.
    assert.equal(applyContentChanges(this.text, changes, this.encoding), text);
    await this.sendApplied(changes, text);
  }

  /** One didChange with hand-written `changes` whose effect must be `expectedText`. */
  async sendApplied(changes, expectedText) {
    const version = this.nextVersion++;
    await this.session.change(this.uri, version, changes);
    this.text = expectedText;
    this.version = version;
    await this.check(`after changes ${JSON.stringify(changes)}`);
  }

  /** A full-text change. */
  async replaceAll(text) {
    await this.sendApplied([{ text }], text);
  }

  /**
   * One didChange the server must refuse as a whole: afterwards the document is unchanged (text and version) and
   * the refusal was reported with window/logMessage.
   */
  async sendRefused(changes) {
    const logsBefore = this.session.logMessages.length;
    await this.session.change(this.uri, this.nextVersion++, changes);
    await this.check(`a refused didChange must change nothing: ${JSON.stringify(changes)}`);
    await this.session.waitForLogMessage(() => true, { from: logsBefore, timeoutMs: GUARD_MS });
  }
}

// Offset helpers on the expected text: where `needle` (first found at or after `from`) ends or starts.
function endOf(text, needle, from = 0) {
  const i = text.indexOf(needle, from);
  assert.ok(i >= 0, `${JSON.stringify(needle)} in ${JSON.stringify(text)}`);
  return i + needle.length;
}
function startOf(text, needle, from = 0) {
  const i = text.indexOf(needle, from);
  assert.ok(i >= 0, `${JSON.stringify(needle)} in ${JSON.stringify(text)}`);
  return i;
}
const insert = (at, text) => ({ start: at, end: at, text });

const COMBINING_ACUTE = '\u0301';
const UNICODE_PY =
  'def greet(name):\n' + `    s = "café 😀 e${COMBINING_ACUTE} end"  # ünï\n` + '    return s + name\n';
const CRLF_CPP = 'int main() {\r\n    return 0; // é😀 done\r\n}\r\n';
const TS_SOURCE = 'export function add(a: number, b: number): number {\n  return a + b; // “sum”\n}\n';

for (const transport of TRANSPORTS) {
  describe(`protocol over ${transport}`, () => {
    let tcpServer;
    const cleanExit = transport === 'stdio' ? 0 : null;

    before(async () => {
      if (transport === 'tcp') {
        tcpServer = await startTcpServer();
      }
    });
    after(async () => {
      if (tcpServer) {
        // Every connection ended cleanly: the server must still be up (one session per connection).
        const running = tcpServer.child.exitCode === null && tcpServer.child.signalCode === null;
        await tcpServer.stop();
        assert.ok(running, `the TCP server exited while tests ran:\n${tcpServer.stderr}`);
      }
    });

    async function connect() {
      return transport === 'stdio' ? startStdio() : tcpServer.connect();
    }

    // Runs `body` with a fresh session, guarded by a timeout, disposing the session whatever happens.
    async function withSession(body) {
      const session = await connect();
      try {
        return await withServerLog(session, () => withTimeout(body(session), 4 * GUARD_MS, 'test body'));
      } finally {
        await session.dispose();
      }
    }

    describe('initialize', () => {
      for (const { offer, chosen } of ENCODING_OFFERS) {
        it(`offering ${JSON.stringify(offer)} negotiates ${chosen}`, () =>
          withSession(async (session) => {
            const result = await session.initialize({ positionEncodings: offer });
            assert.deepEqual(result, expectedInitializeResult(chosen));
            assert.equal(await session.shutdownAndExit(), cleanExit);
          }));
      }

      it('answers requests before initialize with -32002, drops notifications, refuses a second initialize', () =>
        withSession(async (session) => {
          const uri = 'file:///early.py';
          await assert.rejects(session.stats(), { code: ErrorCode.ServerNotInitialized });
          await assert.rejects(session.document(uri), { code: ErrorCode.ServerNotInitialized });
          await assert.rejects(session.inlineCompletion(uri, { line: 0, character: 0 }), {
            code: ErrorCode.ServerNotInitialized,
          });
          await assert.rejects(session.request('spark/doesNotExist', {}), { code: ErrorCode.ServerNotInitialized });
          // Dropped, not queued: the document is unknown once the session is initialised.
          await session.open(uri, 'python', 'x = 1\n');
          const result = await session.initialize({ positionEncodings: ['utf-16'] });
          assert.deepEqual(result, expectedInitializeResult('utf-16'));
          await assert.rejects(session.document(uri), { code: ErrorCode.InvalidParams });
          await assert.rejects(session.request('initialize', { processId: null, rootUri: null, capabilities: {} }), {
            code: ErrorCode.InvalidRequest,
          });
          assert.equal(await session.shutdownAndExit(), cleanExit);
        }));
    });

    describe('document synchronisation', () => {
      for (const encoding of ENCODINGS) {
        it(`keeps Python, C++ and TypeScript documents in sync in ${encoding}`, () =>
          withSession(async (session) => {
            assert.deepEqual(
              await session.initialize({ positionEncodings: offerFor(encoding) }),
              expectedInitializeResult(encoding),
            );

            // Non-ASCII on one line: é (2 UTF-8 bytes), 😀 (4 bytes, a UTF-16 surrogate pair), e + U+0301 (two code
            // points), ü and ï. Every edit lands after such characters on the same line, so an encoding mistake
            // moves it.
            const py = await new TrackedDocument(session, 'file:///work/greet.py', 'python', UNICODE_PY).open();
            await py.edit([insert(endOf(py.text, '😀'), '!')]);
            await py.edit([insert(endOf(py.text, ' e'), 'Z')]); // between "e" and the combining mark
            await py.edit([insert(endOf(py.text, COMBINING_ACUTE), 'X')]);
            await py.edit([{ start: startOf(py.text, 'end"'), end: endOf(py.text, 'end'), text: 'fin' }]);
            await py.edit([insert(endOf(py.text, 'é'), 'ñ')]);
            await py.edit([{ start: startOf(py.text, 'é'), end: endOf(py.text, 'é'), text: '' }]);
            await py.edit([{ start: startOf(py.text, '😀'), end: endOf(py.text, '😀'), text: '' }]);
            await py.edit([insert(endOf(py.text, '# ünï'), '\n    t = "ü😀"')]);
            await py.edit([insert(endOf(py.text, 'ü😀'), '?')]);
            // A range over a line break, from inside one non-ASCII line to the next line.
            await py.edit([{ start: endOf(py.text, 't = "ü'), end: endOf(py.text, 'return'), text: ' 😀\n    yield' }]);
            // Several changes in one notification, each relative to the text the previous one left.
            await py.edit([
              insert(0, '# 😀 é\n'),
              (t) => insert(endOf(t, 'é', endOf(t, '# 😀')), ' ok'),
              (t) => ({ start: startOf(t, 'yield'), end: endOf(t, 'yield'), text: 'return' }),
              (t) => insert(t.length, 'print(greet("wörld"))\n'),
            ]);
            // The deprecated rangeLength is ignored, even when it disagrees with the range.
            await py.edit([insert(endOf(py.text, 'wörld'), '!')], { rangeLength: 999 });

            // A position inside a character snaps to the character's start.
            const line = py.text.split('\n').findIndex((l) => l.includes('s = "caf'));
            const content = py.text.split('\n')[line];
            if (encoding === 'utf-8') {
              const character = unitLength(content.slice(0, content.indexOf('ñ')), 'utf-8') + 1; // inside ñ
              const at = startOf(py.text, 'ñ');
              await py.sendApplied(
                [{ range: { start: { line, character }, end: { line, character } }, text: '^' }],
                `${py.text.slice(0, at)}^${py.text.slice(at)}`,
              );
            } else if (encoding === 'utf-16') {
              const emojiLine = py.text.split('\n').findIndex((l) => l.includes('t = "ü 😀'));
              const text = py.text.split('\n')[emojiLine];
              const character = text.indexOf('😀') + 1; // between the two halves of the surrogate pair
              const at = startOf(py.text, '😀', startOf(py.text, 't = "ü'));
              await py.sendApplied(
                [{ range: { start: { line: emojiLine, character }, end: { line: emojiLine, character } }, text: '^' }],
                `${py.text.slice(0, at)}^${py.text.slice(at)}`,
              );
            }

            // Refused as a whole: a line past the end, also after a valid change in the same notification.
            const lines = py.text.split('\n').length;
            const pastEnd = { line: lines + 2, character: 0 };
            await py.sendRefused([{ range: { start: pastEnd, end: pastEnd }, text: 'lost' }]);
            await py.sendRefused([
              { range: rangeAt(py.text, 0, 0, encoding), text: 'also lost' },
              { range: { start: pastEnd, end: pastEnd }, text: 'lost' },
            ]);
            await py.edit([insert(py.text.length, '# still in sync\n')]);

            // A full-text change.
            await py.replaceAll('print("done ✓ 😀")\r\n');
            await py.edit([insert(endOf(py.text, '😀'), '!')]);

            // CRLF line ends: the terminator is not part of the line, and "\r\n" is one line break.
            const cpp = await new TrackedDocument(session, 'file:///work/main.cpp', 'cpp', CRLF_CPP).open();
            await cpp.edit([insert(endOf(cpp.text, 'done'), ' x')]); // at the end of a line, before its "\r\n"
            await cpp.edit([insert(endOf(cpp.text, '😀'), 'Q')]);
            await cpp.edit([insert(endOf(cpp.text, '{'), '\r\n    int é = 1;')]);
            const crlf = endOf(cpp.text, '{');
            await cpp.edit([{ start: crlf, end: crlf + 2, text: ' ' }]); // joins two lines
            await cpp.edit([insert(endOf(cpp.text, 'é = 1;'), ' // 😀😀')]);

            // TypeScript, then close: a closed document is unknown.
            const ts = await new TrackedDocument(session, 'file:///work/add.ts', 'typescript', TS_SOURCE).open();
            await ts.edit([insert(endOf(ts.text, '”'), ' 😀')]);
            await session.close(ts.uri);
            await assert.rejects(session.document(ts.uri), { code: ErrorCode.InvalidParams });

            // A didChange for a URI never opened changes nothing and is logged.
            const logsBefore = session.logMessages.length;
            await session.change('file:///work/never-opened.py', 2, [{ text: 'x' }]);
            await assert.rejects(session.document('file:///work/never-opened.py'), { code: ErrorCode.InvalidParams });
            await session.waitForLogMessage(() => true, { from: logsBefore, timeoutMs: GUARD_MS });

            // The other documents were not disturbed.
            await py.check();
            await cpp.check();
            assert.equal(await session.shutdownAndExit(), cleanExit);
          }));
      }
    });

    describe('completions', () => {
      let session;
      const uri = 'file:///work/fib.py';
      const text = '# Fibonacci numbers, naïvely.\ndef fibonacci(n):\n    ';
      const cursor = { line: 2, character: 4 };
      let shown; // the first suggestion: {item}

      before(async () => {
        session = await connect();
        await session.initialize({ positionEncodings: ['utf-16'] });
        await session.open(uri, 'python', text);
      });
      after(async () => {
        await session.dispose();
      });

      const run = (body) => () => withServerLog(session, () => withTimeout(body(), 4 * GUARD_MS, 'test body'));

      it(
        'suggests a continuation at an empty line of a function body',
        run(async () => {
          const statsBefore = await session.stats();
          const result = await session.inlineCompletion(uri, cursor);
          assert.deepEqual(Object.keys(result), ['items']);
          assert.equal(result.items.length, 1, `one item: ${JSON.stringify(result)}`);
          const [item] = result.items;
          assertInlineItemShape(assert, item);
          assert.deepEqual(item.range, { start: cursor, end: cursor });
          assert.ok(item.insertText.trim().length > 0, `a non-blank suggestion: ${JSON.stringify(item.insertText)}`);
          const statsAfter = await session.stats();
          assert.equal(statsAfter.requests, statsBefore.requests + 1);
          assert.equal(statsAfter.engineRuns, statsBefore.engineRuns + 1);
          assert.equal(statsAfter.cacheHits, statsBefore.cacheHits);
          assert.equal(statsAfter.engine.completed, statsBefore.engine.completed + 1);
          assert.equal(statsAfter.latencyMs.count, statsBefore.latencyMs.count + 1);
          shown = { item };
        }),
      );

      it(
        'reported model loading with $/progress',
        run(async () => {
          assert.ok(session.progressTokens.length >= 1, 'window/workDoneProgress/create was sent');
          const [token] = session.progressTokens;
          const begin = await session.waitForProgress((p) => p.token === token && p.value.kind === 'begin');
          assert.equal(typeof begin.value.title, 'string');
          await session.waitForProgress((p) => p.token === token && p.value.kind === 'end');
          const kinds = session.progress.filter((p) => p.token === token).map((p) => p.value.kind);
          assert.equal(kinds[0], 'begin');
          assert.equal(kinds[kinds.length - 1], 'end');
          assert.ok(
            kinds.slice(1, -1).every((k) => k === 'report'),
            `begin, report*, end: ${kinds}`,
          );
        }),
      );

      it(
        'serves a partly typed suggestion again from the forwarding cache',
        run(async () => {
          assert.ok(shown, 'needs the suggestion of the first test');
          const suggestion = shown.item.insertText;
          assert.ok(suggestion.length >= 2, `a suggestion of 2 characters or more: ${JSON.stringify(suggestion)}`);
          // Type up to two characters of it (stopping after a line break), as an editor would, one per didChange.
          const typed = suggestion.startsWith('\n') ? '\n' : suggestion.slice(0, Math.min(2, suggestion.length - 1));
          let current = text;
          let version = 1;
          let at = text.length;
          for (const ch of [...typed]) {
            const range = rangeAt(current, at, at, 'utf-16');
            await session.change(uri, ++version, [{ range, text: ch }]);
            current = current.slice(0, at) + ch + current.slice(at);
            at += ch.length;
          }
          assert.deepEqual(await session.document(uri), { uri, languageId: 'python', version, text: current });
          const now = positionAt(current, at, 'utf-16');

          const statsBefore = await session.stats();
          const result = await session.inlineCompletion(uri, now);
          assert.equal(result.items.length, 1, `one item: ${JSON.stringify(result)}`);
          const [item] = result.items;
          assertInlineItemShape(assert, item);
          if (typed.includes('\n')) {
            assert.equal(item.insertText, suggestion.slice(typed.length));
            assert.deepEqual(item.range, { start: now, end: now });
          } else {
            assert.equal(item.insertText, suggestion);
            assert.deepEqual(item.range, { start: cursor, end: now });
          }
          const statsAfter = await session.stats();
          assert.equal(statsAfter.requests, statsBefore.requests + 1);
          assert.equal(statsAfter.cacheHits, statsBefore.cacheHits + 1);
          assert.equal(statsAfter.engineRuns, statsBefore.engineRuns);
          assert.equal(statsAfter.engine.completed, statsBefore.engine.completed);
        }),
      );

      it(
        'answers {items: []} inside a word and for an unknown document',
        run(async () => {
          // "def fib|onacci"
          assert.deepEqual(await session.inlineCompletion(uri, { line: 1, character: 7 }), { items: [] });
          assert.deepEqual(await session.inlineCompletion('file:///work/unknown.py', { line: 0, character: 0 }), {
            items: [],
          });
        }),
      );

      it(
        'answers -32602 for a position past the last line or a malformed position',
        run(async () => {
          await assert.rejects(session.inlineCompletion(uri, { line: 50, character: 0 }), {
            code: ErrorCode.InvalidParams,
          });
          await assert.rejects(session.inlineCompletion(uri, { line: -1, character: 0 }), {
            code: ErrorCode.InvalidParams,
          });
          await assert.rejects(session.inlineCompletion(uri, { line: '0', character: 0 }), {
            code: ErrorCode.InvalidParams,
          });
          await assert.rejects(session.request('textDocument/inlineCompletion', { textDocument: { uri } }), {
            code: ErrorCode.InvalidParams,
          });
        }),
      );

      it(
        'offers the suggestion as a completion item to clients without inline completion',
        run(async () => {
          const fallbackUri = 'file:///work/config.py';
          const source = 'import json\n\n\ndef load_config(path):\n    with open(path) as f:\n        ret';
          await session.open(fallbackUri, 'python', source);

          // After a partial word the edit replaces the word with the word plus the suggestion.
          const atWord = positionAt(source, source.length, 'utf-16');
          const wordStart = positionAt(source, source.length - 'ret'.length, 'utf-16');
          const list = await session.completion(fallbackUri, atWord);
          assert.deepEqual(Object.keys(list).sort(), ['isIncomplete', 'items']);
          assert.equal(list.isIncomplete, true);
          assert.equal(list.items.length, 1, `one item: ${JSON.stringify(list)}`);
          const [item] = list.items;
          assert.deepEqual(Object.keys(item).sort(), [
            'command',
            'detail',
            'filterText',
            'insertTextFormat',
            'kind',
            'label',
            'textEdit',
          ]);
          const { newText } = item.textEdit;
          assert.deepEqual(item.textEdit, { range: { start: wordStart, end: atWord }, newText });
          assert.ok(newText.startsWith('ret') && newText.length > 'ret'.length, JSON.stringify(newText));
          // The label is what the edit makes of the line: the word plus the suggestion's first line.
          assert.equal(item.label, newText.split(/\r?\n/)[0].trimEnd() || newText);
          assert.equal(item.filterText, newText);
          assert.equal(item.insertTextFormat, 1);
          assert.equal(item.kind, 1);
          assert.equal(item.detail, 'spark-ls');
          assert.equal(item.command.command, 'spark-ls.accept');
          assert.equal(item.command.arguments.length, 1);
          assert.equal(typeof item.command.arguments[0], 'string');
        }),
      );

      it(
        'speaks the llm-ls dialect',
        run(async () => {
          const llmUri = 'file:///work/sort.py';
          const source = 'def bubble_sort(items):\n    ';
          await session.open(llmUri, 'python', source);
          const result = await session.getCompletions(llmUri, positionAt(source, source.length, 'utf-16'));
          assert.deepEqual(Object.keys(result).sort(), ['completions', 'request_id']);
          assert.match(result.request_id, UUID);
          assert.equal(result.completions.length, 1, JSON.stringify(result));
          assert.deepEqual(Object.keys(result.completions[0]), ['generated_text']);
          assert.equal(typeof result.completions[0].generated_text, 'string');
          assert.ok(result.completions[0].generated_text.length > 0);
          const requestId = result.request_id;
          assert.equal(
            await session.request('llm-ls/acceptCompletion', {
              requestId,
              acceptedCompletion: 0,
              shownCompletions: [0],
            }),
            null,
          );
          assert.equal(await session.request('llm-ls/rejectCompletion', { requestId, shownCompletions: [0] }), null);
        }),
      );

      it(
        'counts shown, partially accepted and accepted suggestions',
        run(async () => {
          const item = shown.item;
          const statsBefore = await session.stats();
          await session.notify('textDocument/didShowCompletion', { item });
          await session.notify('textDocument/didPartiallyAcceptCompletion', { item, acceptedLength: 1 });
          assert.equal(await session.executeCommand('spark-ls.accept', item.command.arguments), null);
          assert.equal(await session.executeCommand('spark-ls.reject', item.command.arguments), null);
          const statsAfter = await session.stats();
          assert.equal(statsAfter.shown, statsBefore.shown + 1);
          assert.equal(statsAfter.partiallyAccepted, statsBefore.partiallyAccepted + 1);
          assert.equal(statsAfter.accepted, statsBefore.accepted + 1);
          assert.equal(statsAfter.requests, statsBefore.requests);
        }),
      );

      it(
        'reports exactly the documented spark/stats members',
        run(async () => {
          assertStatsShape(assert, await session.stats());
        }),
      );

      it(
        'ends cleanly',
        run(async () => {
          assert.equal(await session.shutdownAndExit(), cleanExit);
        }),
      );
    });

    it('answers unknown methods and malformed params with the documented errors', () =>
      withSession(async (session) => {
        await session.initialize();
        await assert.rejects(session.request('spark/doesNotExist', {}), { code: ErrorCode.MethodNotFound });
        await assert.rejects(session.request('$/doesNotExist', {}), { code: ErrorCode.MethodNotFound });
        // Unknown $/ notifications are ignored; so is an unknown notification outside $/.
        await session.notify('$/foo', { bar: 1 });
        await session.notify('$/setTrace', { value: 'off' });
        await session.notify('spark/unknownNotification', {});
        assert.equal(typeof (await session.stats()).requests, 'number');
        // Params of the wrong shape.
        await assert.rejects(session.document(5), { code: ErrorCode.InvalidParams });
        await assert.rejects(session.request('spark/document', {}), { code: ErrorCode.InvalidParams });
        await assert.rejects(
          session.request('textDocument/inlineCompletion', {
            textDocument: { uri: 5 },
            position: { line: 0, character: 0 },
          }),
          { code: ErrorCode.InvalidParams },
        );
        await assert.rejects(
          session.request('textDocument/completion', { textDocument: { uri: 'file:///x.py' }, position: [0, 0] }),
          { code: ErrorCode.InvalidParams },
        );
        await assert.rejects(session.request('workspace/executeCommand', { arguments: [] }), {
          code: ErrorCode.InvalidParams,
        });
        await assert.rejects(session.request('llm-ls/getCompletions', { position: { line: 0, character: 0 } }), {
          code: ErrorCode.InvalidParams,
        });
        // Still serving.
        assert.equal(typeof (await session.stats()).requests, 'number');
        assert.equal(await session.shutdownAndExit(), cleanExit);
      }));

    describe('lifecycle', () => {
      it('shutdown answers null, later requests get -32600, exit ends the session', () =>
        withSession(async (session) => {
          await session.initialize();
          assert.equal(await session.shutdown(), null);
          await assert.rejects(session.stats(), { code: ErrorCode.InvalidRequest });
          await assert.rejects(session.request('textDocument/inlineCompletion', {}), {
            code: ErrorCode.InvalidRequest,
          });
          await assert.rejects(session.shutdown(), { code: ErrorCode.InvalidRequest });
          await session.exit();
          if (transport === 'stdio') {
            assert.equal(await withTimeout(session.waitForProcessExit(), GUARD_MS, 'process exit'), 0);
          } else {
            await withTimeout(session.closed, GUARD_MS, 'the server to close the connection');
          }
        }));

      it(`exit without shutdown ${transport === 'stdio' ? 'exits with code 1' : 'closes the connection'}`, () =>
        withSession(async (session) => {
          await session.initialize();
          await session.exit();
          if (transport === 'stdio') {
            assert.equal(await withTimeout(session.waitForProcessExit(), GUARD_MS, 'process exit'), 1);
          } else {
            await withTimeout(session.closed, GUARD_MS, 'the server to close the connection');
          }
        }));

      it('exit before initialize ends the session too', () =>
        withSession(async (session) => {
          await session.exit();
          if (transport === 'stdio') {
            assert.equal(await withTimeout(session.waitForProcessExit(), GUARD_MS, 'process exit'), 1);
          } else {
            await withTimeout(session.closed, GUARD_MS, 'the server to close the connection');
          }
        }));

      if (transport === 'tcp') {
        it('serves a new connection after others ended, while another stays open', async () => {
          const first = await tcpServer.connect();
          const second = await tcpServer.connect();
          try {
            assert.deepEqual(
              await first.initialize({ positionEncodings: ['utf-32'] }),
              expectedInitializeResult('utf-32'),
            );
            assert.deepEqual(await second.initialize(), expectedInitializeResult('utf-16'));
            // Sessions are independent: documents of one are unknown to the other.
            await first.open('file:///work/one.py', 'python', 'a = 1\n');
            assert.equal((await first.document('file:///work/one.py')).text, 'a = 1\n');
            await assert.rejects(second.document('file:///work/one.py'), { code: ErrorCode.InvalidParams });
            assert.equal(await first.shutdownAndExit(), null);
            assert.equal(typeof (await second.stats()).requests, 'number');
            assert.equal(await second.shutdownAndExit(), null);
          } finally {
            await first.dispose();
            await second.dispose();
          }
        });
      }
    });

    // Last: under the sanitizers an overflow here ends the process, which over TCP serves every test above.
    it('accepts the largest document version, also for documents used as context', () =>
      withSession(async (session) => {
        // LSP versions are 32-bit integers; 2^31 - 1 is valid and must not overflow anywhere.
        const version = 2 ** 31 - 1;
        await session.initialize();
        await session.open('file:///work/old.py', 'python', 'def g(n):\n    ', version);
        await session.open('file:///work/new.py', 'python', 'def f(n):\n    ', 1);
        // A completion in one document, then one in another: the first becomes context of the second.
        for (const uri of ['file:///work/old.py', 'file:///work/new.py']) {
          const result = await session.inlineCompletion(uri, { line: 1, character: 4 });
          assert.ok(Array.isArray(result.items), JSON.stringify(result));
        }
        assert.deepEqual(await session.document('file:///work/old.py'), {
          uri: 'file:///work/old.py',
          languageId: 'python',
          version,
          text: 'def g(n):\n    ',
        });
        assert.equal(await session.shutdownAndExit(), cleanExit);
      }));
  });
}
