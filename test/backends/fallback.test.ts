import { afterAll, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createFallbackCache } from '../../src/backends/fallback.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError, DragonflyConnectionError } from '../../src/core/errors.js';
import { decode, encode } from '../../src/core/serialization.js';
import type { Cache } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';
import { registerCacheBehaviourSuite } from './behaviour-suite.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A primary that can be switched off: while `down`, every operation rejects
 * the way the Dragonfly backend does during an outage. Counts the calls it gets.
 */
function switchable(inner: Cache = createMemoryCache()) {
  const state = { down: false as false | 'connection' | 'timeout', calls: 0 };
  const cache = new Proxy(inner, {
    get(target, prop, receiver) {
      const member = Reflect.get(target, prop, receiver);
      if (typeof member !== 'function' || prop === 'close') return member;
      if (prop === 'keys') {
        return async function* (...args: unknown[]) {
          state.calls++;
          if (state.down) throw new DragonflyConnectionError(`primary is down (${state.down})`, state.down);
          yield* member.apply(target, args) as AsyncIterable<string>;
        };
      }
      return (...args: unknown[]) => {
        state.calls++;
        if (state.down) {
          if (prop === 'validate') return Promise.resolve(false);
          return Promise.reject(new DragonflyConnectionError(`primary is down (${state.down})`, state.down));
        }
        return member.apply(target, args);
      };
    },
  });
  return { cache, state };
}

/** `inner` with every operation answered after a random delay of up to `ms`, as a server over a network would. */
/** The value as the cache would encode it now; one it cannot encode is passed on for the cache to refuse. */
function snapshotOf(value: unknown): unknown {
  try {
    return decode(encode(value));
  } catch {
    return value;
  }
}

function delayed(inner: Cache, ms = 3): Cache {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const member = Reflect.get(target, prop, receiver);
      if (typeof member !== 'function') return member;
      if (prop === 'close' || prop === 'keys') return (...args: unknown[]) => member.apply(target, args);
      // A real client encodes a value when it is called, whatever the delay after: so does this one.
      if (prop === 'set' || prop === 'add' || prop === 'writeEntry') {
        return async (key: unknown, value: unknown, ...rest: unknown[]) => {
          const snapshot = snapshotOf(value);
          await sleep(Math.random() * ms);
          return member.apply(target, [key, snapshot, ...rest]);
        };
      }
      return async (...args: unknown[]) => {
        await sleep(Math.random() * ms);
        return member.apply(target, args);
      };
    },
  });
}

/**
 * 64 keys written 'old' on the primary, overwritten 'new' while it timed out
 * (the circuit stays closed), then read concurrently once it answers again.
 * Answers the number of reads that returned the pre-outage value.
 */
async function staleReadsAfterRecovery(inner: Cache): Promise<{ stale: number; reads: unknown[] }> {
  const { cache: primary, state } = switchable(inner);
  const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1000 });
  const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
  await cache.setMany(Object.fromEntries(keys.map((k) => [k, 'old'])));
  state.down = 'timeout';
  for (const k of keys) expect(await cache.set(k, 'new')).toBe(true);
  expect(cache.circuit()).toMatchObject({ state: 'closed', pendingInvalidations: 64 });
  state.down = false;
  const reads = await Promise.all(keys.map((k) => cache.get(k)));
  expect(cache.circuit().pendingInvalidations).toBe(0);
  await cache.clear();
  return { stale: reads.filter((v) => v === 'old').length, reads };
}

// The whole contract through a fallback cache whose primary works: it must behave as its primary does.
registerCacheBehaviourSuite(
  'fallback (memory primary)',
  async (options) => createFallbackCache({ primary: delayed(createMemoryCache({ ...options }), 1), fallback: createMemoryCache({ ...options }) }),
  { refusing: async () => createFallbackCache({ primary: createMemoryCache({ maxBytes: 512 }), fallback: createMemoryCache() }) },
);

describe('createFallbackCache', () => {
  it('refuses bad options at construction', () => {
    const primary = createMemoryCache();
    const fallback = createMemoryCache();
    expect(() => createFallbackCache({ primary, fallback, failureThreshold: 0 })).toThrow(CacheError);
    expect(() => createFallbackCache({ primary, fallback, failureThreshold: 1.5 })).toThrow(CacheError);
    expect(() => createFallbackCache({ primary, fallback, resetTimeout: -1 })).toThrow(CacheError);
    expect(() => createFallbackCache({ primary, fallback: primary })).toThrow(CacheError);
    expect(() => createFallbackCache({ primary, fallback: {} as Cache })).toThrow(CacheError);
  });

  it('refuses a resetTimeout written in seconds (below 10 ms), naming the milliseconds probably meant', () => {
    const primary = createMemoryCache();
    const fallback = createMemoryCache();
    expect(() => createFallbackCache({ primary, fallback, resetTimeout: 5 })).toThrow(
      'createFallbackCache: resetTimeout is in milliseconds and must be at least 10, got 5 (a number) (did you mean 5000, that is 5 s?)',
    );
    expect(() => createFallbackCache({ primary, fallback, resetTimeout: 10 })).not.toThrow();
  });

  it('refuses an unknown option, naming the option probably meant', () => {
    const primary = createMemoryCache();
    const fallback = createMemoryCache();
    expect(() => createFallbackCache({ primary, fallback, resetTimeOut: 1000 } as never)).toThrow(
      'createFallbackCache: unknown option "resetTimeOut" (did you mean "resetTimeout"?)',
    );
    expect(() => createFallbackCache({ primary, fallback, threshold: 1 } as never)).toThrow('createFallbackCache: unknown option "threshold"');
    expect(() => createFallbackCache({ primary, fallback, failureThreshold: '3' } as never)).toThrow(
      'createFallbackCache: failureThreshold must be a positive integer, got "3" (a string)',
    );
  });

  it('refuses unknown per-call options before routing, whatever the circuit state', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 60_000 });
    await expect(cache.set('k', 1, { TTL: 5 } as never)).rejects.toThrow('set: unknown option "TTL" (did you mean "ttl"?)');
    state.down = 'connection';
    await cache.get('x');
    expect(cache.circuit().state).toBe('open');
    await expect(cache.get('k', { tenantID: 'a' } as never)).rejects.toThrow('get: unknown option "tenantID" (did you mean "tenantId"?)');
    await expect(cache.set('k', 1, 300 as never)).rejects.toThrow('set: options must be an object such as { ttl: 300 }, got 300 (a number)');
    expect(cache.circuit().pendingInvalidations).toBe(0);
  });

  it('uses only the primary while it works', async () => {
    const { cache: primary } = switchable();
    const fallback = createMemoryCache();
    const cache = createFallbackCache({ primary, fallback });
    expect(await cache.set('a', 1)).toBe(true);
    expect(await cache.get('a')).toBe(1);
    expect(await primary.get('a')).toBe(1);
    expect(await fallback.get('a')).toBeUndefined();
    expect(cache.circuit()).toMatchObject({ state: 'closed', fallbackCalls: 0, opened: 0 });
  });

  it('answers from the fallback when the primary fails, and opens after failureThreshold consecutive failures', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 3, resetTimeout: 60_000 });
    state.down = 'timeout';
    expect(await cache.set('a', 1)).toBe(true);
    expect(cache.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    expect(await cache.get('a')).toBe(1);
    state.down = 'connection';
    expect(await cache.getMany(['a', 'b'])).toEqual(new Map([['a', 1]]));
    expect(cache.circuit()).toMatchObject({ state: 'open', consecutiveFailures: 3, opened: 1 });
    const before = state.calls;
    for (let i = 0; i < 100; i++) await cache.set(`k${i}`, i);
    expect(await cache.get('k99')).toBe(99);
    // Open: the dead primary is not touched at all.
    expect(state.calls).toBe(before);
  });

  it('a success between failures resets the count', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 2 });
    state.down = 'connection';
    await cache.get('a');
    state.down = false;
    await cache.get('a');
    state.down = 'connection';
    await cache.get('a');
    expect(cache.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
  });

  it('after resetTimeout (milliseconds) lets exactly one probe through; a failed probe reopens, a good one closes', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 100 });
    state.down = 'connection';
    await cache.get('a');
    expect(cache.circuit().state).toBe('open');
    await sleep(120);
    let before = state.calls;
    await Promise.all(Array.from({ length: 20 }, () => cache.get('a')));
    expect(state.calls - before).toBe(1);
    expect(cache.circuit()).toMatchObject({ state: 'open', opened: 1 });
    state.down = false;
    before = state.calls;
    await Promise.all(Array.from({ length: 20 }, () => cache.get('a')));
    expect(state.calls - before).toBe(0);
    await sleep(120);
    expect(await cache.set('b', 2)).toBe(true);
    expect(cache.circuit().state).toBe('closed');
    expect(await primary.get('b')).toBe(2);
  });

  it('never swallows validation errors, whatever the circuit state, and does not count them as failures', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 60_000 });
    const bad: (() => Promise<unknown>)[] = [
      () => cache.get(''),
      () => cache.set('k', 1, { ttl: -1 }),
      () => cache.set('k', undefined),
      () => cache.set('k', 1, { tenantId: '' }),
      () => cache.delete(42 as unknown as string),
      () => cache.clearPattern(''),
      () => cache.getMany('abc' as unknown as string[]),
      () => cache.setMany({ '': 1 }),
    ];
    for (const call of bad) await expect(call()).rejects.toBeInstanceOf(CacheError);
    expect(cache.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    state.down = 'connection';
    await cache.get('x');
    expect(cache.circuit().state).toBe('open');
    for (const call of bad) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CacheError);
      expect(['validation', 'serialization']).toContain((error as CacheError).errorType);
    }
  });

  it('passes server errors through instead of routing around them', async () => {
    const inner = createMemoryCache();
    const primary = new Proxy(inner, {
      get: (target, prop) => (prop === 'get' ? () => Promise.reject(new CacheError('WRONGTYPE', 'server')) : Reflect.get(target, prop)),
    });
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1 });
    await expect(cache.get('a')).rejects.toMatchObject({ errorType: 'server' });
    expect(cache.circuit().state).toBe('closed');
  });

  it('passes a refused write through, as the primary answered it, without counting a failure', async () => {
    const cache = createFallbackCache({ primary: createMemoryCache({ maxBytes: 100 }), fallback: createMemoryCache(), failureThreshold: 1 });
    await expect(cache.add('lock', 'x'.repeat(200))).rejects.toMatchObject({ errorType: 'refused' });
    expect(await cache.set('k', 'x'.repeat(200))).toBe(false);
    expect(cache.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 0, fallbackCalls: 0 });
  });

  it('never serves a value older than one written or deleted during the outage once the primary is back', async () => {
    const { cache: primary, state } = switchable();
    const fallback = createMemoryCache();
    const cache = createFallbackCache({ primary, fallback, failureThreshold: 1, resetTimeout: 50 });
    await cache.setMany({ overwritten: 'old', deleted: 'old', patterned: 'old', kept: 'old' });
    await cache.set('mine', 'old', { tenantId: 'acme' });
    state.down = 'connection';
    expect(await cache.set('overwritten', 'new')).toBe(true);
    expect(await cache.delete('deleted')).toBe(false);
    expect(await cache.clearPattern('patt*')).toBe(0);
    expect(await cache.set('mine', 'new', { tenantId: 'acme' })).toBe(true);
    expect(await cache.get('overwritten')).toBe('new');
    expect(cache.circuit().pendingInvalidations).toBe(4);
    state.down = false;
    await sleep(60);
    // The probe replays the invalidations before it answers.
    expect(await cache.get('overwritten')).toBeUndefined();
    expect(cache.circuit()).toMatchObject({ state: 'closed', pendingInvalidations: 0 });
    expect(await cache.get('deleted')).toBeUndefined();
    expect(await cache.get('patterned')).toBeUndefined();
    expect(await cache.get('mine', { tenantId: 'acme' })).toBeUndefined();
    expect(await cache.get('kept')).toBe('old');
    // The fallback was emptied, so a later outage cannot serve this outage's entries.
    expect((await fallback.stats()).size).toBe(0);
  });

  it('replays a tag invalidation made during the outage to the primary before it answers again, as it does deletes', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 50 });
    await cache.set('a', 'from doc 1', { tags: ['doc:1'] });
    await cache.set('b', 'from doc 2', { tags: ['doc:2'] });
    await cache.set('t', 'tenant', { tags: ['doc:1'], tenantId: 'acme' });
    state.down = 'connection';
    await expect(cache.invalidateTags(['doc:1'])).resolves.toBeUndefined();
    await cache.invalidateTags(['doc:1'], { tenantId: 'acme' });
    expect(cache.circuit().pendingInvalidations).toBe(2);
    state.down = false;
    await sleep(60);
    expect(await cache.get('a')).toBeUndefined();
    expect(cache.circuit()).toMatchObject({ state: 'closed', pendingInvalidations: 0 });
    expect(await cache.get('t', { tenantId: 'acme' })).toBeUndefined();
    expect(await cache.get('b')).toBe('from doc 2');
    expect(await primary.get('a')).toBeUndefined();
  });

  it('getOrSet answers from the fallback while the primary is down, and counts its stale answers in stats', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 10_000 });
    state.down = 'connection';
    expect(await cache.getOrSet('k', async () => 'computed', { ttl: 0.2, grace: 10 })).toBe('computed');
    expect(await cache.getOrSet('k', async () => 'again')).toBe('computed');
    await sleep(300);
    expect(await cache.getOrSet('k', () => Promise.reject(new Error('upstream down')), { ttl: 0.2, grace: 10 })).toBe('computed');
    expect((await cache.stats()).staleHits).toBe(1);
  });

  it('a write that failed while the circuit was still closed is invalidated on the primary before the next read', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 5 });
    await cache.set('k', 'old');
    state.down = 'timeout';
    expect(await cache.set('k', 'new')).toBe(true);
    state.down = false;
    expect(await cache.get('k')).toBeUndefined();
    expect(cache.circuit().state).toBe('closed');
  });

  it('concurrent reads right after recovery wait for the whole invalidation replay: none returns a pre-outage value', async () => {
    const { stale, reads } = await staleReadsAfterRecovery(delayed(createMemoryCache()));
    expect(stale).toBe(0);
    // Invalidated everywhere: a miss, never 'old' (nor the outage's own value, which the fallback dropped).
    expect(reads.every((v) => v === undefined)).toBe(true);
  });

  it('validate answers about the primary while the circuit is closed, and about the fallback while it is open', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 2, resetTimeout: 60_000 });
    expect(await cache.validate()).toBe(true);
    state.down = 'connection';
    expect(cache.circuit().state).toBe('closed');
    expect(await cache.validate()).toBe(false);
    await cache.get('a');
    await cache.get('a');
    expect(cache.circuit().state).toBe('open');
    expect(await cache.validate()).toBe(true);
  });

  it('too many invalidations during one outage clear the primary namespace on recovery', async () => {
    const { cache: primary, state } = switchable();
    const cache = createFallbackCache({ primary, fallback: createMemoryCache({ maxSize: 20_000 }), failureThreshold: 1, resetTimeout: 50 });
    await cache.set('before', 1);
    state.down = 'connection';
    await cache.setMany(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i] as const));
    expect(cache.circuit().pendingInvalidations).toBe(Infinity);
    state.down = false;
    await sleep(60);
    expect(await cache.get('before')).toBeUndefined();
    expect((await primary.stats()).size).toBe(0);
  });

  describe('with a primary given as a function (the server may be down at boot)', () => {
    it('says so once, fails validate(), and stops retrying when the function rejects with a mistake, not an outage', async () => {
      const warnings: Error[] = [];
      const logged: string[] = [];
      const listen = (warning: Error) => warnings.push(warning);
      process.on('warning', listen);
      let calls = 0;
      try {
        const primary = () => {
          calls++;
          return Promise.reject(new CacheError('createDragonflyCache: url must be a redis:// or rediss:// URL', 'validation'));
        };
        const logger = { error: (m: string) => logged.push(m), warn: () => {}, info: () => {}, debug: () => {} };
        const cache = createFallbackCache({ primary, fallback: createMemoryCache(), resetTimeout: 20, logger });
        const errors: unknown[] = [];
        cache.on('error', (event) => errors.push(event.error));
        expect(await cache.set('k', 1)).toBe(true);
        await sleep(120);
        expect(calls).toBe(1);
        expect(await cache.validate()).toBe(false);
        await new Promise((resolve) => setImmediate(resolve));
        const ours = warnings.filter((w) => (w as { code?: string }).code === 'CACHEKIT_PRIMARY_MISCONFIGURED');
        expect(ours).toHaveLength(1);
        expect(ours[0]!.message).toContain('url must be a redis:// or rediss:// URL');
        expect(logged).toHaveLength(1);
        expect(cache.circuit()).toMatchObject({ connecting: true, lastConnectError: expect.objectContaining({ errorType: 'validation' }) });
        await cache.close();
      } finally {
        process.off('warning', listen);
      }
    });

    it('keeps retrying a primary the server refuses (a db out of range, wrong credentials), warning once, not once per attempt', async () => {
      const warnings: Error[] = [];
      const listen = (warning: Error) => warnings.push(warning);
      process.on('warning', listen);
      let calls = 0;
      try {
        const primary = () => {
          calls++;
          return Promise.reject(new CacheError('createDragonflyCache: the server refused SELECT 99: ERR DB index is out of range', 'server'));
        };
        const cache = createFallbackCache({ primary, fallback: createMemoryCache(), resetTimeout: 20 });
        await sleep(150);
        expect(calls).toBeGreaterThan(2);
        expect(await cache.validate()).toBe(false);
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings.filter((w) => (w as { code?: string }).code === 'CACHEKIT_PRIMARY_MISCONFIGURED')).toHaveLength(1);
        await cache.close();
      } finally {
        process.off('warning', listen);
      }
    });

    it('starts at once while the function rejects, answers from the fallback, and retries in the background every resetTimeout', async () => {
      let calls = 0;
      const primary = () => {
        calls++;
        return Promise.reject(new DragonflyConnectionError('could not connect to Dragonfly at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1'));
      };
      const cache = createFallbackCache({ primary, fallback: createMemoryCache(), resetTimeout: 50 });
      try {
        expect(calls).toBe(1);
        expect(await cache.set('k', 1)).toBe(true);
        expect(await cache.get('k')).toBe(1);
        // Never on a caller's path: calls do not call the function.
        for (let i = 0; i < 50; i++) await cache.get('k');
        expect(calls).toBe(1);
        expect(cache.circuit()).toMatchObject({ state: 'open', connecting: true, connectAttempts: 1, primaryCalls: 0, opened: 0 });
        expect(cache.circuit().lastConnectError).toBeInstanceOf(DragonflyConnectionError);
        expect(await cache.validate()).toBe(true);
        await sleep(230);
        // Spaced by resetTimeout: about 4 more attempts in 230 ms, never a tight loop.
        expect(calls).toBeGreaterThanOrEqual(3);
        expect(calls).toBeLessThanOrEqual(6);
      } finally {
        await cache.close();
      }
      const afterClose = calls;
      await sleep(120);
      expect(calls).toBe(afterClose);
    });

    it('moves to the primary once the function resolves, invalidating there everything written, deleted or cleared before', async () => {
      const { cache: inner } = switchable();
      await inner.setMany({ written: 'old', deleted: 'old', patterned: 'old', kept: 'old' });
      await inner.set('mine', 'old', { tenantId: 'acme' });
      let up = false;
      const primary = () => (up ? Promise.resolve(inner) : Promise.reject(new DragonflyConnectionError('down')));
      const fallback = createMemoryCache();
      const cache = createFallbackCache({ primary, fallback, resetTimeout: 30 });
      expect(await cache.set('written', 'new')).toBe(true);
      expect(await cache.delete('deleted')).toBe(false);
      expect(await cache.clearPattern('patt*')).toBe(0);
      expect(await cache.set('mine', 'new', { tenantId: 'acme' })).toBe(true);
      expect(await cache.get('written')).toBe('new');
      expect(cache.circuit().pendingInvalidations).toBe(4);
      up = true;
      for (let i = 0; i < 50 && cache.circuit().connecting; i++) await sleep(10);
      expect(cache.circuit()).toMatchObject({ state: 'closed', connecting: false, lastConnectError: undefined });
      const reads = await Promise.all(['written', 'deleted', 'patterned', 'kept'].map((k) => cache.get(k)));
      expect(reads).toEqual([undefined, undefined, undefined, 'old']);
      expect(await cache.get('mine', { tenantId: 'acme' })).toBeUndefined();
      expect(cache.circuit().pendingInvalidations).toBe(0);
      expect(await cache.set('after', 1)).toBe(true);
      expect(await inner.get('after')).toBe(1);
      expect((await fallback.stats()).size).toBe(0);
      await cache.close();
    });

    it('a clear before the primary arrives clears the primary namespace when it does', async () => {
      const inner = createMemoryCache();
      await inner.set('k', 'old');
      let resolve!: (cache: Cache) => void;
      const cache = createFallbackCache({ primary: () => new Promise<Cache>((r) => (resolve = r)), fallback: createMemoryCache() });
      await cache.clear();
      resolve(inner);
      await sleep(0);
      expect(await cache.get('k')).toBeUndefined();
      expect((await inner.stats()).size).toBe(0);
      await cache.close();
    });

    it('close() closes a primary that arrives later, and stops retrying', async () => {
      let resolve!: (cache: Cache) => void;
      const late = createMemoryCache();
      const cache = createFallbackCache({ primary: () => new Promise<Cache>((r) => (resolve = r)), fallback: createMemoryCache() });
      await cache.close();
      resolve(late);
      await sleep(0);
      await expect(late.get('k')).rejects.toMatchObject({ errorType: 'closed' });
      await expect(cache.get('k')).rejects.toMatchObject({ errorType: 'closed' });
      expect(cache.circuit().connecting).toBe(false);
    });

    it('a function that throws counts as a failed attempt and is retried; one that resolves to something else than a Cache is a mistake, not retried', async () => {
      let calls = 0;
      const primary = (() => {
        calls++;
        if (calls === 1) throw new Error('sync failure');
        return Promise.resolve(createMemoryCache());
      }) as () => Promise<Cache>;
      const cache = createFallbackCache({ primary, fallback: createMemoryCache(), resetTimeout: 20 });
      expect(cache.circuit().lastConnectError).toBeUndefined();
      await sleep(0);
      expect((cache.circuit().lastConnectError as Error).message).toBe('sync failure');
      for (let i = 0; i < 50 && cache.circuit().connecting; i++) await sleep(10);
      expect(calls).toBe(2);
      expect(cache.circuit().state).toBe('closed');
      await cache.close();

      let wrongCalls = 0;
      const wrong = createFallbackCache({
        primary: (() => {
          wrongCalls++;
          return Promise.resolve({ not: 'a cache' });
        }) as unknown as () => Promise<Cache>,
        fallback: createMemoryCache(),
        resetTimeout: 20,
      });
      await sleep(100);
      expect(wrongCalls).toBe(1);
      expect(wrong.circuit().lastConnectError).toMatchObject({ errorType: 'validation', message: expect.stringContaining('must resolve to a Cache') });
      await wrong.close();
    });
  });

  describe('keys', () => {
    async function list(cache: Cache, pattern = '*'): Promise<string[]> {
      const out: string[] = [];
      for await (const key of cache.keys(pattern)) out.push(key);
      return out.sort();
    }

    it("lists the primary's keys while closed, the fallback's while open, and the primary's again after the invalidations landed", async () => {
      const { cache: primary, state } = switchable();
      const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1, resetTimeout: 50 });
      await cache.setMany({ a: 1, b: 2, c: 3 });
      expect(await list(cache)).toEqual(['a', 'b', 'c']);
      state.down = 'connection';
      // An outage before the first key: answered by the fallback, counted as a failure.
      expect(await list(cache)).toEqual([]);
      expect(cache.circuit()).toMatchObject({ state: 'open', consecutiveFailures: 1 });
      await cache.set('during', 1);
      await cache.delete('b');
      expect(await list(cache)).toEqual(['during']);
      state.down = false;
      await sleep(60);
      expect(await list(cache)).toEqual(['a', 'c']);
      expect(cache.circuit()).toMatchObject({ state: 'closed', pendingInvalidations: 0 });
    });

    it('an outage after keys were listed rejects the listing instead of switching caches half-way', async () => {
      const inner = createMemoryCache();
      await inner.setMany({ a: 1, b: 2 });
      const primary = new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop !== 'keys') return Reflect.get(target, prop, receiver);
          return async function* () {
            yield 'a';
            throw new DragonflyConnectionError('link dropped', 'connection');
          };
        },
      });
      const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 1 });
      const listed: string[] = [];
      await expect(
        (async () => {
          for await (const key of cache.keys('*')) listed.push(key);
        })(),
      ).rejects.toBeInstanceOf(DragonflyConnectionError);
      expect(listed).toEqual(['a']);
    });
  });

  it('closes both caches', async () => {
    const primary = createMemoryCache();
    const fallback = createMemoryCache();
    const cache = createFallbackCache({ primary, fallback });
    await cache.close();
    await expect(primary.get('a')).rejects.toMatchObject({ errorType: 'closed' });
    await expect(fallback.get('a')).rejects.toMatchObject({ errorType: 'closed' });
  });
});

describeWith('redis')('createFallbackCache in front of the Redis at REDIS_URL', () => {
  it('concurrent reads right after recovery never return a value overwritten during the outage', async () => {
    const dragonfly = await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('fallback-stale') });
    try {
      const { stale } = await staleReadsAfterRecovery(dragonfly);
      expect(stale).toBe(0);
    } finally {
      await dragonfly.clear();
      await dragonfly.close();
    }
  });
});

describeWith('redis-server')('createFallbackCache in front of a real redis-server that dies and comes back', () => {
  stopRedisServersAfterAll();

  it('starts while the server is down at boot (primary: () => createDragonflyCache(...)) and moves to it once it is up', async () => {
    const server = await RedisServer.start();
    await server.kill();
    const cache = createFallbackCache({
      primary: () => createDragonflyCache({ url: server.url, keyPrefix: 'boot', connectTimeout: 300, commandTimeout: 300 }),
      fallback: createMemoryCache(),
      resetTimeout: 200,
    });
    try {
      const started = performance.now();
      expect(await cache.set('k', 'during')).toBe(true);
      expect(await cache.get('k')).toBe('during');
      expect(performance.now() - started).toBeLessThan(50);
      await sleep(300);
      expect(cache.circuit()).toMatchObject({ state: 'open', connecting: true });
      expect((cache.circuit().lastConnectError as Error).message).toMatch(/ECONNREFUSED/);
      await server.restart();
      const upAt = performance.now();
      while (cache.circuit().connecting && performance.now() - upAt < 5000) await sleep(20);
      expect(cache.circuit()).toMatchObject({ state: 'closed', connecting: false });
      // Written during the outage: invalidated, never served from the fallback now that the server is back.
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.set('k', 'after')).toBe(true);
      const direct = await createDragonflyCache({ url: server.url, keyPrefix: 'boot' });
      expect(await direct.get('k')).toBe('after');
      await direct.close();
      expect(await cache.validate()).toBe(true);
    } finally {
      await cache.close();
      await server.stop();
    }
  });
  const report: string[] = [];
  afterAll(() => {
    if (report.length > 0) console.log(`[reliability] fallback cache\n${report.join('\n')}`);
  });

  it('keeps every operation succeeding while the server is down, without hammering it, and returns to it after recovery', async () => {
    const COMMAND_TIMEOUT = 300;
    const RESET_TIMEOUT = 500;
    const server = await RedisServer.start();
    const dragonfly = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'fallback' });
    const { cache: primary, state } = switchable(dragonfly);
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 3, resetTimeout: RESET_TIMEOUT });
    try {
      expect(await cache.set('before', 'old')).toBe(true);
      await server.kill();
      const downAt = performance.now();
      let ops = 0;
      let maxMs = 0;
      const callsAtKill = state.calls;
      // 2 s of outage with a steady stream of calls: every one answers.
      while (performance.now() - downAt < 2000) {
        const start = performance.now();
        const i = ops++;
        expect(await cache.set(`k${i % 50}`, i)).toBe(true);
        expect(await cache.get(`k${i % 50}`)).toBe(i);
        await cache.getMany([`k${i % 50}`, 'before']);
        maxMs = Math.max(maxMs, performance.now() - start);
        await sleep(2);
      }
      expect(await cache.set('before', 'new')).toBe(true);
      const primaryCallsWhileDown = state.calls - callsAtKill;
      const attempted = ops * 3 + 1;
      // failureThreshold calls, then one probe per resetTimeout at most.
      expect(primaryCallsWhileDown).toBeLessThanOrEqual(3 + Math.ceil(2000 / RESET_TIMEOUT) + 1);
      expect(cache.circuit().state).not.toBe('closed');

      await server.restart();
      const restartedAt = performance.now();
      while (cache.circuit().state !== 'closed' && performance.now() - restartedAt < 10_000) {
        await cache.get('before');
        await sleep(10);
      }
      const recoveryMs = performance.now() - restartedAt;
      expect(cache.circuit().state).toBe('closed');
      // Bounded by resetTimeout plus the client's reconnection (at most 1 s between attempts).
      expect(recoveryMs).toBeLessThanOrEqual(RESET_TIMEOUT + 2500);
      expect(await cache.set('after', 'back')).toBe(true);
      expect(await dragonfly.get('after')).toBe('back');
      expect(await cache.get('before')).toBeUndefined();
      report.push(
        `  SIGKILL 2 s + restart: ops attempted during outage ${attempted}, exceptions 0, primary calls while down ${primaryCallsWhileDown}, ` +
          `max op ${maxMs.toFixed(0)} ms, back on the primary ${recoveryMs.toFixed(0)} ms after the restart, circuit opened ${cache.circuit().opened}x`,
      );
    } finally {
      await cache.close();
      await server.stop();
    }
  });
  it('on a hung server only failureThreshold calls wait for commandTimeout; the rest answer from the fallback at once', async () => {
    const COMMAND_TIMEOUT = 300;
    const RESET_TIMEOUT = 500;
    const server = await RedisServer.start();
    const dragonfly = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'fallback-hung' });
    const { cache: primary, state } = switchable(dragonfly);
    const cache = createFallbackCache({ primary, fallback: createMemoryCache(), failureThreshold: 3, resetTimeout: RESET_TIMEOUT });
    try {
      await cache.set('k', 0);
      server.pause();
      const pausedAt = performance.now();
      const callsAtPause = state.calls;
      const durations: number[] = [];
      while (performance.now() - pausedAt < 2000) {
        const start = performance.now();
        expect(await cache.set('k', durations.length)).toBe(true);
        durations.push(performance.now() - start);
        await sleep(5);
      }
      const waited = durations.filter((ms) => ms >= COMMAND_TIMEOUT * 0.9).length;
      const primaryCalls = state.calls - callsAtPause;
      expect(Math.max(...durations)).toBeLessThanOrEqual(COMMAND_TIMEOUT + 250);
      // The threshold, then at most one probe per resetTimeout.
      expect(waited).toBeLessThanOrEqual(3 + Math.ceil(2000 / RESET_TIMEOUT));
      server.resume();
      const resumedAt = performance.now();
      while (cache.circuit().state !== 'closed' && performance.now() - resumedAt < 10_000) {
        await cache.get('k');
        await sleep(10);
      }
      const recoveryMs = performance.now() - resumedAt;
      expect(cache.circuit().state).toBe('closed');
      expect(await cache.set('k', 'back')).toBe(true);
      expect(await dragonfly.get('k')).toBe('back');
      report.push(
        `  SIGSTOP 2 s + SIGCONT: calls ${durations.length}, exceptions 0, calls that waited for commandTimeout ${waited}, primary calls while hung ${primaryCalls}, ` +
          `max op ${Math.max(...durations).toFixed(0)} ms, back on the primary ${recoveryMs.toFixed(0)} ms after SIGCONT`,
      );
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});
