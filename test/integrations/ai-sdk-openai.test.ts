import { afterEach, beforeEach, expect, it } from 'vitest';
import { cachedEmbeddingModel, cacheStats } from '../../integrations/ai-sdk/index.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { majors, settled } from './ai-sdk/majors.js';

// The real provider of each major (`@ai-sdk/openai` 4 for `ai` 7, 3 for `ai`
// 6) against the local OpenAI wire-format server: a hit sends no request.

let server: WireServer;
beforeEach(async () => {
  server = await startOpenAIWireServer();
});
afterEach(async () => {
  await server.close();
});

const answerSchema = { type: 'object', properties: { answer: { type: 'string' }, confidence: { type: 'number' } }, required: ['answer', 'confidence'], additionalProperties: false } as const;

for (const major of majors) {
  const { ai } = major;

  describeEachBackend(`@ai-sdk/openai, ${major.label}`, ({ cache }) => {
    const setup = () => {
      const middleware = major.middleware({ cache: cache(), ttl: 60 });
      const model = ai.wrapLanguageModel({ model: major.openai(server.url).chat('gpt-4o-mini'), middleware });
      return { middleware, model };
    };

    it('answers a repeated generateText from the cache without a request', async () => {
      const { middleware, model } = setup();
      const first = await ai.generateText({ model, prompt: 'What is AI?', temperature: 0 });
      const again = await ai.generateText({ model, prompt: 'What is AI?', temperature: 0 });
      expect(server.calls('chat/completions')).toBe(1);
      expect(again.text).toBe(first.text);
      expect(again.text).toContain('What is AI?');
      expect(again.response.id).toBe(first.response.id);
      expect(again.providerMetadata?.cachekit).toMatchObject({ hit: true });
      expect(cacheStats(middleware)).toMatchObject({ hits: 1, misses: 1, tokensSaved: first.usage.totalTokens });
    });

    it('replays a streamText agent loop with tool calls: every step from the cache, the tool run again, no request', async () => {
      const { model } = setup();
      const ran: unknown[] = [];
      const tools = {
        lookup: ai.tool({
          description: 'Looks a term up',
          inputSchema: ai.jsonSchema<{ q: string }>({ type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }),
          execute: async ({ q }) => (ran.push(q), `definition of ${q}`),
        }),
      };
      const run = async () => {
        const result = ai.streamText({ model, prompt: 'Define AI', tools, stopWhen: ai.stepCountIs(3) });
        const steps = await result.steps;
        return { text: await result.text, calls: steps.map((step) => step.toolCalls.map((call) => [call.toolName, call.input])), reasoning: await result.reasoningText };
      };
      const first = await run();
      expect(first.calls).toEqual([[['lookup', { q: 'ai' }]], []]);
      expect(server.calls('chat/completions')).toBe(2);
      await settled();
      expect(await run()).toEqual(first);
      expect(server.calls('chat/completions')).toBe(2);
      expect(ran).toEqual(['ai', 'ai']);
    });

    it('answers generateText with Output.object from the cache, the parsed object included', async () => {
      const { model } = setup();
      const ask = () => ai.generateText({ model, prompt: 'Rate AI', output: ai.Output.object({ schema: ai.jsonSchema<{ answer: string; confidence: number }>(answerSchema) }) });
      const first = await ask();
      expect(first.output).toEqual({ answer: expect.stringContaining('Rate AI'), confidence: 1 });
      expect((await ask()).output).toEqual(first.output);
      expect(server.calls('chat/completions')).toBe(1);
    });

    it('answers generateObject from the cache', async () => {
      const { model } = setup();
      const ask = () => ai.generateObject({ model, prompt: 'Rate AI', schema: ai.jsonSchema<{ answer: string; confidence: number }>(answerSchema) });
      const first = await ask();
      expect((await ask()).object).toEqual(first.object);
      expect(server.calls('chat/completions')).toBe(1);
    });

    for (const how of ['destroy', 'end'] as const) {
      it(`never stores a stream the server cut (${how === 'destroy' ? 'connection dropped' : 'closed without its finish'})`, async () => {
        const { model } = setup();
        server.cutNextStream(4, how);
        const cut = ai.streamText({ model, prompt: 'What is AI?', onError: () => {} });
        await cut.consumeStream();
        await settled();
        const whole = await ai.streamText({ model, prompt: 'What is AI?' }).text;
        expect(whole).toContain('What is AI?');
        expect(server.calls('chat/completions')).toBe(2);
        await settled();
        expect(await ai.streamText({ model, prompt: 'What is AI?' }).text).toBe(whole);
        expect(server.calls('chat/completions')).toBe(2);
      });
    }

    it('never stores a stream whose call was aborted half-way', async () => {
      const { model } = setup();
      const held = server.holdNextStream();
      const controller = new AbortController();
      const aborted = ai.streamText({ model, prompt: 'What is AI?', abortSignal: controller.signal, onError: () => {} });
      const reading = aborted.consumeStream();
      while (held.eventsSent() === 0) await settled();
      controller.abort();
      held.release();
      await reading;
      await settled();
      await ai.streamText({ model, prompt: 'What is AI?' }).text;
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('lets an upstream error reach generateText and caches nothing', async () => {
      const { model } = setup();
      server.failNext('chat/completions');
      await expect(ai.generateText({ model, prompt: 'What is AI?', maxRetries: 0 })).rejects.toThrow(/injected failure/);
      await ai.generateText({ model, prompt: 'What is AI?' });
      expect(server.calls('chat/completions')).toBe(2);
    });

    it('embeds with embedMany value by value: only the values not cached are sent, in one request, in order', async () => {
      const openai = major.openai(server.url);
      const embedder = cachedEmbeddingModel(openai.embedding('text-embedding-3-small'), { cache: cache() });
      const plain = await ai.embedMany({ model: openai.embedding('text-embedding-3-small'), values: ['alpha', 'beta', 'gamma'] });
      const before = server.calls('embeddings');
      const first = await ai.embedMany({ model: embedder, values: ['alpha', 'beta'] });
      const mixed = await ai.embedMany({ model: embedder, values: ['gamma', 'beta', 'alpha'] });
      expect(server.bodies('embeddings').slice(before).map((body) => body.input)).toEqual([['alpha', 'beta'], ['gamma']]);
      expect(first.embeddings).toEqual(plain.embeddings.slice(0, 2));
      expect(mixed.embeddings).toEqual([plain.embeddings[2], plain.embeddings[1], plain.embeddings[0]]);
      expect(mixed.usage.tokens).toBe(1);
      const hit = await ai.embedMany({ model: embedder, values: ['beta'] });
      expect(hit.embeddings).toEqual([plain.embeddings[1]]);
      expect(hit.usage.tokens).toBe(0);
      expect(server.calls('embeddings')).toBe(before + 2);
      expect(cacheStats(embedder)).toMatchObject({ hits: 1, misses: 2 });
    });
  });
}
