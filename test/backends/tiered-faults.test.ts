import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { createTieredCache, type TieredCache } from '../../src/backends/tiered.js';
import { CacheError } from '../../src/core/errors.js';
import { uniquePrefix } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';
import { expectCacheError } from './behaviour-suite.js';

stopRedisServersAfterAll();

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('createTieredCache options', () => {
  it('refuses what is not a memory cache and a Dragonfly cache, a bad l1Ttl and unknown options, with validation errors', async () => {
    const l1 = createMemoryCache();
    await expectCacheError(() => createTieredCache(undefined as never), 'validation');
    await expectCacheError(() => createTieredCache({ l1, l2: createMemoryCache() }), 'validation');
    await expectCacheError(() => createTieredCache({ l1: {} as never, l2: createMemoryCache() }), 'validation');
    for (const l1Ttl of [0, -1, Number.NaN, Infinity, '10']) {
      const error = await expectCacheError(() => createTieredCache({ l1, l2: createMemoryCache(), l1Ttl: l1Ttl as number }), 'validation');
      expect(error.message).toMatch(/l1Ttl|l2/);
    }
    const typo = await expectCacheError(() => createTieredCache({ l1, l2: createMemoryCache(), l1TTL: 5 } as never), 'validation');
    expect(typo.message).toContain('did you mean "l1Ttl"?');
  });
});

describeWith('redis-server')('tiered caches sharing a private redis-server: invalidation, link cuts, outages', () => {
  let server: RedisServer;
  let admin: Redis;
  const caches: TieredCache[] = [];
  async function open(l1Ttl: number, commandTimeout = 300): Promise<TieredCache> {
    const cache = await createTieredCache({
      l1: createMemoryCache(),
      l2: await createDragonflyCache({ url: server.url, keyPrefix: prefix, commandTimeout }),
      l1Ttl,
    });
    caches.push(cache);
    return cache;
  }
  let prefix = '';
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    server.resume();
    await admin?.config('SET', 'maxclients', '10000').catch(() => {});
    admin?.disconnect();
    for (const cache of caches.splice(0)) await cache.close();
  });

  it('shares one factory call between tiered caches with singleFlight shared, and both read the holder’s answer afterwards', async () => {
    prefix = uniquePrefix('tier-flight');
    const [a, b] = [await open(30), await open(30)];
    await b.set('k', 'old', { ttl: 0.2 });
    expect(await b.get('k')).toBe('old');
    await sleep(250);
    let calls = 0;
    const factory = async () => {
      calls++;
      await sleep(50);
      return 'new';
    };
    const answers = await Promise.all([a, b].flatMap((cache) => Array.from({ length: 50 }, () => cache.getOrSet('k', factory, { singleFlight: 'shared', ttl: 60 }))));
    expect(calls).toBe(1);
    expect(new Set(answers)).toEqual(new Set(['new']));
    await sleep(50);
    for (const cache of [a, b]) expect(await cache.get('k')).toBe('new');
  });

  it('refuses a memory or Redis tier that is already closed, with a closed error', async () => {
    prefix = uniquePrefix('tier-closed');
    const l2 = await createDragonflyCache({ url: server.url, keyPrefix: prefix });
    const l1 = createMemoryCache();
    await l1.close();
    await expectCacheError(() => createTieredCache({ l1, l2 }), 'closed');
    await l2.close();
    await expectCacheError(() => createTieredCache({ l1: createMemoryCache(), l2 }), 'closed');
  });

  it('resolves once subscribed, and a change in one process reaches the other within the window', async () => {
    prefix = uniquePrefix('tier-link');
    const [a, b] = [await open(30), await open(30)];
    expect(a.link().subscribed).toBe(true);
    await a.set('k', 'v1');
    // A read in flight when an invalidation arrives is answered but not copied: let it arrive first.
    await sleep(50);
    const tiers: unknown[] = [];
    b.on('hit', (e) => void tiers.push(e.tier));
    expect(await b.get('k')).toBe('v1');
    expect(await b.get('k')).toBe('v1');
    expect(await b.stats()).toMatchObject({ l1Hits: 1, l2Hits: 1, hits: 2, misses: 0 });
    await sleep(10);
    expect(tiers).toEqual(['l2', 'l1']);
    await a.set('k', 'v2');
    await sleep(200);
    expect(await b.get('k')).toBe('v2');
    await a.delete('k');
    await sleep(200);
    expect(await b.get('k')).toBeUndefined();
  });

  it("tag invalidations, pattern clears, batches and clear in one cache drop the other's copies; a tenant's change drops only that tenant's", async () => {
    prefix = uniquePrefix('tier-kinds');
    const [a, b] = [await open(30), await open(30)];
    const acme = { tenantId: 'acme' };
    await a.set('doc:1', 'd1', { tags: ['doc'] });
    await a.setMany({ 'user:1': 'u1', 'user:2': 'u2', x: 'x1' });
    await a.set('x', 'acme-x', acme);
    await sleep(50);
    const read = async () => [await b.get('doc:1'), await b.get('user:1'), await b.get('user:2'), await b.get('x'), await b.get('x', acme)];
    expect(await read()).toEqual(['d1', 'u1', 'u2', 'x1', 'acme-x']);
    const copies = (await b.stats()).l2Hits;
    expect(await read()).toEqual(['d1', 'u1', 'u2', 'x1', 'acme-x']);
    expect((await b.stats()).l2Hits).toBe(copies);
    await a.invalidateTags(['doc']);
    await a.clearPattern('user:*');
    await a.setMany({ x: 'x2' }, acme);
    await sleep(200);
    expect(await read()).toEqual([undefined, undefined, undefined, 'x1', 'x2']);
    await a.clear();
    await sleep(200);
    expect(await read()).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('an invalidation names keys, a pattern or tags and the tenant, never a value', async () => {
    prefix = uniquePrefix('tier-wire');
    const a = await open(30);
    admin = new Redis(server.url);
    const heard: string[] = [];
    admin.on('message', (_channel: string, message: string) => void heard.push(message));
    await admin.subscribe(`${prefix}:~tier`);
    await a.set('k', 'SECRET-VALUE', { tenantId: 'acme' });
    await a.setMany({ k2: 'SECRET-2' });
    await a.clearPattern('k*');
    await a.invalidateTags(['doc']);
    await until(() => heard.length === 4, 'four invalidations');
    expect(heard.join('\n')).not.toContain('SECRET');
    expect(heard.map((m) => JSON.parse(m) as Record<string, unknown>).map(({ o, ...rest }) => [typeof o, rest])).toEqual([
      ['string', { k: ['k'], n: 'acme' }],
      ['string', { k: ['k2'] }],
      ['string', { p: 'k*' }],
      ['string', { g: ['doc'] }],
    ]);
  });

  it("a stream of other keys' invalidations does not stop a hot key from being copied", async () => {
    prefix = uniquePrefix('tier-busy');
    const [a, b] = [await open(30), await open(30)];
    const hot = Array.from({ length: 50 }, (_, i) => `hot:${i}`);
    await a.setMany(hot.map((key) => [key, key] as const));
    await sleep(50);
    let writing = true;
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; writing; i++) await a.set(`other:${w}:${i % 50}`, i);
    });
    await sleep(50);
    // Each hot key read twice: the first read copies it (invalidations of other keys arrive meanwhile), the second hits memory.
    for (const key of hot) {
      expect(await b.get(key)).toBe(key);
      expect(await b.get(key)).toBe(key);
    }
    writing = false;
    await Promise.all(writers);
    expect(b.link().received).toBeGreaterThan(100);
    expect((await b.stats()).l1Hits).toBeGreaterThanOrEqual(45);
  });

  it("a memory copy never outlives its Redis entry's TTL", async () => {
    prefix = uniquePrefix('tier-ttl');
    const [a, b] = [await open(30), await open(30)];
    admin = new Redis(server.url);
    await a.set('k', 'v', { ttl: 0.5 });
    await sleep(50);
    expect(await b.get('k')).toBe('v');
    expect(await b.get('k')).toBe('v');
    expect((await b.stats()).l1Hits).toBe(1);
    // The moment the server has dropped it, the copy is gone too.
    await until(async () => (await admin.pttl(`${prefix}:g:k`)) === -2, 'the entry to expire on the server', 2000);
    expect(await b.get('k')).toBeUndefined();
    expect((await b.stats()).l1Hits).toBe(1);
  });

  it('a link cut (CLIENT KILL TYPE pubsub) that stays down: the memory tier serves a copy only within l1Ttl, resubscribes by itself and is emptied once back', { timeout: 30_000 }, async () => {
    prefix = uniquePrefix('tier-cut');
    const l1Ttl = 1;
    const [a, b] = [await open(l1Ttl), await open(l1Ttl)];
    admin = new Redis(server.url);
    await a.set('k', 'v1');
    await a.set('other', 'o1');
    expect(await b.get('k')).toBe('v1');
    const filled = Date.now();
    expect(await b.get('other')).toBe('o1');
    // No new connection is accepted, so the subscriptions cannot come back while this holds.
    const connected = (await admin.info('clients')).match(/connected_clients:(\d+)/)?.[1];
    await admin.config('SET', 'maxclients', String(Number(connected) - 2));
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await until(() => !a.link().subscribed && !b.link().subscribed, 'the link to drop');
    expect(b.link()).toMatchObject({ subscribed: false, losses: 1 });
    expect(await b.validate()).toBe(false);
    // B cannot hear this: its copy may be served, but never past l1Ttl from when it was taken.
    await a.set('k', 'v2');
    const seen: [number, unknown][] = [];
    while (Date.now() - filled < l1Ttl * 1000 + 300) {
      seen.push([Date.now() - filled, await b.get('k')]);
      await sleep(20);
    }
    expect(seen.filter(([at, value]) => at >= l1Ttl * 1000 && value !== 'v2')).toEqual([]);
    expect(seen.at(-1)?.[1]).toBe('v2');
    // A copy taken during the cut (other) is kept until the link is back.
    expect(await b.get('other')).toBe('o1');
    await a.set('other', 'o2');
    expect(await b.get('other')).toBe('o1');
    await admin.config('SET', 'maxclients', '10000');
    await until(() => a.link().subscribed && b.link().subscribed, 'the subscriptions to come back');
    expect(b.link()).toMatchObject({ subscribed: true, losses: 1, drops: 1 });
    expect(await b.get('other')).toBe('o2');
    expect(await b.validate()).toBe(true);
    await a.set('k', 'v3');
    await sleep(200);
    expect(await b.get('k')).toBe('v3');
  });

  it('Redis hung (SIGSTOP): the memory tier keeps serving its copies, the breaker makes the rest fail at once, and the memory tier is dropped when Redis answers again', { timeout: 30_000 }, async () => {
    prefix = uniquePrefix('tier-hung');
    const commandTimeout = 300;
    const a = await open(30, commandTimeout);
    const events: string[] = [];
    a.on('breaker-open', () => void events.push('open')).on('breaker-close', () => void events.push('close'));
    await a.set('k', 'v1');
    expect(await a.get('k')).toBe('v1');
    server.pause();
    expect(await a.get('k')).toBe('v1');
    for (let i = 0; i < 3; i++) await expectCacheError(() => a.get(`absent${i}`), 'timeout');
    expect(a.link().breaker).toBe('open');
    // Open: neither waits for the hung server nor sends it anything.
    const started = performance.now();
    const error = await a.get('absent').catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(commandTimeout / 3);
    expect(error).toBeInstanceOf(CacheError);
    expect((error as CacheError).errorType).toBe('connection');
    expect(await a.get('k')).toBe('v1');
    server.resume();
    // What the memory tier held may have been replaced meanwhile (another process wrote before the hang ended).
    await admin_set(server, `${prefix}:g:k`, 'ck1|"v2"');
    // The memory tier answers its hits without asking Redis: the next read it misses is the probe.
    expect(await a.get('k')).toBe('v1');
    await until(async () => (await a.get('absent').then(() => true, () => false)) && (await a.get('k')) === 'v2', 'the breaker to close and the memory tier to be dropped');
    expect(a.link()).toMatchObject({ breaker: 'closed', drops: 1 });
    await sleep(10);
    expect(events).toEqual(['open', 'close']);
  });

  it('Redis killed and restarted: the memory tier serves its copies meanwhile, and is emptied once the subscription is back', { timeout: 30_000 }, async () => {
    prefix = uniquePrefix('tier-down');
    const a = await open(30);
    await a.set('k', 'v1');
    expect(await a.get('k')).toBe('v1');
    await server.kill();
    await until(() => !a.link().subscribed, 'the link to drop');
    expect(await a.get('k')).toBe('v1');
    await expectCacheError(() => a.set('k', 'v2'), 'connection');
    // The failed write may have landed: the copy is gone too.
    await expectCacheError(() => a.get('k'), 'connection');
    await a.get('k').catch(() => {});
    await server.restart();
    await until(() => a.link().subscribed, 'the subscription to come back');
    await until(async () => (await a.get('k').catch(() => 'failed')) === undefined, 'the restarted, empty server to answer');
    expect(a.link().drops).toBeGreaterThanOrEqual(1);
  });
});

async function admin_set(server: RedisServer, key: string, value: string): Promise<void> {
  await server.command('SET', key, value);
}

describeWith('redis-server')('createTieredCache on a Redis Cluster', () => {
  it('refuses a Dragonfly cache on a Cluster as l2 (validation), leaving it open', { timeout: 60_000 }, async () => {
    const cluster = await startRedisCluster();
    const client = cluster.client();
    try {
      const l2 = await createDragonflyCache({ client, keyPrefix: uniquePrefix('tier-cluster') });
      const error = await expectCacheError(() => createTieredCache({ l1: createMemoryCache(), l2 }), 'validation');
      expect(error.message).toContain('Cluster');
      expect(await l2.set('k', 1)).toBe(true);
      await l2.close();
    } finally {
      client.disconnect();
      cluster.stop();
    }
  });
});
