import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import { decode, encode } from '../../src/core/serialization.js';
import { MAX_KEY_LENGTH, MAX_TENANT_LENGTH } from '../../src/core/keys.js';
import type { Cache, ScopeOptions } from '../../src/core/types.js';
import { expectCacheError } from '../backends/behaviour-suite.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { describeWith } from '../helpers/skips.js';

/** Repeats `chars` until exactly `length` UTF-16 code units, never splitting a surrogate pair. */
function exactly(length: number, chars: string[]): string {
  let out = '';
  let i = 0;
  while (out.length < length) {
    const c = chars[i++ % chars.length] as string;
    out += out.length + c.length <= length ? c : 'x';
  }
  return out;
}

// Glob metacharacters, separators, backslashes, braces (Redis Cluster hash tags), percent signs and unicode.
const HOSTILE = ['*', '?', '[', ']', '^', '-', '\\', ':', '|', '{', '}', '%', '%3A', '/', '.', ' ', 'é', '🙂', '\u0000', '\n', 't:', 'g:'];
const LONGEST_TENANT = exactly(MAX_TENANT_LENGTH, HOSTILE);
const LONGEST_KEY = exactly(MAX_KEY_LENGTH, HOSTILE);

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__'];

/** Nests `depth` containers around a leaf: depth 1 is `[1]`. */
function nested(depth: number, wrap: (inner: unknown) => unknown = (v) => [v]): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = wrap(value);
  return value;
}

function expectPrototypesClean(): void {
  expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  expect(typeof Object.prototype.toString).toBe('function');
  expect(typeof Object.prototype.hasOwnProperty).toBe('function');
  expect(Object.getPrototypeOf({})).toBe(Object.prototype);
}

/** Everything a scope can observe about `keys`: its hits, and its size, sets and deletes. */
async function observe(cache: Cache, scope: ScopeOptions, keys: string[]) {
  const found = [...(await cache.getMany(keys, scope))];
  const { size, sets, deletes } = await cache.stats(scope);
  return { found, size, sets, deletes };
}

describeEachBackend('hostile input', ({ cache }) => {
  describe('tenant ids and keys at their limits', () => {
    it('a 256-character tenant and a 2048-character key full of metacharacters, braces and unicode round-trip', async () => {
      const c = cache();
      const tenant = { tenantId: LONGEST_TENANT };
      expect(LONGEST_TENANT.length).toBe(MAX_TENANT_LENGTH);
      expect(LONGEST_KEY.length).toBe(MAX_KEY_LENGTH);
      expect(await c.set(LONGEST_KEY, 'mine', tenant)).toBe(true);
      expect(await c.get(LONGEST_KEY, tenant)).toBe('mine');
      expect(await c.getMany([LONGEST_KEY], tenant)).toEqual(new Map([[LONGEST_KEY, 'mine']]));
      expect(await c.get(LONGEST_KEY)).toBeUndefined();
      // The same tenant but its last character: a different tenant.
      expect(await c.get(LONGEST_KEY, { tenantId: `${LONGEST_TENANT.slice(0, -1)}y` })).toBeUndefined();
      expect((await c.stats(tenant)).size).toBe(1);
      // The whole key escaped is within the pattern limit (twice the key limit) and matches it.
      expect(await c.clearPattern(LONGEST_KEY.replace(/[*?[\]\\]/g, '\\$&'), tenant)).toBe(1);
      expect(await c.get(LONGEST_KEY, tenant)).toBeUndefined();
    });

    it('one character over either limit is a validation error for every operation, and nothing is stored', async () => {
      const c = cache();
      const longTenant = { tenantId: `${LONGEST_TENANT}x` };
      const longKey = `${LONGEST_KEY}x`;
      await expectCacheError(() => c.set('k', 1, longTenant), 'validation');
      await expectCacheError(() => c.add('k', 1, longTenant), 'validation');
      await expectCacheError(() => c.get('k', longTenant), 'validation');
      await expectCacheError(() => c.getMany(['k'], longTenant), 'validation');
      await expectCacheError(() => c.setMany({ k: 1 }, longTenant), 'validation');
      await expectCacheError(() => c.delete('k', longTenant), 'validation');
      await expectCacheError(() => c.deleteIfEquals('k', 1, longTenant), 'validation');
      await expectCacheError(() => c.clearPattern('*', longTenant), 'validation');
      await expectCacheError(() => c.stats(longTenant), 'validation');
      await expectCacheError(() => c.set(longKey, 1), 'validation');
      await expectCacheError(() => c.add(longKey, 1), 'validation');
      await expectCacheError(() => c.get(longKey), 'validation');
      await expectCacheError(() => c.getMany(['ok', longKey]), 'validation');
      await expectCacheError(() => c.setMany([['ok', 1], [longKey, 1]]), 'validation');
      // Patterns may be twice as long as keys (an escaped key), not longer.
      await expectCacheError(() => c.clearPattern(`${LONGEST_KEY}${LONGEST_KEY}*`), 'validation');
      expect(await c.stats()).toMatchObject({ size: 0, sets: 0 });
    });
  });

  describe('tenant isolation under attack', () => {
    const VICTIM = 'victim';
    const VICTIM_KEYS = ['k', 'secret', '{victim}', 'a:b', '*'];
    // Tenant ids and keys that try to name the victim's raw keys, escape a scope with a glob, or collide after encoding.
    const ATTACKERS: (string | undefined)[] = [
      undefined,
      'victim:',
      'victim*',
      'vict?m',
      'victi[m]',
      '[v]ictim',
      'victim\\',
      '{victim}',
      'Victim',
      'victim ',
      'vïctim',
      '%76ictim',
      't:victim',
      '*',
      '\\*',
      '__proto__',
      exactly(MAX_TENANT_LENGTH, ['victim', ':', '*']),
    ];
    const ATTACK_KEYS = ['k', 't:victim:k', 'victim:k', ':k', '../victim/k', '*', 'g:k', '{victim}', '\\', 'secret'];
    const ATTACK_PATTERNS = ['*', '*:*', 't:*', '*victim*', '\\*', '[a-z]*', '?*', '*\\', '[', '{*}', 'victim:*', '../*'];

    it('no tenant or untenanted caller reads, writes, counts or deletes another tenant’s entries, whatever its id, keys or patterns', async () => {
      const c = cache();
      const victim = { tenantId: VICTIM };
      await c.setMany(
        VICTIM_KEYS.map((k) => [k, `victim|${k}`] as const),
        victim,
      );
      const before = await observe(c, victim, [...VICTIM_KEYS, ...ATTACK_KEYS]);
      for (const attacker of ATTACKERS) {
        const scope: ScopeOptions = attacker === undefined ? {} : { tenantId: attacker };
        const label = `attacker ${JSON.stringify(attacker)}`;
        for (const key of ATTACK_KEYS) expect(await c.get(key, scope), `${label} get ${key}`).toBeUndefined();
        expect((await c.getMany([...VICTIM_KEYS, ...ATTACK_KEYS], scope)).size, label).toBe(0);
        expect((await c.stats(scope)).size, label).toBe(attacker === undefined ? VICTIM_KEYS.length : 0);
        for (const key of ATTACK_KEYS) {
          expect(await c.add(key, 'x', scope), `${label} add ${key}`).toBe(true);
          expect(await c.delete(key, scope), `${label} delete ${key}`).toBe(true);
          expect(await c.delete(key, scope), `${label} delete ${key} again`).toBe(false);
          expect(await c.deleteIfEquals(key, `victim|${key}`, scope), `${label} deleteIfEquals ${key}`).toBe(false);
        }
        await c.setMany(
          ATTACK_KEYS.map((k) => [k, 'overwritten'] as const),
          scope,
        );
        let removed = 0;
        for (const pattern of ATTACK_PATTERNS) removed += await c.clearPattern(pattern, scope);
        expect(removed, `${label} clearPattern removes exactly its own ${ATTACK_KEYS.length} keys`).toBe(ATTACK_KEYS.length);
      }
      expect(await observe(c, victim, [...VICTIM_KEYS, ...ATTACK_KEYS])).toEqual(before);
      expect(before.found).toEqual(VICTIM_KEYS.map((k) => [k, `victim|${k}`]));
    });
  });

  describe('prototype keys and values', () => {
    it('__proto__, constructor, prototype, hasOwnProperty and toString are ordinary keys in setMany (record, Map, pairs) and getMany', async () => {
      const c = cache();
      const record = JSON.parse(`{${PROTO_KEYS.map((k) => `"${k}": {"polluted": "record ${k}"}`).join(',')}}`) as Record<string, unknown>;
      expect(Object.keys(record)).toEqual(PROTO_KEYS);
      expect(await c.setMany(record)).toBe(PROTO_KEYS.length);
      expect(await c.setMany(new Map(PROTO_KEYS.map((k) => [k, { polluted: `map ${k}` }])), { tenantId: 'map' })).toBe(PROTO_KEYS.length);
      expect(await c.setMany(PROTO_KEYS.map((k) => [k, { polluted: `pairs ${k}` }] as const), { tenantId: '__proto__' })).toBe(PROTO_KEYS.length);
      for (const [scope, label] of [
        [{}, 'record'],
        [{ tenantId: 'map' }, 'map'],
        [{ tenantId: '__proto__' }, 'pairs'],
      ] as const) {
        const found = await c.getMany(PROTO_KEYS, scope);
        expect([...found]).toEqual(PROTO_KEYS.map((k) => [k, { polluted: `${label} ${k}` }]));
        for (const k of PROTO_KEYS) expect(await c.get(k, scope)).toEqual({ polluted: `${label} ${k}` });
      }
      expect(await c.getMany(['__proto__', 'absent'], { tenantId: 'constructor' })).toEqual(new Map());
      expectPrototypesClean();
    });

    it('values whose own properties are __proto__ or constructor round-trip as own properties and change no prototype', async () => {
      const c = cache();
      const plain = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}, "a": {"__proto__": []}}') as Record<string, unknown>;
      // The tagged form (a Date inside) takes another decoding path; so does a Map holding the object.
      const tagged = { when: new Date(0), inner: plain };
      const inMap = new Map<string, unknown>([['__proto__', plain]]);
      await c.setMany([
        ['plain', plain],
        ['tagged', tagged],
        ['map', inMap],
      ]);
      const got = await c.getMany<unknown>(['plain', 'tagged', 'map']);
      const values = [got.get('plain'), (got.get('tagged') as { inner: unknown }).inner, (got.get('map') as Map<string, unknown>).get('__proto__')];
      for (const value of values as Record<string, unknown>[]) {
        expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
        expect(Object.keys(value)).toEqual(['__proto__', 'constructor', 'a']);
        expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ polluted: 1 });
        expect((value as { polluted?: unknown }).polluted).toBeUndefined();
        expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
        expect(Array.isArray(Object.getOwnPropertyDescriptor(value.a, '__proto__')?.value)).toBe(true);
      }
      expect(await c.deleteIfEquals('plain', plain)).toBe(true);
      expectPrototypesClean();
    });
  });

  describe('deeply nested values', () => {
    it('512 levels of nesting are stored and read back, in arrays, objects, Maps and a mix', async () => {
      const c = cache();
      const shapes: [string, unknown][] = [
        ['arrays', nested(512)],
        ['objects', nested(512, (v) => ({ v }))],
        ['maps', nested(512, (v) => new Map([['v', v]]))],
        ['mixed', nested(512, (v) => (Math.random() < 0.5 ? [v] : new Set([v])))],
      ];
      for (const [key, value] of shapes) {
        expect(await c.set(key, value), key).toBe(true);
        expect(await c.get(key), key).toStrictEqual(value);
      }
    });

    it('513 levels and deeper are refused with serialization by set, add, setMany and deleteIfEquals, and nothing is stored', async () => {
      const c = cache();
      await c.set('keep', 'old');
      for (const depth of [513, 600, 100_000]) {
        for (const value of [nested(depth), nested(depth, (v) => ({ v })), nested(depth, (v) => new Map([['v', v]]))]) {
          await expectCacheError(() => c.set('keep', value), 'serialization');
          await expectCacheError(() => c.add('deep', value), 'serialization');
          await expectCacheError(() => c.setMany({ ok: 1, deep: value }), 'serialization');
          await expectCacheError(() => c.deleteIfEquals('keep', value), 'serialization');
        }
      }
      expect(await c.getMany(['keep', 'deep', 'ok'])).toEqual(new Map([['keep', 'old']]));
      expect((await c.stats()).sets).toBe(1);
    });
  });
});

describe('decoding text nested deeper than anything encode writes', () => {
  it('is refused with a serialization CacheError, not a RangeError, in the plain and the tagged form', () => {
    for (const text of [`${'['.repeat(100_000)}${']'.repeat(100_000)}`, `~${'['.repeat(100_000)}${']'.repeat(100_000)}`, `${'['.repeat(513)}${']'.repeat(513)}`, `${'{"a":'.repeat(513)}1${'}'.repeat(513)}`, `[1,{"x":"]]]","y":[${'[{"z":'.repeat(300)}0${'}]'.repeat(300)}]}]`]) {
      let error: unknown;
      try {
        decode(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CacheError);
      expect((error as CacheError).errorType).toBe('serialization');
    }
  });

  it('lets through the deepest values encode writes, and brackets inside strings do not count', () => {
    const deepest = [nested(512), nested(512, (v) => new Map([['v', v]])), nested(512, (v) => ({ '[{"\\': v }))];
    for (const value of deepest) expect(decode(encode(value))).toStrictEqual(value);
    const brackets = { s: '['.repeat(5000), t: '"\\'.repeat(300) + '{'.repeat(2000) };
    expect(decode(encode(brackets))).toStrictEqual(brackets);
  });
});

describe('memory: values at and over maxBytes', () => {
  const MAX = 4096;

  /** The UTF-8 bytes the memory cache counts for an entry: its key (with its tenant's framing) plus its encoding. */
  const bytesOf = (rawKey: string, value: string) => Buffer.byteLength(rawKey) + Buffer.byteLength(JSON.stringify(value));
  /** A string value whose entry is exactly `target` bytes under `rawKey`, unicode included. */
  function valueOfSize(rawKey: string, target: number): string {
    const base = 'é🙂'.repeat(100);
    const fill = target - bytesOf(rawKey, base);
    return base + 'x'.repeat(fill);
  }

  it('an entry exactly at maxBytes is stored; one byte over is refused and keeps the old value (set false, add rejects, setMany 0, tenants)', async () => {
    for (const tenantId of [undefined, 'a:b*']) {
      const cache = createMemoryCache({ maxBytes: MAX });
      const scope = tenantId === undefined ? {} : { tenantId };
      // A tenant's entry counts its encoded tenant id plus 6 bytes of framing.
      const raw = tenantId === undefined ? 'k' : '123t:a%3Ab%2A:k';
      const atLimit = valueOfSize(raw, MAX);
      const over = valueOfSize(raw, MAX + 1);
      expect(bytesOf(raw, atLimit)).toBe(MAX);
      expect(bytesOf(raw, over)).toBe(MAX + 1);

      expect(await cache.set('k', 'old', scope)).toBe(true);
      expect(await cache.set('k', over, scope)).toBe(false);
      expect(await cache.get('k', scope)).toBe('old');
      expect(await cache.setMany({ k: over }, scope)).toBe(0);
      expect(await cache.get('k', scope)).toBe('old');
      expect(await cache.set('k', atLimit, scope)).toBe(true);
      expect(await cache.get('k', scope)).toBe(atLimit);
      expect((await cache.stats()).memoryMb * 1024 * 1024).toBe(MAX);
      expect(await cache.set('k', over, scope)).toBe(false);
      expect(await cache.get('k', scope)).toBe(atLimit);
      expect(await cache.delete('k', scope)).toBe(true);
      await expectCacheError(() => cache.add('k', over, scope), 'refused');
      expect(await cache.get('k', scope)).toBeUndefined();
      expect(await cache.add('k', atLimit, scope)).toBe(true);
      expect(await cache.validate()).toBe(true);
    }
  });

  it('a 50 MB string over maxBytes is refused with false, holding nothing', async () => {
    const cache = createMemoryCache({ maxBytes: 1024 * 1024 });
    expect(await cache.set('huge', 'x'.repeat(50 * 1024 * 1024))).toBe(false);
    expect(await cache.get('huge')).toBeUndefined();
    expect((await cache.stats()).memoryMb).toBe(0);
  });
});

describeWith('redis')('Redis: huge values and foreign data under the prefix', () => {
  let admin: Redis;
  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await admin.quit();
  });

  it('a 50 MB string round-trips, or fails with a typed CacheError and leaves nothing half-written', async () => {
    const keyPrefix = uniquePrefix('huge');
    // A generous deadline: 50 MB crosses the socket twice; a timeout is still an accepted, typed outcome.
    const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix, commandTimeout: 10_000 });
    try {
      let huge: string | undefined = 'é'.repeat(25 * 1024 * 1024);
      let stored: boolean | CacheError;
      try {
        stored = await cache.set('huge', huge);
      } catch (error) {
        stored = error as CacheError;
      }
      if (stored === true) {
        const back = await cache.get<string>('huge');
        expect(back?.length).toBe(huge.length);
        expect(back === huge).toBe(true);
      } else {
        expect(stored).toBeInstanceOf(CacheError);
        const value = await cache.get<string>('huge');
        expect(value === undefined || value === huge).toBe(true);
      }
      huge = undefined;
      expect(await cache.set('small', 1)).toBe(true);
      expect(await cache.get('small')).toBe(1);
    } finally {
      await cache.clear();
      await cache.close();
    }
  }, 30_000);

  it('deep, garbage, unknown-tag and prototype-named foreign payloads read as misses counted in errors, never a crash or a RangeError', async () => {
    const keyPrefix = uniquePrefix('foreign-deep');
    const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix });
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const foreign: Record<string, string | Buffer> = {
      deepArray: `ck1|${deepArray}`,
      deepObject: `ck1|${deepObject}`,
      deepTagged: `ck1|~${deepArray}`,
      // Just over what cachekit writes: 513 nested arrays.
      justTooDeep: `ck1|${'['.repeat(513)}${']'.repeat(513)}`,
      garbage: Buffer.from([0x63, 0x6b, 0x31, 0x7c, 0xff, 0xfe, 0x00, 0x80, 0x7b]),
      binary: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
      empty: '',
      envelopeOnly: 'ck1|',
      tildeOnly: 'ck1|~',
      unknownTag: 'ck1|~{"\\u0000ck":"zz","v":1}',
      tagOnPrototypeName: 'ck1|~{"\\u0000ck":"t","k":"constructor","v":""}',
      protoTypedArray: 'ck1|~{"\\u0000ck":"t","k":"__proto__","v":""}',
      badMap: 'ck1|~{"\\u0000ck":"m","v":"not pairs"}',
      badBigInt: 'ck1|~{"\\u0000ck":"b","v":"1.5"}',
    };
    const keys = Object.keys(foreign);
    try {
      for (const [k, payload] of Object.entries(foreign)) {
        await admin.set(`${keyPrefix}:g:${k}`, payload);
        await admin.set(`${keyPrefix}:t:acme:${k}`, payload);
      }
      for (const k of keys) {
        expect(await cache.get(k), k).toBeUndefined();
        expect(await cache.get(k, { tenantId: 'acme' }), k).toBeUndefined();
      }
      expect(await cache.getMany(keys)).toEqual(new Map());
      expect(await cache.getMany(keys, { tenantId: 'acme' })).toEqual(new Map());
      expect(await cache.stats({ tenantId: 'acme' })).toMatchObject({ hits: 0, misses: 2 * keys.length, errors: 2 * keys.length });
      expect(await cache.stats()).toMatchObject({ hits: 0, misses: 4 * keys.length, errors: 4 * keys.length });
      // The cache still works, and its own writes replace the foreign data.
      expect(await cache.set('deepArray', nested(512))).toBe(true);
      expect(await cache.get('deepArray')).toStrictEqual(nested(512));
      expectPrototypesClean();
    } finally {
      await cache.clear();
      await cache.close();
    }
  });
});
