// Activation glue: starts spark-ls over stdio with vscode-languageclient, keeps its settings in sync, and wires
// the commands and the status-bar item. The logic it relies on lives in settings.ts, status.ts, server.ts and
// toggle.ts, which do not need VS Code.
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from 'vscode-languageclient/node';

import {
  affectsServer,
  didChangeConfigurationParams,
  isLanguageEnabled,
  serverSettings,
} from './settings';
import { findServer, SERVER_ARGS } from './server';
import { formatStatsReport, formatStatus, ServerState, SparkStats, StatsPoller } from './status';
import { SuggestionToggle } from './toggle';

/** Command ids contributed in package.json. */
export const COMMANDS = {
  toggle: 'spark-ls.toggle',
  acceptNextWord: 'spark-ls.acceptNextWord',
  acceptNextLine: 'spark-ls.acceptNextLine',
  showStats: 'spark-ls.showStats',
} as const;

const SECTION = 'spark-ls';
const STATS_METHOD = 'spark/stats';
const STATS_INTERVAL_MS = 3000;

/** Everything `deactivate` has to stop; undefined while not active. */
let session: { client?: LanguageClient; poller: StatsPoller } | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('spark-ls', { log: true });
  const statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'spark-ls';
  statusItem.command = COMMANDS.toggle;
  context.subscriptions.push(output, statusItem);

  const toggle = new SuggestionToggle(context.globalState);
  let state: ServerState = 'starting';
  let lastStats: SparkStats | undefined;
  const render = (): void => {
    const view = formatStatus(state, toggle.enabled, lastStats);
    statusItem.text = view.text;
    statusItem.tooltip = view.tooltip;
  };
  render();
  statusItem.show();

  let client: LanguageClient | undefined;
  const poller = new StatsPoller(
    () => (client ? client.sendRequest<SparkStats>(STATS_METHOD) : Promise.reject(new Error('not running'))),
    (stats) => {
      lastStats = stats;
      render();
    },
    // A failed poll (server busy restarting, stopped) leaves the last figures; the next poll tries again.
    (error) => output.appendLine(`spark/stats failed: ${error instanceof Error ? error.message : String(error)}`),
    STATS_INTERVAL_MS,
  );
  session = { poller };

  toggle.onDidChange((enabled) => {
    render();
    if (!enabled) {
      // Drop a suggestion that is on screen now; new ones are held back by the middleware below.
      void vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    }
  });

  context.subscriptions.push(
    vscode.commands.registerCommand(COMMANDS.toggle, async () => {
      const enabled = await toggle.toggle();
      vscode.window.setStatusBarMessage(`spark-ls: inline suggestions ${enabled ? 'on' : 'off'}`, 2000);
    }),
    vscode.commands.registerCommand(COMMANDS.acceptNextWord, () =>
      vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextWord'),
    ),
    vscode.commands.registerCommand(COMMANDS.acceptNextLine, () =>
      vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextLine'),
    ),
    vscode.commands.registerCommand(COMMANDS.showStats, async () => {
      if (client && state === 'running') {
        await poller.poll();
      }
      const report = formatStatsReport(lastStats);
      output.appendLine(report.join('\n'));
      const choice = await vscode.window.showInformationMessage(report.join(' | '), 'Open Output');
      if (choice === 'Open Output') {
        output.show(true);
      }
    }),
  );

  let executable: string;
  try {
    executable = findServer(vscode.workspace.getConfiguration(SECTION).get<string>('path'));
  } catch (error) {
    state = 'stopped';
    render();
    const message = error instanceof Error ? error.message : String(error);
    output.appendLine(message);
    void vscode.window.showErrorMessage(message);
    return;
  }

  const serverOptions: ServerOptions = {
    command: executable,
    args: [...SERVER_ARGS],
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    // Every file and unsaved buffer; `spark-ls.enable` / `spark-ls.languages` narrow it per language.
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(vscode.workspace.getConfiguration(SECTION)),
    outputChannel: output,
    middleware: {
      provideInlineCompletionItems: (document, position, inlineContext, token, next) => {
        if (!toggle.enabled) {
          return null;
        }
        const config = vscode.workspace.getConfiguration(SECTION, document);
        if (!isLanguageEnabled(config.get('languages'), config.get('enable'), document.languageId)) {
          return null;
        }
        return next(document, position, inlineContext, token);
      },
    },
  };

  // The id makes vscode-languageclient read `spark-ls.trace.server`.
  client = new LanguageClient(SECTION, 'spark-ls', serverOptions, clientOptions);
  session.client = client;

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (client && state === 'running' && affectsServer((section) => event.affectsConfiguration(section))) {
        const params = didChangeConfigurationParams(serverSettings(vscode.workspace.getConfiguration(SECTION)));
        void client.sendNotification('workspace/didChangeConfiguration', params);
      }
    }),
  );

  output.appendLine(`Starting ${executable} ${SERVER_ARGS.join(' ')}`);
  try {
    await client.start();
  } catch (error) {
    state = 'stopped';
    render();
    const message = `spark-ls failed to start: ${error instanceof Error ? error.message : String(error)}`;
    output.appendLine(message);
    void vscode.window.showErrorMessage(message);
    return;
  }
  state = 'running';
  render();
  poller.start();
  await poller.poll();
}

export async function deactivate(): Promise<void> {
  const current = session;
  session = undefined;
  if (!current) {
    return;
  }
  current.poller.stop();
  if (current.client) {
    await current.client.stop();
  }
}
