import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { cachedOpenAI, cacheInfo, cacheStats } from '../../integrations/openai/index.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'What is AI?' }], temperature: 0 };
const streamed = { ...chat, stream: true as const };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const TTL = 0.3;
const PAST_TTL_MS = 450;

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer({ chunkDelayMs: 5 });
});
afterEach(async () => {
  await server.close();
});

const sdk = () => new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 });

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

function text(chunks: ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
}

describeEachBackend('openai grace', ({ cache }) => {
  it.each([429, 500, 503])('answers with the last good answer while the provider answers %i, marked stale', async (status) => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60 });
    const first = await cached.chat.completions.create(chat);
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', status);
    const { data, response } = await cached.chat.completions.create(chat).withResponse();
    expect(data).toEqual(first);
    expect(response.headers.get('x-cachekit-cache')).toBe('stale');
    expect(cacheInfo(data)).toMatchObject({ status: 'stale', storedAt: expect.any(Number) });
    expect(cacheStats(cached)).toMatchObject({ staleHits: 1, misses: 1 });
    outage.recover();
  });

  it('calls a provider that keeps failing once per backoff, not once per request', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60, graceBackoff: 300 });
    await cached.chat.completions.create(chat);
    await sleep(PAST_TTL_MS);
    const before = server.calls('chat/completions');
    const outage = server.failFor('chat/completions', 429);
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await cached.chat.completions.create(chat));
    expect(new Set(answers.map((a) => a.id)).size).toBe(1);
    expect(server.calls('chat/completions') - before).toBe(1);
    await sleep(350);
    await cached.chat.completions.create(chat);
    expect(server.calls('chat/completions') - before).toBe(2);
    outage.recover();
    await sleep(650);
    const fresh = await cached.chat.completions.create(chat);
    expect(fresh.id).not.toBe(answers[0]!.id);
    expect(cacheInfo(fresh)?.status).toBe('miss');
  });

  it('passes the caller\'s own errors (400) through, stale entry or not', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60 });
    await cached.chat.completions.create(chat);
    await sleep(PAST_TTL_MS);
    server.failNext('chat/completions', 400);
    await expect(cached.chat.completions.create(chat)).rejects.toMatchObject({ status: 400 });
  });

  it('with softTimeout answers stale from a hung provider, and stores the answer once it comes', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60, softTimeout: 100 });
    const first = await cached.chat.completions.create(chat);
    await sleep(PAST_TTL_MS);
    const hung = server.hang('chat/completions');
    const started = performance.now();
    const stale = await cached.chat.completions.create(chat);
    const waited = performance.now() - started;
    expect(stale.id).toBe(first.id);
    expect(waited).toBeLessThan(400);
    hung.release();
    await sleep(200);
    const refreshed = await cached.chat.completions.create(chat);
    expect(refreshed.id).not.toBe(first.id);
    expect(cacheInfo(refreshed)?.status).toBe('hit');
  });

  it('with softTimeout answers every later caller stale too while the provider hangs, chat and streams alike', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60, softTimeout: 100 });
    const first = await cached.chat.completions.create(chat);
    const recorded = await collect(await cached.chat.completions.create(streamed));
    await sleep(PAST_TTL_MS);
    const hung = server.hang('chat/completions');
    try {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        expect((await cached.chat.completions.create(chat)).id).toBe(first.id);
        expect(await collect(await cached.chat.completions.create(streamed))).toEqual(recorded);
        expect(performance.now() - started).toBeLessThan(600);
      }
    } finally {
      hung.release();
    }
  });

  it('without a stale answer, softTimeout changes nothing: a hung provider is waited for', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60, softTimeout: 20 });
    const hung = server.hang('chat/completions');
    let settled = false;
    const call = cached.chat.completions.create(chat).then((answer) => ((settled = true), answer));
    await sleep(150);
    expect(settled).toBe(false);
    hung.release();
    expect(cacheInfo(await call)?.status).toBe('miss');
  });

  it('answers a streamed call with the stale recording when the provider refuses the stream', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60 });
    const recorded = await collect(await cached.chat.completions.create(streamed));
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', 429);
    const { data, response } = await cached.chat.completions.create(streamed).withResponse();
    expect(response.headers.get('x-cachekit-cache')).toBe('stale');
    expect(cacheInfo(data)?.status).toBe('stale');
    expect(await collect(data)).toEqual(recorded);
    outage.recover();
    await sleep(1100);
    const fresh = await collect(await cached.chat.completions.create(streamed));
    expect(fresh[0]?.id).not.toBe(recorded[0]?.id);
    expect(cacheStats(cached)).toMatchObject({ staleHits: 1, misses: 2 });
  });

  it('never answers one tenant with another tenant\'s stale answer', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), ttl: TTL, grace: 60 });
    await withCacheControl({ tenantId: 'a' }, () => cached.chat.completions.create(chat));
    await sleep(PAST_TTL_MS);
    const outage = server.failFor('chat/completions', 500);
    await expect(withCacheControl({ tenantId: 'b' }, () => cached.chat.completions.create(chat))).rejects.toMatchObject({ status: 500 });
    await expect(cached.chat.completions.create(chat)).rejects.toMatchObject({ status: 500 });
    await expect(withCacheControl({ tenantId: 'a' }, () => cached.chat.completions.create(chat))).resolves.toBeDefined();
    outage.recover();
  });
});

describeEachBackend('openai served', ({ cache }) => {
  it('marks answers and streams for cacheInfo, and the header says hit', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    const miss = await cached.chat.completions.create(chat);
    expect(cacheInfo(miss)).toEqual({ status: 'miss', key: expect.stringMatching(/^v1:openai:/) });
    await sleep(20);
    const { data, response } = await cached.chat.completions.create(chat).withResponse();
    expect(cacheInfo(data)).toMatchObject({ status: 'hit', key: cacheInfo(miss)?.key, storedAt: expect.any(Number) });
    expect(response.headers.get('x-cachekit-cache')).toBe('hit');
    const live = await cached.chat.completions.create(streamed);
    expect(cacheInfo(live)?.status).toBe('miss');
    await collect(live);
    await sleep(20);
    const replay = await cached.chat.completions.create(streamed);
    expect(cacheInfo(replay)?.status).toBe('hit');
    const bypassed = await withCacheControl({ bypass: true }, () => cached.chat.completions.create(chat));
    expect(cacheInfo(bypassed)?.status).toBe('bypass');
  });

  it('counts what hits saved by the answer\'s model and a price table', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache(), prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } } });
    const first = await cached.chat.completions.create(chat);
    await sleep(20);
    await cached.chat.completions.create(chat);
    const { prompt_tokens, completion_tokens } = first.usage!;
    expect(cacheStats(cached).costSaved).toBeCloseTo((prompt_tokens * 0.15 + completion_tokens * 0.6) / 1e6, 12);
  });

  it('tags answers from the answer and the request, and invalidates exactly them', async () => {
    const c = cache();
    const cached = cachedOpenAI(sdk(), { cache: c, tags: (_answer, params) => [`model:${(params as { model: string }).model}`] });
    await cached.chat.completions.create(chat);
    await cached.chat.completions.create({ ...chat, model: 'other' });
    await sleep(20);
    await c.invalidateTags(['model:other']);
    await cached.chat.completions.create(chat);
    await cached.chat.completions.create({ ...chat, model: 'other' });
    expect(server.calls('chat/completions')).toBe(3);
  });
});

describeEachBackend('openai shared streams', ({ cache }) => {
  it('makes one upstream call for concurrent identical streamed misses, each caller a faithful stream of its own chunk objects', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    const callers = 5;
    const started = performance.now();
    const firstChunkMs: number[] = [];
    const streams = await Promise.all(Array.from({ length: callers }, () => cached.chat.completions.create(streamed)));
    const results = await Promise.all(
      streams.map(async (stream, i) => {
        const out: ChatCompletionChunk[] = [];
        for await (const chunk of stream) {
          if (out.length === 0) firstChunkMs[i] = performance.now() - started;
          out.push(chunk);
          // the first caller mutates its own chunk objects: nobody else may see it
          if (i === 0) chunk.id = 'mutated';
        }
        return out;
      }),
    );
    expect(server.calls('chat/completions')).toBe(1);
    for (const chunks of results.slice(1)) {
      expect(chunks.length).toBe(results[0]!.length);
      expect(chunks.every((c) => c.id !== 'mutated')).toBe(true);
      expect(text(chunks)).toBe(text(results[0]!));
    }
    expect(new Set(results.flat()).size).toBe(results.flat().length);
    console.log(`[stream sharing] ${callers} concurrent callers, upstream calls: ${server.calls('chat/completions')}; first chunk after (ms): ${firstChunkMs.map((ms) => ms.toFixed(1)).join(', ')}`);
    await sleep(30);
    const replay = await collect(await cached.chat.completions.create(streamed));
    expect(replay.every((c) => c.id !== 'mutated')).toBe(true);
    expect(server.calls('chat/completions')).toBe(1);
    expect(cacheStats(cached)).toMatchObject({ misses: callers, hits: 1 });
  });

  it('a caller who joins mid-stream gets the chunks seen so far at once, then the live ones', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    const held = server.holdNextStream();
    const first = await cached.chat.completions.create(streamed);
    const iterator = first[Symbol.asyncIterator]();
    const head = await iterator.next();
    expect(head.done).toBe(false);
    const joinedAt = performance.now();
    const joiner = await cached.chat.completions.create(streamed);
    const joinerIterator = joiner[Symbol.asyncIterator]();
    const joinerHead = await joinerIterator.next();
    const joinerFirstChunkMs = performance.now() - joinedAt;
    expect(joinerHead.value).toEqual(head.value);
    expect(joinerHead.value).not.toBe(head.value);
    held.release();
    const rest = await collect({ [Symbol.asyncIterator]: () => iterator });
    const joinerRest = await collect({ [Symbol.asyncIterator]: () => joinerIterator });
    expect(joinerRest).toEqual(rest);
    expect(server.calls('chat/completions')).toBe(1);
    console.log(`[stream sharing] a caller joining mid-stream got its first chunk after ${joinerFirstChunkMs.toFixed(2)} ms (the ones seen so far, at once)`);
    expect(joinerFirstChunkMs).toBeLessThan(50);
  });

  it('a caller who leaves (break, controller.abort(), its signal) ends only its own stream; the answer is stored even if its starter left', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    const held = server.holdNextStream();
    const starter = await cached.chat.completions.create(streamed);
    const signal = new AbortController();
    const [broke, aborted, signalled, reader] = await Promise.all([
      cached.chat.completions.create(streamed),
      cached.chat.completions.create(streamed),
      cached.chat.completions.create(streamed, { signal: signal.signal }),
      cached.chat.completions.create(streamed),
    ]);
    for await (const _chunk of starter) break;
    for await (const _chunk of broke) break;
    aborted.controller.abort();
    expect(await collect(aborted)).toEqual([]);
    signal.abort();
    expect(await collect(signalled)).toEqual([]);
    held.release();
    const chunks = await collect(reader);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    await sleep(30);
    const replay = await collect(await cached.chat.completions.create(streamed));
    expect(replay).toEqual(chunks);
    expect(server.calls('chat/completions')).toBe(1);
  });

  it('cancels upstream when every caller left, and stores nothing', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    const held = server.holdNextStream();
    const [a, b] = await Promise.all([cached.chat.completions.create(streamed), cached.chat.completions.create(streamed)]);
    for await (const _chunk of a) break;
    b.controller.abort();
    held.release();
    await sleep(50);
    expect(held.eventsSent()).toBeLessThan(5);
    await collect(await cached.chat.completions.create(streamed));
    expect(server.calls('chat/completions')).toBe(2);
  });

  it('an upstream failure mid-stream reaches every caller, and nothing is stored', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    server.cutNextStream(3, 'destroy');
    const streams = await Promise.all([cached.chat.completions.create(streamed), cached.chat.completions.create(streamed)]);
    const outcomes = await Promise.allSettled(streams.map((s) => collect(s)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(server.calls('chat/completions')).toBe(1);
    await collect(await cached.chat.completions.create(streamed));
    expect(server.calls('chat/completions')).toBe(2);
  });

  it('a stream cut without an error (no finish) ends every caller\'s stream and is not stored', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    server.cutNextStream(3, 'end');
    const streams = await Promise.all([cached.chat.completions.create(streamed), cached.chat.completions.create(streamed)]);
    const [a, b] = await Promise.all(streams.map((s) => collect(s)));
    expect(a).toHaveLength(3);
    expect(b).toEqual(a);
    await collect(await cached.chat.completions.create(streamed));
    expect(server.calls('chat/completions')).toBe(2);
  });

  it('an upstream that refuses the stream (429) rejects every caller who joined it', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    server.failNext('chat/completions', 429);
    const outcomes = await Promise.allSettled([cached.chat.completions.create(streamed), cached.chat.completions.create(streamed)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(server.calls('chat/completions')).toBe(1);
  });

  it('never shares a stream between tenants', async () => {
    const cached = cachedOpenAI(sdk(), { cache: cache() });
    await Promise.all([
      withCacheControl({ tenantId: 'a' }, async () => collect(await cached.chat.completions.create(streamed))),
      withCacheControl({ tenantId: 'b' }, async () => collect(await cached.chat.completions.create(streamed))),
    ]);
    expect(server.calls('chat/completions')).toBe(2);
  });
});
