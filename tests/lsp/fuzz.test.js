'use strict';
// Robustness of spark-ls against malformed input on stdio, written as raw bytes (no JSON-RPC library on the
// sending side):
// 1. exact answers to malformed messages and framings (docs/LSP.md "Errors and robustness", lsp/framing.h and
//    lsp/jsonrpc.h): -32700 / -32600 with id null, -32600 / -32601 / -32602 with the request's id, nothing at all for
//    framing errors, resynchronisation on the next header, oversize bodies skipped exactly;
// 2. a seeded random mix of at least 10,000 messages: garbage bytes, broken and unusual headers, truncated bodies
//    followed by valid frames, invalid JSON and UTF-8, deep nesting, wrong types for id/method/params, valid
//    methods with mutated params, didChange storms, unknown methods, cancellations, and valid requests in between,
//    all written in random slices. Afterwards the server must still run, must have answered every request that
//    reached it intact (once, with its id, with the expected error where one is determined), must not have
//    answered ids it never received intact, must hold exactly the text the valid edits produced, must have written
//    nothing but LSP frames to stdout, and must shut down with exit code 0.
//
//   node --test tests/lsp/fuzz.test.js
//   SPARK_FUZZ_SEED=1234 node --test tests/lsp/fuzz.test.js      # replay a run (the seed is printed)
//   SPARK_FUZZ_MESSAGES=50000 node --test tests/lsp/fuzz.test.js  # a longer run

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const util = require('node:util');

const {
  ErrorCode,
  GUARD_MS,
  RawSession,
  expectedInitializeResult,
  frame,
  idKey,
  positionAt,
  rangeAt,
  withServerLog,
} = require('./common');

const SEED = process.env.SPARK_FUZZ_SEED ? Number(process.env.SPARK_FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const MESSAGES = Number(process.env.SPARK_FUZZ_MESSAGES || 10000);

// ---------------------------------------------------------------------------------------------------------------
// Deterministic randomness.

// mulberry32: small, fast, and good enough to pick fuzz cases; the same seed replays the same byte stream.
function makeRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const random = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) {
        b[i] = Math.floor(next() * 256);
      }
      return b;
    },
    // Picks a key of `weights` ({name: weight}) with probability proportional to its weight.
    weighted: (weights) => {
      const total = Object.values(weights).reduce((a, b) => a + b, 0);
      let r = next() * total;
      for (const [name, w] of Object.entries(weights)) {
        r -= w;
        if (r < 0) {
          return name;
        }
      }
      return Object.keys(weights)[0];
    },
  };
  return random;
}

// ---------------------------------------------------------------------------------------------------------------
// The deterministic checks.

const INIT_PARAMS = {
  processId: null,
  rootUri: null,
  capabilities: { general: { positionEncodings: ['utf-16'] }, window: { workDoneProgress: false } },
};

// Opens a raw session and initialises it; `body(session)` runs with the server's stderr added to failures.
async function withRawSession(body) {
  const session = await RawSession.start();
  try {
    return await withServerLog(session, async () => {
      const init = await session.request('init', 'initialize', INIT_PARAMS, GUARD_MS);
      assert.deepEqual(init, { jsonrpc: '2.0', id: 'init', result: expectedInitializeResult('utf-16') });
      await session.notify('initialized', {});
      return await body(session);
    });
  } finally {
    await session.dispose();
  }
}

function assertErrorResponse(response, id, code) {
  assert.deepEqual(Object.keys(response).sort(), ['error', 'id', 'jsonrpc'], JSON.stringify(response));
  assert.equal(response.jsonrpc, '2.0');
  assert.deepEqual(response.id, id);
  assert.equal(response.error.code, code, JSON.stringify(response));
  assert.equal(typeof response.error.message, 'string');
}

describe('malformed input over stdio', () => {
  it('gets exactly the documented answers, and framing errors get none', () =>
    withRawSession(async (session) => {
      let syncs = 0;
      const forbidden = []; // ids inside frames or batches that must never be answered

      // Writes `bytes`, then a spark/stats request; once that is answered, everything before it was processed.
      // The id-null errors answered in between must be exactly `codes`.
      async function expectNullIdErrors(bytes, codes, what) {
        const before = session.nullIdResponses.length;
        await session.write(bytes);
        const id = `sync-${++syncs}`;
        const sync = await session.request(id, 'spark/stats', undefined, GUARD_MS);
        assert.equal(typeof sync.result.requests, 'number', `${what}: the server still answers`);
        const answered = session.nullIdResponses.slice(before);
        for (const response of answered) {
          assertErrorResponse(response, null, response.error && response.error.code);
        }
        assert.deepEqual(
          answered.map((r) => r.error.code),
          codes,
          `${what}: id-null answers ${JSON.stringify(answered)}`,
        );
      }

      // Bodies that cannot name an id: -32700 or -32600 with id null.
      const deep = 100000;
      const nullIdCases = [
        ['an unterminated object', '{', ErrorCode.ParseError],
        ['a truncated request', '{"jsonrpc":"2.0","id":"t1","method":"spark/stats"', ErrorCode.ParseError],
        ['an empty body', '', ErrorCode.ParseError],
        ['trailing garbage', '{"jsonrpc":"2.0","id":"t2","method":"spark/stats"} x', ErrorCode.ParseError],
        [
          'a lone surrogate escape',
          '{"jsonrpc":"2.0","id":"t3","method":"spark/stats","params":{"s":"\\ud800"}}',
          ErrorCode.ParseError,
        ],
        ['nesting 100000 deep', `${'['.repeat(deep)}${']'.repeat(deep)}`, ErrorCode.ParseError],
        ['null', 'null', ErrorCode.InvalidRequest],
        ['a number', '42', ErrorCode.InvalidRequest],
        ['a string', '"spark/stats"', ErrorCode.InvalidRequest],
        ['an empty batch', '[]', ErrorCode.InvalidRequest],
        ['a batch', '[{"jsonrpc":"2.0","id":"t4","method":"spark/stats"}]', ErrorCode.InvalidRequest],
        ['a null id', '{"jsonrpc":"2.0","id":null,"method":"spark/stats"}', ErrorCode.InvalidRequest],
        ['a fractional id', '{"jsonrpc":"2.0","id":1.5,"method":"spark/stats"}', ErrorCode.InvalidRequest],
        ['a boolean id', '{"jsonrpc":"2.0","id":true,"method":"spark/stats"}', ErrorCode.InvalidRequest],
        ['an object id', '{"jsonrpc":"2.0","id":{},"method":"spark/stats"}', ErrorCode.InvalidRequest],
        [
          'an id beyond int64',
          '{"jsonrpc":"2.0","id":18446744073709551616,"method":"spark/stats"}',
          ErrorCode.InvalidRequest,
        ],
      ];
      forbidden.push('t1', 't2', 't3', 't4');
      for (const [what, body, code] of nullIdCases) {
        await expectNullIdErrors(frame(body), [code], what);
      }
      // Invalid UTF-8 inside a string: a parse error, so the id cannot be read.
      await expectNullIdErrors(
        frame(
          Buffer.concat([
            Buffer.from('{"jsonrpc":"2.0","id":"t5","method":"spark/stats","params":{"s":"'),
            Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
            Buffer.from('"}}'),
          ]),
        ),
        [ErrorCode.ParseError],
        'invalid UTF-8',
      );
      forbidden.push('t5');

      // Requests whose id is readable get their error with that id.
      const idCases = [
        ['method not a string', { jsonrpc: '2.0', id: 'r1', method: 5 }, ErrorCode.InvalidRequest],
        ['method missing', { jsonrpc: '2.0', id: 'r2', params: {} }, ErrorCode.InvalidRequest],
        ['jsonrpc 1.0', { jsonrpc: '1.0', id: 'r3', method: 'spark/stats' }, ErrorCode.InvalidRequest],
        ['jsonrpc missing', { id: 'r4', method: 'spark/stats' }, ErrorCode.InvalidRequest],
        ['params a string', { jsonrpc: '2.0', id: 'r5', method: 'spark/stats', params: 'x' }, ErrorCode.InvalidRequest],
        ['params a number', { jsonrpc: '2.0', id: 6, method: 'spark/document', params: 7 }, ErrorCode.InvalidRequest],
        ['an unknown method', { jsonrpc: '2.0', id: 'r7', method: 'fuzz/unknown' }, ErrorCode.MethodNotFound],
        ['an unknown $/ request', { jsonrpc: '2.0', id: 'r8', method: '$/unknown' }, ErrorCode.MethodNotFound],
        [
          'a uri of the wrong type',
          {
            jsonrpc: '2.0',
            id: 'r9',
            method: 'textDocument/inlineCompletion',
            params: { textDocument: { uri: 5 }, position: { line: 0, character: 0 } },
          },
          ErrorCode.InvalidParams,
        ],
        [
          'a negative position',
          {
            jsonrpc: '2.0',
            id: 'r10',
            method: 'textDocument/completion',
            params: { textDocument: { uri: 'file:///x.py' }, position: { line: -1, character: 0 } },
          },
          ErrorCode.InvalidParams,
        ],
        [
          'a second initialize',
          { jsonrpc: '2.0', id: 'r11', method: 'initialize', params: INIT_PARAMS },
          ErrorCode.InvalidRequest,
        ],
        ['an integer id', { jsonrpc: '2.0', id: -7, method: 'fuzz/unknown' }, ErrorCode.MethodNotFound],
        ['a string id like a number', { jsonrpc: '2.0', id: '-7', method: 'fuzz/unknown' }, ErrorCode.MethodNotFound],
      ];
      for (const [what, message, code] of idCases) {
        const response = session.waitForResponse(message.id, GUARD_MS);
        await session.send(message);
        assertErrorResponse(await response, message.id, code);
        assert.equal(session.responses.get(idKey(message.id)).length, 1, what);
      }

      // Responses from the client that answer nothing, or break the rules, are not answered.
      await expectNullIdErrors(
        Buffer.concat([
          frame({ jsonrpc: '2.0', id: 'q1', result: null }),
          frame({ jsonrpc: '2.0', id: 'q2', result: 1, error: { code: 1, message: 'both' } }),
          frame({ jsonrpc: '2.0', id: 'q3', error: { code: 'x' } }),
          frame({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'from the client' } }),
        ]),
        [],
        'client responses',
      );
      forbidden.push('q1', 'q2', 'q3');

      // Framing errors are logged, never answered, and the reader resynchronises on the next header.
      const lost = (id) => {
        forbidden.push(id);
        return JSON.stringify({ jsonrpc: '2.0', id, method: 'spark/stats' });
      };
      const framingCases = [
        ['a non-decimal length', `Content-Length: abc\r\n\r\n${lost('f1')}`],
        ['a negative length', `Content-Length: -5\r\n\r\n${lost('f2')}`],
        ['a signed length', `Content-Length: +5\r\n\r\n${lost('f3')}`],
        ['an empty length', `Content-Length: \r\n\r\n${lost('f4')}`],
        ['a 21-digit length', `Content-Length: 123456789012345678901\r\n\r\n${lost('f5')}`],
        ['a length beyond 4 GiB', `Content-Length: 5000000000\r\n\r\n${lost('f6')}`],
        ['no Content-Length', `Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n${lost('f7')}`],
        [
          'duplicate equal lengths',
          (() => {
            const b = lost('f8');
            return `Content-Length: ${b.length}\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
          })(),
        ],
        [
          'duplicate different lengths',
          (() => {
            const b = lost('f9');
            return `Content-Length: ${b.length}\r\nContent-Length: 3\r\n\r\n${b}`;
          })(),
        ],
        ['a header without a colon', `Content-Length 52\r\n\r\n${lost('f10')}`],
        ['a bare CR in a header', `Content-Length: 52\rX\r\n\r\n${lost('f11')}`],
        ['a header over 8 KiB', `X-Padding: ${'a'.repeat(9000)}\r\n\r\n${lost('f12')}`],
        ['a header name over 128 bytes', `${'N'.repeat(200)}: 1\r\n\r\n${lost('f13')}`],
        ['garbage', Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a, 0x3a, 0x0d, 0x0a, 0x0d, 0x0a, 0x7b, 0x7d])],
      ];
      for (const [what, bytes] of framingCases) {
        await expectNullIdErrors(Buffer.from(bytes), [], what);
      }

      // A truncated body swallows the start of the next frame; the one after it is read normally.
      {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 'f14', method: 'spark/stats' });
        const truncated = `Content-Length: ${body.length + 10}\r\n\r\n${body}`;
        const swallowed = frame({ jsonrpc: '2.0', id: 'f15', method: 'spark/stats' });
        forbidden.push('f14', 'f15');
        await expectNullIdErrors(
          Buffer.concat([Buffer.from(truncated), swallowed]),
          [ErrorCode.ParseError],
          'a truncated body',
        );
      }

      // An oversize body (64 MiB + 1) is skipped exactly: the frame right after it is read.
      {
        const size = 64 * 1024 * 1024 + 1;
        const header = Buffer.from(`Content-Length: ${size}\r\n\r\n`);
        const response = session.waitForResponse('after-oversize', 4 * GUARD_MS);
        await session.write(header);
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        for (let left = size; left > 0; left -= chunk.length) {
          await session.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
        }
        await session.send({ jsonrpc: '2.0', id: 'after-oversize', method: 'spark/stats' });
        assert.equal(typeof (await response).result.requests, 'number');
      }

      // Unusual but valid framings are read: any header case, bare \n line ends, spaces and tabs around the value,
      // other headers, blank lines between frames, and a frame split into single bytes.
      const valid = (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'spark/stats' });
      const validFramings = [
        ['v1', (b) => `content-length: ${Buffer.byteLength(b)}\r\n\r\n${b}`],
        ['v2', (b) => `CONTENT-LENGTH:${Buffer.byteLength(b)}\n\n${b}`],
        ['v3', (b) => `Content-Length: \t${Buffer.byteLength(b)} \t\r\n\r\n${b}`],
        [
          'v4',
          (b) =>
            `Content-Length: ${Buffer.byteLength(b)}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n${b}`,
        ],
        ['v5', (b) => `X-Other: 1\r\nContent-Length: ${Buffer.byteLength(b)}\n\r\n${b}`],
        ['v6', (b) => `\r\n\n\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`],
      ];
      for (const [id, make] of validFramings) {
        const response = session.waitForResponse(id, GUARD_MS);
        await session.write(make(valid(id)));
        assert.equal(typeof (await response).result.requests, 'number', id);
      }
      {
        const response = session.waitForResponse('v7', GUARD_MS);
        for (const byte of frame(valid('v7'))) {
          await session.write(Buffer.from([byte]));
        }
        assert.equal(typeof (await response).result.requests, 'number', 'v7');
      }

      // Nothing that was lost was answered, nothing was answered twice, and stdout held only frames.
      for (const id of forbidden) {
        assert.equal(session.responses.has(idKey(id)), false, `id ${id} must not be answered`);
      }
      for (const [key, list] of session.responses) {
        assert.equal(list.length, 1, `id ${key} answered ${list.length} times`);
      }
      assert.deepEqual(session.junk, [], 'stdout carries only LSP frames');

      const shutdown = await session.request('shutdown', 'shutdown', undefined, GUARD_MS);
      assert.deepEqual(shutdown, { jsonrpc: '2.0', id: 'shutdown', result: null });
      await session.notify('exit');
      assert.equal(await session.exited, 0);
    }));
});

// ---------------------------------------------------------------------------------------------------------------
// The random run.

const CHUNK_SIZES = [1, 7, 64, 512, 4096, 65536];

// Texts inserted by edits: non-ASCII of every width, combining marks, line breaks, code.
const INSERTS = [
  'x',
  'é',
  '😀',
  'e\u0301',
  '中文',
  '\n',
  '    ',
  '\t',
  'def f(n):\n    return n\n',
  '',
  '"',
  '\\',
  '}',
];
// Values that replace params fields: wrong types, extremes, absent-like.
const ODD_VALUES = [
  null,
  true,
  false,
  0,
  -1,
  -2147483649,
  2147483648,
  4294967296,
  9007199254740993,
  1e300,
  -1e300,
  0.5,
  '',
  'x',
  '0',
  'file:///fuzz/nowhere.py',
  'é😀',
  [],
  [1, 2],
  {},
  { line: 0 },
  { line: 0, character: 0 },
  { uri: 5 },
];

// A random JSON-ish value, for params of unknown methods and for mutations.
function randomValue(random, depth = 0) {
  const kind = random.int(0, depth > 3 ? 3 : 6);
  switch (kind) {
    case 0:
      return random.pick(ODD_VALUES);
    case 1:
      return random.int(-1e6, 1e6);
    case 2:
      return random.pick(INSERTS);
    case 3:
      return random.chance(0.5);
    case 4: {
      const n = random.int(0, 3);
      return Array.from({ length: n }, () => randomValue(random, depth + 1));
    }
    default: {
      const o = {};
      for (let i = random.int(0, 3); i > 0; i--) {
        o[random.pick(['uri', 'line', 'character', 'position', 'textDocument', 'text', 'range', 'a'])] = randomValue(
          random,
          depth + 1,
        );
      }
      return o;
    }
  }
}

// Replaces, deletes or adds one member somewhere inside `value` (a deep copy is mutated and returned).
function mutate(random, value) {
  const copy = JSON.parse(JSON.stringify(value));
  const containers = [];
  const walk = (v) => {
    if (v !== null && typeof v === 'object') {
      containers.push(v);
      for (const child of Object.values(v)) {
        walk(child);
      }
    }
  };
  walk(copy);
  if (containers.length === 0) {
    return randomValue(random);
  }
  const target = random.pick(containers);
  const keys = Object.keys(target);
  const action = keys.length === 0 ? 'add' : random.pick(['replace', 'replace', 'replace', 'delete', 'add']);
  if (action === 'replace') {
    target[random.pick(keys)] = random.pick(ODD_VALUES);
  } else if (action === 'delete') {
    if (Array.isArray(target)) {
      target.splice(random.int(0, target.length - 1), 1);
    } else {
      delete target[random.pick(keys)];
    }
  } else if (Array.isArray(target)) {
    target.push(randomValue(random));
  } else {
    target[random.pick(['extra', 'line', 'character', 'uri', 'version', 'text'])] = randomValue(random);
  }
  return copy;
}

/**
 * Generates the byte stream of a fuzz run and the expectations on the answers.
 *
 * Every request id is unique. Requests are classified as
 * - required: sent in a frame the reader must read intact (the previous piece left it between frames); the server
 *   must answer it exactly once, with `expect` where the outcome is determined;
 * - optional: the frame right after a truncated body, which the body swallows (partly);
 * - forbidden: ids inside frames that must be dropped (framing errors, batches, bodies that do not parse).
 */
class FuzzScript {
  constructor(random) {
    this.random = random;
    this.nextId = 1;
    this.required = new Map(); // idKey -> {id, method, expect}
    this.optional = new Set(); // idKey
    this.forbidden = new Map(); // idKey -> the kind of junk that carried it
    this.counts = {};
    this.messages = 0;
    this.completionIds = [];
    this.recentIds = [];
    // The document only valid edits touch: its text must match at the end.
    this.tracked = {
      uri: 'file:///fuzz/tracked.py',
      text: 'def start():\n    pass  # é😀\n',
      version: 1,
      nextVersion: 2,
    };
    this.others = ['file:///fuzz/a.py', 'file:///fuzz/b.ts', 'file:///fuzz/c.cpp'];
  }

  id() {
    const n = this.nextId++;
    // Integer and string ids alike; 1 and "1" must stay distinct, so strings carry a prefix anyway.
    return n % 2 === 0 ? n : `id-${n}`;
  }

  count(kind, n = 1) {
    this.counts[kind] = (this.counts[kind] || 0) + n;
    this.messages += n;
  }

  // A request that must be answered.
  requireRequest(method, params, expect) {
    const id = this.id();
    this.required.set(idKey(id), { id, method, expect });
    this.recentIds.push(id);
    if (this.recentIds.length > 20) {
      this.recentIds.shift();
    }
    const message = { jsonrpc: '2.0', id, method };
    if (params !== undefined) {
      message.params = params;
    }
    return message;
  }

  // The frames to send for a document with random text.
  openDocuments() {
    const t = this.tracked;
    return [
      frame({
        jsonrpc: '2.0',
        method: 'textDocument/didOpen',
        params: { textDocument: { uri: t.uri, languageId: 'python', version: 1, text: t.text } },
      }),
      ...this.others.map((uri, i) =>
        frame({
          jsonrpc: '2.0',
          method: 'textDocument/didOpen',
          params: {
            textDocument: {
              uri,
              languageId: ['python', 'typescript', 'cpp'][i],
              version: 1,
              text: [
                'def fibonacci(n):\n    ',
                'export function add(a: number, b: number) {\n  ',
                'int main() {\r\n    ',
              ][i],
            },
          },
        }),
      ),
    ];
  }

  // A valid position in one of the other documents (line 0 or 1, small characters).
  otherPosition() {
    return { line: this.random.int(0, 1), character: this.random.int(0, 4) };
  }

  // --- generators: each returns an array of Buffers to write, in order ---

  validRequest() {
    const r = this.random;
    const kind = r.weighted({ stats: 4, document: 4, unknown: 2, inline: 1, completion: 0.3, llm: 0.3, command: 0.5 });
    this.count(`request:${kind}`);
    let message;
    switch (kind) {
      case 'stats':
        message = this.requireRequest('spark/stats', undefined, { result: 'stats' });
        break;
      case 'document': {
        const t = this.tracked;
        message = this.requireRequest(
          'spark/document',
          { textDocument: { uri: t.uri } },
          {
            result: { uri: t.uri, languageId: 'python', version: t.version, text: t.text },
          },
        );
        break;
      }
      case 'unknown':
        message = this.requireRequest(`fuzz/${r.pick(['a', 'b', 'doesNotExist'])}`, randomValue(r), {
          code: ErrorCode.MethodNotFound,
        });
        if (message.params === null || typeof message.params !== 'object') {
          delete message.params; // non-structured params are a different error (-32600)
        }
        break;
      case 'inline': {
        const tracked = r.chance(0.5);
        const uri = tracked ? this.tracked.uri : r.pick(this.others);
        const position = tracked ? this.trackedPosition() : this.otherPosition();
        // The other documents change under mutated notifications, so a position there may be past their end.
        const codes = [ErrorCode.RequestCancelled, ErrorCode.ContentModified];
        message = this.requireRequest(
          'textDocument/inlineCompletion',
          { textDocument: { uri }, position, context: { triggerKind: r.pick([1, 2]) } },
          { result: 'inline', codes: tracked ? codes : [...codes, ErrorCode.InvalidParams] },
        );
        break;
      }
      case 'completion':
        message = this.requireRequest(
          'textDocument/completion',
          { textDocument: { uri: r.pick(this.others) }, position: this.otherPosition() },
          { result: 'any', codes: [ErrorCode.RequestCancelled, ErrorCode.ContentModified, ErrorCode.InvalidParams] },
        );
        break;
      case 'llm':
        message = this.requireRequest(
          'llm-ls/getCompletions',
          { textDocument: { uri: r.pick(this.others) }, position: this.otherPosition(), ide: 'fuzz' },
          { result: 'any', codes: [ErrorCode.RequestCancelled, ErrorCode.ContentModified, ErrorCode.InvalidParams] },
        );
        break;
      default:
        message = this.requireRequest(
          'workspace/executeCommand',
          { command: r.pick(['spark-ls.accept', 'spark-ls.reject']), arguments: [`cmpl-${r.int(0, 50)}`] },
          { result: null, codes: [ErrorCode.InvalidParams] },
        );
        break;
    }
    return [frame(message)];
  }

  // A known method with params mutated 1 to 3 times: answered with a result or a documented error.
  mutatedRequest() {
    const r = this.random;
    const uri = r.pick(this.others);
    const position = this.otherPosition();
    const templates = {
      'textDocument/inlineCompletion': { textDocument: { uri }, position, context: { triggerKind: 2 } },
      'textDocument/completion': { textDocument: { uri }, position },
      'llm-ls/getCompletions': { textDocument: { uri }, position, ide: 'fuzz', fim: { enabled: true } },
      'llm-ls/acceptCompletion': { requestId: 'x', acceptedCompletion: 0, shownCompletions: [0] },
      'llm-ls/rejectCompletion': { requestId: 'x', shownCompletions: [0] },
      'workspace/executeCommand': { command: 'spark-ls.reject', arguments: ['cmpl-1'] },
      'spark/document': { textDocument: { uri } },
      'spark/stats': {},
    };
    const method = r.pick(Object.keys(templates));
    let params = templates[method];
    for (let i = r.int(1, 3); i > 0; i--) {
      params = mutate(r, params);
    }
    this.count('mutated request');
    if (params === null || typeof params !== 'object') {
      // Not structured: the request object itself is invalid.
      return [frame(this.requireRequest(method, params, { code: ErrorCode.InvalidRequest }))];
    }
    return [
      frame(
        this.requireRequest(method, params, {
          result: 'any',
          codes: [ErrorCode.InvalidParams, ErrorCode.RequestCancelled, ErrorCode.ContentModified],
        }),
      ),
    ];
  }

  // A notification with mutated params, on documents other than the tracked one.
  mutatedNotification() {
    const r = this.random;
    const uri = r.pick(this.others);
    const position = this.otherPosition();
    const range = { start: position, end: position };
    const templates = {
      'textDocument/didOpen': { textDocument: { uri, languageId: 'python', version: 1, text: 'x = 1\n' } },
      'textDocument/didChange': { textDocument: { uri, version: 9 }, contentChanges: [{ range, text: 'y' }] },
      'textDocument/didClose': { textDocument: { uri } },
      'textDocument/didSave': { textDocument: { uri } },
      'textDocument/didShowCompletion': { item: { insertText: 'x', range } },
      'textDocument/didPartiallyAcceptCompletion': { item: { insertText: 'x' }, acceptedLength: 1 },
      '$/cancelRequest': { id: r.pick(this.recentIds.length > 0 ? this.recentIds : [1]) },
      '$/setTrace': { value: 'off' },
      'workspace/didChangeConfiguration': {
        settings: {
          'spark-ls': {
            maxTokens: r.pick([-1, 0, 1, 8, 16, 'x', null, 1e300, true, {}]),
            fimRatio: r.pick([-1, 0, 0.5, 2, 'x', 1e300]),
            multiline: r.pick([true, false, 'x', 0]),
            contextFiles: r.pick([true, false, null]),
            unknownSetting: randomValue(r),
          },
        },
      },
      'workspace/didChangeWorkspaceFolders': { event: { added: [], removed: [] } },
    };
    const method = r.pick(Object.keys(templates));
    let params = templates[method];
    for (let i = r.int(0, 3); i > 0; i--) {
      params = mutate(r, params);
    }
    if (method === 'workspace/didChangeConfiguration' && params && typeof params === 'object') {
      // Mutations must not name models (a reload costs seconds and may fail by design) or slow requests down
      // (a valid huge debounceMs or timeBudgetMs would hold requests past the guard).
      params = { settings: { 'spark-ls': pickSafeSettings(params) } };
    }
    this.count('mutated notification');
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) {
      message.params = params;
    }
    return [frame(message)];
  }

  // A position in the tracked document, on a code point boundary.
  trackedPosition() {
    const t = this.tracked.text;
    return positionAt(t, this.boundary(this.random.int(0, t.length)), 'utf-16');
  }

  boundary(offset) {
    const t = this.tracked.text;
    const code = t.charCodeAt(offset - 1);
    return code >= 0xd800 && code <= 0xdbff ? offset - 1 : offset;
  }

  // A burst of didChange notifications on the tracked document (valid, or refused as a whole), sometimes with
  // completion requests in between.
  storm() {
    const r = this.random;
    const t = this.tracked;
    const out = [];
    const n = r.int(3, 30);
    for (let i = 0; i < n; i++) {
      if (r.chance(0.1)) {
        out.push(...this.validRequestOf('inline-tracked'));
        continue;
      }
      const changes = [];
      let text = t.text;
      let mostLines = lineCount(text); // over every intermediate text: a refused change must be past all of them
      const refuse = r.chance(0.1);
      for (let k = r.int(1, 3); k > 0; k--) {
        if (r.chance(0.05)) {
          text = r.pick(['', 'x', 'def again():\n    return "é😀"\n']);
          changes.push({ text });
          mostLines = Math.max(mostLines, lineCount(text));
          continue;
        }
        let start = r.int(0, text.length);
        let end = Math.min(text.length, start + (r.chance(0.5) ? 0 : r.int(0, 20)));
        if (text.length > 3000) {
          start = 0;
          end = r.int(500, text.length);
        }
        const fix = (o) => {
          const c = text.charCodeAt(o - 1);
          return c >= 0xd800 && c <= 0xdbff ? o - 1 : o;
        };
        start = fix(start);
        end = Math.max(start, fix(end));
        const inserted = r.pick(INSERTS);
        const change = { range: rangeAt(text, start, end, 'utf-16'), text: inserted };
        if (r.chance(0.1)) {
          change.rangeLength = r.int(0, 100);
        }
        changes.push(change);
        text = text.slice(0, start) + inserted + text.slice(end);
        mostLines = Math.max(mostLines, lineCount(text));
      }
      if (refuse) {
        // A line past the end, anywhere in the notification: nothing of it applies.
        const past = { line: mostLines + r.int(0, 5), character: 0 };
        changes.splice(r.int(0, changes.length), 0, { range: { start: past, end: past }, text: 'lost' });
      }
      const version = t.nextVersion++;
      out.push(
        frame({
          jsonrpc: '2.0',
          method: 'textDocument/didChange',
          params: { textDocument: { uri: t.uri, version }, contentChanges: changes },
        }),
      );
      if (!refuse) {
        t.text = text;
        t.version = version;
      }
      this.count('didChange');
    }
    return out;
  }

  validRequestOf(kind) {
    if (kind === 'inline-tracked') {
      this.count('request:inline');
      return [
        frame(
          this.requireRequest(
            'textDocument/inlineCompletion',
            { textDocument: { uri: this.tracked.uri }, position: this.trackedPosition() },
            { result: 'inline', codes: [ErrorCode.RequestCancelled, ErrorCode.ContentModified] },
          ),
        ),
      ];
    }
    throw new Error(kind);
  }

  // Bytes that are not a frame, or frames the reader must refuse. All leave the reader able to read the next
  // frame intact, except a truncated body, after which one frame is sacrificed.
  junk() {
    const r = this.random;
    const kind = r.weighted({
      garbage: 3,
      badHeader: 3,
      missingLength: 1,
      duplicateLength: 1,
      invalidLength: 2,
      longHeader: 0.2,
      truncated: 1,
      invalidJson: 2,
      invalidUtf8: 1,
      deep: 0.5,
      notARequest: 2,
      clientResponse: 1,
      batch: 0.5,
    });
    this.count(`junk:${kind}`);
    const lostRequest = () => {
      const id = this.id();
      this.forbidden.set(idKey(id), kind);
      return JSON.stringify({ jsonrpc: '2.0', id, method: 'spark/stats' });
    };
    switch (kind) {
      case 'garbage':
        return [r.bytes(r.int(1, 300))];
      case 'badHeader': {
        if (r.chance(0.2)) {
          // The bad line comes before Content-Length: resynchronising finds that header, and the frame is read.
          const body = JSON.stringify(this.requireRequest('spark/stats', undefined, { result: 'stats' }));
          return [Buffer.from(`${'N'.repeat(r.int(129, 300))}: 1\r\nContent-Length: ${body.length}\r\n\r\n${body}`)];
        }
        const body = lostRequest();
        const header = r.pick([
          `Content-Length ${body.length}\r\n\r\n`,
          `Content-Length: ${body.length}\rX\r\n\r\n`,
          `: ${body.length}\r\n\r\n`,
          `Content-Length: ${body.length}\r\nBad Header\r\n\r\n`,
          `Content-Length: ${body.length}\r\nX-Ctl: a\u0001b\r\n\r\n`,
        ]);
        return [Buffer.from(header + body)];
      }
      case 'missingLength':
        return [Buffer.from(`Content-Type: application/vscode-jsonrpc\r\n\r\n${lostRequest()}`)];
      case 'duplicateLength': {
        const body = lostRequest();
        const second = r.chance(0.5) ? body.length : r.int(0, 100);
        return [Buffer.from(`Content-Length: ${body.length}\r\nContent-Length: ${second}\r\n\r\n${body}`)];
      }
      case 'invalidLength': {
        const body = lostRequest();
        const value = r.pick([
          '-1',
          '+5',
          '0x10',
          '5.0',
          '',
          'abc',
          '1 2',
          '99999999999999999999999',
          '4294967297',
          '18446744073709551616',
        ]);
        return [Buffer.from(`Content-Length: ${value}\r\n\r\n${body}`)];
      }
      case 'longHeader':
        return [Buffer.from(`X-Long: ${'h'.repeat(r.int(8200, 20000))}\r\n\r\n${lostRequest()}`)];
      case 'truncated': {
        const body = lostRequest();
        const cut = r.int(0, body.length);
        const sent = body.slice(0, cut);
        const declared = Buffer.byteLength(sent) + r.int(1, 30);
        // The next frame is (partly) swallowed: a request that may or may not be answered.
        const sacrifice = this.id();
        this.optional.add(idKey(sacrifice));
        const next = frame({
          jsonrpc: '2.0',
          id: sacrifice,
          method: 'spark/stats',
          params: { padding: 'p'.repeat(40) },
        });
        return [Buffer.from(`Content-Length: ${declared}\r\n\r\n${sent}`), next];
      }
      case 'invalidJson': {
        const body = lostRequest();
        let broken = r.pick([
          () => body.slice(0, r.int(0, body.length - 1)),
          () => body.replace(':', ''),
          () => `${body},`,
          () => body.replace('{', '['),
          () => `{"jsonrpc":"2.0","id":${JSON.stringify(this.id())},"method":"spark/stats",}`,
          () => "{'jsonrpc':'2.0'}",
          () => 'NaN',
          () => '{"a":01}',
          () => '{"a":"\\x"}',
          () => '{"a":"\\ud800"}',
          () => '\u0000',
        ])();
        if (isJson(broken)) {
          broken = `{${broken}`;
        }
        return [frame(broken)];
      }
      case 'invalidUtf8': {
        const body = lostRequest();
        const at = body.indexOf('spark');
        const bad = r.pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]);
        return [frame(Buffer.concat([Buffer.from(body.slice(0, at)), Buffer.from(bad), Buffer.from(body.slice(at))]))];
      }
      case 'deep': {
        const depth = r.chance(0.5) ? r.int(1, 400) : r.int(600, 200000);
        const open = r.chance(0.5) ? '[' : '{"a":';
        const close = open === '[' ? ']' : '}';
        const nested = `${open.repeat(depth)}1${close.repeat(depth)}`;
        const id = this.id();
        const body = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"fuzz/deep","params":{"v":${nested}}}`;
        if (depth <= 400) {
          this.required.set(idKey(id), { id, method: 'fuzz/deep', expect: { code: ErrorCode.MethodNotFound } });
        } else {
          this.forbidden.set(idKey(id), kind); // too deep to parse: answered with id null
        }
        return [frame(body)];
      }
      case 'notARequest': {
        const id = this.id();
        const variant = r.int(0, 6);
        const message = [
          { jsonrpc: '2.0', id, method: r.pick([5, null, true, [], {}]) },
          { jsonrpc: r.pick(['1.0', 2, null]), id, method: 'spark/stats' },
          { id, method: 'spark/stats' },
          { jsonrpc: '2.0', id, method: 'spark/stats', params: r.pick(['x', 5, true]) },
          { jsonrpc: '2.0', id: r.pick([1.5, true, {}, [], -1e300, 1e19]), method: 'spark/stats' },
          r.pick([null, 5, 'x', true]),
          { jsonrpc: '2.0', id },
        ][variant];
        if (variant <= 3) {
          this.required.set(idKey(id), { id, method: 'invalid', expect: { code: ErrorCode.InvalidRequest } });
        } else if (variant === 6) {
          this.optional.add(idKey(id)); // neither request nor response: an error with the id, or nothing
        }
        return [frame(JSON.stringify(message))];
      }
      case 'clientResponse': {
        const id = this.id();
        this.forbidden.set(idKey(id), kind);
        return [
          frame(
            r.pick([
              { jsonrpc: '2.0', id, result: randomValue(r) },
              { jsonrpc: '2.0', id, error: { code: r.int(-33000, 0), message: 'x' } },
              { jsonrpc: '2.0', id, result: 1, error: { code: 1, message: 'both' } },
              { jsonrpc: '2.0', id, error: 'not an object' },
            ]),
          ),
        ];
      }
      default: {
        // A batch: refused as a whole with one -32600 (id null); its elements are not answered.
        const elements = Array.from({ length: r.int(0, 3) }, () => JSON.parse(lostRequest()));
        return [frame(elements)];
      }
    }
  }

  // Notifications nobody answers: unknown ones, cancellations of random ids, $/ ones.
  quietNotification() {
    const r = this.random;
    this.count('notification');
    const message = r.pick([
      () => ({ jsonrpc: '2.0', method: `$/fuzz${r.int(0, 9)}`, params: randomValue(r) }),
      () => ({ jsonrpc: '2.0', method: 'fuzz/notification', params: { a: 1 } }),
      () => ({
        jsonrpc: '2.0',
        method: '$/cancelRequest',
        params: { id: r.pick([...this.recentIds, 123456789, 'nope']) },
      }),
      () => ({ jsonrpc: '2.0', method: '$/progress', params: { token: 'x', value: {} } }),
      () => ({ jsonrpc: '2.0', method: 'initialized', params: {} }),
    ])();
    if (message.params === null || typeof message.params !== 'object') {
      delete message.params;
    }
    return [frame(message)];
  }

  // The next piece of the stream.
  next() {
    const kind = this.random.weighted({
      valid: 25,
      mutatedRequest: 14,
      mutatedNotification: 14,
      junk: 30,
      storm: 2,
      quiet: 8,
    });
    switch (kind) {
      case 'valid':
        return this.validRequest();
      case 'mutatedRequest':
        return this.mutatedRequest();
      case 'mutatedNotification':
        return this.mutatedNotification();
      case 'junk':
        return this.junk();
      case 'storm':
        return this.storm();
      default:
        return this.quietNotification();
    }
  }
}

function lineCount(text) {
  return text.split(/\r\n|\r|\n/).length;
}

function isJson(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// The settings of a mutated didChangeConfiguration that are safe to send (see mutatedNotification).
function pickSafeSettings(params) {
  const source = params && params.settings && params.settings['spark-ls'];
  const out = {};
  if (source && typeof source === 'object' && !Array.isArray(source)) {
    for (const key of ['maxTokens', 'fimRatio', 'multiline', 'contextFiles', 'unknownSetting']) {
      if (key in source) {
        out[key] = source[key];
      }
    }
    if (typeof out.maxTokens === 'number' && out.maxTokens > 64 && out.maxTokens < 1e9) {
      out.maxTokens = 64;
    }
  }
  return out;
}

// Ids of the requests around the fuzz run (initialize, the final checks).
const HARNESS_IDS = new Set(['init', 'final-document', 'final-stats', 'final-shutdown'].map(idKey));

// Checks one answer against its expectation; returns a description of the problem, or null.
function checkAnswer(entry, response) {
  const { expect } = entry;
  if ('error' in response) {
    const code = response.error && response.error.code;
    if (expect.code !== undefined) {
      return code === expect.code ? null : `expected error ${expect.code}`;
    }
    return (expect.codes || []).includes(code) ? null : `unexpected error ${code}`;
  }
  if (!('result' in response)) {
    return 'neither result nor error';
  }
  if (expect.code !== undefined) {
    return `expected error ${expect.code}`;
  }
  const { result } = response;
  if (expect.result === 'any') {
    return null;
  }
  if (expect.result === 'stats') {
    return result && typeof result.requests === 'number' && typeof result.engine === 'object' ? null : 'not stats';
  }
  if (expect.result === 'inline') {
    return result && Array.isArray(result.items) ? null : 'not an inline completion list';
  }
  return util.isDeepStrictEqual(result, expect.result) ? null : `expected result ${JSON.stringify(expect.result)}`;
}

describe('random input over stdio', () => {
  it(`survives ${MESSAGES} random and malformed messages (seed ${SEED})`, async (t) => {
    t.diagnostic(`fuzz seed ${SEED} (replay with SPARK_FUZZ_SEED=${SEED})`);
    process.stderr.write(`fuzz seed ${SEED} (replay with SPARK_FUZZ_SEED=${SEED})\n`);
    const random = makeRandom(SEED);
    const script = new FuzzScript(random);

    await withRawSession(async (session) => {
      for (const bytes of script.openDocuments()) {
        await session.write(bytes);
      }
      const started = Date.now();

      // Batches of pieces, concatenated and written in random slices.
      while (script.messages < MESSAGES) {
        const pieces = [];
        for (let i = random.int(1, 60); i > 0 && script.messages < MESSAGES; i--) {
          pieces.push(...script.next());
        }
        const batch = Buffer.concat(pieces);
        for (let at = 0; at < batch.length; ) {
          const size = random.pick(CHUNK_SIZES) * random.int(1, 4);
          await session.write(batch.subarray(at, at + size));
          at += size;
        }
        assert.ok(session.alive, `the server died after ${script.messages} messages`);
      }
      t.diagnostic(`wrote ${script.messages} messages, ${session.bytesWritten} bytes in ${Date.now() - started} ms`);
      t.diagnostic(`mix: ${JSON.stringify(script.counts)}`);

      // The server still answers, and every required request gets its answer.
      const tracked = script.tracked;
      const final = await session.request(
        'final-document',
        'spark/document',
        { textDocument: { uri: tracked.uri } },
        GUARD_MS,
      );
      assert.deepEqual(final.result, {
        uri: tracked.uri,
        languageId: 'python',
        version: tracked.version,
        text: tracked.text,
      });
      const missing = () => [...script.required.keys()].filter((key) => !session.responses.has(key));
      await session
        .waitUntil(() => missing().length === 0, 2 * GUARD_MS, 'answers to every request')
        .catch(() => {
          assert.fail(`never answered: ${missing().slice(0, 20).join(', ')} (${missing().length} in all)`);
        });
      t.diagnostic(`answered ${script.required.size} requests in ${Date.now() - started} ms`);

      // Exactly one answer per request, with the expected outcome; nothing answered that was not received intact.
      const problems = [];
      for (const [key, entry] of script.required) {
        const answers = session.responses.get(key);
        if (answers.length !== 1) {
          problems.push(`${key} (${entry.method}) answered ${answers.length} times`);
        }
        const problem = checkAnswer(entry, answers[0]);
        if (problem) {
          problems.push(`${key} (${entry.method}): ${problem}: ${JSON.stringify(answers[0]).slice(0, 300)}`);
        }
      }
      for (const key of session.responses.keys()) {
        if (script.forbidden.has(key)) {
          const answer = JSON.stringify(session.responses.get(key)[0]).slice(0, 200);
          problems.push(`${key} was answered, but it came in invalid ${script.forbidden.get(key)}: ${answer}`);
        } else if (!script.required.has(key) && !script.optional.has(key) && !HARNESS_IDS.has(key)) {
          problems.push(`${key} was answered, but never sent`);
        }
      }
      assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problems`);
      assert.deepEqual(session.junk, [], 'stdout carries only LSP frames');
      for (const response of session.nullIdResponses) {
        assert.ok(
          [ErrorCode.ParseError, ErrorCode.InvalidRequest].includes(response.error && response.error.code),
          `an id-null answer is a parse or request error: ${JSON.stringify(response)}`,
        );
      }

      const stats = await session.request('final-stats', 'spark/stats', undefined, GUARD_MS);
      assert.equal(typeof stats.result.requests, 'number');
      const { requests, engineRuns, cancelled, superseded, contentModified } = stats.result;
      t.diagnostic(`server: ${JSON.stringify({ requests, engineRuns, cancelled, superseded, contentModified })}`);
      const shutdown = await session.request('final-shutdown', 'shutdown', undefined, GUARD_MS);
      assert.deepEqual(shutdown, { jsonrpc: '2.0', id: 'final-shutdown', result: null });
      await session.notify('exit');
      assert.equal(await session.exited, 0);
    });
  });
});
