// Keyv, cache-manager and KeyvCachekit on a real redis-server that stops
// answering (SIGSTOP): Keyv-based caches hang there (keyv#1496); over cachekit
// every call settles within the cache's commandTimeout, and the failure
// surfaces once, as cachekit's typed error.
import { createCache } from 'cache-manager';
import Keyv5 from 'keyv';
import Keyv6 from 'keyv6';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { KeyvCachekit } from '../../integrations/keyv/index.js';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { DragonflyConnectionError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

const COMMAND_TIMEOUT = 300;
// What a call may take past the timeout on a loaded 2-core machine.
const MARGIN = 250;

stopRedisServersAfterAll();

describeWith('redis-server')('KeyvCachekit on a Redis that stops answering', () => {
  let server: RedisServer;
  let cache: Cache;

  beforeAll(async () => {
    server = await RedisServer.start();
    cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'keyv-faults' });
  });
  afterEach(() => server.resume());
  afterAll(async () => {
    await cache.close();
  });

  /** Runs `call` while the server is paused: its outcome (value or rejection) and how long it took. */
  async function whileHung(call: () => Promise<unknown>): Promise<{ value?: unknown; rejected?: unknown; ms: number }> {
    server.pause();
    const started = performance.now();
    try {
      const value = await call();
      return { value, ms: performance.now() - started };
    } catch (rejected) {
      return { rejected, ms: performance.now() - started };
    } finally {
      server.resume();
    }
  }

  function timeoutError(error: unknown): void {
    expect(error).toBeInstanceOf(DragonflyConnectionError);
    expect(error).toMatchObject({ errorType: 'timeout' });
  }

  function withErrors<K extends { on(event: string, listener: (error: unknown) => void): unknown }>(keyv: K): { keyv: K; errors: unknown[] } {
    const errors: unknown[] = [];
    keyv.on('error', (error) => errors.push(error));
    return { keyv, errors };
  }

  it('keyv 5: get answers undefined within commandTimeout and emits the timeout once (Keyv 5 drops get’s rejections)', async () => {
    const { keyv, errors } = withErrors(new Keyv5({ store: new KeyvCachekit(cache) }));
    await keyv.set('k', 'v');
    const get = await whileHung(() => keyv.get('k'));
    expect(get).toMatchObject({ value: undefined });
    expect(get.ms).toBeLessThan(COMMAND_TIMEOUT + MARGIN);
    expect(errors).toHaveLength(1);
    timeoutError(errors[0]);
  });

  it('keyv 5: writes answer false with one error event each; getMany, has and the iterator reject once, without an event', async () => {
    const { keyv, errors } = withErrors(new Keyv5({ store: new KeyvCachekit(cache) }));
    const outcomes = {
      set: await whileHung(() => keyv.set('k', 'v')),
      delete: await whileHung(() => keyv.delete('k')),
      setMany: await whileHung(() => keyv.setMany([{ key: 'a', value: 1 }])),
      clear: await whileHung(() => keyv.clear()),
    };
    expect([outcomes.set.value, outcomes.delete.value, outcomes.setMany.value, outcomes.clear.value]).toEqual([false, false, [false], undefined]);
    expect(errors).toHaveLength(4);
    errors.forEach(timeoutError);
    const rejections = {
      getMany: await whileHung(() => keyv.getMany(['a', 'b'])),
      has: await whileHung(() => keyv.has('a')),
      iterator: await whileHung(async () => {
        for await (const entry of keyv.iterator!(undefined)) void entry;
      }),
    };
    for (const outcome of [...Object.values(outcomes), ...Object.values(rejections)]) expect(outcome.ms).toBeLessThan(COMMAND_TIMEOUT + MARGIN);
    for (const outcome of Object.values(rejections)) timeoutError(outcome.rejected);
    expect(errors).toHaveLength(4);
  });

  it('keyv 6: every call settles within commandTimeout with one error event, answering a miss or false', async () => {
    const { keyv, errors } = withErrors(new Keyv6({ store: new KeyvCachekit(cache) }));
    await keyv.set('k', 'v');
    const outcomes = [
      await whileHung(() => keyv.get('k')),
      await whileHung(() => keyv.getMany(['k', 'x'])),
      await whileHung(() => keyv.has('k')),
      await whileHung(() => keyv.set('k', 'w')),
      await whileHung(() => keyv.deleteMany(['k'])),
      await whileHung(() => keyv.clear()),
    ];
    expect(outcomes.map((o) => o.value)).toEqual([undefined, [undefined, undefined], false, false, [false], undefined]);
    for (const outcome of outcomes) expect(outcome.ms).toBeLessThan(COMMAND_TIMEOUT + MARGIN);
    expect(errors).toHaveLength(outcomes.length);
    errors.forEach(timeoutError);
  });

  it('cache-manager: wrap answers with the function’s value, get with undefined, each failure an error event once', async () => {
    const { keyv, errors } = withErrors(new Keyv5({ store: new KeyvCachekit(cache) }));
    const manager = createCache({ stores: [keyv] });
    const wrapped = await whileHung(() => manager.wrap('report', async () => 'fresh', 60_000));
    expect(wrapped).toMatchObject({ value: 'fresh' });
    // One timeout reading, one writing the function's value.
    expect(wrapped.ms).toBeLessThan(2 * (COMMAND_TIMEOUT + MARGIN));
    const got = await whileHung(() => manager.get('report'));
    expect(got).toMatchObject({ value: undefined });
    expect(got.ms).toBeLessThan(COMMAND_TIMEOUT + MARGIN);
    expect(errors).toHaveLength(3);
    errors.forEach(timeoutError);
  });

  it('serves again once the server answers, without recreating anything', async () => {
    const keyv = new Keyv5({ store: new KeyvCachekit(cache) });
    keyv.on('error', () => {});
    await whileHung(() => keyv.get('k'));
    await keyv.set('after', 'ok');
    expect(await keyv.get('after')).toBe('ok');
  });
});
