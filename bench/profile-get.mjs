#!/usr/bin/env node
// Per-get cost of cachekit's Redis get against raw ioredis + JSON.parse, for profilers:
//   node bench/profile-get.mjs <cachekit|raw|keyv> <gets> <port> [get|set]
// does 2 000 warm-up operations then <gets> more, 64 concurrent callers, 2 KB values, against the
// redis-server on <port>. Under `valgrind --tool=callgrind`, (instructions at N - at 0) / N is the
// cost of one operation in this process, steady under load (the server is another process).
import { Redis } from 'ioredis';
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { twoKb } from './workloads/values.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [mode = 'cachekit', n = '20000', port = '6379', op = 'get'] = process.argv.slice(2);
const url = `redis://127.0.0.1:${port}`;
const KEYS = Array.from({ length: 1000 }, (_, i) => `doc:${i}`);

let contender;
let close;
if (mode === 'cachekit') {
  const ck = await import(pathToFileURL(join(here, '..', 'dist', 'index.js')).href);
  const cache = await ck.createDragonflyCache({ url, keyPrefix: 'prof', commandTimeout: 60_000, connectTimeout: 60_000 }) // valgrind runs ~50x slower;
  contender = { get: (k) => cache.get(k), set: (k) => cache.set(k, twoKb) };
  close = () => cache.close();
} else if (mode === 'raw') {
  const client = new Redis({ port: Number(port), enableAutoPipelining: true });
  contender = { get: async (k) => JSON.parse(await client.get('profraw:' + k)), set: (k) => client.set('profraw:' + k, JSON.stringify(twoKb)) };
  close = () => client.disconnect();
} else if (mode === 'keyv') {
  const { default: Keyv } = await import('keyv');
  const { default: KeyvRedis } = await import('@keyv/redis');
  const keyv = new Keyv(new KeyvRedis(url), { namespace: 'profkv' });
  contender = { get: (k) => keyv.get(k), set: (k) => keyv.set(k, twoKb) };
  close = () => keyv.disconnect();
} else throw new Error(`unknown mode ${mode}`);

async function concurrent(total, callers, body) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < total; i = next++) await body(i);
  };
  await Promise.all(Array.from({ length: callers }, worker));
}

await concurrent(KEYS.length, 64, (i) => contender.set(KEYS[i]));
if ((await contender.get(KEYS[7]))?.id !== twoKb.id) throw new Error(`${mode} did not read back what it stored`);
await concurrent(2000, 64, (i) => contender[op](KEYS[i % KEYS.length]));
const t0 = performance.now();
await concurrent(Number(n), 64, (i) => contender[op](KEYS[i % KEYS.length]));
const ms = performance.now() - t0;
if (Number(n) > 0) process.stderr.write(`${mode} ${op}: ${n} in ${ms.toFixed(0)} ms, ${((ms * 1000) / Number(n)).toFixed(2)} µs each\n`);
await close();
