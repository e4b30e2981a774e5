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
        await overCachekit.set('user:48213', value);
        await overMap.set('user:48213', value);
        for (const keyv of [overCachekit, overMap]) {
          if (JSON.stringify(await keyv.get('user:48213')) !== JSON.stringify(value)) throw new Error('a Keyv did not answer its stored value');
        }
        const chunk = 500;
        const rows = await interleave(
          `11 keyv hit ${label}`,
          [
            { name: 'Keyv over its own Map store', run: () => forAbout(blockMs, () => sequential(chunk, () => overMap.get('user:48213'))) },
            { name: 'Keyv over KeyvCachekit (memory cache)', run: () => forAbout(blockMs, () => sequential(chunk, () => overCachekit.get('user:48213'))) },
          ],
          { rounds },
        );
        const [map, cachekit] = rows;
        const ratio = map.opsPerSec / cachekit.opsPerSec;
        tables.push({
          title: `11. Keyv hit, ${label}`,
          unit: 'µs per get',
          reference: 'Keyv over its own Map store',
          rows: withRatios(rows, 'Keyv over its own Map store').map((r) => ({ ...r, display: (1e6 / r.opsPerSec).toFixed(2), ratio: map.opsPerSec / r.opsPerSec })),
        });
        checks.push(check(`Keyv hit through KeyvCachekit (${label}) vs Keyv over its Map`, '<= 1.1x the time', `${ratio.toFixed(2)}x`, ratio <= 1.1));
      }
    } finally {
      await cache.close();
    }
    return { tables, checks };
  },
};
