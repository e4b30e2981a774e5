// cachekit/ai-sdk in the Vercel AI SDK: cacheMiddleware around an
// @ai-sdk/openai chat model (generateText, a replayed streamText, a structured
// output), cachedEmbeddingModel for embedMany with a partial hit, what
// explainKey says about a request, and the stats.
// Offline by default: a local server that speaks the OpenAI wire format and
// answers after 300 ms. Set OPENAI_BASE_URL and OPENAI_API_KEY (and optionally
// OPENAI_MODEL, OPENAI_EMBEDDING_MODEL) to call a real endpoint; set REDIS_URL
// to cache on Dragonfly/Redis.
import { createOpenAI } from '@ai-sdk/openai';
import { embedMany, generateText, jsonSchema, Output, streamText, wrapLanguageModel } from 'ai';
import { cachedEmbeddingModel, cacheMiddleware, cacheStats, explainKey } from '../integrations/ai-sdk/index.js';
import { openCache, timed } from './support/demo.js';
import { startOpenAIWireServer, type WireServer } from '../test/helpers/openai-wire-server.js';

async function main(): Promise<void> {
  const { OPENAI_BASE_URL, OPENAI_API_KEY } = process.env;
  const real = Boolean(OPENAI_BASE_URL && OPENAI_API_KEY);
  let server: WireServer | undefined;
  if (!real) server = await startOpenAIWireServer({ latencyMs: 300, chunkDelayMs: 20 });
  const openai = createOpenAI({ baseURL: real ? OPENAI_BASE_URL : server!.url, apiKey: real ? OPENAI_API_KEY : 'offline' });
  const cache = await openCache('example-ai-sdk');
  console.log(`cache: ${cache.kind}; upstream: ${real ? OPENAI_BASE_URL : `local wire-format server at ${server!.url}`}\n`);

  try {
    const middleware = cacheMiddleware({ cache, ttl: 600 });
    const chat = openai.chat(process.env.OPENAI_MODEL ?? 'gpt-4o-mini');
    const model = wrapLanguageModel({ model: chat, middleware });
    const ask = { model, prompt: 'What is AI? One sentence.', temperature: 0 };

    const first = await timed('miss: generateText', () => generateText(ask));
    const hit = await timed('hit:  generateText', () => generateText(ask));
    console.log(`answer: ${first.text}`);
    console.log(`hit marked in providerMetadata.cachekit: ${JSON.stringify(hit.providerMetadata?.cachekit)}\n`);

    const streamed = (label: string) =>
      timed(label, async () => {
        let parts = 0;
        const result = streamText(ask);
        for await (const _ of result.fullStream) parts++;
        return { text: await result.text, parts };
      });
    const live = await streamed('miss: streamText');
    const replay = await streamed('hit:  streamText (replayed part by part)');
    console.log(`stream: ${live.parts} parts live, ${replay.parts} replayed, same text: ${live.text === replay.text}\n`);

    const schema = jsonSchema<{ answer: string; confident: boolean }>({
      type: 'object',
      properties: { answer: { type: 'string' }, confident: { type: 'boolean' } },
      required: ['answer', 'confident'],
      additionalProperties: false,
    });
    const structured = () => generateText({ model, prompt: 'Is caching worth it?', output: Output.object({ schema }) });
    await timed('miss: generateText with Output.object', structured);
    const object = await timed('hit:  generateText with Output.object', structured);
    console.log(`object: ${JSON.stringify(object.output)}\n`);

    const embedder = cachedEmbeddingModel(openai.embedding(process.env.OPENAI_EMBEDDING_MODEL ?? 'text-embedding-3-small'), { cache, ttl: 600 });
    const docs = Array.from({ length: 10 }, (_, i) => `Document ${i} about caching.`);
    await timed('miss: embedMany for 9 documents', () => embedMany({ model: embedder, values: docs.slice(0, 9) }));
    const all = await timed('partial hit: embedMany for all 10 (1 sent upstream)', () => embedMany({ model: embedder, values: docs }));
    console.log(`embeddings: ${all.embeddings.length} vectors; usage counts only what was sent: ${JSON.stringify(all.usage)}`);
    if (server) console.log(`values the server received in the second embedMany: ${JSON.stringify(server.bodies('embeddings').at(-1)?.input)}\n`);

    // What the key of a call is made of: the call options the middleware receives, and the inner model.
    const explained = await explainKey(middleware, {
      model: chat,
      params: { prompt: [{ role: 'user', content: [{ type: 'text', text: 'What is AI?' }] }], headers: { 'x-trace-id': 'abc' }, providerOptions: { openai: { user: 'user-42' } } },
    });
    console.log(`explainKey: key ${explained.key}\n  dropped: ${explained.dropped.join(', ')}`);

    const stats = cacheStats(middleware);
    console.log('\nstats (middleware):', { ...stats, latencySavedMs: Math.round(stats.latencySavedMs) });
    console.log('stats (embedding model):', { ...cacheStats(embedder), latencySavedMs: Math.round(cacheStats(embedder).latencySavedMs) });
  } finally {
    await cache.close();
    await server?.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
