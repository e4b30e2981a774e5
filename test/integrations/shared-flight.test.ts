import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { cachedChatModel } from '../../integrations/langchain/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { uniquePrefix } from '../helpers/redis.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';
import { majors } from './ai-sdk/majors.js';

// Four caches on one server stand for four processes (own connections, own
// in-process flights): only the lock and its channel join them. Real processes
// run the core wrappers in test/reliability/shared-flight-processes.test.ts.
const PROCESSES = 4;
const CALLERS = 25;

describeWith('redis-server')('singleFlight shared in the integrations, four caches on a private redis-server', () => {
  stopRedisServersAfterAll();
  let redis: RedisServer;
  let server: WireServer;
  let caches: Cache[] = [];
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  beforeEach(async () => {
    server = await startOpenAIWireServer({ latencyMs: 100 });
  });
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((cache) => cache.close()));
    await server.close();
  });
  async function open(prefix: string): Promise<Cache[]> {
    caches = await Promise.all(Array.from({ length: PROCESSES }, () => createDragonflyCache({ url: redis.url, keyPrefix: prefix })));
    return caches;
  }

  for (const major of majors) {
    it(`AI SDK ${major.label}: ${PROCESSES * CALLERS} identical generateText misses make one upstream call`, async () => {
      const list = await open(uniquePrefix('sf-ai'));
      const models = list.map((cache) =>
        major.ai.wrapLanguageModel({ model: major.openai(server.url).chat('gpt-4o-mini'), middleware: major.middleware({ cache, singleFlight: 'shared' }) }),
      );
      const answers = await Promise.all(
        models.flatMap((model) => Array.from({ length: CALLERS }, () => major.ai.generateText({ model, prompt: 'What is AI?', temperature: 0, maxRetries: 0 }))),
      );
      expect(server.calls('chat/completions')).toBe(1);
      expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    });
  }

  it(`LangChain cachedChatModel: ${PROCESSES * CALLERS} identical invokes make one upstream call`, async () => {
    const list = await open(uniquePrefix('sf-lc'));
    const models = list.map((cache) =>
      cachedChatModel(new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'test', configuration: { baseURL: server.url }, maxRetries: 0, useResponsesApi: false }), {
        cache,
        singleFlight: 'shared',
      }),
    );
    const answers = await Promise.all(models.flatMap((model) => Array.from({ length: CALLERS }, () => model.invoke([new HumanMessage('What is AI?')]))));
    expect(server.calls('chat/completions')).toBe(1);
    expect(new Set(answers.map((a) => a.content)).size).toBe(1);
  });

  it('refuses a malformed singleFlight in both integrations, naming the option', () => {
    const cache = createMemoryCache();
    for (const major of majors) expect(() => major.middleware({ cache, singleFlight: 'global' as never })).toThrow(/singleFlight/);
    expect(() => cachedChatModel(new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'test' }), { cache, lockTtl: 0, singleFlight: 'shared' })).toThrow(/lockTtl/);
  });
});
