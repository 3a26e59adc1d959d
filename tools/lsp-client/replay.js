#!/usr/bin/env node
'use strict';
// The replay benchmark: real source files from the repository typed key by key through the language server, the
// way an editor with a debounce sends inline-completion requests, once per server configuration, plus the naive
// loop run through the CLI at a sample of the same request points.
//
//   node tools/lsp-client/replay.js [options] FILE[:LINE] ...
//     --server BIN       spark-ls binary (default: $SPARK_LS, else build/app/spark-ls)
//     --chars N          characters typed per file, from the start of LINE (default 1500; LINE defaults to 1)
//     --seed S           seed of the typing model (default 1)
//     --debounce MS      the editor's debounce (default 150)
//     --configs LIST     server configurations to run, comma-separated, of: spark-ls, draft-model, naive-server
//                        (default: all three)
//     --cli-samples K    request points per file timed with `spark-ls generate` plain decoding (default 30; 0: none)
//     --json FILE        write every request's measurements there
//   tools/bench/run_lsp_replay.sh runs it on the files docs/PERFORMANCE.md reports.
//
// The replay. Each file is opened with the typed region (about N characters from LINE, up to the end of a line)
// cut out, so the text after it is there as in an edit in the middle of a file; then the region is typed: one
// didChange per keystroke (a line break carries the next line's indentation, as editors indent by themselves).
// The typing model (typing.js) gives every key the pause that follows it, seeded: mostly 60-120 ms, 200-800 ms
// after half of the word ends and after every new line. An editor with a debounce of D ms sends a request after
// a key only when the next key comes D ms or more later.
//
// Time. Typing runs on virtual time, the servers on real time: the keystrokes and the requests are sent at once,
// in order, without waiting the modelled intervals, and each request is answered before the next key is sent. The
// debounce decision comes from the modelled intervals instead of timers, so a run is repeatable and takes seconds
// rather than the minutes the typing would take. What virtual time leaves out is measured against the model
// instead: a suggestion is "in time" when its latency is at most the modelled gap to the next key minus the
// debounce (later, a real editor's next keystroke would have cancelled it with ContentModified). Background work
// that the server starts by itself (a refresh that extends a truncated suggestion) gets less time than in an
// editor; nothing here sends accept commands, so there are no prefetches.
//
// Measured per file and configuration:
//   latency        keystroke to suggestion: request sent to answer received, at the client (ms, p50 / p90)
//   engine runs, cache hits, empty answers: the differences of spark/stats around each request
//   in time        suggestions (non-empty answers) that arrive before the next modelled key
//   matched        typed characters a shown (in-time) suggestion had predicted, as the user types along it
//   tokens/s, drafted tokens accepted, prompt tokens evaluated per engine run: from spark/stats (engine)
//
// The configurations run side by side, one server process each, all fed the same keystrokes; at each request point
// they are asked one after the other, in an order that rotates, so a slow patch of a shared host (the numbers on
// 2 shared cores move by a third from one run to the next) hits every configuration alike.
//
// Configurations (docs/LSP.md "Settings"): `spark-ls` (the defaults: n-gram, suffix and typed-ahead drafters, no
// draft model), `draft-model` (draftModel "default": the embedded draft model as well), `naive-server`
// (naiveBaseline: the whole prompt evaluated for every request, no drafting, no forwarding cache, no prefetch).
// `naive CLI`: at K request points spread over each file (the first engine run of the spark-ls configuration at or
// after each of K evenly spaced points), the same prefix and suffix, cut at line boundaries to the server's token
// budget (512-token context minus maxTokens, 3/4 for the prefix), decoded by `spark-ls generate --compare`, whose
// plain run evaluates the whole prompt and decodes without a drafter, for as many tokens as that engine run
// generated. Its latency is that run's prompt + generation time from its statistics line (the model is loaded
// already, as in a server; the process is fresh, so its caches are cold).

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const url = require('node:url');

const client = require('./lib/client');
const { seededRandom, keystrokes, requestAfter, percentile, statsDelta, fmt } = require('./typing');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const TARGET_MODEL = path.join(REPO_ROOT, 'models', 'spark-target.gguf');
const CONTEXT = 512;  // the default models' context
const MAX_TOKENS = 64;  // the server's default maxTokens
const FIM_RATIO = 0.75;  // the server's default share of the prompt for the prefix

const CONFIGS = {
  'spark-ls': { label: 'spark-ls (defaults)', settings: {} },
  'draft-model': { label: 'spark-ls + draft model', settings: { draftModel: 'default' } },
  'naive-server': { label: 'naive loop (naiveBaseline)', settings: { naiveBaseline: true } },
};

const LANGUAGES = { '.py': 'python', '.cpp': 'cpp', '.cc': 'cpp', '.h': 'cpp', '.hpp': 'cpp', '.c': 'c',
  '.js': 'javascript', '.ts': 'typescript' };

/** A mistake on the command line: reported with a pointer to the usage, without a stack. */
function usageError(message) {
  return Object.assign(new Error(`${message} (usage: the comment at the top of tools/lsp-client/replay.js)`),
    { usage: true });
}

function parseArgs(argv) {
  const o = { server: client.serverPath(), chars: 1500, seed: 1, debounce: 150,
    configs: Object.keys(CONFIGS), cliSamples: 30, json: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw usageError(`${a} needs a value`);
      return argv[++i];
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) throw usageError(`${a} needs a non-negative integer`);
      return v;
    };
    if (a === '--server') o.server = value();
    else if (a === '--chars') o.chars = number();
    else if (a === '--seed') o.seed = number();
    else if (a === '--debounce') o.debounce = number();
    else if (a === '--configs') o.configs = value().split(',').filter(Boolean);
    else if (a === '--cli-samples') o.cliSamples = number();
    else if (a === '--json') o.json = value();
    else if (a.startsWith('--')) throw usageError(`unknown option ${a}`);
    else o.files.push(a);
  }
  for (const c of o.configs) {
    if (!CONFIGS[c]) throw usageError(`unknown configuration ${c}; have ${Object.keys(CONFIGS).join(', ')}`);
  }
  if (o.files.length === 0) throw usageError('name at least one FILE[:LINE] to type');
  o.server = path.resolve(o.server);
  return o;
}

/**
 * What to type in one file and when to ask: the text before and after the typed region, the keystrokes with
 * their modelled gaps, and the keys after which the debounced editor sends a request.
 */
function planFile(spec, options, fileIndex) {
  const m = /^(.*?)(?::(\d+))?$/.exec(spec);
  const file = path.resolve(REPO_ROOT, m[1]);
  const line = m[2] ? Number(m[2]) : 1;
  const text = fs.readFileSync(file, 'utf8');
  const starts = client.lineStarts(text);
  if (line < 1 || line > starts.length) throw new Error(`${spec}: line ${line} is past the end`);
  const from = starts[line - 1];
  // The region ends at a line end, before its line break: the cursor is always at the end of the line being
  // typed, as when a line is written into the middle of a file.
  let to = Math.min(text.length, from + options.chars);
  if (to < text.length) to = Math.max(from, text.lastIndexOf('\n', to - 1));
  if (to > text.length - 1 && text.endsWith('\n')) to = text.length - 1;
  const rng = seededRandom(options.seed * 7919 + fileIndex);
  const keys = keystrokes(text.slice(from, to), rng);
  const points = [];
  keys.forEach((k, i) => {
    if (requestAfter(k, i === keys.length - 1, options.debounce)) points.push(i);
  });
  return {
    name: path.relative(REPO_ROOT, file),
    languageId: LANGUAGES[path.extname(file)] || 'plaintext',
    before: text.slice(0, from),
    typed: text.slice(from, to),
    after: text.slice(to),
    keys,
    points,
  };
}

/** Where a request's answer came from, by the spark/stats counters that moved during it. */
function sourceOf(delta, hasItem) {
  if (!hasItem) return 'empty';
  if (delta.cacheHits > 0) return 'cache';
  if (delta.prefetchHits > 0) return 'prefetch';
  return 'engine';
}

/** Seconds the engine spent generating, as spark/stats implies it (tokens ÷ tokens per second). */
function generationSeconds(engine) {
  return engine.tokensPerSecond > 0 ? engine.generatedTokens / engine.tokensPerSecond : 0;
}

/** Sends one inline request at the cursor and measures it against the typing model. */
async function measureRequest(run, uri, text, cursor, key, isLast, debounceMs) {
  const session = run.session;
  const enc = session.positionEncoding;
  const before = await session.stats();
  const sent = process.hrtime.bigint();
  let result = null;
  let error = null;
  try {
    result = await session.inlineCompletion(uri, client.positionAt(text, cursor, enc));
  } catch (e) {
    error = e;
  }
  const latencyMs = Number(process.hrtime.bigint() - sent) / 1e6;
  const delta = statsDelta(before, await session.stats());
  const item = result && Array.isArray(result.items) ? result.items[0] : undefined;
  let rest = null;
  if (item) {
    // insertText minus the part its range covers (typed already): what is shown ahead of the cursor.
    const start = client.offsetAt(text, item.range.start, enc);
    const end = client.offsetAt(text, item.range.end, enc);
    if (end === cursor && item.insertText.startsWith(text.slice(start, end))) {
      rest = item.insertText.slice(end - start);
    }
  }
  const gapMs = isLast ? Infinity : key.gapMs;
  return {
    gapMs: Number.isFinite(gapMs) ? gapMs : null,
    latencyMs,
    source: error ? 'error' : sourceOf(delta, Boolean(item)),
    error: error ? `${error.code}: ${error.message}` : undefined,
    generatedTokens: delta.engine ? delta.engine.generatedTokens : 0,
    inTime: latencyMs <= gapMs - debounceMs,
    suggestion: rest,
  };
}

/**
 * Types one planned file into every run's session at once and measures every request. At a request point the
 * sessions are asked one after the other, in an order that rotates, so that a slow patch of a shared host hits
 * every configuration alike; the naive CLI loop takes its samples in the same loop (reference: the run whose
 * engine-run lengths it copies). Returns per run {requests, matched, typedChars, delta, generationSeconds}, and
 * the CLI samples.
 */
async function replayFile(runs, reference, plan, options) {
  const uri = url.pathToFileURL(path.join(REPO_ROOT, plan.name)).href;
  let text = plan.before + plan.after;
  let cursor = plan.before.length;
  let version = 1;
  const state = [];
  for (const run of runs) {
    await run.session.open(uri, plan.languageId, text);
    state.push({ statsBefore: await run.session.stats(), requests: [], matched: 0,
      shown: null });  // shown: the part of an in-time suggestion still ahead of the cursor
  }
  // The CLI samples: the first engine-run point at or after each of K evenly spaced request points.
  const k = Math.min(options.cliSamples, plan.points.length);
  const targets = Array.from({ length: k }, (_, j) => Math.floor(j * plan.points.length / k));
  const cli = [];
  const points = new Map(plan.points.map((key, index) => [key, index]));
  let typedLen = 0;
  for (let i = 0; i < plan.keys.length; i++) {
    const key = plan.keys[i];
    for (const st of state) {
      // The user types along a shown suggestion or away from it.
      if (st.shown !== null && st.shown.startsWith(key.text)) {
        st.matched += key.text.length;
        st.shown = st.shown.length > key.text.length ? st.shown.slice(key.text.length) : null;
      } else {
        st.shown = null;
      }
    }
    const at = text.slice(0, cursor);
    text = at + key.text + text.slice(cursor);
    cursor += key.text.length;
    typedLen += key.text.length;
    version += 1;
    for (const run of runs) {
      const pos = client.positionAt(at, at.length, run.session.positionEncoding);
      await run.session.change(uri, version, [{ range: { start: pos, end: pos }, text: key.text }]);
    }
    if (!points.has(i)) continue;

    const pointIndex = points.get(i);
    for (let r = 0; r < runs.length; r++) {
      const j = (r + pointIndex) % runs.length;
      const m = await measureRequest(runs[j], uri, text, cursor, key, i === plan.keys.length - 1, options.debounce);
      state[j].shown = m.suggestion && m.inTime ? m.suggestion : null;
      state[j].requests.push({ key: i, typed: typedLen, ...m });
    }
    const ref = reference >= 0 ? state[reference].requests.at(-1) : null;
    if (ref && cli.length < targets.length && pointIndex >= targets[cli.length] && ref.source === 'engine' &&
        ref.generatedTokens > 0) {
      // As many tokens as the reference engine run generated here.
      const sample = cliPlain(options, plan.before + plan.typed.slice(0, typedLen), plan.after, ref.generatedTokens);
      cli.push({ ...sample, typed: typedLen, gapMs: ref.gapMs,
        inTime: ref.gapMs === null || sample.latencyMs <= ref.gapMs - options.debounce });
    }
  }
  const results = [];
  for (let r = 0; r < runs.length; r++) {
    const session = runs[r].session;
    const doc = await session.document(uri);
    if (doc.text !== text) throw new Error(`${plan.name}: the server's copy differs from the replayed text`);
    const statsAfter = await session.stats();
    await session.close(uri);
    results.push({ requests: state[r].requests, matched: state[r].matched, typedChars: typedLen,
      delta: statsDelta(state[r].statsBefore, statsAfter),
      generationSeconds: generationSeconds(statsAfter.engine) - generationSeconds(state[r].statsBefore.engine) });
  }
  return { results, cli };
}

/** Starts one server per configuration, initialised and with its models loaded. */
async function startRuns(options) {
  const runs = [];
  try {
    for (const name of options.configs) {
      const session = await client.startStdio({ binary: options.server });
      runs.push({ name, session });
      await session.initialize({ positionEncodings: ['utf-16'], initializationOptions: CONFIGS[name].settings });
      // The models load after initialize; one request on a scratch document waits for them, so that no replayed
      // request measures the loading.
      const warm = 'file:///replay/warm-up.py';
      await session.open(warm, 'python', 'def f(x):\n    \n');
      await session.inlineCompletion(warm, { line: 1, character: 4 });
      await session.close(warm);
    }
    return runs;
  } catch (error) {
    await stopRuns(runs, error);
    throw error;
  }
}

/** Shuts every server down (checking its exit code unless a failure is being reported) and disposes it. */
async function stopRuns(runs, failure) {
  for (const { name, session } of runs) {
    try {
      if (failure) {
        if (session.stderr) process.stderr.write(`${name} server stderr (tail):\n${session.stderr.slice(-2000)}\n`);
      } else {
        const code = await session.shutdownAndExit();
        if (code !== 0) throw new Error(`spark-ls (${name}) exited with ${code} after shutdown`);
      }
    } finally {
      await session.dispose();
    }
  }
}

/** Tokens of `text` under the default models' tokenizer. */
function countTokens(options, text) {
  if (text === '') return 0;
  const r = childProcess.spawnSync(options.server, ['tokenize', '--model', TARGET_MODEL, '--text', text],
    { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`spark-ls tokenize failed: ${r.stderr}`);
  return r.stdout.trim().split(/\s+/).filter(Boolean).length;
}

/**
 * The largest window `cut(text, chars)` of at most `budget` tokens, found by shrinking from a first guess of
 * `bytesPerToken` (windows are whole lines, as the server's are).
 */
function fitWindow(options, text, cut, budget, bytesPerToken) {
  let chars = Math.ceil(budget * bytesPerToken * 1.2);
  for (let i = 0; i < 40; i++) {
    const w = cut(text, chars);
    if (countTokens(options, w) <= budget) return w;
    chars = Math.floor(chars * 0.9);
  }
  return '';
}

/** The last `chars` characters of `s`, from a line start (the whole of `s` when it is shorter). */
function tailLines(s, chars) {
  if (s.length <= chars) return s;
  const cut = s.length - chars;
  const nl = s.indexOf('\n', cut - 1);
  return nl < 0 ? '' : s.slice(nl + 1);
}

/** The first `chars` characters of `s`, to a line end. */
function headLines(s, chars) {
  if (s.length <= chars) return s;
  const nl = s.lastIndexOf('\n', chars - 1);
  return nl < 0 ? '' : s.slice(0, nl + 1);
}

/**
 * The naive loop at one request point: plain decoding of the whole FIM prompt by `spark-ls generate --compare`.
 * The prompt gets the server's budget (context - maxTokens - 1 tokens, 3/4 of it for the prefix; the prefix may
 * also take what the suffix leaves). Returns {latencyMs, promptTokens, generatedTokens, generateSeconds} from the
 * "plain:" statistics line.
 */
function cliPlain(options, prefix, suffix, nTokens) {
  const budget = CONTEXT - MAX_TOKENS - 1 - 4;  // 4: BOS and the three FIM tokens
  const bpt = 2.5;  // a first guess of bytes per token; fitWindow corrects it
  const suf = fitWindow(options, suffix, headLines, Math.floor(budget * (1 - FIM_RATIO)), bpt);
  const pre = fitWindow(options, prefix, tailLines, budget - countTokens(options, suf), bpt);
  const r = childProcess.spawnSync(options.server,
    ['generate', '--prompt', pre, '--suffix', suf, '--n', String(nTokens), '--compare'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`spark-ls generate failed: ${r.stderr}`);
  // "plain: prompt 384 tokens (0 reused, 384 evaluated) in 0.091 s | generated 24 tokens in 0.011 s ..."
  const m = new RegExp('^plain: prompt (\\d+) tokens \\(\\d+ reused, (\\d+) evaluated\\) in ([\\d.]+) s ' +
    '\\| generated (\\d+) tokens in ([\\d.]+) s', 'm').exec(r.stderr);
  if (!m) throw new Error(`no "plain:" line in spark-ls generate's output:\n${r.stderr}`);
  return { latencyMs: 1000 * (Number(m[3]) + Number(m[5])), promptTokens: Number(m[2]),
    generatedTokens: Number(m[4]), generateSeconds: Number(m[5]) };
}

/** One row of the table from a server configuration's results (one file or several pooled). */
function serverRow(label, results) {
  const reqs = results.flatMap((r) => r.requests);
  const answered = reqs.filter((r) => r.source !== 'error');
  const shown = reqs.filter((r) => r.suggestion);
  const sum = (f) => results.reduce((s, r) => s + f(r), 0);
  const engine = (key) => sum((r) => r.delta.engine[key] || 0);
  const typed = sum((r) => r.typedChars);
  const evaluated = engine('promptTokens') - engine('promptReused');
  const runs = sum((r) => r.delta.engineRuns);
  const completed = engine('completed');
  return {
    label,
    requests: reqs.length,
    p50: percentile(answered.map((r) => r.latencyMs), 0.5),
    p90: percentile(answered.map((r) => r.latencyMs), 0.9),
    engineP50: percentile(reqs.filter((r) => r.source === 'engine').map((r) => r.latencyMs), 0.5),
    sources: `${runs} / ${sum((r) => r.delta.cacheHits)} / ${sum((r) => r.delta.empty)}`,
    inTime: shown.length ? 100 * shown.filter((r) => r.inTime).length / shown.length : NaN,
    matched: `${sum((r) => r.matched)} / ${typed} (${fmt(100 * sum((r) => r.matched) / typed, 1)} %)`,
    tokensPerSecond: engine('generatedTokens') / Math.max(1e-9, sum((r) => r.generationSeconds)),
    acceptance: engine('draftedTokens') ? 100 * engine('acceptedTokens') / engine('draftedTokens') : NaN,
    evaluatedPerRun: completed ? evaluated / completed : NaN,
  };
}

/** The row of the naive CLI loop. */
function cliRow(label, samples) {
  const generated = samples.reduce((s, r) => s + r.generatedTokens, 0);
  const seconds = samples.reduce((s, r) => s + r.generateSeconds, 0);
  return {
    label,
    requests: `${samples.length} sampled`,
    p50: percentile(samples.map((r) => r.latencyMs), 0.5),
    p90: percentile(samples.map((r) => r.latencyMs), 0.9),
    engineP50: percentile(samples.map((r) => r.latencyMs), 0.5),
    sources: `${samples.length} / – / –`,
    inTime: samples.length ? 100 * samples.filter((r) => r.inTime).length / samples.length : NaN,
    matched: '–',
    tokensPerSecond: generated / Math.max(1e-9, seconds),
    acceptance: NaN,
    evaluatedPerRun: samples.length ? samples.reduce((s, r) => s + r.promptTokens, 0) / samples.length : NaN,
  };
}

function table(rows) {
  const lines = [
    '| configuration | requests | latency p50 / p90 (ms) | engine-run p50 (ms) | engine runs / cache hits / empty ' +
      '| in time | typed chars matched | tokens/s | drafted tokens accepted | prompt tokens evaluated per run |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.label} | ${r.requests} | ${fmt(r.p50, 1)} / ${fmt(r.p90, 1)} | ${fmt(r.engineP50, 1)} ` +
      `| ${r.sources} | ${fmt(r.inTime, 0)} % | ${r.matched} | ${fmt(r.tokensPerSecond, 0)} ` +
      `| ${Number.isNaN(r.acceptance) ? '–' : `${fmt(r.acceptance, 0)} %`} | ${fmt(r.evaluatedPerRun, 0)} |`);
  }
  return lines.join('\n');
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const plans = options.files.map((spec, i) => planFile(spec, options, i));
  for (const p of plans) {
    const modelled = p.keys.reduce((s, k) => s + k.gapMs, 0) / 1000;
    console.log(`${p.name}: ${p.typed.length} characters in ${p.keys.length} keystrokes (${fmt(modelled, 0)} s ` +
      `of modelled typing), ${p.points.length} requests after a ${options.debounce} ms debounce`);
  }

  const results = Object.fromEntries(options.configs.map((name) => [name, []]));  // per file
  const cli = [];  // per file: the CLI samples
  const reference = options.cliSamples > 0 ? Math.max(0, options.configs.indexOf('spark-ls')) : -1;
  const runs = await startRuns(options);
  try {
    for (const plan of plans) {
      const t = Date.now();
      const r = await replayFile(runs, reference, plan, options);
      runs.forEach((run, j) => results[run.name].push(r.results[j]));
      cli.push(r.cli);
      console.log(`${plan.name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
  } catch (error) {
    await stopRuns(runs, error);
    throw error;
  }
  await stopRuns(runs);
  for (const name of options.configs) {
    const errors = results[name].flatMap((r) => r.requests).filter((r) => r.source === 'error');
    if (errors.length) {
      // Nothing here cancels or edits under a request: a failed request makes the run invalid.
      console.log(`${CONFIGS[name].label}: ${errors.length} requests failed (first: ${errors[0].error})`);
      process.exitCode = 1;
    }
  }

  const rowsFor = (fileIndices) => {
    const rows = options.configs.map((name) =>
      serverRow(CONFIGS[name].label, fileIndices.map((i) => results[name][i])));
    if (options.cliSamples > 0) {
      rows.push(cliRow('naive loop (CLI, plain decoding)', fileIndices.flatMap((i) => cli[i])));
    }
    return rows;
  };
  console.log(`\n### All files (${plans.map((p) => `\`${p.name}\``).join(', ')})\n`);
  console.log(table(rowsFor(plans.map((_, i) => i))));
  if (plans.length > 1) {
    plans.forEach((p, i) => {
      console.log(`\n### \`${p.name}\` (${p.typed.length} characters)\n`);
      console.log(table(rowsFor([i])));
    });
  }
  console.log(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s)`);

  if (options.json) {
    const planned = plans.map((p) => ({ name: p.name, typed: p.typed, keys: p.keys, points: p.points }));
    fs.writeFileSync(options.json, JSON.stringify({ options, plans: planned, results, cli }, null, 1));
  }
}

main().catch((error) => {
  console.error(`replay failed: ${error.usage ? error.message : error.stack || error}`);
  process.exitCode = 1;
});
