import { afterEach, describe, expect, it } from 'vitest';
import { CacheError, type CacheErrorType } from '../../src/core/errors.js';
import {
  batchCacheGet,
  batchCacheSet,
  cacheClearPattern,
  cacheDelete,
  cacheGet,
  cacheSet,
  getCacheStats,
  validateCache,
} from '../../src/core/functions.js';
import { MAX_KEY_LENGTH, MAX_PATTERN_LENGTH, MAX_TENANT_LENGTH, MAX_TTL_SECONDS } from '../../src/core/keys.js';
import { MAX_TRACKED_TENANTS } from '../../src/core/stats.js';
import type { CacheEvent } from '../../src/core/events.js';
import type { Cache, ScopeOptions } from '../../src/core/types.js';
import { registerFreshnessSuite } from './freshness-suite.js';

/** What the suite may ask of a backend's factory. */
export interface BehaviourCacheOptions {
  /** Seconds, as the backend's own `defaultTtl`. */
  defaultTtl?: number;
}

/** Creates a fresh, empty cache, isolated from every other cache the factory made (own keyPrefix on a server). */
export type BehaviourCacheFactory = (options?: BehaviourCacheOptions) => Promise<Cache>;

/** What a backend can offer beyond a fresh cache; each one adds the tests that need it. */
export interface BehaviourSuiteExtras {
  /**
   * A fresh cache that refuses to store a value of `REFUSED_VALUE`'s size: a memory
   * cache with a small `maxBytes`, a Dragonfly cache on a full `noeviction` server.
   */
  refusing?: () => Promise<Cache>;
}

/** A value larger than what a `refusing` cache accepts: 1 KiB of text. */
export const REFUSED_VALUE = 'x'.repeat(1024);

/** Runs `run` and checks it returned a Promise (no synchronous throw) that rejects with a CacheError of `errorType`. */
export async function expectCacheError(run: () => unknown, errorType: CacheErrorType): Promise<CacheError> {
  let result: unknown;
  expect(() => {
    result = run();
  }).not.toThrow();
  expect(result).toBeInstanceOf(Promise);
  const error = await (result as Promise<unknown>).then(
    () => new Error('expected a rejection, got a fulfilled promise'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CacheError);
  expect((error as CacheError).errorType).toBe(errorType);
  return error as CacheError;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A TTL short enough to wait out, long enough that the checks made right after
 * writing (entry present, size) still run inside it on a loaded shared server,
 * and a wait comfortably past it.
 */
const SHORT_TTL = 0.25;
const PAST_SHORT_TTL_MS = 600;

class Point {
  x = 1;
}
class Bytes extends Uint8Array {}

function circularObject(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}
function circularArray(): unknown {
  const a: unknown[] = [1];
  a.push({ back: a });
  return a;
}
function circularMap(): unknown {
  const m = new Map<string, unknown>();
  m.set('me', m);
  return m;
}

/** Values that must come back exactly (compared with toStrictEqual: types, -0, NaN, sparseness). */
const ROUND_TRIPS: [string, () => unknown][] = [
  ['a string', () => 'hello'],
  ['an empty string', () => ''],
  ['a string that looks like the tagged form', () => '~{"\u0000ck":"d","v":0}'],
  ['a string with a lone surrogate inside the value', () => 'a\uD800b'],
  ['unicode text with astral characters', () => 'héllo wörld 🙂 中文'],
  ['an integer', () => 42],
  ['a float', () => 3.25],
  ['a huge float', () => 1.7976931348623157e308],
  ['zero', () => 0],
  ['-0', () => -0],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['-Infinity', () => -Infinity],
  ['true', () => true],
  ['false', () => false],
  ['null', () => null],
  ['an empty object', () => ({})],
  ['an empty array', () => []],
  ['an array of JSON values', () => [1, 'two', null, true, [3, [4]], { five: 5 }]],
  ['a nested object', () => ({ user: { name: 'John', tags: ['a', 'b'], address: { zip: '01234' } }, n: 1 })],
  ['an object with integer-like and ordinary keys', () => ({ b: 1, a: 2, 10: 'x', 2: 'y' })],
  ['a Date', () => new Date('2024-02-29T12:34:56.789Z')],
  ['an invalid Date', () => new Date(NaN)],
  ['a Map with non-string keys', () => new Map<unknown, unknown>([[1, 'one'], ['1', 'string one'], [{ k: 1 }, [2]], [null, null]])],
  ['a Set', () => new Set<unknown>([1, '1', null, { a: 1 }, 2n])],
  ['a BigInt', () => 2n ** 100n],
  ['a negative BigInt', () => -5n],
  ['a Uint8Array', () => new Uint8Array([0, 1, 127, 128, 255])],
  ['a Uint8Array view on part of a buffer', () => new Uint8Array(new ArrayBuffer(8), 2, 3).fill(7)],
  ['a Buffer', () => Buffer.from('héllo')],
  ['a Float32Array with special numbers', () => new Float32Array([1.5, NaN, -0, Infinity, -Infinity])],
  ['a Float64Array', () => new Float64Array([Math.PI, -0])],
  ['an Int16Array', () => new Int16Array([-32768, 32767])],
  ['a BigInt64Array', () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])],
  ['an array with undefined items', () => [undefined, 1, undefined]],
  ['NaN and -0 nested in plain data', () => ({ list: [NaN, -0, 1], deep: { inf: -Infinity } })],
  ['an object using the internal tag key', () => ({ '\u0000ck': 'd', v: 0 })],
  ['a tag-key object inside a Map', () => new Map([['x', { '\u0000ck': 'm', v: [] }]])],
  [
    'a deep mix of every supported type',
    () => ({
      when: new Date(0),
      list: [new Map<unknown, unknown>([['d', new Date(1)], [1n, new Set([Buffer.from([1, 2])])]]), new Set([new Float32Array([0.5])])],
      n: -0,
      nested: [[[{ big: 12345678901234567890n, undef: [undefined] }]]],
    }),
  ],
];

/** Values that must be refused, with the error type, storing nothing. */
const REFUSED: [string, () => unknown, CacheErrorType][] = [
  ['undefined', () => undefined, 'validation'],
  ['a function', () => () => 1, 'serialization'],
  ['a symbol', () => Symbol('s'), 'serialization'],
  ['a circular object', circularObject, 'serialization'],
  ['a circular array', circularArray, 'serialization'],
  ['a Map that contains itself', circularMap, 'serialization'],
  ['a class instance', () => new Point(), 'serialization'],
  ['a function nested in an object', () => ({ a: [1, { f() {} }] }), 'serialization'],
  ['a symbol inside a Map', () => new Map([['s', Symbol('s')]]), 'serialization'],
  ['a class instance inside a Set', () => new Set([new Point()]), 'serialization'],
  ['a RegExp', () => /x/, 'serialization'],
  ['an Error', () => new Error('x'), 'serialization'],
  ['a Promise', () => Promise.resolve(1), 'serialization'],
  ['a WeakMap', () => new WeakMap(), 'serialization'],
  ['a subclass of Uint8Array', () => new Bytes([1, 2]), 'serialization'],
];

const BAD_KEYS: [string, unknown][] = [
  ['an empty key', ''],
  ['a number key', 42],
  ['a null key', null],
  ['an undefined key', undefined],
  ['an object key', { toString: () => 'k' }],
  ['a key longer than MAX_KEY_LENGTH', 'k'.repeat(MAX_KEY_LENGTH + 1)],
  ['a key with a lone high surrogate', 'a\uD800'],
  ['a key with a lone low surrogate', '\uDC00b'],
];

const BAD_TENANTS: [string, unknown][] = [
  ['an empty tenant', ''],
  ['a number tenant', 7],
  ['a null tenant', null],
  ['a tenant longer than MAX_TENANT_LENGTH', 't'.repeat(MAX_TENANT_LENGTH + 1)],
  ['a tenant with a lone surrogate', 'x\uD83D'],
];

const BAD_TTLS: [string, unknown][] = [
  ['0', 0],
  ['-1', -1],
  ['-Infinity', -Infinity],
  ['NaN', NaN],
  ["the string '10'", '10'],
  ['null', null],
  ['more than MAX_TTL_SECONDS', MAX_TTL_SECONDS + 1],
];

const BAD_PATTERNS: [string, unknown][] = [
  ['an empty pattern', ''],
  ['a number pattern', 1],
  ['a pattern longer than MAX_PATTERN_LENGTH', '*'.repeat(MAX_PATTERN_LENGTH + 1)],
  ['a pattern with a lone surrogate', '*\uD800'],
];

/** Tenant ids that break naive `tenant:key` concatenation or glob scoping. */
export const NASTY_TENANTS = [
  'a',
  'a:b',
  'a%3Ab',
  '*',
  '%2A',
  '?',
  '[',
  '[a-z]',
  ']',
  '\\',
  '{x}',
  'ünïcødé',
  '🙂',
  '__proto__',
  'constructor',
  't',
  'g',
  ':',
  'A',
  'a b',
  '-',
];

/** Keys with the same trouble, including ones that look like raw scoped keys. */
export const NASTY_KEYS = ['k', 'b:c', 'a:b:c', '*', '?', '[', ']', '\\', '{tag}', 'é', '🙂', '__proto__', 't:a:b', 'g:k', '%2A'];

const PATTERN_KEYS = [
  'hello',
  'hallo',
  'hxllo',
  'hllo',
  'heeello',
  'h*llo',
  'h?llo',
  'h[e]llo',
  'h\\llo',
  'a',
  'b',
  'c',
  '-',
  ']',
  'é',
  'user:1',
  'user:22',
  'user:',
  'users:1',
];

/** Redis glob semantics, pattern by pattern: what `clearPattern` removes from PATTERN_KEYS. */
const PATTERN_CASES: [string, string, string[]][] = [
  ['* matches everything', '*', PATTERN_KEYS],
  ['a literal pattern matches only itself', 'hello', ['hello']],
  ['? matches exactly one character', 'h?llo', ['hello', 'hallo', 'hxllo', 'h*llo', 'h?llo', 'h\\llo']],
  ['* matches any run, including an empty one', 'h*llo', ['hello', 'hallo', 'hxllo', 'hllo', 'heeello', 'h*llo', 'h?llo', 'h[e]llo', 'h\\llo']],
  ['[...] matches one of a set', 'h[ae]llo', ['hello', 'hallo']],
  ['[^...] matches one character outside a set', 'h[^e]llo', ['hallo', 'hxllo', 'h*llo', 'h?llo', 'h\\llo']],
  ['[a-e] matches a range', 'h[a-e]llo', ['hello', 'hallo']],
  ['a reversed range [e-a] matches the same range', 'h[e-a]llo', ['hello', 'hallo']],
  ['a range alone', '[a-c]', ['a', 'b', 'c']],
  ['a lone dash in brackets is literal', '[-]', ['-']],
  ['\\* matches a literal star', 'h\\*llo', ['h*llo']],
  ['\\? matches a literal question mark', 'h\\?llo', ['h?llo']],
  ['\\[ matches a literal bracket', 'h\\[e]llo', ['h[e]llo']],
  ['\\\\ matches a literal backslash', 'h\\\\llo', ['h\\llo']],
  ['an escaped ] inside brackets is a member', '[\\]]', [']']],
  ['an unterminated [ is a set running to the end of the pattern', '[abc', ['a', 'b', 'c']],
  ['a prefix with *', 'user:*', ['user:1', 'user:22', 'user:']],
  ['? does not match an empty tail', 'user:?', ['user:1']],
  ['a range followed by *', 'user:[0-9]*', ['user:1', 'user:22']],
  ['? matches one byte, so it does not match a two-byte character', '?', ['a', 'b', 'c', '-', ']']],
  ['?? matches a two-byte character (Redis matches UTF-8 bytes)', '??', ['é']],
  ['a non-ASCII literal matches itself', 'é', ['é']],
  // é is the bytes C3 A9; Redis (x86-64) compares range bounds as signed chars, so C3 sorts below 'a'.
  ['a range bound above ASCII compares as a signed byte, as Redis does', '[a-é]', ['a', '-', ']']],
  ['a pattern matching nothing removes nothing', 'nothing*', []],
];

/**
 * The whole `Cache` contract as tests. Each backend's spec file calls this
 * once with a factory; a new backend gets the specification by one call.
 */
export function registerCacheBehaviourSuite(name: string, factory: BehaviourCacheFactory, extras: BehaviourSuiteExtras = {}): void {
  describe(`${name}: the Cache contract`, () => {
    const created: Cache[] = [];
    async function fresh(options?: BehaviourCacheOptions): Promise<Cache> {
      const cache = await factory(options);
      created.push(cache);
      return cache;
    }
    afterEach(async () => {
      for (const cache of created.splice(0)) {
        await cache.clear().catch(() => {});
        await cache.close();
      }
    });

    registerFreshnessSuite(() => fresh());

    describe('values', () => {
      it.each(ROUND_TRIPS)('%s round-trips exactly through set/get and setMany/getMany', async (_label, make) => {
        const cache = await fresh();
        const value = make();
        expect(await cache.set('v', value)).toBe(true);
        const got = await cache.get('v');
        expect(got).toStrictEqual(value);
        if (value !== null && typeof value === 'object') expect((got as object).constructor).toBe(value.constructor);
        expect(await cache.setMany([['w', make()]])).toBe(1);
        expect((await cache.getMany(['w'])).get('w')).toStrictEqual(value);
      });

      it('a DataView round-trips with its bytes', async () => {
        const cache = await fresh();
        await cache.set('dv', new DataView(Uint8Array.from([1, 2, 3]).buffer));
        const got = await cache.get<DataView>('dv');
        expect(got).toBeInstanceOf(DataView);
        expect([...new Uint8Array(got!.buffer, got!.byteOffset, got!.byteLength)]).toEqual([1, 2, 3]);
      });

      it('holes of a sparse array come back as undefined items, not null', async () => {
        const cache = await fresh();
        // eslint-disable-next-line no-sparse-arrays
        await cache.set('sparse', [, 1]);
        const got = await cache.get<unknown[]>('sparse');
        expect(got).toHaveLength(2);
        expect(got![0]).toBeUndefined();
        expect(got![1]).toBe(1);
      });

      it('object properties holding undefined are dropped, as in JSON', async () => {
        const cache = await fresh();
        await cache.set('o', { a: 1, b: undefined });
        const got = await cache.get<Record<string, unknown>>('o');
        expect(got).toStrictEqual({ a: 1 });
        expect('b' in got!).toBe(false);
      });

      it('a __proto__ own property comes back as an own property, never as the prototype', async () => {
        const cache = await fresh();
        const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
        await cache.set('p', value);
        await cache.set('q', { nested: value, when: new Date(0) });
        for (const got of [await cache.get<Record<string, unknown>>('p'), (await cache.get<{ nested: Record<string, unknown> }>('q'))!.nested]) {
          expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
          expect(Object.prototype.hasOwnProperty.call(got, '__proto__')).toBe(true);
          expect((got as { polluted?: unknown }).polluted).toBeUndefined();
        }
        expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
      });

      it('a cached null, false, 0 and empty string are hits, not misses', async () => {
        const cache = await fresh();
        await cache.setMany({ n: null, f: false, z: 0, e: '' });
        expect(await cache.get('n')).toBeNull();
        expect(await cache.get('f')).toBe(false);
        expect(await cache.get('z')).toBe(0);
        expect(await cache.get('e')).toBe('');
        expect([...(await cache.getMany(['n', 'f', 'z', 'e']))]).toEqual([
          ['n', null],
          ['f', false],
          ['z', 0],
          ['e', ''],
        ]);
        const stats = await cache.stats();
        expect(stats.hits).toBe(8);
        expect(stats.misses).toBe(0);
      });

      it.each(REFUSED)('%s is refused by set, add and setMany, storing nothing and keeping the old value', async (_label, make, errorType) => {
        const cache = await fresh();
        await cache.set('k', 'old');
        await expectCacheError(() => cache.set('k', make()), errorType);
        await expectCacheError(() => cache.set('fresh', make()), errorType);
        await expectCacheError(() => cache.add('fresh', make()), errorType);
        await expectCacheError(() => cache.setMany({ ok: 1, k: make() }), errorType);
        await expectCacheError(() => cache.setMany(new Map([['ok', 1], ['fresh', make()]])), errorType);
        await expectCacheError(() => cache.deleteIfEquals('k', make()), errorType);
        expect(await cache.get('k')).toBe('old');
        expect(await cache.get('fresh')).toBeUndefined();
        expect(await cache.get('ok')).toBeUndefined();
        const stats = await cache.stats();
        expect(stats.size).toBe(1);
        expect(stats.sets).toBe(1);
      });

      it('mutating what get returned never changes the cached entry', async () => {
        const cache = await fresh();
        await cache.set('o', { list: [1, 2], inner: { a: 1 } });
        await cache.set('m', new Map([['a', { n: 1 }]]));
        await cache.set('d', new Date(0));
        await cache.set('b', new Uint8Array([1, 2]));
        const o = (await cache.get<{ list: number[]; inner: { a: number }; extra?: number }>('o'))!;
        o.list.push(3);
        o.inner.a = 99;
        o.extra = 1;
        (await cache.get<Map<string, { n: number }>>('m'))!.get('a')!.n = 99;
        (await cache.get<Date>('d'))!.setTime(99);
        (await cache.get<Uint8Array>('b'))![0] = 99;
        (await cache.getMany<{ list: number[] }>(['o'])).get('o')!.list.length = 0;
        expect(await cache.get('o')).toStrictEqual({ list: [1, 2], inner: { a: 1 } });
        expect(await cache.get('m')).toStrictEqual(new Map([['a', { n: 1 }]]));
        expect(await cache.get('d')).toStrictEqual(new Date(0));
        expect(await cache.get('b')).toStrictEqual(new Uint8Array([1, 2]));
      });

      it('mutating the stored value after set never changes the cached entry', async () => {
        const cache = await fresh();
        const value = { list: [1, 2], when: new Date(0) };
        const plain = { a: [1] };
        await cache.set('v', value);
        await cache.setMany({ p: plain });
        value.list.push(3);
        value.when.setTime(5);
        plain.a.push(2);
        expect(await cache.get('v')).toStrictEqual({ list: [1, 2], when: new Date(0) });
        expect(await cache.get('p')).toStrictEqual({ a: [1] });
      });

      it('two gets of one entry return distinct objects', async () => {
        const cache = await fresh();
        await cache.set('o', { a: [1] });
        const first = await cache.get('o');
        const second = await cache.get('o');
        expect(first).toStrictEqual(second);
        expect(first).not.toBe(second);
      });
    });

    describe('options: say no instead of guessing', () => {
      /** Every operation that takes options, called with `options`. */
      function everyOperation(cache: Cache, options: unknown): [string, () => Promise<unknown>][] {
        const o = options as never;
        return [
          ['get', () => cache.get('k', o)],
          ['set', () => cache.set('k', 2, o)],
          ['add', () => cache.add('fresh', 2, o)],
          ['delete', () => cache.delete('k', o)],
          ['deleteIfEquals', () => cache.deleteIfEquals('k', 1, o)],
          ['clearPattern', () => cache.clearPattern('*', o)],
          ['getMany', () => cache.getMany(['k'], o)],
          ['setMany', () => cache.setMany({ k: 2, fresh: 2 }, o)],
          ['stats', () => cache.stats(o)],
        ];
      }

      it('a misspelt option is a validation error naming the option meant, for every operation, and nothing changes', async () => {
        const cache = await fresh();
        await cache.set('k', 1);
        for (const [op, run] of everyOperation(cache, { tenantID: 'acme' })) {
          const error = await expectCacheError(run, 'validation');
          expect(error.message, op).toBe(`${op}: unknown option "tenantID" (did you mean "tenantId"?)`);
        }
        for (const run of [() => cache.set('k', 2, { TTL: 5 } as never), () => cacheSet(cache, 'k', 2, { TTL: 5 } as never)]) {
          expect((await expectCacheError(run, 'validation')).message).toBe('set: unknown option "TTL" (did you mean "ttl"?)');
        }
        expect((await expectCacheError(() => cache.get('k', { ttl: 5 } as never), 'validation')).message).toBe(
          'get: unknown option "ttl" (known options: tenantId)',
        );
        expect(await cache.get('k')).toBe(1);
        expect(await cache.get('fresh')).toBeUndefined();
        expect((await cache.stats()).sets).toBe(1);
      });

      it('options that are not an object are refused with the object form, for every operation', async () => {
        const cache = await fresh();
        await cache.set('k', 1);
        for (const bad of [300, 'acme', null, [300], true]) {
          for (const [op, run] of everyOperation(cache, bad)) {
            const error = await expectCacheError(run, 'validation');
            expect(error.message, `${op} ${String(bad)}`).toMatch(new RegExp(`^${op}: options must be an object such as \\{ `));
          }
        }
        expect((await expectCacheError(() => cache.set('k', 2, 300 as never), 'validation')).message).toBe(
          'set: options must be an object such as { ttl: 300 }, got 300 (a number)',
        );
        expect(await cache.get('k')).toBe(1);
      });

      it("the guide's positional TTL is honoured as seconds by cacheSet and batchCacheSet", async () => {
        const cache = await fresh();
        expect(await cacheSet(cache, 'short', 1, SHORT_TTL)).toBe(true);
        expect(await batchCacheSet(cache, { a: 1, b: 2 }, SHORT_TTL)).toBe(2);
        expect(await cacheSet(cache, 'long', 1, 60)).toBe(true);
        expect((await cache.getMany(['short', 'a', 'b', 'long'])).size).toBe(4);
        await sleep(PAST_SHORT_TTL_MS);
        expect([...(await cache.getMany(['short', 'a', 'b', 'long'])).keys()]).toEqual(['long']);
        await expectCacheError(() => cacheSet(cache, 'k', 1, 0), 'validation');
        await expectCacheError(() => cacheSet(cache, 'k', 1, '60' as never), 'validation');
      });

      it('error messages quote what they got, with its type', async () => {
        const cache = await fresh();
        expect((await expectCacheError(() => cache.set('k', 1, { ttl: '60' as never }), 'validation')).message).toBe(
          'ttl must be a positive number of seconds or Infinity, got "60" (a string)',
        );
        expect((await expectCacheError(() => cache.set('k', 1, { ttl: -1 }), 'validation')).message).toContain('got -1 (a number)');
        expect((await expectCacheError(() => cache.get(42 as never), 'validation')).message).toBe('key must be a string, got 42 (a number)');
        expect((await expectCacheError(() => cache.get('k', { tenantId: 7 as never }), 'validation')).message).toBe(
          'tenantId must be a string, got 7 (a number)',
        );
        expect((await expectCacheError(() => cache.getMany('abc' as never), 'validation')).message).toBe(
          'keys must be an iterable of strings, got "abc" (a string)',
        );
        expect((await expectCacheError(() => cache.setMany(42 as never), 'validation')).message).toContain('got 42 (a number)');
        expect((await expectCacheError(() => cache.setMany([['a']] as never), 'validation')).message).toContain('got an array of length 1');
      });
    });

    describe('validation', () => {
      it.each(BAD_KEYS)('%s is a validation error for every keyed operation, and nothing changes', async (_label, key) => {
        const cache = await fresh();
        await cache.set('keep', 1);
        const k = key as string;
        await expectCacheError(() => cache.get(k), 'validation');
        await expectCacheError(() => cache.set(k, 1), 'validation');
        await expectCacheError(() => cache.add(k, 1), 'validation');
        await expectCacheError(() => cache.delete(k), 'validation');
        await expectCacheError(() => cache.deleteIfEquals(k, 1), 'validation');
        await expectCacheError(() => cache.getMany(['keep', k]), 'validation');
        await expectCacheError(() => cache.setMany([['other', 2], [k, 1]]), 'validation');
        await expectCacheError(() => cache.setMany(new Map([['other', 2], [k, 1]])), 'validation');
        expect(await cache.get('keep')).toBe(1);
        expect(await cache.get('other')).toBeUndefined();
        const stats = await cache.stats();
        expect(stats).toMatchObject({ size: 1, sets: 1, deletes: 0, hits: 1, misses: 1 });
      });

      it('a key of exactly MAX_KEY_LENGTH, and keys with astral characters, are accepted', async () => {
        const cache = await fresh();
        const longest = 'k'.repeat(MAX_KEY_LENGTH);
        expect(await cache.set(longest, 1)).toBe(true);
        expect(await cache.get(longest)).toBe(1);
        expect(await cache.set('🙂', 2)).toBe(true);
        expect(await cache.get('🙂')).toBe(2);
        expect(await cache.set('x'.repeat(MAX_TENANT_LENGTH), 3, { tenantId: 't'.repeat(MAX_TENANT_LENGTH) })).toBe(true);
        expect(await cache.get('x'.repeat(MAX_TENANT_LENGTH), { tenantId: 't'.repeat(MAX_TENANT_LENGTH) })).toBe(3);
      });

      it.each(BAD_TENANTS)('%s is a validation error for every scoped operation, and nothing changes', async (_label, tenant) => {
        const cache = await fresh();
        await cache.set('keep', 1);
        const tenantId = tenant as string;
        await expectCacheError(() => cache.get('keep', { tenantId }), 'validation');
        await expectCacheError(() => cache.set('keep', 2, { tenantId }), 'validation');
        await expectCacheError(() => cache.add('new', 2, { tenantId }), 'validation');
        await expectCacheError(() => cache.delete('keep', { tenantId }), 'validation');
        await expectCacheError(() => cache.deleteIfEquals('keep', 1, { tenantId }), 'validation');
        await expectCacheError(() => cache.getMany(['keep'], { tenantId }), 'validation');
        await expectCacheError(() => cache.setMany({ keep: 2 }, { tenantId }), 'validation');
        await expectCacheError(() => cache.clearPattern('*', { tenantId }), 'validation');
        await expectCacheError(() => cache.stats({ tenantId }), 'validation');
        expect(await cache.get('keep')).toBe(1);
        expect((await cache.stats()).size).toBe(1);
      });

      it.each(BAD_TTLS)('a ttl of %s is a validation error for set, add and setMany, and nothing changes', async (_label, ttl) => {
        const cache = await fresh();
        await cache.set('keep', 'old');
        const bad = { ttl: ttl as number };
        await expectCacheError(() => cache.set('keep', 'new', bad), 'validation');
        await expectCacheError(() => cache.set('fresh', 'new', bad), 'validation');
        await expectCacheError(() => cache.add('fresh', 'new', bad), 'validation');
        await expectCacheError(() => cache.setMany({ fresh: 1, keep: 'new' }, bad), 'validation');
        expect(await cache.get('keep')).toBe('old');
        expect(await cache.get('fresh')).toBeUndefined();
        expect((await cache.stats()).sets).toBe(1);
      });

      it.each(BAD_PATTERNS)('%s is a validation error for clearPattern, and nothing is removed', async (_label, pattern) => {
        const cache = await fresh();
        await cache.set('keep', 1);
        await expectCacheError(() => cache.clearPattern(pattern as string), 'validation');
        expect(await cache.get('keep')).toBe(1);
      });

      it('batch arguments of the wrong shape are validation errors', async () => {
        const cache = await fresh();
        await expectCacheError(() => cache.getMany('abc' as unknown as string[]), 'validation');
        await expectCacheError(() => cache.getMany(null as unknown as string[]), 'validation');
        await expectCacheError(() => cache.setMany(null as unknown as Record<string, unknown>), 'validation');
        await expectCacheError(() => cache.setMany(42 as unknown as Record<string, unknown>), 'validation');
        await expectCacheError(() => cache.setMany('ab' as unknown as Record<string, unknown>), 'validation');
        await expectCacheError(() => cache.setMany([['a']] as unknown as [string, unknown][]), 'validation');
        await expectCacheError(() => cache.setMany([['ok', 1], 'xy'] as unknown as [string, unknown][]), 'validation');
        expect(await cache.get('ok')).toBeUndefined();
      });
    });

    describe('TTL', () => {
      it('an entry past its ttl is never returned by get', async () => {
        const cache = await fresh();
        await cache.set('short', 1, { ttl: SHORT_TTL });
        await cache.set('long', 2, { ttl: 60 });
        expect(await cache.get('short')).toBe(1);
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.get('short')).toBeUndefined();
        expect(await cache.get('long')).toBe(2);
      });

      it('expired entries are never returned by batch get and never counted in size', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2, c: 3 }, { ttl: SHORT_TTL });
        await cache.set('kept', 4);
        await cache.set('t', 5, { tenantId: 'x', ttl: SHORT_TTL });
        await cache.set('u', 6, { tenantId: 'x' });
        expect((await cache.stats()).size).toBe(6);
        await sleep(PAST_SHORT_TTL_MS);
        expect([...(await cache.getMany(['a', 'b', 'c', 'kept']))]).toEqual([['kept', 4]]);
        expect([...(await cache.getMany(['t', 'u'], { tenantId: 'x' }))]).toEqual([['u', 6]]);
        expect((await cache.stats()).size).toBe(2);
        expect((await cache.stats({ tenantId: 'x' })).size).toBe(1);
      });

      it('expired entries are neither deleted nor counted by delete and clearPattern, and add may take their place', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2 }, { ttl: SHORT_TTL });
        await cache.set('c', 3);
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.delete('a')).toBe(false);
        expect(await cache.clearPattern('*')).toBe(1);
        await cache.set('d', 4, { ttl: SHORT_TTL });
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.add('d', 5)).toBe(true);
        expect(await cache.get('d')).toBe(5);
        expect(await cache.deleteIfEquals('b', 2)).toBe(false);
      });

      it('defaultTtl applies to set, add and setMany when no ttl is given', async () => {
        const cache = await fresh({ defaultTtl: SHORT_TTL });
        await cache.set('s', 1);
        await cache.add('a', 2);
        await cache.setMany({ m: 3 });
        await sleep(PAST_SHORT_TTL_MS);
        expect((await cache.getMany(['s', 'a', 'm'])).size).toBe(0);
        expect((await cache.stats()).size).toBe(0);
      });

      it('a per-entry ttl overrides defaultTtl, in both directions', async () => {
        const longDefault = await fresh({ defaultTtl: 60 });
        await longDefault.set('short', 1, { ttl: SHORT_TTL });
        await longDefault.setMany({ shortBatch: 1 }, { ttl: SHORT_TTL });
        const shortDefault = await fresh({ defaultTtl: SHORT_TTL });
        await shortDefault.set('long', 2, { ttl: 60 });
        await shortDefault.add('longAdd', 2, { ttl: 60 });
        await shortDefault.setMany({ longBatch: 2 }, { ttl: 60 });
        await sleep(PAST_SHORT_TTL_MS);
        expect(await longDefault.get('short')).toBeUndefined();
        expect(await longDefault.get('shortBatch')).toBeUndefined();
        expect(await shortDefault.get('long')).toBe(2);
        expect(await shortDefault.get('longAdd')).toBe(2);
        expect(await shortDefault.get('longBatch')).toBe(2);
      });

      it('ttl Infinity means never expires, even with a defaultTtl', async () => {
        const cache = await fresh({ defaultTtl: SHORT_TTL });
        await cache.set('forever', 1, { ttl: Infinity });
        await cache.add('foreverAdd', 2, { ttl: Infinity });
        await cache.setMany({ foreverBatch: 3 }, { ttl: Infinity });
        await cache.set('default', 4);
        await sleep(PAST_SHORT_TTL_MS);
        expect([...(await cache.getMany(['forever', 'foreverAdd', 'foreverBatch', 'default']))]).toEqual([
          ['forever', 1],
          ['foreverAdd', 2],
          ['foreverBatch', 3],
        ]);
      });

      it('set replaces the ttl of an existing entry', async () => {
        const cache = await fresh();
        await cache.set('k', 1, { ttl: SHORT_TTL });
        await cache.set('k', 2, { ttl: 60 });
        await cache.set('j', 1);
        await cache.set('j', 2, { ttl: SHORT_TTL });
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.get('k')).toBe(2);
        expect(await cache.get('j')).toBeUndefined();
      });
    });

    describe('tenants', () => {
      async function populated(): Promise<Cache> {
        const cache = await fresh();
        await cache.setMany(NASTY_KEYS.map((k) => [k, `untenanted|${k}`] as const));
        for (const tenantId of NASTY_TENANTS) {
          await cache.setMany(
            NASTY_KEYS.map((k) => [k, `${tenantId}|${k}`] as const),
            { tenantId },
          );
        }
        return cache;
      }

      async function expectIntact(cache: Cache, except: string | undefined): Promise<void> {
        const scopes: (string | undefined)[] = [undefined, ...NASTY_TENANTS];
        for (const tenantId of scopes) {
          if (tenantId === except) continue;
          const found = await cache.getMany(NASTY_KEYS, tenantId === undefined ? {} : { tenantId });
          expect(found, `scope ${String(tenantId)}`).toEqual(new Map(NASTY_KEYS.map((k) => [k, `${tenantId ?? 'untenanted'}|${k}`])));
        }
      }

      it('every tenant and the untenanted scope hold their own value for the same key, whatever the characters', async () => {
        const cache = await populated();
        await expectIntact(cache, 'nobody');
        for (const tenantId of NASTY_TENANTS) {
          for (const key of ['b:c', '*', '__proto__']) expect(await cache.get(key, { tenantId })).toBe(`${tenantId}|${key}`);
        }
        expect((await cache.stats()).size).toBe(NASTY_KEYS.length * (NASTY_TENANTS.length + 1));
      });

      it('tenant and key boundaries never collide (tenant a + key b:c vs tenant a:b + key c vs untenanted t:a:b:c)', async () => {
        const cache = await fresh();
        await cache.set('b:c', 1, { tenantId: 'a' });
        await cache.set('c', 2, { tenantId: 'a:b' });
        await cache.set('t:a:b:c', 3);
        await cache.set('c', 4, { tenantId: 'a%3Ab' });
        await cache.set('a:b:c', 5);
        expect(await cache.get('b:c', { tenantId: 'a' })).toBe(1);
        expect(await cache.get('c', { tenantId: 'a:b' })).toBe(2);
        expect(await cache.get('t:a:b:c')).toBe(3);
        expect(await cache.get('c', { tenantId: 'a%3Ab' })).toBe(4);
        expect(await cache.get('a:b:c')).toBe(5);
        expect(await cache.get('c', { tenantId: 'a' })).toBeUndefined();
        expect(await cache.get('b:c')).toBeUndefined();
      });

      it("set and add in one tenant never overwrite or block another tenant's entry", async () => {
        const cache = await populated();
        for (const key of NASTY_KEYS) {
          await cache.set(key, 'overwritten', { tenantId: '*' });
          expect(await cache.add(key, 'added', { tenantId: '[' })).toBe(false);
        }
        expect(await cache.add('only-in-a', 1, { tenantId: 'a' })).toBe(true);
        expect(await cache.add('only-in-a', 1, { tenantId: 'A' })).toBe(true);
        expect(await cache.add('only-in-a', 1)).toBe(true);
        await cache.clearPattern('only-in-a', { tenantId: 'a' });
        await cache.clearPattern('only-in-a', { tenantId: 'A' });
        await cache.delete('only-in-a');
        await expectIntact(cache, '*');
      });

      it("delete and deleteIfEquals in one tenant never remove another tenant's entry", async () => {
        const cache = await populated();
        for (const key of NASTY_KEYS) {
          expect(await cache.delete(key, { tenantId: 'a:b' })).toBe(true);
          expect(await cache.deleteIfEquals(key, `untenanted|${key}`, { tenantId: 'a' })).toBe(false);
        }
        expect((await cache.getMany(NASTY_KEYS, { tenantId: 'a:b' })).size).toBe(0);
        await expectIntact(cache, 'a:b');
      });

      it('setMany in one tenant writes only that tenant', async () => {
        const cache = await populated();
        await cache.setMany(new Map(NASTY_KEYS.map((k) => [k, 'batch'])), { tenantId: '__proto__' });
        expect([...(await cache.getMany(NASTY_KEYS, { tenantId: '__proto__' })).values()]).toEqual(NASTY_KEYS.map(() => 'batch'));
        await expectIntact(cache, '__proto__');
      });

      it('clearPattern stays inside its tenant, whatever the pattern and the tenant id', async () => {
        const cache = await populated();
        for (const pattern of ['*', '?', '*:*', '[', '\\*', '[a-z]*', '*\\']) {
          await cache.clearPattern(pattern, { tenantId: '*' });
          await cache.clearPattern(pattern, { tenantId: '[a-z]' });
        }
        expect(await cache.clearPattern('*', { tenantId: '\\' })).toBe(NASTY_KEYS.length);
        expect((await cache.getMany(NASTY_KEYS, { tenantId: '*' })).size).toBe(0);
        const scopes: (string | undefined)[] = [undefined, ...NASTY_TENANTS.filter((t) => !['*', '[a-z]', '\\'].includes(t))];
        for (const tenantId of scopes) {
          expect((await cache.getMany(NASTY_KEYS, tenantId === undefined ? {} : { tenantId })).size, `scope ${String(tenantId)}`).toBe(NASTY_KEYS.length);
        }
      });

      it("untenanted clearPattern never reaches a tenant's entries", async () => {
        const cache = await populated();
        expect(await cache.clearPattern('*')).toBe(NASTY_KEYS.length);
        expect(await cache.clearPattern('t:*')).toBe(0);
        for (const tenantId of NASTY_TENANTS) expect((await cache.getMany(NASTY_KEYS, { tenantId })).size).toBe(NASTY_KEYS.length);
      });

      it('stats of a tenant count only its own entries and operations', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2 }, { tenantId: 'a:b' });
        await cache.set('c', 3, { tenantId: 'a' });
        await cache.set('d', 4);
        await cache.get('a', { tenantId: 'a:b' });
        await cache.get('zz', { tenantId: 'a:b' });
        await cache.get('c', { tenantId: 'a' });
        await cache.delete('c', { tenantId: 'a' });
        await cache.get('d');
        expect(await cache.stats({ tenantId: 'a:b' })).toMatchObject({ size: 2, sets: 2, hits: 1, misses: 1, deletes: 0, hitRate: 0.5 });
        expect(await cache.stats({ tenantId: 'a' })).toMatchObject({ size: 0, sets: 1, hits: 1, misses: 0, deletes: 1 });
        expect(await cache.stats({ tenantId: 'never-used' })).toMatchObject({ size: 0, sets: 0, hits: 0, misses: 0, deletes: 0, memoryMb: 0 });
        expect(await cache.stats()).toMatchObject({ size: 3, sets: 4, hits: 3, misses: 1, deletes: 1 });
      });

      it(`a tenant's counters count since it was last among the ${MAX_TRACKED_TENANTS} most recently active; its size is always measured`, async () => {
        const cache = await fresh();
        await cache.set('k', 1, { tenantId: 'early' });
        await cache.get('k', { tenantId: 'early' });
        expect(await cache.stats({ tenantId: 'early' })).toMatchObject({ sets: 1, hits: 1, size: 1 });
        // Reading the stats of tenants that never did anything tracks none of them...
        for (let i = 0; i < 10; i++) expect((await cache.stats({ tenantId: `reader-${i}` })).hits).toBe(0);
        const busy = async (from: number, to: number) => {
          for (let i = from; i < to; i += 100) {
            await Promise.all(Array.from({ length: Math.min(100, to - i) }, (_, j) => cache.get('absent', { tenantId: `busy-${i + j}` })));
          }
        };
        // ...so 'early' is still one of the most recently active after this many others,
        await busy(0, MAX_TRACKED_TENANTS - 1);
        expect(await cache.stats({ tenantId: 'early' })).toMatchObject({ sets: 1, hits: 1, size: 1 });
        // and forgotten after one more.
        await busy(MAX_TRACKED_TENANTS - 1, MAX_TRACKED_TENANTS);
        expect(await cache.stats({ tenantId: 'early' })).toMatchObject({ sets: 0, hits: 0, size: 1 });
        expect(await cache.stats({ tenantId: `busy-${MAX_TRACKED_TENANTS - 1}` })).toMatchObject({ misses: 1 });
        expect(await cache.stats()).toMatchObject({ sets: 1, hits: 1, misses: MAX_TRACKED_TENANTS, size: 1 });
        expect(await cache.get('k', { tenantId: 'early' })).toBe(1);
        expect(await cache.stats({ tenantId: 'early' })).toMatchObject({ sets: 0, hits: 1 });
      });
    });

    describe('patterns', () => {
      it.each(PATTERN_CASES)('%s (%s)', async (_label, pattern, expected) => {
        const cache = await fresh();
        for (const tenantId of [undefined, '[*?]']) {
          const scope = tenantId === undefined ? {} : { tenantId };
          await cache.setMany(
            PATTERN_KEYS.map((k) => [k, k] as const),
            scope,
          );
          expect(await cache.clearPattern(pattern, scope)).toBe(expected.length);
          const left = [...(await cache.getMany(PATTERN_KEYS, scope)).keys()];
          expect(left.sort()).toEqual(PATTERN_KEYS.filter((k) => !expected.includes(k)).sort());
        }
      });

      it('a key of MAX_KEY_LENGTH made of glob metacharacters is matched by itself escaped, and only it', async () => {
        const cache = await fresh();
        const metas = ['*', '?', '[', ']', '\\', '^', '-'];
        const longest = Array.from({ length: MAX_KEY_LENGTH }, (_, i) => metas[i % metas.length]).join('');
        const sibling = `${longest.slice(0, -1)}x`;
        const escaped = longest.replace(/[*?[\]\\]/g, '\\$&');
        expect(escaped.length).toBeGreaterThan(MAX_KEY_LENGTH);
        expect(escaped.length).toBeLessThanOrEqual(MAX_PATTERN_LENGTH);
        for (const scope of [{}, { tenantId: '[*]' }]) {
          await cache.setMany([[longest, 1], [sibling, 2]], scope);
          expect(await cache.clearPattern(escaped, scope)).toBe(1);
          expect([...(await cache.getMany([longest, sibling], scope)).keys()]).toEqual([sibling]);
        }
        const everyCharEscaped = '\\*'.repeat(MAX_KEY_LENGTH);
        expect(everyCharEscaped.length).toBe(MAX_PATTERN_LENGTH);
        await cache.set('*'.repeat(MAX_KEY_LENGTH), 3);
        expect(await cache.clearPattern(everyCharEscaped)).toBe(1);
      });

      it('clearPattern returns the number removed and counts them as deletes', async () => {
        const cache = await fresh();
        await cache.setMany(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`user:${i}`, i])));
        await cache.setMany({ 'order:1': 1, 'order:2': 2 });
        expect(await cache.clearPattern('user:*')).toBe(50);
        expect(await cache.clearPattern('user:*')).toBe(0);
        const stats = await cache.stats();
        expect(stats.deletes).toBe(50);
        expect(stats.size).toBe(2);
      });
    });

    describe('keys', () => {
      async function list(cache: Cache, pattern: string, options?: ScopeOptions): Promise<string[]> {
        const out: string[] = [];
        for await (const key of cache.keys(pattern, options)) out.push(key);
        return out;
      }
      const sorted = (keys: Iterable<string>) => [...keys].sort();

      it.each(PATTERN_CASES)('keys lists exactly what clearPattern removes: %s (%s)', async (_label, pattern, expected) => {
        const cache = await fresh();
        for (const tenantId of [undefined, '[*?]']) {
          const scope = tenantId === undefined ? {} : { tenantId };
          await cache.setMany(
            PATTERN_KEYS.map((k) => [k, k] as const),
            scope,
          );
          expect(sorted(await list(cache, pattern, scope))).toEqual(sorted(expected));
        }
      });

      it('lists every scope’s own keys exactly as given, whatever the characters (: * unicode), never another scope’s', async () => {
        const cache = await fresh();
        await cache.setMany(NASTY_KEYS.map((k) => [k, 1] as const));
        for (const tenantId of NASTY_TENANTS) await cache.setMany(NASTY_KEYS.map((k) => [`${k}|${tenantId}`, 1] as const), { tenantId });
        expect(sorted(await list(cache, '*'))).toEqual(sorted(NASTY_KEYS));
        for (const tenantId of NASTY_TENANTS) {
          expect(sorted(await list(cache, '*', { tenantId })), `tenant ${tenantId}`).toEqual(sorted(NASTY_KEYS.map((k) => `${k}|${tenantId}`)));
        }
        expect(await list(cache, 't:*')).toEqual(['t:a:b']);
        expect(await list(cache, '*|a:b', { tenantId: 'a' })).toEqual([]);
        expect(await list(cache, '*', { tenantId: 'nobody' })).toEqual([]);
      });

      it('a key of MAX_KEY_LENGTH is listed whole and found by its escaped self', async () => {
        const cache = await fresh();
        const longest = Array.from({ length: MAX_KEY_LENGTH }, (_, i) => ['*', 'é', ':', '?'][i % 4]).join('');
        await cache.set(longest, 1, { tenantId: 'x' });
        expect(await list(cache, '*', { tenantId: 'x' })).toEqual([longest]);
        expect(await list(cache, longest.replace(/[*?[\]\\]/g, '\\$&'), { tenantId: 'x' })).toEqual([longest]);
      });

      it('never lists expired entries', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2 }, { ttl: SHORT_TTL });
        await cache.set('kept', 1);
        await cache.set('t', 1, { ttl: SHORT_TTL, tenantId: 'x' });
        await sleep(PAST_SHORT_TTL_MS);
        expect(await list(cache, '*')).toEqual(['kept']);
        expect(await list(cache, '*', { tenantId: 'x' })).toEqual([]);
      });

      it('a listing over many pages lists every key once, also when keys are deleted while it runs', async () => {
        const cache = await fresh();
        const all = Array.from({ length: 2500 }, (_, i) => `item:${i}`);
        await cache.setMany(all.map((k) => [k, 1] as const));
        const deleted = new Set(all.filter((_, i) => i % 10 === 0));
        const listed: string[] = [];
        for await (const key of cache.keys('item:*')) {
          if (listed.length === 0) for (const k of deleted) await cache.delete(k);
          listed.push(key);
        }
        const untouched = all.filter((k) => !deleted.has(k));
        const seen = new Set(listed);
        for (const key of untouched) expect(seen.has(key), key).toBe(true);
        // Each listed at most once (SCAN may repeat a key only while the server resizes its table).
        expect(listed.filter((k) => !deleted.has(k)).length).toBeLessThanOrEqual(untouched.length + 5);
        expect(listed.every((k) => k.startsWith('item:'))).toBe(true);
      });

      it('stopping a listing early is fine, and the cache keeps working', async () => {
        const cache = await fresh();
        await cache.setMany(Array.from({ length: 50 }, (_, i) => [`k${i}`, i] as const));
        let n = 0;
        for await (const _key of cache.keys('*')) if (++n === 3) break;
        expect(n).toBe(3);
        expect((await list(cache, 'k*')).length).toBe(50);
      });

      it('a bad pattern, tenant or option rejects the first next(); after close it rejects with closed', async () => {
        const first = (cache: Cache, pattern: unknown, options?: unknown) => () => cache.keys(pattern as string, options as ScopeOptions)[Symbol.asyncIterator]().next();
        const cache = await fresh();
        await expectCacheError(first(cache, ''), 'validation');
        await expectCacheError(first(cache, 42), 'validation');
        await expectCacheError(first(cache, '*'.repeat(MAX_PATTERN_LENGTH + 1)), 'validation');
        await expectCacheError(first(cache, '*', { tenantId: '' }), 'validation');
        const misspelt = await expectCacheError(first(cache, '*', { tenantID: 'a' }), 'validation');
        expect(misspelt.message).toBe('keys: unknown option "tenantID" (did you mean "tenantId"?)');
        const closed = await factory();
        await closed.close();
        await expectCacheError(first(closed, '*'), 'closed');
      });
    });

    describe('batches', () => {
      it('setMany accepts a Record, a Map, an array of pairs and any iterable of pairs, and answers the number stored', async () => {
        const cache = await fresh();
        expect(await cache.setMany({ r1: 1, r2: 2 })).toBe(2);
        expect(await cache.setMany(new Map<string, unknown>([['m1', 1], ['m2', new Date(2)]]))).toBe(2);
        expect(
          await cache.setMany([
            ['a1', 1],
            ['a2', 2],
          ]),
        ).toBe(2);
        function* pairs(): Generator<[string, unknown]> {
          yield ['g1', 1];
          yield ['g2', { two: 2 }];
        }
        expect(await cache.setMany(pairs())).toBe(2);
        expect(await cache.setMany({})).toBe(0);
        expect(await cache.setMany([])).toBe(0);
        const all = await cache.getMany(['r1', 'r2', 'm1', 'm2', 'a1', 'a2', 'g1', 'g2']);
        expect(all).toEqual(
          new Map<string, unknown>([
            ['r1', 1],
            ['r2', 2],
            ['m1', 1],
            ['m2', new Date(2)],
            ['a1', 1],
            ['a2', 2],
            ['g1', 1],
            ['g2', { two: 2 }],
          ]),
        );
        expect((await cache.stats()).sets).toBe(8);
      });

      it('a repeated key in setMany stores the last value and counts once', async () => {
        const cache = await fresh();
        expect(
          await cache.setMany([
            ['a', 1],
            ['b', 1],
            ['a', 2],
          ]),
        ).toBe(2);
        expect(await cache.get('a')).toBe(2);
        expect((await cache.stats()).sets).toBe(2);
      });

      it('setMany validates every entry before writing any: one bad value stores nothing', async () => {
        const cache = await fresh();
        await cache.set('a', 'old');
        const entries = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])) as Record<string, unknown>;
        entries.a = 'new';
        entries.k99 = () => 'bad';
        await expectCacheError(() => cache.setMany(entries), 'serialization');
        expect(await cache.get('a')).toBe('old');
        expect((await cache.getMany(Object.keys(entries))).size).toBe(1);
      });

      it('setMany with a __proto__ key stores it as a key like any other', async () => {
        const cache = await fresh();
        const record = JSON.parse('{"__proto__": 1, "b": 2}') as Record<string, unknown>;
        expect(await cache.setMany(record)).toBe(2);
        expect(await cache.get('__proto__')).toBe(1);
      });

      it('getMany returns a Map of the hits only, keyed by the caller’s keys', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, c: 3, n: null });
        const found = await cache.getMany(['a', 'b', 'c', 'n', 'missing']);
        expect(found).toBeInstanceOf(Map);
        expect([...found]).toEqual([
          ['a', 1],
          ['c', 3],
          ['n', null],
        ]);
        expect(await cache.getMany([])).toEqual(new Map());
      });

      it('getMany accepts any iterable of keys, counts each distinct key once', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2 });
        const found = await cache.getMany(new Set(['a', 'x']));
        expect([...found]).toEqual([['a', 1]]);
        const again = await cache.getMany(['a', 'a', 'b', 'y', 'y']);
        expect([...again]).toEqual([
          ['a', 1],
          ['b', 2],
        ]);
        const stats = await cache.stats();
        expect(stats.hits).toBe(3);
        expect(stats.misses).toBe(2);
      });

      it('getMany of many keys finds every one', async () => {
        const cache = await fresh();
        const entries = Array.from({ length: 2500 }, (_, i) => [`key:${i}`, { i }] as const);
        expect(await cache.setMany(entries)).toBe(2500);
        const found = await cache.getMany(entries.map(([k]) => k));
        expect(found.size).toBe(2500);
        expect(found.get('key:2499')).toEqual({ i: 2499 });
      });
    });

    // Registered only for backends that can offer such a cache (not the shared cluster).
    const makeRefusing = extras.refusing;
    if (makeRefusing) describe('a cache that refuses a write (too large, out of memory)', () => {
      const refusing = async (): Promise<Cache> => {
        const cache = await makeRefusing();
        created.push(cache);
        return cache;
      };

      it('set answers false, add rejects with refused (never false, which means "a live entry exists"), setMany counts 0', async () => {
        const cache = await refusing();
        expect(await cache.set('k', REFUSED_VALUE)).toBe(false);
        expect(await cache.set('k', REFUSED_VALUE, { ttl: 60, tenantId: 't' })).toBe(false);
        const error = await expectCacheError(() => cache.add('lock', REFUSED_VALUE), 'refused');
        expect(error.message).toMatch(/^add refused: /);
        await expectCacheError(() => cache.add('lock', REFUSED_VALUE, { ttl: 60, tenantId: 't' }), 'refused');
        expect(await cache.setMany({ a: REFUSED_VALUE, b: REFUSED_VALUE })).toBe(0);
        expect(await cache.setMany({ a: REFUSED_VALUE }, { ttl: 60 })).toBe(0);
        expect(await batchCacheSet(cache, [['a', REFUSED_VALUE]], 60)).toBe(0);
        expect(await cache.getMany(['k', 'lock', 'a', 'b'])).toEqual(new Map());
        expect(await cache.get('lock', { tenantId: 't' })).toBeUndefined();
        expect(await cache.stats()).toMatchObject({ sets: 0, size: 0 });
      });

      it('a refusal is not an outage: the cache answers every other operation', async () => {
        const cache = await refusing();
        await expectCacheError(() => cache.add('lock', REFUSED_VALUE), 'refused');
        expect(await cache.get('lock')).toBeUndefined();
        expect(await cache.delete('lock')).toBe(false);
        expect(await cache.deleteIfEquals('lock', REFUSED_VALUE)).toBe(false);
        expect(await cache.clearPattern('*')).toBe(0);
      });
    });

    describe('add and deleteIfEquals', () => {
      it('add stores only when the key holds no live entry', async () => {
        const cache = await fresh();
        expect(await cache.add('k', 1)).toBe(true);
        expect(await cache.add('k', 2)).toBe(false);
        expect(await cache.get('k')).toBe(1);
        await cache.set('n', null);
        expect(await cache.add('n', 'not null')).toBe(false);
        expect(await cache.get('n')).toBeNull();
        await cache.delete('k');
        expect(await cache.add('k', 3)).toBe(true);
        expect(await cache.get('k')).toBe(3);
        expect((await cache.stats()).sets).toBe(3);
      });

      it('concurrent adds of one key: exactly one wins', async () => {
        const cache = await fresh();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => cache.add('lock', i)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await cache.get('lock')).toBe(results.indexOf(true));
      });

      it('deleteIfEquals removes the entry only while it holds the expected value', async () => {
        const cache = await fresh();
        await cache.set('k', { owner: 'a', at: new Date(0) });
        expect(await cache.deleteIfEquals('k', { owner: 'b', at: new Date(0) })).toBe(false);
        expect(await cache.get('k')).toStrictEqual({ owner: 'a', at: new Date(0) });
        expect(await cache.deleteIfEquals('k', { owner: 'a', at: new Date(0) })).toBe(true);
        expect(await cache.get('k')).toBeUndefined();
        expect(await cache.deleteIfEquals('k', { owner: 'a', at: new Date(0) })).toBe(false);
        await cache.set('p', { b: 1, a: [1, 'x'] });
        expect(await cache.deleteIfEquals('p', { b: 1, a: [1, 'x'] })).toBe(true);
        await cache.set('n', null);
        expect(await cache.deleteIfEquals('n', null)).toBe(true);
        expect((await cache.stats()).deletes).toBe(3);
      });

      it('deleteIfEquals in another tenant leaves the entry', async () => {
        const cache = await fresh();
        await cache.set('k', 1, { tenantId: 'x' });
        expect(await cache.deleteIfEquals('k', 1)).toBe(false);
        expect(await cache.deleteIfEquals('k', 1, { tenantId: 'y' })).toBe(false);
        expect(await cache.get('k', { tenantId: 'x' })).toBe(1);
      });
    });

    describe('delete', () => {
      it('delete answers true when it removed a live entry and false when nothing was there', async () => {
        const cache = await fresh();
        await cache.set('k', 1);
        expect(await cache.delete('k')).toBe(true);
        expect(await cache.delete('k')).toBe(false);
        expect(await cache.get('k')).toBeUndefined();
        expect((await cache.stats()).deletes).toBe(1);
      });
    });

    describe('stats', () => {
      it('a fresh cache reports zeros', async () => {
        const cache = await fresh();
        expect(await cache.stats()).toMatchObject({ hits: 0, misses: 0, hitRate: 0, missRate: 0, size: 0, memoryMb: 0, sets: 0, deletes: 0, errors: 0 });
      });

      it('hits and misses are exact under concurrency', async () => {
        const cache = await fresh();
        await cache.setMany(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])));
        await Promise.all([
          ...Array.from({ length: 300 }, (_, i) => cache.get(`k${i % 100}`)),
          ...Array.from({ length: 100 }, (_, i) => cache.get(`absent${i}`)),
          ...Array.from({ length: 10 }, () => cache.getMany(['k1', 'k2', 'absent'])),
        ]);
        const stats = await cache.stats();
        expect(stats.hits).toBe(320);
        expect(stats.misses).toBe(110);
        expect(stats.hitRate).toBeCloseTo(320 / 430, 10);
        expect(stats.missRate).toBeCloseTo(110 / 430, 10);
        expect(stats.sets).toBe(100);
      });

      it('sets, deletes and size follow what was stored and removed', async () => {
        const cache = await fresh();
        await cache.set('a', 1);
        await cache.set('a', 2);
        await cache.setMany({ b: 1, c: 2, d: 3 });
        await cache.add('e', 1);
        await cache.add('e', 2);
        await cache.delete('a');
        await cache.delete('absent');
        await cache.clearPattern('[bc]');
        expect(await cache.stats()).toMatchObject({ sets: 6, deletes: 3, size: 2 });
      });

      it('memoryMb is measured: above 0 with entries, and it grows with what is stored', async () => {
        const cache = await fresh();
        await cache.set('small', 1);
        const small = (await cache.stats()).memoryMb;
        expect(small).toBeGreaterThan(0);
        await cache.set('big', 'x'.repeat(200_000));
        const big = (await cache.stats()).memoryMb;
        expect(big - small).toBeGreaterThan(0.15);
        await cache.delete('big');
        expect((await cache.stats()).memoryMb).toBeLessThan(big);
      });
    });

    describe('lifecycle', () => {
      it('validate answers true on a working cache, also while expired entries await removal', async () => {
        const cache = await fresh();
        expect(await cache.validate()).toBe(true);
        await cache.set('short', 1, { ttl: SHORT_TTL });
        await cache.set('long', 1);
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.validate()).toBe(true);
        expect(await validateCache(cache)).toBe(true);
      });

      it('clear empties every scope of this cache and nothing of another cache', async () => {
        const cache = await fresh();
        const other = await fresh();
        await cache.setMany({ a: 1, b: 2 });
        await cache.set('a', 1, { tenantId: 't' });
        await other.set('a', 'other');
        await other.set('a', 'other', { tenantId: 't' });
        await cache.clear();
        expect(await cache.get('a')).toBeUndefined();
        expect(await cache.get('a', { tenantId: 't' })).toBeUndefined();
        expect((await cache.stats()).size).toBe(0);
        expect(await other.get('a')).toBe('other');
        expect(await other.get('a', { tenantId: 't' })).toBe('other');
        expect(await cache.set('a', 3)).toBe(true);
        expect(await cache.get('a')).toBe(3);
      });

      it('after close every operation rejects with errorType closed, and validate answers false', async () => {
        const cache = await factory();
        await cache.close();
        await expectCacheError(() => cache.get('k'), 'closed');
        await expectCacheError(() => cache.set('k', 1), 'closed');
        await expectCacheError(() => cache.add('k', 1), 'closed');
        await expectCacheError(() => cache.delete('k'), 'closed');
        await expectCacheError(() => cache.deleteIfEquals('k', 1), 'closed');
        await expectCacheError(() => cache.clearPattern('*'), 'closed');
        await expectCacheError(() => cache.getMany(['k']), 'closed');
        await expectCacheError(() => cache.setMany({ k: 1 }), 'closed');
        await expectCacheError(() => cache.stats(), 'closed');
        await expectCacheError(() => cache.clear(), 'closed');
        expect(await cache.validate()).toBe(false);
        await expect(cache.close()).resolves.toBeUndefined();
      });

      it('errors are rejected promises, never synchronous throws, for every operation', async () => {
        const cache = await fresh();
        const bad = '' as string;
        await expectCacheError(() => cache.get(bad), 'validation');
        await expectCacheError(() => cache.set('k', Symbol('s')), 'serialization');
        await expectCacheError(() => cache.clearPattern(bad), 'validation');
        await expectCacheError(() => cache.stats({ tenantId: bad }), 'validation');
        await expectCacheError(() => cacheGet(cache, bad), 'validation');
        await expectCacheError(() => cacheSet(cache, bad, 1), 'validation');
        await expectCacheError(() => cacheDelete(cache, bad), 'validation');
        await expectCacheError(() => cacheClearPattern(cache, bad), 'validation');
        await expectCacheError(() => batchCacheGet(cache, [bad]), 'validation');
        await expectCacheError(() => batchCacheSet(cache, [[bad, 1]]), 'validation');
        await expectCacheError(() => getCacheStats(cache, { tenantId: bad }), 'validation');
      });

      it("the guide's functions behave as the methods they wrap", async () => {
        const cache = await fresh();
        expect(await cacheSet(cache, 'user:123', { name: 'John' }, { ttl: 300, tenantId: 'tenant_123' })).toBe(true);
        expect(await cacheGet(cache, 'user:123', { tenantId: 'tenant_123' })).toEqual({ name: 'John' });
        expect(await cacheGet(cache, 'user:123')).toBeUndefined();
        expect(await batchCacheSet(cache, { 'user:1': 1, 'user:2': 2 })).toBe(2);
        expect(await batchCacheGet(cache, ['user:1', 'user:3'])).toEqual(new Map([['user:1', 1]]));
        expect(await cacheDelete(cache, 'user:1')).toBe(true);
        expect(await cacheClearPattern(cache, 'user:*')).toBe(1);
        expect(await validateCache(cache)).toBe(true);
        expect(await getCacheStats(cache, { tenantId: 'tenant_123' })).toMatchObject({ size: 1, hits: 1, sets: 1 });
      });

    describe('inspect', () => {
      it('tells the value, the TTL left in seconds and the bytes of a live entry, and undefined for an absent one', async () => {
        const cache = await fresh();
        await cache.set('doc', { title: 'a' }, { ttl: 60 });
        await cache.set('forever', [1, 2]);
        const info = await cache.inspect('doc');
        expect(info?.value).toEqual({ title: 'a' });
        expect(info?.ttl).toBeGreaterThan(55);
        expect(info?.ttl).toBeLessThanOrEqual(60);
        expect(info?.bytes).toBeGreaterThan(0);
        expect((await cache.inspect('forever'))?.ttl).toBe(Infinity);
        expect(await cache.inspect('absent')).toBeUndefined();
      });

      it('keeps to the scope, counts no read and leaves an expired entry unseen', async () => {
        const cache = await fresh();
        await cache.set('k', 'mine', { tenantId: 'acme' });
        await cache.set('short', 1, { ttl: SHORT_TTL });
        expect(await cache.inspect('k')).toBeUndefined();
        expect((await cache.inspect('k', { tenantId: 'acme' }))?.value).toBe('mine');
        const stats = await cache.stats();
        expect(stats.hits + stats.misses).toBe(0);
        await sleep(PAST_SHORT_TTL_MS);
        expect(await cache.inspect('short')).toBeUndefined();
        await expectCacheError(() => cache.inspect('' as string), 'validation');
        await expectCacheError(() => cache.inspect('k', { tenant: 'acme' } as ScopeOptions), 'validation');
      });
    });

    describe('events', () => {
      const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

      it('emits hit, miss, set and delete after each operation answered, with key, tenant, count and duration', async () => {
        const cache = await fresh();
        const seen: CacheEvent[] = [];
        const record = (event: CacheEvent) => void seen.push(event);
        for (const type of ['hit', 'miss', 'set', 'delete'] as const) cache.on(type, record);
        await cache.set('a', 1, { tenantId: 'acme' });
        expect(seen).toEqual([]);
        await settle();
        expect(seen).toHaveLength(1);
        await cache.get('a', { tenantId: 'acme' });
        await cache.get('b');
        await cache.getMany(['a', 'b', 'c']);
        await cache.setMany({ x: 1, y: 2 });
        await cache.delete('x');
        await cache.clearPattern('*');
        await settle();
        const brief = seen.map((e) => [e.type, e.operation, e.key, e.count, e.tenantId]);
        expect(brief).toEqual([
          ['set', 'set', 'a', 1, 'acme'],
          ['hit', 'get', 'a', 1, 'acme'],
          ['miss', 'get', 'b', 1, undefined],
          ['miss', 'getMany', undefined, 3, undefined],
          ['set', 'setMany', undefined, 2, undefined],
          ['delete', 'delete', 'x', 1, undefined],
          ['delete', 'clearPattern', undefined, 1, undefined],
        ]);
        expect(seen.every((e) => e.source === cache.kind || e.tier !== undefined)).toBe(true);
        for (const e of seen.slice(0, 3)) expect(e.durationMs).toBeGreaterThanOrEqual(0);
      });

      it('a throwing, rejecting or never-settling listener neither breaks nor delays an operation, and is counted', async () => {
        const cache = await fresh();
        cache.on('set', () => {
          throw new Error('listener bug');
        });
        cache.on('set', () => Promise.reject(new Error('async listener bug')));
        cache.on('hit', () => new Promise(() => {}));
        expect(await cache.set('k', 1)).toBe(true);
        expect(await cache.get('k')).toBe(1);
        await settle();
        expect((await cache.stats()).listenerErrors).toBe(2);
      });

      it('off stops a listener; unknown events and non-functions are refused', async () => {
        const cache = await fresh();
        let calls = 0;
        const listener = () => void calls++;
        expect(cache.on('set', listener)).toBe(cache);
        await cache.set('k', 1);
        await settle();
        cache.off('set', listener);
        await cache.set('k', 2);
        await settle();
        expect(calls).toBe(1);
        expect(() => cache.on('hits' as 'hit', listener)).toThrow(/unknown event "hits"/);
        expect(() => cache.on('hit', 'no' as never)).toThrow(CacheError);
      });
    });

    describe('stats size', () => {
      it('says how size was obtained and how far off it may be', async () => {
        const cache = await fresh();
        await cache.setMany({ a: 1, b: 2, c: 3 });
        const stats = await cache.stats();
        expect(stats).toMatchObject({ size: 3, sizeMethod: 'counted', sizeMargin: 0 });
        expect(await cache.stats({ exact: true })).toMatchObject({ size: 3, sizeMethod: 'counted', sizeMargin: 0 });
        await expectCacheError(() => cache.stats({ exact: 'yes' } as never), 'validation');
      });
    });
    });
  });
}
