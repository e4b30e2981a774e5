// One of the 4 processes of workload 6: waits for the parent's start time, then
// fires its share of the concurrent identical calls and reports its upstream calls.
import { pathToFileURL } from 'node:url';

const [distUrl, redisUrl, namespace, callsArg, startAtArg, upstreamMsArg] = process.argv.slice(2);
const ck = await import(distUrl);
const cache = await ck.createDragonflyCache({ url: redisUrl, keyPrefix: 'bench6x', commandTimeout: 2000 });
let upstream = 0;
const task = ck.memoizeTask(
  async (q) => {
    upstream++;
    await new Promise((r) => setTimeout(r, Number(upstreamMsArg)));
    return { answer: `for ${q}`, at: Date.now() };
  },
  { cache, namespace, ttl: 300, lockTtl: 10 },
);
process.send({ ready: true });
const startAt = Number(startAtArg);
await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
const results = await Promise.all(Array.from({ length: Number(callsArg) }, () => task('the same question')));
const distinct = new Set(results.map((r) => r.at)).size;
process.send({ upstream, distinct, calls: results.length });
await cache.close();
void pathToFileURL;
