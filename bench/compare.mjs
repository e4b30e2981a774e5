#!/usr/bin/env node
// The hit paths of two builds side by side, interleaved in one process, so a
// change can be judged against the build before it on the same machine at the
// same moment (on a shared machine, separate runs differ more than the change):
//   node bench/compare.mjs <dist folder of the other build> [--rounds 9]
// Compares: memory get (3-field and 2 KB), Redis get (2 KB, 64 callers), and a
// cachedOpenAI hit (memory and Redis). Builds with `npm run build` first.
import { join, resolve } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { concurrent, forAbout, interleave, sequential, startRedis } from './lib.mjs';
import { smallObject, twoKb } from './workloads/values.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const otherDist = args.find((a) => !a.startsWith('--'));
if (!otherDist) throw new Error('usage: node bench/compare.mjs <dist folder of the other build> [--rounds N]');
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 9;
const blockMs = 100;

const builds = [
  ['this build', join(here, '..', 'dist')],
  ['other build', resolve(otherDist)],
];
const loaded = [];
for (const [name, dist] of builds) {
  loaded.push({ name, ck: await import(pathToFileURL(join(dist, 'index.js')).href), openai: await import(pathToFileURL(join(dist, 'openai.js')).href) });
}

const KEYS = Array.from({ length: 1000 }, (_, i) => `k:${i}`);
const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'How do I rotate an API key without downtime?' }], temperature: 0 };
const redis = await startRedis([]);
const open = [];
try {
  const table = [];
  const run = async (label, make) => {
    const contenders = [];
    for (const build of loaded) contenders.push({ name: build.name, run: await make(build) });
    const rows = await interleave(label, contenders, { rounds });
    const [mine, other] = rows;
    table.push(`| ${label} | ${fmt(mine.opsPerSec)} | ${fmt(other.opsPerSec)} | ${(mine.opsPerSec / other.opsPerSec).toFixed(2)}x |`);
  };
  for (const [label, value] of [
    ['3-field', smallObject],
    ['2 KB', twoKb],
  ]) {
    await run(`memory get (hit), ${label}`, async ({ ck }) => {
      const cache = ck.createMemoryCache({ maxSize: 10_000 });
      for (const k of KEYS) await cache.set(k, value);
      return () => forAbout(blockMs, () => sequential(KEYS.length, (i) => cache.get(KEYS[i])));
    });
  }
  let prefix = 0;
  await run('Redis get (hit), 2 KB, 64 callers', async ({ ck }) => {
    const cache = await ck.createDragonflyCache({ url: redis.url, keyPrefix: `cmp${prefix++}` });
    open.push(cache);
    await concurrent(KEYS.length, 64, (i) => cache.set(KEYS[i], twoKb));
    return () => forAbout(blockMs * 2, () => concurrent(KEYS.length, 64, (i) => cache.get(KEYS[i])));
  });
  for (const backend of ['memory', 'Redis']) {
    await run(`cachedOpenAI hit, ${backend}`, async ({ ck, openai }) => {
      const cache = backend === 'memory' ? ck.createMemoryCache() : await ck.createDragonflyCache({ url: redis.url, keyPrefix: `cmp${prefix++}` });
      open.push(cache);
      const client = new OpenAI({
        apiKey: 'sk-bench',
        baseURL: 'http://127.0.0.1:9/v1',
        maxRetries: 0,
        fetch: async () => new Response(JSON.stringify(twoKb), { status: 200, headers: { 'content-type': 'application/json' } }),
      });
      const cached = openai.cachedOpenAI(client, { cache, ttl: 3600 });
      await cached.chat.completions.create(request);
      await new Promise((r) => setTimeout(r, 20));
      return () => forAbout(blockMs, () => sequential(backend === 'memory' ? 200 : 20, () => cached.chat.completions.create(request)));
    });
  }
  console.log(`\n| hit path (median of ${rounds} interleaved rounds) | ${builds[0][0]} ops/s | ${builds[1][0]} ops/s | ratio |\n|---|---:|---:|---:|\n${table.join('\n')}`);
} finally {
  for (const cache of open) await cache.close();
  redis.stop();
}

function fmt(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}
