// cachedOpenAI around the official openai SDK: a miss, a hit, a replayed
// stream, an embeddings batch with a partial hit, and the wrapper's stats.
// Offline by default: a local server that speaks the OpenAI wire format and
// answers after 300 ms. Set OPENAI_BASE_URL and OPENAI_API_KEY (and optionally
// OPENAI_MODEL, OPENAI_EMBEDDING_MODEL) to call a real endpoint; set REDIS_URL
// to cache on Dragonfly/Redis.
import OpenAI from 'openai';
import { cachedOpenAI, cacheStats } from '../integrations/openai/index.js';
import { openCache, timed } from './support/demo.js';
import { startOpenAIWireServer, type WireServer } from '../test/helpers/openai-wire-server.js';

async function main(): Promise<void> {
  const { OPENAI_BASE_URL, OPENAI_API_KEY } = process.env;
  const real = Boolean(OPENAI_BASE_URL && OPENAI_API_KEY);
  let server: WireServer | undefined;
  if (!real) server = await startOpenAIWireServer({ latencyMs: 300, chunkDelayMs: 20 });
  const client = new OpenAI({ baseURL: real ? OPENAI_BASE_URL : server!.url, apiKey: real ? OPENAI_API_KEY : 'offline' });
  const model = process.env.OPENAI_MODEL ?? 'gpt-4o-mini';
  const embeddingModel = process.env.OPENAI_EMBEDDING_MODEL ?? 'text-embedding-3-small';
  const cache = await openCache('example-openai');
  console.log(`cache: ${cache.kind}; upstream: ${real ? OPENAI_BASE_URL : `local wire-format server at ${server!.url}`}\n`);

  try {
    const openai = cachedOpenAI(client, { cache, ttl: 600 });
    const request = { model, messages: [{ role: 'user' as const, content: 'What is AI? One sentence.' }], temperature: 0 };

    const first = await timed('miss: chat.completions.create', () => openai.chat.completions.create(request));
    await timed('hit:  chat.completions.create', () => openai.chat.completions.create(request));
    console.log(`answer: ${first.choices[0]?.message.content}\n`);

    const streamed = async (label: string) =>
      timed(label, async () => {
        let text = '';
        let chunks = 0;
        for await (const chunk of await openai.chat.completions.create({ ...request, stream: true })) {
          text += chunk.choices[0]?.delta.content ?? '';
          chunks++;
        }
        return { text, chunks };
      });
    const live = await streamed('miss: the same request with stream: true');
    const replay = await streamed('hit:  the stream again (replayed chunk by chunk)');
    console.log(`stream: ${live.chunks} chunks live, ${replay.chunks} replayed, same text: ${live.text === replay.text}\n`);

    const docs = Array.from({ length: 10 }, (_, i) => `Document ${i} about caching.`);
    await timed('miss: embeddings for 9 documents', () => openai.embeddings.create({ model: embeddingModel, input: docs.slice(0, 9) }));
    const all = await timed('partial hit: embeddings for all 10 (1 sent upstream)', () => openai.embeddings.create({ model: embeddingModel, input: docs }));
    console.log(`embeddings: ${all.data.length} vectors of ${all.data[0]?.embedding.length} dimensions; usage counts only what was sent: ${JSON.stringify(all.usage)}`);
    if (server) console.log(`inputs the server received in the second embeddings call: ${JSON.stringify(server.bodies('embeddings')[1]?.input)}`);

    const stats = cacheStats(openai);
    console.log('\nstats:', { ...stats, latencySavedMs: Math.round(stats.latencySavedMs) });
  } finally {
    await cache.close();
    await server?.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
