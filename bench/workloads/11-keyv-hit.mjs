// Workload 11: a Keyv hit through cachekit/keyv. `keyv.get` of a stored entry
// with KeyvCachekit over a cachekit memory cache, against the same Keyv over
// its own Map store, same process, one caller at a time.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Keyv from 'keyv';
import { check, forAbout, interleave, sequential, withRatios } from '../lib.mjs';
import { smallObject, twoKb } from './values.mjs';

const here = dirname(fileURLToPath(import.meta.url));

export default {
  id: 11,
  title: 'Keyv hit path: KeyvCachekit over a memory cache vs Keyv over its own Map',
  async run({ ck, rounds, blockMs }) {
    const { KeyvCachekit } = await import(pathToFileURL(join(here, '..', '..', 'dist', 'keyv.js')).href);
    const tables = [];
    const checks = [];
    const cache = ck.createMemoryCache();
    try {
      for (const [label, value] of [
        ['3-field record', smallObject],
        ['2 KB chat completion', twoKb],
      ]) {
        const overCachekit = new Keyv({ store: new KeyvCachekit(cache) });
        const overMap = new Keyv();
        // Not a contender: the least any Keyv store over cachekit's memory get can do, one `get` and nothing else.
        const entryKey = 'keyv:keyv:user:48213';
        const bare = { get: () => cache.get(entryKey), set: async () => true, delete: async () => true, clear: async () => {}, on() {} };
        const overBare = new Keyv({ store: bare });
        await overCachekit.set('user:48213', value);
        await overMap.set('user:48213', value);
        for (const keyv of [overCachekit, overMap, overBare]) {
          if (JSON.stringify(await keyv.get('user:48213')) !== JSON.stringify(value)) throw new Error('a Keyv did not answer its stored value');
        }
        const chunk = 500;
        const rows = await interleave(
          `11 keyv hit ${label}`,
          [
            { name: 'Keyv over its own Map store', run: () => forAbout(blockMs, () => sequential(chunk, () => overMap.get('user:48213'))) },
            { name: 'Keyv over KeyvCachekit (memory cache)', run: () => forAbout(blockMs, () => sequential(chunk, () => overCachekit.get('user:48213'))) },
            { name: 'floor: Keyv over a bare store calling the core get', run: () => forAbout(blockMs, () => sequential(chunk, () => overBare.get('user:48213'))) },
          ],
          { rounds },
        );
        const [map, cachekit, floor] = rows;
        const ratio = map.opsPerSec / cachekit.opsPerSec;
        tables.push({
          title: `11. Keyv hit, ${label}`,
          unit: 'µs per get',
          reference: 'Keyv over its own Map store',
          rows: withRatios(rows, 'Keyv over its own Map store').map((r) => ({ ...r, display: (1e6 / r.opsPerSec).toFixed(2), ratio: map.opsPerSec / r.opsPerSec })),
        });
        const floorRatio = map.opsPerSec / floor.opsPerSec;
        checks.push(check(`Keyv hit through KeyvCachekit (${label}) vs Keyv over its Map`, '<= 1.1x the time', `${ratio.toFixed(2)}x`, ratio <= 1.1, `bare store over the core get: ${floorRatio.toFixed(2)}x`));
      }
    } finally {
      await cache.close();
    }
    return { tables, checks };
  },
};
