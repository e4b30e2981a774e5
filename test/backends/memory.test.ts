import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryCache, type MemoryCacheOptions } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import { expectCacheError, registerCacheBehaviourSuite } from './behaviour-suite.js';

registerCacheBehaviourSuite('memory', async (options) => createMemoryCache({ ...options }), {
  refusing: async () => createMemoryCache({ maxBytes: 512 }),
});

describe('memory backend', () => {
  describe('LRU bound (maxSize)', () => {
    it('evicts the least recently used entry past maxSize and counts it in evictions', async () => {
      const cache = createMemoryCache({ maxSize: 3 });
      await cache.setMany({ a: 1, b: 2, c: 3 });
      await cache.get('a');
      await cache.set('d', 4);
      expect([...(await cache.getMany(['a', 'b', 'c', 'd'])).keys()]).toEqual(['a', 'c', 'd']);
      expect(await cache.stats()).toMatchObject({ size: 3, evictions: 1 });
    });

    it('overwriting an entry is not an eviction', async () => {
      const cache = createMemoryCache({ maxSize: 2 });
      await cache.set('a', 1);
      await cache.set('a', 2);
      await cache.set('b', 1);
      expect((await cache.stats()).evictions).toBe(0);
    });

    it('an eviction counts in the evicted tenant’s stats, not in another tenant’s', async () => {
      const cache = createMemoryCache({ maxSize: 2 });
      await cache.set('k', 1, { tenantId: 'old' });
      await cache.set('k', 2, { tenantId: 'x' });
      await cache.set('k2', 3, { tenantId: 'x' });
      expect((await cache.stats({ tenantId: 'old' })).evictions).toBe(1);
      expect((await cache.stats({ tenantId: 'x' })).evictions).toBe(0);
      expect(await cache.get('k', { tenantId: 'old' })).toBeUndefined();
    });
  });

  describe('byte bound (maxBytes)', () => {
    it('an entry larger than maxBytes: set answers false and keeps the old value, add rejects with refused', async () => {
      const cache = createMemoryCache({ maxBytes: 1000 });
      expect(await cache.set('k', 'small')).toBe(true);
      expect(await cache.set('k', 'x'.repeat(2000))).toBe(false);
      expect(await cache.get('k')).toBe('small');
      const error = await expectCacheError(() => cache.add('new', 'x'.repeat(2000)), 'refused');
      expect(error.message).toBe('add refused: the entry is larger than maxBytes (1000 bytes)');
      // A live entry is reported as such first: add answers false without measuring.
      expect(await cache.add('k', 'x'.repeat(2000))).toBe(false);
      expect(await cache.get('new')).toBeUndefined();
      expect(await cache.setMany({ ok: 1, big: 'x'.repeat(2000) })).toBe(1);
      expect(await cache.get('big')).toBeUndefined();
      expect((await cache.stats()).sets).toBe(2);
    });

    it('stays within maxBytes by evicting least recently used entries, counted in evictions', async () => {
      const cache = createMemoryCache({ maxBytes: 1000 });
      for (let i = 0; i < 20; i++) await cache.set(`k${i}`, 'x'.repeat(100));
      const stats = await cache.stats();
      expect(stats.memoryMb * 1024 * 1024).toBeLessThanOrEqual(1000);
      expect(stats.size).toBeLessThan(20);
      expect(stats.evictions).toBe(20 - stats.size);
      expect(await cache.get('k19')).toBe('x'.repeat(100));
      expect(await cache.get('k0')).toBeUndefined();
      expect(await cache.validate()).toBe(true);
    });

    it('counts the UTF-8 bytes of keys and encoded values', async () => {
      const cache = createMemoryCache();
      await cache.set('é', 'ü'.repeat(10));
      // 'é' is 2 bytes; '"üüüüüüüüüü"' is 22.
      expect((await cache.stats()).memoryMb * 1024 * 1024).toBe(24);
    });
  });

  describe('keys', () => {
    it('a key deleted or expired while a listing runs is not listed after that', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
      try {
        vi.advanceTimersByTime(1000);
        const cache = createMemoryCache();
        await cache.setMany(Array.from({ length: 100 }, (_, i) => [`k${i}`, i] as const));
        await cache.setMany({ short1: 1, short2: 2 }, { ttl: 10 });
        const listed: string[] = [];
        for await (const key of cache.keys('*')) {
          if (listed.length === 0) {
            for (let i = 0; i < 100; i += 2) await cache.delete(`k${i}`);
            vi.advanceTimersByTime(11_000);
          }
          listed.push(key);
        }
        const later = listed.slice(1);
        expect(later.filter((k) => k.startsWith('short'))).toEqual([]);
        expect(later.filter((k) => Number(k.slice(1)) % 2 === 0 && k.startsWith('k'))).toEqual([]);
        expect(new Set(listed.filter((k) => /^k\d+$/.test(k) && Number(k.slice(1)) % 2 === 1)).size).toBe(50);
      } finally {
        vi.useRealTimers();
      }
    });
  });

  describe('byReference', () => {
    it('returns the stored object itself, so mutations are visible (documented opt-out)', async () => {
      const cache = createMemoryCache({ byReference: true });
      const value = { list: [1] };
      await cache.set('k', value);
      const got = await cache.get<{ list: number[] }>('k');
      expect(got).toBe(value);
      got!.list.push(2);
      expect(await cache.get('k')).toEqual({ list: [1, 2] });
    });

    it('still refuses values that cannot be encoded, and keeps null as a hit', async () => {
      const cache = createMemoryCache({ byReference: true });
      await expectCacheError(() => cache.set('k', () => 1), 'serialization');
      await expectCacheError(() => cache.set('k', undefined), 'validation');
      await cache.set('n', null);
      expect(await cache.get('n')).toBeNull();
      expect((await cache.stats()).hits).toBe(1);
    });

    it('deleteIfEquals compares the current encoding of the stored object', async () => {
      const cache = createMemoryCache({ byReference: true });
      await cache.set('k', new Map([['a', 1]]));
      expect(await cache.deleteIfEquals('k', new Map([['a', 2]]))).toBe(false);
      expect(await cache.deleteIfEquals('k', new Map([['a', 1]]))).toBe(true);
    });
  });

  describe('expiry on a fake clock', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('an entry is live until its ttl passes and gone after, without waiting in real time', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
      // A fake performance.now() starts at 0, which lru-cache reads as "no start time, never stale".
      vi.advanceTimersByTime(1000);
      const cache = createMemoryCache({ defaultTtl: 60 });
      await cache.set('k', 1);
      await cache.set('forever', 2, { ttl: Infinity });
      vi.advanceTimersByTime(59_000);
      expect(await cache.get('k')).toBe(1);
      vi.advanceTimersByTime(2_000);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.getMany(['k', 'forever'])).toEqual(new Map([['forever', 2]]));
      expect(await cache.stats()).toMatchObject({ size: 1, expirations: 1 });
    });
  });

  describe('construction', () => {
    const bad: [string, unknown][] = [
      ['maxSize 0', { maxSize: 0 }],
      ['maxSize -1', { maxSize: -1 }],
      ['maxSize 1.5', { maxSize: 1.5 }],
      ["maxSize '10'", { maxSize: '10' }],
      ['maxSize NaN', { maxSize: NaN }],
      ['maxSize Infinity', { maxSize: Infinity }],
      ['maxBytes 0', { maxBytes: 0 }],
      ['maxBytes -5', { maxBytes: -5 }],
      ["maxBytes '1kb'", { maxBytes: '1kb' }],
      ['defaultTtl 0', { defaultTtl: 0 }],
      ['defaultTtl -1', { defaultTtl: -1 }],
      ['defaultTtl NaN', { defaultTtl: NaN }],
      ["defaultTtl '10'", { defaultTtl: '10' }],
      ["byReference 'yes'", { byReference: 'yes' }],
      ['options null', null],
      ['options a number', 5],
    ];

    it.each(bad)('%s throws a validation CacheError at construction', (_label, options) => {
      let error: unknown;
      try {
        createMemoryCache(options as MemoryCacheOptions);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CacheError);
      expect((error as CacheError).errorType).toBe('validation');
    });

    it('an unknown option is refused, naming the option probably meant, and bad values are quoted with their type', () => {
      expect(() => createMemoryCache({ defaultTTL: 1 } as MemoryCacheOptions)).toThrow('createMemoryCache: unknown option "defaultTTL" (did you mean "defaultTtl"?)');
      expect(() => createMemoryCache({ maxsize: 1 } as MemoryCacheOptions)).toThrow('createMemoryCache: unknown option "maxsize" (did you mean "maxSize"?)');
      expect(() => createMemoryCache({ maxSize: '10' } as unknown as MemoryCacheOptions)).toThrow(
        'createMemoryCache: maxSize must be a positive integer, got "10" (a string)',
      );
      expect(() => createMemoryCache({ defaultTtl: '60' } as unknown as MemoryCacheOptions)).toThrow(
        'createMemoryCache: defaultTtl must be a positive number of seconds or Infinity, got "60" (a string)',
      );
      expect(() => createMemoryCache({ byReference: 'yes' } as unknown as MemoryCacheOptions)).toThrow('got "yes" (a string)');
    });

    it('returns the cache synchronously, and accepts defaultTtl Infinity', async () => {
      const cache = createMemoryCache({ defaultTtl: Infinity, maxSize: 1, maxBytes: 100, byReference: false });
      expect(cache.kind).toBe('memory');
      expect(await cache.set('k', 1)).toBe(true);
    });
  });
});
