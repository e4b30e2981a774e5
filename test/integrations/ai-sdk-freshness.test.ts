import { afterEach, beforeEach, expect, it } from 'vitest';
import { cacheInfo, cacheStats, withCacheControl } from '../../integrations/ai-sdk/index.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { majors, settled, sleep } from './ai-sdk/majors.js';

// Issue 15's freshness on the AI SDK middleware, with the real provider of
// each major (`@ai-sdk/openai`) against the local OpenAI wire-format server
// made to answer 429, 500 and 400, or to hang.

const TTL = 0.3;
const PAST_TTL_MS = 450;
const prompt = 'What is AI?';

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer({ chunkDelayMs: 5 });
});
afterEach(async () => {
  await server.close();
});

for (const major of majors) {
  const { ai } = major;

  describeEachBackend(`cacheMiddleware freshness, ${major.label}`, ({ cache }) => {
    const setup = (options: Omit<Parameters<typeof major.middleware>[0], 'cache'> = {}) => {
      const middleware = major.middleware({ cache: cache(), ttl: TTL, grace: 60, ...options });
      const model = ai.wrapLanguageModel({ model: major.openai(server.url).chat('gpt-4o-mini'), middleware });
      return { middleware, model };
    };
    const generate = (model: Parameters<typeof ai.generateText>[0]['model'], extra: Record<string, unknown> = {}) =>
      ai.generateText({ model, prompt, temperature: 0, maxRetries: 0, ...extra });
    const streamed = async (model: Parameters<typeof ai.streamText>[0]['model']) => {
      const result = ai.streamText({ model, prompt, temperature: 0, maxRetries: 0, onError: () => {} });
      return { text: await result.text, providerMetadata: await result.providerMetadata };
    };

    it.each([429, 500])('answers generateText with the last good answer while the provider answers %i, marked stale', async (status) => {
      const { middleware, model } = setup();
      const first = await generate(model);
      expect(cacheInfo(first.providerMetadata)).toMatchObject({ status: 'miss', key: expect.any(String) });
      await settled();
      await sleep(PAST_TTL_MS);
      const outage = server.failFor('chat/completions', status);
      const again = await generate(model);
      outage.recover();
      expect(again.text).toBe(first.text);
      expect(again.response.id).toBe(first.response.id);
      expect(again.providerMetadata?.cachekit).toMatchObject({ hit: true, stale: true, storedAt: expect.any(Number) });
      expect(cacheInfo(again.providerMetadata)).toMatchObject({ status: 'stale', storedAt: expect.any(Number) });
      expect(cacheStats(middleware)).toMatchObject({ staleHits: 1, misses: 1 });
    });

    it('never answers stale for an APICallError with a 400: the request itself is wrong', async () => {
      const { model } = setup();
      await generate(model);
      await settled();
      await sleep(PAST_TTL_MS);
      server.failNext('chat/completions', 400);
      await expect(generate(model)).rejects.toMatchObject({ statusCode: 400 });
    });

    it('never answers stale once the caller aborted, whatever reason the abort carries', async () => {
      const { model } = setup();
      await generate(model);
      await settled();
      await sleep(PAST_TTL_MS);
      const hang = server.hang('chat/completions');
      const controller = new AbortController();
      const call = generate(model, { abortSignal: controller.signal });
      await sleep(30);
      controller.abort('the user left');
      await expect(call).rejects.toBeDefined();
      hang.release();
    });

    it('never answers one tenant with another tenant’s stale answer', async () => {
      const { model } = setup();
      await withCacheControl({ tenantId: 'acme' }, () => generate(model));
      await settled();
      await sleep(PAST_TTL_MS);
      const outage = server.failFor('chat/completions', 500);
      await expect(withCacheControl({ tenantId: 'globex' }, () => generate(model))).rejects.toMatchObject({ statusCode: 500 });
      const acme = await withCacheControl({ tenantId: 'acme' }, () => generate(model));
      outage.recover();
      expect(acme.providerMetadata?.cachekit).toMatchObject({ stale: true });
    });

    it('answers stale past softTimeout while the provider hangs, and stores the refresh when it lands', async () => {
      const { middleware, model } = setup({ softTimeout: 50 });
      const first = await generate(model);
      await settled();
      await sleep(PAST_TTL_MS);
      const hang = server.hang('chat/completions');
      const started = performance.now();
      const stale = await generate(model);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(stale.response.id).toBe(first.response.id);
      expect(cacheInfo(stale.providerMetadata)?.status).toBe('stale');
      hang.release();
      await sleep(100);
      const fresh = await generate(model);
      expect(fresh.providerMetadata?.cachekit).toMatchObject({ hit: true });
      expect(fresh.providerMetadata?.cachekit).not.toHaveProperty('stale');
      expect(fresh.response.id).not.toBe(first.response.id);
      expect(cacheStats(middleware)).toMatchObject({ staleHits: 1, hits: 1 });
    });

    it('answers streamText with the last good stream while the provider answers 429, marked stale', async () => {
      const { middleware, model } = setup();
      const first = await streamed(model);
      expect(cacheInfo(first.providerMetadata)).toMatchObject({ status: 'miss' });
      await settled();
      await sleep(PAST_TTL_MS);
      const outage = server.failFor('chat/completions', 429);
      const again = await streamed(model);
      outage.recover();
      expect(again.text).toBe(first.text);
      expect(again.providerMetadata?.cachekit).toMatchObject({ hit: true, stale: true });
      expect(cacheInfo(again.providerMetadata)).toMatchObject({ status: 'stale', storedAt: expect.any(Number) });
      expect(cacheStats(middleware)).toMatchObject({ staleHits: 1, misses: 1 });
    });

    it('tells a bypass and a refresh from a miss in cacheInfo, generated and streamed', async () => {
      const { model } = setup({ ttl: 60, grace: undefined });
      const call = () => model.doStream({ prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }] } as never);
      expect(cacheInfo((await withCacheControl({ bypass: true }, () => generate(model))).providerMetadata)?.status).toBe('bypass');
      expect(cacheInfo((await withCacheControl({ refresh: true }, () => generate(model))).providerMetadata)?.status).toBe('bypass');
      expect(cacheInfo((await withCacheControl({ bypass: true }, call)).stream)?.status).toBe('bypass');
      await settled();
      expect(cacheInfo((await generate(model)).providerMetadata)).toMatchObject({ status: 'hit', storedAt: expect.any(Number) });
    });

    it('drops the answers tagged with an invalidated tag, generated and streamed', async () => {
      const { model } = setup({ ttl: 60, grace: undefined, tags: (_result, _params, call) => ['doc:42', `type:${call.type}`] });
      const c = cache();
      await generate(model);
      await streamed(model);
      await settled();
      expect(cacheInfo((await generate(model)).providerMetadata)?.status).toBe('hit');
      expect(cacheInfo((await streamed(model)).providerMetadata)?.status).toBe('hit');
      await c.invalidateTags(['doc:42']);
      expect(cacheInfo((await generate(model)).providerMetadata)?.status).toBe('miss');
      expect(cacheInfo((await streamed(model)).providerMetadata)?.status).toBe('miss');
      expect(server.calls('chat/completions')).toBe(4);
    });

    it('counts the cost a hit saved by the price of the answer’s model, generated and streamed', async () => {
      const prices = { 'gpt-4o-mini': { input: 1, output: 2 } };
      const { middleware, model } = setup({ ttl: 60, grace: undefined, prices });
      const first = await generate(model);
      await settled();
      await generate(model);
      const perCall = (first.usage.inputTokens! * 1 + first.usage.outputTokens! * 2) / 1e6;
      expect(cacheStats(middleware).costSaved).toBeCloseTo(perCall, 12);
      const stream = ai.streamText({ model, prompt, temperature: 0, maxRetries: 0 });
      await stream.text;
      const usage = await stream.usage;
      await settled();
      await streamed(model);
      expect(cacheStats(middleware).costSaved).toBeCloseTo(perCall + (usage.inputTokens! * 1 + usage.outputTokens! * 2) / 1e6, 12);
    });

    it('makes one upstream call for concurrent identical streamText misses, each caller its own whole stream', async () => {
      server.close();
      server = await startOpenAIWireServer({ chunkDelayMs: 20 });
      const { middleware, model } = setup({ ttl: 60, grace: undefined });
      const run = async (delayMs: number) => {
        await sleep(delayMs);
        const started = performance.now();
        const result = ai.streamText({ model, prompt, temperature: 0, maxRetries: 0 });
        let text = '';
        let firstChunkMs: number | undefined;
        for await (const delta of result.textStream) {
          firstChunkMs ??= performance.now() - started;
          text += delta;
        }
        return { text, firstChunkMs: firstChunkMs ?? NaN, providerMetadata: await result.providerMetadata };
      };
      const [a, b, c] = await Promise.all([run(0), run(30), run(60)]);
      const firstChunkMs = [a, b, c].map((r) => r.firstChunkMs);
      expect(server.calls('chat/completions')).toBe(1);
      expect(b.text).toBe(a.text);
      expect(c.text).toBe(a.text);
      expect([a, b, c].map((r) => cacheInfo(r.providerMetadata)?.status)).toEqual(['miss', 'miss', 'miss']);
      expect(cacheStats(middleware)).toMatchObject({ misses: 3, hits: 0 });
      console.log(`ai-sdk shared stream (${major.label}): 1 upstream call for 3 callers; latency to first chunk ms: starter ${firstChunkMs[0]?.toFixed(1)}, joiners ${firstChunkMs.slice(1).map((ms) => ms.toFixed(1)).join(', ')}`);
      await settled();
      const hit = await run(0);
      expect(hit.text).toBe(a.text);
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('keeps a shared stream going for the callers left when one cancels, and stores it', async () => {
      const { model } = setup({ ttl: 60, grace: undefined });
      const leaving = await model.doStream({ prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }] } as never);
      const staying = await model.doStream({ prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }] } as never);
      expect(cacheInfo(leaving.stream)).toMatchObject({ status: 'miss' });
      const reader = leaving.stream.getReader();
      await reader.read();
      await reader.cancel();
      const parts: unknown[] = [];
      for await (const part of staying.stream as unknown as AsyncIterable<unknown>) parts.push(part);
      expect((parts.at(-1) as { type: string }).type).toBe('finish');
      expect(server.calls('chat/completions')).toBe(1);
      await settled();
      const hit = await model.doStream({ prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }] } as never);
      expect(cacheInfo(hit.stream)).toMatchObject({ status: 'hit' });
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('cancels upstream and stores nothing when every caller of a shared stream left', async () => {
      const { model } = setup({ ttl: 60, grace: undefined });
      const call = () => model.doStream({ prompt: [{ role: 'user', content: [{ type: 'text', text: prompt }] }] } as never);
      const [one, two] = await Promise.all([call(), call()]);
      for (const { stream } of [one, two]) {
        const reader = stream.getReader();
        await reader.read();
        await reader.cancel();
      }
      await settled();
      await sleep(200);
      const again = await call();
      expect(cacheInfo(again.stream)).toMatchObject({ status: 'miss' });
      expect(server.calls('chat/completions')).toBe(2);
    });
  });
}
