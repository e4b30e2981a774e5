import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { ChatOpenAI } from '@langchain/openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cacheStats, explainKey, LangChainCache, withCacheControl } from '../../integrations/langchain/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
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

const API_KEY = 'sk-cachekit-secret-4f2a9c';
const openai = (cache: LangChainCache, fields: Record<string, unknown> = {}) =>
  new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: API_KEY, configuration: { baseURL: server.url }, maxRetries: 0, useResponsesApi: false, cache, ...fields });

const weather = { name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string() }) };

/** Every entry a cache holds, as JSON, with its key. */
async function entries(cache: Cache): Promise<string[]> {
  const out: string[] = [];
  for await (const key of cache.keys('*')) out.push(`${key} ${JSON.stringify(await cache.get(key))}`);
  return out;
}

describeEachBackend('LangChainCache', ({ cache }) => {
  it('answers a repeated ChatOpenAI call from the cache without a request, with the usage LangChain zeroes on a hit', async () => {
    const lc = new LangChainCache({ cache: cache(), ttl: 60 });
    const model = openai(lc);
    const first = await model.invoke('What is AI?');
    const again = await model.invoke('What is AI?');
    expect(server.calls('chat/completions')).toBe(1);
    expect(again.content).toBe(first.content);
    expect(again.id).toBe(first.id);
    expect(again.usage_metadata).toEqual({ input_tokens: 0, output_tokens: 0, total_tokens: 0 });
    expect(first.usage_metadata?.total_tokens).toBeGreaterThan(0);
    expect(cacheStats(lc)).toMatchObject({ hits: 1, misses: 1, tokensSaved: first.usage_metadata?.total_tokens });
  });

  it('round-trips generations exactly: message, tool calls and generationInfo', async () => {
    const lc = new LangChainCache({ cache: cache() });
    const model = openai(lc).bindTools([weather]);
    const first = await model.invoke('Weather in Paris?');
    const again = await model.invoke('Weather in Paris?');
    expect(server.calls('chat/completions')).toBe(1);
    expect(again.tool_calls).toEqual(first.tool_calls);
    expect(again.tool_calls?.[0]?.name).toBe('get_weather');
    // generationInfo (finish_reason) reaches the message's response_metadata on a hit as on the miss.
    expect(again.response_metadata.finish_reason).toBe('tool_calls');
    expect(again.response_metadata.model_name).toBe(first.response_metadata.model_name);
  });

  it('keeps generationInfo through update and lookup', async () => {
    const lc = new LangChainCache({ cache: cache() });
    const generation = { text: 'hi', message: new AIMessage({ content: 'hi', tool_calls: [{ id: 'c1', name: 'f', args: { a: 1 }, type: 'tool_call' }] }), generationInfo: { finish_reason: 'tool_calls', logprobs: { content: [] } } };
    await lc.update('Human: hi', 'llm', [generation]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [back] = (await lc.lookup('Human: hi', 'llm'))!;
    expect(back).toEqual(generation);
  });

  it('never stores the llm string, which holds ChatOpenAI’s API key, in an entry or a key', async () => {
    const c = cache();
    const model = openai(new LangChainCache({ cache: c }));
    await model.invoke('What is AI?');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const all = await entries(c);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(/^v1:langchain-cache:[0-9a-f]{64} /);
    expect(all[0]).not.toContain(API_KEY);
    const explained = await explainKey(new LangChainCache({ cache: c }), 'Human: What is AI?', `apiKey:"${API_KEY}"`);
    expect(JSON.stringify(explained)).not.toContain(API_KEY);
  });

  it('never serves or stores a prompt with a content placeholder: two different images would share its text', async () => {
    const lc = new LangChainCache({ cache: cache() });
    const model = openai(lc);
    const image = (data: string) => new HumanMessage({ content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${data}` } }] });
    await model.invoke([image('AAAA')]);
    await model.invoke([image('BBBB')]);
    await model.invoke([image('AAAA')]);
    expect(server.calls('chat/completions')).toBe(3);
    expect(cacheStats(lc)).toMatchObject({ hits: 0, misses: 0, bypasses: 3 });
    expect((await explainKey(lc, 'Human: [image]What is this?', 'llm')).bypass).toMatch(/placeholder/);
  });

  it('works for any LangChain model: a FakeListChatModel answers its first response again', async () => {
    const model = new FakeListChatModel({ responses: ['first', 'second'], cache: new LangChainCache({ cache: cache() }) });
    expect((await model.invoke('hi')).content).toBe('first');
    expect((await model.invoke('hi')).content).toBe('first');
  });

  it('drops the generations tagged with an invalidated tag, tagged from the prompt', async () => {
    const c = cache();
    const lc = new LangChainCache({ cache: c, ttl: 60, tags: (_generations, prompt) => (prompt.includes('AI') ? ['topic:ai'] : ['topic:other']) });
    const model = openai(lc);
    await model.invoke('What is AI?');
    await model.invoke('What is rain?');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await model.invoke('What is AI?');
    await model.invoke('What is rain?');
    expect(server.calls('chat/completions')).toBe(2);
    await c.invalidateTags(['topic:ai']);
    await model.invoke('What is AI?');
    await model.invoke('What is rain?');
    expect(server.calls('chat/completions')).toBe(3);
  });

  it('counts the cost a hit saved by the price of the model the stored message names', async () => {
    const lc = new LangChainCache({ cache: cache(), ttl: 60, prices: { 'gpt-4o-mini': { input: 1, output: 2 } } });
    const model = openai(lc);
    const first = await model.invoke('What is AI?');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await model.invoke('What is AI?');
    const usage = first.usage_metadata!;
    expect(cacheStats(lc).costSaved).toBeCloseTo((usage.input_tokens * 1 + usage.output_tokens * 2) / 1e6, 12);
    expect(cacheStats(lc).costSaved).toBeGreaterThan(0);
  });

  it('keeps tenants apart; withCacheControl({ tenantId }) wins; bypass, refresh and noStore apply', async () => {
    const c = cache();
    const a = openai(new LangChainCache({ cache: c, tenantId: 'a' }));
    const b = openai(new LangChainCache({ cache: c, tenantId: 'b' }));
    await a.invoke('What is AI?');
    await b.invoke('What is AI?');
    expect(server.calls('chat/completions')).toBe(2);
    await withCacheControl({ tenantId: 'a' }, () => b.invoke('What is AI?'));
    await withCacheControl({ bypass: true }, () => a.invoke('What is AI?'));
    expect(server.calls('chat/completions')).toBe(3);
    await withCacheControl({ noStore: true }, () => a.invoke('Something new'));
    await a.invoke('Something new');
    expect(server.calls('chat/completions')).toBe(5);
    const refreshed = await withCacheControl({ refresh: true }, () => a.invoke('What is AI?'));
    expect((await a.invoke('What is AI?')).id).toBe(refreshed.id);
    expect(server.calls('chat/completions')).toBe(6);
  });
});

describe('LangChainCache options and failures', () => {
  it('refuses grace: a BaseCache is never told that the model call failed', () => {
    expect(() => new LangChainCache({ cache: createMemoryCache(), grace: 60 } as never)).toThrow(/grace/);
  });

  it('refuses bad options at construction, naming the option', () => {
    expect(() => new LangChainCache({ cache: createMemoryCache(), namepsace: 'x' } as never)).toThrow(/namepsace/);
    expect(() => new LangChainCache({ cache: {} as never })).toThrow(/cache/);
  });

  it('fails open: a cache that is down never fails the call, and counts errors', async () => {
    const lc = new LangChainCache({ cache: createFailingCache() });
    const answer = await openai(lc).invoke('What is AI?');
    expect(answer.content).toContain('What is AI?');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(cacheStats(lc).errors).toBe(2);
  });
});
