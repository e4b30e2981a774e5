import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { OpenAI } from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cachedOpenAI } from '../../integrations/openai/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { withCache } from '../../src/llm/with-cache.js';
import { callers } from '../helpers/caller-load.js';
import { figures, MixedLoad } from '../helpers/mixed-load.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { startRedisCluster, type ClusterNode, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import { describeWith } from '../helpers/skips.js';

const COMMAND_TIMEOUT = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report: string[] = [];

let cluster: RedisClusterHandle;
let wire: WireServer;
beforeAll(async () => {
  [cluster, wire] = await Promise.all([startRedisCluster({ replicas: 1 }), startOpenAIWireServer()]);
}, 60_000);
afterAll(async () => {
  cluster?.stop();
  await wire?.close();
  if (report.length > 0) console.log(`[cluster failover]\n${report.join('\n')}`);
});

const seeds = () => cluster.ports.map((port) => ({ host: '127.0.0.1', port }));

/** An ioredis Cluster built with the settings README asks of a cluster you pass as `client`. */
function ownCluster(): Cluster {
  return new Cluster(seeds(), {
    enableOfflineQueue: false,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    enableAutoPipelining: false,
    redisOptions: { maxRetriesPerRequest: 0 },
  });
}

/**
 * When the cache next wrote and read back a key of the killed master's slots
 * (through the same cache object), polled every 50 ms for 5 s.
 */
async function servedAgain(cache: Cache, victim: ClusterNode, prefix: string): Promise<number | undefined> {
  const probe = keyOn(victim, 'probe', (key) => `${prefix}:g:${key}`);
  for (let i = 0; i < 100; i++) {
    const ok = await cache
      .set(probe, i)
      .then(async () => (await cache.get(probe)) === i)
      .catch(() => false);
    if (ok) return performance.now();
    await sleep(50);
  }
  return undefined;
}

/** A master that a replica can take over from: each test kills one. */
async function masterWithReplica(): Promise<ClusterNode> {
  const nodes = await cluster.nodes();
  const master = nodes.find((n) => n.role === 'master' && nodes.some((r) => r.masterPort === n.port));
  if (master === undefined) throw new Error('no master with a replica is left');
  return master;
}

/** A key of `prefix` whose slot `node` serves. */
function keyOn(node: ClusterNode, prefix: string, raw: (key: string) => string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}${i}`;
    const slot = calculateSlot(raw(key));
    if (node.slots.some(([first, last]) => slot >= first && slot <= last)) return key;
  }
}

describeWith('redis-server')('a Redis Cluster failover (3 masters + 3 replicas, a master SIGKILLed under load)', () => {
  it('no call waits past commandTimeout, the wrappers keep answering, and the same cache serves the killed master’s slots once its replica is promoted', async () => {
    const cache = await createDragonflyCache({ nodes: seeds(), commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'failover' });
    try {
      const victim = await masterWithReplica();
      const core = new MixedLoad(cache, 6);
      const gateway = withCache({ model: 'm', generate: async (q: string) => `answer to ${q}` }, { cache, ttl: 60 });
      const openai = cachedOpenAI(new OpenAI({ baseURL: wire.url, apiKey: 'test', maxRetries: 0 }), { cache, ttl: 60 });
      const question = () => `q${Math.floor(Math.random() * 50)}`;
      const load = callers({
        withCache: async () => {
          const q = question();
          return (await gateway.generate(q)) === `answer to ${q}`;
        },
        cachedOpenAI: async () => {
          const answer = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: question() }] });
          return typeof answer.choices[0]?.message.content === 'string';
        },
        getOrSet: async () => {
          const k = question();
          return (await cache.getOrSet(`gos:${k}`, () => `v:${k}`, { ttl: 60 }).catch(() => `v:${k}`)) === `v:${k}`;
        },
      });
      // A key on a master that survives: with Redis's default cluster-require-full-coverage yes,
      // it is refused too (CLUSTERDOWN) while the killed master's slots have no master.
      const survivor = (await cluster.nodes()).find((n) => n.role === 'master' && n.port !== victim.port) as ClusterNode;
      const kept = keyOn(survivor, 'kept', (key) => `failover:g:${key}`);
      await cache.set(kept, 'kept');
      core.start();
      await sleep(400);
      core.phase = 'fault';
      const killedAt = performance.now();
      await cluster.kill(victim.port);
      let promotedAt = 0;
      const failover = cluster.failedOver(victim.port).then((port) => ((promotedAt = performance.now()), port));
      let keptRefusedMs = 0;
      while (promotedAt === 0) {
        const t = performance.now();
        const ok = (await cache.get(kept).catch(() => undefined)) === 'kept';
        await sleep(10);
        if (!ok) keptRefusedMs += performance.now() - t;
      }
      const promoted = await failover;
      core.phase = 'recovering';
      const servedAt = await servedAgain(cache, victim, 'failover');
      await sleep(500);
      await Promise.all([core.stop(), load.stop()]);
      const f = figures(core.samples);
      // The client learns the new master from the first MOVED a live node sends; the promotion is seen
      // here by polling, so allow it 100 ms (no run needed them).
      const failedAfter = core.samples.filter((s) => !s.ok && s.start > promotedAt + 100).length;
      const failedJustAfter = core.samples.filter((s) => !s.ok && s.start > promotedAt).length;
      // MOVED replies sent by the nodes that kept their slots: each one followed by the client.
      let moved = 0;
      for (const node of await cluster.nodes()) moved += Number(/errorstat_MOVED:count=(\d+)/.exec(await cluster.info(node.port, 'errorstats'))?.[1] ?? 0);
      const serverErrors = new Set(core.samples.filter((s) => !s.ok && (s.error as CacheError).errorType === 'server').map((s) => `${s.op}: ${(s.error as Error).message.slice(0, 120)}`));
      if (serverErrors.size > 0) report.push(`  server errors: ${[...serverErrors].slice(0, 5).join(' | ')}`);
      report.push(
        `  killed 127.0.0.1:${victim.port}; replica ${promoted} promoted after ${Math.round(promotedAt - killedAt)} ms (a surviving master's key refused for about ${Math.round(keptRefusedMs)} ms of it); killed slots served again ${servedAt === undefined ? 'never' : `${Math.round(servedAt - promotedAt)} ms after promotion`}`,
        `  MOVED replies sent: ${moved}; core operations that failed after the promotion was seen: ${failedJustAfter} (from 100 ms after it: ${failedAfter})`,
        `  core: ${f.attempted} ops, ${f.failed} failed ${JSON.stringify(f.errorTypes)}, slowest ${f.maxMs.toFixed(0)} ms (during the fault ${f.maxFaultMs.toFixed(0)} ms), verified writes ${core.verifiedWrites}`,
        `  wrappers: ${load.tally.calls} calls, escaped ${load.tally.escaped}, wrong ${load.tally.wrong}, slowest ${JSON.stringify(load.tally.slowest)}`,
      );
      expect(servedAt).toBeDefined();
      expect(keptRefusedMs).toBeGreaterThan(0);
      expect(moved).toBeGreaterThan(0);
      expect(failedAfter).toBe(0);
      expect(f.untyped).toBe(0);
      expect(core.violations).toEqual([]);
      expect(f.maxMs).toBeLessThan(COMMAND_TIMEOUT + 200);
      expect(load.tally.firstEscape).toBeUndefined();
      expect(load.tally.wrong).toBe(0);
      expect(load.tally.maxMs).toBeLessThan(COMMAND_TIMEOUT + 300);
      // Outages only (CLUSTERDOWN included), which the fallback cache routes around.
      for (const s of core.samples) if (!s.ok) expect(['connection', 'timeout']).toContain((s.error as CacheError).errorType);
    } finally {
      await cache.close();
    }
  }, 60_000);

  it.each(['nodes', 'client'] as const)('a write that failed during the failover is never resent: it does not land once the replica is promoted (a cluster given as %s)', async (given) => {
    const prefix = `resend-${given}`;
    const client = given === 'client' ? ownCluster() : undefined;
    const cache = await createDragonflyCache({ ...(client ? { client } : { nodes: seeds() }), commandTimeout: COMMAND_TIMEOUT, keyPrefix: prefix });
    try {
      const victim = await masterWithReplica();
      const keys = Array.from({ length: 20 }, (_, i) => keyOn(victim, `late${i}:`, (key) => `${prefix}:g:${key}`));
      await cluster.kill(victim.port);
      // Sent late in the outage (promotion comes about 2 s after the kill), so a client that keeps
      // retrying them has not given up yet when the replica takes over.
      await sleep(1200);
      const failed: string[] = [];
      await Promise.all(keys.map((key) => cache.set(key, 'sent during the failover').catch(() => failed.push(key))));
      const promotedAt = (await cluster.failedOver(victim.port), performance.now());
      // A retrying client would have landed them within 1.6 s of sending (16 tries, 100 ms apart).
      await sleep(1500);
      const servedAt = await servedAgain(cache, victim, prefix);
      expect(servedAt).toBeDefined();
      report.push(`  (${given}) the killed slots were served again ${Math.round((servedAt as number) - promotedAt)} ms after the promotion was seen`);
      const landed = [];
      for (const key of failed) if ((await cache.get(key)) !== undefined) landed.push(key);
      report.push(`  writes that failed during the failover: ${failed.length} of ${keys.length}; landed later anyway: ${landed.length}`);
      expect(failed.length).toBeGreaterThan(0);
      expect(landed).toEqual([]);
    } finally {
      await cache.close();
      client?.disconnect();
    }
  }, 60_000);
});

describeWith('redis-server')('a failover on a cluster with cluster-require-full-coverage no', () => {
  let partial: RedisClusterHandle;
  beforeAll(async () => {
    partial = await startRedisCluster({ replicas: 1, requireFullCoverage: false });
  }, 60_000);
  afterAll(() => partial?.stop());

  it('keys on the surviving masters keep answering while the killed master’s replica takes over', async () => {
    const cache = await createDragonflyCache({ nodes: partial.ports.map((port) => ({ port })), commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'partial' });
    try {
      const masters = (await partial.nodes()).filter((n) => n.role === 'master');
      const [victim, survivor] = masters as [ClusterNode, ClusterNode];
      const kept = keyOn(survivor, 'kept', (key) => `partial:g:${key}`);
      await cache.set(kept, 'still here');
      await partial.kill(victim.port);
      let promoted = false;
      const failover = partial.failedOver(victim.port).then(() => (promoted = true));
      let reads = 0;
      let failed = 0;
      while (!promoted) {
        reads++;
        if ((await cache.get(kept).catch(() => undefined)) !== 'still here') failed++;
        await sleep(10);
      }
      await failover;
      report.push(`  require-full-coverage no: ${reads} reads of a surviving master's key during the failover, ${failed} failed`);
      expect(reads).toBeGreaterThan(20);
      expect(failed).toBe(0);
    } finally {
      await cache.close();
    }
  }, 60_000);
});
