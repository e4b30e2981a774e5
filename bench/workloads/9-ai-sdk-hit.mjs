// Workload 9: a hit through cachekit/ai-sdk's cacheMiddleware on a memory
// cache, against the AI SDK's own caching recipe (docs: "Caching Responses")
// over a Map, in the same process, interleaved: generateText and streamText,
// and the wrapped model's doGenerate/doStream alone (the middleware's own
// cost, without the framework's). The recipe keys on JSON.stringify(params),
// hands back the stored object itself and replays parts with
// simulateReadableStream; its published replay waits 10 ms between parts, run
// here without any delay (`null`: a `0` still waits a timer per part), like
// cacheMiddleware's default, so only the mechanics compare.
//
// `ai` comes from the repository's node_modules (a dev dependency); run alone
// with `node bench/workloads/9-ai-sdk-hit.mjs` after `npm run build`.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateText, simulateReadableStream, streamText, wrapLanguageModel } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { check, forAbout, interleave, proposal, sequential, withRatios } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const prompt = 'How do I rotate the API key of a service account without downtime?';
const system = 'You are a concise assistant for an internal support desk.';
const usage = { inputTokens: { total: 40, noCache: 40, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 300, text: 300, reasoning: 0 } };
const finishReason = { unified: 'stop', raw: 'stop' };
// About 2 KB of answer, streamed as 100 deltas.
const words = Array.from({ length: 100 }, (_, i) => `word${i} of the answer `);

function model() {
  let upstream = 0;
  const mock = new MockLanguageModelV4({
    doGenerate: async () => {
      upstream++;
      return {
        content: [{ type: 'text', text: words.join('') }],
        finishReason,
        usage,
        response: { id: 'resp-1', timestamp: new Date(), modelId: 'bench-model' },
        warnings: [],
      };
    },
    doStream: async () => {
      upstream++;
      return {
        stream: simulateReadableStream({
          initialDelayInMs: null,
          chunkDelayInMs: null,
          chunks: [
            { type: 'stream-start', warnings: [] },
            { type: 'response-metadata', id: 'resp-1', timestamp: new Date(), modelId: 'bench-model' },
            { type: 'text-start', id: '0' },
            ...words.map((delta) => ({ type: 'text-delta', id: '0', delta })),
            { type: 'text-end', id: '0' },
            { type: 'finish', finishReason, usage },
          ],
        }),
      };
    },
  });
  return { mock, upstream: () => upstream };
}

/** The AI SDK recipe's middleware with its Redis swapped for a Map, as its docs suggest for local use. */
function recipeMiddleware() {
  const cache = new Map();
  return {
    specificationVersion: 'v4',
    wrapGenerate: async ({ doGenerate, params }) => {
      const cacheKey = JSON.stringify(params);
      if (cache.has(cacheKey)) return cache.get(cacheKey);
      const result = await doGenerate();
      cache.set(cacheKey, result);
      return result;
    },
    wrapStream: async ({ doStream, params }) => {
      const cacheKey = JSON.stringify(params);
      if (cache.has(cacheKey)) return { stream: simulateReadableStream({ initialDelayInMs: null, chunkDelayInMs: null, chunks: cache.get(cacheKey) }) };
      const { stream, ...rest } = await doStream();
      const parts = [];
      const recorder = new TransformStream({
        transform(part, controller) {
          parts.push(part);
          controller.enqueue(part);
        },
        flush() {
          cache.set(cacheKey, parts);
        },
      });
      return { stream: stream.pipeThrough(recorder), ...rest };
    },
  };
}

async function readAll(stream) {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

const params = { prompt: [{ role: 'system', content: system }, { role: 'user', content: [{ type: 'text', text: prompt }] }] };
// The recipe keys doGenerate and doStream alike (JSON.stringify(params)), so a
// stream asked with the params of a stored generate result replays that result
// as a stream of no parts: the model-level stream case asks with other params.
const streamParams = { ...params, temperature: 0 };

const workload = {
  id: 9,
  title: 'AI SDK hit: cacheMiddleware on memory vs the AI SDK caching recipe over a Map',
  async run({ ck, rounds, blockMs }) {
    const aiSdk = await import(pathToFileURL(join(here, '..', '..', 'dist', 'ai-sdk.js')).href);
    const cache = ck.createMemoryCache();
    const shared = ck.createMemoryCache({ byReference: true });
    const ours = model();
    const theirs = model();
    const cached = wrapLanguageModel({ model: ours.mock, middleware: aiSdk.cacheMiddleware({ cache, ttl: 3600 }) });
    // Not a contender: hits that share the stored objects, as the recipe's do, to show what private copies cost.
    const byReference = wrapLanguageModel({ model: ours.mock, middleware: aiSdk.cacheMiddleware({ cache: shared, ttl: 3600 }) });
    const recipe = wrapLanguageModel({ model: theirs.mock, middleware: recipeMiddleware() });
    const ask = (m) => generateText({ model: m, system, prompt });
    const stream = (m) => streamText({ model: m, system, prompt }).text;

    // One miss each, then check that both answer from their caches.
    for (const m of [cached, recipe, byReference]) {
      await ask(m);
      await stream(m);
      await m.doGenerate(params);
      await readAll((await m.doStream(streamParams)).stream);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [a, b] = [await ask(cached), await ask(recipe)];
    if (a.text !== b.text || a.providerMetadata?.cachekit?.hit !== true) throw new Error('cacheMiddleware did not answer generateText from the cache');
    if ((await stream(cached)) !== words.join('') || (await stream(recipe)) !== words.join('')) throw new Error('a replay lost text');
    for (const m of [cached, recipe]) {
      const parts = await readAll((await m.doStream(streamParams)).stream);
      if (parts !== words.length + 5) throw new Error(`a doStream replay (${m === cached ? "cacheMiddleware" : "recipe"}) gave ${parts} parts, not ${words.length + 5}`);
    }
    const calls = [ours.upstream(), theirs.upstream()];
    const { key } = (await cached.doGenerate(params)).providerMetadata.cachekit;
    const keyInput = { provider: ours.mock.provider, modelId: ours.mock.modelId, type: 'generate', params };
    if (ck.requestKey(keyInput, { namespace: 'ai-sdk' }) !== key) throw new Error('the floor does not derive the key cacheMiddleware uses');

    const tables = [];
    const checks = [];
    const cases = [
      ['generateText hit', (m) => ask(m), 20],
      ['streamText hit (100 text deltas, read to the end)', (m) => stream(m), 5],
      ['model.doGenerate hit (the middleware alone)', (m) => m.doGenerate(params), 200],
      ['model.doStream hit, parts read to the end (the middleware alone)', async (m) => readAll((await m.doStream(streamParams)).stream), 20],
    ];
    for (const [label, call, chunk] of cases) {
      const model = label.startsWith('model.doGenerate');
      const rows = await interleave(
        `9 ai-sdk ${label}`,
        [
          { name: 'AI SDK recipe over a Map', run: () => forAbout(blockMs, () => sequential(chunk, () => call(recipe))) },
          { name: 'cacheMiddleware on a memory cache', run: () => forAbout(blockMs, () => sequential(chunk, () => call(cached))) },
          { name: 'cacheMiddleware on a byReference memory cache (hits share objects)', run: () => forAbout(blockMs, () => sequential(chunk, () => call(byReference))) },
          // Not a contender: the least a cache that keys by content and hands out private copies does on a hit.
          ...(model ? [{ name: 'floor: the same request key + memory get of the entry', run: () => forAbout(blockMs, () => sequential(chunk, () => (ck.requestKey(keyInput, { namespace: 'ai-sdk' }), cache.get(key)))) }] : []),
        ],
        { rounds },
      );
      const [map, ck9, , floor] = rows;
      const ratio = map.opsPerSec / ck9.opsPerSec;
      tables.push({
        title: `9. AI SDK ${label}`,
        unit: 'µs per call',
        reference: 'AI SDK recipe over a Map',
        rows: withRatios(rows, 'AI SDK recipe over a Map').map((r) => ({ ...r, display: (1e6 / r.opsPerSec).toFixed(2), ratio: map.opsPerSec / r.opsPerSec })),
      });
      const streamed = label.includes('tream');
      if (!model) {
        checks.push(check(`AI SDK ${label} vs the recipe over a Map`, streamed ? '<= 1.0x the time (replays at least as fast)' : '<= 1.1x the time', `${ratio.toFixed(2)}x`, ratio <= (streamed ? 1.0 : 1.1)));
        continue;
      }
      // The recipe's hit is JSON.stringify + Map.get, handing back the stored object itself;
      // no cache that hashes the request and gives each caller its own copy gets near it.
      const overFloor = floor.opsPerSec / ck9.opsPerSec;
      checks.push(
        proposal(`AI SDK ${label} vs its request key + memory get`, '<= 1.5x the time', `${overFloor.toFixed(2)}x`, overFloor <= 1.5, `vs the recipe over a Map: ${ratio.toFixed(2)}x`),
      );
    }
    if (ours.upstream() !== calls[0] || theirs.upstream() !== calls[1]) throw new Error('a hit went upstream');
    await cache.close();
    await shared.close();
    return { tables, checks };
  },
};
export default workload;

// Alone: `node bench/workloads/9-ai-sdk-hit.mjs [--quick]`.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const ck = await import(pathToFileURL(join(here, '..', '..', 'dist', 'index.js')).href);
  const out = await workload.run({ ck, quick, rounds: quick ? 3 : 9, blockMs: quick ? 30 : 150 });
  for (const t of out.tables) {
    console.log(`\n${t.title}\n\n| Contender | ${t.unit} (median) | vs ${t.reference} |\n|---|---:|---:|`);
    for (const r of t.rows) console.log(`| ${r.name} | ${r.display} | ${r.ratio.toFixed(2)}x |`);
  }
  console.log('\n| Target | Required | Measured | Result |\n|---|---|---|---|');
  for (const c of out.checks) console.log(`| ${c.name}${c.proposed ? ' (proposed)' : ''} | ${c.target} | ${c.actual}${c.detail ? ` (${c.detail})` : ''} | ${c.pass ? 'PASS' : '**FAIL**'} |`);
}
