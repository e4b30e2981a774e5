import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedEmbeddingModel, cacheStats } from '../../integrations/ai-sdk/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { Cache } from '../../src/core/types.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';
import { majors, settled, type Major } from './ai-sdk/majors.js';

// A cache that fails never fails a generateText, streamText or embedMany
// call: the call goes upstream and the failure is counted.

let server: WireServer;
beforeAll(async () => {
  server = await startOpenAIWireServer();
});
afterAll(async () => {
  await server?.close();
});
stopRedisServersAfterAll();

const question = 'What is AI?';

/** One generateText, one streamText and one embedMany through the middleware and the cached embedding model on `cache`. */
function calls(major: Major, cache: Cache) {
  const { ai } = major;
  const openai = major.openai(server.url);
  const middleware = major.middleware({ cache });
  const model = ai.wrapLanguageModel({ model: openai.chat('gpt-4o-mini'), middleware });
  const embedder = cachedEmbeddingModel(openai.embedding('text-embedding-3-small'), { cache });
  return {
    middleware,
    embedder,
    generate: async () => (await ai.generateText({ model, prompt: question, maxRetries: 0 })).text,
    stream: () => ai.streamText({ model, prompt: question, maxRetries: 0 }).text,
    embed: async () => (await ai.embedMany({ model: embedder, values: [question, 'and ML?'], maxRetries: 0 })).embeddings,
  };
}

for (const major of majors) {
  describe(`cachekit/ai-sdk fails open, ${major.label}`, () => {
    it('answers generateText, streamText and embedMany from upstream on a cache whose every operation fails, counting the errors', async () => {
      const plain = calls(major, createFailingCache());
      const truth = { generate: await plain.generate(), stream: await plain.stream(), embed: await plain.embed() };
      expect(await plain.generate()).toBe(truth.generate);
      expect(await plain.stream()).toBe(truth.stream);
      expect(await plain.embed()).toEqual(truth.embed);
      await settled();
      expect(cacheStats(plain.middleware).errors).toBeGreaterThanOrEqual(4);
      expect(cacheStats(plain.middleware).hits).toBe(0);
      expect(cacheStats(plain.embedder).errors).toBeGreaterThanOrEqual(2);
    });

    describeWith('redis-server')('on a real Redis that is killed and restarted', () => {
      it('answers every call while Redis is down, the same as from the cache before, and caches again once it is back', async () => {
        const redis = await RedisServer.start();
        const cache = await createDragonflyCache({ url: redis.url, commandTimeout: 300, keyPrefix: 'ai-sdk-fail-open' });
        try {
          const site = calls(major, cache);
          const truth = { generate: await site.generate(), stream: await site.stream(), embed: await site.embed() };
          await settled();
          expect([await site.generate(), await site.stream(), await site.embed()]).toEqual([truth.generate, truth.stream, truth.embed]);
          expect(cacheStats(site.middleware).hits).toBe(2);
          const sent = server.calls('chat/completions');

          await redis.kill();
          expect([await site.generate(), await site.stream(), await site.embed()]).toEqual([truth.generate, truth.stream, truth.embed]);
          expect(server.calls('chat/completions')).toBe(sent + 2);
          expect(cacheStats(site.middleware).errors).toBeGreaterThan(0);
          expect(cacheStats(site.embedder).errors).toBeGreaterThan(0);

          await redis.restart();
          await redis.waitUntilAnswering();
          let answered = false;
          for (let i = 0; i < 50 && !answered; i++) {
            await site.generate();
            await settled();
            answered = (await site.generate(), cacheStats(site.middleware).hits > 2);
          }
          expect(answered).toBe(true);
        } finally {
          await cache.close();
          await redis.stop();
        }
      });
    });
  });
}
