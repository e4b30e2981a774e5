// Workload 3: batch get and set of 1 000 keys on Redis: time per batch, and
// the commands the server received (INFO commandstats deltas on our private
// server; MONITOR separates the commands a Lua script runs from those sent).
import { Redis } from 'ioredis';
import { check, commandStats, forAbout, interleave, sequential, sleep, statsDelta, withRatios } from '../lib.mjs';
import { twoKb } from './values.mjs';

const N = 1000;
const KEYS = Array.from({ length: N }, (_, i) => `item:${i}`);

export default {
  id: 3,
  title: 'Redis batch get and set of 1 000 keys',
  async run({ ck, redis, rounds, blockMs }) {
    const server = await redis();
    const cache = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench3' });
    const admin = new Redis({ port: server.port });
    const entries = new Map(KEYS.map((k, i) => [k, { ...twoKb, id: `chatcmpl-${i}` }]));
    const cs = [
      { name: 'cachekit getMany (1 000 keys)', run: async () => (await cache.getMany(KEYS)).size },
      { name: '1 000 awaited cachekit.get', run: () => sequential(N, (i) => cache.get(KEYS[i])) },
      { name: 'cachekit setMany (1 000, no TTL)', run: () => cache.setMany(entries) },
      { name: 'cachekit setMany (1 000, ttl 60 s)', run: () => cache.setMany(entries, { ttl: 60 }) },
      { name: '1 000 awaited cachekit.set', run: () => sequential(N, (i) => cache.set(KEYS[i], entries.get(KEYS[i]))) },
    ];
    try {
      await cache.setMany(entries, { ttl: 60 }); // also loads the script once, outside the counts
      if ((await cache.getMany(KEYS)).size !== N) throw new Error('getMany did not find the 1 000 keys it stored');

      // Commands per single batch, counted on the server.
      const counted = {};
      const monitor = await admin.monitor();
      let sent = 0;
      let scripted = 0;
      monitor.on('monitor', (_time, args, source) => {
        if (String(args[0]).toLowerCase() === 'info') return;
        if (source === 'lua') scripted++;
        else sent++;
      });
      for (const c of cs) {
        await sleep(50);
        sent = scripted = 0;
        const before = await commandStats(admin);
        await c.run();
        const after = await commandStats(admin);
        await sleep(100); // MONITOR lines trail the replies
        counted[c.name] = { commandstats: statsDelta(before, after), sent, scripted };
      }
      monitor.disconnect();

      const rows = await interleave(`3 batch`, cs.map((c) => ({ name: c.name, run: () => forAbout(blockMs * 2, async () => (await c.run(), 1)) })), { rounds });
      const table = {
        title: '3. Batch of 1 000 keys (2 KB values): time per batch and commands per batch',
        unit: 'ms per batch',
        reference: 'cachekit getMany (1 000 keys)',
        extra: 'commands sent (INFO commandstats delta)',
        rows: withRatios(
          rows.map((r) => {
            const n = counted[r.name];
            const stats = Object.entries(n.commandstats).map(([k, v]) => `${k} ${v}`).join(', ');
            return { ...r, display: (1000 / r.opsPerSec).toFixed(2), extra: `${n.sent} (${stats}${n.scripted ? `; ${n.scripted} run inside the script` : ''})` };
          }),
          'cachekit getMany (1 000 keys)',
        ).map((r) => ({ ...r, ratio: 1 / r.ratio })),
      };
      const v = (name) => rows.find((r) => r.name === name).opsPerSec;
      const speedup = v('cachekit getMany (1 000 keys)') / v('1 000 awaited cachekit.get');
      const setSpeedup = v('cachekit setMany (1 000, no TTL)') / v('1 000 awaited cachekit.set');
      const getCmds = counted['cachekit getMany (1 000 keys)'].sent;
      const setCmds = Math.max(counted['cachekit setMany (1 000, no TTL)'].sent, counted['cachekit setMany (1 000, ttl 60 s)'].sent);
      return {
        tables: [table],
        checks: [
          check('batch get of 1 000: commands sent', '<= 2', String(getCmds), getCmds <= 2),
          check('batch set of 1 000: commands sent (with and without TTL)', '<= 2', String(setCmds), setCmds <= 2),
          check('batch get of 1 000 vs 1 000 awaited gets', '>= 10x faster', `${speedup.toFixed(1)}x`, speedup >= 10, `setMany vs awaited sets: ${setSpeedup.toFixed(1)}x`),
        ],
        counted,
      };
    } finally {
      await cache.close();
      admin.disconnect();
    }
  },
};
