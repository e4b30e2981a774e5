import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { AIMessageChunk, HumanMessage, type BaseMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { cachedChatModel, cacheInfo, cacheStats, withCacheControl, type CachedChatModelOptions } from '../../integrations/langchain/index.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

// Issue 15's freshness on cachedChatModel, with the real `@langchain/openai`
// ChatOpenAI against the local OpenAI wire-format server made to answer 429,
// 500 and 400, or to hang.

const TTL = 0.3;
const PAST_TTL_MS = 450;
const question = [new HumanMessage('What is AI?')];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const settled = () => sleep(20);

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer({ chunkDelayMs: 5 });
});
afterEach(async () => {
  await server.close();
});

const openai = () => new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'test', configuration: { baseURL: server.url }, maxRetries: 0, useResponsesApi: false });

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}
const textOf = (chunks: AIMessageChunk[]) => chunks.map((c) => c.content).join('');

class Tokens extends BaseCallbackHandler {
  name = 'tokens';
  tokens: string[] = [];
  override handleLLMNewToken(token: string): void {
    this.tokens.push(token);
  }
}

describeEachBackend('cachedChatModel freshness with ChatOpenAI', ({ cache }) => {
  const setup = (options: Omit<CachedChatModelOptions, 'cache'> = {}) => cachedChatModel(openai(), { cache: cache(), ttl: TTL, grace: 60, ...options });

  it.each([429, 500])('answers invoke with the last good answer while the provider answers %i, marked stale', async (status) => {
    const model = setup();
    const first = await model.invoke(question);
    expect(cacheInfo(first)).toMatchObject({ status: 'miss', key: expect.any(String) });
    await settled();
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', status);
    const again = await model.invoke(question);
    outage.recover();
    expect(again.content).toBe(first.content);
    expect(again.id).toBe(first.id);
    expect(again.response_metadata.cachekit).toBe('stale');
    expect(cacheInfo(again)).toMatchObject({ status: 'stale', storedAt: expect.any(Number) });
    expect(cacheStats(model)).toMatchObject({ staleHits: 1, misses: 1 });
  });

  it('never answers stale for a 400: the request itself is wrong', async () => {
    const model = setup();
    await model.invoke(question);
    await settled();
    await sleep(PAST_TTL_MS);
    server.failNext('chat/completions', 400);
    await expect(model.invoke(question)).rejects.toMatchObject({ status: 400 });
  });

  it('never answers stale once the caller aborted', async () => {
    const model = setup();
    await model.invoke(question);
    await settled();
    await sleep(PAST_TTL_MS);
    const hang = server.hang('chat/completions');
    const controller = new AbortController();
    const call = model.invoke(question, { signal: controller.signal });
    await sleep(30);
    controller.abort('the user left');
    await expect(call).rejects.toBeDefined();
    hang.release();
  });

  it('never answers one tenant with another tenant’s stale answer', async () => {
    const model = setup();
    await withCacheControl({ tenantId: 'acme' }, () => model.invoke(question));
    await settled();
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', 500);
    await expect(withCacheControl({ tenantId: 'globex' }, () => model.invoke(question))).rejects.toMatchObject({ status: 500 });
    const acme = await withCacheControl({ tenantId: 'acme' }, () => model.invoke(question));
    outage.recover();
    expect(cacheInfo(acme)?.status).toBe('stale');
  });

  it('answers stale past softTimeout while the provider hangs, and stores the refresh when it lands', async () => {
    const model = setup({ softTimeout: 50 });
    const first = await model.invoke(question);
    await settled();
    await sleep(PAST_TTL_MS);
    const hang = server.hang('chat/completions');
    const started = performance.now();
    const stale = await model.invoke(question);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(stale.id).toBe(first.id);
    expect(cacheInfo(stale)?.status).toBe('stale');
    hang.release();
    await sleep(100);
    const fresh = await model.invoke(question);
    expect(cacheInfo(fresh)?.status).toBe('hit');
    expect(fresh.id).not.toBe(first.id);
  });

  it('answers a stream with the last good recording while the provider answers 429, marked stale', async () => {
    const model = setup();
    const first = await collect(await model.stream(question));
    expect(cacheInfo(first[0])).toMatchObject({ status: 'miss' });
    await settled();
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', 429);
    const again = await collect(await model.stream(question));
    outage.recover();
    expect(textOf(again)).toBe(textOf(first));
    expect(again).toHaveLength(first.length);
    expect(again.at(-1)!.response_metadata.cachekit).toBe('stale');
    expect(again.every((chunk) => cacheInfo(chunk)?.status === 'stale')).toBe(true);
    expect(cacheStats(model)).toMatchObject({ staleHits: 1, misses: 1 });
  });

  it('tells a bypass from a miss in cacheInfo, invoked and streamed', async () => {
    const model = cachedChatModel(openai(), { cache: cache(), ttl: 60 });
    expect(cacheInfo(await withCacheControl({ bypass: true }, () => model.invoke(question)))?.status).toBe('bypass');
    const chunks = await withCacheControl({ bypass: true }, async () => collect(await model.stream(question)));
    expect(chunks.every((chunk) => cacheInfo(chunk)?.status === 'bypass')).toBe(true);
    expect(cacheInfo(await withCacheControl({ refresh: true }, () => model.invoke(question)))?.status).toBe('bypass');
    await settled();
    expect(cacheInfo(await model.invoke(question))?.status).toBe('hit');
  });

  it('drops the answers tagged with an invalidated tag, invoked and streamed', async () => {
    const c = cache();
    const seen: [string, number][] = [];
    const model = cachedChatModel(openai(), {
      cache: c,
      ttl: 60,
      tags: (_result, messages: BaseMessage[], call) => {
        seen.push([call.type, messages.length]);
        return ['doc:42'];
      },
    });
    await model.invoke(question);
    await collect(await model.stream(question));
    await settled();
    expect(seen).toEqual([
      ['generate', 1],
      ['stream', 1],
    ]);
    expect(cacheInfo(await model.invoke(question))?.status).toBe('hit');
    expect(cacheInfo((await collect(await model.stream(question)))[0])?.status).toBe('hit');
    await c.invalidateTags(['doc:42']);
    expect(cacheInfo(await model.invoke(question))?.status).toBe('miss');
    expect(cacheInfo((await collect(await model.stream(question)))[0])?.status).toBe('miss');
    expect(server.calls('chat/completions')).toBe(4);
  });

  it('counts the cost a hit saved by the price of the answer’s model, invoked and streamed', async () => {
    const model = cachedChatModel(openai(), { cache: cache(), ttl: 60, prices: { 'gpt-4o-mini': { input: 1, output: 2 } } });
    const first = await model.invoke(question);
    await settled();
    await model.invoke(question);
    const usage = first.usage_metadata!;
    const perCall = (usage.input_tokens * 1 + usage.output_tokens * 2) / 1e6;
    expect(perCall).toBeGreaterThan(0);
    expect(cacheStats(model).costSaved).toBeCloseTo(perCall, 12);
    const chunks = await collect(await model.stream(question));
    const streamed = chunks.reduce((a, b) => a.concat(b)).usage_metadata!;
    await settled();
    await collect(await model.stream(question));
    expect(cacheStats(model).costSaved).toBeCloseTo(perCall + (streamed.input_tokens * 1 + streamed.output_tokens * 2) / 1e6, 12);
  });

  it('makes one upstream call for concurrent identical streams, each caller its own chunks', async () => {
    await server.close();
    server = await startOpenAIWireServer({ chunkDelayMs: 20 });
    const model = cachedChatModel(openai(), { cache: cache(), ttl: 60 });
    const run = async (delayMs: number) => {
      await sleep(delayMs);
      const started = performance.now();
      let firstChunkMs: number | undefined;
      const chunks: AIMessageChunk[] = [];
      const tokens = new Tokens();
      for await (const chunk of await model.stream(question, { callbacks: [tokens] })) {
        if (chunk.content !== '') firstChunkMs ??= performance.now() - started;
        chunks.push(chunk);
      }
      return { chunks, tokens: tokens.tokens, firstChunkMs: firstChunkMs ?? NaN };
    };
    const [a, b, c] = await Promise.all([run(0), run(30), run(60)]);
    expect(server.calls('chat/completions')).toBe(1);
    expect(textOf(b.chunks)).toBe(textOf(a.chunks));
    expect(textOf(c.chunks)).toBe(textOf(a.chunks));
    expect(b.chunks).toHaveLength(a.chunks.length);
    expect(b.chunks[0]).not.toBe(a.chunks[0]);
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).toEqual(a.tokens);
    expect([a, b, c].map((r) => cacheInfo(r.chunks[0])?.status)).toEqual(['miss', 'miss', 'miss']);
    expect(cacheStats(model)).toMatchObject({ misses: 3, hits: 0 });
    console.log(
      `langchain shared stream: 1 upstream call for 3 callers; latency to first chunk ms: starter ${a.firstChunkMs.toFixed(1)}, joiners ${b.firstChunkMs.toFixed(1)}, ${c.firstChunkMs.toFixed(1)}`,
    );
    await settled();
    await collect(await model.stream(question));
    expect(server.calls('chat/completions')).toBe(1);
  });

  it('makes one upstream call for concurrent identical native streamEvents, each caller the same events', async () => {
    const model = cachedChatModel(openai(), { cache: cache(), ttl: 60 });
    const [a, b] = await Promise.all([collect(model.streamEvents(question)), collect(model.streamEvents(question))]);
    expect(server.calls('chat/completions')).toBe(1);
    expect(b).toEqual(a);
    expect(b[0]).not.toBe(a[0]);
    expect(a.at(-1)).toMatchObject({ event: 'message-finish', reason: 'stop' });
  });

  it('keeps a shared stream going for the callers left when one breaks off, and stores it', async () => {
    const model = cachedChatModel(openai(), { cache: cache(), ttl: 60 });
    const leaving = (async () => {
      for await (const _ of await model.stream(question)) break;
    })();
    const staying = collect(await model.stream(question));
    await leaving;
    const chunks = await staying;
    expect(chunks.length).toBeGreaterThan(2);
    expect(server.calls('chat/completions')).toBe(1);
    await settled();
    const hit = await collect(await model.stream(question));
    expect(textOf(hit)).toBe(textOf(chunks));
    expect(cacheInfo(hit[0])?.status).toBe('hit');
    expect(server.calls('chat/completions')).toBe(1);
  });
});
