import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { cacheInfo, cachedCall, createCallSite, isRecording, planCall, readCached, siteFreshness, startStream, type StoredResult } from '../../src/llm/engine.js';

// What the engine hands an integration beyond the stored value: the entry's
// envelope on a hit, and what a recording keeps beside its chunks.

async function* from<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const drain = async (source: AsyncIterable<unknown>) => {
  for await (const _ of source);
};

describe('cachedCall', () => {
  it('hands hit() the stored envelope with the value, so an integration can tell when the answer was made', async () => {
    const site = createCallSite({ cache: createMemoryCache() });
    const before = Date.now();
    const call = () =>
      cachedCall<{ value: unknown; entry?: StoredResult }>(site, 'k', {
        upstream: async () => ({ value: { text: 'hi', usage: { total_tokens: 3 } } }),
        stored: (answer) => answer.value,
        hit: (value, _how, entry) => ({ value, entry }),
      });
    await call();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const { value, entry } = await call();
    if (entry === undefined) throw new Error('not a hit');
    expect(value).toEqual({ text: 'hi', usage: { total_tokens: 3 } });
    expect(entry.storedAt).toBeGreaterThanOrEqual(before);
    expect(entry.storedAt).toBeLessThanOrEqual(Date.now());
    expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    expect(entry.tokens).toBe(3);
  });
});

describe('startStream', () => {
  it('stores what shape.meta() returns beside the chunks, read back as the recording’s meta', async () => {
    const site = createCallSite({ cache: createMemoryCache() });
    const plan = planCall(site);
    const meta = { headers: { 'x-request-id': 'r1' } };
    const stream = (key: string, shape: { complete: () => boolean; meta?: () => unknown }) =>
      startStream({ site, plan, key, share: true, shape, open: async () => ({ source: from([1, 2]), cancel: () => {}, extra: undefined }) });
    await drain((await stream('with', { complete: () => true, meta: () => meta })).chunks);
    await drain((await stream('without', { complete: () => true })).chunks);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const withMeta = (await readCached(site, plan, 'with'))?.value;
    const without = (await readCached(site, plan, 'without'))?.value;
    expect(isRecording(withMeta) && withMeta).toEqual({ chunks: [1, 2], meta });
    expect(without).toEqual({ chunks: [1, 2] });
    expect(Object.hasOwn(without as object, 'meta')).toBe(false);
  });

  it('prices a recording by the request’s model when its chunks name none', async () => {
    const site = createCallSite({ cache: createMemoryCache(), prices: { 'm-1': { input: 1, output: 2 } } });
    const plan = { ...planCall(site), model: 'm-1' };
    const shape = { complete: () => true, usage: () => ({ inputTokens: 3, outputTokens: 4 }) };
    const open = async () => ({ source: from(['a']), cancel: () => {}, extra: undefined });
    await drain((await startStream({ site, plan, key: 'k', share: true, shape, open })).chunks);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await readCached(site, plan, 'k');
    expect(site.stats.costSaved).toBeCloseTo((3 * 1 + 4 * 2) / 1e6, 12);
  });
});

describe('cachedCall for an integration', () => {
  it('marks for cacheInfo what the caller receives (seen), not only what is stored', async () => {
    const site = createCallSite({ cache: createMemoryCache() });
    const call = () =>
      cachedCall<{ body: { text: string }; meta: object }>(site, 'k', {
        upstream: async () => ({ body: { text: 'hi' }, meta: {} }),
        stored: (answer) => ({ text: answer.body.text }),
        seen: (answer) => answer.meta,
        hit: (stored) => ({ body: stored as { text: string }, meta: {} }),
      });
    const miss = await call();
    expect(cacheInfo(miss.meta)).toMatchObject({ status: 'miss', key: 'k' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const hit = await call();
    expect(cacheInfo(hit.meta)).toMatchObject({ status: 'hit', key: 'k', storedAt: expect.any(Number) });
  });

  it('never answers stale after the caller’s own signal aborted, whatever the error', async () => {
    const site = createCallSite({ cache: createMemoryCache(), ttl: 0.05, ...siteFreshness('test', { grace: 60 }) });
    await cachedCall(site, 'k', { upstream: async () => ({ text: 'old' }) });
    await new Promise((resolve) => setTimeout(resolve, 80));
    const controller = new AbortController();
    controller.abort();
    const aborted = cachedCall(site, 'k', { upstream: async () => Promise.reject('a plain string reason'), signal: controller.signal, share: false });
    await expect(aborted).rejects.toBe('a plain string reason');
    const other = await cachedCall(site, 'k', { upstream: async () => Promise.reject('a plain string reason') });
    expect(cacheInfo(other)?.status).toBe('stale');
  });
});
