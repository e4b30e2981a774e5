import { SyntheticEmbeddings } from '@langchain/core/utils/testing';
import { OpenAIEmbeddings } from '@langchain/openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedEmbeddings, cacheStats, explainKey, withCacheControl } from '../../integrations/langchain/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer();
});
afterEach(async () => {
  await server.close();
});

const embeddings = (fields: Record<string, unknown> = {}) =>
  new OpenAIEmbeddings({ model: 'text-embedding-3-small', apiKey: 'test', configuration: { baseURL: server.url }, maxRetries: 0, ...fields });

const docs = ['alpha', 'beta', 'gamma', 'delta'];

describeEachBackend('cachedEmbeddings with OpenAIEmbeddings', ({ cache }) => {
  it('sends only the documents not cached yet, in one request, and answers in order with the exact vectors', async () => {
    const plain = await embeddings().embedDocuments(docs);
    const before = server.calls('embeddings');
    const cached = cachedEmbeddings(embeddings(), { cache: cache() });
    await cached.embedDocuments(['beta', 'delta']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const all = await cached.embedDocuments(docs);
    expect(server.calls('embeddings') - before).toBe(2);
    expect(server.bodies('embeddings').at(-1)!.input).toEqual(['alpha', 'gamma']);
    expect(all).toEqual(plain);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cached.embedDocuments(docs)).toEqual(plain);
    expect(server.calls('embeddings') - before).toBe(2);
    expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 2 });
  });

  it('caches embedQuery, in entries apart from the documents', async () => {
    const cached = cachedEmbeddings(embeddings(), { cache: cache() });
    const doc = await cached.embedDocuments(['alpha']);
    const query = await cached.embedQuery('alpha');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cached.embedQuery('alpha')).toEqual(query);
    expect(server.calls('embeddings')).toBe(2);
    expect(query).toEqual(doc[0]);
  });

  it('keys every item on base URL, model and dimensions', async () => {
    const c = cache();
    await cachedEmbeddings(embeddings(), { cache: c }).embedDocuments(['alpha']);
    await cachedEmbeddings(embeddings({ dimensions: 4 }), { cache: c }).embedDocuments(['alpha']);
    await cachedEmbeddings(embeddings({ model: 'text-embedding-3-large' }), { cache: c }).embedDocuments(['alpha']);
    const other = await startOpenAIWireServer();
    try {
      await cachedEmbeddings(embeddings({ configuration: { baseURL: other.url } }), { cache: c }).embedDocuments(['alpha']);
      expect(other.calls('embeddings')).toBe(1);
    } finally {
      await other.close();
    }
    expect(server.calls('embeddings')).toBe(3);
    const explained = await explainKey(cachedEmbeddings(embeddings({ dimensions: 4 }), { cache: c }).embedDocuments, ['alpha', 'beta']);
    expect(explained.items).toHaveLength(2);
    expect(explained.items![0]!.hashed).toMatchObject({ embeddings: { baseURL: server.url, model: 'text-embedding-3-small', dimensions: 4 }, kind: 'document', text: 'alpha' });
    expect(await c.get(explained.items![0]!.key)).toBeDefined();
  });

  it('keeps tenants apart and follows bypass, refresh and noStore', async () => {
    const c = cache();
    const a = cachedEmbeddings(embeddings(), { cache: c, tenantId: 'a' });
    const b = cachedEmbeddings(embeddings(), { cache: c, tenantId: 'b' });
    await a.embedQuery('alpha');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await b.embedQuery('alpha');
    expect(server.calls('embeddings')).toBe(2);
    await withCacheControl({ tenantId: 'a' }, () => b.embedQuery('alpha'));
    expect(server.calls('embeddings')).toBe(2);
    await withCacheControl({ bypass: true }, () => a.embedQuery('alpha'));
    await withCacheControl({ noStore: true }, () => a.embedQuery('beta'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await a.embedQuery('beta');
    expect(server.calls('embeddings')).toBe(5);
  });
});

describeEachBackend('cachedEmbeddings with fake embeddings', ({ cache }) => {
  it('answers SyntheticEmbeddings vectors exactly from the cache', async () => {
    const fake = new SyntheticEmbeddings({ vectorSize: 6 });
    let sent: string[] = [];
    const counting = Object.assign(Object.create(fake) as SyntheticEmbeddings, {
      embedDocuments: (texts: string[]) => ((sent = [...sent, ...texts]), fake.embedDocuments(texts)),
    });
    const cached = cachedEmbeddings(counting, { cache: cache(), identity: { provider: 'synthetic', size: 6 } });
    const first = await cached.embedDocuments(['one doc', 'two docs']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cached.embedDocuments(['two docs', 'one doc', 'three'])).toEqual([first[1], first[0], await fake.embedQuery('three')]);
    expect(sent).toEqual(['one doc', 'two docs', 'three']);
  });
});

describe('cachedEmbeddings options and failures', () => {
  it('refuses bad options at construction, naming the option', () => {
    expect(() => cachedEmbeddings(new SyntheticEmbeddings(), { cache: createMemoryCache(), identiy: 'x' } as never)).toThrow(/identiy/);
    expect(() => cachedEmbeddings(new SyntheticEmbeddings(), { cache: createMemoryCache(), identity: () => 1 })).toThrow(/identity/);
    expect(() => cachedEmbeddings({} as never, { cache: createMemoryCache() })).toThrow(/Embeddings/);
  });

  it('fails open: a cache that is down never fails a call, and counts errors', async () => {
    const cached = cachedEmbeddings(embeddings(), { cache: createFailingCache() });
    expect(await cached.embedDocuments(['alpha', 'beta'])).toHaveLength(2);
    expect(await cached.embedQuery('alpha')).toHaveLength(8);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(cacheStats(cached).errors).toBeGreaterThanOrEqual(2);
  });
});
