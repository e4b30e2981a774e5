import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { cacheInfo } from '../../src/llm/cache-info.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { withCache } from '../../src/llm/with-cache.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { describeEachBackend } from '../helpers/llm-backends.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const TTL = 0.3;
const PAST_TTL_MS = 450;

function httpError(status: number): Error {
  return Object.assign(new Error(`upstream answered ${status}`), { status });
}

/** A gateway whose upstream can be switched to failing or slow. */
function gateway() {
  const state = { calls: 0, fail: undefined as number | undefined, delayMs: 0 };
  const target = {
    model: 'gpt-test',
    async generate(prompt: string): Promise<{ text: string; call: number; usage: { prompt_tokens: number; completion_tokens: number }; model: string }> {
      state.calls++;
      const call = state.calls;
      if (state.delayMs > 0) await sleep(state.delayMs);
      if (state.fail !== undefined) throw httpError(state.fail);
      return { text: `answer to ${prompt}`, call, usage: { prompt_tokens: 1000, completion_tokens: 500 }, model: 'gpt-test' };
    },
  };
  return { target, state };
}

describeEachBackend('freshness in the LLM wrappers', ({ cache }) => {
  describe('grace', () => {
    it('withCache answers with the stale answer when upstream fails past the ttl, marked stale and counted', async () => {
      const { target, state } = gateway();
      const gw = withCache(target, { cache: cache(), ttl: TTL, grace: 30 });
      const first = await gw.generate('q');
      expect(cacheInfo(first)).toEqual({ status: 'miss', key: expect.stringMatching(/^v1:generate:/) });
      await sleep(PAST_TTL_MS);
      state.fail = 503;
      const stale = await gw.generate('q');
      expect(stale).toEqual(first);
      expect(cacheInfo(stale)).toMatchObject({ status: 'stale', storedAt: expect.any(Number) });
      expect(cacheStats(gw)).toMatchObject({ staleHits: 1, hits: 0, misses: 1 });
      // a 4xx other than 408/409/429 is the caller's to see
      state.fail = 400;
      const { target: t2, state: s2 } = gateway();
      const gw2 = withCache(t2, { cache: cache(), ttl: TTL, grace: 30, namespace: 'gw2' });
      await gw2.generate('q');
      await sleep(PAST_TTL_MS);
      s2.fail = 400;
      await expect(gw2.generate('q')).rejects.toThrow('400');
    });

    it('does not call a failing upstream again before its backoff, answering stale meanwhile', async () => {
      const { target, state } = gateway();
      const gw = withCache(target, { cache: cache(), ttl: TTL, grace: 30, graceBackoff: 300 });
      await gw.generate('q');
      await sleep(PAST_TTL_MS);
      state.fail = 500;
      for (let i = 0; i < 10; i++) expect((await gw.generate('q')).call).toBe(1);
      expect(state.calls).toBe(2);
      await sleep(350);
      state.fail = undefined;
      expect((await gw.generate('q')).call).toBe(3);
    });

    it('with softTimeout answers stale when upstream is slow and stores the refresh with the call\'s tenant', async () => {
      const { target, state } = gateway();
      const gw = withCache(target, { cache: cache(), ttl: TTL, grace: 30, softTimeout: 30 });
      await withCacheControl({ tenantId: 'acme' }, () => gw.generate('q'));
      await sleep(PAST_TTL_MS);
      state.delayMs = 300;
      const started = performance.now();
      const answer = await withCacheControl({ tenantId: 'acme' }, () => gw.generate('q'));
      expect(answer.call).toBe(1);
      expect(performance.now() - started).toBeLessThan(250);
      await sleep(400);
      state.delayMs = 0;
      expect((await withCacheControl({ tenantId: 'acme' }, () => gw.generate('q'))).call).toBe(2);
      // another tenant never got any of it
      expect((await withCacheControl({ tenantId: 'other' }, () => gw.generate('q'))).call).toBe(3);
    });

    it('never answers one tenant with another tenant\'s stale answer', async () => {
      const { target, state } = gateway();
      const gw = withCache(target, { cache: cache(), ttl: TTL, grace: 30 });
      await withCacheControl({ tenantId: 'a' }, () => gw.generate('q'));
      await sleep(PAST_TTL_MS);
      state.fail = 500;
      await expect(withCacheControl({ tenantId: 'b' }, () => gw.generate('q'))).rejects.toThrow('500');
      await expect(gw.generate('q')).rejects.toThrow('500');
    });

    it('@Cached, cachedRag and memoizeTask take grace too', async () => {
      let fail = false;
      let calls = 0;
      const c = cache();
      class Service {
        async ask(q: string): Promise<{ q: string; n: number }> {
          calls++;
          if (fail) throw httpError(502);
          return { q, n: calls };
        }
      }
      // Applied as experimentalDecorators would (decorator syntax is tested in cached-decorator.test.ts).
      const descriptor = Object.getOwnPropertyDescriptor(Service.prototype, 'ask') as TypedPropertyDescriptor<Service['ask']>;
      Object.defineProperty(Service.prototype, 'ask', Cached({ cache: c, ttl: TTL, grace: 30 })(Service.prototype, 'ask', descriptor));
      const rag = cachedRag(async (q: string) => {
        calls++;
        if (fail) throw httpError(502);
        return { answer: q, n: calls };
      }, { cache: c, ttl: TTL, grace: 30 });
      const task = memoizeTask(async function summarize(id: string) {
        calls++;
        if (fail) throw httpError(502);
        return { id, n: calls };
      }, { cache: c, ttl: TTL, grace: 30 });
      const service = new Service();
      const before = [await service.ask('q'), await rag('q'), await task('t')];
      await sleep(PAST_TTL_MS);
      fail = true;
      const after = [await service.ask('q'), await rag('q'), await task('t')];
      expect(after).toEqual(before);
      expect(after.map((a) => cacheInfo(a)?.status)).toEqual(['stale', 'stale', 'stale']);
      expect(cacheStats(rag).staleHits).toBe(1);
      expect(cacheStats(task).staleHits).toBe(1);
    });
  });

  describe('cacheInfo', () => {
    it('tells a hit from a miss, a bypass and a joined call, without changing the result', async () => {
      const { target } = gateway();
      const gw = withCache(target, { cache: cache() });
      const [miss, joined] = await Promise.all([gw.generate('q'), gw.generate('q')]);
      expect(cacheInfo(miss)?.status).toBe('miss');
      expect(cacheInfo(joined)?.status).toBe('miss');
      await sleep(20);
      const hit = await gw.generate('q');
      const info = cacheInfo(hit);
      expect(info).toMatchObject({ status: 'hit', key: cacheInfo(miss)?.key });
      expect(info?.storedAt).toBeGreaterThan(Date.now() - 10_000);
      expect(Object.keys(hit).sort()).toEqual(['call', 'model', 'text', 'usage']);
      const bypassed = await withCacheControl({ bypass: true }, () => gw.generate('q'));
      expect(cacheInfo(bypassed)?.status).toBe('bypass');
      const refreshed = await withCacheControl({ refresh: true }, () => gw.generate('q'));
      expect(cacheInfo(refreshed)?.status).toBe('bypass');
    });

    it('is undefined for primitives and for values no wrapper returned', async () => {
      const gw = withCache({ async text(q: string) { return `a ${q}`; } }, { cache: cache() });
      expect(cacheInfo(await gw.text('q'))).toBeUndefined();
      expect(cacheInfo({ some: 'object' })).toBeUndefined();
      expect(cacheInfo(null)).toBeUndefined();
      expect(cacheInfo(42)).toBeUndefined();
    });
  });

  describe('tags', () => {
    it('cachedRag tagged by sources: invalidating a document drops exactly the answers built from it', async () => {
      const c = cache();
      let calls = 0;
      const sources: Record<string, number[]> = { 'what is ai': [42, 7], 'what is ml': [7], 'what is dl': [9] };
      const rag = cachedRag(
        { async query(q: string) { calls++; return { answer: `${q} (${calls})`, sources: (sources[q] ?? []).map((id) => ({ id })) }; } },
        // As README writes it: the answer's type comes from the RAG target, so `s` needs no annotation.
        { cache: c, tags: (answer) => answer.sources.map((s) => 'doc:' + s.id) },
      );
      for (const q of Object.keys(sources)) await rag.query(q);
      await sleep(20);
      expect(calls).toBe(3);
      await c.invalidateTags(['doc:42']);
      await rag.query('what is ml');
      await rag.query('what is dl');
      expect(calls).toBe(3);
      expect((await rag.query('what is ai')).answer).toBe('what is ai (4)');
      await c.invalidateTags(['doc:7']);
      await rag.query('what is dl');
      expect(calls).toBe(4);
      await rag.query('what is ml');
      expect(calls).toBe(5);
    });

    it('tags(result, ...args) sees the call\'s arguments, and an answer computed across an invalidation is not served after it', async () => {
      const c = cache();
      const { target, state } = gateway();
      state.delayMs = 100;
      const gw = withCache(target, { cache: c, tags: (_result, prompt) => [`prompt:${String(prompt)}`] });
      const inFlight = gw.generate('q');
      await sleep(30);
      await c.invalidateTags(['prompt:q']);
      expect((await inFlight).call).toBe(1);
      await sleep(50);
      state.delayMs = 0;
      expect((await gw.generate('q')).call).toBe(2);
      await sleep(20);
      expect((await gw.generate('q')).call).toBe(2);
      await c.invalidateTags(['prompt:other']);
      expect((await gw.generate('q')).call).toBe(2);
    });

    it('memoizeTask tags its results', async () => {
      const c = cache();
      let runs = 0;
      const task = memoizeTask(async function build(id: string) {
        runs++;
        return { id };
      }, { cache: c, tags: (_r, id) => [`task:${id}`] });
      await task('a');
      await task('b');
      await sleep(20);
      await c.invalidateTags(['task:a']);
      await task('a');
      await task('b');
      expect(runs).toBe(3);
    });
  });

  describe('cost saved', () => {
    it('prices each hit by the model the answer reports, per million tokens', async () => {
      const { target } = gateway();
      const gw = withCache(target, { cache: cache(), prices: { 'gpt-test': { input: 2, output: 10 } } });
      await gw.generate('q');
      await sleep(20);
      await gw.generate('q');
      await gw.generate('q');
      // (1000 x 2 + 500 x 10) / 1e6 per hit
      expect(cacheStats(gw).costSaved).toBeCloseTo(2 * 0.007, 10);
      expect(cacheStats(gw).tokensSaved).toBe(2 * 1500);
      const unpriced = withCache(gateway().target, { cache: cache(), namespace: 'unpriced' });
      await unpriced.generate('q');
      await sleep(20);
      await unpriced.generate('q');
      expect(cacheStats(unpriced).costSaved).toBe(0);
    });
  });
});

describe('the freshness options of every wrapper', () => {
  const cache = createMemoryCache();
  const fn = async () => 1;
  const wrappers: [string, (options: Record<string, unknown>) => unknown][] = [
    ['withCache', (o) => withCache({ fn }, { cache, ...o })],
    ['cachedRag', (o) => cachedRag(fn, { cache, ...o })],
    ['memoizeTask', (o) => memoizeTask(fn, { cache, namespace: 'n', ...o })],
    ['@Cached', (o) => Cached({ cache, ...o })],
  ];
  it.each(wrappers)('%s refuses bad ones at wrap time, naming the option', (where, wrap) => {
    const refused = (options: Record<string, unknown>, message: string) => expect(() => wrap(options)).toThrow(`${where}: ${message}`);
    refused({ grace: 0 }, 'grace must be a positive finite number of seconds');
    refused({ grace: -1 }, 'grace must be');
    refused({ softTimeout: 100 }, 'softTimeout needs grace');
    refused({ grace: 5, softTimeout: '100' }, 'softTimeout must be a non-negative number of milliseconds');
    refused({ grace: 5, graceBackoff: 0 }, 'graceBackoff must be a positive number of milliseconds');
    refused({ grace: 5, shouldServeStale: 'yes' }, 'shouldServeStale must be a function');
    refused({ tags: ['doc:1'] }, 'tags must be a function');
    refused({ prices: { m: { input: 1 } } }, 'prices["m"].output must be a non-negative number');
    refused({ prices: { m: { input: 1, output: 2, cached: 1 } } }, 'prices["m"]: unknown option "cached"');
    refused({ Grace: 5 }, 'unknown option "Grace" (did you mean "grace"?)');
    expect(() => wrap({ grace: 5, graceBackoff: 500, softTimeout: 0, shouldServeStale: () => true, tags: () => [], prices: { m: { input: 0.15, output: 0.6 } } })).not.toThrow();
  });
});
