// Finding the spark-ls executable: the `spark-ls.path` setting when given, else a lookup on PATH. Nothing is
// downloaded.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const SERVER_NAME = 'spark-ls';

/** The arguments that make spark-ls speak LSP on stdin/stdout. */
export const SERVER_ARGS: readonly string[] = ['serve'];

export class ServerNotFoundError extends Error {}

export interface LookupEnvironment {
  /** The PATH to search (defaults to `process.env.PATH`). */
  pathVariable?: string;
  /** Defaults to `process.platform`; on `win32` the PATHEXT extensions are tried too. */
  platform?: NodeJS.Platform;
  /** Windows executable extensions (defaults to `process.env.PATHEXT`). */
  pathExt?: string;
}

function isExecutableFile(file: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (platform !== 'win32') {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/** Expands a leading `~` to the home directory, as users write it in settings. */
function expandHome(file: string): string {
  return file === '~' || file.startsWith('~/') ? path.join(os.homedir(), file.slice(1)) : file;
}

/**
 * Returns the absolute path of the executable to launch. `explicitPath` (the `spark-ls.path` setting) wins when
 * non-empty and must name an executable file; otherwise `spark-ls` is searched on PATH. Throws
 * `ServerNotFoundError` with a message fit for the user when nothing is found.
 */
export function findServer(explicitPath: string | undefined, env: LookupEnvironment = {}): string {
  const platform = env.platform ?? process.platform;
  const configured = explicitPath?.trim();
  if (configured) {
    const file = path.resolve(expandHome(configured));
    if (!isExecutableFile(file, platform)) {
      throw new ServerNotFoundError(`spark-ls.path is set to "${configured}", which is not an executable file.`);
    }
    return file;
  }

  const pathVariable = env.pathVariable ?? process.env.PATH ?? '';
  const extensions =
    platform === 'win32' ? ['', ...(env.pathExt ?? process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  const separator = platform === 'win32' ? ';' : ':';
  for (const dir of pathVariable.split(separator)) {
    if (!dir) {
      continue;
    }
    for (const extension of extensions) {
      const file = path.resolve(dir, SERVER_NAME + extension);
      if (isExecutableFile(file, platform)) {
        return file;
      }
    }
  }
  throw new ServerNotFoundError(
    'spark-ls was not found on PATH. Install it, or set "spark-ls.path" to the executable.',
  );
}
