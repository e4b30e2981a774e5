import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { cachedOpenAI } from '../../integrations/openai/index.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { cachedRag } from '../../src/llm/cached-rag.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { memoizeTask } from '../../src/llm/memoize-task.js';
import { requestKey } from '../../src/llm/request-key.js';
import { withCache } from '../../src/llm/with-cache.js';

const cache = createMemoryCache();
const gateway = { model: 'm', generate: async (q: string) => q };
const client = new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1' });

function refused(make: () => unknown, message: string | RegExp): void {
  expect(make).toThrow(expect.objectContaining({ name: 'CacheError', errorType: 'validation', message: expect.stringMatching(message) }));
}

describe('the LLM layer says no instead of guessing', () => {
  it('refuses an option name no wrapper reads, naming the one probably meant', () => {
    refused(() => withCache(gateway, { cache, TTL: 60 } as never), /withCache: unknown option "TTL" \(did you mean "ttl"\?\)/);
    refused(() => cachedRag(async (q: string) => q, { cache, tenantID: 'a' } as never), /cachedRag: unknown option "tenantID" \(did you mean "tenantId"\?\)/);
    refused(() => Cached({ cache, namepsace: 'x' } as never), /@Cached: unknown option "namepsace" \(did you mean "namespace"\?\)/);
    refused(() => memoizeTask(async function task() {}, { cache, lockTTL: 5 } as never), /memoizeTask: unknown option "lockTTL" \(did you mean "lockTtl"\?\)/);
    refused(() => cachedOpenAI(client, { cache, shouldcache: () => true } as never), /cachedOpenAI: unknown option "shouldcache" \(did you mean "shouldCache"\?\)/);
    refused(() => requestKey({ a: 1 }, { nameSpace: 'x' } as never), /requestKey: unknown option "nameSpace" \(did you mean "namespace"\?\)/);
  });

  it('refuses missing or non-object options with the object form', () => {
    refused(() => withCache(gateway, undefined as never), /withCache: options are required/);
    refused(() => cachedRag(async (q: string) => q, 60 as never), /cachedRag: options must be an object/);
    refused(() => memoizeTask(async function task() {}, null as never), /memoizeTask: options must be an object/);
  });

  it('refuses a misspelt or mistyped per-call control at once, before running fn', () => {
    let ran = false;
    const run = () => {
      ran = true;
    };
    refused(() => withCacheControl({ byPass: true } as never, run), /withCacheControl: unknown option "byPass" \(did you mean "bypass"\?\)/);
    refused(() => withCacheControl({ refresh: 'yes' } as never, run), /withCacheControl: refresh must be true or false, got "yes" \(a string\)/);
    refused(() => withCacheControl({ ttl: '60' } as never, run), /ttl must be a positive number of seconds or Infinity, got "60" \(a string\)/);
    refused(() => withCacheControl({ tenantId: '' }, run), /tenantId/);
    refused(() => withCacheControl(undefined as never, run), /controls are required/);
    refused(() => withCacheControl({}, 'not a function' as never), /fn must be a function, got "not a function" \(a string\)/);
    expect(ran).toBe(false);
  });

  it('quotes what it got, with its type', () => {
    refused(() => withCache(gateway, { cache, ttl: '60' as never }), /withCache: ttl must be a positive number of seconds or Infinity, got "60" \(a string\)/);
    refused(() => cachedRag(async (q: string) => q, { cache, namespace: 'a b' }), /got "a b" \(a string\)/);
    refused(() => withCache(gateway, { cache: 'redis://x' as never }), /options.cache must be a cachekit Cache .*got "redis:\/\/x" \(a string\)/);
    refused(() => withCache(gateway, { cache, key: 'id' as never }), /withCache: key must be a function, got "id" \(a string\)/);
  });
});
