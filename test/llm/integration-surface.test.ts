import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { cachedCall, createCallSite, isRecording, planCall, readCached, recordChunks, type StoredResult } from '../../src/llm/engine.js';

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

describe('recordChunks', () => {
  it('stores what shape.meta() returns beside the chunks, read back as the recording’s meta', async () => {
    const site = createCallSite({ cache: createMemoryCache() });
    const plan = planCall(site);
    const meta = { headers: { 'x-request-id': 'r1' } };
    await drain(recordChunks(site, plan, 'with', from([1, 2]), { complete: () => true, meta: () => meta }, performance.now()));
    await drain(recordChunks(site, plan, 'without', from([1, 2]), { complete: () => true }, performance.now()));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const withMeta = (await readCached(site, plan, 'with'))?.value;
    const without = (await readCached(site, plan, 'without'))?.value;
    expect(isRecording(withMeta) && withMeta).toEqual({ chunks: [1, 2], meta });
    expect(without).toEqual({ chunks: [1, 2] });
    expect(Object.hasOwn(without as object, 'meta')).toBe(false);
  });
});
