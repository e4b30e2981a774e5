import { afterAll, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { Cache } from '../../src/core/types.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { withCache } from '../../src/llm/with-cache.js';
import { callers, type CheckedCall } from '../helpers/caller-load.js';
import { outages, RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

const COMMAND_TIMEOUT = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report: string[] = [];

stopRedisServersAfterAll();
afterAll(() => {
  if (report.length > 0) console.log(`[reliability] LLM wrappers fail open (withCache, cachedRag, @Cached, memoizeTask on a hurt redis-server)\n${report.join('\n')}`);
});

/** What every upstream answers: a pure function of the question, so a wrong cached answer shows. */
const upstreamAnswer = (wrapper: string, question: string) => ({ wrapper, question, answer: question.split('').reverse().join('') });

type Call = (question: string) => Promise<unknown>;

function wrappers(cache: Cache): Record<string, Call> {
  const gateway = withCache(
    { model: 'test-model', generate: async (question: string) => upstreamAnswer('withCache', question) },
    { cache, ttl: 60 },
  );
  const rag = cachedRag(async (question: string) => upstreamAnswer('cachedRag', question), { cache, ttl: 60, corpusVersion: 'v1' });
  class Service {
    async ask(question: string) {
      return upstreamAnswer('@Cached', question);
    }
  }
  // Applied the way experimentalDecorators (NestJS) does: vitest's transform leaves `@` syntax to Node, which lacks it.
  const ask = Object.getOwnPropertyDescriptor(Service.prototype, 'ask') as TypedPropertyDescriptor<Service['ask']>;
  Object.defineProperty(Service.prototype, 'ask', Cached({ cache, ttl: 60, namespace: 'fail-open.Service.ask' })(Service.prototype, 'ask', ask));
  const service = new Service();
  const task = memoizeTask(async (question: string) => upstreamAnswer('memoizeTask', question), { cache, ttl: 60, namespace: 'fail-open-task', lockTtl: 2 });
  return {
    withCache: (q) => gateway.generate(q),
    cachedRag: (q) => rag(q),
    '@Cached': (q) => service.ask(q),
    memoizeTask: (q) => task(q),
  };
}

let asked = 0;

/**
 * Each wrapper called with random questions; right when it equals upstream's answer.
 * `fresh` questions are never asked twice, so every call is a miss that must store.
 */
function checked(calls: Record<string, Call>, fresh: boolean): Record<string, CheckedCall> {
  return Object.fromEntries(
    Object.entries(calls).map(([name, call]) => [
      name,
      async () => {
        const question = fresh ? `fresh${asked++}` : `q${Math.floor(Math.random() * 20)}`;
        return JSON.stringify(await call(question)) === JSON.stringify(upstreamAnswer(name, question));
      },
    ]),
  );
}

async function faultUnderCalls(
  name: string,
  fault: (server: RedisServer) => Promise<void>,
  options: { maxmemory?: number; fresh?: boolean; slowestMs?: number } = {},
) {
  const server = await RedisServer.start(options);
  const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'failopen' });
  try {
    const load = callers(checked(wrappers(cache), options.fresh === true));
    await sleep(300);
    await fault(server);
    await sleep(300);
    await load.stop();
    const { tally } = load;
    report.push(`  ${name}: faults ${server.faults}, wrapper calls ${tally.calls}, exceptions escaped ${tally.escaped}, wrong answers ${tally.wrong}, slowest call ${tally.maxMs.toFixed(0)} ms ${JSON.stringify(tally.slowest)}`);
    expect(tally.firstEscape).toBeUndefined();
    expect(tally.escaped).toBe(0);
    expect(tally.wrong).toBe(0);
    expect(tally.calls).toBeGreaterThan(0);
    if (options.slowestMs !== undefined) expect(tally.maxMs).toBeLessThan(options.slowestMs);
  } finally {
    await cache.close();
    await server.stop();
  }
}

describeWith('redis-server')('LLM wrappers on a Dragonfly cache keep answering from upstream during faults', () => {
  it('SIGKILL and restart: no exception reaches a caller, every answer is upstream’s', async () => {
    await faultUnderCalls('SIGKILL 1.5 s + restart', (server) => outages.killAndRestart(server, 1500));
  });

  it('SIGSTOP and SIGCONT: no exception reaches a caller, every answer is upstream’s, none waits much past one commandTimeout', async () => {
    // A miss waits for its read's timeout only: the write (and memoizeTask's lock) never holds the caller.
    await faultUnderCalls('SIGSTOP 2.5 s + SIGCONT', (server) => outages.pauseFor(server, 2500), { slowestMs: COMMAND_TIMEOUT + 150 });
  });

  it('CLIENT KILL: no exception reaches a caller, every answer is upstream’s', async () => {
    await faultUnderCalls('CLIENT KILL x3', (server) => outages.killClientsThrice(server));
  });

  it('a server full under noeviction: every call a miss, no exception reaches a caller, every answer is upstream’s, none hangs', async () => {
    // Fresh questions: each call must store (and memoizeTask lock) on a server that refuses writes.
    await faultUnderCalls('maxmemory 4 MB full (noeviction), misses only', (server) => outages.fill(server, COMMAND_TIMEOUT), {
      maxmemory: 4 * 1024 * 1024,
      fresh: true,
      // A refused write or lock answers at once: nothing waits (wave 1's memoizeTask waited forever).
      slowestMs: 1000,
    });
  });
});
