import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedOpenAI } from '../../integrations/openai/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { explainKey } from '../../src/llm/explain-key.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { requestKey } from '../../src/llm/request-key.js';
import { withCache } from '../../src/llm/with-cache.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

let server: WireServer;
beforeAll(async () => {
  server = await startOpenAIWireServer();
});
afterAll(async () => {
  await server.close();
});

describe('explainKey', () => {
  it('explains a plain request: the key requestKey gives, what was hashed, and the undefined fields left out', async () => {
    const request = { model: 'm', messages: [{ role: 'user', content: 'hi', name: undefined }], user: undefined };
    expect(await explainKey(request, { namespace: 'gw' })).toEqual({
      key: requestKey(request, { namespace: 'gw' }),
      hashed: { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
      dropped: ['messages[0].name', 'user'],
    });
  });

  it('says why a request cannot be keyed instead of throwing', async () => {
    const explanation = await explainKey({ signal: new AbortController().signal });
    expect(explanation.key).toBeUndefined();
    expect(explanation.bypass).toMatch(/AbortSignal/);
  });

  it('gives the very key a withCache method stores under, with its identity and tenant', async () => {
    const cache = createMemoryCache();
    const gateway = withCache({ model: 'small', generate: async (q: string) => `answer to ${q}` }, { cache, tenantId: 'acme' });
    await gateway.generate('What is AI?');
    const explanation = await explainKey(gateway.generate, 'What is AI?');
    expect(explanation).toMatchObject({ tenantId: 'acme', hashed: { method: 'generate', identity: { model: 'small' }, input: ['What is AI?'] } });
    expect(await cache.get(explanation.key!, { tenantId: 'acme' })).toMatchObject({ value: 'answer to What is AI?' });
    expect((await withCacheControl({ tenantId: 'other' }, () => explainKey(gateway.generate, 'q'))).tenantId).toBe('other');
  });

  it('explains cachedRag with its corpus version, memoizeTask with its version, and @Cached with the instance', async () => {
    const cache = createMemoryCache();
    const rag = cachedRag(async (q: string) => q, { cache, corpusVersion: async () => 'index-7' });
    await rag('q');
    const ragKey = await explainKey(rag, 'q', undefined);
    expect(ragKey.hashed).toEqual({ corpus: 'index-7', code: expect.any(String), input: ['q'] });
    expect(await cache.get(ragKey.key!)).toBeDefined();

    const task = memoizeTask(async function plan(goal: string) { return goal; }, { cache, version: 3 });
    await task('ship');
    const taskKey = await explainKey(task, 'ship');
    expect(taskKey.hashed).toEqual({ version: 3, code: expect.any(String), input: ['ship'] });
    expect(await cache.get(taskKey.key!)).toBeDefined();

    class Service {
      constructor(readonly model: string) {}
      async ask(q: string) {
        return `${this.model}: ${q}`;
      }
    }
    const descriptor = Object.getOwnPropertyDescriptor(Service.prototype, 'ask') as TypedPropertyDescriptor<Service['ask']>;
    Object.defineProperty(Service.prototype, 'ask', Cached({ cache })(Service.prototype, 'ask', descriptor));
    const service = new Service('large');
    await service.ask('q');
    const methodKey = await explainKey.call(service, Service.prototype.ask, 'q');
    expect(methodKey.hashed).toEqual({ code: expect.any(String), identity: { model: 'large' }, input: ['q'] });
    expect(await cache.get(methodKey.key!)).toMatchObject({ value: 'large: q' });
  });

  it('lists what cachedOpenAI leaves out of a chat key, and explains embeddings item by item', async () => {
    const cache = createMemoryCache();
    const openai = cachedOpenAI(new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 }), { cache });
    const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], user: 'u-1', metadata: { trace: 't' } };
    await openai.chat.completions.create(params, { timeout: 5000 });
    const chat = await explainKey(openai.chat.completions.create, params, { timeout: 5000 });
    expect(chat.dropped).toEqual(['options.timeout', 'params.metadata', 'params.user']);
    expect(chat.hashed).toMatchObject({ endpoint: 'chat.completions', stream: false, params: { model: 'gpt-4o-mini' } });
    expect(await cache.get(chat.key!)).toBeDefined();

    await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    const embeddings = await explainKey(openai.embeddings.create, { model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float' });
    expect(embeddings.key).toBeUndefined();
    expect(embeddings.dropped).toEqual(['params.encoding_format']);
    expect(embeddings.items).toHaveLength(2);
    for (const item of embeddings.items!) expect(await cache.get(item.key)).toBeDefined();

    const bypassed = await explainKey(openai.chat.completions.create, params, { body: {} });
    expect(bypassed.bypass).toMatch(/body, query, path or method/);
  });
});
