import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { tokensOf } from '../../src/llm/entry.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { withCache } from '../../src/llm/with-cache.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { holdWrites } from '../helpers/held-writes.js';
import { describeEachBackend } from '../helpers/llm-backends.js';

interface Answer {
  question: string;
  words: string[];
  usage: { total_tokens: number };
}

/** An upstream that counts its calls and, while `gate` is set, waits for it. */
function upstream() {
  const state = { calls: 0, gate: undefined as Promise<void> | undefined };
  const answer = async (asked: unknown): Promise<Answer> => {
    state.calls++;
    if (state.gate) await state.gate;
    const question = typeof asked === 'string' ? asked : Object.prototype.toString.call(asked);
    return { question, words: question.split(' '), usage: { total_tokens: 12 } };
  };
  return { state, answer };
}

type Wrapped = { call: (question: string) => Promise<Answer>; stats: () => ReturnType<typeof cacheStats> };

/** Every core wrapper over one upstream, so one behaviour is specified once for all of them. */
const wrappers: Record<string, (cache: Cache, answer: (q: string) => Promise<Answer>) => Wrapped> = {
  withCache(cache, answer) {
    const gateway = withCache({ model: 'm', generate: async (q: string) => answer(q) }, { cache });
    return { call: (q) => gateway.generate(q), stats: () => cacheStats(gateway) };
  },
  cachedRag(cache, answer) {
    const rag = cachedRag(async (q: string) => answer(q), { cache });
    return { call: (q) => rag(q), stats: () => cacheStats(rag) };
  },
  '@Cached'(cache, answer) {
    class Service {
      async ask(q: string) {
        return answer(q);
      }
    }
    const descriptor = Object.getOwnPropertyDescriptor(Service.prototype, 'ask') as TypedPropertyDescriptor<Service['ask']>;
    Object.defineProperty(Service.prototype, 'ask', Cached({ cache, namespace: 'engine.Service.ask' })(Service.prototype, 'ask', descriptor));
    const service = new Service();
    return { call: (q) => service.ask(q), stats: () => cacheStats(Service.prototype.ask) };
  },
  memoizeTask(cache, answer) {
    const task = memoizeTask(async (q: string) => answer(q), { cache, namespace: 'engine-task' });
    return { call: (q) => task(q), stats: () => cacheStats(task) };
  },
};

/** Rejects when `promise` takes longer than `ms`: a call that waits for its write would hang the test instead. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))]);
}

for (const [name, wrap] of Object.entries(wrappers)) {
  describeEachBackend(`the cached-call engine under ${name}`, ({ cache }) => {
    it('answers a miss before its cache write lands, and an identical call made meanwhile from that answer', async () => {
      const held = holdWrites(cache());
      const { state, answer } = upstream();
      const wrapped = wrap(held.cache, answer);
      const first = await within(wrapped.call('what is ai'), 2000, 'a miss whose write is held');
      expect(held.pending()).toBe(1);
      const again = await within(wrapped.call('what is ai'), 2000, 'a call made while the write is held');
      expect(state.calls).toBe(1);
      expect(again).toEqual(first);
      expect(again).not.toBe(first);
      held.release();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await wrapped.call('what is ai')).toEqual(first);
      expect(state.calls).toBe(1);
      expect(wrapped.stats()).toMatchObject({ hits: 2, misses: 1, tokensSaved: 24, errors: 0, writesDropped: 0 });
    });

    it('gives every caller who joined a running miss a private copy, and the caller who started it upstream’s own answer', async () => {
      const { state, answer } = upstream();
      let open!: () => void;
      state.gate = new Promise<void>((resolve) => (open = resolve));
      const wrapped = wrap(cache(), answer);
      const calls = Array.from({ length: 5 }, () => wrapped.call('shared question'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      open();
      const answers = await Promise.all(calls);
      expect(state.calls).toBe(1);
      for (const a of answers) expect(a).toEqual(answers[0]);
      expect(new Set(answers).size).toBe(5);
      expect(new Set(answers.map((a) => a.words)).size).toBe(5);
      answers[0]!.words.push('changed');
      expect(answers[1]!.words).toEqual(['shared', 'question']);
    });

    it('answers a caller who comes after the answer with the answer as upstream gave it, though the first caller changed its own', async () => {
      const held = holdWrites(cache());
      const { answer } = upstream();
      const wrapped = wrap(held.cache, answer);
      const first = await wrapped.call('mutable answer');
      first.words.length = 0;
      first.question = 'changed by the first caller';
      expect(await wrapped.call('mutable answer')).toEqual({ question: 'mutable answer', words: ['mutable', 'answer'], usage: { total_tokens: 12 } });
      held.release();
    });

    it('does not let a refresh take an answer that was already there when it was asked', async () => {
      const held = holdWrites(cache());
      const { state, answer } = upstream();
      const wrapped = wrap(held.cache, answer);
      await wrapped.call('refresh me');
      await withCacheControl({ refresh: true }, () => wrapped.call('refresh me'));
      expect(state.calls).toBe(2);
      held.release();
    });

    it('sends a call whose argument the key cannot encode upstream uncached, counted as a bypass, never rejected', async () => {
      class Secret {
        readonly #value: string;
        constructor(value: string) {
          this.#value = value;
        }
        reveal() {
          return this.#value;
        }
      }
      const { state, answer } = upstream();
      const wrapped = wrap(cache(), answer);
      const call = wrapped.call as (argument: unknown) => Promise<Answer>;
      const odd = [new AbortController().signal, new Headers(), new Blob(['b']), new Request('http://localhost/'), new WeakRef({}), new Secret('a'), new Secret('b'), { nested: [new Secret('c')] }];
      for (const argument of odd) expect((await call(argument)).usage.total_tokens).toBe(12);
      expect(state.calls).toBe(odd.length);
      expect(wrapped.stats()).toMatchObject({ bypasses: odd.length, hits: 0, misses: 0, errors: 0 });
    });

    it('answers but does not store past 1 000 writes in flight, counting them in writesDropped', async () => {
      const held = holdWrites(cache());
      const { state, answer } = upstream();
      const wrapped = wrap(held.cache, answer);
      const answers = await Promise.all(Array.from({ length: 1005 }, (_, i) => wrapped.call(`question ${i}`)));
      expect(answers.map((a) => a.question)).toEqual(Array.from({ length: 1005 }, (_, i) => `question ${i}`));
      expect(state.calls).toBe(1005);
      expect(held.pending()).toBe(1000);
      expect(wrapped.stats()).toMatchObject({ misses: 1005, writesDropped: 5, errors: 0 });
      held.release();
    });
  });

  describe(`the cached-call engine under ${name}, on a memory cache that refuses an entry`, () => {
    it('answers from upstream and counts the refused write in writesDropped', async () => {
      const { state, answer } = upstream();
      const wrapped = wrap(createMemoryCache({ maxBytes: 64 }), answer);
      const question = 'a question whose stored answer is much larger than sixty-four bytes';
      expect((await wrapped.call(question)).question).toBe(question);
      await new Promise((resolve) => setTimeout(resolve, 10));
      // No lock on the memory backend (one process), so nothing else is refused.
      expect(wrapped.stats()).toMatchObject({ misses: 1, writesDropped: 1, errors: 0 });
      await wrapped.call(question);
      expect(state.calls).toBe(2);
    });
  });
}

describe('results the cache cannot encode', () => {
  it('are answered to every caller but neither stored nor copied, counted as an error', async () => {
    class Handle {
      readonly #fd = 7;
      fd(): number {
        return this.#fd;
      }
    }
    let calls = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gateway = withCache(
      {
        async open(name: string) {
          calls++;
          await gate;
          return new Handle();
        },
      },
      { cache: createMemoryCache() },
    );
    const pending = [gateway.open('a'), gateway.open('a')];
    open();
    const [one, two] = await Promise.all(pending);
    expect(one).toBeInstanceOf(Handle);
    expect(two).toBe(one);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toBe(1);
    expect(cacheStats(gateway)).toMatchObject({ errors: 1, hits: 0 });
    await gateway.open('a');
    expect(calls).toBe(2);
  });
});

describe('tokensOf', () => {
  it('reads the usage shapes of OpenAI, Anthropic, the Responses API and the AI SDK', () => {
    expect(tokensOf({ usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })).toBe(15);
    expect(tokensOf({ usage: { prompt_tokens: 10, completion_tokens: 5 } })).toBe(15);
    expect(tokensOf({ usage: { input_tokens: 20, output_tokens: 7 } })).toBe(27);
    expect(tokensOf({ usage: { input_tokens: 20, output_tokens: 7, total_tokens: 27 } })).toBe(27);
    expect(tokensOf({ usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } })).toBe(7);
    expect(tokensOf({ usage: { inputTokens: 3, outputTokens: 4 } })).toBe(7);
    expect(tokensOf({ usage: { inputTokens: { total: 30, noCache: 30 }, outputTokens: { total: 9, text: 9 } } })).toBe(39);
    expect(tokensOf({ usage: null })).toBeUndefined();
    expect(tokensOf({ text: 'no usage' })).toBeUndefined();
    expect(tokensOf('a string')).toBeUndefined();
  });

  it('is replaced by a wrapper’s countTokens', async () => {
    const gateway = withCache(
      { model: 'm', generate: async (q: string) => ({ q, meta: { cost: { tokens: 41 } } }) },
      { cache: createMemoryCache(), countTokens: (result) => (result as { meta: { cost: { tokens: number } } }).meta.cost.tokens },
    );
    await gateway.generate('x');
    await gateway.generate('x');
    expect(cacheStats(gateway)).toMatchObject({ hits: 1, tokensSaved: 41 });
  });
});

describe('different functions under one namespace never share entries', () => {
  // A new user's finding: `run` of two classes (or two tasks named `handle`) shared keys, and one got the other's answer.
  it('withCache keys on the method’s code, so two classes’ `run` answer for themselves', async () => {
    const cache = createMemoryCache();
    class Summarizer {
      async run(text: string) {
        return `SUMMARY of ${text}`;
      }
    }
    class Translator {
      async run(text: string) {
        return `TRANSLATION of ${text}`;
      }
    }
    const summarize = withCache(new Summarizer(), { cache });
    const translate = withCache(new Translator(), { cache });
    expect(await summarize.run('hello')).toBe('SUMMARY of hello');
    expect(await translate.run('hello')).toBe('TRANSLATION of hello');
    // Two instances of one class still share, as before.
    expect(await withCache(new Summarizer(), { cache }).run('hello')).toBe('SUMMARY of hello');
    expect(cacheStats(summarize)).toMatchObject({ misses: 1 });
  });

  it('memoizeTask and cachedRag key on the function’s code, so two functions of one name stay apart', async () => {
    const cache = createMemoryCache();
    const first = memoizeTask(async function handle(x: number) { return `first:${x}`; }, { cache });
    const second = memoizeTask(async function handle(x: number) { return `second:${x}`; }, { cache });
    expect(await first(1)).toBe('first:1');
    expect(await second(1)).toBe('second:1');
    const ragA = cachedRag(async (q: string) => `A:${q}`, { cache });
    const ragB = cachedRag(async (q: string) => `B:${q}`, { cache });
    expect(await ragA('q')).toBe('A:q');
    expect(await ragB('q')).toBe('B:q');
  });
});
