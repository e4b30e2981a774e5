import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { Cache } from '../../src/core/types.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

stopRedisServersAfterAll();

const OURS = 200_000;
const TENANT = 20_000;
const FOREIGN = 100_000;

async function fill(client: Redis, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 10_000) {
    const pipeline = client.pipeline();
    for (let j = i; j < Math.min(count, i + 10_000); j++) pipeline.set(`${prefix}${j}`, `ck1|{"n":${j},"pad":"${'x'.repeat(40)}"}`);
    await pipeline.exec();
  }
}

describeWith('redis-server')('Dragonfly stats() on a big keyspace (320 000 keys, a private server)', () => {
  let server: RedisServer;
  let client: Redis;
  let cache: Cache;

  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
    // Ours untenanted, one tenant's, and another application's keys in the same database.
    await fill(client, 'big:g:k', OURS);
    await fill(client, 'big:t:acme:k', TENANT);
    await fill(client, 'other:', FOREIGN);
    cache = await createDragonflyCache({ url: server.url, keyPrefix: 'big', commandTimeout: 2000 });
  }, 120_000);

  afterAll(async () => {
    await cache?.close();
    client?.disconnect();
    await server?.stop();
  });

  it('answers in bounded time with an estimate within its stated 99% margin', async () => {
    const started = performance.now();
    const stats = await cache.stats();
    const ms = performance.now() - started;
    console.log(`[stats-bound] estimate: size ${stats.size} ± ${stats.sizeMargin} (true ${OURS + TENANT}), ${stats.memoryMb.toFixed(1)} MiB, ${ms.toFixed(1)} ms`);
    expect(stats.sizeMethod).toBe('estimated');
    // Two round trips of 1 000 keys each, whatever the keyspace: well under the 3.4 s a walk took in the soak.
    expect(ms).toBeLessThan(250);
    // The margin holds 99 times in 100 by construction; 1.5x it keeps a correct estimator from flaking.
    expect(Math.abs(stats.size - (OURS + TENANT))).toBeLessThanOrEqual(stats.sizeMargin * 1.5);
    expect(stats.sizeMargin).toBeLessThan((OURS + TENANT + FOREIGN) * 0.05);
    expect(stats.memoryMb).toBeGreaterThan(0);
  });

  it('estimates a tenant from the same sample, and counts it exactly with { exact: true }, walking the keyspace', async () => {
    const estimate = await cache.stats({ tenantId: 'acme' });
    expect(Math.abs(estimate.size - TENANT)).toBeLessThanOrEqual(estimate.sizeMargin * 1.5);
    const started = performance.now();
    const exact = await cache.stats({ tenantId: 'acme', exact: true });
    const ms = performance.now() - started;
    console.log(`[stats-bound] tenant: estimate ${estimate.size} ± ${estimate.sizeMargin}, exact ${exact.size} in ${ms.toFixed(0)} ms`);
    expect(exact).toMatchObject({ size: TENANT, sizeMethod: 'counted', sizeMargin: 0 });
  }, 60_000);
});
