'use strict';
// Drive a spark-ls process over LSP from node: start it on stdio or TCP, hold a vscode-jsonrpc message connection,
// answer the requests a server may send to its client, record what it reports (log and show messages, progress),
// and wrap the methods docs/LSP.md defines in small helpers.
//
//   const { startStdio } = require('.../tools/lsp-client');
//   const session = await startStdio();
//   await session.initialize({ positionEncodings: ['utf-8'] });
//   session.open('file:///a.py', 'python', 'def f():\n    ');
//   const { items } = await session.inlineCompletion('file:///a.py', { line: 1, character: 4 });
//   const exitCode = await session.shutdownAndExit();
//
// The binary is $SPARK_LS when set (CMake passes the one it built), else build/app/spark-ls in the source tree.
// Set SPARK_LS_TRACE=1 to copy the server's stderr to this process's stderr.
//
// Request helpers return the promise of the result; an error response rejects it with a vscode-jsonrpc
// ResponseError whose `code` is the JSON-RPC error code, so tests can write
//   await assert.rejects(session.stats(), { code: -32002 });

const childProcess = require('node:child_process');
const events = require('node:events');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const rpc = require('vscode-jsonrpc/node');
const protocol = require('vscode-languageserver-protocol');

const framing = require('./framing');
const text = require('./text');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_BINARY = path.join(REPO_ROOT, 'build', 'app', 'spark-ls');

// JSON-RPC and LSP error codes (docs/LSP.md), by name.
const ErrorCode = Object.freeze({
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  ServerNotInitialized: -32002,
  RequestFailed: -32803,
  ServerCancelled: -32802,
  ContentModified: -32801,
  RequestCancelled: -32800,
});

// Keep at most this much of the server's stderr per session (the tail), for failure messages.
const STDERR_KEEP = 256 * 1024;

/** The spark-ls binary to run: $SPARK_LS, else build/app/spark-ls in the source tree. */
function serverPath() {
  return process.env.SPARK_LS || DEFAULT_BINARY;
}

function checkBinary(binary) {
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    throw new Error(`spark-ls binary not found or not executable: ${binary} (build it, or set SPARK_LS)`);
  }
}

/**
 * Rejects with an Error naming `what` when `promise` has not settled after `ms` milliseconds. A failure guard for
 * tests, never a way to wait for something.
 */
function withTimeout(promise, ms, what) {
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** One LSP session: a message connection to a spark-ls process (stdio) or to one TCP connection of it. */
class Session extends events.EventEmitter {
  /**
   * @param {object} options
   * @param {'stdio'|'tcp'} options.transport
   * @param {import('node:child_process').ChildProcess} options.child the server process
   * @param {rpc.MessageReader} options.reader
   * @param {rpc.MessageWriter} options.writer
   * @param {net.Socket} [options.socket] the TCP connection
   * @param {TcpServer} [options.server] the TCP server process, stopped by dispose() when `ownsServer`
   * @param {boolean} [options.ownsServer]
   */
  constructor({ transport, child, reader, writer, socket, server, ownsServer }) {
    super();
    this.transport = transport;
    this.child = child;
    this.socket = socket;
    this.server = server;
    this.ownsServer = Boolean(ownsServer);

    /** `window/logMessage` params, in arrival order. */
    this.logMessages = [];
    /** `window/showMessage` params, in arrival order. */
    this.showMessages = [];
    /** Tokens of `window/workDoneProgress/create` requests, in arrival order. */
    this.progressTokens = [];
    /** `$/progress` params ({token, value}), in arrival order. */
    this.progress = [];
    /** Every notification from the server ({method, params}), in arrival order. */
    this.notifications = [];
    /** Every request from the server ({method, params}), in arrival order. */
    this.serverRequests = [];
    /** The result of initialize(), and the position encoding it chose ('utf-16' when it named none). */
    this.initializeResult = undefined;
    this.positionEncoding = undefined;

    this.connection = rpc.createMessageConnection(reader, writer, {
      error: (message) => this.emit('connectionLog', { level: 'error', message }),
      warn: (message) => this.emit('connectionLog', { level: 'warn', message }),
      info: () => {},
      log: () => {},
    });
    this.closed = new Promise((resolve) => this.connection.onClose(() => resolve()));
    this.connection.onNotification((method, params) => this.handleNotification(method, params));
    // vscode-jsonrpc routes `$/progress` to per-token handlers and reports the rest here, never to onNotification.
    this.connection.onUnhandledProgress((params) => this.handleNotification('$/progress', params));
    this.connection.onRequest((method, params) => this.handleServerRequest(method, params));
    this.connection.listen();
  }

  handleNotification(method, params) {
    this.notifications.push({ method, params });
    switch (method) {
      case 'window/logMessage':
        this.logMessages.push(params);
        this.emit('logMessage', params);
        break;
      case 'window/showMessage':
        this.showMessages.push(params);
        this.emit('showMessage', params);
        break;
      case '$/progress':
        this.progress.push(params);
        this.emit('progress', params);
        break;
      default:
        break;
    }
    this.emit('notification', { method, params });
  }

  // Answers what a client must answer; anything else is MethodNotFound, as from a real client.
  handleServerRequest(method, params) {
    this.serverRequests.push({ method, params });
    this.emit('serverRequest', { method, params });
    switch (method) {
      case 'window/workDoneProgress/create':
        this.progressTokens.push(params.token);
        return null;
      case 'client/registerCapability':
      case 'client/unregisterCapability':
      case 'window/showMessageRequest':
        return null;
      case 'workspace/configuration':
        return (params.items || []).map(() => null);
      case 'workspace/applyEdit':
        return { applied: false };
      default:
        return new rpc.ResponseError(ErrorCode.MethodNotFound, `unhandled request ${method}`);
    }
  }

  /**
   * Resolves with the first item of `list` (an array this session fills, e.g. this.logMessages) at index >= `from`
   * that satisfies `predicate`, waiting for `event` when none has arrived yet.
   */
  waitFor(event, list, predicate = () => true, { from = 0, timeoutMs = 10000 } = {}) {
    for (let i = from; i < list.length; i++) {
      if (predicate(list[i])) {
        return Promise.resolve(list[i]);
      }
    }
    let listener;
    const found = new Promise((resolve) => {
      listener = (item) => {
        if (predicate(item)) {
          resolve(item);
        }
      };
      this.on(event, listener);
    });
    return withTimeout(found, timeoutMs, `waiting for ${event}`).finally(() => this.off(event, listener));
  }

  /** The next (or an already received, from index `from`) `window/logMessage` matching `predicate`. */
  waitForLogMessage(predicate, options) {
    return this.waitFor('logMessage', this.logMessages, predicate, options);
  }

  /** The next (or an already received) `window/showMessage` matching `predicate`. */
  waitForShowMessage(predicate, options) {
    return this.waitFor('showMessage', this.showMessages, predicate, options);
  }

  /** The next (or an already received) `$/progress` matching `predicate`. */
  waitForProgress(predicate, options) {
    return this.waitFor('progress', this.progress, predicate, options);
  }

  /**
   * Sends a request; `params` undefined sends none. A CancellationToken as `token` sends $/cancelRequest.
   * Rejects (instead of waiting forever) when the connection closes before the answer came, e.g. because the
   * server died.
   */
  request(method, params, token) {
    const args = [];
    if (params !== undefined) {
      args.push(params);
    }
    if (token !== undefined) {
      args.push(token);
    }
    const answer = this.connection.sendRequest(method, ...args);
    const closedFirst = this.closed.then(() => {
      throw new Error(`the connection closed before ${method} was answered`);
    });
    closedFirst.catch(() => {}); // only meaningful if it wins the race below
    return Promise.race([answer, closedFirst]);
  }

  /** Sends a notification; `params` undefined sends none. Resolves once written. */
  notify(method, params) {
    return params === undefined
      ? this.connection.sendNotification(method)
      : this.connection.sendNotification(method, params);
  }

  /**
   * The `initialize` request, then (unless `sendInitialized` is false) the `initialized` notification.
   * @param {object} [options]
   * @param {string[]} [options.positionEncodings] `capabilities.general.positionEncodings`; omitted when undefined
   * @param {object} [options.initializationOptions] spark-ls settings (docs/LSP.md "Settings")
   * @param {boolean} [options.workDoneProgress] `capabilities.window.workDoneProgress` (default true)
   * @param {object} [options.capabilities] merged over the defaults, one level deep
   * @param {boolean} [options.sendInitialized]
   * @returns {Promise<object>} the InitializeResult
   */
  async initialize({
    positionEncodings,
    initializationOptions,
    workDoneProgress = true,
    capabilities = {},
    sendInitialized = true,
  } = {}) {
    const defaults = {
      general: positionEncodings === undefined ? {} : { positionEncodings },
      window: { workDoneProgress, showMessage: {} },
      workspace: { configuration: false, didChangeConfiguration: { dynamicRegistration: false } },
      textDocument: {
        synchronization: { dynamicRegistration: false, didSave: true },
        inlineCompletion: { dynamicRegistration: false },
        completion: { dynamicRegistration: false, completionItem: { snippetSupport: false } },
      },
    };
    for (const [key, value] of Object.entries(capabilities)) {
      defaults[key] = { ...(defaults[key] || {}), ...value };
    }
    const params = {
      processId: process.pid,
      clientInfo: { name: 'spark-ls-lsp-client', version: '0.0.0' },
      rootUri: null,
      workspaceFolders: null,
      capabilities: defaults,
    };
    if (initializationOptions !== undefined) {
      params.initializationOptions = initializationOptions;
    }
    const result = await this.request('initialize', params);
    this.initializeResult = result;
    this.positionEncoding = (result && result.capabilities && result.capabilities.positionEncoding) || 'utf-16';
    if (sendInitialized) {
      await this.notify('initialized', {});
    }
    return result;
  }

  /** `textDocument/didOpen`. */
  open(uri, languageId, content, version = 1) {
    return this.notify('textDocument/didOpen', { textDocument: { uri, languageId, version, text: content } });
  }

  /** `textDocument/didChange` with `contentChanges` ({range, text} or {text}) applied in order. */
  change(uri, version, contentChanges) {
    return this.notify('textDocument/didChange', { textDocument: { uri, version }, contentChanges });
  }

  /** `textDocument/didClose`. */
  close(uri) {
    return this.notify('textDocument/didClose', { textDocument: { uri } });
  }

  /** `textDocument/didSave`. */
  save(uri) {
    return this.notify('textDocument/didSave', { textDocument: { uri } });
  }

  /** `workspace/didChangeConfiguration` with `{settings: {"spark-ls": settings}}`. */
  configure(settings) {
    return this.notify('workspace/didChangeConfiguration', { settings: { 'spark-ls': settings } });
  }

  /** `spark/document`: the server's copy `{uri, languageId, version, text}`. */
  document(uri) {
    return this.request('spark/document', { textDocument: { uri } });
  }

  /** `textDocument/inlineCompletion`; `context` defaults to Automatic (triggerKind 2). */
  inlineCompletion(uri, position, { context = { triggerKind: 2 }, token } = {}) {
    return this.request('textDocument/inlineCompletion', { textDocument: { uri }, position, context }, token);
  }

  /** `textDocument/completion` (the fallback for clients without inline completion). */
  completion(uri, position, { token } = {}) {
    return this.request('textDocument/completion', { textDocument: { uri }, position }, token);
  }

  /** `llm-ls/getCompletions` with llm.nvim's usual extra fields. */
  getCompletions(uri, position, { token } = {}) {
    const params = {
      textDocument: { uri },
      position,
      ide: 'neovim',
      fim: { enabled: true, prefix: '<fim_prefix>', middle: '<fim_middle>', suffix: '<fim_suffix>' },
      model: 'spark-ls',
      backend: 'huggingface',
      tokensToClear: ['<|endoftext|>'],
      contextWindow: 1024,
      tlsSkipVerifyInsecure: false,
      requestBody: {},
    };
    return this.request('llm-ls/getCompletions', params, token);
  }

  /** `workspace/executeCommand`. */
  executeCommand(command, args = []) {
    return this.request('workspace/executeCommand', { command, arguments: args });
  }

  /** `spark/stats`. */
  stats() {
    return this.request('spark/stats');
  }

  /** `shutdown`. */
  shutdown() {
    return this.request('shutdown');
  }

  /** The `exit` notification. */
  exit() {
    return this.notify('exit');
  }

  /**
   * Resolves when the server process ends, with its exit code (null when a signal ended it; see `child.signalCode`).
   * Over TCP this is the whole server, which outlives its connections.
   */
  waitForProcessExit() {
    return processExit(this.child);
  }

  /**
   * `shutdown` (its result must be null), then `exit`. Resolves with the process's exit code over stdio, and
   * with null over TCP once the server closed the connection (the server keeps running for other connections).
   */
  async shutdownAndExit() {
    const result = await this.shutdown();
    if (result !== null) {
      throw new Error(`shutdown answered ${JSON.stringify(result)}, expected null`);
    }
    await this.exit();
    if (this.transport === 'stdio') {
      return this.waitForProcessExit();
    }
    await this.closed;
    return null;
  }

  /** The tail of the server's stderr, for failure messages. */
  get stderr() {
    return this.server ? this.server.stderr : this.child.stderrText || '';
  }

  /**
   * Ends the session: disposes the connection, closes the socket, and kills the process when this session owns
   * it and it still runs. Safe to call more than once and after the server exited.
   */
  async dispose() {
    this.connection.dispose();
    if (this.socket) {
      this.socket.destroy();
    }
    if (this.transport === 'stdio') {
      await killProcess(this.child);
    } else if (this.ownsServer && this.server) {
      await this.server.stop();
    }
  }
}

function processExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return events.once(child, 'exit').then(([code]) => code);
}

async function killProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = events.once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * Spawns `spark-ls serve ...args` with piped stdio, keeps the tail of its stderr in child.stderrText, and resolves
 * with the ChildProcess once it started. For tests that speak to stdin/stdout directly (see raw.js).
 * @param {string[]} args
 * @param {object} [options] `binary` (default serverPath()), `env` (added to the environment), `cwd`
 */
async function spawnServer(args, { binary = serverPath(), env = {}, cwd } = {}) {
  checkBinary(binary);
  const child = childProcess.spawn(binary, ['serve', ...args], {
    cwd: cwd || REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderrText = '';
  // Resolves once the process exited and its stdio closed (so stderrText holds everything it wrote).
  child.closed = events.once(child, 'close').then(() => undefined);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    child.stderrText = (child.stderrText + chunk).slice(-STDERR_KEEP);
    if (process.env.SPARK_LS_TRACE) {
      process.stderr.write(chunk);
    }
  });
  // Writes racing the server's exit fail with EPIPE; the session notices through its connection.
  child.stdin.on('error', () => {});
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child;
}

/**
 * Starts `spark-ls serve [...args]` speaking LSP on stdin/stdout and returns a Session on it.
 * @param {object} [options]
 * @param {string[]} [options.args] extra server arguments, e.g. ['--test-double', 'slow-engine']
 * @param {string} [options.binary] default serverPath()
 * @param {object} [options.env] added to the environment
 */
async function startStdio({ args = [], ...spawnOptions } = {}) {
  const child = await spawnServer(args, spawnOptions);
  return new Session({
    transport: 'stdio',
    child,
    reader: new rpc.StreamMessageReader(child.stdout),
    writer: new rpc.StreamMessageWriter(child.stdin),
  });
}

/** A `spark-ls serve --tcp 0` process: one LSP session per connection. */
class TcpServer {
  constructor(child, host, port) {
    this.child = child;
    this.host = host;
    this.port = port;
  }

  get stderr() {
    return this.child.stderrText;
  }

  /** Opens a raw TCP connection to the server. */
  async connectSocket() {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    await events.once(socket, 'connect');
    return socket;
  }

  /** Opens a connection and returns a Session on it (disposing it leaves the server running). */
  async connect() {
    const socket = await this.connectSocket();
    return new Session({
      transport: 'tcp',
      child: this.child,
      socket,
      server: this,
      reader: new rpc.SocketMessageReader(socket),
      writer: new rpc.SocketMessageWriter(socket),
    });
  }

  /** Kills the server process (if it still runs) and resolves once it is gone. */
  stop() {
    return killProcess(this.child);
  }
}

/**
 * Starts `spark-ls serve --tcp 0 [...args]` and resolves once it printed `spark-ls: listening on HOST:PORT`.
 * @param {object} [options] as for startStdio, plus `startTimeoutMs` (default 30000)
 */
async function startTcpServer({ args = [], startTimeoutMs = 30000, ...spawnOptions } = {}) {
  const child = await spawnServer(['--tcp', '0', ...args], spawnOptions);
  const listening = new Promise((resolve, reject) => {
    const onData = () => {
      const match = /spark-ls: listening on (\S+):(\d+)/.exec(child.stderrText);
      if (match) {
        child.stderr.off('data', onData);
        child.off('exit', onExit);
        resolve({ host: match[1].replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) });
      }
    };
    const onExit = (code, signal) => {
      reject(new Error(`spark-ls exited (code ${code}, signal ${signal}) before listening:\n${child.stderrText}`));
    };
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
  try {
    const { host, port } = await withTimeout(listening, startTimeoutMs, 'spark-ls to print its TCP port');
    // A server bound to all interfaces is reached through the loopback address.
    const connectHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    return new TcpServer(child, connectHost, port);
  } catch (error) {
    await killProcess(child);
    throw error;
  }
}

/** startTcpServer() and one connection to it; disposing the session also stops the server. */
async function startTcp(options = {}) {
  const server = await startTcpServer(options);
  try {
    const session = await server.connect();
    session.ownsServer = true;
    return session;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** startStdio() or startTcp(), by name. */
function start(transport, options) {
  switch (transport) {
    case 'stdio':
      return startStdio(options);
    case 'tcp':
      return startTcp(options);
    default:
      throw new Error(`unknown transport ${transport}`);
  }
}

module.exports = {
  // Sessions.
  serverPath,
  start,
  startStdio,
  startTcp,
  startTcpServer,
  Session,
  TcpServer,
  spawnServer,
  killProcess,
  processExit,
  ErrorCode,
  withTimeout,
  // Byte-level framing and text positions.
  ...framing,
  ...text,
  // vscode-jsonrpc and the LSP protocol definitions, so users need no node_modules of their own.
  rpc,
  protocol,
  CancellationTokenSource: rpc.CancellationTokenSource,
  ResponseError: rpc.ResponseError,
};

// Byte-level sessions (raw.js builds on the exports above, so it is loaded after them).
const raw = require('./raw');

module.exports.RawSession = raw.RawSession;
module.exports.idKey = raw.idKey;
