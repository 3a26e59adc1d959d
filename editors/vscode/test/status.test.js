'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { formatStatus, formatStatsReport, StatsPoller } = require('../out/status');

const stats = {
  requests: 12, cacheHits: 4, shown: 3, accepted: 2, rejected: 1,
  latencyMs: { count: 11, p50: 41.2, p90: 80.5, p99: 95, mean: 45 },
  engine: { loaded: true, generatedTokens: 210, tokensPerSecond: 850.2, acceptance: 0.61 },
};

test('running: tokens per second and draft acceptance', () => {
  const view = formatStatus('running', true, stats);
  assert.equal(view.text, '$(sparkle) 850 tok/s · 61% acc');
  assert.match(view.tooltip, /Speed: 850\.2 tokens\/s \(210 generated\)/);
  assert.match(view.tooltip, /Requests: 12 \(4 from cache\)/);
  assert.match(view.tooltip, /3 shown, 2 accepted, 1 rejected/);
  assert.match(view.tooltip, /p50 41 ms, p90 81 ms/);
});

test('running before any token was generated', () => {
  const view = formatStatus('running', true, { engine: { loaded: true, tokensPerSecond: 0 } });
  assert.equal(view.text, '$(sparkle) – tok/s');
  const noDrafts = formatStatus('running', true,
    { engine: { loaded: true, tokensPerSecond: 40, acceptance: 0, draftedTokens: 0 } });
  assert.equal(noDrafts.text, '$(sparkle) 40 tok/s');
  assert.doesNotMatch(noDrafts.tooltip, /acceptance/);
});

test('starting, loading, disabled and stopped states', () => {
  assert.equal(formatStatus('starting', true).text, '$(loading~spin) spark-ls');
  assert.equal(formatStatus('running', true, { engine: { loaded: false } }).text, '$(loading~spin) spark-ls');
  assert.equal(formatStatus('running', false, stats).text, '$(circle-slash) spark-ls');
  assert.equal(formatStatus('stopped', true, stats).text, '$(error) spark-ls');
});

test('report without statistics', () => {
  assert.deepEqual(formatStatsReport(undefined), ['spark-ls: no statistics yet']);
  assert.deepEqual(formatStatsReport({}), ['spark-ls', 'Requests: 0 (0 from cache)',
    'Suggestions: 0 shown, 0 accepted, 0 rejected']);
});

test('poller hands answers and errors over and never overlaps polls', async () => {
  let release;
  let calls = 0;
  const seen = [];
  const errors = [];
  const poller = new StatsPoller(
    () => {
      calls += 1;
      return calls === 1 ? new Promise((resolve) => { release = resolve; }) : Promise.reject(new Error('down'));
    },
    (s) => seen.push(s),
    (e) => errors.push(e.message),
  );
  const first = poller.poll();
  const second = poller.poll();
  assert.equal(first, second);
  assert.equal(calls, 1);
  release(stats);
  await first;
  assert.deepEqual(seen, [stats]);
  await poller.poll();
  assert.deepEqual(errors, ['down']);
  assert.equal(calls, 2);
});

test('poller start and stop', () => {
  const poller = new StatsPoller(() => Promise.resolve({}), () => {}, () => {}, 1000);
  assert.equal(poller.running, false);
  poller.start();
  assert.equal(poller.running, true);
  poller.stop();
  assert.equal(poller.running, false);
});
