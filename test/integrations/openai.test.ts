import OpenAI from 'openai';
import { Stream } from 'openai/core/streaming';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedOpenAI, cacheStats, PARAMS_OUT_OF_KEY } from '../../integrations/openai/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { DragonflyConnectionError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'What is AI?' }], temperature: 0 };
const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer();
});
afterEach(async () => {
  await server.close();
});

const sdk = (url = server.url) => new OpenAI({ baseURL: url, apiKey: 'test', maxRetries: 0 });

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

/** A cache that remembers every write (its options, and the values written), to check what reaches it. */
function recordingCache(cache: Cache): { cache: Cache; writes: unknown[]; values: unknown[] } {
  const writes: unknown[] = [];
  const values: unknown[] = [];
  const proxy = new Proxy(cache, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (prop === 'set') {
        return (key: string, v: unknown, options?: unknown) => (writes.push(options), values.push(v), target.set(key, v, options as never));
      }
      if (prop === 'setMany') {
        return (entries: Iterable<[string, unknown]>, options?: unknown) => {
          writes.push(options);
          for (const [, v] of entries) values.push(v);
          return target.setMany(entries as never, options as never);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { cache: proxy, writes, values };
}

describeEachBackend('cachedOpenAI', ({ cache }) => {
  describe('non-streamed answers', () => {
    it('answers a repeated chat completion from the cache, with the first answer and the tokens it saved', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: 60 });
      const first = await cached.chat.completions.create(chat);
      const again = await cached.chat.completions.create(chat);
      expect(again).toEqual(first);
      expect(server.calls('chat/completions')).toBe(1);
      expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 1, bypasses: 0, errors: 0, tokensSaved: first.usage!.total_tokens });
      expect(cacheStats(cached).latencySavedMs).toBeGreaterThan(0);
    });

    it('answers a repeated legacy completion from the cache', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const request = { model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi', max_tokens: 5 };
      const first = await cached.completions.create(request);
      expect(await cached.completions.create(request)).toEqual(first);
      expect(server.calls('completions')).toBe(1);
    });

    it('answers a repeated Responses API call from the cache, output_text included', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const request = { model: 'gpt-4.1-mini', input: 'What is AI?', instructions: 'Be brief.' };
      const first = await cached.responses.create(request);
      const again = await cached.responses.create(request);
      expect(again).toEqual(first);
      expect(again.output_text).toBe(first.output_text);
      expect(again.output_text).toContain('What is AI?');
      expect(server.calls('responses')).toBe(1);
    });

    it('answers a repeated embeddings call from the cache', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const request = { model: 'text-embedding-3-small', input: ['alpha', 'beta'] };
      const first = await cached.embeddings.create(request);
      const again = await cached.embeddings.create(request);
      expect(again.data).toEqual(first.data);
      expect(again.usage).toEqual({ prompt_tokens: 0, total_tokens: 0 });
      expect(server.calls('embeddings')).toBe(1);
      expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 1, tokensSaved: first.usage.prompt_tokens });
    });

    it('sends N concurrent identical requests upstream once', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const answers = await Promise.all(Array.from({ length: 8 }, () => cached.chat.completions.create(chat)));
      expect(server.calls('chat/completions')).toBe(1);
      expect(new Set(answers.map((a) => a.id)).size).toBe(1);
    });

    it('keeps the SDK promise: withResponse() gives upstream headers on a miss and a marked response on a hit', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const miss = await cached.chat.completions.create(chat).withResponse();
      expect(miss.request_id).toMatch(/^req_/);
      const hit = await cached.chat.completions.create(chat).withResponse();
      expect(hit.data).toEqual(miss.data);
      expect(hit.response.headers.get('x-cachekit-cache')).toBe('hit');
    });

    it('gives every hit its own copy: changing an answer changes neither the entry nor the next hit', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const first = await cached.chat.completions.create(chat);
      const original = structuredClone(first);
      first.choices[0]!.message.content = 'changed by the caller';
      const hit = await cached.chat.completions.create(chat);
      expect(hit).toEqual(original);
      hit.choices.length = 0;
      hit.usage!.total_tokens = -1;
      expect(await cached.chat.completions.create(chat)).toEqual(original);
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('does not cache an upstream error', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      server.failNext('chat/completions', 400);
      await expect(cached.chat.completions.create(chat)).rejects.toBeInstanceOf(OpenAI.BadRequestError);
      const answer = await cached.chat.completions.create(chat);
      expect(answer.choices[0]!.message.content).toContain('What is AI?');
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('does not store what shouldCache refuses, and tells it the endpoint', async () => {
      const seen: unknown[] = [];
      const cached = cachedOpenAI(sdk(), { cache: cache(), shouldCache: (_r, call) => (seen.push(call), false) });
      await cached.chat.completions.create(chat);
      await cached.chat.completions.create(chat);
      expect(server.calls('chat/completions')).toBe(2);
      expect(seen[0]).toEqual({ endpoint: 'chat.completions', stream: false });
    });
  });

  describe('streamed answers', () => {
    it('hands each chunk to the caller as it arrives, before upstream has sent the rest', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const held = server.holdNextStream();
      const stream = await cached.chat.completions.create({ ...chat, stream: true });
      const iterator = stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.value).toMatchObject({ object: 'chat.completion.chunk', choices: [{ delta: { role: 'assistant' } }] });
      expect(held.eventsSent()).toBe(1);
      held.release();
      let rest = 0;
      while (!(await iterator.next()).done) rest++;
      expect(rest).toBeGreaterThan(3);
    });

    it('replays a cached stream chunk by chunk, in order, reasoning and tool-call deltas intact', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const request = { ...chat, tools, stream: true as const, stream_options: { include_usage: true } };
      const recorded = await collect(await cached.chat.completions.create(request));
      const replayed = await cached.chat.completions.create(request);
      expect(replayed).toBeInstanceOf(Stream);
      const chunks = await collect(replayed);
      expect(chunks).toEqual(recorded);
      expect(chunks.length).toBeGreaterThan(5);
      expect(chunks.some((c) => (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content)).toBe(true);
      expect(chunks.filter((c) => c.choices[0]?.delta.tool_calls).map((c) => c.choices[0]!.delta.tool_calls![0]!.function!.arguments)).toEqual(['{"q":', '"ai"}']);
      expect(server.calls('chat/completions')).toBe(1);
      expect(cacheStats(cached).tokensSaved).toBe(recorded.at(-1)!.usage!.total_tokens);
    });

    it('replays a cached stream through toReadableStream() as the SDK does', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const request = { ...chat, stream: true as const };
      const recorded = await collect(await cached.chat.completions.create(request));
      const readable = (await cached.chat.completions.create(request)).toReadableStream();
      const text = await new Response(readable as ReadableStream).text();
      expect(text.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual(recorded);
      // and back into an SDK stream, as a browser client would
      const again = Stream.fromReadableStream((await cached.chat.completions.create(request)).toReadableStream(), new AbortController());
      expect(await collect(again)).toEqual(recorded);
    });

    it('records and replays streamed legacy completions and Responses API events', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const completion = { model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi', stream: true as const };
      const responses = { model: 'gpt-4.1-mini', input: 'What is AI?', stream: true as const };
      const c1 = await collect(await cached.completions.create(completion));
      const r1 = await collect(await cached.responses.create(responses));
      expect(await collect(await cached.completions.create(completion))).toEqual(c1);
      const r2 = await collect(await cached.responses.create(responses));
      expect(r2).toEqual(r1);
      expect(r2.filter((e) => e.type === 'response.output_text.delta').length).toBeGreaterThan(2);
      expect(server.calls('completions')).toBe(1);
      expect(server.calls('responses')).toBe(1);
    });

    it('does not store a stream whose connection drops mid-way', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      server.cutNextStream(3, 'destroy');
      const stream = await cached.chat.completions.create({ ...chat, stream: true });
      await expect(collect(stream)).rejects.toThrow();
      await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('does not store a stream that ends cleanly before the answer finished', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      server.cutNextStream(3, 'end');
      const partial = await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(partial).toHaveLength(3);
      await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('does not store a stream the caller leaves early', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      for await (const _chunk of await cached.chat.completions.create({ ...chat, stream: true })) break;
      await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('does not store a stream whose abort signal fired', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const abort = new AbortController();
      const held = server.holdNextStream();
      const stream = await cached.chat.completions.create({ ...chat, stream: true }, { signal: abort.signal });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();
      abort.abort();
      held.release();
      while (!(await iterator.next()).done);
      await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('keeps streamed and non-streamed answers in separate entries', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const json = await cached.chat.completions.create(chat);
      const chunks = await collect(await cached.chat.completions.create({ ...chat, stream: true }));
      expect(server.calls('chat/completions')).toBe(2);
      expect(await cached.chat.completions.create(chat)).toEqual(json);
      expect(await collect(await cached.chat.completions.create({ ...chat, stream: true }))).toEqual(chunks);
      expect(server.calls('chat/completions')).toBe(2);
    });
  });

  describe('request keys', () => {
    it('ignores the parameters and request options that do not change the answer', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const first = await cached.chat.completions.create(chat);
      const variants = [
        { ...chat, user: 'u-42' },
        { ...chat, metadata: { trace: 'x' }, store: true },
        { ...chat, service_tier: 'flex' as const, safety_identifier: 'h', prompt_cache_key: 'k' },
        { messages: chat.messages, temperature: 0, model: chat.model },
      ];
      for (const variant of variants) expect((await cached.chat.completions.create(variant)).id).toBe(first.id);
      expect((await cached.chat.completions.create(chat, { timeout: 5000, maxRetries: 3, headers: { 'x-trace': '1' } })).id).toBe(first.id);
      expect(server.calls('chat/completions')).toBe(1);
      expect([...PARAMS_OUT_OF_KEY]).toEqual(expect.arrayContaining(['stream', 'user', 'metadata', 'store']));
    });

    it('keys stream_options, so a replay has exactly the shape upstream sends for the request', async () => {
      // include_usage adds a last chunk with `choices: []`: replaying one stream for the other
      // either drops the usage the caller asked for or hands `choices[0].delta` code an empty list.
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const withUsage = { ...chat, stream: true as const, stream_options: { include_usage: true } };
      const plain = { ...chat, stream: true as const };
      const first = await collect(await cached.chat.completions.create(withUsage));
      const firstPlain = await collect(await cached.chat.completions.create(plain));
      expect(server.calls('chat/completions')).toBe(2);
      const replayed = await collect(await cached.chat.completions.create(withUsage));
      const replayedPlain = await collect(await cached.chat.completions.create(plain));
      expect(server.calls('chat/completions')).toBe(2);
      expect(replayed).toEqual(first);
      expect(replayedPlain).toEqual(firstPlain);
      expect(replayed.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
      expect(replayedPlain.every((chunk) => chunk.choices.length === 1 && chunk.choices[0]!.delta !== undefined)).toBe(true);
      expect([...PARAMS_OUT_OF_KEY]).not.toContain('stream_options');
    });

    it('sends every change of a parameter that shapes the answer upstream, unknown parameters included', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const variants: Record<string, unknown>[] = [
        chat,
        { ...chat, model: 'gpt-4o' },
        { ...chat, temperature: 0.7 },
        { ...chat, top_p: 0.5 },
        { ...chat, seed: 7 },
        { ...chat, max_completion_tokens: 50 },
        { ...chat, stop: ['\n'] },
        { ...chat, tools },
        { ...chat, response_format: { type: 'json_object' } },
        { ...chat, reasoning_effort: 'high' },
        { ...chat, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] },
        { ...chat, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAB' } }] }] },
        { ...chat, a_parameter_from_next_year: true },
      ];
      const ids = new Set<string>();
      for (const variant of variants) ids.add((await cached.chat.completions.create(variant as never)).id);
      expect(ids.size).toBe(variants.length);
      expect(server.calls('chat/completions')).toBe(variants.length);
    });

    it('never shares entries between clients of different providers', async () => {
      const other = await startOpenAIWireServer();
      try {
        const shared = cache();
        const a = cachedOpenAI(sdk(), { cache: shared });
        const b = cachedOpenAI(sdk(other.url), { cache: shared });
        await a.chat.completions.create(chat);
        await b.chat.completions.create(chat);
        await a.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
        await b.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
        expect([server.calls('chat/completions'), other.calls('chat/completions')]).toEqual([1, 1]);
        expect([server.calls('embeddings'), other.calls('embeddings')]).toEqual([1, 1]);
      } finally {
        await other.close();
      }
    });

    it('shares entries between two wrappers of the same provider and namespace, not across namespaces', async () => {
      const shared = cache();
      await cachedOpenAI(sdk(), { cache: shared }).chat.completions.create(chat);
      await cachedOpenAI(sdk(), { cache: shared }).chat.completions.create(chat);
      await cachedOpenAI(sdk(), { cache: shared, namespace: 'team-b' }).chat.completions.create(chat);
      expect(server.calls('chat/completions')).toBe(2);
    });
  });

  describe('embeddings', () => {
    const model = 'text-embedding-3-small';
    const inputs = Array.from({ length: 100 }, (_, i) => `document number ${i}`);

    it('sends only the uncached inputs upstream, in one request, and answers in the caller order with correct indexes', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      const missingAt = new Set([3, 17, 18, 40, 41, 42, 66, 80, 98, 99]);
      await cached.embeddings.create({ model, input: inputs.filter((_, i) => !missingAt.has(i)) });
      const answer = await cached.embeddings.create({ model, input: inputs });
      expect(server.calls('embeddings')).toBe(2);
      const sent = server.bodies('embeddings')[1]!;
      expect(sent.input).toEqual([...missingAt].map((i) => inputs[i]));
      const upstream = await sdk().embeddings.create({ model, input: inputs });
      expect(answer.data).toEqual(upstream.data);
      expect(answer.data.map((d) => d.index)).toEqual(inputs.map((_, i) => i));
      // usage counts the ten inputs sent, not the ninety answered from the cache (litellm#39057)
      expect(answer.usage.prompt_tokens).toBe([...missingAt].reduce((sum, i) => sum + inputs[i]!.split(' ').length, 0));
    });

    for (const encoding_format of [undefined, 'base64', 'float'] as const) {
      it(`answers a hit exactly as upstream does with encoding_format ${String(encoding_format)}`, async () => {
        const cached = cachedOpenAI(sdk(), { cache: cache() });
        const request = { model, input: ['one', 'two', 'three'], dimensions: 16, ...(encoding_format ? { encoding_format } : {}) };
        const miss = await cached.embeddings.create(request);
        const hit = await cached.embeddings.create(request);
        const upstream = await sdk().embeddings.create(request);
        expect(hit.data).toEqual(upstream.data);
        expect(miss.data).toEqual(upstream.data);
        expect(server.calls('embeddings')).toBe(2);
      });
    }

    it('answers base64 and default requests from a float answer, and a float request only from a float answer', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      await cached.embeddings.create({ model, input: ['a', 'b'], encoding_format: 'float' });
      expect((await cached.embeddings.create({ model, input: ['a', 'b'], encoding_format: 'base64' })).data).toEqual(
        (await sdk().embeddings.create({ model, input: ['a', 'b'], encoding_format: 'base64' })).data,
      );
      expect((await cached.embeddings.create({ model, input: ['a', 'b'] })).data).toEqual((await sdk().embeddings.create({ model, input: ['a', 'b'] })).data);
      const base = server.calls('embeddings');
      await cached.embeddings.create({ model, input: ['c'] });
      const float = await cached.embeddings.create({ model, input: ['c'], encoding_format: 'float' });
      expect(server.calls('embeddings')).toBe(base + 2);
      expect(float.data).toEqual((await sdk().embeddings.create({ model, input: ['c'], encoding_format: 'float' })).data);
    });

    it('keys each item by model, dimensions and input, and treats a token array as one input', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      await cached.embeddings.create({ model, input: 'same' });
      await cached.embeddings.create({ model, input: 'same', dimensions: 4 });
      await cached.embeddings.create({ model: 'text-embedding-3-large', input: 'same' });
      await cached.embeddings.create({ model, input: [1, 2, 3] });
      const tokens = await cached.embeddings.create({ model, input: [1, 2, 3] });
      expect(server.calls('embeddings')).toBe(4);
      expect(tokens.data).toHaveLength(1);
    });

    it('stores each vector once as binary: float32 for base64 answers, float64 only when float decimals need it', async () => {
      const { cache: recording, values } = recordingCache(cache());
      const cached = cachedOpenAI(sdk(), { cache: recording });
      await cached.embeddings.create({ model, input: 'compact' });
      await cached.embeddings.create({ model, input: 'decimals', encoding_format: 'float' });
      expect((values as { value: { vector: object } }[]).map((v) => v.value.vector.constructor)).toEqual([Float32Array, Float64Array]);
      expect(await cached.embeddings.create({ model, input: 'compact' })).toMatchObject({ usage: { prompt_tokens: 0 } });
    });
  });

  describe('tenants and per-call controls', () => {
    it('never serves one tenant the answers of another', async () => {
      const shared = cache();
      const acme = cachedOpenAI(sdk(), { cache: shared, tenantId: 'acme' });
      const globex = cachedOpenAI(sdk(), { cache: shared, tenantId: 'globex' });
      await acme.chat.completions.create(chat);
      await globex.chat.completions.create(chat);
      await withCacheControl({ tenantId: 'initech' }, () => acme.chat.completions.create(chat));
      await acme.embeddings.create({ model: 'm', input: 'x' });
      await globex.embeddings.create({ model: 'm', input: 'x' });
      expect(server.calls('chat/completions')).toBe(3);
      expect(server.calls('embeddings')).toBe(2);
      await acme.chat.completions.create(chat);
      expect(server.calls('chat/completions')).toBe(3);
    });

    it('reports a bad per-call tenant to the caller instead of counting it as a cache failure', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      expect(() => withCacheControl({ tenantId: '' }, () => cached.chat.completions.create(chat))).toThrow(expect.objectContaining({ errorType: 'validation' }));
      expect(server.calls('chat/completions')).toBe(0);
      expect(cacheStats(cached).errors).toBe(0);
    });

    it('bypass skips read and write, refresh replaces the entry, noStore reads but does not write', async () => {
      const cached = cachedOpenAI(sdk(), { cache: cache() });
      await withCacheControl({ bypass: true }, () => cached.chat.completions.create(chat));
      const stored = await cached.chat.completions.create(chat);
      expect(server.calls('chat/completions')).toBe(2);
      const refreshed = await withCacheControl({ refresh: true }, () => cached.chat.completions.create(chat));
      expect(refreshed.id).not.toBe(stored.id);
      expect((await cached.chat.completions.create(chat)).id).toBe(refreshed.id);
      const other = { ...chat, temperature: 1 };
      await withCacheControl({ noStore: true }, () => cached.chat.completions.create(other));
      expect((await withCacheControl({ noStore: true }, () => cached.chat.completions.create(chat))).id).toBe(refreshed.id);
      await cached.chat.completions.create(other);
      expect(server.calls('chat/completions')).toBe(5);
      expect(cacheStats(cached)).toMatchObject({ bypasses: 2, hits: 2 });
    });

    it('applies the per-call TTL and the controls to streams and embeddings too', async () => {
      const { cache: recording, writes } = recordingCache(cache());
      const cached = cachedOpenAI(sdk(), { cache: recording, ttl: 60 });
      await withCacheControl({ ttl: 5 }, async () => {
        await collect(await cached.chat.completions.create({ ...chat, stream: true }));
        await cached.embeddings.create({ model: 'm', input: 'x' });
      });
      await cached.chat.completions.create(chat);
      expect(writes).toEqual([{ ttl: 5 }, { ttl: 5 }, { ttl: 60 }]);
      await withCacheControl({ bypass: true }, async () => {
        await collect(await cached.chat.completions.create({ ...chat, stream: true }));
        await cached.embeddings.create({ model: 'm', input: 'x' });
      });
      expect(writes).toHaveLength(3);
      expect(server.calls('embeddings')).toBe(2);
    });
  });
});

describe('cachedOpenAI with a failing cache', () => {
  it('answers every endpoint from upstream and counts the cache errors', async () => {
    const cached = cachedOpenAI(sdk(), { cache: createFailingCache() });
    expect((await cached.chat.completions.create(chat)).choices[0]!.message.content).toContain('What is AI?');
    expect(await collect(await cached.chat.completions.create({ ...chat, stream: true }))).not.toHaveLength(0);
    expect((await cached.embeddings.create({ model: 'm', input: ['a', 'b'] })).data).toHaveLength(2);
    expect((await cached.responses.create({ model: 'm', input: 'hi' })).status).toBe('completed');
    expect(cacheStats(cached).errors).toBeGreaterThanOrEqual(4);
  });
});

describe('cachedOpenAI with a cache that throws instead of rejecting', () => {
  it('counts the error, answers from upstream, and still stores what it could not read', async () => {
    const memory = createMemoryCache();
    let throwOnGet = true;
    const cache = new Proxy(memory, {
      get(target, prop) {
        if (prop === 'get' && throwOnGet) {
          return () => {
            throw new DragonflyConnectionError('Dragonfly at 127.0.0.1:1 is unreachable');
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const cached = cachedOpenAI(sdk(), { cache });
    const first = await cached.chat.completions.create(chat);
    expect(cacheStats(cached)).toMatchObject({ errors: 1, misses: 1, hits: 0 });
    throwOnGet = false;
    expect((await cached.chat.completions.create(chat)).id).toBe(first.id);
    expect(server.calls('chat/completions')).toBe(1);
  });
});

describe('cachedOpenAI wrapper', () => {
  it('keeps the client type and passes everything else through untouched', () => {
    const client = sdk();
    const cached = cachedOpenAI(client, { cache: createMemoryCache() });
    expect(cached).toBeInstanceOf(OpenAI);
    expect(cached.baseURL).toBe(client.baseURL);
    expect(cached.models).toBe(client.models);
    expect(cached.chat.completions.messages).toBe(client.chat.completions.messages);
    expect(typeof cached.chat.completions.parse).toBe('function');
    expect(cached.chat.completions.create).toBe(cached.chat.completions.create);
  });

  it('rejects bad options when it wraps', () => {
    expect(() => cachedOpenAI(sdk(), { cache: {} as never })).toThrow(/cache/);
    expect(() => cachedOpenAI(sdk(), { cache: createMemoryCache(), ttl: 0 })).toThrow(/ttl/);
    expect(() => cachedOpenAI({} as OpenAI, { cache: createMemoryCache() })).toThrow(/openai/);
    expect(() => cachedOpenAI(sdk(), { cache: createMemoryCache(), namespace: 'a*' })).toThrow(/namespace/);
  });
});
