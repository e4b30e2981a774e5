import { afterAll, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { CacheError, DragonflyConnectionError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { figures, MixedLoad } from '../helpers/mixed-load.js';
import { RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

// Short enough to keep the file fast, long enough for a loaded 2-core CI box.
const COMMAND_TIMEOUT = 300;
// Event-loop lag under 8 concurrent workers and a parallel test file or two.
const MARGIN = 250;
// retryStrategy caps the reconnect delay at 1 s; the handshake is a few round trips more.
const RECOVERY_BOUND = 2500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report: string[] = [];

stopRedisServersAfterAll();
afterAll(() => {
  if (report.length > 0) console.log(`[reliability] faults on a real redis-server (commandTimeout ${COMMAND_TIMEOUT} ms)\n${report.join('\n')}`);
});

interface Outcome {
  load: MixedLoad;
  recoveryMs: number;
}

/**
 * Runs the mixed load on a fresh server and cache: up for a while, then the
 * fault, then the heal, then up again, and checks what must hold in every case.
 */
async function underLoad(
  name: string,
  fault: (server: RedisServer, load: MixedLoad) => Promise<void>,
  heal: (server: RedisServer, load: MixedLoad) => Promise<void>,
): Promise<Outcome> {
  const server = await RedisServer.start();
  let cache: Cache | undefined;
  try {
    cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'faults' });
    const load = new MixedLoad(cache);
    load.start();
    await sleep(400);
    load.phase = 'fault';
    await fault(server, load);
    load.phase = 'recovering';
    await heal(server, load);
    const healedAt = performance.now();
    // The same cache object, never recreated: the client must find its way back by itself.
    const recoveredAt = await load.firstSuccessSince(healedAt, 10_000);
    const recoveryMs = Math.max(0, recoveredAt - healedAt);
    load.phase = 'up';
    await sleep(400);
    await load.stop();

    const f = figures(load.samples);
    report.push(
      `  ${name}: faults ${server.faults}, ops ${f.attempted} (failed ${f.failed}: ${JSON.stringify(f.errorTypes)}), ` +
        `max op ${f.maxMs.toFixed(0)} ms (during fault ${f.maxFaultMs.toFixed(0)} ms), recovery ${recoveryMs.toFixed(0)} ms, ` +
        `writes read back ${load.verifiedWrites}`,
    );

    for (const s of load.samples) {
      if (s.ok) continue;
      expect(s.error).toBeInstanceOf(DragonflyConnectionError);
      expect(['connection', 'timeout']).toContain((s.error as CacheError).errorType);
    }
    expect(f.untyped).toBe(0);
    expect(f.maxMs).toBeLessThanOrEqual(COMMAND_TIMEOUT + MARGIN);
    expect(load.violations).toEqual([]);
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND);
    // Once back, every operation works again on the same cache.
    expect(await cache.set('after', { ok: name })).toBe(true);
    expect(await cache.get('after')).toEqual({ ok: name });
    return { load, recoveryMs };
  } finally {
    await cache?.close();
    await server.stop();
  }
}

describeWith('redis-server')('Dragonfly backend under faults (own redis-server)', () => {
  it('SIGKILL mid-load: operations fail fast with connection errors and succeed again after a restart', async () => {
    const { load } = await underLoad(
      'SIGKILL + restart',
      async (server, load) => {
        await server.kill();
        load.epoch++;
        await sleep(1500);
      },
      (server) => server.restart(),
    );
    expect(load.samples.some((s) => s.phase === 'fault' && !s.ok)).toBe(true);
  });

  it('SIGSTOP hang: operations time out within commandTimeout and resume after SIGCONT', async () => {
    const { load } = await underLoad(
      'SIGSTOP 2.5 s + SIGCONT',
      async (server) => {
        server.pause();
        // Longer than the 2 s socketTimeout, so the dead-socket detection is exercised too.
        await sleep(2500);
      },
      async (server) => server.resume(),
    );
    const types = new Set(load.samples.filter((s) => !s.ok).map((s) => (s.error as CacheError).errorType));
    expect(types.has('timeout')).toBe(true);
  });

  it('a short hang (under socketTimeout) times out operations without losing the connection', async () => {
    await underLoad(
      'SIGSTOP 0.8 s + SIGCONT',
      async (server) => {
        server.pause();
        await sleep(800);
      },
      async (server) => server.resume(),
    );
  });

  it('CLIENT KILL: dropped connections fail in-flight operations with connection errors, then reconnect', async () => {
    await underLoad(
      'CLIENT KILL x3',
      async (server) => {
        for (let i = 0; i < 3; i++) {
          await server.killClients();
          await sleep(250);
        }
      },
      async () => {},
    );
  });

  it('restart (graceful stop is not needed): a SIGKILL of an idle cache followed by a restart needs no new cache', async () => {
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'restart' });
    try {
      expect(await cache.set('k', 1)).toBe(true);
      await server.restart();
      const healedAt = performance.now();
      let recovered: number | undefined;
      while (recovered === undefined && performance.now() - healedAt < 10_000) {
        const start = performance.now();
        try {
          await cache.set('k', 2);
          recovered = performance.now();
        } catch (error) {
          expect(error).toBeInstanceOf(DragonflyConnectionError);
          expect(performance.now() - start).toBeLessThanOrEqual(COMMAND_TIMEOUT + MARGIN);
          await sleep(10);
        }
      }
      expect(recovered).toBeDefined();
      const recoveryMs = (recovered as number) - healedAt;
      report.push(`  idle restart: recovery ${recoveryMs.toFixed(0)} ms`);
      expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_BOUND);
      expect(await cache.get('k')).toBe(2);
    } finally {
      await cache.close();
      await server.stop();
    }
  });

  it('close() on a hung server returns within commandTimeout and leaves the cache closed', async () => {
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'close' });
    try {
      expect(await cache.set('k', 1)).toBe(true);
      server.pause();
      const start = performance.now();
      await cache.close();
      const closeMs = performance.now() - start;
      report.push(`  close() on a hung server: ${closeMs.toFixed(0)} ms`);
      expect(closeMs).toBeLessThanOrEqual(COMMAND_TIMEOUT + MARGIN);
      await expect(cache.get('k')).rejects.toMatchObject({ errorType: 'closed' });
    } finally {
      server.resume();
      await server.stop();
    }
  });

  it('a pattern clear over many SCAN pages that hangs mid-way rejects with a timeout and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'pages' });
    const outcomes: string[] = [];
    try {
      // Different delays so the hang lands before, during and after the first pages.
      for (const delay of [2, 6, 10]) {
        await cache.setMany(Array.from({ length: 12_000 }, (_, i) => [`k${i}`, i] as const));
        const start = performance.now();
        const clearing = cache.clearPattern('k*').then(
          (n) => `removed ${n}`,
          (error: unknown) => {
            expect(error).toBeInstanceOf(DragonflyConnectionError);
            return (error as CacheError).errorType;
          },
        );
        await sleep(delay);
        server.pause();
        outcomes.push(await clearing);
        expect(performance.now() - start).toBeLessThanOrEqual(delay + COMMAND_TIMEOUT + MARGIN);
        // Long enough for every UNLINK still in flight to time out as well.
        await sleep(COMMAND_TIMEOUT + 200);
        server.resume();
        await sleep(50);
      }
      // Let any late rejection reach the process before counting.
      await sleep(50);
      expect(unhandled).toEqual([]);
      report.push(`  clearPattern over 12 000 keys, hung mid-way x3: ${outcomes.join(', ')}; unhandled rejections ${unhandled.length}`);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await cache.close();
      await server.stop();
    }
  });

  it('a batch that fills the server mid-way answers the number actually stored', async () => {
    const server = await RedisServer.start({ maxmemory: 4 * 1024 * 1024 });
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'partial' });
    try {
      const value = 'v'.repeat(4096);
      let filled = 0;
      while (await cache.set(`fill${filled}`, value)) filled++;
      // About 1.2 MB of room: the first groups of a big batch fit, the rest are refused.
      for (let i = 0; i < 300; i++) await cache.delete(`fill${i}`);
      for (const ttl of [undefined, 60]) {
        const keys = Array.from({ length: 12_000 }, (_, i) => `b${ttl}:${i}`);
        const answered = await cache.setMany(
          keys.map((key) => [key, 'x'.repeat(100)] as const),
          ttl === undefined ? {} : { ttl },
        );
        const stored = (await cache.getMany(keys)).size;
        expect(answered).toBe(stored);
        await cache.clearPattern(`b${ttl}:*`);
      }
    } finally {
      await cache.close();
      await server.stop();
    }
  });

  it('a write that timed out on a hung server may still be applied once it resumes; one in flight when the server dies is never resent', async () => {
    // ioredis#2130: a timeout rejects the promise but the command already sent stays on the wire.
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'late' });
    try {
      expect(await cache.set('k', 'before')).toBe(true);
      server.pause();
      await expect(cache.set('k', 'timed-out')).rejects.toMatchObject({ errorType: 'timeout' });
      server.resume();
      await sleep(100);
      // Applied late: a timeout is not a rollback (the fallback cache invalidates such keys for this reason).
      expect(await cache.get('k')).toBe('timed-out');
      expect(await cache.set('k', 'after')).toBe(true);
      // A command in flight when the server dies is failed, not resent to the restarted one.
      server.pause();
      const inFlight = cache.set('fresh', 'in-flight').then(
        () => 'stored',
        (error: unknown) => error,
      );
      await sleep(50);
      await server.restart();
      expect(await inFlight).toBeInstanceOf(DragonflyConnectionError);
      await sleep(COMMAND_TIMEOUT + 300);
      const seen = await cache.get('fresh');
      report.push(`  timed-out SET on a hung server: applied after SIGCONT; SET in flight when the server died: resent to the new one: ${seen !== undefined}`);
      expect(seen).toBeUndefined();
    } finally {
      await cache.close();
      await server.stop();
    }
  });

  it('maxmemory with noeviction: set answers false, add rejects with refused, reads and deletes keep working', async () => {
    const server = await RedisServer.start({ maxmemory: 4 * 1024 * 1024 });
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: COMMAND_TIMEOUT, keyPrefix: 'full' });
    try {
      const value = 'v'.repeat(4096);
      let stored = 0;
      let refused = 0;
      for (let i = 0; i < 5000 && refused < 20; i++) {
        if (await cache.set(`k${i}`, value)) stored++;
        else refused++;
      }
      expect(stored).toBeGreaterThan(0);
      expect(refused).toBe(20);
      // Batches on a full server store nothing and say so, with and without a TTL (MSET and the Lua script).
      const batch = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`b${i}`, value]));
      expect(await cache.setMany(batch)).toBe(0);
      expect(await cache.setMany(batch, { ttl: 60 })).toBe(0);
      // add never answers false for a refusal: false means "a live entry exists" to a lock.
      await expect(cache.add('new', value)).rejects.toMatchObject({ errorType: 'refused' });
      await expect(cache.add('k0', value)).rejects.toMatchObject({ errorType: 'refused' });
      // What was stored before the server filled up reads back intact.
      expect(await cache.get('k0')).toBe(value);
      expect((await cache.getMany(['k0', 'k1'])).size).toBe(2);
      // Deleting makes room: writes are accepted again.
      expect(await cache.clearPattern('k*')).toBe(stored);
      expect(await cache.set('again', value)).toBe(true);
      expect(await cache.get('again')).toBe(value);
      report.push(`  maxmemory 4 MB noeviction: ${stored} sets stored, then ${refused} sets + 2 batches answered false/0, 2 adds rejected with refused`);
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});
