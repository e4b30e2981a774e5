// Workload 15: the figures docs/SCALING.md is built on.
// (a) 4 client processes x 64 callers against one Redis vs a 3-master Redis Cluster (get hit / set, 2 KB values);
// (b) bytes per entry on the server (INFO used_memory) for typical LLM entries;
// (c) what cross-process single-flight costs per miss: a lock SET NX PX, then a PUBLISH, and how long
//     the PUBLISH takes to reach a subscriber, on one Redis vs the cluster (subscriber on another master);
// (d) invalidation fan-out: one PUBLISH to 1, 10, 100 subscribers.
import { execFileSync, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { check, cli, interleave, median, progress, sleep, startRedis, withRatios } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PROCESSES = 4;

/** Three cluster-enabled redis-servers joined as masters (bus ports are port + 10000, so ports stay below 55535). */
async function startCluster() {
  const servers = [];
  while (servers.length < 3) {
    const server = await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']);
    if (server.port < 55_535) servers.push(server);
    else server.stop();
  }
  execFileSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  for (const s of servers) while (!cli(s.port, ['cluster', 'info']).includes('cluster_state:ok')) await sleep(100);
  return { servers, nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })), stop: () => servers.forEach((s) => s.stop()) };
}

/** A typical cached chat completion: ~1 000 characters of answer (about 250 tokens), as the OpenAI API returns it. */
function chatCompletion(i) {
  return {
    id: `chatcmpl-${i}`,
    object: 'chat.completion',
    created: 1_764_000_000 + i,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: `Answer ${i}: `.padEnd(1000, 'lorem ipsum dolor sit amet '), refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 180, completion_tokens: 250, total_tokens: 430 },
    system_fingerprint: 'fp_0123456789',
  };
}

/** One embedding item as cachedOpenAI stores it: the vector once, as float32. */
function embedding(i) {
  const vector = new Float32Array(1536);
  for (let d = 0; d < vector.length; d++) vector[d] = Math.sin(i + d);
  return { vector, source: 'base64' };
}

async function bytesPerEntry(ck) {
  const server = await startRedis();
  const cache = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench15m' });
  const probe = new Redis({ port: server.port });
  const used = async () => Number(/used_memory:(\d+)/.exec(await probe.info('memory'))[1]);
  const rows = [];
  try {
    for (const [name, n, make] of [
      ['chat completion, ~1 000-char answer', 20_000, chatCompletion],
      ['embedding item, 1 536 dimensions', 5_000, embedding],
      ['short answer (withCache, ~100 chars)', 20_000, (i) => ({ text: `Short answer number ${i}.`.padEnd(100, '.') })],
    ]) {
      progress(`15 cluster: bytes per entry, ${name}`);
      const before = await used();
      for (let i = 0; i < n; i += 500) {
        await cache.setMany(new Map(Array.from({ length: 500 }, (_, j) => [`v1:bench:${name.length}:${i + j}:${'0'.repeat(40)}`, make(i + j)])), { ttl: 3600 });
      }
      const bytes = ((await used()) - before) / n;
      rows.push({ name, value: Math.round(bytes), display: `${Math.round(bytes)} B`, extra: `${(1e9 / bytes / 1e6).toFixed(1)} M entries per GB` });
    }
  } finally {
    probe.disconnect();
    await cache.close();
    server.stop();
  }
  return rows;
}

async function singleFlightCost(single, nodes, n) {
  const rows = [];
  for (const [name, make] of [
    ['one Redis', () => new Redis({ port: single.port })],
    ['3-master cluster', () => new Cluster(nodes)],
  ]) {
    progress(`15 cluster: single-flight round trips, ${name}`);
    const client = make();
    // A waiter on another master than the one the lock's key lives on (on one Redis: the same server).
    const subscriber = name === 'one Redis' ? new Redis({ port: single.port }) : new Redis({ port: nodes[2].port });
    const lockRtt = [];
    const publishRtt = [];
    const heard = [];
    let resolveHeard;
    subscriber.on('message', () => resolveHeard?.(performance.now()));
    await subscriber.subscribe('bench15:done');
    for (let i = 0; i < n; i++) {
      const key = `bench15:lock:${i}`;
      const t0 = performance.now();
      await client.set(key, 'token', 'PX', 30_000, 'NX');
      const t1 = performance.now();
      const arrived = new Promise((resolve) => (resolveHeard = resolve));
      await client.publish('bench15:done', key);
      const t2 = performance.now();
      const at = await arrived;
      lockRtt.push(t1 - t0);
      publishRtt.push(t2 - t1);
      heard.push(at - t1);
    }
    await subscriber.quit();
    client.disconnect();
    const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];
    rows.push({
      name,
      display: `${median(lockRtt).toFixed(3)} ms`,
      extra: `PUBLISH round trip ${median(publishRtt).toFixed(3)} ms; PUBLISH to a subscriber ${median(heard).toFixed(3)} ms median, ${p99(heard).toFixed(3)} ms p99`,
      lock: median(lockRtt),
      heard: median(heard),
    });
  }
  return rows;
}

/**
 * Invalidation fan-out: one PUBLISH of a key to `n` subscribers (stand-ins for `n` processes'
 * memory tiers), sequentially; the PUBLISH round trip, and until the last subscriber has it.
 * On the cluster the subscribers are spread over the masters (a PUBLISH crosses the cluster bus).
 */
async function fanOut(single, nodes, counts, iterations) {
  const rows = [];
  for (const [name, publisherOf, portOf] of [
    ['one Redis', () => new Redis({ port: single.port }), () => single.port],
    ['3-master cluster', () => new Cluster(nodes), (i) => nodes[i % nodes.length].port],
  ]) {
    for (const n of counts) {
      progress(`15 cluster: invalidation fan-out, ${name}, ${n} subscribers`);
      const publisher = publisherOf();
      const subscribers = Array.from({ length: n }, (_, i) => new Redis({ port: portOf(i) }));
      let pending = 0;
      let allHeard;
      for (const sub of subscribers) sub.on('message', () => --pending === 0 && allHeard(performance.now()));
      await Promise.all(subscribers.map((sub) => sub.subscribe('bench15:invalidate')));
      const rtt = [];
      const last = [];
      for (let i = 0; i < iterations; i++) {
        pending = n;
        const heard = new Promise((resolve) => (allHeard = resolve));
        const t0 = performance.now();
        await publisher.publish('bench15:invalidate', `bench15:g:v1:ns:${i}`);
        rtt.push(performance.now() - t0);
        last.push((await heard) - t0);
      }
      for (const sub of subscribers) sub.disconnect();
      publisher.disconnect();
      rows.push({ name: `${name}, ${n} subscriber${n === 1 ? '' : 's'}`, display: `${median(rtt).toFixed(3)} ms`, extra: `${median(last).toFixed(3)} ms until the last has it` });
    }
  }
  return rows;
}

export default {
  id: 15,
  title: 'Redis Cluster: 4 client processes on 3 masters vs one Redis; bytes per entry; single-flight round trips; invalidation fan-out',
  async run({ ck, redis, rounds, quick }) {
    const single = await redis();
    const cluster = await startCluster();
    const targets = {
      'one Redis': { url: single.url },
      '3-master cluster': { nodes: cluster.nodes },
      '3-master cluster, own client with auto-pipelining': { nodes: cluster.nodes, pipelined: true },
    };
    const distUrl = pathToFileURL(join(here, '..', '..', 'dist', 'index.js')).href;
    const children = [];
    try {
      for (const { pipelined, ...options } of Object.values(targets)) {
        if (pipelined) continue;
        const cache = await ck.createDragonflyCache({ ...options, keyPrefix: 'bench15' });
        await cache.setMany(new Map(Array.from({ length: 1000 }, (_, i) => [`doc:${i}`, { id: 'bench15', text: 'x'.repeat(2000) }])));
        await cache.close();
      }
      for (let p = 0; p < PROCESSES; p++) {
        const child = fork(join(here, '15-child.mjs'), [distUrl, JSON.stringify(targets)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        await new Promise((resolve) => child.once('message', resolve));
        children.push(child);
      }
      const ms = quick ? 300 : 1000;
      const block = async (target, op) => {
        const reports = await Promise.all(
          children.map((child) => {
            const reply = new Promise((resolve) => child.once('message', resolve));
            child.send({ target, op, ms });
            return reply;
          }),
        );
        if (reports.some((r) => r.failed > 0)) throw new Error(`${target} ${op}: ${reports.reduce((s, r) => s + r.failed, 0)} operations failed`);
        return reports.reduce((s, r) => s + r.ops, 0);
      };
      const tables = [];
      const results = {};
      for (const op of ['get', 'set']) {
        const rows = await interleave(
          `15 cluster ${op}`,
          Object.keys(targets).map((name) => ({ name, run: () => block(name, op) })),
          { rounds: Math.min(rounds, quick ? 3 : 5) },
        );
        results[op] = rows;
        tables.push({
          title: `15. ${op === 'get' ? 'get (hit)' : 'set'}, 2 KB values, ${PROCESSES} client processes x 64 callers (ops/s, all processes together)`,
          reference: 'one Redis',
          rows: withRatios(rows, 'one Redis'),
        });
      }
      const memory = await bytesPerEntry(ck);
      tables.push({ title: '15. Server memory per entry (INFO used_memory delta / entries, ttl set, keys of request-key length)', valueHeader: 'bytes per entry', extra: 'entries per GB of used_memory', rows: memory });
      const flight = await singleFlightCost(single, cluster.nodes, quick ? 300 : 2000);
      tables.push({ title: '15. Single-flight round trips per miss: lock SET NX PX, then PUBLISH (sequential, median)', valueHeader: 'SET NX PX round trip', extra: 'PUBLISH', rows: flight });
      const fan = await fanOut(single, cluster.nodes, [1, 10, 100], quick ? 100 : 500);
      tables.push({ title: '15. Invalidation fan-out: one PUBLISH carrying a key, to n subscribers (sequential, median)', valueHeader: 'PUBLISH round trip', extra: 'until the last subscriber has it', rows: fan });
      const ratio = (op) => results[op].find((r) => r.name === '3-master cluster').opsPerSec / results[op].find((r) => r.name === 'one Redis').opsPerSec;
      return {
        tables,
        checks: [
          // On one 2-core machine the cluster's three servers and the four clients share the same cores: a floor, not a scaling target.
          check('cluster get with 4 client processes vs one Redis', '>= 0.5x (same cores, more servers)', `${ratio('get').toFixed(2)}x`, ratio('get') >= 0.5),
          check('cluster set with 4 client processes vs one Redis', '>= 0.5x (same cores, more servers)', `${ratio('set').toFixed(2)}x`, ratio('set') >= 0.5),
        ],
      };
    } finally {
      for (const child of children) child.send({ op: 'close' });
      await Promise.all(children.map((child) => (child.exitCode !== null ? null : new Promise((resolve) => child.once('exit', resolve)))));
      cluster.stop();
    }
  },
};
