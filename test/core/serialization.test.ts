import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/core/errors.js';
import { decode, encode } from '../../src/core/serialization.js';

class Point {
  x = 1;
}

// Strings of any UTF-16 code units, lone surrogates included: they are values, not keys.
const anyString = fc.string({ unit: fc.nat(0xffff).map((n) => String.fromCharCode(n)), maxLength: 8 });
// (No own 'constructor' key: toStrictEqual compares .constructor to decide types.)
const objectKey = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', '\u0000ck', 'toString', 'valueOf', '0', '10'));

const leaf = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  anyString,
  fc.double(),
  fc.constantFrom(NaN, -0, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.bigInt(),
  fc.date(),
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
  fc.float32Array({ maxLength: 4 }),
  fc.float64Array({ maxLength: 4 }),
  fc.int16Array({ maxLength: 4 }),
  fc.bigInt64Array({ maxLength: 3 }),
);

const { value } = fc.letrec<{ value: unknown; item: unknown; array: unknown[]; object: Record<string, unknown>; map: Map<unknown, unknown>; set: Set<unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  // undefined is storable inside arrays, Maps and Sets; inside objects it is dropped, as in JSON.
  item: fc.oneof({ weight: 6, arbitrary: tie('value') }, { weight: 1, arbitrary: fc.constant(undefined) }),
  array: fc.array(tie('item'), { maxLength: 5 }),
  object: fc.dictionary(objectKey, tie('value'), { maxKeys: 5, noNullPrototype: true }),
  map: fc.array(fc.tuple(tie('item'), tie('item')), { maxLength: 4 }).map((pairs) => new Map(pairs)),
  set: fc.array(tie('item'), { maxLength: 4 }).map((items) => new Set(items)),
}));

function containsNegativeZero(v: unknown): boolean {
  if (Object.is(v, -0)) return true;
  return v !== null && typeof v === 'object' && Object.values(v).some(containsNegativeZero);
}

describe('serialization (encode/decode)', () => {
  it('decode(encode(v)) equals v for JSON values plus Dates, Maps, Sets, BigInts, typed arrays and special numbers', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(decode(encode(v))).toStrictEqual(v);
      }),
      { numRuns: 1500 },
    );
  });

  it('encoding is stable: encode(decode(encode(v))) === encode(v), so equal values compare equal by encoding', () => {
    fc.assert(
      fc.property(value, (v) => {
        const once = encode(v);
        expect(encode(decode(once))).toBe(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('plain JSON values are stored as their JSON.stringify text, with no tagging overhead', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        // -0 is the one JSON value JSON.stringify cannot carry (it writes 0): it takes the tagged form.
        fc.pre(!containsNegativeZero(v));
        expect(encode(v)).toBe(JSON.stringify(v));
      }),
      { numRuns: 500 },
    );
  });

  it('sparse arrays come back dense, each hole an undefined item', () => {
    fc.assert(
      fc.property(fc.sparseArray(leaf, { maxLength: 8 }), (sparse) => {
        expect(decode(encode(sparse))).toStrictEqual(Array.from(sparse));
      }),
      { numRuns: 300 },
    );
  });

  it('a function, symbol or class instance anywhere inside a value is refused with errorType serialization', () => {
    const bad = fc.constantFrom<unknown>(
      () => 1,
      Symbol('s'),
      new Point(),
      /re/,
      new WeakSet(),
    );
    const wrap = fc.constantFrom(
      (v: unknown, b: unknown) => ({ v, nested: [1, { b }] }),
      (v: unknown, b: unknown) => [v, b],
      (v: unknown, b: unknown) => new Map<unknown, unknown>([[v, b]]),
      (v: unknown, b: unknown) => new Map<unknown, unknown>([[b, v]]),
      (v: unknown, b: unknown) => new Set([v, [b]]),
    );
    fc.assert(
      fc.property(value, bad, wrap, (v, b, place) => {
        let error: unknown;
        try {
          encode(place(v, b));
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(CacheError);
        expect((error as CacheError).errorType).toBe('serialization');
      }),
      { numRuns: 300 },
    );
  });

  it('a cycle is refused as one wherever it closes (at the top, a few levels down, deep, through a Map or an array); an object met twice is not a cycle', () => {
    const at = (depth: number): unknown => {
      const top: Record<string, unknown> = { n: 0 };
      let node = top;
      for (let i = 0; i < depth; i++) node = (node.next = { n: i + 1 }) as Record<string, unknown>;
      node.back = top;
      return top;
    };
    const viaMap = new Map<string, unknown>();
    viaMap.set('inner', [{ map: viaMap }]);
    const viaArray: unknown[] = [];
    viaArray.push([[viaArray]]);
    for (const value of [at(0), at(3), at(7), at(8), at(30), { wide: Array.from({ length: 50 }, () => ({ a: 1 })), cycle: at(2) }, viaMap, viaArray]) {
      expect(() => encode(value)).toThrow(expect.objectContaining({ errorType: 'serialization', message: 'cannot cache a circular structure' }));
    }
    const shared = { deep: [[[[[[[[[[{ x: 1 }]]]]]]]]]] };
    expect(decode(encode({ a: shared, b: [shared, { c: shared }] }))).toStrictEqual({ a: shared, b: [shared, { c: shared }] });
  });

  it('a value under the tagged form\'s own key is validated like any other: a function there is refused', () => {
    expect(() => encode({ '\u0000ck': () => 1 })).toThrow(expect.objectContaining({ errorType: 'serialization' }));
    expect(() => encode({ '\u0000ck': [Symbol('s')] })).toThrow(expect.objectContaining({ errorType: 'serialization' }));
    expect(decode(encode({ '\u0000ck': 'd', v: 1 }))).toStrictEqual({ '\u0000ck': 'd', v: 1 });
  });

  it('a top-level undefined is a validation error, not a serialization error', () => {
    expect(() => encode(undefined)).toThrow(expect.objectContaining({ errorType: 'validation' }));
  });
});
