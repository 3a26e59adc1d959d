// The small part of the `vscode` API the extension uses, recording what it is asked to do. `reset()` gives each
// test a fresh editor; `settings` holds the `spark-ls.*` values (without the prefix), `languageSettings` the
// `[lang]` overrides.
'use strict';

class Disposable {
  constructor(dispose) {
    this.dispose = dispose || (() => {});
  }
}

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (listener) => {
      this.listeners.push(listener);
      return new Disposable(() => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      });
    };
  }
  fire(value) {
    for (const listener of this.listeners) listener(value);
  }
}

const state = {};
const configurationChanged = new EventEmitter();

function reset() {
  state.commands = new Map();        // id -> handler
  state.executed = [];               // [id, ...args] of executeCommand calls
  state.messages = [];               // {kind, text}
  state.statusItems = [];
  state.outputLines = [];
  state.settings = {};
  state.languageSettings = {};       // languageId -> {key: value}
  state.informationAnswer = undefined;
  configurationChanged.listeners = [];
}
reset();

function getConfiguration(section, scope) {
  if (section !== 'spark-ls') throw new Error(`unexpected configuration section ${section}`);
  const languageId = scope && scope.languageId;
  return {
    get(key, defaultValue) {
      const overrides = (languageId && state.languageSettings[languageId]) || {};
      if (key in overrides) return overrides[key];
      return key in state.settings ? state.settings[key] : defaultValue;
    },
  };
}

const window = {
  createOutputChannel(name) {
    const line = (text) => state.outputLines.push(text);
    return { name, appendLine: line, info: line, warn: line, error: line, trace: line, debug: line,
             show() {}, dispose() {} };
  },
  createStatusBarItem(alignment, priority) {
    const item = { alignment, priority, text: '', tooltip: '', command: undefined, visible: false,
                   show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
    state.statusItems.push(item);
    return item;
  },
  showInformationMessage(text) {
    state.messages.push({ kind: 'information', text });
    return Promise.resolve(state.informationAnswer);
  },
  showErrorMessage(text) {
    state.messages.push({ kind: 'error', text });
    return Promise.resolve(undefined);
  },
  setStatusBarMessage(text) {
    state.messages.push({ kind: 'status', text });
    return new Disposable();
  },
};

const commands = {
  registerCommand(id, handler) {
    if (state.commands.has(id)) throw new Error(`command ${id} registered twice`);
    state.commands.set(id, handler);
    return new Disposable(() => state.commands.delete(id));
  },
  executeCommand(id, ...args) {
    state.executed.push([id, ...args]);
    const handler = state.commands.get(id);
    return Promise.resolve(handler ? handler(...args) : undefined);
  },
};

const workspace = {
  getConfiguration,
  onDidChangeConfiguration: configurationChanged.event,
};

/** Fires `onDidChangeConfiguration` for a change to the given `spark-ls.*` keys (full names). */
function changeConfiguration(changedKeys) {
  configurationChanged.fire({
    affectsConfiguration: (section) => changedKeys.some((key) => key === section || key.startsWith(`${section}.`)),
  });
}

module.exports = {
  Disposable,
  EventEmitter,
  StatusBarAlignment: { Left: 1, Right: 2 },
  window,
  commands,
  workspace,
  // Test controls.
  __state: state,
  __reset: reset,
  __changeConfiguration: changeConfiguration,
};
