// The guide's complete example, step by step. Runs offline on the memory cache;
// set REDIS_URL (e.g. redis://127.0.0.1:6379) to run the same steps on Dragonfly/Redis.
import {
  type Cache,
  CacheError,
  DragonflyConnectionError,
  batchCacheGet,
  batchCacheSet,
  cacheClearPattern,
  cacheDelete,
  cacheGet,
  cacheSet,
  createDragonflyCache,
  createMemoryCache,
  getCacheStats,
  validateCache,
} from '../src/index.js';

interface User {
  name: string;
  email: string;
  role: string;
}

function step(title: string): void {
  console.log(`\n== ${title}`);
}

async function createCache(): Promise<Cache> {
  const url = process.env.REDIS_URL;
  if (!url) {
    step('Step 1: create a memory cache (defaultTtl 600 s, maxSize 1000)');
    return createMemoryCache({ defaultTtl: 600, maxSize: 1000 });
  }
  step(`Step 1: create a Dragonfly cache at ${new URL(url).host} (defaultTtl 600 s, keyPrefix "quickstart")`);
  return createDragonflyCache({ url, defaultTtl: 600, keyPrefix: 'quickstart' });
}

async function main(): Promise<void> {
  const cache = await createCache();
  console.log(`created a ${cache.kind} cache; validateCache ->`, await validateCache(cache));

  step('Step 2: set values');
  console.log(
    'cacheSet user:123 (ttl 300 s) ->',
    await cacheSet(cache, 'user:123', { name: 'John Doe', email: 'john@example.com', role: 'admin' }, { ttl: 300 }),
  );
  console.log('cacheSet config:app (ttl 3600 s) ->', await cacheSet(cache, 'config:app', { theme: 'dark', language: 'en' }, { ttl: 3600 }));

  step('Step 3: get values');
  const user = await cacheGet<User>(cache, 'user:123');
  if (user) console.log(`User: ${user.name}\nEmail: ${user.email}`);
  const config = await cacheGet<{ theme: string }>(cache, 'config:app');
  if (config) console.log(`Theme: ${config.theme}`);
  console.log('cacheGet of a key never set ->', await cacheGet(cache, 'user:999'));

  step('Step 4: delete');
  console.log('cacheDelete user:123 ->', await cacheDelete(cache, 'user:123'));
  console.log('cacheDelete user:123 again ->', await cacheDelete(cache, 'user:123'));

  step('Batch operations');
  console.log(
    'batchCacheSet 3 users (ttl 300 s) ->',
    await batchCacheSet(cache, { 'user:1': { name: 'Alice' }, 'user:2': { name: 'Bob' }, 'user:3': { name: 'Charlie' } }, { ttl: 300 }),
  );
  console.log('batchCacheGet user:1..4 ->', await batchCacheGet(cache, ['user:1', 'user:2', 'user:3', 'user:4']));

  step('Multi-tenancy');
  await cacheSet(cache, 'user:123', { name: 'John' }, { tenantId: 'tenant_123' });
  console.log('tenant_123 reads user:123 ->', await cacheGet(cache, 'user:123', { tenantId: 'tenant_123' }));
  console.log('tenant_456 reads user:123 ->', await cacheGet(cache, 'user:123', { tenantId: 'tenant_456' }));
  console.log('untenanted reads user:123 ->', await cacheGet(cache, 'user:123'));

  step('Step 6: pattern-based invalidation');
  console.log('cacheClearPattern "user:*" ->', await cacheClearPattern(cache, 'user:*'), 'removed (the tenant\'s user:123 stays)');
  console.log('tenant_123 still reads user:123 ->', await cacheGet(cache, 'user:123', { tenantId: 'tenant_123' }));

  step('Error handling');
  try {
    await cacheSet(cache, '', 'value');
  } catch (error) {
    if (error instanceof DragonflyConnectionError) console.log('Dragonfly is down: fall back to the source');
    else if (error instanceof CacheError) console.log(`CacheError: ${error.message} (errorType: ${error.errorType})`);
  }

  step('Monitoring');
  const stats = await getCacheStats(cache);
  console.log(`Hit rate: ${(stats.hitRate * 100).toFixed(2)}%`);
  console.log(`Miss rate: ${(stats.missRate * 100).toFixed(2)}%`);
  console.log(`Size: ${stats.size} items`);
  console.log(`Memory usage: ${stats.memoryMb.toFixed(4)} MB`);

  await cache.clear();
  await cache.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
