import { OpenAI } from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cacheStats, cachedOpenAI } from '../../integrations/openai/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { callers, type CheckedCall } from '../helpers/caller-load.js';
import { outages, RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';
import { describeWith } from '../helpers/skips.js';

/**
 * The sibling of fail-open.test.ts for `cachedOpenAI`: the real `openai` SDK
 * against the local wire-format server, a Dragonfly cache on a private
 * redis-server that the test kills, pauses and disconnects, and callers that
 * count every exception that reaches them.
 */

const COMMAND_TIMEOUT = 300;
const QUESTIONS = Array.from({ length: 12 }, (_, i) => `question ${i}`);
const CHAT_MODEL = 'gpt-4o-mini';
const EMBEDDING_MODEL = 'text-embedding-3-small';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report: string[] = [];

let server: WireServer;
/** What upstream answers to each question, read once through the plain SDK before any fault. */
const truth = { chat: new Map<string, string>(), stream: new Map<string, string>(), embedding: new Map<string, number[]>() };

const sdk = () => new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 });
const chatParams = (q: string) => ({ model: CHAT_MODEL, messages: [{ role: 'user' as const, content: q }] });

async function streamText(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

stopRedisServersAfterAll();
beforeAll(async () => {
  server = await startOpenAIWireServer();
  const plain = sdk();
  for (const q of QUESTIONS) {
    truth.chat.set(q, (await plain.chat.completions.create(chatParams(q))).choices[0]?.message.content ?? '');
    truth.stream.set(q, await streamText(await plain.chat.completions.create({ ...chatParams(q), stream: true })));
    truth.embedding.set(q, (await plain.embeddings.create({ model: EMBEDDING_MODEL, input: q })).data[0]!.embedding);
  }
});
afterAll(async () => {
  await server?.close();
  if (report.length > 0) console.log(`[reliability] cachedOpenAI fails open (chat, stream, embeddings on a hurt redis-server)\n${report.join('\n')}`);
});

type Call = (question: string, other: string) => Promise<boolean>;

function calls(cached: OpenAI): Record<string, Call> {
  return {
    chat: async (q) => (await cached.chat.completions.create(chatParams(q))).choices[0]?.message.content === truth.chat.get(q),
    stream: async (q) => (await streamText(await cached.chat.completions.create({ ...chatParams(q), stream: true }))) === truth.stream.get(q),
    // Two items, so partial hits (one cached, one not) happen too.
    embeddings: async (q, other) => {
      const { data } = await cached.embeddings.create({ model: EMBEDDING_MODEL, input: [q, other] });
      return JSON.stringify(data.map((d) => d.embedding)) === JSON.stringify([truth.embedding.get(q), truth.embedding.get(other)]);
    },
  };
}

const pick = () => QUESTIONS[Math.floor(Math.random() * QUESTIONS.length)] as string;
let asked = 0;

/** Upstream's answers to a question nobody asked before, read through the plain SDK. */
async function learn(q: string): Promise<void> {
  const plain = sdk();
  const [chat, stream, embedding] = await Promise.all([
    plain.chat.completions.create(chatParams(q)),
    plain.chat.completions.create({ ...chatParams(q), stream: true }).then(streamText),
    plain.embeddings.create({ model: EMBEDDING_MODEL, input: q }),
  ]);
  truth.chat.set(q, chat.choices[0]?.message.content ?? '');
  truth.stream.set(q, stream);
  truth.embedding.set(q, embedding.data[0]!.embedding);
}

/** `fresh`: every call asks new questions, so each is a miss that must store. */
function checked(all: Record<string, Call>, fresh: boolean): Record<string, CheckedCall> {
  return Object.fromEntries(
    Object.entries(all).map(([name, call]) => [
      name,
      async () => {
        if (!fresh) return call(pick(), pick());
        const [q, other] = [`fresh ${asked++}`, `fresh ${asked++}`];
        await Promise.all([learn(q), learn(other)]);
        return call(q, other);
      },
    ]),
  );
}

async function faultUnderCalls(
  name: string,
  fault: (redis: RedisServer) => Promise<void>,
  options: { maxmemory?: number; fresh?: boolean; slowestMs?: number } = {},
) {
  const redis = await RedisServer.start(options);
  const cache = await createDragonflyCache({ url: redis.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'failopen-openai' });
  try {
    const cached = cachedOpenAI(sdk(), { cache, ttl: 60 });
    const load = callers(checked(calls(cached), options.fresh === true));
    await sleep(300);
    await fault(redis);
    await sleep(300);
    await load.stop();
    const { tally } = load;
    const { hits, errors } = cacheStats(cached);
    report.push(
      `  ${name}: faults ${redis.faults}, calls ${tally.calls} (cache hits ${hits}, cache errors absorbed ${errors}), exceptions escaped ${tally.escaped}, wrong answers ${tally.wrong}, slowest call ${tally.maxMs.toFixed(0)} ms ${JSON.stringify(tally.slowest)}`,
    );
    // The cache took part: answers were served from it while it was up (fresh questions never hit).
    if (!options.fresh) expect(hits).toBeGreaterThan(0);
    if (options.slowestMs !== undefined) expect(tally.maxMs).toBeLessThan(options.slowestMs);
    expect(tally.firstEscape).toBeUndefined();
    expect(tally.escaped).toBe(0);
    expect(tally.wrong).toBe(0);
    for (const endpoint of ['chat', 'stream', 'embeddings']) expect(tally.slowest[endpoint], endpoint).toBeDefined();
  } finally {
    await cache.close();
    await redis.stop();
  }
}

describeWith('redis-server')('cachedOpenAI on a Dragonfly cache keeps answering from upstream during faults', () => {
  it('SIGKILL and restart: no exception reaches a caller of chat, stream or embeddings, every answer is upstream’s', async () => {
    await faultUnderCalls('SIGKILL 1.5 s + restart', (redis) => outages.killAndRestart(redis, 1500));
  });

  it('SIGSTOP and SIGCONT: no exception reaches a caller of chat, stream or embeddings, every answer is upstream’s, none waits much past one commandTimeout', async () => {
    // A miss waits for its read's timeout only, a live stream's end never for its write.
    await faultUnderCalls('SIGSTOP 2 s + SIGCONT', (redis) => outages.pauseFor(redis, 2000), { slowestMs: COMMAND_TIMEOUT + 200 });
  });

  it('CLIENT KILL: no exception reaches a caller of chat, stream or embeddings, every answer is upstream’s', async () => {
    await faultUnderCalls('CLIENT KILL x3', (redis) => outages.killClientsThrice(redis));
  });

  it('a server full under noeviction: every call a miss, no exception reaches a caller of chat, stream or embeddings, every answer is upstream’s', async () => {
    await faultUnderCalls('maxmemory 4 MB full (noeviction), misses only', (redis) => outages.fill(redis, COMMAND_TIMEOUT), {
      maxmemory: 4 * 1024 * 1024,
      fresh: true,
      // A refused write answers at once: a bound far below a hang, above the plain SDK calls that learn each fresh answer.
      slowestMs: 1500,
    });
  });
});
