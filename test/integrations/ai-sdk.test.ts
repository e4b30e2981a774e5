import { describe, expect, it } from 'vitest';
import { cacheMiddleware, cacheStats, explainKey, withCacheControl } from '../../integrations/ai-sdk/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { majors, readAll, settled, sleep, stop, usage, type Major } from './ai-sdk/majors.js';

// The middleware on each major's own mock models (`MockLanguageModelV4` from
// `ai/test`, `MockLanguageModelV3` from `ai6/test`), through
// `wrapLanguageModel`: the wrapped model's `doGenerate`/`doStream` (what
// generateText and streamText call), and generateText/streamText themselves.

const prompt = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'What is AI?' }] }];
const timestamp = new Date('2026-01-02T03:04:05.678Z');
const bytes = () => new Uint8Array([137, 80, 78, 71, 0, 255]);
const fileUrl = 'https://files.example/answer.png';

/** A doGenerate result with every kind of content; `url` adds a file given by URL (V4), which generateText would download. */
function generated(major: Major, finishReason: unknown = stop, url = true): never {
  return {
    content: [
      { type: 'reasoning', text: 'Thinking about it.' },
      { type: 'text', text: 'AI is the study of thinking machines.' },
      { type: 'tool-call', toolCallId: 'call-1', toolName: 'lookup', input: '{"q":"ai"}' },
      { type: 'file', mediaType: 'image/png', data: major.bytes(bytes()) },
      ...(major.url && url ? [{ type: 'file', mediaType: 'image/png', data: major.url(new URL(fileUrl)) }] : []),
      { type: 'source', sourceType: 'url', id: 'src-1', url: 'https://example.com/ai', title: 'AI' },
    ],
    finishReason,
    usage,
    providerMetadata: { mock: { requestId: 'abc' } },
    request: { body: { asked: 'What is AI?' } },
    response: { id: 'resp-1', timestamp, modelId: 'mock-model-id', headers: { 'x-request-id': 'req-1' } },
    warnings: [],
  } as never;
}

function streamed(major: Major, finishReason: unknown = stop, url = true): unknown[] {
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'response-metadata', id: 'resp-1', timestamp, modelId: 'mock-model-id' },
    { type: 'reasoning-start', id: 'r0' },
    { type: 'reasoning-delta', id: 'r0', delta: 'Thinking about it.' },
    { type: 'reasoning-end', id: 'r0' },
    { type: 'text-start', id: 't0' },
    { type: 'text-delta', id: 't0', delta: 'AI is ' },
    { type: 'text-delta', id: 't0', delta: 'thinking machines.' },
    { type: 'text-end', id: 't0' },
    { type: 'tool-input-start', id: 'call-1', toolName: 'lookup' },
    { type: 'tool-input-delta', id: 'call-1', delta: '{"q":"ai"}' },
    { type: 'tool-input-end', id: 'call-1' },
    { type: 'tool-call', toolCallId: 'call-1', toolName: 'lookup', input: '{"q":"ai"}' },
    { type: 'file', mediaType: 'image/png', data: major.bytes(bytes()) },
    ...(major.url && url ? [{ type: 'file', mediaType: 'image/png', data: major.url(new URL(fileUrl)) }] : []),
    { type: 'source', sourceType: 'url', id: 'src-1', url: 'https://example.com/ai', title: 'AI' },
    { type: 'finish', finishReason, usage, providerMetadata: { mock: { requestId: 'abc' } } },
  ];
}

/**
 * A mock whose stream is built fresh for each call from `parts()`, with a
 * request body and response headers beside it. `url: false` leaves out the
 * file given by URL, for generateText and streamText (which download it).
 */
function streamingModel(major: Major, parts: () => unknown[] = () => streamed(major), modelId?: string, url = true) {
  return major.mockModel({
    ...(modelId ? { modelId } : {}),
    doGenerate: async () => generated(major, stop, url),
    doStream: async () => ({
      stream: major.ai.simulateReadableStream({ chunks: parts() as never[] }),
      request: { body: { asked: 'What is AI?' } },
      response: { headers: { 'x-request-id': 'req-1' } },
    }),
  });
}

const mark = { hit: true, storedAt: expect.any(Number), key: expect.stringMatching(/^v1:ai-sdk:[0-9a-f]{64}$/) };

function marked<T extends { providerMetadata?: unknown }>(original: T): T {
  return { ...original, providerMetadata: { ...(original.providerMetadata as object), cachekit: mark } };
}

function expectSameBytesAndUrls(hit: { data?: unknown }[], original: { data?: unknown }[]): void {
  const files = (parts: { type?: unknown; data?: unknown }[]) => parts.filter((part) => part.type === 'file').map((part) => part.data);
  const [hitFiles, originalFiles] = [files(hit as never), files(original as never)];
  expect(hitFiles).toHaveLength(originalFiles.length);
  hitFiles.forEach((data, i) => {
    const raw = (d: unknown) => ((d as { data?: unknown }).data ?? d) as unknown;
    const was = originalFiles[i];
    if ((was as { url?: unknown }).url instanceof URL) {
      expect((data as { url: unknown }).url).toBeInstanceOf(URL);
      expect(String((data as { url: URL }).url)).toBe(String((was as { url: URL }).url));
    } else {
      expect(raw(data)).toBeInstanceOf(Uint8Array);
      expect(Array.from(raw(data) as Uint8Array)).toEqual(Array.from(raw(was) as Uint8Array));
    }
  });
}

for (const major of majors) {
  const { ai } = major;
  const sdkModel = () => streamingModel(major, () => streamed(major, stop, false), undefined, false);

  describeEachBackend(`cacheMiddleware, ${major.label}`, ({ cache }) => {
    describe('doGenerate', () => {
      it('answers a repeated call from the cache with the stored result, which differs only by providerMetadata.cachekit', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache(), ttl: 60 }) });
        const first = await wrapped.doGenerate({ prompt });
        const hit = await wrapped.doGenerate({ prompt });
        expect(model.doGenerateCalls).toHaveLength(1);
        expect(first).toEqual(generated(major));
        expect(hit).toEqual(marked(first));
        expect(hit.response?.timestamp).toBeInstanceOf(Date);
        expect(hit.response?.timestamp?.getTime()).toBe(timestamp.getTime());
        expectSameBytesAndUrls(hit.content as never, first.content as never);
      });

      it('serves generateText a hit that sends nothing upstream, with the same text, tool calls and usage, marked as a hit', async () => {
        const model = sdkModel();
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const first = await ai.generateText({ model: wrapped, prompt: 'What is AI?' });
        const again = await ai.generateText({ model: wrapped, prompt: 'What is AI?' });
        expect(model.doGenerateCalls).toHaveLength(1);
        expect(again.text).toBe(first.text);
        expect(again.reasoningText).toBe(first.reasoningText);
        expect(again.toolCalls).toEqual(first.toolCalls);
        expect(again.usage).toEqual(first.usage);
        expect(first.providerMetadata?.cachekit).toBeUndefined();
        expect(again.providerMetadata).toEqual({ mock: { requestId: 'abc' }, cachekit: mark });
        expect(cacheStats(middleware)).toMatchObject({ hits: 1, misses: 1, bypasses: 0, errors: 0, tokensSaved: 5 });
      });

      it('gives every hit its own copy: changing one answer changes neither the entry nor the next hit', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await wrapped.doGenerate({ prompt });
        const hit = await wrapped.doGenerate({ prompt });
        (hit.content[1] as { text: string }).text = 'changed by the caller';
        const next = await wrapped.doGenerate({ prompt });
        expect((next.content[1] as { text: string }).text).toBe('AI is the study of thinking machines.');
      });

      it('does not store a result whose finish reason is error', async () => {
        const model = major.mockModel({ doGenerate: async () => generated(major, { unified: 'error', raw: 'server_error' }) });
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await wrapped.doGenerate({ prompt });
        await settled();
        await wrapped.doGenerate({ prompt });
        expect(model.doGenerateCalls).toHaveLength(2);
      });

      it('sends concurrent identical calls upstream once; a caller who comes after the answer is marked as a hit', async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const model = major.mockModel({
          doGenerate: async () => {
            await gate;
            return generated(major);
          },
        });
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const calls = Array.from({ length: 5 }, () => wrapped.doGenerate({ prompt }));
        release();
        const answers = await Promise.all(calls);
        expect(model.doGenerateCalls).toHaveLength(1);
        for (const answer of answers) expect(answer.content).toEqual(answers[0]!.content);
        const later = await wrapped.doGenerate({ prompt });
        expect(later.providerMetadata?.cachekit).toMatchObject({ hit: true });
      });

      it('lets an upstream error reach the caller and caches nothing', async () => {
        let calls = 0;
        const model = major.mockModel({
          doGenerate: async () => {
            if (++calls === 1) throw new Error('upstream down');
            return generated(major);
          },
        });
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await expect(wrapped.doGenerate({ prompt })).rejects.toThrow('upstream down');
        expect((await wrapped.doGenerate({ prompt })).providerMetadata?.cachekit).toBeUndefined();
        expect(calls).toBe(2);
      });

      it('answers but does not store a result the cache cannot encode, counted as an error', async () => {
        class Opaque {
          readonly secret = 1;
        }
        const model = major.mockModel({ doGenerate: async () => ({ ...(generated(major) as object), response: { body: new Opaque() } }) as never });
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const first = await wrapped.doGenerate({ prompt });
        expect(first.response?.body).toBeInstanceOf(Opaque);
        await settled();
        await wrapped.doGenerate({ prompt });
        expect(model.doGenerateCalls).toHaveLength(2);
        expect(cacheStats(middleware).errors).toBeGreaterThan(0);
      });
    });

    describe('doStream', () => {
      it('replays a repeated stream from the cache: the same parts in the same order, only the finish part marked', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const live = await wrapped.doStream({ prompt });
        const first = await readAll(live.stream);
        await settled();
        const hit = await wrapped.doStream({ prompt });
        const replayed = await readAll(hit.stream);
        expect(model.doStreamCalls).toHaveLength(1);
        expect(first).toEqual(streamed(major));
        expect(replayed.map((part) => part.type)).toEqual(first.map((part) => part.type));
        expect(replayed.slice(0, -1)).toEqual(first.slice(0, -1));
        expect(replayed.at(-1)).toEqual(marked(first.at(-1) as { providerMetadata?: unknown }));
        const metadata = replayed.find((part) => part.type === 'response-metadata') as { timestamp?: unknown };
        expect(metadata.timestamp).toBeInstanceOf(Date);
        expect((metadata.timestamp as Date).getTime()).toBe(timestamp.getTime());
        expectSameBytesAndUrls(replayed as never, first as never);
        expect(hit.request).toEqual(live.request);
        expect(hit.response).toEqual(live.response);
      });

      it('serves streamText a replay with the same text, reasoning and tool calls, and the hit mark on its provider metadata', async () => {
        const model = sdkModel();
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const first = ai.streamText({ model: wrapped, prompt: 'What is AI?' });
        const text = await first.text;
        expect(await first.providerMetadata).toEqual({ mock: { requestId: 'abc' } });
        await settled();
        const again = ai.streamText({ model: wrapped, prompt: 'What is AI?' });
        expect(await again.text).toBe(text);
        expect(await again.reasoningText).toBe(await first.reasoningText);
        expect(await again.toolCalls).toEqual(await first.toolCalls);
        expect(await again.providerMetadata).toEqual({ mock: { requestId: 'abc' }, cachekit: mark });
        expect(model.doStreamCalls).toHaveLength(1);
        expect(cacheStats(middleware)).toMatchObject({ hits: 1, misses: 1, tokensSaved: 5 });
      });

      it('paces a replay by replayDelayMs between parts', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache(), replayDelayMs: 15 }) });
        const parts = await readAll((await wrapped.doStream({ prompt })).stream);
        await settled();
        const started = performance.now();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(performance.now() - started).toBeGreaterThanOrEqual((parts.length - 1) * 15 - 5);
      });

      const notStored: [string, () => unknown[]][] = [
        ['whose finish reason is error', () => streamed(major, { unified: 'error', raw: 'server_error' })],
        ['whose finish reason is interrupted (the provider lost its completion signal)', () => streamed(major, { unified: 'interrupted', raw: undefined })],
        ['whose finish reason is other without a raw reason (the provider never said why it stopped)', () => streamed(major, { unified: 'other', raw: undefined })],
        ['that carried an error part, though it finished', () => [...streamed(major).slice(0, 5), { type: 'error', error: 'overloaded' }, ...streamed(major).slice(5)]],
        ['that ended without a finish part', () => streamed(major).slice(0, -1)],
      ];
      for (const [what, parts] of notStored) {
        it(`passes on but never stores a stream ${what}`, async () => {
          const model = streamingModel(major, parts);
          const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
          expect(await readAll((await wrapped.doStream({ prompt })).stream)).toEqual(parts());
          await settled();
          await readAll((await wrapped.doStream({ prompt })).stream);
          expect(model.doStreamCalls).toHaveLength(2);
        });
      }

      it('errors with upstream’s error and never stores a stream that failed half-way', async () => {
        const model = major.mockModel({
          doStream: async () => ({
            stream: new ReadableStream({
              start(controller) {
                for (const part of streamed(major).slice(0, 4)) controller.enqueue(part as never);
                controller.error(new Error('connection reset'));
              },
            }),
          }),
        });
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await expect(readAll((await wrapped.doStream({ prompt })).stream)).rejects.toThrow('connection reset');
        await settled();
        await expect(readAll((await wrapped.doStream({ prompt })).stream)).rejects.toThrow('connection reset');
        expect(model.doStreamCalls).toHaveLength(2);
      });

      it('ends the stream of a call that was aborted with the abort’s reason, and never stores it, though upstream’s parts kept coming', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const controller = new AbortController();
        const reader = (await wrapped.doStream({ prompt, abortSignal: controller.signal })).stream.getReader();
        await reader.read();
        controller.abort();
        await expect(reader.read()).rejects.toThrow(/abort/i);
        await settled();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doStreamCalls).toHaveLength(2);
      });

      it('never stores a stream aborted through streamText’s abortSignal', async () => {
        const model = sdkModel();
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const controller = new AbortController();
        const result = ai.streamText({ model: wrapped, prompt: 'What is AI?', abortSignal: controller.signal, onError: () => {} });
        for await (const _ of result.textStream) controller.abort();
        await settled();
        await ai.streamText({ model: wrapped, prompt: 'What is AI?' }).text;
        expect(model.doStreamCalls).toHaveLength(2);
      });

      it('cancels upstream and stores nothing when the consumer stops reading early', async () => {
        let cancelled = false;
        const model = major.mockModel({
          doStream: async () => {
            const parts = streamed(major);
            return {
              stream: new ReadableStream({
                pull: (controller) => (parts.length > 0 ? controller.enqueue(parts.shift() as never) : controller.close()),
                cancel: () => void (cancelled = true),
              }),
            };
          },
        });
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const reader = (await wrapped.doStream({ prompt })).stream.getReader();
        await reader.read();
        await reader.cancel();
        expect(cancelled).toBe(true);
        await settled();
        const again = await readAll((await wrapped.doStream({ prompt })).stream);
        expect(again.at(-1)).toMatchObject({ type: 'finish' });
        expect(model.doStreamCalls).toHaveLength(2);
      });

      it('answers but does not store a stream with a part the cache cannot encode, counted as an error', async () => {
        class Opaque {
          readonly secret = 1;
        }
        const parts = () => [...streamed(major).slice(0, -1), { type: 'raw', rawValue: new Opaque() }, streamed(major).at(-1)];
        const model = streamingModel(major, parts);
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const first = await readAll((await wrapped.doStream({ prompt })).stream);
        expect(first).toHaveLength(parts().length);
        await settled();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doStreamCalls).toHaveLength(2);
        expect(cacheStats(middleware).errors).toBeGreaterThan(0);
      });

      it('errors a replay with the abort reason when its abortSignal aborts', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await readAll((await wrapped.doStream({ prompt })).stream);
        await settled();
        const controller = new AbortController();
        const reader = (await wrapped.doStream({ prompt, abortSignal: controller.signal })).stream.getReader();
        await reader.read();
        controller.abort(new Error('user left'));
        await expect(reader.read()).rejects.toThrow('user left');
      });
    });

    describe('keys', () => {
      it('keeps transport fields (headers, abortSignal) and identity fields of OpenAI provider options out of the key', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await wrapped.doGenerate({ prompt, headers: { 'x-trace': '1' }, providerOptions: { openai: { user: 'alice', reasoningEffort: 'low' } } });
        const hit = await wrapped.doGenerate({
          prompt,
          headers: { 'x-trace': '2' },
          abortSignal: new AbortController().signal,
          providerOptions: { openai: { user: 'bob', safetyIdentifier: 'b', metadata: { run: '7' }, serviceTier: 'flex', promptCacheKey: 'k', reasoningEffort: 'low' } },
        });
        expect(hit.providerMetadata?.cachekit).toMatchObject({ hit: true });
        expect(model.doGenerateCalls).toHaveLength(1);
      });

      it('answers a call whose only provider options are identity fields from the entry of a call without any', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await wrapped.doGenerate({ prompt });
        const hit = await wrapped.doGenerate({ prompt, providerOptions: { openai: { user: 'alice', metadata: { run: '1' } } } });
        expect(hit.providerMetadata?.cachekit).toMatchObject({ hit: true });
        expect(model.doGenerateCalls).toHaveLength(1);
      });

      const changes: [string, Record<string, unknown>][] = [
        ['a setting', { temperature: 0.7 }],
        ['an OpenAI option that changes the answer', { providerOptions: { openai: { reasoningEffort: 'high' } } }],
        ['OpenAI store (the provider sends item references and asks for encrypted reasoning by it)', { providerOptions: { openai: { store: false } } }],
        ['another provider’s user field', { providerOptions: { anthropic: { user: 'bob' } } }],
        ['the tools', { tools: [{ type: 'function', name: 'lookup', inputSchema: { type: 'object' } }] }],
        ['the response format', { responseFormat: { type: 'json' } }],
      ];
      for (const [what, change] of changes) {
        it(`misses when ${what} differs`, async () => {
          const model = streamingModel(major);
          const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
          await wrapped.doGenerate({ prompt, providerOptions: { anthropic: { user: 'alice' } } });
          await wrapped.doGenerate({ prompt, providerOptions: { anthropic: { user: 'alice' } }, ...change });
          expect(model.doGenerateCalls).toHaveLength(2);
        });
      }

      it('keeps models apart by the inner model’s provider and model id, whatever wrapLanguageModel renames them to', async () => {
        const shared = cache();
        const a = streamingModel(major, undefined, 'model-a');
        const b = streamingModel(major, undefined, 'model-b');
        const middleware = major.middleware({ cache: shared });
        await ai.wrapLanguageModel({ model: a, middleware, modelId: 'same' }).doGenerate({ prompt });
        await ai.wrapLanguageModel({ model: b, middleware, modelId: 'same' }).doGenerate({ prompt });
        expect(a.doGenerateCalls).toHaveLength(1);
        expect(b.doGenerateCalls).toHaveLength(1);
        await ai.wrapLanguageModel({ model: a, middleware, modelId: 'other' }).doGenerate({ prompt });
        expect(a.doGenerateCalls).toHaveLength(1);
      });

      it('stores doGenerate and doStream answers apart', async () => {
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        await wrapped.doGenerate({ prompt });
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doGenerateCalls).toHaveLength(1);
        expect(model.doStreamCalls).toHaveLength(1);
      });

      it('sends a call the key cannot hold (a class instance in a provider option) upstream uncached, counted as a bypass', async () => {
        const model = streamingModel(major);
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const params = { prompt, providerOptions: { custom: { client: new (class Client {})() } } } as never;
        await wrapped.doGenerate(params);
        await wrapped.doGenerate(params);
        expect(model.doGenerateCalls).toHaveLength(2);
        expect(cacheStats(middleware)).toMatchObject({ bypasses: 2, hits: 0, misses: 0 });
      });

      it('stores under v1:<namespace>: and explainKey(middleware, { model, params, type }) gives the key a hit is marked with', async () => {
        const c = cache();
        const model = streamingModel(major);
        const middleware = major.middleware({ cache: c, namespace: 'support-bot' });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const params = { prompt, temperature: 0, headers: { 'x-trace': '1' }, providerOptions: { openai: { user: 'alice' } } };
        await wrapped.doGenerate(params);
        const hit = await wrapped.doGenerate(params);
        const { key } = hit.providerMetadata?.cachekit as { key: string };
        expect(key).toMatch(/^v1:support-bot:[0-9a-f]{64}$/);
        expect(await c.get(key)).toBeDefined();
        const explained = await explainKey(middleware, { model, params });
        expect(explained.key).toBe(key);
        expect(explained.dropped).toEqual(['params.headers', 'params.providerOptions.openai.user']);
        expect(explained.hashed).toEqual({ provider: 'mock-provider', modelId: 'mock-model-id', type: 'generate', params: { prompt, temperature: 0 } });
        expect((await explainKey(middleware, { model, params, type: 'stream' })).key).not.toBe(key);
      });
    });

    describe('per-call controls and tenants', () => {
      it('bypass neither reads nor stores; refresh skips the read and stores; noStore reads and does not store', async () => {
        const model = streamingModel(major);
        const middleware = major.middleware({ cache: cache() });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        await withCacheControl({ bypass: true }, () => wrapped.doGenerate({ prompt }));
        await withCacheControl({ noStore: true }, () => wrapped.doGenerate({ prompt }));
        expect(model.doGenerateCalls).toHaveLength(2);
        await wrapped.doGenerate({ prompt });
        expect(model.doGenerateCalls).toHaveLength(3);
        const refreshed = await withCacheControl({ refresh: true }, () => wrapped.doGenerate({ prompt }));
        expect(refreshed.providerMetadata?.cachekit).toBeUndefined();
        expect(model.doGenerateCalls).toHaveLength(4);
        expect((await withCacheControl({ noStore: true }, () => wrapped.doGenerate({ prompt }))).providerMetadata?.cachekit).toMatchObject({ hit: true });
        expect(cacheStats(middleware).bypasses).toBe(2);
      });

      it('applies the controls in force when the stream was asked for, though it is read outside withCacheControl', async () => {
        const model = sdkModel();
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: cache() }) });
        const noStore = await withCacheControl({ noStore: true }, () => wrapped.doStream({ prompt }));
        await readAll(noStore.stream);
        await settled();
        const bypassed = withCacheControl({ bypass: true }, () => ai.streamText({ model: wrapped, prompt: 'What is AI?' }));
        await bypassed.text;
        await settled();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doStreamCalls).toHaveLength(3);
      });

      it('keeps tenants apart: the option’s tenant, and withCacheControl’s, which wins', async () => {
        const c = cache();
        const model = streamingModel(major);
        const middleware = major.middleware({ cache: c, tenantId: 'acme' });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        const first = await wrapped.doGenerate({ prompt });
        const other = await withCacheControl({ tenantId: 'globex' }, () => wrapped.doGenerate({ prompt }));
        expect(other.providerMetadata?.cachekit).toBeUndefined();
        expect(model.doGenerateCalls).toHaveLength(2);
        const hit = await wrapped.doGenerate({ prompt });
        const { key } = hit.providerMetadata?.cachekit as { key: string };
        expect(first.providerMetadata?.cachekit).toBeUndefined();
        expect(await c.get(key)).toBeUndefined();
        expect(await c.get(key, { tenantId: 'acme' })).toBeDefined();
        expect(await c.get(key, { tenantId: 'globex' })).toBeDefined();
        expect((await explainKey(middleware, { model, params: { prompt } })).tenantId).toBe('acme');
      });

      it('stores a stream under the tenant that asked for it, though it is read outside withCacheControl', async () => {
        const c = cache();
        const model = streamingModel(major);
        const wrapped = ai.wrapLanguageModel({ model, middleware: major.middleware({ cache: c }) });
        await readAll((await withCacheControl({ tenantId: 'acme' }, () => wrapped.doStream({ prompt }))).stream);
        await settled();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doStreamCalls).toHaveLength(2);
        const hit = await readAll((await withCacheControl({ tenantId: 'acme' }, () => wrapped.doStream({ prompt }))).stream);
        expect(model.doStreamCalls).toHaveLength(2);
        expect((hit.at(-1) as { providerMetadata?: { cachekit?: unknown } }).providerMetadata?.cachekit).toMatchObject({ hit: true });
      });

      it('keeps what shouldCache refuses out of the cache', async () => {
        const model = streamingModel(major);
        const seen: string[] = [];
        const middleware = major.middleware({
          cache: cache(),
          shouldCache: (result, { type }) => {
            seen.push(type);
            return type === 'stream' ? !(result as { type: string }[]).some((part) => part.type === 'tool-call') : true;
          },
        });
        const wrapped = ai.wrapLanguageModel({ model, middleware });
        await readAll((await wrapped.doStream({ prompt })).stream);
        await settled();
        await readAll((await wrapped.doStream({ prompt })).stream);
        expect(model.doStreamCalls).toHaveLength(2);
        await wrapped.doGenerate({ prompt });
        expect(seen).toEqual(['stream', 'stream', 'generate']);
      });
    });
  });
}

describe('cacheMiddleware options', () => {
  const cache: Cache = createMemoryCache();
  const refused: [string, unknown, RegExp][] = [
    ['no options', undefined, /options are required/],
    ['a missing cache', {}, /options\.cache must be a cachekit Cache/],
    ['a typo', { cache, ttls: 60 }, /ttls/],
    ['a TTL of 0', { cache, ttl: 0 }, /ttl must be a positive number of seconds/],
    ['a namespace with a glob character', { cache, namespace: 'a*' }, /namespace/],
    ['a negative replayDelayMs', { cache, replayDelayMs: -1 }, /replayDelayMs must be a number of milliseconds/],
    ['a shouldCache that is not a function', { cache, shouldCache: true }, /shouldCache must be a function/],
  ];
  for (const [what, options, message] of refused) {
    it(`throws a validation CacheError at construction for ${what}`, () => {
      expect(() => cacheMiddleware(options as never)).toThrow(expect.objectContaining({ errorType: 'validation', message: expect.stringMatching(message) }));
    });
  }

  it('declares the spec version each major’s wrapLanguageModel is typed for', () => {
    expect(majors.map((major) => major.middleware({ cache }).specificationVersion)).toEqual(['v4', 'v3']);
  });

  it('explains a call without params as a bypass', async () => {
    expect(await explainKey(cacheMiddleware({ cache }), { model: { provider: 'p', modelId: 'm' } })).toMatchObject({ key: undefined, bypass: expect.stringContaining('params') });
  });

  it('keeps the counters of a middleware shared by two models together', async () => {
    const major = majors[0]!;
    const middleware = major.middleware({ cache });
    for (const id of ['one', 'two']) await major.ai.wrapLanguageModel({ model: streamingModel(major, undefined, id), middleware }).doGenerate({ prompt });
    await sleep(0);
    expect(cacheStats(middleware)).toMatchObject({ misses: 2 });
  });
});
