import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createFallbackCache } from '../../src/backends/fallback.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import type { CacheEvent, CacheLogger } from '../../src/core/events.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { withCache } from '../../src/llm/with-cache.js';
import { cacheEvents } from '../../src/llm/wrapper-events.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

stopRedisServersAfterAll();

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A logger that keeps what it was told, by level. */
function memoryLogger(): CacheLogger & { lines: [string, string][] } {
  const lines: [string, string][] = [];
  const at = (level: string) => (message: string) => void lines.push([level, message]);
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

function collect(target: { on(type: CacheEvent['type'], listener: (e: CacheEvent) => unknown): unknown }, types: CacheEvent['type'][]): CacheEvent[] {
  const seen: CacheEvent[] = [];
  for (const type of types) target.on(type, (e) => void seen.push(e));
  return seen;
}

describe('memory cache events', () => {
  it('emits evict with the key of each entry pushed out by maxSize, and expire for an entry noticed past its TTL', async () => {
    const cache = createMemoryCache({ maxSize: 2 });
    const seen = collect(cache, ['evict', 'expire']);
    await cache.set('a', 1);
    await cache.set('b', 2, { ttl: 0.05, tenantId: 'acme' });
    await cache.set('c', 3);
    await sleep(80);
    await cache.set('d', 4, { tenantId: 'acme' });
    await cache.get('b', { tenantId: 'acme' });
    await settle();
    expect(seen.map((e) => [e.type, e.key, e.tenantId])).toContainEqual(['evict', 'a', undefined]);
    expect(seen.filter((e) => e.type === 'expire' || e.type === 'evict').map((e) => e.key)).toContain('b');
  });

  it('builds no event while nobody listens, and stops after the last listener is removed', async () => {
    const cache = createMemoryCache();
    const listener = () => {};
    cache.on('hit', listener).off('hit', listener);
    await cache.set('k', 1);
    await cache.get('k');
    await settle();
    expect((await cache.stats()).listenerErrors).toBe(0);
  });
});

describe('fallback cache events and logger', () => {
  it('emits breaker-open when the failing primary opens the circuit, tags operations with the tier that answered, and logs at warn', async () => {
    const logger = memoryLogger();
    const cache = createFallbackCache({ primary: createFailingCache(), fallback: createMemoryCache(), failureThreshold: 2, logger });
    const seen = collect(cache, ['breaker-open', 'breaker-close', 'set']);
    await cache.set('a', 1);
    await cache.set('b', 2);
    await settle();
    expect(seen.map((e) => e.type)).toEqual(['set', 'set', 'breaker-open']);
    expect(seen[0]).toMatchObject({ tier: 'fallback', source: 'memory', key: 'a' });
    expect(logger.lines).toEqual([['warn', expect.stringMatching(/circuit is open/) as string]]);
    await cache.close();
  });

  it('emits breaker-close and logs at info when a primary that was still connecting arrives', async () => {
    const logger = memoryLogger();
    const cache = createFallbackCache({ primary: async () => createMemoryCache(), fallback: createMemoryCache(), logger });
    const seen = collect(cache, ['breaker-close']);
    await sleep(10);
    await settle();
    expect(seen).toHaveLength(1);
    expect(logger.lines[0]?.[0]).toBe('info');
    await cache.close();
  });

  it('refuses a logger without the four methods, naming the option', () => {
    expect(() => createFallbackCache({ primary: createMemoryCache(), fallback: createMemoryCache(), logger: { warn() {} } as never })).toThrow(
      /createFallbackCache: logger must have error, warn, info and debug methods .* without error, info, debug/,
    );
  });
});

describeWith('redis-server')('Dragonfly cache events and logger', () => {
  it('logs one warn when the server goes away, debug for each retry, info and a reconnect event when it is back; never the password', async () => {
    const server = await RedisServer.start();
    const logger = memoryLogger();
    await server.command('CONFIG', 'SET', 'requirepass', 's3cret-pw');
    const cache = await createDragonflyCache({ url: `redis://:s3cret-pw@127.0.0.1:${server.port}`, logger, commandTimeout: 300 });
    const seen = collect(cache, ['reconnect', 'error']);
    await server.kill();
    await expect(cache.get('k')).rejects.toThrow(CacheError);
    await sleep(1500);
    await server.restart();
    await server.command('CONFIG', 'SET', 'requirepass', 's3cret-pw');
    for (let i = 0; i < 50 && !seen.some((e) => e.type === 'reconnect'); i++) await sleep(100);
    await settle();
    const levels = logger.lines.map(([level]) => level);
    expect(levels[0]).toBe('warn');
    expect(levels.filter((l) => l === 'warn')).toHaveLength(1);
    expect(levels).toContain('info');
    expect(logger.lines.map(([, m]) => m).join('\n')).not.toContain('s3cret-pw');
    expect(logger.lines.find(([l]) => l === 'info')?.[1]).toMatch(new RegExp(`reconnected to Dragonfly at 127.0.0.1:${server.port} after \\d+ ms`));
    const reconnect = seen.find((e) => e.type === 'reconnect');
    expect(reconnect?.durationMs).toBeGreaterThan(1000);
    expect(seen.find((e) => e.type === 'error')).toMatchObject({ operation: 'get', source: 'dragonfly' });
    expect(await cache.set('k', 1)).toBe(true);
    await cache.close();
    await server.stop();
  }, 30_000);
});

describeWith('redis-server')('Dragonfly evict and expire events', () => {
  it("emit the server's evictions and expirations, read every 5 s while someone listens, as counts", async () => {
    const server = await RedisServer.start({ maxmemory: 4 * 1024 * 1024, maxmemoryPolicy: 'allkeys-lru' });
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: 2000 });
    const seen = collect(cache, ['evict', 'expire']);
    await sleep(200);
    await cache.setMany(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`short:${i}`, i])), { ttl: 0.05 });
    for (let i = 0; i < 8; i++) await cache.setMany(Object.fromEntries(Array.from({ length: 1000 }, (_, j) => [`big:${i}:${j}`, 'x'.repeat(1024)])));
    for (let i = 0; i < 80 && !(seen.some((e) => e.type === 'evict') && seen.some((e) => e.type === 'expire')); i++) await sleep(100);
    const evicted = seen.filter((e) => e.type === 'evict').reduce((n, e) => n + e.count, 0);
    expect(evicted).toBeGreaterThan(0);
    expect(seen.find((e) => e.type === 'expire')).toMatchObject({ source: 'dragonfly', operation: 'server', key: undefined });
    expect(evicted).toBeLessThanOrEqual((await cache.stats()).evictions);
    await cache.close();
    await server.stop();
  }, 30_000);
});

/** The guide's gateway, small. */
class Gateway {
  model = 'gpt-4o-mini';
  async generate(prompt: string) {
    return { text: `about ${prompt}`, usage: { total_tokens: 30 } };
  }
}

describe('wrapper events (cacheEvents)', () => {
  it('emits miss, set (once the write landed), hit with what it saved, and bypass, with the namespace and tenant', async () => {
    const gw = withCache(new Gateway(), { cache: createMemoryCache(), namespace: 'gw', tenantId: 'acme' });
    const seen = collect(cacheEvents(gw), ['hit', 'miss', 'set', 'bypass']);
    await gw.generate('AI');
    await sleep(5);
    await gw.generate('AI');
    await withCacheControl({ bypass: true }, () => gw.generate('AI'));
    await settle();
    expect(seen.map((e) => e.type)).toEqual(['miss', 'set', 'hit', 'bypass']);
    expect(seen.every((e) => e.source === 'llm' && e.tenantId === 'acme')).toBe(true);
    expect(seen[2]).toMatchObject({ namespace: 'gw', tokensSaved: 30, count: 1 });
    expect(seen[2]?.latencySavedMs).toBeGreaterThanOrEqual(0);
    expect(seen[2]?.key).toMatch(/^v\d+:/);
  });

  it('emits error for a cache failure the call survived, and counts a throwing listener in cacheStats', async () => {
    const gw = withCache(new Gateway(), { cache: createFailingCache() });
    const seen = collect(cacheEvents(gw), ['error']);
    cacheEvents(gw).on('miss', () => {
      throw new Error('listener bug');
    });
    expect(await gw.generate('AI')).toEqual({ text: 'about AI', usage: { total_tokens: 30 } });
    await settle();
    expect(seen[0]?.error).toBeInstanceOf(CacheError);
    expect(cacheStats(gw).listenerErrors).toBe(1);
  });

  it('takes only what a wrapper returned', () => {
    expect(() => cacheEvents({})).toThrow(/cacheEvents\(\) takes a value returned by a cachekit wrapper/);
  });
});
