import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { withCache } from '../../src/llm/with-cache.js';
import { createDragonflyCache, type DragonflyCacheOptions } from '../../src/backends/dragonfly.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import { freePort } from '../helpers/redis-server.js';
import { uniquePrefix } from '../helpers/redis.js';
import { expectCacheError, registerCacheBehaviourSuite } from './behaviour-suite.js';
import { describeWith } from '../helpers/skips.js';

// The whole contract on a real three-master Redis Cluster: batches, scripts and
// scans must be grouped by hash slot and visit every master. The cache builds
// its own fail-fast Cluster from `nodes`; a Cluster passed as `client` is
// covered by the failover test.
describeWith('redis-server')('dragonfly backend on a Redis Cluster (nodes)', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  const report: string[] = [];
  afterAll(() => {
    cluster?.stop();
    if (report.length > 0) console.log(`[cluster key distribution]\n${report.join('\n')}`);
  });
  registerCacheBehaviourSuite('dragonfly-cluster', (options) =>
    createDragonflyCache({ nodes: cluster.ports.map((port) => ({ port })), keyPrefix: uniquePrefix('cluster'), ...options }),
  );

  it('a cache built from nodes talks to every master through one ioredis Cluster', async () => {
    const cache = await createDragonflyCache({ nodes: [{ host: '127.0.0.1', port: cluster.ports[0] as number }], keyPrefix: uniquePrefix('seed') });
    try {
      // One seed is enough: the rest of the cluster is learned from it, and a batch spans every slot.
      const entries = new Map(Array.from({ length: 200 }, (_, i) => [`k${i}`, i]));
      expect(await cache.setMany(entries)).toBe(200);
      expect((await cache.getMany([...entries.keys()])).size).toBe(200);
    } finally {
      await cache.close();
    }
  });

  it('a tenant’s entries, an LLM wrapper’s entries and tag records spread over every master: nothing is hash-tagged into one slot', async () => {
    const keyPrefix = uniquePrefix('spread');
    const cache = await createDragonflyCache({ nodes: cluster.ports.map((port) => ({ port })), keyPrefix });
    const gateway = withCache({ model: 'm', generate: async (q: string) => `answer to ${q}` }, { cache, ttl: 60, tenantId: 'tenant-a' });
    try {
      const n = 3000;
      await cache.setMany(new Map(Array.from({ length: n }, (_, i) => [`doc:${i}`, i])), { tenantId: 'tenant-a', tags: ['corpus-v1'] });
      for (let i = 0; i < 300; i++) await gateway.generate(`question ${i}`);
      for (let i = 0; i < 300; i += 100) await cache.invalidateTags(Array.from({ length: 100 }, (_, j) => `tag${i + j}`), { tenantId: 'tenant-a' });
      const masters = (await cluster.nodes()).filter((node) => node.role === 'master');
      const count = async (match: string) => Promise.all(masters.map(async (node) => Number(await keysOn(node.port, match))));
      const entries = await count(`${keyPrefix}:t:tenant-a:doc:*`);
      const answers = await count(`${keyPrefix}:t:tenant-a:v1:*`);
      const records = await count(`${keyPrefix}:x:*`);
      report.push(`  one tenant's ${n} entries per master: ${entries.join(' / ')}; 300 withCache answers: ${answers.join(' / ')}; 301 tag records: ${records.join(' / ')}`);
      expect(entries.reduce((a, b) => a + b)).toBe(n);
      // Even spread is a third each; a hash tag would put them all on one master.
      for (const share of entries) expect(share / n).toBeGreaterThan(0.25);
      for (const share of answers) expect(share / 300).toBeGreaterThan(0.2);
      for (const share of records) expect(share / 301).toBeGreaterThan(0.2);
    } finally {
      await cache.close();
    }
  });
});

/** Keys matching `match` on one node, counted with SCAN (never KEYS). */
async function keysOn(port: number, match: string): Promise<number> {
  const node = new Redis({ port, lazyConnect: true });
  try {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
  } finally {
    node.disconnect();
  }
}

describe('createDragonflyCache({ nodes })', () => {
  it('malformed nodes, and nodes beside url, host, port, db or client, are validation errors', async () => {
    const cases: [DragonflyCacheOptions, string][] = [
      [{ nodes: [] }, 'nodes must be a non-empty array of { host, port }, got an array'],
      [{ nodes: '127.0.0.1:7000' as never }, 'nodes must be a non-empty array of { host, port }, got "127.0.0.1:7000" (a string)'],
      [{ nodes: ['127.0.0.1:7000' as never] }, "nodes[0] must be an object such as { host: '10.0.0.1', port: 6379 }, got \"127.0.0.1:7000\" (a string)"],
      [{ nodes: [{ port: 7000 }, { host: 'b' } as never] }, 'nodes[1].port must be an integer from 1 to 65535, got undefined'],
      [{ nodes: [{ host: '', port: 7000 }] }, 'nodes[0].host must be a non-empty string, got "" (a string)'],
      [{ nodes: [{ port: 7000 }], url: 'redis://127.0.0.1:7000' }, 'nodes cannot be combined with url: a cluster is reached through its nodes, and has only db 0'],
      [{ nodes: [{ port: 7000 }], db: 1 }, 'nodes cannot be combined with db: a cluster is reached through its nodes, and has only db 0'],
      [{ nodes: [{ port: 7000 }], client: new Cluster([], { lazyConnect: true }) }, 'nodes cannot be combined with client: a cluster is reached through its nodes, and has only db 0'],
    ];
    for (const [options, message] of cases) {
      const error = await expectCacheError(() => createDragonflyCache(options), 'validation');
      expect(error.message).toBe(`createDragonflyCache: ${message}`);
    }
    const typo = await expectCacheError(() => createDragonflyCache({ nodes: [{ port: 7000, hots: 'a' } as never] }), 'validation');
    expect(typo.message).toMatch(/^createDragonflyCache: nodes\[0\]: unknown option "hots" \(did you mean "host"\?\)/);
  });

  it('unreachable nodes reject with a connection error within connectTimeout', async () => {
    const port = await freePort();
    const started = performance.now();
    const error = await expectCacheError(() => createDragonflyCache({ nodes: [{ port }], connectTimeout: 500 }), 'connection');
    expect(performance.now() - started).toBeLessThan(500 + 200);
    expect(error.message).toContain(`Redis Cluster at 127.0.0.1:${port}`);
  });
});
