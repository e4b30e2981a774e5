// One measurement of workload 8, in a fresh process run with --expose-gc:
// the heap a cache holding N entries adds, per entry.
import { LRUCache } from 'lru-cache';

const [distUrl, contender, nArg] = process.argv.slice(2);
const N = Number(nArg);
const ck = await import(distUrl);

function settle() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

// Keys and values are built inside the measured window and only the cache keeps them,
// so each contender is charged for everything it retains (keys included).
const make = {
  'lru-cache (refs)': () => {
    const lru = new LRUCache({ max: N });
    for (let i = 0; i < N; i++) lru.set(`user:${i}`, { id: i, name: 'Ada Lovelace', active: true });
    return lru;
  },
  'lru-cache + JSON strings': () => {
    const lru = new LRUCache({ max: N });
    for (let i = 0; i < N; i++) lru.set(`user:${i}`, JSON.stringify({ id: i, name: 'Ada Lovelace', active: true }));
    return lru;
  },
  cachekit: async () => {
    const cache = ck.createMemoryCache({ maxSize: N });
    for (let i = 0; i < N; i++) await cache.set(`user:${i}`, { id: i, name: 'Ada Lovelace', active: true });
    return cache;
  },
  'cachekit byReference': async () => {
    const cache = ck.createMemoryCache({ maxSize: N, byReference: true });
    for (let i = 0; i < N; i++) await cache.set(`user:${i}`, { id: i, name: 'Ada Lovelace', active: true });
    return cache;
  },
};

const before = settle();
const held = await make[contender]();
const after = settle();
const probe = typeof held.get === 'function' ? await held.get('user:7') : undefined;
if (probe?.id !== 7 && JSON.parse(probe ?? '{}').id !== 7) throw new Error(`${contender} lost its entries`);
process.stdout.write(JSON.stringify({ bytesPerEntry: (after - before) / N }));
