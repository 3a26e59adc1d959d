// Stands in for vscode-languageclient/node: records each client's options and the messages sent to it, and
// answers `spark/stats` with `stats`.
'use strict';

const TransportKind = { stdio: 0, ipc: 1, pipe: 2, socket: 3 };

const instances = [];

class LanguageClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, name, serverOptions, clientOptions });
    this.requests = [];
    this.notifications = [];
    this.started = false;
    this.stopped = false;
    this.stats = { requests: 3, accepted: 1, engine: { loaded: true, tokensPerSecond: 512.4, acceptance: 0.5 } };
    instances.push(this);
  }
  async start() {
    this.started = true;
  }
  async stop() {
    this.stopped = true;
  }
  async sendRequest(method, params) {
    this.requests.push({ method, params });
    if (method === 'spark/stats') return this.stats;
    throw new Error(`unexpected request ${method}`);
  }
  async sendNotification(method, params) {
    this.notifications.push({ method, params });
  }
}

module.exports = { LanguageClient, TransportKind, __instances: instances };
