// cachekit/langchain around LangChain.js: ChatOpenAI through cachedChatModel (a miss,
// a hit, a replayed stream, tools bound after wrapping), the same model with
// LangChainCache as its BaseCache, cached embeddings, and the wrappers' stats.
// Offline by default: a local server that speaks the OpenAI wire format and
// answers after 300 ms. Set OPENAI_BASE_URL and OPENAI_API_KEY (and optionally
// OPENAI_MODEL) to call a real endpoint; set REDIS_URL to cache on Dragonfly/Redis.
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { z } from 'zod';
import { cachedChatModel, cachedEmbeddings, cacheStats, explainKey, LangChainCache } from '../integrations/langchain/index.js';
import { startOpenAIWireServer, type WireServer } from '../test/helpers/openai-wire-server.js';
import { openCache, timed } from './support/demo.js';

async function main(): Promise<void> {
  const { OPENAI_BASE_URL, OPENAI_API_KEY } = process.env;
  const real = Boolean(OPENAI_BASE_URL && OPENAI_API_KEY);
  let server: WireServer | undefined;
  if (!real) server = await startOpenAIWireServer({ latencyMs: 300, chunkDelayMs: 20 });
  const baseURL = real ? OPENAI_BASE_URL : server!.url;
  const apiKey = real ? OPENAI_API_KEY : 'offline';
  const fields = { model: process.env.OPENAI_MODEL ?? 'gpt-4o-mini', apiKey, configuration: { baseURL }, temperature: 0, useResponsesApi: false };
  const cache = await openCache('example-langchain');
  console.log(`cache: ${cache.kind}; upstream: ${real ? OPENAI_BASE_URL : `local wire-format server at ${baseURL}`}\n`);

  try {
    const model = cachedChatModel(new ChatOpenAI(fields), { cache, ttl: 600 });
    const messages = [new SystemMessage('Answer in one sentence.'), new HumanMessage('What is AI?')];

    const first = await timed('miss: model.invoke', () => model.invoke(messages));
    const again = await timed('hit:  model.invoke', () => model.invoke(messages));
    console.log(`answer: ${first.content}\nhit marked: response_metadata.cachekit = ${JSON.stringify(again.response_metadata.cachekit)}\n`);

    const streamed = (label: string) =>
      timed(label, async () => {
        let text = '';
        let chunks = 0;
        for await (const chunk of await model.stream(messages)) {
          text += chunk.content as string;
          chunks++;
        }
        return { text, chunks };
      });
    const live = await streamed('miss: model.stream');
    const replay = await streamed('hit:  model.stream (replayed chunk by chunk)');
    console.log(`stream: ${live.chunks} chunks live, ${replay.chunks} replayed, same text: ${live.text === replay.text}\n`);

    const weather = model.bindTools([{ name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string() }) }]);
    await timed('miss: bindTools(...).invoke', () => weather.invoke('Weather in Paris?'));
    const call = await timed('hit:  bindTools(...).invoke', () => weather.invoke('Weather in Paris?'));
    console.log(`tool call: ${JSON.stringify(call.tool_calls?.[0])}`);
    const explained = await explainKey(weather, 'Weather in Paris?');
    console.log(`its key: ${explained.key}\n`);

    const langChainCache = new LangChainCache({ cache, ttl: 600 });
    const withBaseCache = new ChatOpenAI({ ...fields, cache: langChainCache });
    await timed('miss: ChatOpenAI({ cache: new LangChainCache(...) }).invoke', () => withBaseCache.invoke('What is a cache?'));
    await timed('hit:  the same, through LangChain’s own cache hook', () => withBaseCache.invoke('What is a cache?'));
    console.log('');

    const embeddings = cachedEmbeddings(new OpenAIEmbeddings({ model: 'text-embedding-3-small', apiKey, configuration: { baseURL } }), { cache, ttl: 600 });
    const docs = Array.from({ length: 10 }, (_, i) => `Document ${i} about caching.`);
    await timed('miss: embedDocuments for 9 documents', () => embeddings.embedDocuments(docs.slice(0, 9)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await timed('partial hit: embedDocuments for all 10 (1 sent upstream)', () => embeddings.embedDocuments(docs));
    if (server) console.log(`inputs the server received in the second embeddings call: ${JSON.stringify(server.bodies('embeddings')[1]?.input)}`);

    const round = (stats: ReturnType<typeof cacheStats>) => ({ ...stats, latencySavedMs: Math.round(stats.latencySavedMs) });
    console.log('\nstats, cachedChatModel:', round(cacheStats(model)));
    console.log('stats, LangChainCache: ', round(cacheStats(langChainCache)));
    console.log('stats, cachedEmbeddings:', round(cacheStats(embeddings)));
  } finally {
    await cache.close();
    await server?.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
