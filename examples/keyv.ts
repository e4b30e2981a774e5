// cache-manager (on Keyv 5) storing through KeyvCachekit into a cachekit cache:
// `wrap` around a chat completion misses once, then hits; the entry sits under
// keyv:<namespace>:<key> in the tenant's scope, expires in the cache itself,
// and the cache's own stats count Keyv's reads and writes. Offline by default
// (a local OpenAI wire-format server answering after 300 ms); set REDIS_URL to
// cache on Dragonfly/Redis.
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import OpenAI from 'openai';
import { KeyvCachekit } from '../integrations/keyv/index.js';
import { openCache, timed } from './support/demo.js';
import { startOpenAIWireServer } from '../test/helpers/openai-wire-server.js';

async function main(): Promise<void> {
  const server = await startOpenAIWireServer({ latencyMs: 300 });
  const openai = new OpenAI({ baseURL: server.url, apiKey: 'offline' });
  const cache = await openCache('example-keyv');
  console.log(`cache: ${cache.kind}; upstream: local wire-format server at ${server.url}\n`);

  try {
    const keyv = new Keyv({ store: new KeyvCachekit(cache, { tenantId: 'acme' }), namespace: 'answers' });
    keyv.on('error', (error) => console.error('cache error:', error));
    const manager = createCache({ stores: [keyv] });
    const ask = () =>
      manager.wrap(
        'what-is-ai',
        async () => {
          const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What is AI?' }] });
          return completion.choices[0]?.message.content ?? '';
        },
        60_000, // cache-manager's TTL, in milliseconds: 60 s in the cache
      );

    const answer = await timed('miss: manager.wrap (calls upstream)', ask);
    await timed('hit:  manager.wrap again', ask);
    await timed('hit:  manager.get', () => manager.get('what-is-ai'));
    console.log(`answer: ${answer}`);

    await cache.set('v1:openai:other-entry', 'an LLM wrapper entry in the same cache', { tenantId: 'acme' });
    const keys: string[] = [];
    for await (const key of cache.keys('*', { tenantId: 'acme' })) keys.push(key);
    console.log(`keys in tenant acme: ${JSON.stringify(keys.sort())}`);
    await keyv.clear();
    const left: string[] = [];
    for await (const key of cache.keys('*', { tenantId: 'acme' })) left.push(key);
    console.log(`after keyv.clear(): ${JSON.stringify(left)}`);

    const { hits, misses, sets, errors } = await cache.stats({ tenantId: 'acme' });
    console.log('\ncache stats for tenant acme:', { hits, misses, sets, errors }, `upstream calls: ${server.calls('chat/completions')}`);
  } finally {
    await cache.close();
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
