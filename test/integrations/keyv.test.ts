import { createCache } from 'cache-manager';
import Keyv5 from 'keyv';
import Keyv6 from 'keyv6';
import { describe, expect, it } from 'vitest';
import { KeyvCachekit } from '../../integrations/keyv/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { keyvBehaviours, type KeyvLike, type KeyvMajor } from './keyv/behaviours.js';

const keyv5: KeyvMajor = {
  major: 5,
  keyv: (options) => new Keyv5(options) as unknown as KeyvLike,
  ttlArgument: (ms) => ms,
};
const keyv6: KeyvMajor = {
  major: 6,
  keyv: (options) => new Keyv6(options) as unknown as KeyvLike,
  ttlArgument: (ms) => Date.now() + ms,
};

describeEachBackend('KeyvCachekit under keyv 5', (ctx) => keyvBehaviours(keyv5, ctx));
describeEachBackend('KeyvCachekit under keyv 6', (ctx) => keyvBehaviours(keyv6, ctx));

describe('KeyvCachekit options', () => {
  it('refuses a misspelt option at construction, naming the one meant', () => {
    expect(() => new KeyvCachekit(createMemoryCache(), { tenantID: 'acme' } as never)).toThrow('KeyvCachekit: unknown option "tenantID" (did you mean "tenantId"?)');
  });

  it('refuses a bad tenant and anything that is not a cachekit cache', () => {
    expect(() => new KeyvCachekit(createMemoryCache(), { tenantId: '' })).toThrow(/tenantId must not be empty/);
    expect(() => new KeyvCachekit(new Map() as never)).toThrow(/KeyvCachekit: cache must be a cachekit Cache/);
    expect(() => new KeyvCachekit(createMemoryCache(), null as never)).toThrow(/options must be an object/);
  });

  it('speaks Keyv 5’s contract until Keyv 6 asks for its capabilities', async () => {
    const cache = createMemoryCache();
    const store = new KeyvCachekit(cache);
    // Keyv 5's relative milliseconds: an hour from now.
    await store.set('k', 'v', 3_600_000);
    expect(store.capabilities).toMatchObject({ compatible: true, store: 'keyvStorage', expires: true });
    // Keyv 6's absolute expiry: one that passed removes the entry.
    await store.set('k', 'v', Date.now() - 1);
    expect(await store.get('k')).toBeUndefined();
  });
});

describeEachBackend('cache-manager 7 over KeyvCachekit', ({ cache }) => {
  const manager = () => createCache({ stores: [new Keyv5({ store: new KeyvCachekit(cache()) })] });

  it('gets, sets, deletes and reports the remaining TTL through Keyv', async () => {
    const m = manager();
    await m.set('user:1', { name: 'Ada' }, 60_000);
    expect(await m.get('user:1')).toEqual({ name: 'Ada' });
    const expires = await m.ttl('user:1');
    expect(expires! - Date.now()).toBeGreaterThan(59_000);
    await m.del('user:1');
    expect(await m.get('user:1')).toBeUndefined();
  });

  it('wraps a function: one call, then its stored value, expired in the cache by the TTL', async () => {
    const m = manager();
    let calls = 0;
    const load = async () => ({ n: ++calls });
    expect(await m.wrap('k', load, 150)).toEqual({ n: 1 });
    expect(await m.wrap('k', load, 150)).toEqual({ n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const keys: string[] = [];
    for await (const key of cache().keys('keyv:*')) keys.push(key);
    expect(keys).toEqual([]);
    expect(await m.wrap('k', load, 150)).toEqual({ n: 2 });
  });
});
