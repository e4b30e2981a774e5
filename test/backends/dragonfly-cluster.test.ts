import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
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
  afterAll(() => cluster?.stop());
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
});

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
