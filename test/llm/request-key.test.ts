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

    it('refuses functions, symbols and circular values with a serialization CacheError', () => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      for (const bad of [() => 1, Symbol('x'), circular, { nested: [() => 1] }]) {
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
