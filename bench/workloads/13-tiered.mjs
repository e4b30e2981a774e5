// Workload 13: two-tier get (hit in the memory tier) against the memory cache alone, and
// peers with a memory tier in front of Redis; then how long an invalidation takes to
// reach another tiered cache (publish to delivery), the window the staleness bound rests on.
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import KeyvRedis from '@keyv/redis';
import { Cacheable } from 'cacheable';
import { check, forAbout, interleave, median, withRatios } from '../lib.mjs';
import { smallObject, twoKb } from './values.mjs';

const KEYS = Array.from({ length: 1000 }, (_, i) => `user:${i}`);
// Longer than a whole run: every measured get is a memory-tier hit, as on a hot key.
const L1_TTL = 600;
let sink = 0;

function block(c, ms) {
  return forAbout(ms, async () => {
    for (let i = 0; i < KEYS.length; i++) {
      const r = await c.get(KEYS[i]);
      if (r !== undefined) sink++;
    }
    return KEYS.length;
  });
}

export default {
  id: 13,
  title: 'Two tiers: get (memory-tier hit) vs the memory cache, and invalidation delivery',
  async run({ ck, redis, rounds, blockMs }) {
    const server = await redis();
    const opened = [];
    const tiered = async (keyPrefix) => {
      const cache = await ck.createTieredCache({ l1: ck.createMemoryCache({ maxSize: 10_000 }), l2: await ck.createDragonflyCache({ url: server.url, keyPrefix }), l1Ttl: L1_TTL });
      opened.push(cache);
      return cache;
    };
    const tables = [];
    const checks = [];
    try {
      for (const [label, value] of [
        ['3-field object', smallObject],
        ['2 KB chat completion', twoKb],
      ]) {
        const tag = label.startsWith('3') ? 's' : 'l';
        const memory = ck.createMemoryCache({ maxSize: 10_000 });
        const two = await tiered(`bench13${tag}`);
        const bento = new BentoCache({
          default: 'tiered',
          stores: {
            tiered: bentostore()
              .useL1Layer(memoryDriver({ maxItems: 10_000 }))
              .useL2Layer(redisDriver({ connection: { host: '127.0.0.1', port: server.port }, prefix: `bench13b${tag}` }))
              .useBus(redisBusDriver({ connection: { host: '127.0.0.1', port: server.port } })),
          },
        });
        const cacheable = new Cacheable({ secondary: new KeyvRedis(server.url), namespace: `bench13c${tag}` });
        const cs = [
          { name: 'cachekit memory cache', get: (k) => memory.get(k), set: (k) => memory.set(k, value) },
          { name: 'cachekit tiered', get: (k) => two.get(k), set: (k) => two.set(k, value) },
          { name: 'bentocache (L1 + Redis + bus)', get: (k) => bento.get({ key: k }), set: (k) => bento.set({ key: k, value, ttl: `${L1_TTL}s` }), close: () => bento.disconnectAll() },
          { name: 'cacheable (memory + @keyv/redis)', get: (k) => cacheable.get(k), set: (k) => cacheable.set(k, value), close: () => cacheable.disconnect() },
        ];
        try {
          for (const c of cs) {
            for (const k of KEYS) await c.set(k);
            // The first read copies each entry into the memory tier.
            for (const k of KEYS) await c.get(k);
            const got = await c.get(KEYS[7]);
            if (JSON.stringify(got) !== JSON.stringify(value)) throw new Error(`${c.name} did not read back what it stored`);
          }
          const before = await two.stats();
          const rows = await interleave(`13 tiered get ${label}`, cs.map((c) => ({ name: c.name, run: () => block(c, blockMs) })), { rounds });
          const after = await two.stats();
          const l2Share = (after.l2Hits - before.l2Hits) / Math.max(1, after.hits - before.hits);
          tables.push({ title: `13. Get (memory-tier hit), ${label}, one caller`, unit: 'ops/s', reference: 'cachekit memory cache', rows: withRatios(rows, 'cachekit memory cache') });
          const v = (n) => rows.find((r) => r.name === n).opsPerSec;
          const ratio = v('cachekit tiered') / v('cachekit memory cache');
          const vsBento = v('cachekit tiered') / v('bentocache (L1 + Redis + bus)');
          checks.push(
            check(`tiered get hit ${label}: cachekit tiered vs the memory cache`, '>= 0.8x', `${ratio.toFixed(2)}x`, ratio >= 0.8, `${(l2Share * 100).toFixed(1)}% of the measured hits went to Redis`),
            check(`tiered get hit ${label}: cachekit tiered vs bentocache with L1 + bus`, '>= 1x', `${vsBento.toFixed(2)}x`, vsBento >= 1),
          );
        } finally {
          for (const c of cs) await c.close?.();
        }
      }

      // Delivery: A changes a key B holds a copy of; from A's call to B's subscriber hearing it.
      const a = await tiered('bench13i');
      const b = await tiered('bench13i');
      const published = [];
      const delivered = [];
      const heardAfter = async (heard) => {
        while (b.link().received === heard) await new Promise((resolve) => setImmediate(resolve));
      };
      for (let i = 0; i < 300; i++) {
        const first = b.link().received;
        await a.set('hot', i);
        await heardAfter(first);
        await b.get('hot');
        const heard = b.link().received;
        const started = performance.now();
        await a.set('hot', i + 0.5);
        published.push(performance.now() - started);
        await heardAfter(heard);
        delivered.push(performance.now() - started);
      }
      const p = (xs, q) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
      tables.push({
        title: '13. A write in one tiered cache, until another one heard its invalidation (same machine, 300 writes)',
        valueHeader: 'milliseconds',
        rows: [
          { name: 'write resolved (SET, then PUBLISH), median', display: median(published).toFixed(2) },
          { name: 'write resolved, p99', display: p(published, 0.99).toFixed(2) },
          { name: 'invalidation delivered to the other cache, median', display: median(delivered).toFixed(2) },
          { name: 'invalidation delivered, p99', display: p(delivered, 0.99).toFixed(2) },
          { name: 'invalidation delivered, max', display: Math.max(...delivered).toFixed(2) },
        ],
      });
      const worst = Math.max(...delivered);
      checks.push(check('tiered: an invalidation reaches another process well inside the 200 ms window', 'max < 200 ms', `${worst.toFixed(1)} ms`, worst < 200));
    } finally {
      for (const cache of opened) await cache.close();
    }
    if (sink < 0) console.log(sink);
    return { tables, checks };
  },
};
