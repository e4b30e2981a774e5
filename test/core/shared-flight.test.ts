import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { withCache } from '../../src/llm/with-cache.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { cachedOpenAI } from '../../integrations/openai/cached-openai.js';
import { uniquePrefix } from '../helpers/redis.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

// Several caches on one server stand for several processes here: each has its own
// connections and its own in-process flights, so only the lock and the channel join
// them. The suite with real processes is test/reliability/shared-flight-processes.test.ts.

const PROCESSES = 4;

describeWith('redis-server')('getOrSet with singleFlight: shared, on a private redis-server', () => {
  stopRedisServersAfterAll();
  let server: RedisServer;
  let raw: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    raw = new Redis(server.url);
  });
  afterAll(() => raw.disconnect());

  async function caches(prefix: string, n = PROCESSES, commandTimeout = 300): Promise<Cache[]> {
    return Promise.all(Array.from({ length: n }, () => createDragonflyCache({ url: server.url, keyPrefix: prefix, commandTimeout })));
  }
  const closeAll = (list: Cache[]) => Promise.all(list.map((c) => c.close()));

  it('makes one factory call for 1 000 concurrent identical misses over four caches, and every caller gets its value', async () => {
    const list = await caches(uniquePrefix('sf-one'));
    try {
      let calls = 0;
      const factory = async () => {
        calls++;
        await sleep(50);
        return { answer: 42 };
      };
      const answers = await Promise.all(
        list.flatMap((cache) => Array.from({ length: 250 }, () => cache.getOrSet('q', factory, { singleFlight: 'shared', ttl: 60 }))),
      );
      expect(calls).toBe(1);
      expect(answers).toHaveLength(1000);
      for (const a of answers) expect(a).toEqual({ answer: 42 });
    } finally {
      await closeAll(list);
    }
  });

  it('wakes waiters by message, not by their safety check: they answer within milliseconds of the store', async () => {
    const list = await caches(uniquePrefix('sf-wake'));
    try {
      let returnedAt = 0;
      const factory = async () => {
        await sleep(300);
        returnedAt = performance.now();
        return 'v';
      };
      const added: number[] = [];
      await Promise.all(
        list.map((cache) =>
          cache.getOrSet('k', factory, { singleFlight: 'shared' }).then(() => added.push(performance.now() - returnedAt)),
        ),
      );
      added.sort((a, b) => a - b);
      const median = added[Math.floor(added.length / 2)] as number;
      console.log(`shared flight: waiters answered ${added.map((a) => a.toFixed(1)).join(', ')} ms after the holder's upstream returned`);
      // The safety check runs once a second: a median far below it is the message.
      expect(median).toBeLessThan(100);
    } finally {
      await closeAll(list);
    }
  });

  it('tells the waiters at once when the holder fails: each calls once, concurrently, without waiting out maxWait', async () => {
    const list = await caches(uniquePrefix('sf-fail'));
    try {
      let calls = 0;
      const started = performance.now();
      const outcomes = await Promise.allSettled(
        list.map((cache, i) =>
          cache.getOrSet(
            'k',
            async () => {
              calls++;
              await sleep(100);
              if (calls === 1 && i >= 0) throw new Error('the first call fails');
              return 'second';
            },
            { singleFlight: 'shared', lockTtl: 30 },
          ),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
      expect(calls).toBeLessThanOrEqual(PROCESSES);
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await closeAll(list);
    }
  });

  for (const how of ['shouldCache', 'noStore'] as const) {
    it(`tells the waiters at once when the holder's answer is not stored (${how}): each process calls once, never waiting out maxWait`, async () => {
      const list = await caches(uniquePrefix(`sf-${how}`));
      try {
        let calls = 0;
        const generate = async (q: string) => {
          calls++;
          await sleep(100);
          return `answer: ${q}`;
        };
        const gateways = list.map((cache) =>
          withCache({ model: 'm', generate }, { cache, namespace: 'gw', singleFlight: 'shared', lockTtl: 30, ...(how === 'shouldCache' ? { shouldCache: () => false } : {}) }),
        );
        const started = performance.now();
        const call = (g: (typeof gateways)[number]) => (how === 'noStore' ? withCacheControl({ noStore: true }, () => g.generate('q')) : g.generate('q'));
        expect(await Promise.all(gateways.flatMap((g) => [call(g), call(g)]))).toEqual(Array.from({ length: 8 }, () => 'answer: q'));
        expect(calls).toBeGreaterThan(1);
        expect(calls).toBeLessThanOrEqual(PROCESSES);
        // One holder's call, then the waiters' own calls in parallel: far below the 1 s safety check.
        expect(performance.now() - started).toBeLessThan(900);
      } finally {
        await closeAll(list);
      }
    });
  }

  it('keeps a long call\'s lock by heartbeat: nobody starts a second call while the holder beats', async () => {
    const list = await caches(uniquePrefix('sf-beat'), 2);
    try {
      let calls = 0;
      const slow = async () => {
        calls++;
        await sleep(1200);
        return 'done';
      };
      const first = list[0]!.getOrSet('k', slow, { singleFlight: 'shared', lockTtl: 0.3 });
      await sleep(50);
      const second = list[1]!.getOrSet('k', slow, { singleFlight: 'shared', lockTtl: 0.3, maxWait: 10_000 });
      expect(await Promise.all([first, second])).toEqual(['done', 'done']);
      expect(calls).toBe(1);
    } finally {
      await closeAll(list);
    }
  });

  it('never lets a holder that lost its lock overwrite the newer result', async () => {
    const prefix = uniquePrefix('sf-lost');
    const list = await caches(prefix, 2);
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const old = list[0]!.getOrSet(
        'k',
        async () => {
          await gate;
          return 'old';
        },
        { singleFlight: 'shared', lockTtl: 30 },
      );
      await sleep(50);
      // The lock expires under the holder (as when it was paused past lockTtl): another takes over and stores.
      expect(await raw.del(`${prefix}:f:g:k`)).toBe(1);
      expect(await list[1]!.getOrSet('k', async () => 'new', { singleFlight: 'shared' })).toBe('new');
      release();
      expect(await old).toBe('old');
      await sleep(50);
      expect(await list[0]!.get('k')).toBe('new');
    } finally {
      await closeAll(list);
    }
  });

  it('lets a waiter past maxWait call upstream itself', async () => {
    const prefix = uniquePrefix('sf-max');
    const [cache] = await caches(prefix, 1);
    try {
      await raw.set(`${prefix}:f:g:k`, 'another-process', 'PX', 60_000);
      const started = performance.now();
      expect(await cache!.getOrSet('k', async () => 'mine', { singleFlight: 'shared', maxWait: 300 })).toBe('mine');
      const took = performance.now() - started;
      expect(took).toBeGreaterThanOrEqual(290);
      expect(took).toBeLessThan(800);
    } finally {
      await cache!.close();
    }
  });

  it('starts a new call at most lockTtl + 100 ms after a holder stopped beating', async () => {
    const prefix = uniquePrefix('sf-dead');
    const [cache] = await caches(prefix, 1);
    try {
      // A holder that died right after its last beat: its lock lives out its TTL.
      await raw.set(`${prefix}:f:g:k`, 'dead-holder', 'PX', 500);
      const lastBeat = performance.now();
      let startedAt = 0;
      await cache!.getOrSet(
        'k',
        async () => {
          startedAt = performance.now();
          return 'v';
        },
        { singleFlight: 'shared', lockTtl: 0.5 },
      );
      expect(startedAt - lastBeat).toBeGreaterThanOrEqual(450);
      expect(startedAt - lastBeat).toBeLessThanOrEqual(600);
    } finally {
      await cache!.close();
    }
  });
});

describeWith('redis-server')('shared flights when Redis fails (own server)', () => {
  stopRedisServersAfterAll();

  it('fails open when the server hangs mid-wait: the waiter calls upstream within a bounded time, and counts an error', { timeout: 20_000 }, async () => {
    const server = await RedisServer.start();
    const prefix = uniquePrefix('sf-hang');
    const raw = new Redis(server.url);
    const cache = await createDragonflyCache({ url: server.url, keyPrefix: prefix, commandTimeout: 300 });
    try {
      await raw.set(`${prefix}:f:g:k`, 'another-process', 'PX', 60_000);
      const waiting = cache.getOrSet('k', async () => 'mine', { singleFlight: 'shared' });
      await sleep(100);
      server.pause();
      const paused = performance.now();
      expect(await waiting).toBe('mine');
      // The safety check (1 s) times out after commandTimeout: bounded, far below lockTtl.
      expect(performance.now() - paused).toBeLessThan(1000 + 300 + 300);
      server.resume();
      expect((await cache.stats()).errors).toBeGreaterThan(0);
    } finally {
      server.resume();
      raw.disconnect();
      await cache.close();
      await server.stop();
    }
  });

  it('calls upstream at once, counting an error, when the server is gone', { timeout: 20_000 }, async () => {
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, keyPrefix: uniquePrefix('sf-gone'), commandTimeout: 300 });
    const gateway = withCache({ model: 'm', generate: async (q: string) => `answer: ${q}` }, { cache, singleFlight: 'shared' });
    try {
      await server.kill();
      const started = performance.now();
      expect(await gateway.generate('q')).toBe('answer: q');
      expect(performance.now() - started).toBeLessThan(1500);
      expect(cacheStats(gateway).errors).toBeGreaterThan(0);
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});

describe('singleFlight on the memory backend', () => {
  it("collapses 'shared' calls of separate wrappers on one cache (one process: no lock)", async () => {
    const cache = createMemoryCache();
    let calls = 0;
    const generate = async (q: string) => {
      calls++;
      await sleep(20);
      return `answer: ${q}`;
    };
    const a = withCache({ model: 'm', generate }, { cache, namespace: 'gw', singleFlight: 'shared' });
    const b = withCache({ model: 'm', generate }, { cache, namespace: 'gw', singleFlight: 'shared' });
    expect(await Promise.all([a.generate('q'), b.generate('q')])).toEqual(['answer: q', 'answer: q']);
    expect(calls).toBe(1);
  });

  it("keeps 'local' wrappers apart, as before", async () => {
    const cache = createMemoryCache();
    let calls = 0;
    const generate = async (q: string) => {
      calls++;
      await sleep(20);
      return `answer: ${q}`;
    };
    const a = withCache({ model: 'm', generate }, { cache, namespace: 'gw' });
    const b = withCache({ model: 'm', generate }, { cache, namespace: 'gw' });
    await Promise.all([a.generate('q'), b.generate('q')]);
    expect(calls).toBe(2);
  });

  it('lets a refresh call upstream itself', async () => {
    const cache = createMemoryCache();
    let calls = 0;
    const task = memoizeTask(async function count(q: string) {
      calls++;
      return `${q}${calls}`;
    }, { cache });
    expect(await task('a')).toBe('a1');
    expect(await withCacheControl({ refresh: true }, () => task('a'))).toBe('a2');
  });
});

describe('singleFlight options', () => {
  const cache = createMemoryCache();
  const fn = async function fn() {
    return 1;
  };
  const bad: Record<string, unknown>[] = [
    { singleFlight: 'global' },
    { singleFlight: true },
    { singleFlight: 'shared', lockTtl: 0 },
    { singleFlight: 'shared', lockTtl: -1 },
    { singleFlight: 'shared', lockTtl: Infinity },
    { singleFlight: 'shared', lockTtl: '30' },
    { singleFlight: 'shared', maxWait: 0 },
    { singleFlight: 'shared', maxWait: Number.NaN },
    { singleFlight: 'local', lockTtl: 5 },
    { maxWait: 100 },
  ];

  it('refuses malformed values in getOrSet with a validation error naming the option', async () => {
    for (const options of bad) {
      const error = await cache.getOrSet('k', fn, options as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).toBeInstanceOf(CacheError);
      expect((error as CacheError).errorType).toBe('validation');
      expect((error as CacheError).message).toMatch(/singleFlight|lockTtl|maxWait/);
    }
  });

  it('refuses them in every wrapper at wrap time', () => {
    const wraps: ((o: Record<string, unknown>) => unknown)[] = [
      (o) => withCache({ generate: fn }, { cache, ...o }),
      (o) => cachedRag(fn, { cache, namespace: 'rag', ...o }),
      (o) => Cached({ cache, namespace: 'svc.m', ...o }),
      (o) => cachedOpenAI({ chat: { completions: { create: fn } } } as never, { cache, ...o }),
    ];
    for (const wrap of wraps) {
      for (const options of bad) expect(() => wrap(options), JSON.stringify(options)).toThrow(CacheError);
      expect(() => wrap({ singleFlight: 'shared', lockTtl: 5, maxWait: 100 })).not.toThrow();
    }
    // memoizeTask is shared by default: lockTtl alone is fine, and 'local' refuses it.
    expect(() => memoizeTask(fn, { cache, lockTtl: 5 })).not.toThrow();
    expect(() => memoizeTask(fn, { cache, singleFlight: 'local', lockTtl: 5 })).toThrow(/lockTtl needs singleFlight: 'shared', got "local"/);
    expect(() => withCache({ generate: fn }, { cache, maxWait: 100 })).toThrow(/maxWait needs singleFlight: 'shared', got none/);
    expect(() => memoizeTask(fn, { cache, singleFlight: 'shared', lockTtl: 0 })).toThrow(CacheError);
  });

  it('suggests the option meant for a misspelt one', () => {
    expect(() => withCache({ generate: fn }, { cache, singleflight: 'shared' } as never)).toThrow(/did you mean "singleFlight"/);
    expect(() => memoizeTask(fn, { cache, lockTTL: 5 } as never)).toThrow(/did you mean "lockTtl"/);
  });
});
