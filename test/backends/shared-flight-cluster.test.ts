import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { Cache } from '../../src/core/types.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import { uniquePrefix } from '../helpers/redis.js';
import { describeWith } from '../helpers/skips.js';

// singleFlight 'shared' on a real three-master Redis Cluster: each lock carries a hash tag
// for its entry's slot, so the store-under-lock script's two keys share a slot, and the
// outcome's PUBLISH reaches every node.
describeWith('redis-server')('shared flights on a Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  const clients: Cluster[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(() => {
    for (const client of clients) client.disconnect();
    cluster?.stop();
  });

  async function caches(prefix: string, n: number): Promise<Cache[]> {
    return Promise.all(
      Array.from({ length: n }, () => {
        const client = cluster.client();
        clients.push(client);
        return createDragonflyCache({ client, keyPrefix: prefix, commandTimeout: 1000 });
      }),
    );
  }

  it('makes one factory call per key over four caches, for keys of every slot, plain and tagged with grace', { timeout: 30_000 }, async () => {
    const list = await caches(uniquePrefix('sf-cluster'), 4);
    try {
      const calls = new Map<string, number>();
      const factory = (key: string) => async () => {
        calls.set(key, (calls.get(key) ?? 0) + 1);
        await sleep(50);
        return { key };
      };
      // Keys with and without hash tags of their own, spread over the masters.
      const keys = [...Array.from({ length: 24 }, (_, i) => `question:${i}`), 'a{tag}b', '{x}y', 'no}tag{', '{}empty'];
      const answers = await Promise.all(
        keys.flatMap((key, i) =>
          list.flatMap((cache) =>
            Array.from({ length: 3 }, () =>
              cache.getOrSet(key, factory(key), i % 2 === 0 ? { singleFlight: 'shared', ttl: 60 } : { singleFlight: 'shared', ttl: 60, grace: 60, tags: ['t'] }),
            ),
          ),
        ),
      );
      expect(answers).toHaveLength(keys.length * 12);
      for (const key of keys) expect(calls.get(key), key).toBe(1);
      await sleep(50);
      for (const key of keys) expect(await list[3]!.get(key)).toEqual({ key });
      for (const cache of list) expect((await cache.stats()).errors).toBe(0);
    } finally {
      await Promise.all(list.map((c) => c.close()));
    }
  });
});
