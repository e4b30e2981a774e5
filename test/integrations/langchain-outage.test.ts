import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { cachedChatModel, cachedEmbeddings, cacheStats, LangChainCache } from '../../integrations/langchain/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

let wire: WireServer;
beforeEach(async () => {
  wire = await startOpenAIWireServer();
});
afterEach(async () => {
  await wire.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

describeWith('redis-server')('cachekit/langchain when its Redis is killed (own server)', () => {
  stopRedisServersAfterAll();

  it('keeps answering invokes, streams, LangChainCache calls and embeddings, counting errors', { timeout: 20_000 }, async () => {
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, keyPrefix: 'lc-outage', commandTimeout: 200 });
    try {
      const fields = { model: 'gpt-4o-mini', apiKey: 'test', configuration: { baseURL: wire.url }, maxRetries: 0, useResponsesApi: false };
      const model = cachedChatModel(new ChatOpenAI(fields), { cache });
      const lc = new LangChainCache({ cache });
      const withBaseCache = new ChatOpenAI({ ...fields, cache: lc });
      const embeddings = cachedEmbeddings(new OpenAIEmbeddings({ model: 'text-embedding-3-small', apiKey: 'test', configuration: { baseURL: wire.url }, maxRetries: 0 }), { cache });
      await model.invoke('before');
      await model.invoke('before');
      expect(cacheStats(model).hits).toBe(1);

      await server.kill();
      await sleep(50);
      const started = performance.now();
      expect((await model.invoke('after')).content).toContain('after');
      expect(await collect(await model.stream('after'))).not.toHaveLength(0);
      expect((await withBaseCache.invoke('after')).content).toContain('after');
      expect(await embeddings.embedDocuments(['a', 'b'])).toHaveLength(2);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(cacheStats(model).errors).toBeGreaterThanOrEqual(2);
      expect(cacheStats(lc).errors).toBeGreaterThanOrEqual(1);
      expect(cacheStats(embeddings).errors).toBeGreaterThanOrEqual(1);
    } finally {
      await server.stop();
      await cache.close();
    }
  });
});
