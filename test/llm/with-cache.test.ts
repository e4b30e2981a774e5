import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { codeOf } from '../../src/llm/code-identity.js';
import { explainKey } from '../../src/llm/explain-key.js';
import { requestKey } from '../../src/llm/request-key.js';
import { withCache } from '../../src/llm/with-cache.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { RedisServer } from '../helpers/redis-server.js';
import { itWith } from '../helpers/skips.js';

/** The guide's gateway: `gateway.generate("What is AI?")`, with a private field so `this` must be the real object. */
class Gateway {
  readonly #apiKey = 'sk-test';
  calls = 0;
  constructor(
    readonly model = 'gpt-4o-mini',
    readonly baseURL = 'https://llm.example/v1',
  ) {}

  async generate(prompt: string, options: { temperature?: number } = {}) {
    this.calls++;
    return { text: `${this.model} says ${prompt} (${this.#apiKey.length}, t=${options.temperature ?? 1}, call ${this.calls})`, usage: { total_tokens: 30 } };
  }

  async fail(prompt: string): Promise<string> {
    this.calls++;
    throw new Error(`upstream refused ${prompt}`);
  }

  describe(): string {
    return `${this.model} with ${this.#apiKey.length}-character key`;
  }
}

/** An SDK-shaped client: `client.chat.completions.create(req)`, where `create` relies on `this`. */
function sdkClient(baseURL: string) {
  const completions = {
    calls: 0,
    transport: { send: async (req: { model: string; messages: unknown[] }) => ({ id: 'cmpl', model: req.model, usage: { total_tokens: 7 } }) },
    async create(this: { calls: number; transport: { send: (req: { model: string; messages: unknown[] }) => Promise<unknown> } }, req: { model: string; messages: unknown[] }) {
      this.calls++;
      return this.transport.send(req);
    },
  };
  return { baseURL, chat: { completions } };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describeEachBackend('withCache', ({ cache }) => {
  it('answers the second identical call from the cache with the first answer', async () => {
    const gw = new Gateway();
    const cached = withCache(gw, { cache: cache() });
    const first = await cached.generate('What is AI?');
    const second = await cached.generate('What is AI?');
    expect(second).toEqual(first);
    expect(gw.calls).toBe(1);
    expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 1, bypasses: 0, errors: 0 });
  });

  it('keys on every argument: other prompts and other options go upstream', async () => {
    const gw = new Gateway();
    const cached = withCache(gw, { cache: cache() });
    await cached.generate('What is AI?');
    await cached.generate('What is ML?');
    await cached.generate('What is AI?', { temperature: 0 });
    await cached.generate('What is AI?', { temperature: 0 });
    expect(gw.calls).toBe(3);
  });

  it('caches a nested method path and runs it with its own object as this', async () => {
    const client = sdkClient('https://a.example/v1');
    const cached = withCache(client, { cache: cache(), methods: ['chat.completions.create'] });
    const req = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const first = await cached.chat.completions.create(req);
    expect(await cached.chat.completions.create(req)).toEqual(first);
    expect(client.chat.completions.calls).toBe(1);
    expect(cached.chat.completions).toBe(cached.chat.completions);
  });

  it('stores under v1:<method path>:<sha256> by default and v1:<namespace>:<sha256> when given', async () => {
    const c = cache();
    const plain = withCache(new Gateway(), { cache: c });
    const named = withCache(new Gateway(), { cache: c, namespace: 'gw' });
    await plain.generate('a');
    await named.generate('a');
    const identity = { model: 'gpt-4o-mini', baseURL: 'https://llm.example/v1' };
    const input = { method: 'generate', code: codeOf(Gateway.prototype.generate), identity, input: ['a'] };
    expect((await explainKey(plain.generate, 'a')).key).toBe(requestKey(input, { namespace: 'generate' }));
    expect(await c.get(requestKey(input, { namespace: 'generate' }))).toMatchObject({ value: { text: expect.stringContaining('says a') } });
    expect(await c.get(requestKey(input, { namespace: 'gw' }))).toBeDefined();
    expect(await c.clearPattern('v1:gw:*')).toBe(1);
  });

  it('leaves synchronous methods and plain properties as they are, private fields included', async () => {
    const gw = new Gateway('m1');
    const cached = withCache(gw, { cache: cache() });
    expect(cached.describe()).toBe('m1 with 7-character key');
    expect(cached.model).toBe('m1');
    expect(cached instanceof Gateway).toBe(true);
  });

  it('never shares entries between gateways with different default models or base URLs', async () => {
    const c = cache();
    const a = new Gateway('gpt-4o-mini', 'https://a.example');
    const b = new Gateway('llama-3', 'https://a.example');
    const d = new Gateway('gpt-4o-mini', 'https://b.example');
    const twin = new Gateway('gpt-4o-mini', 'https://a.example');
    for (const gw of [a, b, d, twin]) await withCache(gw, { cache: c }).generate('What is AI?');
    expect([a.calls, b.calls, d.calls, twin.calls]).toEqual([1, 1, 1, 0]);
  });

  it('keeps wrappers with different namespaces apart', async () => {
    const c = cache();
    const a = new Gateway();
    const b = new Gateway();
    await withCache(a, { cache: c, namespace: 'team-a' }).generate('q');
    await withCache(b, { cache: c, namespace: 'team-b' }).generate('q');
    expect(b.calls).toBe(1);
  });

  it('makes N concurrent identical misses cost one upstream call', async () => {
    const { wait, open } = gate();
    let upstream = 0;
    const target = {
      async generate(prompt: string) {
        upstream++;
        await wait;
        return `answer to ${prompt}`;
      },
    };
    const cached = withCache(target, { cache: cache() });
    const calls = Array.from({ length: 10 }, () => cached.generate('same'));
    await sleep(20);
    open();
    expect(await Promise.all(calls)).toEqual(Array(10).fill('answer to same'));
    expect(upstream).toBe(1);
  });

  it('uses a custom key so arguments that do not change the answer are ignored', async () => {
    const gw = new Gateway();
    const cached = withCache(gw, { cache: cache(), key: ([prompt]) => prompt });
    await cached.generate('q', { temperature: 0 });
    await cached.generate('q', { temperature: 1 });
    expect(gw.calls).toBe(1);
  });

  it('does not cache rejections, nor results shouldCache refuses', async () => {
    const gw = new Gateway();
    const cached = withCache(gw, { cache: cache(), shouldCache: (result) => !String((result as { text: string }).text).includes('skip') });
    await expect(cached.fail('x')).rejects.toThrow('upstream refused x');
    await expect(cached.fail('x')).rejects.toThrow('upstream refused x');
    await cached.generate('skip me');
    await cached.generate('skip me');
    expect(gw.calls).toBe(4);
  });

  describe('per-call controls (withCacheControl)', () => {
    it('bypass neither reads nor writes', async () => {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: cache() });
      await cached.generate('q');
      const fresh = await withCacheControl({ bypass: true }, () => cached.generate('q'));
      expect(fresh.text).toContain('call 2');
      await withCacheControl({ bypass: true }, () => cached.generate('new'));
      await cached.generate('new');
      // The bypassed 'new' was not stored, so the plain call goes upstream too.
      expect(gw.calls).toBe(4);
      expect(cacheStats(cached).bypasses).toBe(2);
    });

    it('refresh skips the read and stores the fresh result for later calls', async () => {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: cache() });
      await cached.generate('q');
      const refreshed = await withCacheControl({ refresh: true }, () => cached.generate('q'));
      expect(refreshed.text).toContain('call 2');
      expect((await cached.generate('q')).text).toContain('call 2');
      expect(gw.calls).toBe(2);
    });

    it('noStore reads but does not write', async () => {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: cache() });
      await withCacheControl({ noStore: true }, () => cached.generate('q'));
      await cached.generate('q');
      expect(gw.calls).toBe(2);
      await withCacheControl({ noStore: true }, () => cached.generate('q'));
      expect(gw.calls).toBe(2);
    });

    it('a ttl override makes the entry expire sooner than the wrapper ttl', async () => {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: cache(), ttl: 3600 });
      await withCacheControl({ ttl: 0.05 }, () => cached.generate('short'));
      await cached.generate('long');
      await sleep(120);
      await cached.generate('short');
      await cached.generate('long');
      expect(gw.calls).toBe(3);
    });

    it('does not change the wrapped types: the result is the bare answer', async () => {
      const cached = withCache(new Gateway(), { cache: cache() });
      const answer: { text: string } = await withCacheControl({ refresh: true }, () => cached.generate('q'));
      expect(Object.keys(answer).sort()).toEqual(['text', 'usage']);
    });
  });

  describe('tenants', () => {
    it('never serves one fixed tenant the answers of another', async () => {
      const c = cache();
      const a = new Gateway();
      const b = new Gateway();
      await withCache(a, { cache: c, tenantId: 'acme' }).generate('q');
      await withCache(b, { cache: c, tenantId: 'globex' }).generate('q');
      await withCache(b, { cache: c }).generate('q');
      expect(b.calls).toBe(2);
      expect(await c.get(requestKey({ method: 'generate', code: codeOf(Gateway.prototype.generate), identity: { model: 'gpt-4o-mini', baseURL: 'https://llm.example/v1' }, input: ['q'] }, { namespace: 'generate' }), { tenantId: 'acme' })).toBeDefined();
    });

    it('takes the tenant per call from withCacheControl, overriding the fixed one', async () => {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: cache(), tenantId: 'acme' });
      await withCacheControl({ tenantId: 'globex' }, () => cached.generate('q'));
      await cached.generate('q');
      await withCacheControl({ tenantId: 'globex' }, () => cached.generate('q'));
      expect(gw.calls).toBe(2);
    });
  });

  describe('stats', () => {
    it('counts hits, misses, bypasses, tokens saved and upstream latency saved', async () => {
      const target = {
        async generate(prompt: string) {
          await sleep(15);
          return { prompt, usage: { total_tokens: 100 } };
        },
      };
      const cached = withCache(target, { cache: cache() });
      await cached.generate('a');
      await cached.generate('a');
      await cached.generate('a');
      await withCacheControl({ bypass: true }, () => cached.generate('a'));
      const stats = cacheStats(cached);
      expect(stats).toMatchObject({ hits: 2, misses: 1, bypasses: 1, errors: 0, tokensSaved: 200 });
      expect(stats.latencySavedMs).toBeGreaterThan(0);
    });

    it('hands out a copy, so callers cannot corrupt the counters', async () => {
      const cached = withCache(new Gateway(), { cache: cache() });
      await cached.generate('a');
      cacheStats(cached).misses = 99;
      expect(cacheStats(cached).misses).toBe(1);
    });
  });
});

describe('withCache without a working cache', () => {
  it('answers every call from upstream when the cache rejects, counting each failure', async () => {
    const gw = new Gateway();
    const cached = withCache(gw, { cache: createFailingCache() });
    expect((await cached.generate('q')).text).toContain('call 1');
    expect((await cached.generate('q')).text).toContain('call 2');
    // Each call: one failed read and one failed write.
    expect(cacheStats(cached)).toMatchObject({ hits: 0, misses: 2, errors: 4 });
  });

  it('answers from upstream, uncached and counted in errors, once its cache is closed (getOrSet itself rejects)', async () => {
    const gw = new Gateway();
    const cache = createMemoryCache();
    const cached = withCache(gw, { cache });
    await cached.generate('q');
    await cache.close();
    expect((await cached.generate('q')).text).toContain('call 2');
    expect(cacheStats(cached).errors).toBeGreaterThanOrEqual(1);
    await expect(cache.getOrSet('k', async () => 1)).rejects.toMatchObject({ errorType: 'closed' });
  });

  itWith('redis-server')('keeps answering when the Dragonfly server is killed mid-run', async () => {
    const server = await RedisServer.start();
    const c = await createDragonflyCache({ url: server.url, keyPrefix: 'outage', commandTimeout: 200 });
    try {
      const gw = new Gateway();
      const cached = withCache(gw, { cache: c });
      await cached.generate('q');
      await cached.generate('q');
      expect(gw.calls).toBe(1);
      await server.kill();
      await sleep(50);
      expect((await cached.generate('q')).text).toContain('call 2');
      expect(cacheStats(cached).errors).toBeGreaterThanOrEqual(1);
    } finally {
      await server.stop();
      await c.close();
    }
  });
});

describe('withCache arguments that cannot be keyed', () => {
  it('sends calls holding a function or an AbortSignal upstream, uncached, counted as bypasses', async () => {
    let calls = 0;
    const target = {
      async run(input: string, options?: { onToken?: (t: string) => void; signal?: AbortSignal }) {
        calls++;
        options?.onToken?.(input);
        return input;
      },
    };
    const cached = withCache(target, { cache: createMemoryCache() });
    const signal = new AbortController().signal;
    await cached.run('a', { onToken: () => {} });
    await cached.run('a', { onToken: () => {} });
    await cached.run('a', { signal });
    await cached.run('a', { signal });
    expect(calls).toBe(4);
    expect(cacheStats(cached)).toMatchObject({ bypasses: 4, hits: 0, misses: 0 });
  });
});

describe('withCache arguments that cannot be keyed, deeper', () => {
  it('bypasses a signal at any depth and class instances it cannot see into, never rejecting the call', async () => {
    let calls = 0;
    const target = {
      async run(input: unknown) {
        calls++;
        return String(calls);
      },
    };
    const cached = withCache(target, { cache: createMemoryCache() });
    const signal = new AbortController().signal;
    class Credentials {
      readonly #token: string;
      constructor(token: string) {
        this.#token = token;
      }
      get length() {
        return this.#token.length;
      }
    }
    for (const input of [{ deep: { deeper: [signal] } }, new Headers({ a: '1' }), new Blob(['x']), new Credentials('alice'), new Credentials('bob')]) {
      await cached.run(input);
    }
    expect(calls).toBe(5);
    expect(cacheStats(cached)).toMatchObject({ bypasses: 5, hits: 0, misses: 0, errors: 0 });
  });

  it('caches a call whose key function leaves its signal out, but never shares its upstream call', async () => {
    let calls = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const target = {
      async run(input: string, options: { signal: AbortSignal }) {
        calls++;
        await gate;
        options.signal.throwIfAborted();
        return input;
      },
    };
    const cached = withCache(target, { cache: createMemoryCache(), key: ([input]) => input });
    const aborted = new AbortController();
    const first = cached.run('a', { signal: aborted.signal });
    const second = cached.run('a', { signal: new AbortController().signal });
    aborted.abort();
    open();
    await expect(first).rejects.toThrow();
    await expect(second).resolves.toBe('a');
    expect(calls).toBe(2);
    await cached.run('a', { signal: new AbortController().signal });
    expect(calls).toBe(2);
  });

  it('sends a call upstream uncached when its key function throws, counting a bypass and an error', async () => {
    const target = { async run(input: string) { return input.toUpperCase(); } };
    const cached = withCache(target, {
      cache: createMemoryCache(),
      key: () => {
        throw new Error('key function bug');
      },
    });
    expect(await cached.run('a')).toBe('A');
    expect(cacheStats(cached)).toMatchObject({ bypasses: 1, errors: 1 });
  });
});

describe('withCache keeps the runtime type of what it wraps', () => {
  it('refuses at wrap time a listed method that is not an async function, saying why and what to do', () => {
    const target = {
      promised(q: string) {
        return Promise.resolve(q);
      },
      sync(q: string) {
        return q;
      },
      async real(q: string) {
        return q;
      },
    };
    for (const method of ['promised', 'sync']) {
      expect(() => withCache(target, { cache: createMemoryCache(), methods: [method] })).toThrow(
        expect.objectContaining({ errorType: 'validation', message: expect.stringContaining(`${method} is not an async function`) }),
      );
    }
    expect(() => withCache(target, { cache: createMemoryCache(), methods: ['real'] })).not.toThrow();
  });

  it('refuses the openai SDK’s create, whose APIPromise a plain Promise would replace, pointing to cachedOpenAI', () => {
    const client = new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1' });
    expect(() => withCache(client, { cache: createMemoryCache(), methods: ['chat.completions.create'] })).toThrow(/cachedOpenAI/);
  });

  it('refuses, without methods, a target that has no async function to cache', () => {
    const target = {
      generate(q: string) {
        return Promise.resolve(q);
      },
    };
    expect(() => withCache(target, { cache: createMemoryCache() })).toThrow(expect.objectContaining({ errorType: 'validation', message: expect.stringContaining('generate') }));
  });

  it('says once, with a process warning, that a non-async method returning a Promise is left uncached, and counts its calls as bypasses', async () => {
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on('warning', listen);
    try {
      let calls = 0;
      class Compiled {
        async cached(q: string) {
          return q;
        }
        // What tsc's __awaiter output or a promise-returning helper looks like at run time.
        legacy(q: string): Promise<string> {
          calls++;
          return Promise.resolve(`${q} ${calls}`);
        }
        count(): number {
          return calls;
        }
      }
      const wrapped = withCache(new Compiled(), { cache: createMemoryCache() });
      expect(await wrapped.legacy('a')).toBe('a 1');
      expect(await wrapped.legacy('a')).toBe('a 2');
      expect(wrapped.count()).toBe(2);
      await new Promise((resolve) => setImmediate(resolve));
      const ours = warnings.filter((w) => (w as { code?: string }).code === 'CACHEKIT_UNCACHED_METHOD');
      expect(ours).toHaveLength(1);
      expect(ours[0]!.message).toContain('legacy');
      expect(cacheStats(wrapped)).toMatchObject({ bypasses: 2, hits: 0, misses: 0 });
    } finally {
      process.off('warning', listen);
    }
  });
});

describe('withCache options', () => {
  it('throws a validation CacheError at once for bad options', () => {
    const cache = createMemoryCache();
    const bad = [
      () => withCache(new Gateway(), {} as never),
      () => withCache(new Gateway(), { cache, ttl: 0 }),
      () => withCache(new Gateway(), { cache, tenantId: '' }),
      () => withCache(new Gateway(), { cache, namespace: 'a*' }),
      () => withCache(new Gateway(), { cache, methods: ['missing'] }),
      () => withCache(new Gateway(), { cache, methods: ['chat.completions.create'] }),
      () => withCache(new Gateway(), { cache, methods: [] }),
      () => withCache(null as never, { cache }),
    ];
    for (const make of bad) {
      expect(make).toThrow(CacheError);
    }
  });

  it('refuses cacheStats on an object no wrapper returned', () => {
    expect(() => cacheStats(new Gateway())).toThrow(CacheError);
  });
});
