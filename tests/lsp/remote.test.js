'use strict';
// Remote backends and `spark-ls serve --http` (docs/remote.md), all on loopback:
// - the language server sends its completions to a `serve --http` process through the OpenAI-compatible, the
//   llama.cpp /infill and the Ollama /api/generate backends, and inline completions arrive;
// - $/cancelRequest closes the backend request, and the serving side counts it cancelled (/metrics);
// - a dead backend (nothing listening) and a slow one (accepts, never answers) give window/showMessage and an
//   empty result within the timeout;
// - the HTTP server answers malformed, oversized and unauthorised requests with 400/401 and keeps serving;
// - a bounded load of 8 concurrent clients × SPARK_HTTP_LOAD_REQUESTS requests (default 200) loses none.
//
//   node --test tests/lsp/remote.test.js

const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { after, before, describe, it } = require('node:test');

const { CancellationTokenSource, ErrorCode, GUARD_MS, startStdio, withTimeout } = require('./common');
const { spawnServer } = require('./common').client;

const LOAD_CLIENTS = 8;
const LOAD_REQUESTS = Number(process.env.SPARK_HTTP_LOAD_REQUESTS || 200);

/** Starts `spark-ls serve --http 0 ...args`; resolves {child, port} once /health answers 200. */
async function startHttp(args = [], env = {}) {
  const child = await spawnServer(['--http', '0', ...args], { env });
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      const look = () => {
        const m = /http listening on 127\.0\.0\.1:(\d+)/.exec(child.stderrText);
        if (m) resolve(Number(m[1]));
      };
      child.stderr.on('data', look);
      child.once('exit', (code) => reject(new Error(`serve --http exited with ${code}: ${child.stderrText}`)));
      look();
    }),
    GUARD_MS,
    'serve --http to listen',
  );
  // /health is 503 until the models are placed; wait for the line that says they are.
  await withTimeout(
    new Promise((resolve) => {
      const look = () => /models loaded/.test(child.stderrText) && resolve();
      child.stderr.on('data', look);
      look();
    }),
    GUARD_MS,
    'the models to load',
  );
  return { child, port };
}

/** A serve --http process for the enclosing describe(): started before its tests, stopped after them. */
function httpServerFor(args = []) {
  const server = {};
  before(async () => Object.assign(server, await startHttp(args)));
  after(async () => {
    server.child.kill('SIGTERM');
    await server.child.closed;
  });
  return server;
}

/** One HTTP request on loopback: resolves {status, headers, body}. */
function request(port, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

/** A metric's value from /metrics text. */
async function metric(port, series, headers = {}) {
  const res = await request(port, 'GET', '/metrics', undefined, headers);
  assert.equal(res.status, 200, res.body);
  const line = res.body.split('\n').find((l) => l.startsWith(series + ' '));
  assert.ok(line, `no ${series} in /metrics`);
  return Number(line.slice(series.length + 1));
}

/** Polls a condition (a failure guard bounds it; each try is a real observation, not a sleep to synchronise). */
async function until(what, check) {
  const deadline = Date.now() + GUARD_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function lspWith(settings) {
  const session = await startStdio();
  await session.initialize({ positionEncodings: ['utf-16'], initializationOptions: settings });
  return session;
}

const PY = 'def add(a, b):\n    \n\nprint(add(1, 2))\n';
const PY_CURSOR = { line: 1, character: 4 };

describe('the language server on a serve --http backend', () => {
  const server = httpServerFor();

  for (const backend of ['openai', 'llama.cpp', 'ollama']) {
    it(`inline completions arrive through the ${backend} backend`, async () => {
      const session = await lspWith({
        backend,
        backendUrl: `http://127.0.0.1:${server.port}`,
        backendModel: 'spark-target',
        maxTokens: 16,
      });
      try {
        const before = await metric(server.port, 'spark_completions_total{result="completed"}');
        session.open('file:///remote/a.py', 'python', PY);
        const result = await withTimeout(session.inlineCompletion('file:///remote/a.py', PY_CURSOR), GUARD_MS, 'completion');
        assert.equal(result.items.length, 1, JSON.stringify(result));
        const item = result.items[0];
        assert.ok(item.insertText.trim().length > 0, JSON.stringify(item));
        console.log(`${backend}: ${JSON.stringify(item.insertText)}`);
        assert.deepEqual(item.range, { start: PY_CURSOR, end: PY_CURSOR });
        assert.equal(session.showMessages.length, 0, JSON.stringify(session.showMessages));
        const after = await metric(server.port, 'spark_completions_total{result="completed"}') + await metric(server.port, 'spark_completions_total{result="cancelled"}');
        assert.ok(after > before, `${after} > ${before}`);
        const stats = await session.stats();
        assert.equal(stats.engine.loaded, true);
        assert.ok(stats.engineRuns >= 1);
      } finally {
        await session.shutdownAndExit();
      }
    });
  }
});

describe('cancellation reaches the serving side', () => {
  const server = httpServerFor(['--test-double', 'slow-engine']);

  for (const backend of ['openai', 'llama.cpp']) {
    it(`$/cancelRequest closes the ${backend} request and the server counts it cancelled`, async () => {
      const session = await lspWith({
        backend,
        backendUrl: `http://127.0.0.1:${server.port}`,
        backendModel: 'spark-target',
        maxTokens: 3000, // a minute at 20 ms per token: only cancellation ends it within the test
        backendTimeoutMs: 600000,
      });
      try {
        const cancelledBefore = await metric(server.port, 'spark_completions_total{result="cancelled"}');
        session.open('file:///remote/c.py', 'python', PY);
        const source = new CancellationTokenSource();
        const pending = session.inlineCompletion('file:///remote/c.py', PY_CURSOR, { token: source.token });
        await until('the request to reach the engine', async () => (await metric(server.port, 'spark_completions_in_flight')) === 1);
        const t0 = Date.now();
        source.cancel();
        await assert.rejects(withTimeout(pending, GUARD_MS, 'the cancelled request'), { code: ErrorCode.RequestCancelled });
        assert.ok(Date.now() - t0 < 5000, `cancel answered after ${Date.now() - t0} ms`);
        await until('the server to count the cancel', async () =>
          (await metric(server.port, 'spark_completions_total{result="cancelled"}')) === cancelledBefore + 1);
        assert.equal(await metric(server.port, 'spark_completions_in_flight'), 0);
      } finally {
        await session.shutdownAndExit();
      }
    });
  }
});

describe('a backend that fails', () => {
  it('a dead backend (nothing listening) gives showMessage and an empty result', async () => {
    const probe = net.createServer();
    await new Promise((r) => probe.listen(0, '127.0.0.1', r));
    const port = probe.address().port;
    await new Promise((r) => probe.close(r)); // the port is now closed: connections are refused
    const session = await lspWith({ backend: 'openai', backendUrl: `http://127.0.0.1:${port}`, backendTimeoutMs: 2000 });
    try {
      session.open('file:///remote/d.py', 'python', PY);
      const shown = new Promise((r) => session.once('showMessage', r));
      const result = await withTimeout(session.inlineCompletion('file:///remote/d.py', PY_CURSOR), 2000 + GUARD_MS, 'completion');
      assert.deepEqual(result, { items: [] });
      const message = await withTimeout(shown, GUARD_MS, 'showMessage');
      assert.match(message.message, new RegExp(`openai backend at http://127\\.0\\.0\\.1:${port}: cannot connect`));
      assert.ok((await session.stats()).errors >= 1);
    } finally {
      await session.shutdownAndExit();
    }
  });

  it('a slow backend (accepts, never answers) gives showMessage and an empty result within the timeout', async () => {
    const sockets = [];
    const closed = [];
    const silent = net.createServer((s) => {
      sockets.push(s);
      s.resume();
      s.on('close', () => closed.push(s));
    });
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const timeoutMs = 400;
    const session = await lspWith({
      backend: 'llama.cpp',
      backendUrl: `http://127.0.0.1:${silent.address().port}`,
      backendTimeoutMs: timeoutMs,
    });
    try {
      session.open('file:///remote/s.py', 'python', PY);
      const t0 = Date.now();
      const result = await withTimeout(session.inlineCompletion('file:///remote/s.py', PY_CURSOR), GUARD_MS, 'completion');
      const elapsed = Date.now() - t0;
      assert.deepEqual(result, { items: [] });
      assert.ok(elapsed >= timeoutMs - 50, `answered after ${elapsed} ms, before the timeout`);
      assert.ok(session.showMessages.length === 1, JSON.stringify(session.showMessages));
      assert.match(session.showMessages[0].message, /no answer within 400 ms/);
      // The connection was closed by the client when it gave up.
      await until('the backend connection to close', async () => sockets.length > 0 && closed.length === sockets.length);
    } finally {
      await session.shutdownAndExit();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('a misconfigured backend is shown, and requests fail with RequestFailed', async () => {
    const session = await lspWith({ backend: 'openai', backendUrl: 'https://example.invalid' });
    try {
      session.open('file:///remote/m.py', 'python', PY);
      await assert.rejects(session.inlineCompletion('file:///remote/m.py', PY_CURSOR), { code: ErrorCode.RequestFailed });
      assert.match(session.showMessages[0].message, /https is not supported/);
    } finally {
      await session.shutdownAndExit();
    }
  });
});

describe('the HTTP server rejects bad requests and keeps serving', () => {
  const KEY = 'test-key-123';
  const auth = { Authorization: `Bearer ${KEY}` };
  const server = httpServerFor(['--api-key', KEY, '--max-body', '4096']);

  const valid = { prompt: 'def f(x):\n', suffix: '\n', max_tokens: 4, temperature: 0 };

  it('401 without or with a wrong key; /health is open', async () => {
    assert.equal((await request(server.port, 'POST', '/v1/completions', valid)).status, 401);
    const wrong = await request(server.port, 'POST', '/v1/completions', valid, { Authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(JSON.parse(wrong.body), { error: { code: 401, message: 'Invalid API Key', type: 'authentication_error' } });
    assert.equal((await request(server.port, 'GET', '/metrics')).status, 401);
    assert.equal((await request(server.port, 'GET', '/health')).status, 200);
    const ok = await request(server.port, 'POST', '/v1/completions', valid, auth);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(JSON.parse(ok.body).object, 'text_completion');
  });

  it('400 for malformed and oversized bodies, with a message', async () => {
    const cases = [
      ['{not json', /not valid JSON/],
      ['[1,2]', /must be a JSON object/],
      [{}, /'prompt' is required/],
      [{ prompt: 7 }, /'prompt' must be a string/],
      [{ prompt: 'x', max_tokens: 'many' }, /'max_tokens' must be an integer/],
      [{ prompt: 'x', max_tokens: -1 }, /'max_tokens' must be between/],
      [{ prompt: 'x', temperature: 9 }, /'temperature' must be between/],
      [{ prompt: 'x', stop: [1] }, /'stop' must be/],
      [{ prompt: 'x', n: 2 }, /'n' must be 1/],
      [{ prompt: 'x', suffix: 3 }, /'suffix' must be a string/],
      ['x'.repeat(5000), /exceeds 4096 bytes/],
    ];
    for (const [body, message] of cases) {
      const res = await request(server.port, 'POST', '/v1/completions', body, { ...auth, 'Content-Type': 'application/json' });
      assert.equal(res.status, 400, `${String(JSON.stringify(body)).slice(0, 40)}: ${res.body}`);
      assert.match(JSON.parse(res.body).error.message, message);
    }
    const infill = await request(server.port, 'POST', '/infill', { input_extra: 'x' }, auth);
    assert.equal(infill.status, 400);
    const ollama = await request(server.port, 'POST', '/api/generate', { prompt: 'x' }, auth);
    assert.equal(ollama.status, 400);
    assert.match(JSON.parse(ollama.body).error.message, /'model' is required/);
    assert.equal((await request(server.port, 'GET', '/v1/completions', undefined, auth)).status, 405);
    assert.equal((await request(server.port, 'GET', '/nowhere', undefined, auth)).status, 404);
  });

  it('400 for malformed HTTP, and random bodies never break the server', async () => {
    const raw = await new Promise((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => s.write('POST /v1/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n'));
      let data = '';
      s.on('data', (c) => (data += c));
      s.on('close', () => resolve(data));
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const pieces = ['{', '}', '"prompt"', ':', '"x"', ',', '"max_tokens"', '4', '[', ']', 'null', '"suffix"', '\u00ff', '"stream"', 'true'];
    for (let i = 0; i < 300; ++i) {
      let body = '';
      const n = Math.floor(rand() * 12);
      for (let k = 0; k < n; ++k) body += pieces[Math.floor(rand() * pieces.length)];
      const path = ['/v1/completions', '/infill', '/api/generate', '/completion'][i % 4];
      const res = await request(server.port, 'POST', path, body, auth);
      assert.ok([200, 400].includes(res.status), `${path} ${JSON.stringify(body)} -> ${res.status} ${res.body}`);
    }
    const ok = await request(server.port, 'POST', '/v1/completions', valid, auth);
    assert.equal(ok.status, 200, ok.body);
  });

  it('a non-loopback address without an API key refuses to start', async () => {
    const child = await spawnServer(['--http', '0', '--host', '0.0.0.0'], { env: { SPARK_LS_API_KEY: '' } });
    const code = await new Promise((r) => child.once('exit', r));
    await child.closed;
    assert.equal(code, 2);
    assert.match(child.stderrText, /not a loopback address.*API key/);
  });
});

describe('load: 8 concurrent clients', () => {
  const server = httpServerFor();

  it(`${LOAD_CLIENTS} clients × ${LOAD_REQUESTS} requests: none lost`, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: LOAD_CLIENTS });
    const latencies = [];
    const one = (client, i) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ prompt: `def f${client}_${i}(x):\n    return`, suffix: '\n', max_tokens: 4, temperature: 0 });
        const t0 = process.hrtime.bigint();
        const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/v1/completions', agent }, (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            if (res.statusCode !== 200) return reject(new Error(`${res.statusCode} ${data}`));
            const j = JSON.parse(data);
            if (j.choices.length !== 1 || typeof j.choices[0].text !== 'string') return reject(new Error(data));
            resolve();
          });
        });
        req.on('error', reject);
        req.end(body);
      });
    const completedBefore = await metric(server.port, 'spark_completions_total{result="completed"}');
    await withTimeout(
      Promise.all(
        Array.from({ length: LOAD_CLIENTS }, async (_, c) => {
          for (let i = 0; i < LOAD_REQUESTS; ++i) await one(c, i);
        }),
      ),
      10 * GUARD_MS,
      'the load',
    );
    agent.destroy();
    assert.equal(latencies.length, LOAD_CLIENTS * LOAD_REQUESTS);
    assert.equal(
      await metric(server.port, 'spark_completions_total{result="completed"}'),
      completedBefore + LOAD_CLIENTS * LOAD_REQUESTS,
    );
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.round(p * (latencies.length - 1)))];
    console.log(`load: ${latencies.length} requests, p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms`);
  });
});
