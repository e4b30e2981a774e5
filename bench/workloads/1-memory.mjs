// Workload 1: in-process get (hit) and set, a 3-field object and a 2 KB chat completion.
// Each contender is called the way its users call it: lru-cache synchronously,
// every other cache with `await`.
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { createCache } from 'cache-manager';
import { Cacheable } from 'cacheable';
import Keyv from 'keyv';
import { LRUCache } from 'lru-cache';
import { check, forAbout, interleave, proposal, withRatios } from '../lib.mjs';
import { smallObject, twoKb } from './values.mjs';

const KEYS = Array.from({ length: 1000 }, (_, i) => `user:${i}`);
let sink = 0;

function contenders(ck, value) {
  const cachekit = ck.createMemoryCache({ maxSize: 10_000 });
  const cachekitRef = ck.createMemoryCache({ maxSize: 10_000, byReference: true });
  const cachekitTagged = ck.createMemoryCache({ maxSize: 10_000 });
  const lru = new LRUCache({ max: 10_000 });
  const lruJson = new LRUCache({ max: 10_000 });
  const manager = createCache();
  const keyv = new Keyv();
  const cacheable = new Cacheable();
  const bento = new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) } });
  const async = (name, get, set) => ({ name, get, set });
  return [
    async('cachekit', (k) => cachekit.get(k), (k) => cachekit.set(k, value)),
    async('cachekit byReference', (k) => cachekitRef.get(k), (k) => cachekitRef.set(k, value)),
    async('cachekit, tagged entries (2 tags)', (k) => cachekitTagged.get(k), (k) => cachekitTagged.set(k, value, { tags: [`doc:${k}`, 'corpus:v1'] })),
    { name: 'lru-cache (refs, sync)', sync: true, get: (k) => lru.get(k), set: (k) => lru.set(k, value) },
    { name: 'lru-cache + JSON (sync)', sync: true, get: (k) => JSON.parse(lruJson.get(k)), set: (k) => lruJson.set(k, JSON.stringify(value)) },
    // Not a peer: the floor any Promise-returning cache pays, raw lru-cache behind one await.
    async('lru-cache (refs) + await', async (k) => lru.get(k), async (k) => lru.set(k, value)),
    async('cache-manager', (k) => manager.get(k), (k) => manager.set(k, value)),
    async('keyv', (k) => keyv.get(k), (k) => keyv.set(k, value)),
    async('cacheable', (k) => cacheable.get(k), (k) => cacheable.set(k, value)),
    async('bentocache (memory)', (k) => bento.get({ key: k }), (k) => bento.set({ key: k, value })),
  ];
}

function block(c, op, ms) {
  const fn = c[op];
  if (c.sync) {
    return forAbout(ms, () => {
      for (let i = 0; i < KEYS.length; i++) {
        const r = fn(KEYS[i]);
        if (r !== undefined) sink++;
      }
      return KEYS.length;
    });
  }
  return forAbout(ms, async () => {
    for (let i = 0; i < KEYS.length; i++) {
      const r = await fn(KEYS[i]);
      if (r !== undefined) sink++;
    }
    return KEYS.length;
  });
}

export default {
  id: 1,
  title: 'Memory get (hit) and set',
  async run({ ck, rounds, blockMs }) {
    const tables = [];
    const checks = [];
    for (const [label, value] of [
      ['3-field object', smallObject],
      ['2 KB chat completion', twoKb],
    ]) {
      const cs = contenders(ck, value);
      for (const c of cs) for (const k of KEYS) await c.set(k);
      for (const op of ['get', 'set']) {
        const rows = await interleave(`1 memory ${op} ${label}`, cs.map((c) => ({ name: c.name, run: () => block(c, op, blockMs) })), { rounds });
        const table = { title: `1. Memory ${op}${op === 'get' ? ' (hit)' : ''}, ${label}`, unit: 'ops/s', reference: 'cachekit', rows: withRatios(rows, 'cachekit') };
        tables.push(table);
        if (op !== 'get') continue;
        const v = (n) => rows.find((r) => r.name === n).opsPerSec;
        const ratio = (a, b) => v(a) / v(b);
        const r1 = ratio('cachekit', 'bentocache (memory)');
        const r2 = ratio('cachekit', 'keyv');
        const r3 = ratio('cachekit', 'lru-cache + JSON (sync)');
        const r4 = ratio('cachekit byReference', 'lru-cache (refs, sync)');
        const r5 = ratio('cachekit byReference', 'lru-cache (refs) + await');
        const r0 = ratio('lru-cache (refs) + await', 'lru-cache (refs, sync)');
        checks.push(
          check(`memory get ${label}: cachekit vs bentocache`, '>= 2x', `${r1.toFixed(2)}x`, r1 >= 2),
          check(`memory get ${label}: cachekit vs keyv`, '>= 1.5x', `${r2.toFixed(2)}x`, r2 >= 1.5),
          check(`memory get ${label}: cachekit vs lru-cache + JSON floor`, '>= 0.7x', `${r3.toFixed(2)}x`, r3 >= 0.7),
          check(`memory get ${label}: cachekit byReference vs raw lru-cache`, '>= 0.8x', `${r4.toFixed(2)}x`, r4 >= 0.8, `an await alone: ${r0.toFixed(2)}x`),
          proposal(`memory get ${label}: cachekit byReference vs lru-cache behind one await`, '>= 0.6x', `${r5.toFixed(2)}x`, r5 >= 0.6),
        );
      }
    }
    if (sink < 0) console.log(sink);
    return { tables, checks };
  },
};
