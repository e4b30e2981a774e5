import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { createTieredCache } from '../../src/backends/tiered.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { describeWith } from '../helpers/skips.js';
import { registerCacheBehaviourSuite } from './behaviour-suite.js';

describeWith('redis')('tiered cache (memory in front of the Redis at REDIS_URL)', () => {
  registerCacheBehaviourSuite('tiered', async (options) =>
    createTieredCache({ l1: createMemoryCache(), l2: await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('tier'), ...options }) }),
  );
});
