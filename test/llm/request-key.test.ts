import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/core/errors.js';
import { REQUEST_KEY_VERSION, requestKey } from '../../src/llm/request-key.js';

// An encoding independent of the one under test: JSON with sorted keys.
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function shuffledCopy(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffledCopy(v, seed + i));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    // A deterministic rotation and reversal: a different insertion order whenever there are 2+ keys.
    const rotated = [...entries.slice(seed % Math.max(entries.length, 1)), ...entries.slice(0, seed % Math.max(entries.length, 1))].reverse();
    return Object.fromEntries(rotated.map(([k, v]) => [k, shuffledCopy(v, seed + 1)]));
  }
  return value;
}

// The v1 encoding as first written: naive and slow on purpose, so the tuned
// implementation can be checked against it on generated values of every kind.
function referenceText(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case 'string':
      return `s${value.length}:${value}`;
    case 'number':
      return `n${value === 0 ? 0 : value};`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `b${value};`;
    case 'undefined':
      return 'U';
    case 'function':
    case 'symbol':
      throw new CacheError(`cannot derive a key from a ${typeof value}`, 'serialization');
  }
  if (value === null) return 'N';
  const obj = value as object;
  if (ancestors.includes(obj)) throw new CacheError('cannot derive a key from a circular structure', 'serialization');
  const inner = (v: unknown) => referenceText(v, [...ancestors, obj]);
  if (Array.isArray(obj)) return `[${Array.from(obj, inner).join('')}]`;
  const proto = Object.getPrototypeOf(obj);
  if (proto === Object.prototype || proto === null) {
    const record = obj as Record<string, unknown>;
    const fields = Object.keys(record).sort().filter((key) => record[key] !== undefined);
    return `{${fields.map((key) => inner(key) + inner(record[key])).join('')}}`;
  }
  const builtin = (...ctors: { prototype: object }[]) => ctors.some((ctor) => ctor.prototype === proto);
  if (builtin(Date)) return `D${(obj as Date).getTime()};`;
  if (builtin(Map)) return `M{${[...(obj as Map<unknown, unknown>)].map(([k, v]) => inner(k) + inner(v)).sort().join('')}}`;
  if (builtin(Set)) return `S{${[...(obj as Set<unknown>)].map(inner).sort().join('')}}`;
  if (builtin(Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView, Buffer)) {
    const view = obj as ArrayBufferView;
    return `A${inner(view.constructor.name)}${inner(Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64'))}`;
  }
  if (builtin(ArrayBuffer)) return `B${inner(Buffer.from(obj as ArrayBuffer).toString('base64'))}`;
  if (builtin(URL)) return `W${inner((obj as URL).href)}`;
  if (builtin(RegExp)) return `R${inner((obj as RegExp).source)}${inner((obj as RegExp).flags)}`;
  if (builtin(Number, String, Boolean, BigInt)) return `P${inner((obj as { valueOf(): unknown }).valueOf())}`;
  throw new CacheError('cannot derive a key from a class instance', 'serialization');
}

function referenceKey(value: unknown): string {
  const text = referenceText(value, []);
  const hash = createHash('sha256');
  if (text.isWellFormed()) hash.update('8').update(text, 'utf8');
  else hash.update('L').update(text, 'utf16le');
  return `v1:${hash.digest('hex')}`;
}

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
}

const filler = 'The retrieval step returned these passages; answer only from them. ';

function longChatRequest(): Record<string, unknown> {
  const messages: Array<Record<string, unknown>> = [{ role: 'system', content: filler.repeat(20) }];
  for (let i = 0; i < 12; i++) {
    messages.push({ content: `Question ${i}: ${filler.slice(0, 40 + i * 7)}`, role: 'user' });
    messages.push({ role: 'assistant', content: `Answer ${i}: ${filler.repeat(1 + (i % 3))}`, name: undefined });
  }
  return {
    tools: [
      {
        type: 'function',
        function: {
          strict: true,
          name: 'search_docs',
          parameters: {
            type: 'object',
            required: ['query'],
            properties: { query: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 50, default: 10 } },
            additionalProperties: false,
          },
        },
      },
    ],
    model: 'gpt-4o-mini',
    messages,
    temperature: 0.2,
    max_tokens: 800,
    response_format: { type: 'text' },
    user: undefined,
  };
}

function nested(levels: number, bottom: unknown): unknown {
  let value = bottom;
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { [`k${i % 5}`]: value, z: i };
  return value;
}

// Keys computed by the implementation these values were first pinned with.
function pinnedCases(): Array<[string, unknown, string | undefined, string]> {
  const shared = { id: 7 };
  const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 });
  const sparse = [1, , 3];
  return [
    ['a ~5 KB chat request with tools and unsorted keys', longChatRequest(), undefined, 'v1:2aee1b82f84113ab3251236d2c0fd41811d7dc09d3770a5f402d7ddaa43d40fe'],
    ['the same request under a namespace with colons', longChatRequest(), 'a:b:c', 'v1:a:b:c:2aee1b82f84113ab3251236d2c0fd41811d7dc09d3770a5f402d7ddaa43d40fe'],
    [
      'unsorted nested keys, numeric-like keys and undefined properties',
      { z: { y: 1, x: [{ b: undefined, a: 'x' }] }, 10: 'ten', 2: 'two', '': 'empty key', a: undefined },
      undefined,
      'v1:130546f43e76ffb621c35dad562635270ff91521c747379a73f965a2f3789f3c',
    ],
    [
      'a lone surrogate deep inside an object',
      { messages: [{ role: 'user', content: 'broken \uDC00 pair and é' }] },
      undefined,
      'v1:4c447a23b3d7d2fc55112c97f223f5fc8bc6d4f9875fa2b7e11b51c25edce793',
    ],
    ['a lone surrogate as an object key', { 'k\uD800': 1 }, undefined, 'v1:1818fdef9552b614d5357c544915a708a1dec79d920e90f3b5fdf68371bbd20f'],
    ['a surrogate pair, Latin-1 and CJK text', { text: 'naïve café 😀 漢字', emoji: '👍🏽' }, undefined, 'v1:894bfd0c330f2a0b46ec713d775354a55b2f2dc580e3414e26b77b5bbdff17d8'],
    ['Latin-1 only text', 'déjà vu ÿ', undefined, 'v1:5b10eb6c51ea3b7e10d7810bec4c5099be30e8122f32df2595bf6fa97ada5efe'],
    [
      'numbers: -0, 0, NaN, ±Infinity, tiny, huge, fractions',
      [-0, 0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324, 1e21, 0.1, -1.5, 2 ** 53],
      undefined,
      'v1:a33853fdbb6ac83cdd83430b00aee40c8520a227d84de3fcdc2d0c925b71bfa0',
    ],
    ['bigints', [0n, -12345678901234567890n, 2n ** 70n], undefined, 'v1:f99c951f7b01cf628c4330657b85732ec29096b6dea42825006b9bd7c0fa1b2d'],
    ['undefined at the top level', undefined, undefined, 'v1:22a6a332f6303f6795a671498cbe604e73f90d799c7a4b2b236b691463c6d6da'],
    ['arrays with undefined elements and holes', [undefined, null, sparse], undefined, 'v1:4aae88eef61c91cab823ede4db73407b046000d3420a76f2881a3d6386f1d5ac'],
    ['booleans and the empty string', [true, false, ''], undefined, 'v1:8a565596f74152b2dbe31ca5691da9eec6c1bbaa209a4ae1866d5c7c8af59bc4'],
    ['a string longer than 1024 characters', 'x'.repeat(1500) + 'y'.repeat(1500), undefined, 'v1:ffd0267103c4bf930b60ac794bec4ea60abc5dbd247355d89108f98400fc0957'],
    ['dates, including an invalid one', [new Date(1_700_000_000_123), new Date(Number.NaN)], undefined, 'v1:3d6412459c33ace745d150c86a58f3efc9d3413d079e6fc1899dcbc91d42b1ae'],
    [
      'a Map with unsorted and non-string keys',
      new Map<unknown, unknown>([
        ['b', 2],
        [1, 'one'],
        [{ k: 1 }, [1, 2]],
        ['a', new Set([3, 1, 2])],
      ]),
      undefined,
      'v1:5ae8e49a6fbd30006a943da1a878127ace6314ba6c08463aca7da3f0f4817ba4',
    ],
    ['a Set of mixed values', new Set<unknown>(['b', 'a', 1, { z: 1, a: 2 }, null]), undefined, 'v1:7eafa104b7f05b75c8ed03d38821cc93630f1d81b7ac344d9d33f6a4d3c51964'],
    [
      'typed arrays, a Buffer, a DataView and an offset view',
      {
        f: new Float64Array([1.5, -0]),
        i: new Int16Array([1, -1]),
        b: Buffer.from('hi'),
        d: new DataView(new ArrayBuffer(3)),
        v: new Uint8Array([9, 8, 7, 6]).subarray(1, 3),
      },
      undefined,
      'v1:629905606e77a4cdc5cae683175026139dac9a8279d1ace1637fab8368602837',
    ],
    ['a null-prototype object', nullProto, undefined, 'v1:af9707ed09b2f9ad79ec73b37518067254b04cc127507f3e9516d002ef92aaf0'],
    ['the same object twice, not circular', { a: shared, b: [shared, shared] }, undefined, 'v1:9c3ec57d6fe53b015b49731be9887cd098ad60c91bbd64cb1b350172c9780b95'],
    ['200 levels of nesting', nested(200, 'bottom'), undefined, 'v1:e0b096d8f5169b16cc33cafeef624fa67f257e30f7de8050db20dca79e2b6e6f'],
  ];
}

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What is AI?' }], temperature: 0 };

describe('requestKey', () => {
  describe('golden values (a change here breaks every stored entry: bump REQUEST_KEY_VERSION instead)', () => {
    it.each([
      ['a bare prompt', 'What is AI?', undefined, 'v1:f98224c8abd19807e1b697ec0999675398e2bccd096fd2432153ddc5c1347e17'],
      ['a chat request', chat, undefined, 'v1:4ce0ef6d5218a4a62af9b92624c9f45b3df92cfd956805ed6fa1cfd8512aa891'],
      [
        'a chat request under a namespace',
        chat,
        'chat.completions.create',
        'v1:chat.completions.create:4ce0ef6d5218a4a62af9b92624c9f45b3df92cfd956805ed6fa1cfd8512aa891',
      ],
      ['nested JSON data', { a: 1, b: [true, null, '1'], c: { d: 1.5 } }, undefined, 'v1:ca8b6ae25e296abc621882400a498758d24f615669429a740c06581d61cd3895'],
      [
        'Date, Set, BigInt, Map and bytes',
        { at: new Date(0), tags: new Set(['b', 'a']), big: 10n, m: new Map([['k', 1]]), bytes: new Uint8Array([1, 2, 3]) },
        undefined,
        'v1:99c0556b5fbf8d73edf1b85b6896838f392b54ecbf618c7c7b194c97be2a0feb',
      ],
      ['a lone high surrogate', '\uD800', undefined, 'v1:af86f9581d1c326137d3f3052f5d9e0ecdc1667a9e32507dbbbd37c6b43c8ae2'],
      ['another lone surrogate', '\uDBFF', undefined, 'v1:2041df2f3d69bbf672759c2619dc67a0695c9210599abb82adc0d0a87d7ab32d'],
      ['an empty array', [], undefined, 'v1:0a82bb8e3682a9e3cbb3a9a9d3f27ac39e837d36868254983f67438adc183bfd'],
      ['an empty object', {}, undefined, 'v1:7f59b290fe85684d318d9ebafb418001ce71467cc4c048cfbc21ddcf8ce153eb'],
      ['null', null, undefined, 'v1:8e770fd2075663c032f69e282bf19be4446105cd601833eb8a8af0a12a88c06a'],
    ])('pins %s to its key', (_label, value, namespace, expected) => {
      expect(requestKey(value, namespace === undefined ? undefined : { namespace })).toBe(expected);
    });

    it.each(pinnedCases())('pins %s to its key', (_label, value, namespace, expected) => {
      expect(requestKey(value, namespace === undefined ? undefined : { namespace })).toBe(expected);
    });

    it('starts every key with the version segment', () => {
      expect(REQUEST_KEY_VERSION).toBe('v1');
      expect(requestKey({ q: 1 }).startsWith('v1:')).toBe(true);
    });
  });

  describe('canonical encoding', () => {
    it('gives the same key whatever the order of object properties', () => {
      fc.assert(
        fc.property(fc.jsonValue(), fc.nat(), (value, seed) => {
          expect(requestKey(shuffledCopy(value, seed))).toBe(requestKey(value));
        }),
      );
    });

    it('tells 1, "1" and true apart, at the top level and inside objects', () => {
      const keys = new Set([1, '1', true, { v: 1 }, { v: '1' }, { v: true }].map((v) => requestKey(v)));
      expect(keys.size).toBe(6);
      fc.assert(
        fc.property(fc.integer(), (n) => {
          expect(requestKey(n)).not.toBe(requestKey(String(n)));
          expect(requestKey([n])).not.toBe(requestKey([String(n)]));
        }),
      );
    });

    it('treats undefined properties as absent', () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (obj, extra) => {
          fc.pre(!Object.hasOwn(obj, extra));
          expect(requestKey(Object.fromEntries([...Object.entries(obj), [extra, undefined]]))).toBe(requestKey(obj));
        }),
      );
    });

    it('gives different keys to different JSON inputs, and equal keys only to equal ones', () => {
      fc.assert(
        fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
          expect(requestKey(a) === requestKey(b)).toBe(sortedJson(a) === sortedJson(b));
        }),
        { numRuns: 500 },
      );
    });

    it('keeps inputs apart that separators or escaping could confuse', () => {
      const confusable = [
        ['a,b'],
        ['a', 'b'],
        { a: 'b:c' },
        { 'a:b': 'c' },
        { a: { b: 'c' } },
        ['s1:a'],
        ['a'],
        '"a"',
        'a',
        'n1;',
        1,
        [[]],
        [],
        [null],
        'null',
      ];
      expect(new Set(confusable.map((v) => requestKey(v))).size).toBe(confusable.length);
    });

    it('is deterministic across calls and separate namespaces never share a key', () => {
      expect(requestKey(chat)).toBe(requestKey(structuredClone(chat)));
      expect(requestKey(chat, { namespace: 'a' })).not.toBe(requestKey(chat, { namespace: 'b' }));
    });

    it('matches the reference encoding on generated values of every supported kind, lone surrogates included', () => {
      const anything = fc.anything({
        stringUnit: 'binary',
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true,
        withSparseArray: true,
        withBoxedValues: true,
        maxDepth: 4,
      });
      fc.assert(
        fc.property(anything, (value) => {
          expect(requestKey(value)).toBe(referenceKey(value));
        }),
        { numRuns: 1000 },
      );
    });

    it('matches the reference encoding on long, deep and wide values, and on the built-in classes it keys', () => {
      const wide = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`key${(i * 7) % 40}`, i % 3 ? `v${i}` : { n: i, d: undefined }]));
      for (const value of [longChatRequest(), nested(300, wide), wide, ['é'.repeat(2000), '\uD83D'.repeat(3), 'ok'.repeat(900)], { at: new URL('https://a.example/x?y=1'), re: /a+/gi, buf: new ArrayBuffer(3), boxed: [Object(1n), new String('s')] }]) {
        expect(requestKey(value)).toBe(referenceKey(value));
      }
    });

    it('gives a key computed inside a getter during another key derivation its own, undisturbed value', () => {
      const outer = {
        deep: nested(100, 'x'),
        get inner() {
          return requestKey({ nested: nested(100, 'y') });
        },
        tail: [1, { b: 2, a: 1 }],
      };
      const plain = { deep: nested(100, 'x'), inner: requestKey({ nested: nested(100, 'y') }), tail: [1, { b: 2, a: 1 }] };
      expect(requestKey(outer)).toBe(requestKey(plain));
    });

    it('refuses class instances, whose private state it cannot see, so two of them never share a key', () => {
      // object-hash (used before) saw own enumerable properties only: these two shared one key.
      const a = new Secret('alice');
      const b = new Secret('bob');
      expect(a.reveal()).not.toBe(b.reveal());
      class SubMap extends Map<string, string> {
        readonly #tag = Math.random();
        tag(): number {
          return this.#tag;
        }
      }
      const instances = [a, { nested: [b] }, new Point(1, 2), new AbortController().signal, new Headers(), new Blob(['x']), new Request('http://localhost/'), new WeakRef({}), new SubMap(), new (class extends Date {})()];
      for (const value of instances) {
        expect(() => requestKey(value)).toThrow(expect.objectContaining({ name: 'CacheError', errorType: 'serialization' }));
      }
    });

    it('throws only CacheError, also when a getter or a Proxy trap throws while it reads the value', () => {
      const getter = {
        get boom(): never {
          throw new TypeError('no');
        },
      };
      const trap = new Proxy({}, { ownKeys: () => { throw new RangeError('trap'); } });
      for (const value of [getter, { deep: [trap] }]) {
        let thrown: unknown;
        try {
          requestKey(value);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(CacheError);
        expect((thrown as CacheError).errorType).toBe('serialization');
        expect((thrown as CacheError).cause).toBeInstanceOf(Error);
      }
    });

    it('refuses functions, symbols and circular values with a serialization CacheError', () => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      const deepCycle = { top: true } as Record<string, unknown>;
      (nested(150, 'x') as Record<string, unknown>).z = deepCycle;
      const cycleBelow = nested(150, deepCycle) as Record<string, unknown>;
      deepCycle.loop = cycleBelow;
      const longCycle: unknown[] = [];
      let cursor = longCycle;
      for (let i = 0; i < 500; i++) cursor = cursor[0] = i % 2 ? [] : ([{ i }] as unknown[]);
      cursor.push(longCycle);
      const throughMap = new Map<string, unknown>();
      throughMap.set('m', [throughMap]);
      const throughSet = new Set<unknown>();
      throughSet.add({ s: throughSet });
      const badValues = [() => 1, Symbol('x'), circular, { nested: [() => 1] }, nested(200, Symbol('deep')), cycleBelow, longCycle, throughMap, throughSet];
      for (const bad of badValues) {
        expect(() => requestKey(bad)).toThrow(CacheError);
        try {
          requestKey(bad);
        } catch (error) {
          expect((error as CacheError).errorType).toBe('serialization');
        }
      }
    });
  });
});
