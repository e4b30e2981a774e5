import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, AIMessageChunk, HumanMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import { FakeListChatModel, FakeStreamingChatModel } from '@langchain/core/utils/testing';
import { ChatOpenAI } from '@langchain/openai';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cachedChatModel, cacheStats, explainKey, withCacheControl } from '../../integrations/langchain/index.js';
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

// @langchain/openai 1.6 sends chat completions unless `useResponsesApi` (or a Responses-only option or model) says otherwise; pinned here.
const openai = (fields: Record<string, unknown> = {}, url = server.url) =>
  new ChatOpenAI({ model: 'gpt-4o-mini', apiKey: 'test', configuration: { baseURL: url }, maxRetries: 0, useResponsesApi: false, ...fields });

const question = [new SystemMessage('Be brief.'), new HumanMessage('What is AI?')];
const weather = { name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string() }) };

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

const textOf = (chunks: AIMessageChunk[]) => chunks.map((c) => c.content).join('');
const withoutMark = (message: BaseMessage) => {
  const { cachekit: _mark, ...response_metadata } = message.response_metadata as Record<string, unknown>;
  return { ...message, response_metadata, lc_kwargs: undefined };
};

class Tokens extends BaseCallbackHandler {
  name = 'tokens';
  tokens: string[] = [];
  override handleLLMNewToken(token: string): void {
    this.tokens.push(token);
  }
}

describeEachBackend('cachedChatModel with ChatOpenAI', ({ cache }) => {
  describe('invoke and batch', () => {
    it('answers a repeated invoke from the cache without a request, with the same message marked as a hit and the tokens saved', async () => {
      const model = cachedChatModel(openai(), { cache: cache(), ttl: 60 });
      const first = await model.invoke(question);
      const again = await model.invoke(question);
      expect(server.calls('chat/completions')).toBe(1);
      expect(again.content).toBe(first.content);
      expect(again.response_metadata.cachekit).toBe('hit');
      expect(first.response_metadata.cachekit).toBeUndefined();
      expect(again.usage_metadata).toEqual(first.usage_metadata);
      expect(withoutMark(again)).toEqual(withoutMark(first));
      const stats = cacheStats(model);
      expect(stats).toMatchObject({ hits: 1, misses: 1, bypasses: 0, errors: 0 });
      expect(stats.tokensSaved).toBe(first.usage_metadata?.total_tokens);
    });

    it('caches the Responses API too when the model uses it', async () => {
      const model = cachedChatModel(openai({ useResponsesApi: true }), { cache: cache() });
      const first = await model.invoke(question);
      const again = await model.invoke(question);
      expect(server.calls('responses')).toBe(1);
      expect(server.calls('chat/completions')).toBe(0);
      expect(again.content).toEqual(first.content);
    });

    it('batches item by item: only the prompts not cached yet go upstream, in order', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const one = await model.invoke('one');
      const answers = await model.batch(['one', 'two', 'three']);
      expect(server.calls('chat/completions')).toBe(3);
      expect(answers.map((a) => a.content)).toEqual([one.content, expect.stringContaining('"two"'), expect.stringContaining('"three"')]);
      await model.batch(['one', 'two', 'three']);
      expect(server.calls('chat/completions')).toBe(3);
    });

    it('shares one upstream call between concurrent identical invokes, each with its own message', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const [a, b, c] = await Promise.all([model.invoke(question), model.invoke(question), model.invoke(question)]);
      expect(server.calls('chat/completions')).toBe(1);
      expect(b!.content).toBe(a!.content);
      expect(b).not.toBe(a);
      expect(c).not.toBe(b);
    });

    it('caches tool calls, with tools bound after wrapping', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const withTools = model.bindTools([weather]);
      const first = await withTools.invoke('Weather in Paris?');
      const again = await withTools.invoke('Weather in Paris?');
      expect(server.calls('chat/completions')).toBe(1);
      expect(first.tool_calls?.[0]?.name).toBe('get_weather');
      expect(again.tool_calls).toEqual(first.tool_calls);
      expect(cacheStats(model)).toMatchObject({ hits: 1, misses: 1 });
      expect(cacheStats(withTools)).toEqual(cacheStats(model));
    });

    it('caches tool calls, with tools bound before wrapping', async () => {
      const model = cachedChatModel(openai().bindTools([weather]), { cache: cache() });
      const first = await model.invoke('Weather in Paris?');
      const again = await model.invoke('Weather in Paris?');
      expect(server.calls('chat/completions')).toBe(1);
      expect(again.tool_calls).toEqual(first.tool_calls);
    });

    it('keys on the tools: the same prompt with and without tools are separate entries', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await model.invoke('Weather in Paris?');
      await model.bindTools([weather]).invoke('Weather in Paris?');
      await model.bindTools([weather], { tool_choice: 'required' }).invoke('Weather in Paris?');
      expect(server.calls('chat/completions')).toBe(3);
    });

    it('caches withStructuredOutput (built on the wrapper) and withConfig', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const structured = model.withStructuredOutput(z.object({ answer: z.string() }));
      const first = await structured.invoke('What is AI?');
      const again = await structured.invoke('What is AI?');
      expect(again).toEqual(first);
      const configured = model.withConfig({ stop: ['\n'] });
      await configured.invoke('What is AI?');
      await configured.invoke('What is AI?');
      expect(server.calls('chat/completions')).toBe(2);
      expect(cacheStats(model)).toMatchObject({ hits: 2, misses: 2 });
    });

    it('keys on every invocation parameter: temperature, model and base URL', async () => {
      const other = await startOpenAIWireServer();
      try {
        const c = cache();
        await cachedChatModel(openai({ temperature: 0 }), { cache: c }).invoke(question);
        await cachedChatModel(openai({ temperature: 1 }), { cache: c }).invoke(question);
        await cachedChatModel(openai({ model: 'gpt-4o' }), { cache: c }).invoke(question);
        await cachedChatModel(openai({}, other.url), { cache: c }).invoke(question);
        expect(server.calls('chat/completions')).toBe(3);
        expect(other.calls('chat/completions')).toBe(1);
        await cachedChatModel(openai({ temperature: 1 }), { cache: c }).invoke(question);
        expect(server.calls('chat/completions')).toBe(3);
      } finally {
        await other.close();
      }
    });

    it('never keys on run ids, run names, callbacks, tags, metadata or timeouts', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await model.invoke(question, { runId: crypto.randomUUID(), tags: ['a'], metadata: { user: 'x' } });
      await model.invoke(question, { runId: crypto.randomUUID(), runName: 'again', tags: ['b'], metadata: { user: 'y' }, callbacks: [new Tokens()], timeout: 5000 });
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('keys on the message structure: a message containing "\\nAI: " never shares with a two-message conversation', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await model.invoke([new HumanMessage('Hi\nAI: Hello')]);
      await model.invoke([new HumanMessage('Hi'), new AIMessage('Hello')]);
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('keys on the bytes of images: two different images never share an entry', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const image = (data: string) => new HumanMessage({ content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${data}` } }] });
      await model.invoke([image('AAAA')]);
      await model.invoke([image('BBBB')]);
      await model.invoke([image('AAAA')]);
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('leaves message ids out of the key (LangGraph gives every message a random one)', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await model.invoke([new HumanMessage({ content: 'What is AI?', id: crypto.randomUUID() })]);
      await model.invoke([new HumanMessage({ content: 'What is AI?', id: crypto.randomUUID() })]);
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('sends an upstream error to the caller and caches nothing', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      server.failNext('chat/completions');
      await expect(model.invoke(question)).rejects.toThrow();
      await model.invoke(question);
      expect(server.calls('chat/completions')).toBe(2);
    });
  });

  describe('streams', () => {
    it('replays a finished stream chunk by chunk as AIMessageChunks, without a request, and callbacks see the same tokens', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const live = new Tokens();
      const first = await collect(await model.stream(question, { callbacks: [live] }));
      const replayed = new Tokens();
      const again = await collect(await model.stream(question, { callbacks: [replayed] }));
      expect(server.calls('chat/completions')).toBe(1);
      expect(first.length).toBeGreaterThan(2);
      expect(again).toHaveLength(first.length);
      expect(again.every((chunk) => chunk instanceof AIMessageChunk)).toBe(true);
      expect(again.map((c) => c.content)).toEqual(first.map((c) => c.content));
      expect(replayed.tokens).toEqual(live.tokens);
      expect(again.at(-1)!.response_metadata.cachekit).toBe('hit');
      expect(cacheStats(model)).toMatchObject({ hits: 1, misses: 1 });
    });

    it('replays a Responses API stream once it completed', async () => {
      const model = cachedChatModel(openai({ useResponsesApi: true }), { cache: cache() });
      const first = await collect(await model.stream(question));
      const again = await collect(await model.stream(question));
      expect(server.calls('responses')).toBe(1);
      expect(textOf(again)).toBe(textOf(first));
      expect(again).toHaveLength(first.length);
    });

    it('replays tool-call chunks that concatenate to the same tool calls', async () => {
      const model = cachedChatModel(openai(), { cache: cache() }).bindTools([weather]);
      const join = (chunks: AIMessageChunk[]) => chunks.reduce((a, b) => a.concat(b));
      const first = join(await collect(await model.stream('Weather in Paris?')));
      const again = join(await collect(await model.stream('Weather in Paris?')));
      expect(server.calls('chat/completions')).toBe(1);
      expect(first.tool_calls?.[0]?.name).toBe('get_weather');
      expect(again.tool_calls).toEqual(first.tool_calls);
    });

    it('keeps streamed and invoked answers apart', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await model.invoke(question);
      await collect(await model.stream(question));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('never stores a stream the server cut, cleanly or not', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      server.cutNextStream(2, 'end');
      const cut = await collect(await model.stream(question));
      expect(cut.length).toBeGreaterThan(0);
      server.cutNextStream(2, 'destroy');
      await expect(collect(await model.stream(question))).rejects.toThrow();
      const whole = await collect(await model.stream(question));
      expect(server.calls('chat/completions')).toBe(3);
      expect(whole.length).toBeGreaterThan(cut.length);
      await collect(await model.stream(question));
      expect(server.calls('chat/completions')).toBe(3);
    });

    it('never stores a stream the caller left early or aborted', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      for await (const _ of await model.stream(question)) break;
      const controller = new AbortController();
      await expect(
        (async () => {
          for await (const _ of await model.stream(question, { signal: controller.signal })) controller.abort();
        })(),
      ).rejects.toThrow();
      await collect(await model.stream(question));
      await collect(await model.stream(question));
      expect(server.calls('chat/completions')).toBe(3);
    });

    it('caches streamEvents v2: the replay gives the same on_chat_model_stream events', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const events = async () => (await collect(model.streamEvents(question, { version: 'v2' }))).filter((e) => e.event === 'on_chat_model_stream').map((e) => (e.data.chunk as AIMessageChunk).content);
      const first = await events();
      const again = await events();
      expect(server.calls('chat/completions')).toBe(1);
      expect(again).toEqual(first);
      expect(first.length).toBeGreaterThan(2);
    });

    it('caches the native streamEvents protocol (no version): the same events, the same final message', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const first = await collect(model.streamEvents(question));
      const again = await collect(model.streamEvents(question));
      expect(server.calls('chat/completions')).toBe(1);
      expect(again).toEqual(first);
      expect(first.at(-1)).toMatchObject({ event: 'message-finish', reason: 'stop' });
      const message = await model.streamEvents(question);
      expect(message.text).toBe(textOf(await collect(await model.stream(question))));
    });

    it('applies controls to a stream consumed outside the withCacheControl callback', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      const stream = await withCacheControl({ noStore: true }, () => model.stream(question));
      await collect(stream);
      await collect(await model.stream(question));
      expect(server.calls('chat/completions')).toBe(2);
    });
  });

  describe('tenants, controls and keys', () => {
    it('keeps tenants apart, and withCacheControl({ tenantId }) wins over the option', async () => {
      const c = cache();
      const a = cachedChatModel(openai(), { cache: c, tenantId: 'a' });
      const b = cachedChatModel(openai(), { cache: c, tenantId: 'b' });
      await a.invoke(question);
      await b.invoke(question);
      expect(server.calls('chat/completions')).toBe(2);
      await withCacheControl({ tenantId: 'a' }, () => b.invoke(question));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('bypass skips the cache, refresh replaces the entry, noStore leaves nothing', async () => {
      const model = cachedChatModel(openai(), { cache: cache() });
      await withCacheControl({ noStore: true }, () => model.invoke(question));
      const first = await model.invoke(question);
      await withCacheControl({ bypass: true }, () => model.invoke(question));
      const refreshed = await withCacheControl({ refresh: true }, () => model.invoke(question));
      const after = await model.invoke(question);
      expect(server.calls('chat/completions')).toBe(4);
      expect(after.id).toBe(refreshed.id);
      expect(after.id).not.toBe(first.id);
    });

    it('stores under v1:<namespace>:, the key explainKey gives, with what it hashed and dropped', async () => {
      const c = cache();
      const model = cachedChatModel(openai(), { cache: c, namespace: 'support-bot', tenantId: 't1' });
      const runId = crypto.randomUUID();
      await model.invoke(question, { runId, tags: ['x'] });
      const explained = await explainKey(model, question, { runId, tags: ['x'] });
      expect(explained.key).toMatch(/^v1:support-bot:[0-9a-f]{64}$/);
      expect(explained.tenantId).toBe('t1');
      expect(await c.get(explained.key!, { tenantId: 't1' })).toBeDefined();
      expect(explained.dropped).toEqual(expect.arrayContaining(['options.runId', 'options.tags']));
      expect(JSON.stringify(explained.hashed)).not.toContain(runId);
      expect(explained.hashed).toMatchObject({ mode: 'generate', params: { model: 'gpt-4o-mini' }, messages: [{ type: 'system' }, { type: 'human', content: 'What is AI?' }] });
      await collect(await model.stream(question));
      const streamed = await explainKey(model, question, {}, 'stream');
      expect(streamed.key).not.toBe(explained.key);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await c.get(streamed.key!, { tenantId: 't1' })).toBeDefined();
    });

    it('explains the calls of a model with tools bound after wrapping', async () => {
      const c = cache();
      const model = cachedChatModel(openai(), { cache: c }).bindTools([weather]);
      await model.invoke('Weather in Paris?');
      const explained = await explainKey(model, 'Weather in Paris?');
      expect(await c.get(explained.key!)).toBeDefined();
      expect(explained.hashed).toMatchObject({ params: { tools: [{ function: { name: 'get_weather' } }] } });
      await collect((model as unknown as ChatOpenAI).streamEvents('Weather in Paris?'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await c.get((await explainKey(model, 'Weather in Paris?', {}, 'events')).key!)).toBeDefined();
    });
  });
});

describeEachBackend('cachedChatModel with LangChain fake models', ({ cache }) => {
  it('answers FakeListChatModel from the cache: the fake would have given its next response', async () => {
    const model = cachedChatModel(new FakeListChatModel({ responses: ['first', 'second'] }), { cache: cache() });
    expect((await model.invoke('hi')).content).toBe('first');
    expect((await model.invoke('hi')).content).toBe('first');
    expect((await model.invoke('other')).content).toBe('second');
  });

  it('keeps the cache on a fake model whose bindTools builds a new model in a RunnableBinding, bound before or after wrapping', async () => {
    const after = cachedChatModel(new FakeListChatModel({ responses: ['first', 'second'] }), { cache: cache() }).bindTools([weather]);
    expect((await after.invoke('hi')).content).toBe('first');
    expect((await after.invoke('hi')).content).toBe('first');
    const before = cachedChatModel(new FakeListChatModel({ responses: ['one', 'two'] }).bindTools([weather]), { cache: cache() });
    expect((await before.invoke('hello')).content).toBe('one');
    expect((await before.invoke('hello')).content).toBe('one');
    expect(cacheStats(before)).toMatchObject({ hits: 1, misses: 1 });
    const explained = await explainKey(before, 'hello');
    expect(explained.hashed).toMatchObject({ options: { tools: [{ function: { name: 'get_weather' } }] } });
  });

  it('counts and explains calls through a RunnableBinding that withConfig makes of the wrapper', async () => {
    const model = cachedChatModel(new FakeListChatModel({ responses: ['first', 'second'] }), { cache: cache() });
    const configured = model.withConfig({ tags: ['x'] });
    expect((await configured.invoke('hi')).content).toBe('first');
    expect((await configured.invoke('hi')).content).toBe('first');
    expect(cacheStats(configured)).toMatchObject({ hits: 1, misses: 1 });
    expect((await explainKey(configured, 'hi')).key).toBe((await explainKey(model, 'hi')).key);
  });

  it('stores a FakeListChatModel stream only when it ends with a finish reason', async () => {
    const unfinished = cachedChatModel(new FakeListChatModel({ responses: ['abc', 'xyz'] }), { cache: cache() });
    expect(textOf(await collect(await unfinished.stream('hi')))).toBe('abc');
    expect(textOf(await collect(await unfinished.stream('hi')))).toBe('xyz');
    const finished = cachedChatModel(new FakeListChatModel({ responses: ['abc', 'xyz'], generationInfo: { finish_reason: 'stop' } }), { cache: cache() });
    const tokens = new Tokens();
    expect(textOf(await collect(await finished.stream('hi')))).toBe('abc');
    const again = await collect(await finished.stream('hi', { callbacks: [tokens] }));
    expect(again.map((c) => c.content)).toEqual(['a', 'b', 'c']);
    expect(tokens.tokens).toEqual(['a', 'b', 'c']);
  });

  it('caches FakeStreamingChatModel invokes, but never its streams: their chunks carry no finish reason', async () => {
    const chunks = [new AIMessageChunk({ content: 'Looking ' }), new AIMessageChunk({ content: 'it up', tool_calls: [{ id: 'call_1', name: 'get_weather', args: { city: 'Paris' }, type: 'tool_call' }] })];
    const fake = new FakeStreamingChatModel({ chunks, responses: [new AIMessage('first')], sleep: 0 });
    const model = cachedChatModel(fake, { cache: cache() });
    const first = await model.invoke('hi');
    const live = await collect(await model.stream('hi'));
    fake.responses = [new AIMessage('changed')];
    fake.chunks = [new AIMessageChunk({ content: 'changed' })];
    expect(first.content).toBe('first');
    expect((await model.invoke('hi')).content).toBe('first');
    expect(live.map((c) => c.content)).toEqual(['Looking ', 'it up']);
    expect((await collect(await model.stream('hi'))).map((c) => c.content)).toEqual(['changed']);
  });

  it('streams a model without streaming of its own as one cached invoke, as LangChain does', async () => {
    let calls = 0;
    class Counting extends BaseChatModel {
      _llmType() {
        return 'counting';
      }
      async _generate(): Promise<ChatResult> {
        calls++;
        const text = `answer ${calls}`;
        return { generations: [{ text, message: new AIMessage(text) }] };
      }
    }
    const model = cachedChatModel(new Counting({}), { cache: cache() });
    const first = await collect(await model.stream('hi'));
    const again = await collect(await model.stream('hi'));
    expect(first.map((c) => c.content)).toEqual(['answer 1']);
    expect(again.map((c) => c.content)).toEqual(['answer 1']);
    expect(calls).toBe(1);
  });
});

describe('cachedChatModel options and failures', () => {
  it('refuses bad options at construction, naming the option', () => {
    const model = new FakeListChatModel({ responses: ['x'] });
    expect(() => cachedChatModel(model, { cache: createMemoryCache(), tll: 5 } as never)).toThrow(/tll/);
    expect(() => cachedChatModel(model, { cache: createMemoryCache(), ttl: -1 })).toThrow(/ttl/);
    expect(() => cachedChatModel(model, { cache: createMemoryCache(), namespace: 'a b' })).toThrow(/namespace/);
    expect(() => cachedChatModel({} as never, { cache: createMemoryCache() })).toThrow(/chat model/);
  });

  it('names a second copy of @langchain/core as the cause when the model comes from one', async () => {
    // A copy of the installed core beside the real one, as a monorepo with two versions ends up with; its own dependencies resolve from the root.
    const copy = join(process.cwd(), 'node_modules', '.cache', 'cachekit-second-core', 'node_modules', '@langchain', 'core');
    await cp(join(process.cwd(), 'node_modules', '@langchain', 'core'), copy, { recursive: true, force: true });
    const other = (await import(pathToFileURL(join(copy, 'dist', 'utils', 'testing', 'index.js')).href)) as typeof import('@langchain/core/utils/testing');
    const foreign = new other.FakeListChatModel({ responses: ['x'] });
    expect(foreign).not.toBeInstanceOf(BaseChatModel);
    expect(() => cachedChatModel(foreign, { cache: createMemoryCache() })).toThrow(/another copy of @langchain\/core/);
    expect(() => cachedChatModel({} as never, { cache: createMemoryCache() })).not.toThrow(/another copy/);
  });

  it('fails open: a cache that is down never fails an invoke or a stream, and counts errors', async () => {
    const model = cachedChatModel(openai(), { cache: createFailingCache() });
    const answer = await model.invoke(question);
    const chunks = await collect(await model.stream(question));
    expect(answer.content).toBe(textOf(chunks));
    expect(server.calls('chat/completions')).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(cacheStats(model).errors).toBeGreaterThanOrEqual(2);
  });
});
