import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { itWith } from '../helpers/skips.js';

/**
 * The tag invariant, model-based: random sequences of tagged and untagged
 * writes (set, setMany, getOrSet), deletes, invalidations (untenanted and a
 * tenant's) and reads, against a model in which an entry is valid while it
 * exists and none of its tags was invalidated in its scope since it was
 * written. Every read (get, getMany, readEntry) must agree with the model:
 * never an invalidated entry, never a lost valid one. Invalidations are
 * followed by a few milliseconds' pause, so a write right after one is
 * never within the clock's resolution of it (which counts as before it: a
 * miss the model would not expect).
 */

const KEYS = ['a', 'b', 'c', 'd'] as const;
const TAGS = ['t1', 't2', 't3'] as const;
const TENANTS = [undefined, 'acme'] as const;

type Op =
  | { op: 'set'; key: string; tags: string[]; tenant: number; value: number }
  | { op: 'setMany'; keys: string[]; tags: string[]; tenant: number; value: number }
  | { op: 'getOrSet'; key: string; tags: string[]; tenant: number; value: number }
  | { op: 'delete'; key: string; tenant: number }
  | { op: 'invalidate'; tags: string[]; tenant: number }
  | { op: 'read'; key: string; tenant: number; how: 'get' | 'getMany' | 'readEntry' };

const tenant = fc.integer({ min: 0, max: TENANTS.length - 1 });
const tags = fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 2 });
const key = fc.constantFrom(...KEYS);
const value = fc.integer({ min: 0, max: 1000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), key, tags, tenant, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('setMany' as const), keys: fc.uniqueArray(key, { minLength: 1, maxLength: 3 }), tags, tenant, value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('getOrSet' as const), key, tags, tenant, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key, tenant }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('invalidate' as const), tags: fc.uniqueArray(fc.constantFrom(...TAGS), { minLength: 1, maxLength: 2 }), tenant }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), key, tenant, how: fc.constantFrom('get' as const, 'getMany' as const, 'readEntry' as const) }) },
);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Per scope: key -> the value and tags it holds, while valid. */
class Model {
  private readonly scopes = TENANTS.map(() => new Map<string, { value: number; tags: string[] }>());

  write(tenant: number, key: string, value: number, tags: string[]): void {
    this.scopes[tenant]!.set(key, { value, tags });
  }

  read(tenant: number, key: string): number | undefined {
    return this.scopes[tenant]!.get(key)?.value;
  }

  delete(tenant: number, key: string): void {
    this.scopes[tenant]!.delete(key);
  }

  invalidate(tenant: number, tags: string[]): void {
    const scope = this.scopes[tenant]!;
    for (const [key, entry] of scope) if (entry.tags.some((tag) => tags.includes(tag))) scope.delete(key);
  }
}

async function run(cache: Cache, ops: Op[]): Promise<void> {
  const model = new Model();
  const scope = (t: number) => (TENANTS[t] === undefined ? undefined : { tenantId: TENANTS[t] as string });
  const withTags = (t: number, tagList: string[]) => ({ ...scope(t), ...(tagList.length > 0 ? { tags: tagList } : {}) });
  for (const o of ops) {
    switch (o.op) {
      case 'set':
        await cache.set(o.key, o.value, withTags(o.tenant, o.tags));
        model.write(o.tenant, o.key, o.value, o.tags);
        break;
      case 'setMany':
        await cache.setMany(o.keys.map((k) => [k, o.value] as const), withTags(o.tenant, o.tags));
        for (const k of o.keys) model.write(o.tenant, k, o.value, o.tags);
        break;
      case 'getOrSet': {
        const expected = model.read(o.tenant, o.key);
        const got = await cache.getOrSet(o.key, () => o.value, withTags(o.tenant, o.tags));
        expect(got).toBe(expected ?? o.value);
        if (expected === undefined) {
          model.write(o.tenant, o.key, o.value, o.tags);
          // The write is in the background: let it land before the next operation reads.
          await sleep(2);
        }
        break;
      }
      case 'delete':
        await cache.delete(o.key, scope(o.tenant));
        model.delete(o.tenant, o.key);
        break;
      case 'invalidate':
        await cache.invalidateTags(o.tags, scope(o.tenant));
        model.invalidate(o.tenant, o.tags);
        await sleep(10);
        break;
      case 'read': {
        const expected = model.read(o.tenant, o.key);
        const got =
          o.how === 'get'
            ? await cache.get(o.key, scope(o.tenant))
            : o.how === 'getMany'
              ? (await cache.getMany([o.key], scope(o.tenant))).get(o.key)
              : (await cache.readEntry(o.key, scope(o.tenant)))?.value;
        expect(got).toBe(expected);
        break;
      }
    }
  }
}

const figures: string[] = [];
afterAll(() => {
  if (figures.length > 0) console.log(`[reliability] tag invariant (fast-check)\n${figures.join('\n')}`);
});

describe('tags against a model', () => {
  it('on memory: no read ever returns an entry a tag invalidation dropped, nor loses a valid one', async () => {
    let commands = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        commands += ops.length;
        const cache = createMemoryCache();
        try {
          await run(cache, ops);
        } finally {
          await cache.close();
        }
      }),
      { numRuns: 100 },
    );
    figures.push(`  memory: 100 runs, ${commands} commands, identical to the model`);
  }, 120_000);

  itWith('redis')('on Redis: no read ever returns an entry a tag invalidation dropped, nor loses a valid one', async () => {
    let commands = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        commands += ops.length;
        const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('tagmodel') });
        try {
          await run(cache, ops);
        } finally {
          await cache.clear();
          await cache.close();
        }
      }),
      { numRuns: 40 },
    );
    figures.push(`  Redis: 40 runs, ${commands} commands, identical to the model`);
  }, 120_000);
});
