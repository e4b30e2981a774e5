import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { cp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createDragonflyCache, type DragonflyCacheOptions } from '../../src/backends/dragonfly.js';
import { type CacheError, DragonflyConnectionError } from '../../src/core/errors.js';
import { TAG_GUARD_MS } from '../../src/core/tags.js';
import type { Cache } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { freePort, outages, rawCommand, RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { expectCacheError, registerCacheBehaviourSuite } from './behaviour-suite.js';
import { describeWith, has } from '../helpers/skips.js';

stopRedisServersAfterAll();

/** A private server filled up to its `maxmemory` with `noeviction`: it refuses every write (OOM). */
let fullServer: Promise<RedisServer> | undefined;
function full(): Promise<RedisServer> {
  fullServer ??= (async () => {
    const server = await RedisServer.start({ maxmemory: 2 * 1024 * 1024 });
    await outages.fill(server, 1000);
    return server;
  })();
  return fullServer;
}

describeWith('redis')('dragonfly backend on the Redis at REDIS_URL', () => {
  registerCacheBehaviourSuite('dragonfly', (options) => createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('suite'), ...options }), {
    ...(has('redis-server') ? { refusing: async () => createDragonflyCache({ url: (await full()).url, keyPrefix: uniquePrefix('full') }) } : {}),
  });
});

/** Every raw key under `prefix:`, found the way an operator would (SCAN, never KEYS). */
async function scanAll(client: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return [...new Set(found)].sort();
}

describeWith('redis')('dragonfly backend specifics', () => {
  let admin: Redis;
  const caches: Cache[] = [];
  async function open(options: DragonflyCacheOptions = {}): Promise<Cache> {
    const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('df'), ...options });
    caches.push(cache);
    return cache;
  }
  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    for (const cache of caches.splice(0)) {
      await cache.clear().catch(() => {});
      await cache.close();
    }
  });
  afterAll(() => {
    admin.disconnect();
  });

  it('raw keys are <keyPrefix>:g:<key> and <keyPrefix>:t:<encoded tenant>:<key>, visible with SCAN', async () => {
    const keyPrefix = uniquePrefix('layout');
    const cache = await open({ keyPrefix });
    await cache.set('user:1', 1);
    await cache.set('user:1', 2, { tenantId: 'acme' });
    await cache.set('k', 3, { tenantId: 'a:b*' });
    await cache.setMany({ 'user:2': 4 });
    expect(await scanAll(admin, `${keyPrefix}:*`)).toEqual(
      [`${keyPrefix}:g:user:1`, `${keyPrefix}:g:user:2`, `${keyPrefix}:t:acme:user:1`, `${keyPrefix}:t:a%3Ab%2A:k`].sort(),
    );
  });

  it('data under the prefix that cachekit did not write is a miss counted in errors, never a crash', async () => {
    const keyPrefix = uniquePrefix('foreign');
    const cache = await open({ keyPrefix });
    await admin.set(`${keyPrefix}:g:plain`, 'hello');
    await admin.set(`${keyPrefix}:g:json`, '{"a":1}');
    await admin.set(`${keyPrefix}:g:badjson`, 'ck1|{not json');
    await admin.set(`${keyPrefix}:g:badtag`, 'ck1|~{"\\u0000ck":"t","k":"Nope","v":""}');
    await admin.set(`${keyPrefix}:g:unknowntag`, 'ck1|~{"\\u0000ck":"zz"}');
    await admin.rpush(`${keyPrefix}:g:list`, 'x');
    await admin.hset(`${keyPrefix}:t:acme:hash`, 'f', 'v');
    for (const key of ['plain', 'json', 'badjson', 'badtag', 'unknowntag', 'list']) expect(await cache.get(key), key).toBeUndefined();
    expect(await cache.get('hash', { tenantId: 'acme' })).toBeUndefined();
    expect(await cache.getMany(['plain', 'json', 'badjson', 'badtag', 'unknowntag'])).toEqual(new Map());
    expect(await cache.stats()).toMatchObject({ errors: 12, misses: 12, hits: 0 });
    expect(await cache.stats({ tenantId: 'acme' })).toMatchObject({ errors: 1, misses: 1 });
    expect(await cache.set('plain', 'mine')).toBe(true);
    expect(await cache.get('plain')).toBe('mine');
    expect(await cache.set('list', 'mine too')).toBe(true);
    expect(await cache.get('list')).toBe('mine too');
  });

  it('plain entries keep the ck1 format (and entries written before grace and tags still read); graced or tagged ones are ck2 with their metadata', async () => {
    const keyPrefix = uniquePrefix('format');
    const cache = await open({ keyPrefix });
    await admin.set(`${keyPrefix}:g:old`, 'ck1|{"written":"by an earlier release"}');
    expect(await cache.get('old')).toEqual({ written: 'by an earlier release' });
    await cache.set('plain', { a: 1 });
    await cache.getOrSet('plain-read-through', async () => 2);
    expect(await admin.get(`${keyPrefix}:g:plain`)).toBe('ck1|{"a":1}');
    expect(await admin.get(`${keyPrefix}:g:plain-read-through`)).toBe('ck1|2');
    await cache.set('tagged', 'v', { tags: ['doc:é'] });
    await cache.writeEntry('graced', 'v', { ttl: 10, grace: 20 });
    expect(await admin.get(`${keyPrefix}:g:tagged`)).toMatch(/^ck2\|\d+\|\{"s":\d+,"t":\["doc:\\u00e9"\]\}"v"$/);
    expect(await admin.get(`${keyPrefix}:g:graced`)).toMatch(/^ck2\|\d+\|\{"s":\d+,"f":\d+\}"v"$/);
    // kept ttl + grace on the server
    expect(await admin.pttl(`${keyPrefix}:g:graced`)).toBeGreaterThan(25_000);
    expect(await cache.get('tagged')).toBe('v');
    expect(await cache.deleteIfEquals('tagged', 'v')).toBe(true);
  });

  it('a tag record outlives every entry carrying it, and a missing record makes its entries misses (never valid again)', async () => {
    const keyPrefix = uniquePrefix('records');
    const cache = await open({ keyPrefix });
    await cache.set('short', 1, { ttl: 5, tags: ['doc:1'] });
    const record = `${keyPrefix}:x:g:doc:1`;
    expect(await admin.get(record)).toBe('0');
    expect(await admin.pttl(record)).toBeGreaterThan(4000);
    await cache.set('long', 2, { ttl: 100, tags: ['doc:1'] });
    expect(await admin.pttl(record)).toBeGreaterThan(99_000);
    await cache.set('shorter', 3, { ttl: 1, tags: ['doc:1'] });
    expect(await admin.pttl(record)).toBeGreaterThan(99_000);
    await cache.set('forever', 4, { tags: ['doc:1'] });
    expect(await admin.pttl(record)).toBe(-1);
    // evicted or cleared by someone else: the entries carrying it are misses, not valid again
    await admin.del(record);
    expect(await cache.getMany(['short', 'long', 'forever'])).toEqual(new Map());
    // records are bookkeeping: neither listed nor counted
    const listed: string[] = [];
    for await (const key of cache.keys('*')) listed.push(key);
    expect(listed.sort()).toEqual(['forever', 'long', 'short', 'shorter']);
  });

  it('an invalidation is stamped with the server\'s clock, keeps the record\'s lifetime, and lasts at least the guard when no entry carries the tag', async () => {
    const keyPrefix = uniquePrefix('stamp');
    const cache = await open({ keyPrefix });
    await cache.invalidateTags(['absent']);
    const [seconds] = await admin.time();
    const stamp = Number(await admin.get(`${keyPrefix}:x:g:absent`));
    expect(Math.abs(stamp - Number(seconds) * 1000)).toBeLessThan(2000);
    expect(await admin.pttl(`${keyPrefix}:x:g:absent`)).toBeGreaterThan(TAG_GUARD_MS - 5000);
    await cache.set('forever', 1, { tags: ['kept'] });
    await cache.invalidateTags(['kept']);
    expect(await admin.pttl(`${keyPrefix}:x:g:kept`)).toBe(-1);
    expect(await cache.get('forever')).toBeUndefined();
  });

  it('a tagged entry whose writer\'s clock runs ahead of the server is still invalidated (its start is translated to the server\'s clock)', async () => {
    const keyPrefix = uniquePrefix('skew');
    const cache = await open({ keyPrefix });
    const realNow = Date.now;
    try {
      // A second cache whose process clock runs 5 s ahead: it measured that at connect.
      Date.now = () => realNow() + 5000;
      const skewed = await open({ keyPrefix });
      await skewed.set('k', 'v', { tags: ['doc:1'] });
      Date.now = realNow;
      await cache.invalidateTags(['doc:1']);
      Date.now = () => realNow() + 5000;
      expect(await skewed.get('k')).toBeUndefined();
    } finally {
      Date.now = realNow;
    }
    expect(await cache.get('k')).toBeUndefined();
  });

  it('two prefixes where one starts with the other (app, app-x) never see each other', async () => {
    const app = uniquePrefix('app');
    const a = await open({ keyPrefix: app });
    const b = await open({ keyPrefix: `${app}-x` });
    const c = await open({ keyPrefix: `${app}.x` });
    await a.setMany({ k: 'a', 'x:k': 'a2' });
    await b.setMany({ k: 'b', 'g:k': 'b2' });
    await c.set('k', 'c', { tenantId: 't' });
    expect(await a.get('k')).toBe('a');
    expect(await b.get('k')).toBe('b');
    expect(await b.get('x:k')).toBeUndefined();
    expect((await a.stats()).size).toBe(2);
    expect((await b.stats()).size).toBe(2);
    expect(await a.clearPattern('*')).toBe(2);
    await a.set('again', 1);
    await a.clear();
    expect(await b.getMany(['k', 'g:k'])).toEqual(
      new Map([
        ['k', 'b'],
        ['g:k', 'b2'],
      ]),
    );
    expect(await c.get('k', { tenantId: 't' })).toBe('c');
    expect((await b.stats()).size).toBe(2);
  });

  it.each(['a:b', 'a*', 'a?', 'a[b]', 'a\\b', 'a{b}', '', 'a b', 'ü', 'x'.repeat(65), 5])('keyPrefix %j rejects with a validation error', async (keyPrefix) => {
    await expectCacheError(() => createDragonflyCache({ url: REDIS_URL, keyPrefix: keyPrefix as string }), 'validation');
  });

  it.each([
    ['defaultTtl 0', { defaultTtl: 0 }],
    ["defaultTtl '10'", { defaultTtl: '10' }],
    ['connectTimeout -1', { connectTimeout: -1 }],
    ['commandTimeout NaN', { commandTimeout: NaN }],
    ['options null', null],
  ])('%s rejects with a validation error', async (_label, options) => {
    await expectCacheError(() => createDragonflyCache(options === null ? (null as unknown as DragonflyCacheOptions) : { url: REDIS_URL, ...(options as object) }), 'validation');
  });

  it('an unknown option is refused, naming the option probably meant', async () => {
    const cases: [object, string][] = [
      [{ defaultTTL: 1 }, 'createDragonflyCache: unknown option "defaultTTL" (did you mean "defaultTtl"?)'],
      [{ keyprefix: 'x' }, 'createDragonflyCache: unknown option "keyprefix" (did you mean "keyPrefix"?)'],
      [{ timeout: 100 }, 'createDragonflyCache: unknown option "timeout" (did you mean one of "connectTimeout", "commandTimeout"?)'],
      [{ database: 1 }, 'createDragonflyCache: unknown option "database" (known options: '],
    ];
    for (const [options, message] of cases) {
      const error = await expectCacheError(() => createDragonflyCache({ url: REDIS_URL, ...options } as DragonflyCacheOptions), 'validation');
      expect(error.message).toContain(message);
    }
  });

  it('an http:// or https:// URL, a string port and other unusable connection options are validation errors, never a unix socket', async () => {
    const cases: [DragonflyCacheOptions, string][] = [
      [{ url: 'http://127.0.0.1:6379' }, 'url must be a redis:// or rediss:// URL, got a http:// URL'],
      [{ url: 'https://user:s3cret@cache.example.com' }, 'url must be a redis:// or rediss:// URL, got a https:// URL'],
      [{ url: 'localhost:6379' }, 'url must be a redis:// or rediss:// URL, got a URL of another scheme'],
      [{ url: 'not a url' }, 'url is not a valid URL (expected redis://[[user]:password@]host[:port][/db])'],
      [{ url: 6379 as never }, 'url must be a redis:// or rediss:// URL string, got a number'],
      [{ port: '6379' as never }, 'port must be an integer from 1 to 65535, got "6379" (a string)'],
      [{ port: 0 }, 'port must be an integer from 1 to 65535, got 0 (a number)'],
      [{ port: 70_000 }, 'port must be an integer from 1 to 65535, got 70000 (a number)'],
      [{ host: '' }, 'host must be a non-empty string, got "" (a string)'],
      [{ password: 12345 as never }, 'password must be a string, got a number'],
      [{ tls: 'yes' as never }, 'tls must be a boolean or an object of TLS options, got "yes" (a string)'],
      [{ client: {} as never }, 'client must be an ioredis Redis or Cluster, got an object'],
      [{ commandTimeout: '500' as never }, 'commandTimeout must be a positive number of milliseconds, got "500" (a string)'],
    ];
    for (const [options, message] of cases) {
      const error = await expectCacheError(() => createDragonflyCache(options), 'validation');
      expect(error.message).toBe(`createDragonflyCache: ${message}`);
      expect(error.message).not.toContain('s3cret');
      expect(error.message).not.toContain('12345');
    }
  });

  it('names a second copy of ioredis as the cause when the client comes from one', async () => {
    // A copy of the installed ioredis beside the real one, as a library pinning its own leaves; its dependencies resolve from the root.
    const copy = join(process.cwd(), 'node_modules', '.cache', 'cachekit-second-ioredis', 'node_modules', 'ioredis');
    await cp(join(process.cwd(), 'node_modules', 'ioredis'), copy, { recursive: true, force: true });
    const other = createRequire(join(copy, 'package.json'))(copy) as typeof import('ioredis');
    const client = new other.Redis({ lazyConnect: true });
    try {
      expect(client).not.toBeInstanceOf(Redis);
      const error = await expectCacheError(() => createDragonflyCache({ client: client as never }), 'validation');
      expect(error.message).toMatch(/another copy of ioredis/);
    } finally {
      client.disconnect();
    }
  });

  it('a refused connection keeps the real cause (ECONNREFUSED, ENOTFOUND) in its message and cause', async () => {
    const port = await freePort();
    const refused = await expectCacheError(() => createDragonflyCache({ port, connectTimeout: 1000 }), 'connection');
    expect(refused.message).toBe(`could not connect to Dragonfly at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect((refused.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    const unknown = await expectCacheError(() => createDragonflyCache({ host: 'no-such-host.invalid', connectTimeout: 1000 }), 'connection');
    expect(unknown.message).toMatch(/^could not connect to Dragonfly at no-such-host\.invalid:6379: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid$/);
    expect((unknown.cause as NodeJS.ErrnoException).code).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });

  it('an unreachable server (a free port) rejects with DragonflyConnectionError within connectTimeout', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await expectCacheError(() => createDragonflyCache({ host: '127.0.0.1', port, connectTimeout: 500 }), 'connection');
    expect(error).toBeInstanceOf(DragonflyConnectionError);
    expect(Date.now() - started).toBeLessThan(500 + 1000);
  });

  it('a server that accepts but never answers rejects with DragonflyConnectionError within connectTimeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const started = Date.now();
      const error = await expectCacheError(() => createDragonflyCache({ host: '127.0.0.1', port, connectTimeout: 400 }), 'connection');
      expect(error).toBeInstanceOf(DragonflyConnectionError);
      expect(Date.now() - started).toBeLessThan(400 + 1000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('accepts an existing ioredis client, and close() leaves that client open', async () => {
    const client = new Redis(REDIS_URL);
    const lazy = new Redis(REDIS_URL, { lazyConnect: true });
    try {
      const cache = await createDragonflyCache({ client, keyPrefix: uniquePrefix('own') });
      const fromLazy = await createDragonflyCache({ client: lazy, keyPrefix: uniquePrefix('lazy') });
      expect(await cache.set('k', { v: 1 })).toBe(true);
      expect(await cache.get('k')).toEqual({ v: 1 });
      expect(await fromLazy.set('k', 2)).toBe(true);
      expect(await fromLazy.get('k')).toBe(2);
      await cache.clear();
      await fromLazy.clear();
      await cache.close();
      await fromLazy.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      expect(await lazy.ping()).toBe('PONG');
      await expectCacheError(() => cache.get('k'), 'closed');
    } finally {
      client.disconnect();
      lazy.disconnect();
    }
  });

  it('close() of a cache that made its own connection ends that connection', async () => {
    const cache = await createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix('own') });
    const name = `ck-close-${process.pid}-${Date.now()}`;
    // The cache's own connection, named so CLIENT LIST can find it.
    await (cache as unknown as { client: Redis }).client.client('SETNAME', name);
    expect(await admin.client('LIST')).toContain(`name=${name}`);
    await cache.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await admin.client('LIST')).not.toContain(`name=${name}`);
  });

  it('a setMany whose group fails with an outage after others were stored says how many of how many were stored, with a numeric stored', async () => {
    const client = new Redis(REDIS_URL);
    let msets = 0;
    // The second MSET fails as a dropped connection does; the first and third land.
    const flaky = new Proxy(client, {
      get(target, prop) {
        if (prop === 'mset') return (...args: never[]) => (++msets === 2 ? Promise.reject(new Error('Connection is closed.')) : target.mset(...args));
        const member = Reflect.get(target, prop, target) as unknown;
        return typeof member === 'function' ? member.bind(target) : member;
      },
    });
    const keyPrefix = uniquePrefix('partial');
    const cache = await createDragonflyCache({ client: flaky, keyPrefix });
    try {
      const entries = Array.from({ length: 2500 }, (_, i) => [`k${i}`, i] as const);
      const error = await expectCacheError(() => cache.setMany(entries), 'connection');
      expect(error).toBeInstanceOf(DragonflyConnectionError);
      expect(error.message).toBe('setMany failed (stored 1500 of 2500 entries): Connection is closed.');
      expect(error.stored).toBe(1500);
      expect((await cache.getMany(entries.map(([k]) => k))).size).toBe(1500);
      expect((await cache.stats()).sets).toBe(1500);
      // An outage before anything landed: stored 0.
      msets = 1;
      const none = await expectCacheError(() => cache.setMany({ a: 1 }), 'connection');
      expect(none.stored).toBe(0);
      expect(none.message).toBe('setMany failed (stored 0 of 1 entries): Connection is closed.');
    } finally {
      await cache.clear();
      await cache.close();
      client.disconnect();
    }
  });

  it('deleteIfEquals on a key of another type under the prefix answers false and leaves it', async () => {
    const keyPrefix = uniquePrefix('foreign-del');
    const cache = await open({ keyPrefix });
    await admin.rpush(`${keyPrefix}:g:list`, 'x');
    expect(await cache.deleteIfEquals('list', 'x')).toBe(false);
    expect(await admin.lrange(`${keyPrefix}:g:list`, 0, -1)).toEqual(['x']);
  });
});

describeWith('redis-server')('dragonfly backend batches, counted on a private redis-server', () => {
  let server: RedisServer;
  let admin: Redis;
  let cache: Cache;

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url);
    cache = await createDragonflyCache({ url: server.url, keyPrefix: 'batch' });
  });
  afterAll(async () => {
    await cache?.close();
    admin?.disconnect();
    await server?.stop();
  });
  afterEach(async () => {
    await cache.clear();
  });

  async function calls(): Promise<Map<string, number>> {
    const info = await admin.info('commandstats');
    const out = new Map<string, number>();
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(match[1] as string, Number(match[2]));
    return out;
  }

  /** The commands `work` sent, by name (lower case), not counting the INFO used to measure. */
  async function commandsOf(work: () => Promise<unknown>): Promise<Record<string, number>> {
    const before = await calls();
    await work();
    const after = await calls();
    const delta: Record<string, number> = {};
    for (const [name, n] of after) {
      const d = n - (before.get(name) ?? 0);
      if (d > 0 && name !== 'info') delta[name] = d;
    }
    return delta;
  }

  const thousand = () => Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`item:${i}`, { i }]));

  it('getMany of 1000 keys is one MGET', async () => {
    await cache.setMany(thousand());
    const keys = Array.from({ length: 1000 }, (_, i) => `item:${i}`);
    let found = new Map();
    expect(
      await commandsOf(async () => {
        found = await cache.getMany(keys);
      }),
    ).toEqual({ mget: 1 });
    expect(found.size).toBe(1000);
  });

  it('setMany of 1000 entries without a ttl is one MSET', async () => {
    expect(await commandsOf(() => cache.setMany(thousand()))).toEqual({ mset: 1 });
  });

  it('setMany of 1000 entries with a ttl is one script call', async () => {
    await cache.setMany({ warm: 1 }, { ttl: 60 }); // loads the script, so the measured call is EVALSHA alone
    // commandstats also counts the SETs the script runs inside the server; the client sent one EVALSHA.
    expect(await commandsOf(() => cache.setMany(thousand(), { ttl: 60 }))).toEqual({ evalsha: 1, set: 1000 });
    expect(await admin.pttl('batch:g:item:999')).toBeGreaterThan(50_000);
  });

  it('keys lists page by page with SCAN, never KEYS: a listing stopped after one key scans one page', async () => {
    await cache.setMany(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`item:${i}`, i])));
    let listed = 0;
    const all = await commandsOf(async () => {
      for await (const _key of cache.keys('item:*')) listed++;
    });
    expect(listed).toBe(5000);
    expect(Object.keys(all)).toEqual(['scan']);
    expect(all.scan).toBeGreaterThanOrEqual(5);
    const first = await commandsOf(async () => {
      for await (const _key of cache.keys('item:*')) break;
    });
    expect(first).toEqual({ scan: 1 });
  });

  it('clearPattern removes with SCAN and UNLINK in pages, never KEYS and never one command per key', async () => {
    await cache.setMany(thousand());
    await cache.setMany({ 'other:1': 1, 'other:2': 2 });
    let removed = 0;
    const sent = await commandsOf(async () => {
      removed = await cache.clearPattern('item:*');
    });
    expect(removed).toBe(1000);
    expect(Object.keys(sent).sort()).toEqual(['scan', 'unlink']);
    expect(sent.unlink).toBeLessThanOrEqual(sent.scan as number);
    expect(await cache.getMany(['other:1', 'other:2'])).toEqual(
      new Map([
        ['other:1', 1],
        ['other:2', 2],
      ]),
    );
  });
});

/** A redis-server with `--databases <n>` on `port` (RedisServer has no such option), for the SELECT tests. */
async function serverWithDatabases(port: number, databases: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--databases', String(databases)], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 200; i++) {
    if (await rawCommand(port, ['PING'], 200).then((reply) => reply === '+PONG', () => false)) return child;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server --databases ${databases} did not start on ${port}`);
}

describeWith('redis-server')('dragonfly backend database selection (db), on private redis-servers', () => {
  it.each([
    ['db 99 (option)', { db: 99 }],
    ['db 99 (URL path)', { path: '/99' }],
  ])('%s beyond the server’s databases rejects the factory with a server error instead of writing to db 0', async (_label, how) => {
    const server = await RedisServer.start();
    try {
      const options: DragonflyCacheOptions =
        'path' in how ? { url: `redis://:s3cret@127.0.0.1:${server.port}${how.path}` } : { port: server.port, password: 's3cret', db: how.db };
      await server.command('CONFIG', 'SET', 'requirepass', 's3cret');
      const error = await expectCacheError(() => createDragonflyCache({ ...options, connectTimeout: 1000 }), 'server');
      expect(error.message).toBe(`could not connect to Dragonfly at 127.0.0.1:${server.port}: the server refused SELECT 99: ERR DB index is out of range`);
      expect((error.cause as Error).message).toBe('ERR DB index is out of range');
      expect(`${error.message} ${inspect(error, { depth: 5 })}`).not.toContain('s3cret');
      const admin = new Redis({ port: server.port, password: 's3cret' });
      expect(await admin.dbsize()).toBe(0);
      admin.disconnect();
    } finally {
      await server.stop();
    }
  });

  it.each([
    ['-1', -1],
    ['1.5', 1.5],
    ["'2'", '2'],
    ['NaN', NaN],
    ['2 ** 53', 2 ** 53],
  ])('db %s is a validation error', async (_label, db) => {
    const error = await expectCacheError(() => createDragonflyCache({ port: 1, db: db as number }), 'validation');
    expect(error.message).toMatch(/^createDragonflyCache: db must be a non-negative integer, got /);
  });

  it.each(['/abc', '/-1', '/1.5', '/2/3'])('a URL path %s is a validation error', async (path) => {
    const error = await expectCacheError(() => createDragonflyCache({ url: `redis://127.0.0.1:1${path}` }), 'validation');
    expect(error.message).toBe('createDragonflyCache: the url path must be a database number (redis://host:port/2), got another path');
  });

  it('entries land in the selected db, also after the connection is killed and after a server restart', async () => {
    const server = await RedisServer.start();
    const admin = new Redis({ port: server.port, db: 3 });
    const db0 = new Redis({ port: server.port });
    const cache = await createDragonflyCache({ url: `${server.url}/3`, keyPrefix: 'db', commandTimeout: 300 });
    const setEventually = async (key: string): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        if (await cache.set(key, 1).catch(() => false)) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`could not set ${key}`);
    };
    admin.on('error', () => {});
    db0.on('error', () => {});
    try {
      await setEventually('before');
      await server.killClients();
      await setEventually('after-client-kill');
      expect(await scanAll(admin, 'db:*')).toEqual(['db:g:after-client-kill', 'db:g:before']);
      await server.restart();
      await setEventually('after-restart');
      expect(await scanAll(admin, 'db:*')).toEqual(['db:g:after-restart']);
      expect(await db0.dbsize()).toBe(0);
      expect(await cache.validate()).toBe(true);
    } finally {
      await cache.close();
      admin.disconnect();
      db0.disconnect();
      await server.stop();
    }
  });

  it('a reconnection whose SELECT fails is never used: operations fail with connection errors and nothing lands in db 0', async () => {
    const port = await freePort();
    let child = await serverWithDatabases(port, 16);
    const cache = await createDragonflyCache({ url: `redis://127.0.0.1:${port}/5`, keyPrefix: 'db', commandTimeout: 300 });
    try {
      expect(await cache.set('k', 1)).toBe(true);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      // Back with only two databases: SELECT 5 now fails on every reconnection.
      child = await serverWithDatabases(port, 2);
      const errors: unknown[] = [];
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        errors.push(await cache.set('k', 2).then(() => 'stored', (error: unknown) => error));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(errors.filter((e) => e === 'stored')).toEqual([]);
      for (const error of errors) expect((error as CacheError).errorType).toBe('connection');
      expect(await cache.validate()).toBe(false);
      expect(await rawCommand(port, ['DBSIZE'])).toBe(':0');
      // Once SELECT 5 works again, so does the cache, in db 5.
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      child = await serverWithDatabases(port, 16);
      let stored = false;
      for (let i = 0; i < 60 && !stored; i++) {
        stored = await cache.set('k', 3).catch(() => false);
        if (!stored) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(stored).toBe(true);
      expect(await rawCommand(port, ['DBSIZE'])).toBe(':0');
      const db5 = new Redis({ port, db: 5 });
      expect(await db5.get('db:g:k')).toBe('ck1|3');
      db5.disconnect();
    } finally {
      await cache.close();
      child.kill('SIGKILL');
    }
  });
});
