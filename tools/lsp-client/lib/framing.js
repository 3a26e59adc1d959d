'use strict';
// The LSP base protocol's framing at the byte level, without a JSON-RPC library: build frames (well-formed or
// deliberately broken ones) and read a byte stream back into JSON messages.
//
// The message connection in client.js is what ordinary tests use. This module is for tests that must control
// every byte sent (fuzzing, framing edge cases) and read whatever comes back, even from a misbehaving peer.

/**
 * `Content-Length: N\r\n\r\n` + body, N counted in bytes.
 * @param {string|Buffer|object} body a string or Buffer is sent as is; anything else is JSON-encoded first
 * @returns {Buffer}
 */
function frame(body) {
  let bytes;
  if (Buffer.isBuffer(body)) {
    bytes = body;
  } else if (typeof body === 'string') {
    bytes = Buffer.from(body, 'utf8');
  } else {
    bytes = Buffer.from(JSON.stringify(body), 'utf8');
  }
  return Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`, 'ascii'), bytes]);
}

/**
 * A tolerant reader of framed messages. Feed it bytes in any split; it calls `onMessage(value)` for every body
 * that parses as JSON and `onJunk(description)` for anything else (a body that is not JSON, bytes before a
 * header). It never throws and resynchronises on the next `Content-Length` after anything it cannot read, so a
 * reader of a buggy peer's output still sees every well-formed frame that follows a broken one.
 */
class FrameParser {
  /**
   * @param {(message: any) => void} onMessage
   * @param {(description: string) => void} [onJunk]
   */
  constructor(onMessage, onJunk = () => {}) {
    this.onMessage = onMessage;
    this.onJunk = onJunk;
    this.buffer = Buffer.alloc(0);
    this.messages = 0;
    this.junk = 0;
  }

  /** @param {Buffer} chunk */
  push(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const start = indexOfCaseInsensitive(this.buffer, 'content-length');
      if (start < 0) {
        // Keep a tail long enough to hold a partly received "Content-Length".
        const keep = Math.min(this.buffer.length, 'content-length'.length - 1);
        if (this.buffer.length > keep) {
          this.reportJunk(this.buffer.subarray(0, this.buffer.length - keep));
          this.buffer = this.buffer.subarray(this.buffer.length - keep);
        }
        return;
      }
      if (start > 0) {
        const skipped = this.buffer.subarray(0, start);
        if (skipped.toString('latin1').trim() !== '') {
          this.reportJunk(skipped);
        }
        this.buffer = this.buffer.subarray(start);
      }
      const headerEnd = findHeaderEnd(this.buffer);
      if (headerEnd === null) {
        if (this.buffer.length > 64 * 1024) {
          // No end of the header block in sight: give up on this one and look for the next.
          this.reportJunk(this.buffer.subarray(0, 1));
          this.buffer = this.buffer.subarray(1);
          continue;
        }
        return;
      }
      const header = this.buffer.subarray(0, headerEnd.start).toString('latin1');
      const match = /^content-length[ \t]*:[ \t]*(\d+)[ \t]*$/im.exec(header);
      if (!match) {
        this.reportJunk(this.buffer.subarray(0, 1));
        this.buffer = this.buffer.subarray(1);
        continue;
      }
      const length = Number(match[1]);
      const bodyStart = headerEnd.end;
      if (this.buffer.length < bodyStart + length) {
        return;
      }
      const body = this.buffer.subarray(bodyStart, bodyStart + length);
      this.buffer = this.buffer.subarray(bodyStart + length);
      let value;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch (error) {
        this.reportJunk(body);
        continue;
      }
      this.messages += 1;
      this.onMessage(value);
    }
  }

  reportJunk(bytes) {
    this.junk += 1;
    const text = bytes.toString('utf8');
    this.onJunk(text.length > 200 ? `${text.slice(0, 200)}…` : text);
  }
}

function indexOfCaseInsensitive(buffer, needle) {
  // Header names are ASCII: lower-casing as latin1 keeps byte offsets intact.
  return buffer.toString('latin1').toLowerCase().indexOf(needle);
}

// The end of the header block: the first blank line, whether lines end with "\r\n" or "\n".
function findHeaderEnd(buffer) {
  const text = buffer.toString('latin1');
  const match = /\r?\n\r?\n/.exec(text);
  if (!match) {
    return null;
  }
  return { start: match.index, end: match.index + match[0].length };
}

module.exports = { frame, FrameParser };
