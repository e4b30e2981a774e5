import { describe, expect, it } from 'vitest';
import { CounterSet, MAX_TRACKED_TENANTS } from '../../src/core/stats.js';

// Scopes as the backends build them: untenanted scopes are at most 2 characters, a tenant's longer.
const tenant = (i: number | string) => `t:${i}:`;

describe('CounterSet (per-tenant counters)', () => {
  it('counts every operation in the total, and a tenant’s in its own counters too', () => {
    const counters = new CounterSet();
    counters.hit('g:');
    counters.hit(tenant('a'), 2);
    counters.miss(tenant('a'));
    counters.add(tenant('b'), 'sets', 3);
    expect(counters.total).toMatchObject({ hits: 3, misses: 1, sets: 3 });
    expect(counters.forScope(tenant('a'))).toMatchObject({ hits: 2, misses: 1, sets: 0 });
    expect(counters.forScope(tenant('b'))).toMatchObject({ sets: 3 });
    expect(counters.forScope(undefined)).toBe(counters.total);
  });

  it(`keeps the counters of the ${MAX_TRACKED_TENANTS} most recently active tenants only`, () => {
    const counters = new CounterSet();
    for (let i = 0; i < 200_000; i++) counters.add(tenant(i), 'sets');
    expect(counters.tracked).toBe(MAX_TRACKED_TENANTS);
    expect(counters.total.sets).toBe(200_000);
    expect(counters.forScope(tenant(199_999)).sets).toBe(1);
    expect(counters.forScope(tenant(0)).sets).toBe(0);
  });

  it('activity keeps a tenant tracked; the least recently active one is forgotten and counts from zero when it returns', () => {
    const counters = new CounterSet(3);
    counters.add(tenant('a'), 'sets');
    counters.add(tenant('b'), 'sets');
    counters.add(tenant('c'), 'sets');
    counters.hit(tenant('a'));
    counters.add(tenant('d'), 'sets');
    expect(counters.forScope(tenant('a'))).toMatchObject({ sets: 1, hits: 1 });
    expect(counters.forScope(tenant('b')).sets).toBe(0);
    counters.add(tenant('b'), 'sets');
    expect(counters.forScope(tenant('b')).sets).toBe(1);
    expect(counters.forScope(tenant('c')).sets).toBe(0);
    expect(counters.tracked).toBe(3);
  });

  it('reading the stats of an unknown tenant tracks nothing', () => {
    const counters = new CounterSet(3);
    for (let i = 0; i < 1000; i++) expect(counters.forScope(tenant(`never-${i}`)).hits).toBe(0);
    expect(counters.tracked).toBe(0);
    counters.add(tenant('a'), 'sets');
    counters.forScope(tenant('b'));
    expect(counters.tracked).toBe(1);
  });

  it('counts that only a tracked tenant keeps (evictions, expirations) never start tracking one', () => {
    const counters = new CounterSet(2);
    counters.add(tenant('a'), 'sets');
    counters.addIfTracked(tenant('a'), 'evictions');
    counters.addIfTracked(tenant('gone'), 'evictions');
    expect(counters.total.evictions).toBe(2);
    expect(counters.forScope(tenant('a')).evictions).toBe(1);
    expect(counters.tracked).toBe(1);
  });
});
