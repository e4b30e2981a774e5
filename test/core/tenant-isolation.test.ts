import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache, ScopeOptions } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { itWith } from '../helpers/skips.js';

// Characters that break naive `tenant:key` concatenation, percent-encoding or glob scoping.
const nastyChar = fc.constantFrom(':', '*', '?', '[', ']', '\\', '{', '}', '%', '2', 'A', 'a', 'b', 'é', '🙂', '_', 't', 'g', '-', '.', ' ');
const tenantId = fc.oneof(
  fc.array(nastyChar, { minLength: 1, maxLength: 5 }).map((chars) => chars.join('')),
  fc.constantFrom('__proto__', 'constructor', '%3A', '%2A'),
);
const key = fc.array(nastyChar, { minLength: 1, maxLength: 4 }).map((chars) => chars.join(''));
const pattern = fc.array(fc.constantFrom('*', '?', '[', ']', '^', '-', '\\', 'a', ':', 't', '%'), { minLength: 1, maxLength: 5 }).map((c) => c.join(''));
const value = fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null), fc.date().map((d) => new Map([['d', d]])));

type Op =
  | { op: 'set'; key: string; value: unknown }
  | { op: 'add'; key: string; value: unknown }
  | { op: 'delete'; key: string }
  | { op: 'deleteIfEquals'; key: string; value: unknown }
  | { op: 'setMany'; entries: [string, unknown][] }
  | { op: 'getMany'; keys: string[] }
  | { op: 'get'; key: string }
  | { op: 'clearPattern'; pattern: string };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value }),
  fc.record({ op: fc.constant('add' as const), key, value }),
  fc.record({ op: fc.constant('delete' as const), key }),
  fc.record({ op: fc.constant('deleteIfEquals' as const), key, value }),
  fc.record({ op: fc.constant('setMany' as const), entries: fc.array(fc.tuple(key, value), { maxLength: 4 }) }),
  fc.record({ op: fc.constant('getMany' as const), keys: fc.array(key, { maxLength: 4 }) }),
  fc.record({ op: fc.constant('get' as const), key }),
  fc.record({ op: fc.constant('clearPattern' as const), pattern }),
);

// Unrelated tenants rarely collide by chance; related ones (case, suffix, encoded form) are where scoping breaks.
const tenantPair = fc.oneof(
  fc.uniqueArray(tenantId, { minLength: 2, maxLength: 2 }),
  tenantId.chain((t) =>
    fc
      .constantFrom(t.toUpperCase(), t.toLowerCase(), `${t}:`, `:${t}`, `${t}*`, `${t}?`, encodeURIComponent(t), `%${t}`, t.slice(1), t.slice(0, -1))
      .filter((u) => u !== t && u.length > 0 && u.isWellFormed())
      .map((u) => [t, u]),
  ),
);

const scenario = fc.record({
  tenants: tenantPair,
  // Which of [untenanted, tenant 0, tenant 1] acts; the other two observe.
  actor: fc.integer({ min: 0, max: 2 }),
  seed: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), key, value), { maxLength: 12 }),
  ops: fc.array(op, { minLength: 1, maxLength: 10 }),
});

async function apply(cache: Cache, scope: ScopeOptions, o: Op): Promise<void> {
  switch (o.op) {
    case 'set':
      return void (await cache.set(o.key, o.value, scope));
    case 'add':
      return void (await cache.add(o.key, o.value, scope));
    case 'delete':
      return void (await cache.delete(o.key, scope));
    case 'deleteIfEquals':
      return void (await cache.deleteIfEquals(o.key, o.value, scope));
    case 'setMany':
      return void (await cache.setMany(o.entries, scope));
    case 'getMany':
      return void (await cache.getMany(o.keys, scope));
    case 'get':
      return void (await cache.get(o.key, scope));
    case 'clearPattern':
      return void (await cache.clearPattern(o.pattern, scope));
  }
}

/** What a scope can observe: its entries among `keys`, and its own stats apart from read counters. */
async function observe(cache: Cache, scope: ScopeOptions, keys: string[]): Promise<unknown> {
  const entries = [...(await cache.getMany(keys, scope))].sort(([a], [b]) => (a < b ? -1 : 1));
  if (scope.tenantId === undefined) return { entries };
  const { size, sets, deletes, evictions, errors } = await cache.stats(scope);
  return { entries, size, sets, deletes, evictions, errors };
}

function isolationProperty(open: () => Promise<Cache>) {
  return fc.asyncProperty(scenario, async ({ tenants, actor, seed, ops }) => {
    const scopes: ScopeOptions[] = [{}, { tenantId: tenants[0] as string }, { tenantId: tenants[1] as string }];
    const cache = await open();
    try {
      for (const [s, k, v] of seed) await cache.set(k, v, scopes[s]);
      const allKeys = [
        ...new Set([
          ...seed.map(([, k]) => k),
          ...ops.flatMap((o) => ('key' in o ? [o.key] : 'keys' in o ? o.keys : 'entries' in o ? o.entries.map(([k]) => k) : [])),
        ]),
      ];
      const observers = scopes.filter((_, i) => i !== actor);
      const before = await Promise.all(observers.map((scope) => observe(cache, scope, allKeys)));
      for (const o of ops) await apply(cache, scopes[actor] as ScopeOptions, o);
      const after = await Promise.all(observers.map((scope) => observe(cache, scope, allKeys)));
      expect(after).toEqual(before);
    } finally {
      await cache.clear();
      await cache.close();
    }
  });
}

describe('tenant isolation (property)', () => {
  it('on memory: no operation of one scope changes what another tenant or the untenanted scope observes', async () => {
    await fc.assert(
      isolationProperty(async () => createMemoryCache()),
      { numRuns: 300 },
    );
  });

  itWith('redis')('on Redis: no operation of one scope changes what another tenant or the untenanted scope observes', async () => {
    await fc.assert(
      isolationProperty(() => createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('iso') })),
      { numRuns: 40 },
    );
  });
});
