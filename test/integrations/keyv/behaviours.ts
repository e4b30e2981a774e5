// What KeyvCachekit promises, written once and run against both Keyv majors
// (keyv 5 and keyv 6 over the same class; no stable 6.x test suite is
// published) on every backend. test/integrations/keyv.test.ts registers it.
import { describe, expect, it } from 'vitest';
import { KeyvCachekit } from '../../../integrations/keyv/index.js';
import { CacheError } from '../../../src/core/errors.js';
import type { Cache } from '../../../src/core/types.js';
import { cacheStats } from '../../../src/llm/wrapper-stats.js';
import type { BackendContext } from '../../helpers/llm-backends.js';

/** The part of a Keyv instance the behaviours use; both majors have it. */
export interface KeyvLike {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: string[]): Promise<unknown>;
  setMany(entries: { key: string; value: unknown; ttl?: number }[]): Promise<boolean[]>;
  getMany(keys: string[]): Promise<unknown[]>;
  has(key: string): Promise<boolean>;
  clear(): Promise<void>;
  iterator?: () => AsyncGenerator<unknown[], void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  namespace: string | undefined;
}

export interface KeyvMajor {
  major: 5 | 6;
  /** `new Keyv(options)` of this major. */
  keyv(options: { store: KeyvCachekit; namespace?: string | undefined; ttl?: number; serialize?: undefined; serialization?: false }): KeyvLike;
  /** What this major passes as `set`'s third argument for a TTL of `ms`. */
  ttlArgument(ms: number): number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function listKeys(keyv: KeyvLike): Promise<string[]> {
  const keys: string[] = [];
  for await (const [key] of keyv.iterator!()) keys.push(key as string);
  return keys.sort();
}

async function cacheKeys(cache: Cache, pattern = '*', tenantId?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of cache.keys(pattern, tenantId === undefined ? undefined : { tenantId })) keys.push(key);
  return keys.sort();
}

/** Every `error` a Keyv emits, recorded. */
function errorsOf(keyv: KeyvLike): unknown[] {
  const errors: unknown[] = [];
  keyv.on('error', (error) => errors.push(error));
  return errors;
}

export function keyvBehaviours({ major, keyv, ttlArgument }: KeyvMajor, { cache }: BackendContext): void {
  // Keyv 5 names every instance 'keyv' unless told otherwise; Keyv 6 gives it no namespace.
  const defaultNamespace = major === 5 ? 'keyv' : undefined;
  const open = (options: { namespace?: string | undefined; tenantId?: string } = {}) => {
    const store = new KeyvCachekit(cache(), options.tenantId === undefined ? undefined : { tenantId: options.tenantId });
    const instance = keyv('namespace' in options ? { store, namespace: options.namespace } : { store });
    return { store, keyv: instance };
  };

  describe('entries', () => {
    it('stores what Keyv writes under keyv:<namespace>:<key> in the cache, apart from the cache’s other entries', async () => {
      const { keyv: k } = open({ namespace: 'app' });
      await cache().set('v1:openai:abc', { answer: 1 });
      await k.set('user:1', { name: 'Ada' });
      expect(await k.get('user:1')).toEqual({ name: 'Ada' });
      expect(await cacheKeys(cache())).toEqual(['keyv:app:user:1', 'v1:openai:abc']);
    });

    it('keeps a namespace holding : or * apart from the ones it looks like', async () => {
      const a = open({ namespace: 'a' }).keyv;
      const ab = open({ namespace: 'a:b' }).keyv;
      const star = open({ namespace: 'a*' }).keyv;
      await a.set('b:c', 'in a');
      await ab.set('c', 'in a:b');
      await star.set('b:c', 'in a*');
      expect([await a.get('b:c'), await ab.get('c'), await star.get('b:c')]).toEqual(['in a', 'in a:b', 'in a*']);
      expect(await cacheKeys(cache())).toEqual(['keyv:a%2A:b:c', 'keyv:a%3Ab:c', 'keyv:a:b:c']);
    });

    it('deletes one key and answers whether it was there', async () => {
      const { keyv: k } = open();
      await k.set('k', 'v');
      expect(await k.delete('k')).toBe(true);
      expect(await k.delete('k')).toBe(false);
      expect(await k.get('k')).toBeUndefined();
    });

    it('reads, writes and deletes batches, with one answer per entry', async () => {
      const { keyv: k } = open();
      expect(await k.setMany([{ key: 'a', value: 1 }, { key: 'b', value: 2, ttl: 60_000 }])).toEqual([true, true]);
      expect(await k.getMany(['a', 'missing', 'b'])).toEqual([1, undefined, 2]);
      expect(await k.has('a')).toBe(true);
      expect(await k.has('missing')).toBe(false);
      // Keyv 5 answers deleteMany with the store's single boolean, Keyv 6 with one per key.
      expect(await k.deleteMany(['a', 'missing'])).toEqual(major === 6 ? [true, false] : false);
      expect(await k.deleteMany(['b'])).toEqual(major === 6 ? [true] : true);
      expect(await k.getMany(['a', 'b'])).toEqual([undefined, undefined]);
    });

    it('answers false for the entry of a batch the cache refused, true for the others', async () => {
      const { createMemoryCache } = await import('../../../src/backends/memory.js');
      const small = createMemoryCache({ maxBytes: 2000 });
      const k = keyv({ store: new KeyvCachekit(small) });
      expect(await k.setMany([{ key: 'big', value: 'x'.repeat(5000) }, { key: 'small', value: 'y' }])).toEqual([false, true]);
      expect(await k.get('small')).toBe('y');
      expect(await k.get('big')).toBeUndefined();
    });

    if (major === 5) {
      it('keeps Date and Map values exactly when Keyv does not serialize (as cache-manager’s own Keyv does)', async () => {
        const k = keyv({ store: new KeyvCachekit(cache()), serialize: undefined });
        (k as unknown as { deserialize: undefined }).deserialize = undefined;
        const value = { at: new Date('2026-01-02T03:04:05.678Z'), tags: new Map([['a', 1]]) };
        await k.set('k', value);
        expect(await k.get('k')).toEqual(value);
      });
    } else {
      it('keeps Date and Map values exactly with serialization: false', async () => {
        const k = keyv({ store: new KeyvCachekit(cache()), serialization: false });
        const value = { at: new Date('2026-01-02T03:04:05.678Z'), tags: new Map([['a', 1]]) };
        await k.set('k', value);
        expect(await k.get('k')).toEqual(value);
      });
    }
  });

  describe('expiry in the store itself', () => {
    it('drops an entry from the cache when Keyv’s TTL (milliseconds) runs out, as seconds with fractions', async () => {
      const { keyv: k } = open();
      await k.set('short', 'v', 150);
      await k.set('long', 'v', 60_000);
      await sleep(40);
      expect(await cacheKeys(cache())).toEqual([`keyv:${defaultNamespace ?? ''}:long`, `keyv:${defaultNamespace ?? ''}:short`]);
      await sleep(210);
      // Listed by the cache, not read through Keyv, whose own expiry check would hide a store that kept it.
      expect(await cacheKeys(cache())).toEqual([`keyv:${defaultNamespace ?? ''}:long`]);
    });

    it('expires what the store is given directly, without Keyv’s envelope to check', async () => {
      const { store } = open();
      await store.set('k', 'raw', ttlArgument(100));
      expect(await store.get('k')).toBe('raw');
      await sleep(200);
      expect(await store.get('k')).toBeUndefined();
    });

    it('expires each entry of a batch by its own TTL', async () => {
      const { keyv: k } = open();
      await k.setMany([
        { key: 'short', value: 1, ttl: 100 },
        { key: 'long', value: 2, ttl: 60_000 },
      ]);
      await sleep(200);
      expect(await cacheKeys(cache())).toEqual([`keyv:${defaultNamespace ?? ''}:long`]);
    });

    it('removes the key instead of storing an entry whose expiry has passed', async () => {
      const { store } = open();
      await store.set('k', 'old');
      expect(await store.set('k', 'new', ttlArgument(-1000))).toBe(true);
      expect(await store.get('k')).toBeUndefined();
    });

    it('stores a TTL longer than cachekit’s longest (about 68 years) as never expiring', async () => {
      const { keyv: k } = open();
      expect(await k.set('k', 'v', 3e12)).toBe(true);
      expect(await k.get('k')).toBe('v');
    });
  });

  describe('clear', () => {
    it('clears its own namespace only: other namespaces (with : and * in them) and non-Keyv entries stay', async () => {
      const a = open({ namespace: 'a' }).keyv;
      const others = [open({ namespace: 'a:b' }).keyv, open({ namespace: 'a*' }).keyv, open({ namespace: 'ab' }).keyv];
      await a.set('x', 1);
      for (const other of others) await other.set('x', 2);
      await cache().set('v1:openai:abc', 'llm');
      await cache().set('keyv-app-entry', 'mine');
      await a.clear();
      expect(await a.get('x')).toBeUndefined();
      for (const other of others) expect(await other.get('x')).toBe(2);
      expect(await cache().get('v1:openai:abc')).toBe('llm');
      expect(await cache().get('keyv-app-entry')).toBe('mine');
    });

    it('without a namespace, clears the entries written without one, and no namespace’s', async () => {
      const bare = open({ namespace: undefined }).keyv;
      const named = open({ namespace: 'named' }).keyv;
      await bare.set('x', 1);
      await named.set('x', 2);
      await bare.clear();
      expect(await bare.get('x')).toBeUndefined();
      expect(await named.get('x')).toBe(2);
    });
  });

  describe('iterator', () => {
    const awkward = ['plain', 'a:b:c', ':lead', 'trail:', 'glob*?[x]\\', 'é ü 🙂'];

    it('gives every key back exactly as it went in, with its value', async () => {
      const { keyv: k } = open();
      for (const key of awkward) await k.set(key, `value of ${key}`);
      const entries: unknown[][] = [];
      for await (const entry of k.iterator!()) entries.push(entry);
      expect(entries.map(([key]) => key).sort()).toEqual([...awkward].sort());
      for (const [key, value] of entries) expect(value).toBe(`value of ${key as string}`);
    });

    it('gives keys back exactly without a namespace too', async () => {
      const { keyv: k } = open({ namespace: undefined });
      for (const key of awkward) await k.set(key, 1);
      expect(await listKeys(k)).toEqual([...awkward].sort());
    });

    if (major === 6) {
      it('gives keys back exactly in a namespace holding : and *', async () => {
        const { keyv: k } = open({ namespace: 'a:b*' });
        for (const key of awkward) await k.set(key, 1);
        expect(await listKeys(k)).toEqual([...awkward].sort());
      });
    } else {
      it('in a namespace holding :, gives keys back cut where Keyv 5’s iterator cuts them (at the first :)', async () => {
        const { keyv: k } = open({ namespace: 'a:b' });
        await k.set('c', 1);
        expect(await k.get('c')).toBe(1);
        expect(await listKeys(k)).toEqual(['b:c']);
      });
    }

    it('lists its own namespace only, never another namespace’s or the cache’s other entries', async () => {
      const a = open({ namespace: 'a' }).keyv;
      await open({ namespace: 'a*' }).keyv.set('other', 1);
      await open({ namespace: 'ab' }).keyv.set('other', 1);
      await cache().set('v1:openai:abc', 'llm');
      await a.set('mine', 1);
      expect(await listKeys(a)).toEqual(['mine']);
    });

    it('lists a key once when the cache lists it twice (as SCAN may while Dragonfly resizes its table)', async () => {
      const real = cache();
      const stuttering = new Proxy(real, {
        get(target, prop) {
          if (prop !== 'keys') return Reflect.get(target, prop, target);
          return async function* (pattern: string, options?: { tenantId?: string }) {
            for await (const key of target.keys(pattern, options)) yield* [key, key];
          };
        },
      });
      const k = keyv({ store: new KeyvCachekit(stuttering) });
      await k.set('a', 1);
      await k.set('b', 2);
      expect(await listKeys(k)).toEqual(['a', 'b']);
    });

    it('lists more entries than one page of the cache holds, each once', async () => {
      const { keyv: k } = open();
      const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`);
      await k.setMany(keys.map((key) => ({ key, value: key })));
      const listed = await listKeys(k);
      expect(listed.length).toBe(2500);
      expect(new Set(listed).size).toBe(2500);
    });
  });

  describe('tenants', () => {
    it('keeps each tenant’s entries to itself: reads, lists, clears and stats', async () => {
      const acme = open({ tenantId: 'acme' }).keyv;
      const globex = open({ tenantId: 'globex' }).keyv;
      await acme.set('k', 'acme');
      expect(await globex.get('k')).toBeUndefined();
      await globex.set('k', 'globex');
      await globex.clear();
      expect(await acme.get('k')).toBe('acme');
      expect(await listKeys(acme)).toEqual(['k']);
      expect(await listKeys(globex)).toEqual([]);
      expect(await cacheKeys(cache())).toEqual([]);
      expect(await cacheKeys(cache(), '*', 'acme')).toEqual([`keyv:${defaultNamespace ?? ''}:k`]);
      expect((await cache().stats({ tenantId: 'acme' })).sets).toBe(1);
    });
  });

  describe('stats', () => {
    it('counts Keyv’s reads and writes in the cache’s own stats for the tenant', async () => {
      const { keyv: k } = open({ tenantId: 'counted' });
      await k.set('k', 'v');
      await k.get('k');
      await k.get('missing');
      const stats = await cache().stats({ tenantId: 'counted' });
      expect({ hits: stats.hits, misses: stats.misses, sets: stats.sets, size: stats.size }).toEqual({ hits: 1, misses: 1, sets: 1, size: 1 });
    });

    it('keeps no wrapper counters of its own: cacheStats(adapter) says it takes a cachekit wrapper', () => {
      const { store } = open();
      expect(() => cacheStats(store)).toThrow(/cacheStats\(\) takes a value returned by a cachekit wrapper/);
    });
  });

  describe('failures', () => {
    it('surfaces a failing cache once per call, as cachekit’s typed error, and answers a miss or false', async () => {
      const { createMemoryCache } = await import('../../../src/backends/memory.js');
      const closed = createMemoryCache();
      const k = keyv({ store: new KeyvCachekit(closed) });
      const errors = errorsOf(k);
      await k.set('k', 'v');
      await closed.close();
      expect(await k.get('k')).toBeUndefined();
      expect(errors).toHaveLength(1);
      expect(await k.set('k', 'v')).toBe(false);
      expect(await k.delete('k')).toBe(false);
      expect(errors).toHaveLength(3);
      for (const error of errors) expect(error).toMatchObject({ name: 'CacheError', errorType: 'closed' });
    });
  });

  describe('one adapter per Keyv', () => {
    if (major === 6) {
      it('refuses a second Keyv taking the same adapter, at its construction', () => {
        const { store } = open();
        expect(() => keyv({ store })).toThrow(CacheError);
        expect(() => keyv({ store })).toThrow(/already serves a Keyv instance; give each Keyv its own/);
      });
    } else {
      it('refuses the calls of a Keyv whose namespace the adapter no longer serves, once per call', async () => {
        const store = new KeyvCachekit(cache());
        const first = keyv({ store, namespace: 'first' });
        await first.set('k', 'v');
        keyv({ store, namespace: 'second' });
        const errors = errorsOf(first);
        expect(await first.get('k')).toBeUndefined();
        expect(await first.set('k', 'w')).toBe(false);
        expect(errors).toHaveLength(2);
        for (const error of errors) expect(error).toMatchObject({ errorType: 'validation', message: expect.stringMatching(/namespace "first" used this adapter after a Keyv with namespace "second" took it/) });
      });

      it('keeps serving a Keyv that changed its own namespace', async () => {
        const { keyv: k } = open({ namespace: 'before' });
        await k.set('k', 'old');
        k.namespace = 'after';
        expect(await k.get('k')).toBeUndefined();
        await k.set('k', 'new');
        expect(await k.get('k')).toBe('new');
        k.namespace = 'before';
        expect(await k.get('k')).toBe('old');
      });
    }
  });
}
