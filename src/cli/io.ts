import { CacheError } from '../core/errors.js';

/** Exit codes: 0 done, 1 the work failed (no server, no such key, declined), 2 the command line is wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A mistake on the command line: reported in one line with exit code 2. */
export class UsageError extends Error {}

/** A failure to report in one line with exit code 1. */
export class Failure extends Error {}

/** Where a command writes; the tests and the pseudo-terminal session use the process's own. */
export interface Io {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

/** Writes a line to stdout, resolving once it is flushed (so a streamed listing keeps memory flat). */
export function writeLine(io: Io, line: string): Promise<void> | undefined {
  if (io.out.write(`${line}\n`)) return undefined;
  return new Promise((resolve) => io.out.once('drain', resolve));
}

/** One line for any error: the message of a CacheError or Error, never a stack or a URL. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split('\n')[0] ?? '';
  return error instanceof CacheError ? `${first} (${error.errorType})` : first;
}

/** Seconds in words: `12s`, `3m 20s`, `1h 5m`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '∞';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** Bytes in words: `512 B`, `3.2 KiB`, `41.0 MiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
