// The global on/off switch of the `spark-ls.toggle` command, persisted across sessions.

/** Where the switch is stored (`ExtensionContext.globalState` satisfies this). */
export interface Memento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void>;
}

const STATE_KEY = 'spark-ls.suggestionsEnabled';

export class SuggestionToggle {
  private enabledValue: boolean;
  private readonly listeners: ((enabled: boolean) => void)[] = [];

  constructor(private readonly memento: Memento) {
    this.enabledValue = memento.get<boolean>(STATE_KEY) ?? true;
  }

  get enabled(): boolean {
    return this.enabledValue;
  }

  /** Calls `listener` with the new state after every change. */
  onDidChange(listener: (enabled: boolean) => void): void {
    this.listeners.push(listener);
  }

  async set(enabled: boolean): Promise<void> {
    if (enabled === this.enabledValue) {
      return;
    }
    this.enabledValue = enabled;
    await this.memento.update(STATE_KEY, enabled);
    for (const listener of this.listeners) {
      listener(enabled);
    }
  }

  /** Flips the switch and returns the new state. */
  async toggle(): Promise<boolean> {
    await this.set(!this.enabledValue);
    return this.enabledValue;
  }
}
