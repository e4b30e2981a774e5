// One of the 4 client processes of workload 15. It opens one cache per target
// (one Redis, the 3-master cluster), then runs whatever block the parent asks for:
// { target, op, ms } -> 64 concurrent callers doing `op` for about `ms`, reporting ops and seconds.
import { createRequire } from 'node:module';

const [distUrl, targetsJson] = process.argv.slice(2);
// The root's ioredis, the copy dist/ loads: a client of the bench's own copy fails its instanceof check.
const { Cluster } = createRequire(new URL('../../package.json', import.meta.url))('ioredis');
const ck = await import(distUrl);
const targets = JSON.parse(targetsJson);
const CALLERS = 64;
const KEYS = 1000;
const value = { id: 'bench15', text: 'x'.repeat(2000) };

const caches = {};
const clients = [];
for (const [name, { pipelined, ...options }] of Object.entries(targets)) {
  // `pipelined`: the cluster through a Cluster client of our own with auto-pipelining, which the cache's own
  // Cluster turns off (it let MOVED reach callers during a failover): what turning it off costs.
  const given = pipelined ? { client: new Cluster(options.nodes, { enableAutoPipelining: true, enableOfflineQueue: true, retryDelayOnFailover: 0, retryDelayOnClusterDown: 0 }) } : options;
  caches[name] = await ck.createDragonflyCache({ ...given, keyPrefix: 'bench15', commandTimeout: 2000 });
  if (pipelined) clients.push(given.client);
}

process.on('message', async ({ target, op, ms }) => {
  if (op === 'close') {
    for (const cache of Object.values(caches)) await cache.close();
    for (const client of clients) client.disconnect();
    process.exit(0);
  }
  const cache = caches[target];
  let ops = 0;
  let failed = 0;
  const t0 = performance.now();
  const until = t0 + ms;
  const worker = async (w) => {
    for (let i = w; performance.now() < until; i += CALLERS) {
      const key = `doc:${i % KEYS}`;
      try {
        if (op === 'get') await cache.get(key);
        else await cache.set(key, value);
      } catch {
        failed++;
      }
      ops++;
    }
  };
  await Promise.all(Array.from({ length: CALLERS }, (_, w) => worker(w)));
  process.send({ ops, failed, seconds: (performance.now() - t0) / 1000 });
});
process.send({ ready: true });
