// Workload 10: a LangChain hit. The real ChatOpenAI (upstream answered by a
// local fetch) answered from cache three ways in the same process, rounds
// interleaved: LangChain's own InMemoryCache (its `cache` option), cachekit's
// LangChainCache in the same option, and cachedChatModel, both on a cachekit
// memory cache. Then a streamed hit through cachedChatModel, which LangChain's
// cache cannot give (it never consults a cache for `.stream()`: langchainjs#3582).
import { InMemoryCache } from '@langchain/core/caches';
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, forAbout, interleave, sequential, withRatios } from '../lib.mjs';
import { twoKb } from './values.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const messages = [
  new SystemMessage('You are a concise assistant for an internal support desk.'),
  new HumanMessage('How do I rotate the API key of a service account without downtime?'),
];

/** A fetch that answers every chat completion as upstream would: JSON, or SSE for `stream: true`. */
function upstream() {
  const state = { calls: 0 };
  state.fetch = async (_url, init) => {
    state.calls++;
    const body = JSON.parse(init.body);
    if (!body.stream) return new Response(JSON.stringify(twoKb), { status: 200, headers: { 'content-type': 'application/json' } });
    const words = twoKb.choices[0].message.content.split(/(?<= )/);
    const chunk = (delta, finish) => ({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 0, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] });
    const events = [chunk({ role: 'assistant', content: '' }, null), ...words.map((w) => chunk({ content: w }, null)), chunk({}, 'stop')];
    const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
    return new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  return state;
}

const chatOpenAI = (fetch, cache) =>
  new ChatOpenAI({ model: 'gpt-4o-mini', temperature: 0, apiKey: 'sk-bench', maxRetries: 0, useResponsesApi: false, configuration: { baseURL: 'http://127.0.0.1:9/v1', fetch }, cache });

async function drain(stream) {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

export default {
  id: 10,
  title: 'LangChain hit: cachedChatModel and LangChainCache vs LangChain’s InMemoryCache',
  async run({ ck, rounds, blockMs }) {
    const lc = await import(pathToFileURL(join(here, '..', '..', 'dist', 'langchain.js')).href);
    const up = upstream();
    const memory = ck.createMemoryCache();
    const theirs = chatOpenAI(up.fetch, new InMemoryCache());
    const viaBaseCache = chatOpenAI(up.fetch, new lc.LangChainCache({ cache: memory }));
    const wrapped = lc.cachedChatModel(chatOpenAI(up.fetch), { cache: memory });
    try {
      for (const model of [theirs, viaBaseCache, wrapped]) await model.invoke(messages);
      const chunks = await drain(await wrapped.stream(messages));
      // Background writes land, then every contender must hit.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const before = up.calls;
      const chunk = 20;
      const rows = await interleave(
        '10 langchain hit',
        [
          { name: 'LangChain InMemoryCache (ChatOpenAI cache option)', run: () => forAbout(blockMs, () => sequential(chunk, () => theirs.invoke(messages))) },
          { name: 'cachekit LangChainCache, memory (the same option)', run: () => forAbout(blockMs, () => sequential(chunk, () => viaBaseCache.invoke(messages))) },
          { name: 'cachekit cachedChatModel, memory: invoke', run: () => forAbout(blockMs, () => sequential(chunk, () => wrapped.invoke(messages))) },
          { name: 'cachekit cachedChatModel, memory: stream (replayed)', run: () => forAbout(blockMs, () => sequential(chunk, async () => drain(await wrapped.stream(messages)))) },
        ],
        { rounds },
      );
      if (up.calls !== before) throw new Error(`a hit went upstream (${up.calls - before} calls)`);
      const [inMemory, baseCache, invoke, stream] = rows;
      const reference = 'LangChain InMemoryCache (ChatOpenAI cache option)';
      const table = {
        title: '10. LangChain hit, ChatOpenAI, 2 KB completion',
        unit: 'µs per call',
        reference,
        rows: withRatios(rows, reference).map((r) => ({ ...r, display: (1e6 / r.opsPerSec).toFixed(1), ratio: inMemory.opsPerSec / r.opsPerSec })),
      };
      const ratioOf = (row) => inMemory.opsPerSec / row.opsPerSec;
      const checks = [
        check('LangChain hit: cachedChatModel invoke vs InMemoryCache', '<= 1.1x the time', `${ratioOf(invoke).toFixed(2)}x`, ratioOf(invoke) <= 1.1),
        check('LangChain hit: LangChainCache vs InMemoryCache', '<= 1.1x the time', `${ratioOf(baseCache).toFixed(2)}x`, ratioOf(baseCache) <= 1.1),
        check(
          'LangChain streamed hit (InMemoryCache has none)',
          'reported',
          `${(1e6 / stream.opsPerSec).toFixed(1)} µs per replayed stream of ${chunks} chunks (${(1e6 / stream.opsPerSec / chunks).toFixed(1)} µs a chunk)`,
          true,
          `${(stream.opsPerSec / inMemory.opsPerSec).toFixed(2)}x InMemoryCache's invoke rate`,
        ),
      ];
      return { tables: [table], checks };
    } finally {
      await memory.close();
    }
  },
};
