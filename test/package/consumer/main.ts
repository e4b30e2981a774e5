// A user's program, compiled by the consumer test (test/package/package.test.ts)
// twice against the packed tarball: as ESM (module node16) and as CommonJS
// (module commonjs, node10 resolution). It runs the guide's example and checks,
// at compile time, that wrapped functions keep their types.
import { cacheGet, cacheSet, cacheStats, createDragonflyCache, createMemoryCache, memoizeTask, withCache, withCacheControl, type Cache } from 'cachekit';
import { cachedOpenAI } from 'cachekit/openai';
import OpenAI from 'openai';
import type { Stream } from 'openai/core/streaming';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

function check(what: string, ok: boolean): void {
  if (!ok) throw new Error(`consumer check failed: ${what}`);
}

interface User {
  name: string;
  email: string;
}

class Gateway {
  calls = 0;
  async generate(prompt: string, temperature = 0): Promise<string> {
    this.calls++;
    return `answer to ${prompt} at ${temperature}`;
  }
}

interface Task {
  id: string;
  input: string;
}

/** An OpenAI-compatible upstream in a `fetch`: JSON for plain calls, SSE for `stream: true`. */
function fakeFetch(counter: { calls: number }): typeof fetch {
  return async (_url, init) => {
    counter.calls++;
    const body = JSON.parse(String(init?.body)) as { stream?: boolean; model: string };
    const base = { id: `chatcmpl-${counter.calls}`, created: 1, model: body.model };
    if (!body.stream) {
      const completion = { ...base, object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'hi', refusal: null } }], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } };
      return new Response(JSON.stringify(completion), { status: 200, headers: { 'content-type': 'application/json' } });
    }
    const chunks = [
      { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: 'h' }, finish_reason: null }] },
      { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'i' }, finish_reason: 'stop' }] },
    ];
    const sse = `${chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('')}data: [DONE]\n\n`;
    return new Response(sse, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
}

async function guide(cache: Cache): Promise<void> {
  check('cacheSet', await cacheSet(cache, 'user:123', { name: 'John', email: 'john@example.com' }, { ttl: 300 }));
  const user = await cacheGet<User>(cache, 'user:123');
  assertType<Equal<typeof user, User | undefined>>();
  check('cacheGet', user?.name === 'John');
  check('tenant set', await cache.set('config:app', { theme: 'dark' }, { tenantId: 'tenant_123' }));
  check('tenant get', (await cache.get('config:app')) === undefined);
}

async function main(): Promise<void> {
  const cache = createMemoryCache({ defaultTtl: 600, maxSize: 1000 });
  await guide(cache);
  const url = process.env.REDIS_URL;
  if (url) {
    const dragonfly = await createDragonflyCache({ url, keyPrefix: `consumer${process.pid}`, defaultTtl: 600 });
    try {
      await guide(dragonfly);
      await dragonfly.clear();
    } finally {
      await dragonfly.close();
    }
  }

  const gateway = new Gateway();
  const cached = withCache(gateway, { cache, ttl: 3600 });
  assertType<Equal<typeof cached, Gateway>>();
  const first = await cached.generate('What is AI?');
  const second = await cached.generate('What is AI?');
  assertType<Equal<typeof second, string>>();
  check('withCache hit', first === second && gateway.calls === 1);
  const refreshed = await withCacheControl({ refresh: true }, () => cached.generate('What is AI?'));
  assertType<Equal<typeof refreshed, string>>();
  check('withCacheControl refresh', refreshed === first && gateway.calls === 2);

  let runs = 0;
  const runTask = memoizeTask(async (task: Task) => ({ id: task.id, output: `${task.input}!`, run: ++runs }), { cache, namespace: 'task:run', key: (task) => task.id });
  assertType<Equal<typeof runTask, (task: Task) => Promise<{ id: string; output: string; run: number }>>>();
  const a = await runTask({ id: 't1', input: 'go' });
  const b = await runTask({ id: 't1', input: 'go' });
  check('memoizeTask', a.run === 1 && b.run === 1);

  const upstream = { calls: 0 };
  const openai = cachedOpenAI(new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1', maxRetries: 0, fetch: fakeFetch(upstream) }), { cache, ttl: 3600 });
  assertType<Equal<typeof openai, OpenAI>>();
  const messages = [{ role: 'user' as const, content: 'Hi' }];
  const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
  const typedCompletion: ChatCompletion = completion;
  const again = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
  check('cachedOpenAI hit', typedCompletion.id === again.id && upstream.calls === 1);

  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
  const typedStream: Stream<ChatCompletionChunk> = stream;
  // @ts-expect-error the `stream: true` overload answers a Stream, never a ChatCompletion
  const notACompletion: ChatCompletion = stream;
  void notACompletion;
  let text = '';
  for await (const chunk of typedStream) text += chunk.choices[0]?.delta.content ?? '';
  const replay = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
  let replayed = '';
  for await (const chunk of replay) replayed += chunk.choices[0]?.delta.content ?? '';
  check('cachedOpenAI stream replay', text === 'hi' && replayed === 'hi' && upstream.calls === 2);
  const stats = cacheStats(openai);
  check('cacheStats', stats.hits === 2 && stats.misses === 2);

  await cache.close();
  console.log('consumer ok');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
