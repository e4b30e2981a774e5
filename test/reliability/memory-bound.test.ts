import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { MAX_TRACKED_TENANTS } from '../../src/core/stats.js';

// A real collection before each heap reading, so growth means retained memory, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('memory cache byte bound', () => {
  it('1 000 000 inserts keep the counted bytes at or under maxBytes and the heap bounded', async () => {
    const maxBytes = 8 * MiB;
    const cache = createMemoryCache({ maxBytes, maxSize: 200_000 });
    const baseline = heapAfterGc();
    const started = performance.now();
    let maxCounted = 0;
    let peakHeapGrowth = 0;
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) {
      // Sizes from a few bytes to ~1.5 KB, and now and then one larger than the whole bound.
      const size = i % 50_000 === 49_999 ? maxBytes + 1 : (i * 7919) % 1500;
      const stored = await cache.set(`key:${i}`, size > maxBytes ? 'x'.repeat(size) : { i, body: 'y'.repeat(size) });
      if (!stored) refused++;
      if (i % 50_000 === 0 || i === 999_999) {
        const stats = await cache.stats();
        maxCounted = Math.max(maxCounted, stats.memoryMb * MiB);
        expect(stats.memoryMb * MiB).toBeLessThanOrEqual(maxBytes);
        expect(await cache.validate()).toBe(true);
        peakHeapGrowth = Math.max(peakHeapGrowth, heapAfterGc() - baseline);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = await cache.stats();
    expect(refused).toBe(20);
    expect(stats.sets).toBe(1_000_000 - refused);
    expect(stats.evictions).toBeGreaterThan(900_000);
    // The counted bytes are UTF-8 bytes of keys and encodings; the heap holds them as JS strings
    // plus lru-cache's bookkeeping, so allow a few times maxBytes, never growth with the insert count.
    expect(peakHeapGrowth).toBeLessThanOrEqual(6 * maxBytes);
    console.log(
      `[reliability] memory bound: 1 000 000 inserts in ${seconds.toFixed(1)} s, maxBytes ${maxBytes / MiB} MiB, ` +
        `max counted ${(maxCounted / MiB).toFixed(2)} MiB, entries at end ${stats.size}, evictions ${stats.evictions}, ` +
        `oversized refused ${refused}, peak heap growth after gc ${(peakHeapGrowth / MiB).toFixed(1)} MiB`,
    );
    await cache.close();
  }, 60_000);
});

describe('per-tenant counters', () => {
  it('200 000 one-off tenants on a maxSize 10 cache keep the heap flat: counters of the 1 000 most recently active tenants only', async () => {
    const cache = createMemoryCache({ maxSize: 10 });
    const baseline = heapAfterGc();
    for (let i = 0; i < 200_000; i++) {
      const scope = { tenantId: `tenant-${i}` };
      await cache.set('k', i, scope);
      await cache.get('k', scope);
      // Reading an unknown tenant's stats tracks nothing either.
      if (i % 1000 === 0) await cache.stats({ tenantId: `never-${i}` });
    }
    const growth = heapAfterGc() - baseline;
    const tracked = (cache as unknown as { counters: { tracked: number } }).counters.tracked;
    console.log(`[reliability] per-tenant counters: 200 000 one-off tenants, ${tracked} tracked, heap growth after gc ${(growth / MiB).toFixed(1)} MiB`);
    expect(tracked).toBeLessThanOrEqual(MAX_TRACKED_TENANTS);
    // 52 MB before the bound; 1 000 tenants' counters are well under 1 MB.
    expect(growth).toBeLessThan(4 * MiB);
    expect((await cache.stats()).sets).toBe(200_000);
    await cache.close();
  }, 60_000);
});
