import { inspect } from 'node:util';
import { expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createFallbackCache } from '../../src/backends/fallback.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

const SECRET = 's3cret';

stopRedisServersAfterAll();

/** Everything a log line could show of an error: message, stack, cause chain and own properties. */
function everything(error: unknown): string {
  return `${String(error)}\n${inspect(error, { depth: 10, showHidden: true })}`;
}

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describeWith('redis-server')('credentials never appear in errors or stats', () => {
  it('an unreachable server given as a URL with user info: the rejection does not contain the password', async () => {
    const server = await RedisServer.start();
    const port = server.port;
    await server.stop();
    const error = await rejection(createDragonflyCache({ url: `redis://user:${SECRET}@127.0.0.1:${port}`, connectTimeout: 500 }));
    expect(error).toBeInstanceOf(CacheError);
    expect((error as CacheError).errorType).toBe('connection');
    expect(everything(error)).not.toContain(SECRET);
  });

  it('an unreachable server given a password option: the rejection does not contain the password', async () => {
    const server = await RedisServer.start();
    const port = server.port;
    await server.stop();
    const error = await rejection(createDragonflyCache({ port, username: 'user', password: SECRET, connectTimeout: 500 }));
    expect(error).toBeInstanceOf(CacheError);
    expect(everything(error)).not.toContain(SECRET);
  });

  it('a wrong password: the rejection says the server refused the credentials, without the password', async () => {
    const server = await RedisServer.start();
    await server.command('CONFIG', 'SET', 'requirepass', 'another-one');
    for (const options of [{ url: `redis://:${SECRET}@127.0.0.1:${server.port}` }, { port: server.port, password: SECRET }]) {
      const error = await rejection(createDragonflyCache({ ...options, connectTimeout: 1000 }));
      expect(error).toBeInstanceOf(CacheError);
      expect((error as CacheError).message).toMatch(/refused the credentials: WRONGPASS/);
      expect(everything(error)).not.toContain(SECRET);
    }
  });

  it('a refused SELECT, an unusable URL and a mistyped password option: the errors do not contain the password', async () => {
    const server = await RedisServer.start();
    try {
      await server.command('CONFIG', 'SET', 'requirepass', SECRET);
      const errors = [
        await rejection(createDragonflyCache({ url: `redis://:${SECRET}@127.0.0.1:${server.port}/99`, connectTimeout: 1000 })),
        await rejection(createDragonflyCache({ port: server.port, password: SECRET, db: 99, connectTimeout: 1000 })),
        await rejection(createDragonflyCache({ url: `https://user:${SECRET}@cache.example.com:6379` })),
        await rejection(createDragonflyCache({ url: `user:${SECRET}@127.0.0.1:6379` })),
        await rejection(createDragonflyCache({ url: `redis://user:${SECRET}@127.0.0.1:${server.port}/${SECRET}` })),
        await rejection(createDragonflyCache({ port: server.port, password: 73_519_001 as unknown as string })),
      ];
      expect(errors.map((e) => (e as CacheError).errorType)).toEqual(['server', 'server', 'validation', 'validation', 'validation', 'validation']);
      for (const error of errors) {
        expect(everything(error)).not.toContain(SECRET);
        expect(everything(error)).not.toContain('73519001');
      }
    } finally {
      await server.stop();
    }
  });

  it("a fallback cache's connect error (primary given as a function) does not contain the password", async () => {
    const server = await RedisServer.start();
    await server.command('CONFIG', 'SET', 'requirepass', 'another-one');
    const cache = createFallbackCache({
      primary: () => createDragonflyCache({ url: `redis://:${SECRET}@127.0.0.1:${server.port}`, connectTimeout: 500 }),
      fallback: createMemoryCache(),
      resetTimeout: 60_000,
    });
    try {
      for (let i = 0; i < 100 && cache.circuit().lastConnectError === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      const error = cache.circuit().lastConnectError;
      expect((error as CacheError).message).toMatch(/refused the credentials: WRONGPASS/);
      expect(everything(error)).not.toContain(SECRET);
      expect(JSON.stringify(cache.circuit(), (_k, v: unknown) => (v instanceof Error ? everything(v) : v))).not.toContain(SECRET);
    } finally {
      await cache.close();
      await server.stop();
    }
  });

  it('errors during a later outage and after a restart that forgot the user do not contain the password', async () => {
    const server = await RedisServer.start();
    await server.command('ACL', 'SETUSER', 'user', 'on', `>${SECRET}`, '~*', '+@all');
    const caches: Cache[] = [];
    try {
      caches.push(await createDragonflyCache({ url: `redis://user:${SECRET}@127.0.0.1:${server.port}`, commandTimeout: 300 }));
      caches.push(await createDragonflyCache({ port: server.port, username: 'user', password: SECRET, commandTimeout: 300 }));
      const errors: unknown[] = [];
      for (const cache of caches) {
        expect(await cache.set('k', 1)).toBe(true);
        expect(JSON.stringify(await cache.stats())).not.toContain(SECRET);
      }
      await server.kill();
      for (const cache of caches) errors.push(await rejection(cache.get('k')), await rejection(cache.setMany({ a: 1 })));
      // A fresh server without the ACL user: every reconnection fails its AUTH.
      await server.restart();
      await new Promise((resolve) => setTimeout(resolve, 400));
      for (const cache of caches) {
        errors.push(await rejection(cache.get('k')), await rejection(cache.clearPattern('*')));
        expect(await cache.validate()).toBe(false);
      }
      expect(errors).toHaveLength(8);
      for (const error of errors) {
        expect(error).toBeInstanceOf(CacheError);
        expect(everything(error)).not.toContain(SECRET);
      }
    } finally {
      for (const cache of caches) await cache.close();
      await server.stop();
    }
  });
});
