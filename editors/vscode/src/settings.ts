// Settings of the extension and how they map onto what spark-ls reads (docs/LSP.md, "Settings").
//
// Nothing here imports `vscode`: a `ConfigurationReader` (what `workspace.getConfiguration('spark-ls')` returns
// satisfies it) is enough, so the mapping is unit-tested without an editor.

/** The part of `vscode.WorkspaceConfiguration` this module reads. */
export interface ConfigurationReader {
  get<T>(key: string): T | undefined;
}

/** The settings spark-ls itself understands, as sent in `initializationOptions` and `didChangeConfiguration`. */
export interface ServerSettings {
  model: string;
  draftModel: string;
  maxTokens: number;
  timeBudgetMs: number;
  debounceMs: number;
}

/** The server's own defaults (docs/LSP.md); used where a setting is missing or has the wrong type. */
export const SERVER_DEFAULTS: Readonly<ServerSettings> = Object.freeze({
  model: '',
  draftModel: 'none',
  maxTokens: 64,
  timeBudgetMs: 2000,
  debounceMs: 0,
});

function stringSetting(config: ConfigurationReader, key: keyof ServerSettings): string {
  const value = config.get<unknown>(key);
  return typeof value === 'string' ? value.trim() : (SERVER_DEFAULTS[key] as string);
}

function integerSetting(config: ConfigurationReader, key: keyof ServerSettings, min: number): number {
  const value = config.get<unknown>(key);
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return SERVER_DEFAULTS[key] as number;
  }
  return Math.max(min, Math.round(value));
}

/**
 * Reads the `spark-ls.*` settings that belong to the server. Extension-only settings (`path`, `enable`,
 * `languages`, `trace.server`) are left out: the server would ignore them anyway.
 */
export function serverSettings(config: ConfigurationReader): ServerSettings {
  return {
    model: stringSetting(config, 'model'),
    draftModel: stringSetting(config, 'draftModel') || SERVER_DEFAULTS.draftModel,
    maxTokens: integerSetting(config, 'maxTokens', 1),
    timeBudgetMs: integerSetting(config, 'timeBudgetMs', 1),
    debounceMs: integerSetting(config, 'debounceMs', 0),
  };
}

/** The `workspace/didChangeConfiguration` params carrying `settings` (the server accepts this nested form). */
export function didChangeConfigurationParams(settings: ServerSettings): { settings: { 'spark-ls': ServerSettings } } {
  return { settings: { 'spark-ls': settings } };
}

/** True when a change event touches a setting the server reads (and so has to be sent to it). */
export function affectsServer(affectsConfiguration: (section: string) => boolean): boolean {
  return (Object.keys(SERVER_DEFAULTS) as (keyof ServerSettings)[]).some((key) =>
    affectsConfiguration(`spark-ls.${key}`),
  );
}

/**
 * Whether suggestions are wanted for `languageId`. `spark-ls.languages` decides when it names the language (or
 * `"*"`, its catch-all); otherwise `spark-ls.enable` does, which VS Code already resolved with any `[lang]`
 * override when it was read for that language.
 */
export function isLanguageEnabled(
  languages: unknown,
  enable: unknown,
  languageId: string,
): boolean {
  if (languages !== null && typeof languages === 'object') {
    const map = languages as Record<string, unknown>;
    if (typeof map[languageId] === 'boolean') {
      return map[languageId] as boolean;
    }
    if (typeof map['*'] === 'boolean') {
      return map['*'] as boolean;
    }
  }
  return typeof enable === 'boolean' ? enable : true;
}
