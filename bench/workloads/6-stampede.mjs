// Workload 6: 1 000 concurrent identical misses, counting upstream calls:
// in one process (memory and Redis caches) and across 4 processes on Redis.
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, progress } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CALLS = 1000;
const PROCESSES = 4;
const UPSTREAM_MS = 100;

async function inProcess(ck, cache, label, round) {
  let upstream = 0;
  const task = ck.memoizeTask(
    async (q) => {
      upstream++;
      await new Promise((r) => setTimeout(r, UPSTREAM_MS));
      return { answer: `for ${q}` };
    },
    { cache, namespace: `bench6:${label}:${round}:${process.pid}:${Date.now()}`, ttl: 300 },
  );
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CALLS }, () => task('the same question')));
  return { upstream, ms: performance.now() - t0 };
}

async function inProcessWithCache(ck, cache, round) {
  let upstream = 0;
  const gateway = ck.withCache(
    {
      model: 'bench-model',
      async generate(prompt) {
        upstream++;
        await new Promise((r) => setTimeout(r, UPSTREAM_MS));
        return { text: `for ${prompt}` };
      },
    },
    { cache, namespace: `bench6w:${round}:${process.pid}:${Date.now()}`, ttl: 300 },
  );
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CALLS }, () => gateway.generate('the same question')));
  return { upstream, ms: performance.now() - t0 };
}

async function acrossProcesses(redisUrl, round) {
  const namespace = `bench6p:${round}:${process.pid}:${Date.now()}`;
  const distUrl = pathToFileURL(join(here, '..', '..', 'dist', 'index.js')).href;
  const startAt = Date.now() + 1500; // every child is connected and waiting by then
  const children = Array.from({ length: PROCESSES }, () =>
    fork(join(here, '6-child.mjs'), [distUrl, redisUrl, namespace, String(CALLS / PROCESSES), String(startAt), String(UPSTREAM_MS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const reports = await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve, reject) => {
          child.on('message', (m) => m.upstream !== undefined && resolve(m));
          child.on('exit', (code) => code !== 0 && reject(new Error(`child exited with ${code}`)));
        }),
    ),
  );
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))));
  return { upstream: reports.reduce((s, r) => s + r.upstream, 0), ms: Date.now() - startAt, perProcess: reports.map((r) => r.upstream) };
}

export default {
  id: 6,
  title: 'Stampede: 1 000 concurrent identical misses',
  async run({ ck, redis, quick }) {
    const server = await redis();
    const memory = ck.createMemoryCache();
    const dragonfly = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench6', commandTimeout: 2000 });
    const rounds = quick ? 2 : 5;
    const scenarios = [
      { name: 'memoizeTask, memory cache, 1 process', run: (r) => inProcess(ck, memory, 'mem', r) },
      { name: 'withCache, memory cache, 1 process', run: (r) => inProcessWithCache(ck, memory, r) },
      { name: 'memoizeTask, Redis, 1 process', run: (r) => inProcess(ck, dragonfly, 'redis', r) },
      { name: `memoizeTask, Redis, ${PROCESSES} processes x ${CALLS / PROCESSES} calls`, run: (r) => acrossProcesses(server.url, r) },
    ];
    const out = [];
    try {
      for (const s of scenarios) {
        const samples = [];
        for (let r = 0; r < rounds; r++) {
          progress(`6 stampede: ${s.name}, round ${r + 1}/${rounds}`);
          samples.push(await s.run(r));
        }
        out.push({ name: s.name, samples });
      }
    } finally {
      await dragonfly.close();
      await memory.close();
    }
    const rows = out.map((o) => ({
      name: o.name,
      display: `${o.samples.map((s) => s.upstream).join(', ')}`,
      extra: `${Math.max(...o.samples.map((s) => s.ms)).toFixed(0)} ms${o.samples[0].perProcess ? `; per process: ${o.samples.map((s) => s.perProcess.join('+')).join(' | ')}` : ''}`,
    }));
    const worst = (pred) => Math.max(...out.filter((o) => pred(o.name)).flatMap((o) => o.samples.map((s) => s.upstream)));
    const one = worst((n) => n.includes('1 process'));
    const many = worst((n) => n.includes('processes'));
    return {
      tables: [
        {
          title: `6. Stampede: ${CALLS} concurrent identical calls, upstream takes ${UPSTREAM_MS} ms (upstream calls per round)`,
          valueHeader: 'upstream calls, each round',
          extra: 'slowest round; split per process',
          rows,
        },
      ],
      checks: [
        check('stampede in one process: upstream calls', 'exactly 1', String(one), one === 1),
        check(`stampede across ${PROCESSES} processes on Redis: upstream calls`, 'exactly 1', String(many), many === 1),
      ],
    };
  },
};
