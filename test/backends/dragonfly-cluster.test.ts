import { afterAll, beforeAll } from 'vitest';
import type { Cluster } from 'ioredis';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import { uniquePrefix } from '../helpers/redis.js';
import { registerCacheBehaviourSuite } from './behaviour-suite.js';
import { describeWith } from '../helpers/skips.js';

// The whole contract on a real three-master Redis Cluster: batches, scripts and
// scans must be grouped by hash slot and visit every master.
describeWith('redis-server')('dragonfly backend on a Redis Cluster (ioredis Cluster client)', () => {
  let cluster: RedisClusterHandle;
  const clients: Cluster[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(() => {
    for (const client of clients) client.disconnect();
    cluster?.stop();
  });
  registerCacheBehaviourSuite('dragonfly-cluster', (options) => {
    const client = cluster.client();
    clients.push(client);
    return createDragonflyCache({ client, keyPrefix: uniquePrefix('cluster'), ...options });
  });
});
