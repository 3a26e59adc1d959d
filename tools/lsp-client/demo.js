#!/usr/bin/env node
'use strict';
// A short scripted editing session through the language server with the embedded default models: the main job
// of spark-ls, end to end, in about 20 seconds.
//
//   node tools/lsp-client/demo.js [SPARK_LS_BINARY]      (default: $SPARK_LS, else build/app/spark-ls)
//
// It starts `spark-ls serve`, opens a Python module and then a C++ file, and types into them like a person at a
// brisk pace: one didChange per keystroke (a line break and the next line's indentation are one keystroke, as
// editors indent by themselves), and after each word or line, once the editor's 150 ms debounce has passed, an
// inline-completion request. Each suggestion is printed with its keystroke-to-suggestion latency (request sent
// to answer received) and where it came from: an engine run, the forwarding cache (the user typed the start of
// a shown suggestion), or a prefetch (computed in the background after an accept); the source is read from the
// difference of spark/stats around the request. A suggestion that matches what the script is about to type is
// accepted (Tab): its text goes in with one didChange and workspace/executeCommand spark-ls.accept is sent, as
// an editor does, and the editor asks again at once. Because the small default models rarely guess the script,
// the script also accepts a suggestion outright and types along the start of another, so the prefetch and
// forwarding-cache paths show in every run. It ends with a summary from spark/stats.
//
// The pauses are real (setTimeout): background work such as a prefetch runs while the "user" pauses, as it would
// in an editor.

const path = require('node:path');

const client = require('./lib/client');
const { percentile, statsDelta, fmt } = require('./typing');

const KEY_MS = 25;  // between keystrokes (a fast typist; keeps the demo short)
const DEBOUNCE_MS = 150;  // the editor's debounce before an inline request
const SHOW_CHARS = 56;  // of a suggestion, on its line of output

// What the user types, file by file. A string is typed; {tab: true} accepts whatever is shown (asking first when
// nothing is); {typeAlong: true} types the first word of the shown suggestion, as a user who likes it does, and
// then, the server having answered from its forwarding cache, takes the rest with Tab.
const FILES = [
  {
    name: 'shapes.py',
    languageId: 'python',
    before: '"""Areas and perimeters of simple shapes."""\nimport math\n\n\n',
    after: '\n\nif __name__ == "__main__":\n    print(circle_area(1.0))\n',
    steps: [
      'def circle_area(radius):\n    """Return the area of a circle."""\n    return math.pi * radius ** 2\n\n\n',
      'def circle_perimeter(radius):\n    """Return the perimeter of a circle."""\n    ',
      { tab: true },
      { typeAlong: true },
      '\n\n\ndef square_area(side):\n    return side * side\n',
    ],
  },
  {
    name: 'vec.cpp',
    languageId: 'cpp',
    before: '#include <cmath>\n#include <vector>\n\n',
    after: '\n',
    steps: [
      'double norm(const std::vector<double>& v) {\n    double sum = 0;\n',
      '    for (double x : v) sum += x * x;\n    ',
      { typeAlong: true },
      '\n}\n',
    ],
  },
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A suggestion for one line of output: the first SHOW_CHARS characters, line breaks shown as ⏎. */
function show(s) {
  const flat = s.replace(/\r?\n/g, '⏎');
  return JSON.stringify(flat.length > SHOW_CHARS ? `${flat.slice(0, SHOW_CHARS)}…` : flat);
}

/**
 * Where an answer came from, by the counters that moved during its request. A prefetch that finished before the
 * request is an ordinary forwarding-cache entry to the server (docs/LSP.md); right after a Tab, a cache hit with
 * an empty range at the cursor is that prefetch, so it is named so.
 */
function sourceOf(delta, item, afterTab) {
  if (delta.prefetchHits > 0) return 'prefetch';  // the request waited for the running prefetch
  if (delta.cacheHits > 0) {
    const r = item && item.range;
    const empty = r && r.start.line === r.end.line && r.start.character === r.end.character;
    return afterTab && empty ? 'prefetch' : 'cache';
  }
  if (delta.engineRuns > 0) return 'engine';
  return 'none';
}

/** One open document and its cursor, kept in step with the server through incremental didChange. */
class Editor {
  constructor(session, uri, text, cursor) {
    this.session = session;
    this.uri = uri;
    this.text = text;
    this.cursor = cursor;  // a UTF-16 offset into text
    this.version = 1;
  }

  position() {
    return client.positionAt(this.text, this.cursor, this.session.positionEncoding);
  }

  /** Inserts `s` at the cursor and moves the cursor after it: one didChange. */
  insert(s) {
    const at = this.position();
    this.text = this.text.slice(0, this.cursor) + s + this.text.slice(this.cursor);
    this.cursor += s.length;
    this.version += 1;
    return this.session.change(this.uri, this.version, [{ range: { start: at, end: at }, text: s }]);
  }

  /**
   * The part of an inline item still ahead of the cursor: insertText minus what its range says is typed already.
   * Null for an item that does not start at or before the cursor on this document.
   */
  remainder(item) {
    const enc = this.session.positionEncoding;
    const start = client.offsetAt(this.text, item.range.start, enc);
    const end = client.offsetAt(this.text, item.range.end, enc);
    if (end !== this.cursor || !item.insertText.startsWith(this.text.slice(start, end))) {
      return null;
    }
    return item.insertText.slice(end - start);
  }
}

/** The keystrokes of `s`: characters, except that a line break takes the next line's indentation with it. */
function keysOf(s) {
  return s.match(/\r?\n[ \t]*|[\uD800-\uDBFF][\uDC00-\uDFFF]|[^]/g) || [];
}

/** After this key, does the typist pause (so the debounced editor asks for a suggestion)? */
function pausesAfter(key, next) {
  if (key.includes('\n')) return true;  // a new line
  return /\w/.test(key) && next !== undefined && /[^\w]/.test(next);  // the end of a word
}

async function main() {
  const binary = path.resolve(process.argv[2] || client.serverPath());
  const t0 = Date.now();
  const session = await client.startStdio({ binary });
  const rows = [];  // {latency, source} per answered request
  let tabs = 0;
  let acceptedChars = 0;
  let typedChars = 0;
  try {
    const init = await session.initialize({ positionEncodings: ['utf-16'] });
    const version = init.serverInfo ? init.serverInfo.version : '?';
    console.log(`spark-ls ${version} · ${path.relative(process.cwd(), binary)} serve · default settings and models · ` +
      `${session.positionEncoding} positions`);
    const statsStart = await session.stats();

    // Sends an inline request at the cursor and prints the answer; returns {item, rest} or null.
    const ask = async (editor, label, afterTab = false) => {
      const before = await session.stats();
      const sent = process.hrtime.bigint();
      let result;
      try {
        result = await session.inlineCompletion(editor.uri, editor.position());
      } catch (error) {
        console.log(`  ${label.padEnd(34)} error ${error.code}: ${error.message}`);
        return null;
      }
      const latency = Number(process.hrtime.bigint() - sent) / 1e6;
      const delta = statsDelta(before, await session.stats());
      const item = result && result.items && result.items[0];
      const source = sourceOf(delta, item, afterTab);
      const rest = item ? editor.remainder(item) : null;
      rows.push({ latency, source: item ? source : 'empty' });
      const what = rest ? show(rest) : '(nothing to suggest)';
      console.log(`  ${label.padEnd(34)} ${fmt(latency, 1).padStart(6)} ms  ${(item ? source : '').padEnd(8)} ${what}`);
      return rest ? { item, rest } : null;
    };

    // Tab: the rest of the suggestion goes in with one didChange, then the accept command.
    const accept = async (editor, shown, why) => {
      await editor.insert(shown.rest);
      await session.executeCommand(shown.item.command.command, shown.item.command.arguments);
      tabs += 1;
      acceptedChars += shown.rest.length;
      console.log(`  ${''.padEnd(34)} ${''.padStart(6)}     Tab      ${why}: ${shown.rest.length} characters accepted`);
    };

    // An editor asks again once an accepted suggestion is in: the server has prefetched that answer.
    const askAfterTab = async (editor) => {
      await sleep(DEBOUNCE_MS);
      return ask(editor, 'after the Tab', true);
    };

    for (const file of FILES) {
      const uri = `file:///demo/${file.name}`;
      const editor = new Editor(session, uri, file.before + file.after, file.before.length);
      console.log(`\n── ${file.name} (${file.languageId}) ${'─'.repeat(Math.max(0, 60 - file.name.length))}`);
      await session.open(uri, file.languageId, editor.text);
      let shown = null;  // the suggestion on screen, if any

      // Types `text` key by key, keeping `shown` in step; where `pauseAt(key, nextKey)` says the typist pauses,
      // asks for a suggestion. `ahead` is what the user means to type (from this key on): a suggestion equal to its
      // start is accepted.
      const typeKeys = async (text, ahead, pauseAt) => {
        let word = '';
        while (text !== '') {
          const [key, next] = keysOf(text.slice(0, 64));  // this key and the next (64 characters hold both)
          text = text.slice(key.length);
          ahead = ahead.slice(key.length);
          // Typing along a shown suggestion keeps it on screen; any other key hides it.
          shown = shown && shown.rest.startsWith(key) && shown.rest.length > key.length
            ? { item: shown.item, rest: shown.rest.slice(key.length) }
            : null;
          await editor.insert(key);
          typedChars += key.length;
          word += key;
          await sleep(KEY_MS);
          if (!pauseAt(key, next)) continue;
          await sleep(DEBOUNCE_MS);
          shown = await ask(editor, `typed ${show(word.slice(-24))}`);
          word = '';
          if (shown && shown.rest.trim() !== '' && ahead.startsWith(shown.rest)) {
            await accept(editor, shown, 'it is what comes next');
            text = text.slice(shown.rest.length);
            ahead = ahead.slice(shown.rest.length);
            shown = await askAfterTab(editor);
          }
        }
      };

      for (const step of file.steps) {
        if (typeof step === 'string') {
          await typeKeys(step, step, pausesAfter);
        } else if (step.tab) {
          if (!shown) shown = await ask(editor, 'Tab pressed');
          if (!shown) continue;
          await accept(editor, shown, 'scripted');
          shown = await askAfterTab(editor);
        } else if (step.typeAlong && shown) {
          // The suggestion's first word (at least three characters), then the pause that asks again.
          const word = /^\s*\W*\w{3,}|^[^]{1,3}/.exec(shown.rest)[0];
          const along = shown.rest;
          await typeKeys(word, along, (key, next) => next === undefined);
        }
      }
      const doc = await session.document(uri);
      if (doc.text !== editor.text) {
        throw new Error(`the server's copy of ${file.name} differs from the editor's`);
      }
      await session.close(uri);
    }

    const stats = await session.stats();
    const d = statsDelta(statsStart, stats);
    const latencies = rows.filter((r) => r.source !== 'empty').map((r) => r.latency);
    const engineLat = rows.filter((r) => r.source === 'engine').map((r) => r.latency);
    const fastLat = rows.filter((r) => r.source === 'cache' || r.source === 'prefetch').map((r) => r.latency);
    console.log(`\n── summary ${'─'.repeat(58)}`);
    const count = (source) => rows.filter((r) => r.source === source).length;
    console.log(`  typed ${typedChars} characters; ${d.requests} requests: ${d.engineRuns} engine runs, ` +
      `${count('cache')} forwarding-cache hits, ${count('prefetch')} prefetched after a Tab, ${d.empty} empty`);
    console.log(`  keystroke → suggestion (client): p50 ${fmt(percentile(latencies, 0.5), 1)} ms, ` +
      `p90 ${fmt(percentile(latencies, 0.9), 1)} ms; engine runs p50 ${fmt(percentile(engineLat, 0.5), 1)} ms, ` +
      `cache and prefetch p50 ${fmt(percentile(fastLat, 0.5), 1)} ms`);
    console.log(`  server latency (spark/stats, whole session): p50 ${fmt(stats.latencyMs.p50, 1)} ms, ` +
      `p90 ${fmt(stats.latencyMs.p90, 1)} ms over ${stats.latencyMs.count} answers`);
    const e = stats.engine;
    console.log(`  engine: ${e.generatedTokens} tokens generated at ${fmt(e.tokensPerSecond, 0)} tokens/s; ` +
      `drafted tokens accepted ${fmt(100 * e.acceptance, 0)} % (${e.acceptedTokens}/${e.draftedTokens}); ` +
      `prompt tokens reused ${e.promptReused}/${e.promptTokens}`);
    console.log(`  Tab pressed ${tabs} times, ${acceptedChars} characters accepted; server counted ` +
      `${stats.accepted} accepted, ${stats.prefetches} prefetches`);
    const code = await session.shutdownAndExit();
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s in all; server exit code ${code}`);
    if (code !== 0) process.exitCode = 1;
  } catch (error) {
    console.error(`demo failed: ${error.stack || error}`);
    if (session.stderr) console.error(`server stderr (tail):\n${session.stderr.slice(-2000)}`);
    process.exitCode = 1;
  } finally {
    await session.dispose();
  }
}

main().catch((error) => {
  console.error(`demo failed: ${error.message || error}`);
  process.exitCode = 1;
});
