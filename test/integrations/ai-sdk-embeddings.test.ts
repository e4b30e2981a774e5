import { describe, expect, it } from 'vitest';
import { cachedEmbeddingModel, cacheStats, explainKey, withCacheControl } from '../../integrations/ai-sdk/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { majors } from './ai-sdk/majors.js';

// cachedEmbeddingModel on each major's own MockEmbeddingModel, through embedMany and embed.

/** A vector per value that float32 cannot hold exactly, so a lossy store would show. */
const vectorOf = (value: string, dimensions = 3) => Array.from({ length: dimensions }, (_, i) => value.length / 7 + i / 3);

for (const major of majors) {
  const { ai } = major;

  function embedder(options: { maxEmbeddingsPerCall?: number } = {}) {
    const sent: string[][] = [];
    const model = major.mockEmbedding({
      maxEmbeddingsPerCall: options.maxEmbeddingsPerCall ?? 100,
      doEmbed: async ({ values, providerOptions }) => {
        sent.push(values);
        const dimensions = (providerOptions?.mock?.dimensions as number | undefined) ?? 3;
        return {
          embeddings: values.map((value) => vectorOf(value, dimensions)),
          usage: { tokens: values.length * 2 },
          providerMetadata: { mock: { batch: sent.length } },
          response: { headers: { 'x-batch': String(sent.length) } },
          warnings: [],
        };
      },
    });
    return { model, sent };
  }

  describeEachBackend(`cachedEmbeddingModel, ${major.label}`, ({ cache }) => {
    it('answers cached values from the cache and sends only the others upstream, in one call, keeping the caller’s order', async () => {
      const { model, sent } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: cache() });
      await ai.embedMany({ model: cached, values: ['a', 'bb'] });
      const mixed = await ai.embedMany({ model: cached, values: ['ccc', 'bb', 'dddd', 'a'] });
      expect(sent).toEqual([['a', 'bb'], ['ccc', 'dddd']]);
      expect(mixed.embeddings).toEqual(['ccc', 'bb', 'dddd', 'a'].map((value) => vectorOf(value)));
      expect(mixed.usage.tokens).toBe(4);
      expect(mixed.providerMetadata).toEqual({ mock: { batch: 2 }, cachekit: { hit: false, cachedValues: 2 } });
    });

    it('passes upstream’s own answer on untouched when nothing was cached, and answers a full hit without a call, usage 0', async () => {
      const { model, sent } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: cache() });
      const first = await cached.doEmbed({ values: ['a', 'bb'] });
      expect(first).toEqual({ embeddings: [vectorOf('a'), vectorOf('bb')], usage: { tokens: 4 }, providerMetadata: { mock: { batch: 1 } }, response: { headers: { 'x-batch': '1' } }, warnings: [] });
      const hit = await ai.embedMany({ model: cached, values: ['bb', 'a'] });
      expect(hit.embeddings).toEqual([vectorOf('bb'), vectorOf('a')]);
      expect(hit.usage.tokens).toBe(0);
      expect(hit.providerMetadata).toEqual({ cachekit: { hit: true, cachedValues: 2 } });
      expect(sent).toHaveLength(1);
      expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 1, tokensSaved: 4 });
    });

    it('serves embed (one value) from the entries embedMany stored', async () => {
      const { model, sent } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: cache() });
      await ai.embedMany({ model: cached, values: ['a', 'bb'] });
      expect((await ai.embed({ model: cached, value: 'bb' })).embedding).toEqual(vectorOf('bb'));
      expect(sent).toHaveLength(1);
    });

    it('caches each chunk embedMany splits a batch into by maxEmbeddingsPerCall', async () => {
      const { model, sent } = embedder({ maxEmbeddingsPerCall: 2 });
      const cached = cachedEmbeddingModel(model, { cache: cache() });
      await ai.embedMany({ model: cached, values: ['a', 'bb', 'ccc'] });
      const again = await ai.embedMany({ model: cached, values: ['a', 'bb', 'ccc', 'dddd'] });
      expect(again.embeddings).toEqual(['a', 'bb', 'ccc', 'dddd'].map((value) => vectorOf(value)));
      expect(sent).toEqual([['a', 'bb'], ['ccc'], ['dddd']]);
    });

    it('keys each value with the model and the options that change the vector, not headers or OpenAI’s user', async () => {
      const { model, sent } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: cache() });
      await cached.doEmbed({ values: ['a'], headers: { 'x-trace': '1' }, providerOptions: { openai: { user: 'alice' } } });
      await cached.doEmbed({ values: ['a'], headers: { 'x-trace': '2' }, abortSignal: new AbortController().signal, providerOptions: { openai: { user: 'bob' } } });
      expect(sent).toHaveLength(1);
      await cached.doEmbed({ values: ['a'], providerOptions: { mock: { dimensions: 5 } } });
      expect(sent).toHaveLength(2);
      const other = cachedEmbeddingModel(major.mockEmbedding({ modelId: 'other-model', doEmbed: model.doEmbed }), { cache: cache() });
      await other.doEmbed({ values: ['a'] });
      expect(sent).toHaveLength(3);
    });

    it('honours bypass, refresh and noStore, and keeps tenants apart', async () => {
      const { model, sent } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: cache(), tenantId: 'acme' });
      await withCacheControl({ noStore: true }, () => cached.doEmbed({ values: ['a'] }));
      await withCacheControl({ bypass: true }, () => cached.doEmbed({ values: ['a'] }));
      await cached.doEmbed({ values: ['a'] });
      await withCacheControl({ refresh: true }, () => cached.doEmbed({ values: ['a'] }));
      expect(sent).toHaveLength(4);
      await cached.doEmbed({ values: ['a'] });
      expect(sent).toHaveLength(4);
      await withCacheControl({ tenantId: 'globex' }, () => cached.doEmbed({ values: ['a'] }));
      expect(sent).toHaveLength(5);
    });

    it('explainKey(model, callOptions) gives one key per value, the options out of the key listed', async () => {
      const c = cache();
      const { model } = embedder();
      const cached = cachedEmbeddingModel(model, { cache: c, namespace: 'vectors' });
      const call = { values: ['a', 'bb'], headers: { 'x-trace': '1' }, providerOptions: { openai: { user: 'alice' } } };
      await cached.doEmbed(call);
      const explained = await explainKey(cached, call);
      expect(explained.dropped).toEqual(['headers', 'providerOptions.openai.user']);
      expect(explained.items).toHaveLength(2);
      expect(explained.items![1]!.hashed).toEqual({ provider: 'mock-provider', modelId: 'mock-model-id', type: 'embed', options: {}, value: 'bb' });
      for (const item of explained.items!) {
        expect(item.key).toMatch(/^v1:vectors:[0-9a-f]{64}$/);
        expect(await c.get(item.key)).toMatchObject({ value: expect.any(Object) });
      }
    });
  });
}

describe('cachedEmbeddingModel', () => {
  const major = majors[0]!;

  it('is the same model otherwise: its class, spec version, provider, limits and other properties', async () => {
    const model = major.mockEmbedding({ maxEmbeddingsPerCall: 7, supportsParallelCalls: false });
    const cached = cachedEmbeddingModel(model, { cache: createMemoryCache() });
    expect(cached).toBeInstanceOf(model.constructor);
    expect([cached.specificationVersion, cached.provider, cached.modelId, cached.maxEmbeddingsPerCall, cached.supportsParallelCalls]).toEqual(['v4', 'mock-provider', 'mock-model-id', 7, false]);
    expect(cached.doEmbed).not.toBe(model.doEmbed);
  });

  it('throws a validation CacheError for a model that is not an embedding model, or bad options', () => {
    const cache = createMemoryCache();
    expect(() => cachedEmbeddingModel({} as never, { cache })).toThrow(expect.objectContaining({ errorType: 'validation' }));
    expect(() => cachedEmbeddingModel(major.mockEmbedding({}), { cache, tll: 5 } as never)).toThrow(expect.objectContaining({ errorType: 'validation', message: expect.stringContaining('tll') }));
  });
});
