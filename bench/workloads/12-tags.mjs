// Workload 12: tag invalidation, the two designs measured on one Redis.
// - cachekit's: client-side invalidation times (one record per tag, a tagged hit
//   reads its tags' records: one more round trip; an invalidation writes one record).
// - server-side sets, built here on raw ioredis as a library would: a tagged write
//   also SADDs the key to each tag's set; a hit is one GET; an invalidation reads
//   the set and unlinks its members, so its cost grows with the entries tagged.
import { Redis } from 'ioredis';
import { check, concurrent, forAbout, interleave, withRatios } from '../lib.mjs';
import { twoKb } from './values.mjs';

const CALLERS = 64;
const KEYS = Array.from({ length: 1000 }, (_, i) => `doc:${i}`);

export default {
  id: 12,
  title: 'Tags: client-side invalidation times (cachekit) vs server-side sets',
  async run({ ck, redis, rounds, blockMs, quick }) {
    const server = await redis();
    const plain = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench9p' });
    const tagged = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench9t' });
    const raw = new Redis({ port: server.port, enableAutoPipelining: true });
    const value = JSON.stringify(twoKb);
    const tagsOf = (k) => [`src:${k}`, 'corpus'];
    const sets = {
      set: async (k) => {
        await Promise.all([raw.set(`bench9s:${k}`, value), ...tagsOf(k).map((tag) => raw.sadd(`bench9s:tag:${tag}`, `bench9s:${k}`))]);
      },
      get: async (k) => JSON.parse(await raw.get(`bench9s:${k}`)),
      invalidate: async (tag) => {
        const members = await raw.smembers(`bench9s:tag:${tag}`);
        for (let i = 0; i < members.length; i += 1000) await raw.unlink(...members.slice(i, i + 1000));
        await raw.unlink(`bench9s:tag:${tag}`);
      },
    };
    try {
      await concurrent(KEYS.length, CALLERS, (i) => plain.set(KEYS[i], twoKb));
      await concurrent(KEYS.length, CALLERS, (i) => tagged.set(KEYS[i], twoKb, { tags: tagsOf(KEYS[i]) }));
      await concurrent(KEYS.length, CALLERS, (i) => sets.set(KEYS[i]));
      const tables = [];
      const hits = await interleave(
        '9 tagged hit',
        [
          { name: 'untagged hit (cachekit)', run: () => forAbout(blockMs * 2, () => concurrent(KEYS.length, CALLERS, (i) => plain.get(KEYS[i]))) },
          { name: 'tagged hit, invalidation times (cachekit)', run: () => forAbout(blockMs * 2, () => concurrent(KEYS.length, CALLERS, (i) => tagged.get(KEYS[i]))) },
          { name: 'tagged hit, server-side sets (raw ioredis)', run: () => forAbout(blockMs * 2, () => concurrent(KEYS.length, CALLERS, (i) => sets.get(KEYS[i]))) },
        ],
        { rounds },
      );
      tables.push({ title: `12. Tagged hit, 2 KB, ${CALLERS} callers, 2 tags per entry`, reference: 'untagged hit (cachekit)', rows: withRatios(hits, 'untagged hit (cachekit)') });
      // One invalidation of a tag carried by `n` entries, each design's own way.
      const sizes = quick ? [1, 1000, 10_000] : [1, 1000, 10_000, 100_000];
      const rows = [];
      for (const n of sizes) {
        const tag = `shared:${n}`;
        await concurrent(n, CALLERS, (i) => tagged.set(`s${n}:${i}`, 1, { tags: [tag] }));
        await concurrent(n, CALLERS, (i) => raw.set(`bench9s:s${n}:${i}`, '1').then(() => raw.sadd(`bench9s:tag:${tag}`, `bench9s:s${n}:${i}`)));
        let t0 = performance.now();
        await tagged.invalidateTags([tag]);
        const times = performance.now() - t0;
        const setBytes = await raw.memory('USAGE', `bench9s:tag:${tag}`);
        t0 = performance.now();
        await sets.invalidate(tag);
        const setsMs = performance.now() - t0;
        const recordBytes = await raw.memory('USAGE', `bench9t:x:g:${tag}`);
        rows.push({ name: `${n} entries`, value: `${times.toFixed(2)} ms / ${setsMs.toFixed(2)} ms`, extra: `${recordBytes} B / ${setBytes} B` });
      }
      tables.push({
        title: '12. One invalidation of a tag carried by n entries: invalidation times / server-side sets',
        valueHeader: 'invalidation latency',
        extra: 'tag bookkeeping on the server (record / set)',
        rows,
      });
      const v = (name) => hits.find((r) => r.name === name).opsPerSec;
      const ratio = v('tagged hit, invalidation times (cachekit)') / v('untagged hit (cachekit)');
      return {
        tables,
        checks: [check('tagged hit vs an untagged one (invalidation times)', '>= 0.5x (at most one more round trip)', `${ratio.toFixed(2)}x`, ratio >= 0.5)],
      };
    } finally {
      await plain.close();
      await tagged.close();
      raw.disconnect();
    }
  },
};
