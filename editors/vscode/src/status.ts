// The status-bar item: what `spark/stats` (docs/LSP.md) is turned into, and the poller that refreshes it.

/** The fields of a `spark/stats` answer shown here (the server sends more; all are optional to the reader). */
export interface SparkStats {
  requests?: number;
  cacheHits?: number;
  shown?: number;
  accepted?: number;
  rejected?: number;
  latencyMs?: { count?: number; p50?: number; p90?: number; p99?: number; mean?: number };
  engine?: {
    loaded?: boolean;
    generatedTokens?: number;
    tokensPerSecond?: number;
    acceptance?: number;
    draftedTokens?: number;
  };
}

export interface StatusView {
  text: string;
  tooltip: string;
}

/** Where the server stands, as far as the status bar cares. */
export type ServerState = 'starting' | 'running' | 'stopped';

function finite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

/**
 * The status-bar text for the given state. `enabled` is the toggle; `stats` the last `spark/stats` answer (absent
 * before the first one). Codicons (`$(…)`) are rendered by VS Code.
 */
export function formatStatus(state: ServerState, enabled: boolean, stats?: SparkStats): StatusView {
  if (state === 'stopped') {
    return { text: '$(error) spark-ls', tooltip: 'spark-ls is not running' };
  }
  if (!enabled) {
    return { text: '$(circle-slash) spark-ls', tooltip: 'spark-ls: inline suggestions are off (click to toggle)' };
  }
  const engine = stats?.engine;
  if (state === 'starting' || !engine?.loaded) {
    return { text: '$(loading~spin) spark-ls', tooltip: 'spark-ls: loading the model…' };
  }
  const speed = finite(engine.tokensPerSecond) && engine.tokensPerSecond > 0
    ? `${Math.round(engine.tokensPerSecond)} tok/s`
    : '– tok/s';
  const parts = [speed];
  // Acceptance means something only once drafts were proposed.
  const drafted = (engine.draftedTokens ?? 1) > 0;
  if (finite(engine.acceptance) && drafted) {
    parts.push(`${percent(engine.acceptance)} acc`);
  }
  const tooltip = [...formatStatsReport(stats), '', 'Click to turn inline suggestions off'].join('\n');
  return { text: `$(sparkle) ${parts.join(' · ')}`, tooltip };
}

/** A readable multi-line summary of `spark/stats`, for the tooltip and the "Show Statistics" command. */
export function formatStatsReport(stats: SparkStats | undefined): string[] {
  if (!stats) {
    return ['spark-ls: no statistics yet'];
  }
  const lines = ['spark-ls'];
  const engine = stats.engine ?? {};
  if (finite(engine.tokensPerSecond)) {
    lines.push(`Speed: ${engine.tokensPerSecond.toFixed(1)} tokens/s (${engine.generatedTokens ?? 0} generated)`);
  }
  if (finite(engine.acceptance) && (engine.draftedTokens ?? 1) > 0) {
    lines.push(`Draft acceptance: ${percent(engine.acceptance)}`);
  }
  lines.push(
    `Requests: ${stats.requests ?? 0} (${stats.cacheHits ?? 0} from cache)`,
    `Suggestions: ${stats.shown ?? 0} shown, ${stats.accepted ?? 0} accepted, ${stats.rejected ?? 0} rejected`,
  );
  const latency = stats.latencyMs;
  if (latency && finite(latency.p50) && (latency.count ?? 0) > 0) {
    lines.push(`Latency: p50 ${Math.round(latency.p50)} ms, p90 ${Math.round(latency.p90 ?? 0)} ms`);
  }
  return lines;
}

/**
 * Polls `fetch` every `intervalMs` and hands each answer to `onStats` (failures to `onError`). Polls never
 * overlap: a slow answer delays the next one instead of piling requests up.
 */
export class StatsPoller {
  private timer: ReturnType<typeof setInterval> | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly fetch: () => Promise<SparkStats>,
    private readonly onStats: (stats: SparkStats) => void,
    private readonly onError: (error: unknown) => void,
    private readonly intervalMs = 3000,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer === undefined) {
      this.timer = setInterval(() => void this.poll(), this.intervalMs);
      // Never keep a process alive just to poll.
      this.timer.unref?.();
    }
  }

  stop(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** One poll now; resolves when its answer (or error) was handled. */
  poll(): Promise<void> {
    if (!this.inFlight) {
      this.inFlight = this.fetch()
        .then(this.onStats, this.onError)
        .finally(() => {
          this.inFlight = undefined;
        });
    }
    return this.inFlight;
  }
}
