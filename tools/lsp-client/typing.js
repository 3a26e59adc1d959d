'use strict';
// A model of a person typing, shared by demo.js and replay.js: split a text into the keystrokes an editor sees,
// give each the pause that follows it (seeded, so a replay is repeatable), and decide where an editor with a
// debounce sends its inline-completion requests. Also the small statistics both scripts print.

/** A seeded PRNG (mulberry32): `rng()` returns a float in [0, 1). */
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isWordChar = (c) => /[A-Za-z0-9_]/.test(c);

/**
 * Inter-key intervals, in ms. Most keys follow each other by 60-120 ms; a word end is followed by a pause of
 * 200-800 ms half of the time; a new line (with its indentation) always by 300-800 ms, the end of a line before
 * it a third of the time by 200-500 ms; any key, rarely, by a hesitation of 150-400 ms.
 */
const DEFAULT_TYPING = {
  keyMs: [60, 120],
  wordEndPause: { probability: 0.5, ms: [200, 800] },
  newLinePause: { probability: 1.0, ms: [300, 800] },
  lineEndPause: { probability: 0.33, ms: [200, 500] },
  hesitation: { probability: 0.04, ms: [150, 400] },
};

/**
 * The keystrokes that type `text`, each `{text, gapMs}`: `text` is one character, or a line break together with
 * the next line's indentation (editors indent new lines themselves); `gapMs` is the pause before the next key.
 * @param {string} text
 * @param {() => number} rng from seededRandom
 * @param {typeof DEFAULT_TYPING} [model]
 */
function keystrokes(text, rng, model = DEFAULT_TYPING) {
  const between = ([lo, hi]) => lo + (hi - lo) * rng();
  const chance = (pause) => rng() < pause.probability;
  const keys = [];
  for (let i = 0; i < text.length; ) {
    let k = text[i];
    if (k === '\r' && text[i + 1] === '\n') {
      k = '\r\n';
    }
    if (k.endsWith('\n')) {
      const indent = /^[ \t]*/.exec(text.slice(i + k.length))[0];
      k += indent;
    } else if (/[\uD800-\uDBFF]/.test(k) && i + 1 < text.length) {
      k = text.slice(i, i + 2);  // a surrogate pair is one character
    }
    i += k.length;
    const next = text[i];
    let gap = between(model.keyMs);
    if (k.includes('\n')) {
      if (chance(model.newLinePause)) gap = between(model.newLinePause.ms);
    } else if (next === '\n' || next === '\r') {
      if (chance(model.lineEndPause)) gap = between(model.lineEndPause.ms);
    } else if (isWordChar(k) && next !== undefined && !isWordChar(next)) {
      if (chance(model.wordEndPause)) gap = between(model.wordEndPause.ms);
    } else if (chance(model.hesitation)) {
      gap = between(model.hesitation.ms);
    }
    keys.push({ text: k, gapMs: Math.round(gap) });
  }
  return keys;
}

/**
 * Whether an editor that debounces by `debounceMs` sends a request after this key: only when no key follows
 * within `debounceMs`. The last key of a text always ends with a pause.
 */
function requestAfter(key, isLast, debounceMs) {
  return isLast || key.gapMs >= debounceMs;
}

/** Nearest-rank percentile (p in [0, 1]) of an array of numbers, as spark/stats computes it; NaN when empty. */
function percentile(values, p) {
  if (values.length === 0) {
    return NaN;
  }
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))];
}

/** `after - before` for every numeric field of two spark/stats results (nested objects included). */
function statsDelta(before, after) {
  const out = {};
  for (const [key, value] of Object.entries(after)) {
    if (typeof value === 'number') {
      out[key] = value - (typeof before[key] === 'number' ? before[key] : 0);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = statsDelta(before[key] || {}, value);
    }
  }
  return out;
}

/** A number for a table: fixed digits, '–' for NaN or undefined. */
function fmt(value, digits = 0) {
  return value === undefined || value === null || Number.isNaN(value) ? '–' : Number(value).toFixed(digits);
}

module.exports = { seededRandom, DEFAULT_TYPING, keystrokes, requestAfter, percentile, statsDelta, fmt };
