'use strict';
// Text positions as LSP counts them, computed independently of the server: a JavaScript string (UTF-16) offset
// to and from a `{line, character}` in utf-8, utf-16 or utf-32 units, and a local model of a document that
// applies the same content changes a client sends, so tests can compare the server's copy with the expected one.
//
// Lines end at "\r\n", "\n" or "\r" (LSP 3.17 "Text Documents"); `character` counts units of the negotiated
// encoding from the start of the line and never includes the line terminator.

const ENCODINGS = ['utf-8', 'utf-16', 'utf-32'];

/** Units of `encoding` in the JavaScript string `s`. */
function unitLength(s, encoding) {
  switch (encoding) {
    case 'utf-8':
      return Buffer.byteLength(s, 'utf8');
    case 'utf-16':
      return s.length;
    case 'utf-32':
      return [...s].length;
    default:
      throw new Error(`unknown position encoding ${encoding}`);
  }
}

/** Start offsets (UTF-16) of each line of `text`; a text always has at least one line. */
function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\r') {
      if (text[i + 1] === '\n') {
        i++;
      }
      starts.push(i + 1);
    } else if (c === '\n') {
      starts.push(i + 1);
    }
  }
  return starts;
}

/** The content of line `line` without its terminator. */
function lineText(text, line) {
  const starts = lineStarts(text);
  if (line < 0 || line >= starts.length) {
    throw new RangeError(`line ${line} out of range (${starts.length} lines)`);
  }
  const end = line + 1 < starts.length ? starts[line + 1] : text.length;
  return text.slice(starts[line], end).replace(/\r?\n$|\r$/, '');
}

/** The LSP position of the UTF-16 `offset` in `text`, counted in `encoding` units. */
function positionAt(text, offset, encoding) {
  if (offset < 0 || offset > text.length) {
    throw new RangeError(`offset ${offset} out of range (length ${text.length})`);
  }
  const starts = lineStarts(text);
  let line = starts.length - 1;
  while (starts[line] > offset) {
    line--;
  }
  return { line, character: unitLength(text.slice(starts[line], offset), encoding) };
}

/** The UTF-16 offset of an LSP position whose `character` is in `encoding` units (must be on a boundary). */
function offsetAt(text, position, encoding) {
  const starts = lineStarts(text);
  if (position.line < 0 || position.line >= starts.length) {
    throw new RangeError(`line ${position.line} out of range (${starts.length} lines)`);
  }
  const content = lineText(text, position.line);
  let units = 0;
  let index = 0;
  for (const ch of content) {
    if (units >= position.character) {
      break;
    }
    units += unitLength(ch, encoding);
    index += ch.length;
  }
  if (units !== position.character && position.character <= unitLength(content, encoding)) {
    throw new RangeError(`character ${position.character} is inside a character in ${encoding}`);
  }
  return starts[position.line] + index;
}

/** Range of the UTF-16 offsets [start, end) of `text` in `encoding` units. */
function rangeAt(text, start, end, encoding) {
  return { start: positionAt(text, start, encoding), end: positionAt(text, end, encoding) };
}

/**
 * Applies LSP content changes (incremental `{range, text}` or full `{text}`) in order, as a server must.
 * Positions are in `encoding` units. Returns the new text.
 */
function applyContentChanges(text, changes, encoding) {
  for (const change of changes) {
    if (change.range === undefined) {
      text = change.text;
      continue;
    }
    const start = offsetAt(text, change.range.start, encoding);
    const end = offsetAt(text, change.range.end, encoding);
    text = text.slice(0, start) + change.text + text.slice(end);
  }
  return text;
}

module.exports = {
  ENCODINGS,
  unitLength,
  lineStarts,
  lineText,
  positionAt,
  offsetAt,
  rangeAt,
  applyContentChanges,
};
