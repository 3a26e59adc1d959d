'use strict';
// A spark-ls process on stdio driven byte by byte: whatever the test writes goes to stdin unchanged (broken
// frames, invalid JSON, anything), and stdout is read back with the tolerant FrameParser. For fuzzing and for
// checking exact answers to malformed input, which a JSON-RPC library would refuse to send or would hide.

const events = require('node:events');

const { spawnServer, killProcess, processExit, withTimeout } = require('./client');
const { frame, FrameParser } = require('./framing');

/** The key a response is filed under: ids 1 and "1" differ, as in JSON-RPC. */
function idKey(id) {
  return JSON.stringify(id);
}

class RawSession extends events.EventEmitter {
  /**
   * Starts `spark-ls serve [...args]`.
   * @param {object} [options] `args`, plus spawnServer()'s `binary`, `env`, `cwd`
   */
  static async start({ args = [], ...spawnOptions } = {}) {
    return new RawSession(await spawnServer(args, spawnOptions));
  }

  constructor(child) {
    super();
    this.child = child;
    /** Every message read from stdout, in order. */
    this.messages = [];
    /** Responses (and error responses) by idKey(id), each a list in arrival order. */
    this.responses = new Map();
    /** Responses whose id is null or missing, in arrival order. */
    this.nullIdResponses = [];
    /** Notifications from the server ({method, params, ...}). */
    this.notifications = [];
    /** Requests from the server. */
    this.serverRequests = [];
    /** Descriptions of stdout bytes that were not a framed JSON message (a server bug: stdout is LSP only). */
    this.junk = [];
    this.bytesWritten = 0;
    this.parser = new FrameParser(
      (message) => this.onMessage(message),
      (description) => this.junk.push(description),
    );
    child.stdout.on('data', (chunk) => this.parser.push(chunk));
    this.exited = processExit(child);
  }

  onMessage(message) {
    this.messages.push(message);
    const isObject = message !== null && typeof message === 'object' && !Array.isArray(message);
    if (isObject && typeof message.method === 'string') {
      if ('id' in message) {
        this.serverRequests.push(message);
      } else {
        this.notifications.push(message);
      }
    } else if (isObject && (message.id === null || message.id === undefined)) {
      this.nullIdResponses.push(message);
    } else if (isObject) {
      const key = idKey(message.id);
      if (!this.responses.has(key)) {
        this.responses.set(key, []);
      }
      this.responses.get(key).push(message);
    }
    this.emit('message', message);
  }

  /** Writes bytes to the server's stdin; resolves once they were handed to the pipe (waits out backpressure). */
  async write(bytes) {
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8');
    this.bytesWritten += buffer.length;
    if (!this.child.stdin.write(buffer)) {
      await Promise.race([events.once(this.child.stdin, 'drain'), this.exited]);
    }
  }

  /** Frames `body` (string, Buffer or object to JSON-encode) and writes it. */
  send(body) {
    return this.write(frame(body));
  }

  /** Sends a well-formed request and resolves with its response. */
  async request(id, method, params, timeoutMs) {
    const message = { jsonrpc: '2.0', id, method };
    if (params !== undefined) {
      message.params = params;
    }
    const response = this.waitForResponse(id, timeoutMs);
    await this.send(message);
    return response;
  }

  /** Sends a well-formed notification. */
  notify(method, params) {
    const message = { jsonrpc: '2.0', method };
    if (params !== undefined) {
      message.params = params;
    }
    return this.send(message);
  }

  /** The first response carrying `id` (already received or still to come). */
  waitForResponse(id, timeoutMs = 30000) {
    const key = idKey(id);
    const known = this.responses.get(key);
    if (known && known.length > 0) {
      return Promise.resolve(known[0]);
    }
    let listener;
    const found = new Promise((resolve) => {
      listener = (message) => {
        if (message && typeof message === 'object' && !('method' in message) && idKey(message.id) === key) {
          resolve(message);
        }
      };
      this.on('message', listener);
    });
    return withTimeout(found, timeoutMs, `response to id ${key}`).finally(() => this.off('message', listener));
  }

  /** Resolves once `predicate()` holds, re-checking after every message read. */
  waitUntil(predicate, timeoutMs, what) {
    if (predicate()) {
      return Promise.resolve();
    }
    let listener;
    const done = new Promise((resolve) => {
      listener = () => {
        if (predicate()) {
          resolve();
        }
      };
      this.on('message', listener);
    });
    return withTimeout(done, timeoutMs, what).finally(() => this.off('message', listener));
  }

  /** Whether the process still runs. */
  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get stderr() {
    return this.child.stderrText;
  }

  /** Kills the process if it still runs. */
  dispose() {
    return killProcess(this.child);
  }
}

module.exports = { RawSession, idKey };
