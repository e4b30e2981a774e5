import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { codeOf } from '../../src/llm/code-identity.js';
import { requestKey } from '../../src/llm/request-key.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeEachBackend } from '../helpers/llm-backends.js';

interface QueryOptions {
  topK?: number;
  filters?: Record<string, string>;
}

/** The guide's RAG system: `rag.query("What is AI?")`, answering from whatever its corpus holds now. */
class Rag {
  readonly #docs: string[];
  queries = 0;
  constructor(docs: string[]) {
    this.#docs = docs;
  }

  async query(question: string, options: QueryOptions = {}) {
    this.queries++;
    const sources = this.#docs.slice(0, options.topK ?? 2);
    return { answer: `${question} -> ${sources.join(' | ')}`, sources, usage: { total_tokens: 50 } };
  }

  addDocument(doc: string): void {
    this.#docs.unshift(doc);
  }

  get size(): number {
    return this.#docs.length;
  }
}

describeEachBackend('cachedRag', ({ cache }) => {
  it('answers the second identical question from the cache', async () => {
    const rag = new Rag(['AI is ...', 'ML is ...']);
    const cached = cachedRag(rag, { cache: cache() });
    const first = await cached.query('What is AI?');
    expect(await cached.query('What is AI?')).toEqual(first);
    expect(rag.queries).toBe(1);
    expect(cacheStats(cached)).toMatchObject({ hits: 1, misses: 1, tokensSaved: 50 });
  });

  it('keeps the RAG object usable: other methods and getters reach the real object', async () => {
    const rag = new Rag(['a']);
    const cached = cachedRag(rag, { cache: cache() });
    cached.addDocument('b');
    expect(cached.size).toBe(2);
    expect(cached instanceof Rag).toBe(true);
  });

  it('wraps a plain async query function the same way', async () => {
    let calls = 0;
    const query = async (question: string, options?: QueryOptions) => {
      calls++;
      return `${question} (top ${options?.topK ?? 3})`;
    };
    const cached = cachedRag(query, { cache: cache() });
    expect(await cached('q')).toBe('q (top 3)');
    expect(await cached('q', undefined)).toBe('q (top 3)');
    expect(calls).toBe(1);
  });

  it('keys on the retrieval options: another top-k or filter is another answer', async () => {
    const rag = new Rag(['a', 'b', 'c']);
    const cached = cachedRag(rag, { cache: cache() });
    await cached.query('q', { topK: 1 });
    await cached.query('q', { topK: 3 });
    await cached.query('q', { topK: 3, filters: { lang: 'en' } });
    await cached.query('q', { topK: 3, filters: { lang: 'fr' } });
    await cached.query('q', { filters: { lang: 'fr' }, topK: 3 });
    expect(rag.queries).toBe(4);
  });

  it('serves no old answer after the corpus version is bumped', async () => {
    const rag = new Rag(['old doc']);
    let version = 'v1';
    const cached = cachedRag(rag, { cache: cache(), corpusVersion: async () => version });
    expect((await cached.query('q')).answer).toContain('old doc');
    rag.addDocument('new doc');
    version = 'v2';
    expect((await cached.query('q')).answer).toContain('new doc');
    expect((await cached.query('q')).answer).toContain('new doc');
    expect(rag.queries).toBe(2);
  });

  it('shares answers between wrappers only when namespace and corpus version match', async () => {
    const c = cache();
    const rags = [new Rag(['a']), new Rag(['a']), new Rag(['a']), new Rag(['a'])];
    await cachedRag(rags[0]!, { cache: c, corpusVersion: '2024-06' }).query('q');
    await cachedRag(rags[1]!, { cache: c, corpusVersion: '2024-06' }).query('q');
    await cachedRag(rags[2]!, { cache: c, corpusVersion: '2024-07' }).query('q');
    await cachedRag(rags[3]!, { cache: c, corpusVersion: '2024-06', namespace: 'rag:legal' }).query('q');
    expect(rags.map((r) => r.queries)).toEqual([1, 0, 1, 1]);
  });

  it('stores under v1:rag:<sha256>, so clearPattern("v1:rag:*") invalidates every answer', async () => {
    const c = cache();
    const rag = new Rag(['a']);
    const cached = cachedRag(rag, { cache: c, corpusVersion: 'c1' });
    await cached.query('q1', { topK: 1 });
    await cached.query('q2');
    expect(await c.get(requestKey({ corpus: 'c1', code: codeOf(Rag.prototype.query), input: ['q1', { topK: 1 }] }, { namespace: 'rag' }))).toBeDefined();
    await c.set('unrelated', 1);
    expect(await c.clearPattern('v1:rag:*')).toBe(2);
    await cached.query('q1', { topK: 1 });
    expect(rag.queries).toBe(3);
    expect(await c.get('unrelated')).toBe(1);
  });

  it('never serves one tenant answers built from another tenant’s documents', async () => {
    const c = cache();
    const acme = new Rag(['acme secret']);
    const globex = new Rag(['globex secret']);
    await cachedRag(acme, { cache: c, tenantId: 'acme' }).query('What is our plan?');
    const answer = await cachedRag(globex, { cache: c, tenantId: 'globex' }).query('What is our plan?');
    expect(answer.answer).toContain('globex secret');
    const shared = cachedRag(new Rag(['x']), { cache: c });
    await withCacheControl({ tenantId: 'acme' }, () => shared.query('What is our plan?'));
    expect(cacheStats(shared).hits).toBe(1);
  });

  it('makes concurrent identical questions cost one retrieval', async () => {
    let calls = 0;
    const cached = cachedRag(
      async (q: string) => {
        calls++;
        await sleep(30);
        return q;
      },
      { cache: cache() },
    );
    await Promise.all(Array.from({ length: 8 }, () => cached('same')));
    expect(calls).toBe(1);
  });

  it('honours per-call refresh and bypass', async () => {
    const rag = new Rag(['a']);
    const cached = cachedRag(rag, { cache: cache() });
    await cached.query('q');
    await withCacheControl({ refresh: true }, () => cached.query('q'));
    await withCacheControl({ bypass: true }, () => cached.query('q'));
    await cached.query('q');
    expect(rag.queries).toBe(3);
  });
});

describe('cachedRag failures', () => {
  it('answers from the RAG when the cache is down, counting the errors', async () => {
    const rag = new Rag(['a']);
    const cached = cachedRag(rag, { cache: createFailingCache() });
    await cached.query('q');
    await cached.query('q');
    expect(rag.queries).toBe(2);
    expect(cacheStats(cached).errors).toBe(4);
  });

  it('goes upstream uncached when the corpus version cannot be read', async () => {
    const rag = new Rag(['a']);
    const cached = cachedRag(rag, {
      cache: createMemoryCache(),
      corpusVersion: async () => {
        throw new Error('index unreachable');
      },
    });
    expect((await cached.query('q')).answer).toContain('a');
    expect(cacheStats(cached)).toMatchObject({ errors: 1, bypasses: 1, misses: 0 });
  });

  it('rejects a query with a validation CacheError when corpusVersion() returns no string', async () => {
    const cached = cachedRag(new Rag(['a']), { cache: createMemoryCache(), corpusVersion: () => 42 as unknown as string });
    await expect(cached.query('q')).rejects.toMatchObject({ errorType: 'validation' });
  });

  it('throws a validation CacheError at once for bad options or a target without query()', () => {
    const cache = createMemoryCache();
    for (const make of [
      () => cachedRag(new Rag([]), { cache, corpusVersion: '' }),
      () => cachedRag(new Rag([]), { cache, namespace: 'rag*' }),
      () => cachedRag(new Rag([]), { cache, ttl: -1 }),
      () => cachedRag({} as never, { cache }),
      () => cachedRag(new Rag([]), { cache: {} as never }),
    ]) {
      expect(make).toThrow(CacheError);
    }
  });
});
