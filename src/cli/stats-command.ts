import type { CacheStats } from '../core/types.js';
import { connect, scope, type ConnectionFlags } from './connect.js';
import { bytes, EXIT, Failure, oneLine, writeLine, type Io } from './io.js';

export const STATS_HELP = `cachekit stats [--watch] [--exact] [--json]

The cache's counters and size (bounded in time on any keyspace: size is an
estimate with its 99% margin unless --exact walks every key).
  --watch   a live view, refreshed every second, until Ctrl-C
  --exact   count size and memory exactly (SCAN of the whole keyspace)
  --json    one JSON object (with --watch: one per line, each second)`;

export interface StatsFlags extends ConnectionFlags {
  watch?: boolean | undefined;
  exact?: boolean | undefined;
  json?: boolean | undefined;
}

export async function statsCommand(flags: StatsFlags, io: Io): Promise<number> {
  const cache = await connect(flags, io);
  try {
    const read = async () => {
      try {
        return await cache.stats({ ...scope(flags), exact: flags.exact === true });
      } catch (error) {
        throw new Failure(oneLine(error));
      }
    };
    if (flags.watch !== true) {
      const stats = await read();
      await writeLine(io, flags.json === true ? JSON.stringify(stats) : render(stats, flags));
      return EXIT.ok;
    }
    // Until SIGINT: the live view ends cleanly, with the cursor restored.
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const clear = io.out.isTTY && flags.json !== true ? '\x1b[H\x1b[2J' : '';
    while (!stopped) {
      const stats = await read();
      const text = flags.json === true ? JSON.stringify({ at: new Date().toISOString(), ...stats }) : `${render(stats, flags)}\n\nrefreshed ${new Date().toLocaleTimeString()} · Ctrl-C to stop`;
      await writeLine(io, `${clear}${text}`);
      for (let waited = 0; waited < 1000 && !stopped; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    return EXIT.ok;
  } finally {
    await cache.close();
  }
}

function render(s: CacheStats, flags: StatsFlags): string {
  const size = s.sizeMethod === 'counted' ? `${s.size}` : `~${s.size} ± ${s.sizeMargin} (estimated; --exact to count)`;
  const rows: [string, string][] = [
    ['scope', `${flags.prefix ?? 'cachekit'}${flags.tenant === undefined ? '' : `, tenant ${flags.tenant}`}`],
    ['entries', size],
    ['memory', bytes(s.memoryMb * 1024 * 1024)],
    ['hits / misses', `${s.hits} / ${s.misses} (hit rate ${(s.hitRate * 100).toFixed(1)}%, this process)`],
    ['sets / deletes', `${s.sets} / ${s.deletes}`],
    ['evictions', String(s.evictions)],
    ['expirations', String(s.expirations)],
    ['errors', String(s.errors)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(15)} ${v}`).join('\n');
}
