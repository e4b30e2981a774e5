import { describe, expect, it } from 'vitest';
import { cacheGetOrSet } from '../../src/core/functions.js';
import type { Cache } from '../../src/core/types.js';

// getOrSet, grace and tags: the part of the Cache contract the behaviour suite
// registers for every backend (memory, Redis, the Redis Cluster, the fallback cache).

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An error as the SDKs raise them: an HTTP status. */
function httpError(status: number): Error {
  return Object.assign(new Error(`upstream answered ${status}`), { status });
}

// Short enough to wait out, long enough for the checks right after a write on a loaded machine.
const TTL = 0.3;
const PAST_TTL_MS = 450;
const GRACE = 5;

export function registerFreshnessSuite(fresh: () => Promise<Cache>): void {
  describe('getOrSet', () => {
    it('computes a missing value once, stores it, and answers the next calls from the cache', async () => {
      const cache = await fresh();
      let calls = 0;
      const factory = async () => ({ n: ++calls });
      expect(await cache.getOrSet('k', factory, { ttl: 60 })).toEqual({ n: 1 });
      expect(await cache.getOrSet('k', factory, { ttl: 60 })).toEqual({ n: 1 });
      expect(await cache.get('k')).toEqual({ n: 1 });
      expect(calls).toBe(1);
      expect(await cacheGetOrSet(cache, 'k', factory)).toEqual({ n: 1 });
    });

    it('makes one factory call for concurrent identical calls, each caller getting its own copy', async () => {
      const cache = await fresh();
      let calls = 0;
      const factory = async () => {
        calls++;
        await sleep(30);
        return { list: [1, 2] };
      };
      const answers = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', factory)));
      expect(calls).toBe(1);
      answers[0]!.list.push(3);
      for (const answer of answers.slice(1)) expect(answer).toEqual({ list: [1, 2] });
      expect(await cache.get('k')).toEqual({ list: [1, 2] });
    });

    it('keeps tenants apart: one tenant is never answered with another tenant\'s value, and they never share a call', async () => {
      const cache = await fresh();
      const [a, b] = await Promise.all([
        cache.getOrSet('k', async () => 'for a', { tenantId: 'a' }),
        cache.getOrSet('k', async () => 'for b', { tenantId: 'b' }),
      ]);
      expect([a, b]).toEqual(['for a', 'for b']);
      expect(await cache.getOrSet('k', async () => 'untenanted')).toBe('untenanted');
      expect(await cache.get('k', { tenantId: 'a' })).toBe('for a');
    });

    it('passes a factory rejection to every caller and stores nothing', async () => {
      const cache = await fresh();
      const failing = async (): Promise<number> => {
        await sleep(10);
        throw new Error('upstream down');
      };
      const results = await Promise.allSettled([cache.getOrSet('k', failing), cache.getOrSet('k', failing)]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.getOrSet('k', async () => 2)).toBe(2);
    });

    it('answers a value the cache cannot store (a class instance) without storing it, counted in errors', async () => {
      const cache = await fresh();
      class Point {
        x = 1;
      }
      const before = (await cache.stats()).errors;
      const point = await cache.getOrSet('k', async () => new Point());
      expect(point).toBeInstanceOf(Point);
      await sleep(20);
      expect(await cache.get('k')).toBeUndefined();
      expect((await cache.stats()).errors).toBe(before + 1);
    });

    it('stores with the ttl given', async () => {
      const cache = await fresh();
      let calls = 0;
      await cache.getOrSet('k', async () => ++calls, { ttl: TTL });
      await sleep(PAST_TTL_MS);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.getOrSet('k', async () => ++calls, { ttl: TTL })).toBe(2);
    });

    it('refuses bad options with a validation error naming the option, before the factory runs', async () => {
      const cache = await fresh();
      let calls = 0;
      const factory = async () => ++calls;
      const refused = async (options: unknown, message: RegExp) => {
        const error = await cache.getOrSet('k', factory, options as never).then(() => undefined, (e: unknown) => e);
        expect(error).toMatchObject({ errorType: 'validation' });
        expect((error as Error).message).toMatch(message);
      };
      await refused({ TTL: 5 }, /unknown option "TTL" \(did you mean "ttl"\?\)/);
      await refused({ grace: 0 }, /grace must be a positive finite number of seconds/);
      await refused({ grace: '5' }, /grace must be/);
      await refused({ softTimeout: 10 }, /softTimeout needs grace/);
      await refused({ graceBackoff: 10 }, /graceBackoff needs grace/);
      await refused({ grace: 1, softTimeout: -1 }, /softTimeout must be a non-negative number of milliseconds/);
      await refused({ grace: 1, graceBackoff: 0 }, /graceBackoff must be a positive number of milliseconds/);
      await refused({ grace: 1, shouldServeStale: true }, /shouldServeStale must be a function/);
      await refused({ tags: 'doc:1' }, /tags must be an array of strings/);
      await refused({ tags: [''] }, /tag must not be empty/);
      await refused({ ttl: 0 }, /ttl must be a positive number/);
      const notAFunction = await cache.getOrSet('k', 42 as never).then(() => undefined, (e: unknown) => e);
      expect(notAFunction).toMatchObject({ errorType: 'validation', message: expect.stringMatching(/factory must be a function/) });
      expect(calls).toBe(0);
    });
  });

  describe('grace and stale-if-error', () => {
    it('keeps an entry past its ttl for getOrSet only: get never returns it, readEntry marks it stale', async () => {
      const cache = await fresh();
      await cache.getOrSet('k', async () => 'v1', { ttl: TTL, grace: GRACE });
      expect(await cache.readEntry('k')).toEqual({ value: 'v1', stale: false });
      await sleep(PAST_TTL_MS);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.getMany(['k'])).toEqual(new Map());
      expect(await cache.readEntry('k')).toEqual({ value: 'v1', stale: true });
    });

    it('answers with the stale value when the factory fails, and counts it in staleHits', async () => {
      const cache = await fresh();
      await cache.getOrSet('k', async () => ({ answer: 'v1' }), { ttl: TTL, grace: GRACE });
      await sleep(PAST_TTL_MS);
      const before = (await cache.stats()).staleHits;
      const served = await cache.getOrSet('k', async () => Promise.reject(httpError(500)), { ttl: TTL, grace: GRACE });
      expect(served).toEqual({ answer: 'v1' });
      expect((await cache.stats()).staleHits).toBe(before + 1);
    });

    it('answers with the fresh value once the factory works again, and stores it', async () => {
      const cache = await fresh();
      await cache.getOrSet('k', async () => 'v1', { ttl: TTL, grace: GRACE });
      await sleep(PAST_TTL_MS);
      expect(await cache.getOrSet('k', async () => 'v2', { ttl: TTL, grace: GRACE })).toBe('v2');
      expect(await cache.get('k')).toBe('v2');
    });

    it('does not serve stale for the caller\'s own errors (a 400, an abort) unless shouldServeStale says so', async () => {
      const cache = await fresh();
      const options = { ttl: TTL, grace: GRACE };
      await cache.getOrSet('k', async () => 'v1', options);
      await sleep(PAST_TTL_MS);
      await expect(cache.getOrSet('k', async () => Promise.reject(httpError(400)), options)).rejects.toThrow('400');
      const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
      await expect(cache.getOrSet('k2', async () => 'x', options)).resolves.toBe('x');
      await sleep(PAST_TTL_MS);
      await expect(cache.getOrSet('k2', async () => Promise.reject(abort), options)).rejects.toThrow('aborted');
      for (const key of ['s408', 's409', 's429', 's503', 'never']) {
        await expect(cache.getOrSet(key, async () => 'old', options)).resolves.toBe('old');
      }
      await sleep(PAST_TTL_MS);
      for (const status of [408, 409, 429, 503]) {
        await expect(cache.getOrSet(`s${status}`, async () => Promise.reject(httpError(status)), options)).resolves.toBe('old');
      }
      const never = { ...options, shouldServeStale: () => false };
      await expect(cache.getOrSet('never', async () => Promise.reject(httpError(503)), never)).rejects.toThrow('503');
    });

    it('never serves a stale value past its grace', async () => {
      const cache = await fresh();
      await cache.getOrSet('k', async () => 'v1', { ttl: TTL, grace: TTL });
      await sleep(PAST_TTL_MS + 300);
      await expect(cache.getOrSet('k', async () => Promise.reject(httpError(500)), { ttl: TTL, grace: TTL })).rejects.toThrow('500');
    });

    it('never serves a deleted or invalidated entry stale (bentocache#71)', async () => {
      const cache = await fresh();
      const options = { ttl: TTL, grace: GRACE, tags: ['doc:1'] };
      await cache.getOrSet('deleted', async () => 'v1', options);
      await cache.getOrSet('invalidated', async () => 'v1', options);
      await cache.delete('deleted');
      await cache.invalidateTags(['doc:1']);
      for (const key of ['deleted', 'invalidated']) {
        expect(await cache.readEntry(key)).toBeUndefined();
        await expect(cache.getOrSet(key, async () => Promise.reject(httpError(500)), options)).rejects.toThrow('500');
      }
      // and past its ttl too
      await cache.getOrSet('late', async () => 'v1', options);
      await sleep(PAST_TTL_MS);
      await cache.invalidateTags(['doc:1']);
      await expect(cache.getOrSet('late', async () => Promise.reject(httpError(500)), options)).rejects.toThrow('500');
    });

    it('never answers one tenant with another tenant\'s stale value', async () => {
      const cache = await fresh();
      const options = { ttl: TTL, grace: GRACE };
      await cache.getOrSet('k', async () => 'a', { ...options, tenantId: 'a' });
      await sleep(PAST_TTL_MS);
      await expect(cache.getOrSet('k', async () => Promise.reject(httpError(500)), { ...options, tenantId: 'b' })).rejects.toThrow('500');
      await expect(cache.getOrSet('k', async () => Promise.reject(httpError(500)), options)).rejects.toThrow('500');
      expect(await cache.getOrSet('k', async () => Promise.reject(httpError(500)), { ...options, tenantId: 'a' })).toBe('a');
    });

    it('backs off a failing factory per key: calls within the backoff get the stale value without calling it', async () => {
      const cache = await fresh();
      const options = { ttl: TTL, grace: GRACE, graceBackoff: 400 };
      await cache.getOrSet('k', async () => 'v1', options);
      await cache.getOrSet('other', async () => 'o1', options);
      await sleep(PAST_TTL_MS);
      let calls = 0;
      const failing = async (): Promise<string> => {
        calls++;
        throw httpError(503);
      };
      expect(await cache.getOrSet('k', failing, options)).toBe('v1');
      expect(calls).toBe(1);
      for (let i = 0; i < 5; i++) expect(await cache.getOrSet('k', failing, options)).toBe('v1');
      expect(calls).toBe(1);
      // another key is not held back by this one's failures
      expect(await cache.getOrSet('other', failing, options)).toBe('o1');
      expect(calls).toBe(2);
      await sleep(450);
      expect(await cache.getOrSet('k', failing, options)).toBe('v1');
      expect(calls).toBe(3);
      // the second failure in a row doubles the wait (800 ms): still backing off after 450 ms
      await sleep(450);
      expect(await cache.getOrSet('k', failing, options)).toBe('v1');
      expect(calls).toBe(3);
      await sleep(450);
      expect(await cache.getOrSet('k', async () => 'v2', options)).toBe('v2');
    });

    it('with softTimeout answers stale when the factory is slower, and stores its value when it arrives', async () => {
      const cache = await fresh();
      const options = { ttl: 60, grace: GRACE, softTimeout: 50 };
      await cache.getOrSet('k', async () => 'v1', { ...options, ttl: TTL });
      await sleep(PAST_TTL_MS);
      let finished = false;
      const slow = async () => {
        await sleep(400);
        finished = true;
        return 'v2';
      };
      const started = performance.now();
      expect(await cache.getOrSet('k', slow, options)).toBe('v1');
      expect(performance.now() - started).toBeLessThan(300);
      expect(finished).toBe(false);
      await sleep(600);
      expect(finished).toBe(true);
      expect(await cache.get('k')).toBe('v2');
    });

    it('softTimeout 0 answers stale at once (stale-while-revalidate); without a stale value softTimeout changes nothing', async () => {
      const cache = await fresh();
      const options = { ttl: TTL, grace: GRACE, softTimeout: 0 };
      expect(await cache.getOrSet('k', async () => (await sleep(100), 'v1'), options)).toBe('v1');
      await sleep(PAST_TTL_MS);
      expect(await cache.getOrSet('k', async () => (await sleep(100), 'v2'), options)).toBe('v1');
      await sleep(300);
      expect(await cache.get('k')).toBe('v2');
    });
    it('bounds every caller who joins a slow refresh by softTimeout, not only the one who started it', async () => {
      const cache = await fresh();
      for (const softTimeout of [50, 0]) {
        const key = `joined-${softTimeout}`;
        const options = { ttl: 60, grace: GRACE, softTimeout };
        await cache.getOrSet(key, async () => 'v1', { ...options, ttl: TTL });
        await sleep(PAST_TTL_MS);
        let calls = 0;
        const slow = async () => {
          calls++;
          await sleep(600);
          return 'v2';
        };
        expect(await cache.getOrSet(key, slow, options)).toBe('v1');
        const started = performance.now();
        expect(await cache.getOrSet(key, slow, options)).toBe('v1');
        expect(performance.now() - started).toBeLessThan(300);
        expect(calls).toBe(1);
      }
    });
  });

  describe('tags', () => {
    it('invalidateTags drops exactly the entries carrying one of the tags, in the scope given', async () => {
      const cache = await fresh();
      await cache.set('a', 1, { tags: ['doc:1', 'doc:2'] });
      await cache.set('b', 2, { tags: ['doc:2'] });
      await cache.set('c', 3, { tags: ['doc:3'] });
      await cache.set('d', 4);
      await cache.set('a', 'tenant', { tags: ['doc:1'], tenantId: 't' });
      await expect(cache.invalidateTags(['doc:1'])).resolves.toBeUndefined();
      expect(await cache.get('a')).toBeUndefined();
      expect(await cache.getMany(['a', 'b', 'c', 'd'])).toEqual(new Map<string, unknown>([['b', 2], ['c', 3], ['d', 4]]));
      expect(await cache.get('a', { tenantId: 't' })).toBe('tenant');
      await cache.invalidateTags(['doc:1'], { tenantId: 't' });
      expect(await cache.get('a', { tenantId: 't' })).toBeUndefined();
      await cache.invalidateTags(['doc:2', 'doc:9']);
      expect(await cache.get('b')).toBeUndefined();
      expect(await cache.get('c')).toBe(3);
    });

    it('setMany and getOrSet tag their entries too', async () => {
      const cache = await fresh();
      expect(await cache.setMany({ x: 1, y: 2 }, { tags: ['batch'] })).toBe(2);
      expect(await cache.getOrSet('z', async () => 3, { tags: ['batch'] })).toBe(3);
      await cache.invalidateTags(['batch']);
      expect(await cache.getMany(['x', 'y', 'z'])).toEqual(new Map());
    });

    it('an overwrite replaces the key\'s tags, and a value stored after an invalidation is valid', async () => {
      const cache = await fresh();
      await cache.set('k', 1, { tags: ['old'] });
      await cache.set('k', 2);
      await cache.invalidateTags(['old']);
      expect(await cache.get('k')).toBe(2);
      await cache.set('k', 3, { tags: ['new'] });
      await cache.invalidateTags(['old']);
      expect(await cache.get('k')).toBe(3);
      await cache.invalidateTags(['new']);
      expect(await cache.get('k')).toBeUndefined();
      await sleep(5);
      await cache.set('k', 4, { tags: ['new'] });
      expect(await cache.get('k')).toBe(4);
    });

    it('never serves a value whose computation started before an invalidation of its tags, even when it is stored after it', async () => {
      const cache = await fresh();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const computing = cache.getOrSet('k', async () => (await gate, 'computed before'), { tags: ['doc:1'] });
      await sleep(20);
      await cache.invalidateTags(['doc:1']);
      release();
      expect(await computing).toBe('computed before');
      await sleep(50);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.getOrSet('k', async () => 'after', { tags: ['doc:1'] })).toBe('after');
      await sleep(50);
      expect(await cache.get('k')).toBe('after');
      // A call made after the invalidation never joins the computation that started before it.
      let open!: () => void;
      const door = new Promise<void>((resolve) => (open = resolve));
      const before = cache.getOrSet('j', async () => (await door, 'computed before'), { tags: ['doc:1'] });
      await sleep(20);
      await cache.invalidateTags(['doc:1']);
      const after = cache.getOrSet('j', async () => 'computed after', { tags: ['doc:1'] });
      open();
      expect(await before).toBe('computed before');
      expect(await after).toBe('computed after');
      // the same through writeEntry's startedAt
      const startedAt = Date.now() - 1000;
      expect(await cache.writeEntry('w', 'old', { tags: ['doc:1'], startedAt })).toBe(true);
      expect(await cache.get('w')).toBeUndefined();
    });

    it('refuses bad tags with a validation error', async () => {
      const cache = await fresh();
      await expect(cache.set('k', 1, { tags: 'doc' as never })).rejects.toMatchObject({ errorType: 'validation' });
      await expect(cache.set('k', 1, { tags: [1] as never })).rejects.toMatchObject({ errorType: 'validation' });
      await expect(cache.invalidateTags([''])).rejects.toMatchObject({ errorType: 'validation' });
      await expect(cache.invalidateTags('doc' as never)).rejects.toMatchObject({ errorType: 'validation' });
      await expect(cache.set('k', 1, { tags: Array.from({ length: 257 }, (_, i) => `t${i}`) })).rejects.toMatchObject({ errorType: 'validation' });
      expect(await cache.get('k')).toBeUndefined();
      await expect(cache.invalidateTags([])).resolves.toBeUndefined();
    });

    it('tagged entries are listed and counted like any other, and add and deleteIfEquals see them', async () => {
      const cache = await fresh();
      await cache.set('t1', { v: 1 }, { tags: ['doc:é'] });
      await cache.set('t2', 2, { tags: ['doc:é'] });
      const listed: string[] = [];
      for await (const key of cache.keys('t*')) listed.push(key);
      expect(listed.sort()).toEqual(['t1', 't2']);
      expect((await cache.stats()).size).toBe(2);
      expect(await cache.add('t1', 'other')).toBe(false);
      expect(await cache.deleteIfEquals('t1', { v: 1 })).toBe(true);
      expect(await cache.get('t1')).toBeUndefined();
    });
  });
}
