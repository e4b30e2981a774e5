// cachedRag around a RAG pipeline (the guide's `rag.query("What is AI?")` twice,
// the second from cache). Offline: a fake retriever + generator that sleeps like
// the real thing. Set REDIS_URL to cache on Dragonfly/Redis.
import { cacheStats, cachedRag, withCacheControl } from '../src/index.js';
import { openCache, timed } from './support/demo.js';

interface QueryOptions {
  topK?: number;
  filters?: { lang?: string };
}

/** Retrieves the top-k documents and "generates" an answer from them in 300 ms. */
class FakeRag {
  private readonly docs: { text: string; lang: string }[] = [
    { text: 'AI is the field of building systems that perform tasks needing intelligence.', lang: 'en' },
    { text: 'Machine learning is a subfield of AI that learns from data.', lang: 'en' },
    { text: "L'IA est l'étude des systèmes intelligents.", lang: 'fr' },
  ];
  version = 1;

  async query(question: string, options: QueryOptions = {}) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sources = this.docs.filter((d) => !options.filters?.lang || d.lang === options.filters.lang).slice(0, options.topK ?? 2);
    return { answer: `${question} ${sources[0]?.text ?? 'No documents.'}`, sources: sources.map((s) => s.text), usage: { total_tokens: 180 } };
  }

  addDocument(text: string, lang = 'en'): void {
    this.docs.unshift({ text, lang });
    this.version++;
  }
}

async function main(): Promise<void> {
  const cache = await openCache('example-rag');
  const rag = new FakeRag();
  // The corpus version is read at each query: adding a document makes old answers unreachable.
  const cached = cachedRag(rag, { cache, ttl: 3600, corpusVersion: () => `corpus-${rag.version}` });
  console.log(`cache: ${cache.kind}\n`);

  await timed('miss: query("What is AI?")', () => cached.query('What is AI?'));
  const hit = await timed('hit:  query("What is AI?")', () => cached.query('What is AI?'));
  console.log(`answer: ${hit.answer}\n`);

  await timed('miss: other retrieval options (topK 1, lang fr)', () => cached.query('What is AI?', { topK: 1, filters: { lang: 'fr' } }));
  await timed('miss: tenant "acme" never sees the shared answers', () => withCacheControl({ tenantId: 'acme' }, () => cached.query('What is AI?')));

  cached.addDocument('AI news: a new model was released today.');
  const fresh = await timed('miss: a document was added (corpus version bumped)', () => cached.query('What is AI?'));
  console.log(`answer: ${fresh.answer}`);
  await timed('hit:  same question on the new corpus', () => cached.query('What is AI?'));

  console.log(`\ncache.clearPattern('v1:rag:*') removed ${await cache.clearPattern('v1:rag:*')} untenanted answers`);
  await timed('miss: after the pattern clear', () => cached.query('What is AI?'));

  const stats = cacheStats(cached);
  console.log('\nstats:', { ...stats, latencySavedMs: Math.round(stats.latencySavedMs) });
  await cache.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
