import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache, ScopeOptions } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { itWith } from '../helpers/skips.js';

/**
 * Model-based tests: random sequences of operations (keys listings included) run against a backend and
 * against a small reference model written here (a Map per scope, a clock, and
 * a glob matcher of its own: a regex translation, not src/core/glob.ts), and
 * every observable result must be identical.
 *
 * Expiry runs on memory only, on a fake clock (lru-cache reads
 * `performance.now()`); the Redis run uses TTLs long enough never to expire
 * during a run (real short TTLs on a shared server would make the model race
 * the server's clock), so Redis expiry stays with the behaviour suite.
 */

const figures: string[] = [];
afterAll(() => {
  if (figures.length > 0) console.log(`[reliability] model-based tests (fast-check)\n${figures.join('\n')}`);
});

// Keys are drawn from a small ASCII alphabet full of glob metacharacters, so patterns
// and keys collide often and `?` (one byte on the server) is one character here too.
const KEY_CHARS = ['a', 'b', 'c', '*', '?', '[', ']', '\\', '{', '}', ':', '^', '-'] as const;
const key = fc.array(fc.constantFrom(...KEY_CHARS), { minLength: 1, maxLength: 3 }).map((c) => c.join(''));
const TENANTS = [undefined, 'x', '*', 'x:y', '[x]', '\\'] as const;

/**
 * Values come from a pool of values that are pairwise different by encoding, so
 * the model compares values (for deleteIfEquals) by pool index and checks what
 * a get returns against the pool entry.
 */
const POOL: (() => unknown)[] = [
  () => 1,
  () => 0,
  () => 'one',
  () => '',
  () => null,
  () => false,
  () => ({ a: [1, 2], b: { c: 'd' } }),
  () => [undefined, -0, NaN],
  () => new Map<unknown, unknown>([['k', new Date(0)], [1, 2n]]),
  () => new Set(['s']),
  () => new Uint8Array([1, 2, 3]),
];
const valueIndex = fc.integer({ min: 0, max: POOL.length - 1 });

/** A pattern built from tokens, so it is always well-formed and the model can translate it. */
type Token = { lit: string } | { any: 1 } | { star: 1 } | { set: string[]; neg: boolean } | { range: [string, string]; neg: boolean };
const token: fc.Arbitrary<Token> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEY_CHARS).map((lit) => ({ lit })) },
  { weight: 2, arbitrary: fc.constant({ any: 1 as const }) },
  { weight: 3, arbitrary: fc.constant({ star: 1 as const }) },
  { weight: 1, arbitrary: fc.record({ set: fc.uniqueArray(fc.constantFrom(...KEY_CHARS), { minLength: 1, maxLength: 3 }), neg: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ range: fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom('a', 'b', 'c')), neg: fc.boolean() }) },
);
const pattern = fc.array(token, { minLength: 1, maxLength: 4 });

/** Redis glob syntax for the tokens: metacharacters escaped with `\`, also inside brackets. */
function toGlob(tokens: Token[]): string {
  const esc = (c: string) => (/[*?[\]\\^-]/.test(c) ? `\\${c}` : c);
  return tokens
    .map((t) => {
      if ('lit' in t) return esc(t.lit);
      if ('any' in t) return '?';
      if ('star' in t) return '*';
      if ('set' in t) return `[${t.neg ? '^' : ''}${t.set.map(esc).join('')}]`;
      return `[${t.neg ? '^' : ''}${t.range[0]}-${t.range[1]}]`;
    })
    .join('');
}

/** The model's own matcher: an anchored RegExp for the same tokens (a reversed range matches as its sorted one). */
function toRegExp(tokens: Token[]): RegExp {
  const esc = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  const body = tokens
    .map((t) => {
      if ('lit' in t) return esc(t.lit);
      if ('any' in t) return '[\\s\\S]';
      if ('star' in t) return '[\\s\\S]*';
      if ('set' in t) return `[${t.neg ? '^' : ''}${t.set.map(esc).join('')}]`;
      const [lo, hi] = [...t.range].sort();
      return `[${t.neg ? '^' : ''}${lo}-${hi}]`;
    })
    .join('');
  return new RegExp(`^${body}$`);
}

type Ttl = number | undefined;
type Op =
  | { op: 'set'; t: number; key: string; v: number; ttl: Ttl }
  | { op: 'add'; t: number; key: string; v: number; ttl: Ttl }
  | { op: 'get'; t: number; key: string }
  | { op: 'delete'; t: number; key: string }
  | { op: 'deleteIfEquals'; t: number; key: string; v: number }
  | { op: 'getMany'; t: number; keys: string[] }
  | { op: 'setMany'; t: number; entries: [string, number][]; shape: 'record' | 'map' | 'pairs'; ttl: Ttl }
  | { op: 'clearPattern'; t: number; pattern: Token[] }
  | { op: 'keys'; t: number; pattern: Token[] }
  | { op: 'stats'; t: number }
  | { op: 'tick'; ms: number };

function ops(withExpiry: boolean): fc.Arbitrary<Op[]> {
  // Seconds. With expiry, short TTLs the clock reaches; without, ones no run outlives.
  const ttl: fc.Arbitrary<Ttl> = withExpiry ? fc.constantFrom(undefined, Infinity, 1, 2.5) : fc.constantFrom(undefined, Infinity, 3600);
  const t = fc.integer({ min: 0, max: TENANTS.length - 1 });
  const arbitraries: fc.Arbitrary<Op>[] = [
    fc.record({ op: fc.constant('set' as const), t, key, v: valueIndex, ttl }),
    fc.record({ op: fc.constant('add' as const), t, key, v: valueIndex, ttl }),
    fc.record({ op: fc.constant('get' as const), t, key }),
    fc.record({ op: fc.constant('delete' as const), t, key }),
    fc.record({ op: fc.constant('deleteIfEquals' as const), t, key, v: valueIndex }),
    fc.record({ op: fc.constant('getMany' as const), t, keys: fc.array(key, { maxLength: 5 }) }),
    fc.record({
      op: fc.constant('setMany' as const),
      t,
      entries: fc.array(fc.tuple(key, valueIndex), { maxLength: 5 }),
      shape: fc.constantFrom('record' as const, 'map' as const, 'pairs' as const),
      ttl,
    }),
    fc.record({ op: fc.constant('clearPattern' as const), t, pattern }),
    fc.record({ op: fc.constant('keys' as const), t, pattern }),
    fc.record({ op: fc.constant('stats' as const), t }),
  ];
  if (withExpiry) arbitraries.push(fc.record({ op: fc.constant('tick' as const), ms: fc.constantFrom(1, 500, 999, 1000, 1001, 2500) }));
  return fc.array(fc.oneof(...arbitraries), { minLength: 1, maxLength: 60, size: 'max' });
}

interface Entry {
  v: number;
  start: number;
  ttlMs: number | undefined;
}
interface Counters {
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
}

/** The reference: what a cache should answer, in a few lines per operation. */
class Model {
  now = 0;
  private readonly scopes = new Map<string | undefined, Map<string, Entry>>();
  private readonly counters = new Map<string | undefined, Counters>();

  constructor(private readonly defaultTtlMs: number | undefined) {}

  private scope(t: string | undefined): Map<string, Entry> {
    let s = this.scopes.get(t);
    if (!s) this.scopes.set(t, (s = new Map()));
    return s;
  }

  private count(t: string | undefined): Counters {
    let c = this.counters.get(t);
    if (!c) this.counters.set(t, (c = { hits: 0, misses: 0, sets: 0, deletes: 0 }));
    return c;
  }

  /** Live while the time elapsed since it was written is at most its ttl (as both lru-cache and Redis decide). */
  private live(t: string | undefined, k: string): Entry | undefined {
    const e = this.scope(t).get(k);
    if (e === undefined) return undefined;
    if (e.ttlMs !== undefined && this.now - e.start > e.ttlMs) {
      this.scope(t).delete(k);
      return undefined;
    }
    return e;
  }

  private ttlMs(ttl: Ttl): number | undefined {
    if (ttl === undefined) return this.defaultTtlMs;
    return ttl === Infinity ? undefined : ttl * 1000;
  }

  get(t: string | undefined, k: string): number | undefined {
    const e = this.live(t, k);
    this.count(t)[e ? 'hits' : 'misses']++;
    return e?.v;
  }

  set(t: string | undefined, k: string, v: number, ttl: Ttl): boolean {
    this.scope(t).set(k, { v, start: this.now, ttlMs: this.ttlMs(ttl) });
    this.count(t).sets++;
    return true;
  }

  add(t: string | undefined, k: string, v: number, ttl: Ttl): boolean {
    return this.live(t, k) ? false : this.set(t, k, v, ttl);
  }

  delete(t: string | undefined, k: string): boolean {
    if (!this.live(t, k)) return false;
    this.scope(t).delete(k);
    this.count(t).deletes++;
    return true;
  }

  deleteIfEquals(t: string | undefined, k: string, v: number): boolean {
    return this.live(t, k)?.v === v && this.delete(t, k);
  }

  getMany(t: string | undefined, keys: string[]): [string, number][] {
    const out: [string, number][] = [];
    for (const k of new Set(keys)) {
      const v = this.get(t, k);
      if (v !== undefined) out.push([k, v]);
    }
    return out;
  }

  setMany(t: string | undefined, entries: [string, number][], ttl: Ttl): number {
    const last = new Map(entries);
    for (const [k, v] of last) this.set(t, k, v, ttl);
    return last.size;
  }

  clearPattern(t: string | undefined, re: RegExp): number {
    let removed = 0;
    for (const k of [...this.scope(t).keys()]) if (re.test(k) && this.delete(t, k)) removed++;
    return removed;
  }

  keys(t: string | undefined, re: RegExp): string[] {
    return [...this.scope(t).keys()].filter((k) => re.test(k) && this.live(t, k)).sort();
  }

  /** Live entries and counters of one tenant, or of everything when untenanted (as `stats()` reports). */
  stats(t: string | undefined): Counters & { size: number } {
    const scopes = t === undefined ? [...this.scopes.keys()] : [t];
    const out = { hits: 0, misses: 0, sets: 0, deletes: 0, size: 0 };
    for (const s of scopes) {
      for (const k of [...this.scope(s).keys()]) if (this.live(s, k)) out.size++;
      const c = this.count(s);
      out.hits += c.hits;
      out.misses += c.misses;
      out.sets += c.sets;
      out.deletes += c.deletes;
    }
    return out;
  }
}

function batch(entries: [string, number][], shape: 'record' | 'map' | 'pairs') {
  const pairs = entries.map(([k, v]) => [k, POOL[v]!()] as [string, unknown]);
  if (shape === 'map') return new Map(pairs);
  if (shape === 'record') return Object.fromEntries(pairs);
  return pairs;
}

async function statsOf(cache: Cache, scope: ScopeOptions) {
  const { hits, misses, sets, deletes, size, errors } = await cache.stats(scope);
  return { hits, misses, sets, deletes, size, errors };
}

let commandsRun = 0;

/** Replays `ops` on the cache and the model; every answer must be identical. */
async function replay(cache: Cache, model: Model, list: Op[], tick: (ms: number) => void): Promise<void> {
  const touched = new Set<string>();
  const at = (o: Op, what: string) => `${what} (op ${list.indexOf(o)} of ${JSON.stringify(list)})`;
  for (const o of list) {
    commandsRun++;
    if (o.op === 'tick') {
      tick(o.ms);
      model.now += o.ms;
      continue;
    }
    const tenantId = TENANTS[o.t];
    const scope: ScopeOptions = tenantId === undefined ? {} : { tenantId };
    switch (o.op) {
      case 'set':
      case 'add': {
        touched.add(o.key);
        const options = o.ttl === undefined ? scope : { ...scope, ttl: o.ttl };
        expect(await cache[o.op](o.key, POOL[o.v]!(), options), at(o, o.op)).toBe(model[o.op](tenantId, o.key, o.v, o.ttl));
        break;
      }
      case 'get': {
        const want = model.get(tenantId, o.key);
        expect(await cache.get(o.key, scope), at(o, 'get')).toStrictEqual(want === undefined ? undefined : POOL[want]!());
        break;
      }
      case 'delete':
        expect(await cache.delete(o.key, scope), at(o, 'delete')).toBe(model.delete(tenantId, o.key));
        break;
      case 'deleteIfEquals':
        expect(await cache.deleteIfEquals(o.key, POOL[o.v]!(), scope), at(o, 'deleteIfEquals')).toBe(model.deleteIfEquals(tenantId, o.key, o.v));
        break;
      case 'getMany': {
        const want = model.getMany(tenantId, o.keys).map(([k, v]) => [k, POOL[v]!()]);
        expect([...(await cache.getMany(o.keys, scope))], at(o, 'getMany')).toStrictEqual(want);
        break;
      }
      case 'setMany': {
        for (const [k] of o.entries) touched.add(k);
        const options = o.ttl === undefined ? scope : { ...scope, ttl: o.ttl };
        expect(await cache.setMany(batch(o.entries, o.shape), options), at(o, 'setMany')).toBe(model.setMany(tenantId, o.entries, o.ttl));
        break;
      }
      case 'clearPattern':
        expect(await cache.clearPattern(toGlob(o.pattern), scope), at(o, `clearPattern ${toGlob(o.pattern)}`)).toBe(
          model.clearPattern(tenantId, toRegExp(o.pattern)),
        );
        break;
      case 'keys': {
        const listed: string[] = [];
        for await (const k of cache.keys(toGlob(o.pattern), scope)) listed.push(k);
        expect(listed.sort(), at(o, `keys ${toGlob(o.pattern)}`)).toEqual(model.keys(tenantId, toRegExp(o.pattern)));
        break;
      }
      case 'stats':
        expect(await statsOf(cache, scope), at(o, 'stats')).toStrictEqual({ ...model.stats(tenantId), errors: 0 });
        break;
    }
  }
  // Finally, every scope's whole content and counters.
  const keys = [...touched];
  for (const tenantId of TENANTS) {
    const scope: ScopeOptions = tenantId === undefined ? {} : { tenantId };
    const want = model.getMany(tenantId, keys).map(([k, v]) => [k, POOL[v]!()]);
    expect([...(await cache.getMany(keys, scope))], `final content of ${String(tenantId)}`).toStrictEqual(want);
    expect(await statsOf(cache, scope), `final stats of ${String(tenantId)}`).toStrictEqual({ ...model.stats(tenantId), errors: 0 });
  }
}

describe('model-based: random operation sequences answer exactly as the reference model', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('memory, with TTL expiry on a fake clock, defaultTtl or none, over every scope', async () => {
    const runs = 600;
    commandsRun = 0;
    await fc.assert(
      fc.asyncProperty(ops(true), fc.constantFrom(undefined, 2), async (list, defaultTtl) => {
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
        try {
          // A fake performance.now() starts at 0, which lru-cache reads as "no start time".
          vi.advanceTimersByTime(1000);
          const cache = createMemoryCache(defaultTtl === undefined ? {} : { defaultTtl });
          const model = new Model(defaultTtl === undefined ? undefined : defaultTtl * 1000);
          await replay(cache, model, list, (ms) => vi.advanceTimersByTime(ms));
        } finally {
          vi.useRealTimers();
        }
      }),
      { numRuns: runs },
    );
    figures.push(`  memory: ${runs} runs, ${commandsRun} commands (incl. clock ticks and shrinking, if any)`);
  });

  itWith('redis')('Redis, over every scope (long TTLs: expiry is left to the memory run)', async () => {
    const runs = 200;
    commandsRun = 0;
    await fc.assert(
      fc.asyncProperty(ops(false), async (list) => {
        const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('model') });
        try {
          await replay(cache, new Model(undefined), list, () => {});
        } finally {
          await cache.clear();
          await cache.close();
        }
      }),
      { numRuns: runs },
    );
    figures.push(`  redis: ${runs} runs, ${commandsRun} commands`);
  }, 30_000);
});
