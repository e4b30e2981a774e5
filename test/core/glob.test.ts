import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGlob } from '../../src/core/glob.js';
import { RedisServer } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

describe('compileGlob (Redis stringmatchlen, byte for byte)', () => {
  const cases: [string, string, boolean][] = [
    ['*', 'anything', true],
    ['a*', 'a', true],
    ['a*b', 'aXXb', true],
    ['a*b', 'aXXc', false],
    ['?', 'é', false],
    ['??', 'é', true],
    ['[^a]', 'é', false],
    ['[^a]?', 'é', true],
    ['h[a-e]llo', 'hcllo', true],
    ['h[e-a]llo', 'hcllo', true],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['[\\]]', ']', true],
    ['[abc', 'b', true],
    ['a\\', 'a', false],
    ['a\\', 'a\\', true],
    // C `char` is signed on x86-64: 0xC3 (first byte of é) sorts below 'a', so the range is [0xC3..'a'].
    ['[a-é]', 'b', false],
    ['[a-é]', '-', true],
    ['[é-a]', 'b', false],
  ];

  it.each(cases)('%j against %j is %s', (pattern, subject, expected) => {
    expect(compileGlob(pattern)(subject)).toBe(expected);
  });

  it('a pattern nested past Redis’s limit of 1000 stars matches nothing instead of recursing without bound', () => {
    const pattern = `${'a*'.repeat(1100)}b`;
    expect(compileGlob(pattern)('a'.repeat(1100))).toBe(false);
  });
});

describeWith('redis-server')('compileGlob agrees with SCAN MATCH on a real Redis', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  // Glob metacharacters, range bounds on both sides of 0x80, and multi-byte characters.
  const patternChar = fc.constantFrom('a', 'b', 'z', '*', '?', '[', ']', '^', '-', '\\', 'é', 'ÿ', '🙂', ':');
  const keyChar = fc.constantFrom('a', 'b', 'z', '*', '?', '[', ']', '^', '-', '\\', 'é', 'ÿ', '🙂', ':', 'A');
  // Random characters rarely form a bracket expression, so well-formed ranges and sets are mixed in as tokens.
  const rangeBound = fc.constantFrom('a', 'b', 'z', 'A', '-', ']', '^', '\\', 'é', 'ÿ', '🙂');
  const bracket = fc
    .tuple(fc.boolean(), fc.array(fc.oneof(rangeBound, fc.tuple(rangeBound, rangeBound).map(([lo, hi]) => `${lo}-${hi}`)), { minLength: 1, maxLength: 3 }))
    .map(([negate, items]) => `[${negate ? '^' : ''}${items.join('')}]`);
  const pattern = fc
    .array(fc.oneof({ weight: 3, arbitrary: patternChar }, { weight: 1, arbitrary: bracket }), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.join(''));
  const keys = fc.uniqueArray(
    fc.array(keyChar, { minLength: 1, maxLength: 6 }).map((chars) => chars.join('')),
    { minLength: 1, maxLength: 40 },
  );

  let run = 0;
  it('for random patterns and keys over metacharacters and unicode, the memory matcher selects exactly what Redis selects', async () => {
    await fc.assert(
      fc.asyncProperty(pattern, keys, async (pat, subjects) => {
        // A literal prefix per run: consumed char by char, it changes nothing about what the pattern matches.
        const prefix = `r${run++}:`;
        await client.mset(...subjects.flatMap((k) => [prefix + k, '1']));
        const fromRedis: string[] = [];
        let cursor = '0';
        do {
          const [next, found] = await client.scan(cursor, 'MATCH', prefix + pat, 'COUNT', 10_000);
          cursor = next;
          fromRedis.push(...found.map((raw) => raw.slice(prefix.length)));
        } while (cursor !== '0');
        await client.unlink(...subjects.map((k) => prefix + k));
        const matches = compileGlob(pat);
        expect(subjects.filter(matches).sort()).toEqual([...new Set(fromRedis)].sort());
      }),
      { numRuns: 400 },
    );
  });
});
