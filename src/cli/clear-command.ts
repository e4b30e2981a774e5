import { createInterface } from 'node:readline/promises';
import type { Cache } from '../core/types.js';
import { connect, scope, type ConnectionFlags } from './connect.js';
import { duration, EXIT, Failure, oneLine, UsageError, writeLine, type Io } from './io.js';

export const CLEAR_HELP = `cachekit clear --pattern GLOB [--tenant ID] [--yes] [--dry-run] [--json]

Deletes the scope's keys that match a Redis glob. First counts them and asks
for confirmation (or --yes); shows a progress bar with rate and ETA while it
deletes (on a terminal). Keys written meanwhile that match may be deleted too.
  --pattern GLOB   required, e.g. 'v1:support:*' ('*' for every key of the scope)
  --yes            do not ask
  --dry-run        only count what would be deleted
  --json           one JSON object: { matched, deleted, seconds }`;

export interface ClearFlags extends ConnectionFlags {
  pattern?: string | undefined;
  yes?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  json?: boolean | undefined;
}

// Deletes in flight at once: enough to fill a pipeline, few enough to keep the server responsive.
const CONCURRENCY = 200;

export async function clearCommand(flags: ClearFlags, io: Io): Promise<number> {
  if (flags.pattern === undefined) throw new UsageError("clear needs --pattern GLOB (use --pattern '*' for every key of the scope)");
  const pattern = flags.pattern;
  const cache = await connect(flags, io);
  try {
    const where = `matching ${JSON.stringify(pattern)} under prefix ${flags.prefix ?? 'cachekit'}${flags.tenant === undefined ? '' : `, tenant ${flags.tenant}`}`;
    let matched = 0;
    try {
      for await (const _ of cache.keys(pattern, scope(flags))) matched++;
    } catch (error) {
      throw new Failure(oneLine(error));
    }
    if (flags['dry-run'] === true || matched === 0) {
      await writeLine(io, flags.json === true ? JSON.stringify({ matched, deleted: 0, seconds: 0, dryRun: flags['dry-run'] === true }) : `${matched} entries ${where}${flags['dry-run'] === true ? ' would be deleted (dry run: nothing deleted)' : ': nothing to delete'}`);
      return EXIT.ok;
    }
    if (flags.yes !== true) {
      if (!io.stdin.isTTY) throw new Failure(`refusing to delete ${matched} entries ${where} without confirmation (stdin is not a terminal): pass --yes`);
      const prompt = createInterface({ input: io.stdin, output: io.err });
      const answer = await prompt.question(`Delete ${matched} entries ${where}? [y/N] `);
      prompt.close();
      if (!/^y(es)?$/i.test(answer.trim())) {
        io.err.write('aborted: nothing deleted\n');
        return EXIT.failed;
      }
    }
    const started = performance.now();
    const bar = io.err.isTTY && flags.json !== true ? new ProgressBar(io.err, matched) : undefined;
    let deleted = 0;
    try {
      deleted = await deleteMatching(cache, pattern, flags, (n) => bar?.update(n));
    } catch (error) {
      bar?.done();
      throw new Failure(`${oneLine(error)} (after deleting ${deleted} entries)`);
    }
    bar?.update(deleted, true);
    bar?.done();
    const seconds = (performance.now() - started) / 1000;
    await writeLine(io, flags.json === true ? JSON.stringify({ matched, deleted, seconds }) : `deleted ${deleted} entries ${where} in ${seconds.toFixed(1)} s`);
    return EXIT.ok;
  } finally {
    await cache.close();
  }
}

/** Streams the matching keys and deletes them `CONCURRENCY` at a time, telling `progress` the running total. */
async function deleteMatching(cache: Cache, pattern: string, flags: ClearFlags, progress: (deleted: number) => void): Promise<number> {
  let deleted = 0;
  let batch: Promise<boolean>[] = [];
  const flush = async () => {
    for (const removed of await Promise.all(batch)) if (removed) deleted++;
    batch = [];
    progress(deleted);
  };
  for await (const key of cache.keys(pattern, scope(flags))) {
    const removal = cache.delete(key, scope(flags));
    // Observed at once: a failure while the listing is awaited must not become an unhandled rejection.
    removal.catch(() => {});
    batch.push(removal);
    if (batch.length >= CONCURRENCY) await flush();
  }
  await flush();
  return deleted;
}

/** `[██████░░░░]  60%  6000/10000  12 400/s  ETA 0s`, redrawn in place at most 10 times a second. */
class ProgressBar {
  private readonly started = performance.now();
  private drawn = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly total: number,
  ) {}

  update(done: number, force = false): void {
    const now = performance.now();
    if (!force && now - this.drawn < 100) return;
    this.drawn = now;
    const share = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const width = 30;
    const filled = Math.round(share * width);
    const rate = done / Math.max(0.001, (now - this.started) / 1000);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    this.out.write(`\r[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${done}/${this.total}  ${Math.round(rate)}/s  ETA ${duration(eta)}\x1b[K`);
  }

  done(): void {
    this.out.write('\n');
  }
}
