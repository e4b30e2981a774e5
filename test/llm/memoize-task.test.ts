import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { memoizeTask, taskMetadata } from '../../src/llm/memoize-task.js';
import { codeOf } from '../../src/llm/code-identity.js';
import { requestKey } from '../../src/llm/request-key.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeEachBackend } from '../helpers/llm-backends.js';
import { REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js';
import { outages, RedisServer, stopRedisServersAfterAll } from '../helpers/redis-server.js';
import { describeWith } from '../helpers/skips.js';

interface Task {
  id: string;
  goal: string;
}

/** The guide's agent: `agent.execute_task(task)`, counting its runs. */
function agent(delayMs = 0) {
  const state = { runs: 0 };
  const executeTask = async function executeTask(task: Task) {
    state.runs++;
    if (delayMs) await sleep(delayMs);
    return { taskId: task.id, output: `done: ${task.goal}`, run: state.runs };
  };
  return { state, executeTask };
}

/** The raw Redis key of a shared flight's lock for a task's entry (untenanted, not a cluster). */
function lockKeyOf(prefix: string, namespace: string, input: unknown, version: string | number | null = null): string {
  // The task's code is in its key (every agent() makes the same executeTask).
  return `${prefix}:f:g:${requestKey({ version, code: codeOf(agent().executeTask), input }, { namespace })}`;
}

describeEachBackend('memoizeTask', ({ cache }) => {
  it('returns the task’s own result, and the stored one on the next call', async () => {
    const { state, executeTask } = agent();
    const memoized = memoizeTask(executeTask, { cache: cache() });
    const task = { id: 't1', goal: 'summarize' };
    const first = await memoized(task);
    expect(first).toEqual({ taskId: 't1', output: 'done: summarize', run: 1 });
    expect(await memoized(task)).toEqual(first);
    expect(state.runs).toBe(1);
    expect(cacheStats(memoized)).toMatchObject({ hits: 1, misses: 1 });
  });

  it('runs again when the version changes, and shares results within a version', async () => {
    const c = cache();
    const { state, executeTask } = agent();
    const task = { id: 't1', goal: 'g' };
    await memoizeTask(executeTask, { cache: c, version: 1 })(task);
    await memoizeTask(executeTask, { cache: c, version: 1 })(task);
    await memoizeTask(executeTask, { cache: c, version: 2 })(task);
    expect(state.runs).toBe(2);
  });

  it('keys by task id when told to, ignoring the rest of the input', async () => {
    const { state, executeTask } = agent();
    const memoized = memoizeTask(executeTask, { cache: cache(), key: (task) => task.id });
    await memoized({ id: 't1', goal: 'first wording' });
    const again = await memoized({ id: 't1', goal: 'second wording' });
    expect(again.output).toBe('done: first wording');
    await memoized({ id: 't2', goal: 'first wording' });
    expect(state.runs).toBe(2);
  });

  it('reports when the result was stored and how long the task ran through taskMetadata', async () => {
    const { executeTask } = agent(20);
    const memoized = memoizeTask(executeTask, { cache: cache() });
    const task = { id: 't1', goal: 'g' };
    expect(await taskMetadata(memoized, task)).toBeUndefined();
    const before = Date.now();
    await memoized(task);
    const after = Date.now();
    const meta = await taskMetadata(memoized, task);
    expect(meta?.storedAt).toBeGreaterThanOrEqual(before);
    expect(meta?.storedAt).toBeLessThanOrEqual(after);
    expect(meta?.durationMs).toBeGreaterThan(0);
    expect(await taskMetadata(memoized, { id: 't2', goal: 'g' })).toBeUndefined();
  });

  it('runs concurrent identical calls once in the process', async () => {
    const { state, executeTask } = agent(30);
    const memoized = memoizeTask(executeTask, { cache: cache() });
    const results = await Promise.all(Array.from({ length: 8 }, () => memoized({ id: 't', goal: 'g' })));
    expect(new Set(results.map((r) => r.run))).toEqual(new Set([1]));
    expect(state.runs).toBe(1);
  });

  it('runs once across separately memoized copies sharing the cache, through the lock', async () => {
    const c = cache();
    const { state, executeTask } = agent(50);
    const workers = Array.from({ length: 4 }, () => memoizeTask(executeTask, { cache: c, lockTtl: 5 }));
    const results = await Promise.all(workers.map((w) => w({ id: 't', goal: 'g' })));
    expect(results.map((r) => r.run)).toEqual([1, 1, 1, 1]);
    expect(state.runs).toBe(1);
  });

  it('does not store a rejection and releases the lock, so the next call runs at once', async () => {
    let runs = 0;
    const memoized = memoizeTask(
      async function flaky(id: string) {
        runs++;
        if (runs === 1) throw new Error(`task ${id} failed`);
        return id;
      },
      { cache: cache() },
    );
    await expect(memoized('a')).rejects.toThrow('task a failed');
    expect(await memoized('a')).toBe('a');
    expect(runs).toBe(2);
  });

  it('honours refresh and bypass', async () => {
    const { state, executeTask } = agent();
    const memoized = memoizeTask(executeTask, { cache: cache() });
    const task = { id: 't', goal: 'g' };
    await memoized(task);
    expect((await withCacheControl({ refresh: true }, () => memoized(task))).run).toBe(2);
    expect((await memoized(task)).run).toBe(2);
    expect((await withCacheControl({ bypass: true }, () => memoized(task))).run).toBe(3);
    expect((await memoized(task)).run).toBe(2);
    expect(state.runs).toBe(3);
  });

  it('keeps tenants apart, fixed or per call', async () => {
    const c = cache();
    const { state, executeTask } = agent();
    const task = { id: 't', goal: 'g' };
    await memoizeTask(executeTask, { cache: c, tenantId: 'acme' })(task);
    await memoizeTask(executeTask, { cache: c, tenantId: 'globex' })(task);
    const shared = memoizeTask(executeTask, { cache: c });
    await withCacheControl({ tenantId: 'acme' }, () => shared(task));
    expect(state.runs).toBe(2);
    expect(await withCacheControl({ tenantId: 'acme' }, () => taskMetadata(shared, task))).toBeDefined();
    expect(await taskMetadata(shared, task)).toBeUndefined();
  });
});

describeWith('redis')('memoizeTask and the shared lock on Redis', () => {
  const redis = redisAvailable ? new Redis(REDIS_URL) : undefined;
  let c: Cache;
  let prefix: string;
  beforeEach(async () => {
    prefix = uniquePrefix('memo-lock');
    c = await createDragonflyCache({ url: REDIS_URL, keyPrefix: prefix });
  });
  afterEach(async () => {
    await c.clear();
    await c.close();
  });

  it('releases its lock once the result is stored', async () => {
    const { executeTask } = agent(20);
    await memoizeTask(executeTask, { cache: c, lockTtl: 5 })({ id: 't', goal: 'g' });
    await sleep(50);
    expect(await redis!.exists(lockKeyOf(prefix, 'task:executeTask', [{ id: 't', goal: 'g' }]))).toBe(0);
  });

  it('waits while another worker holds the lock, and runs once it is gone', async () => {
    const { state, executeTask } = agent();
    const lockKey = lockKeyOf(prefix, 'task:executeTask', [{ id: 't', goal: 'g' }]);
    expect(await redis!.set(lockKey, 'another-worker', 'PX', 60_000, 'NX')).toBe('OK');
    const pending = memoizeTask(executeTask, { cache: c })({ id: 't', goal: 'g' });
    await sleep(100);
    expect(state.runs).toBe(0);
    await redis!.del(lockKey);
    // Nobody published (a foreign lock): the waiter's safety check finds it gone within a second.
    expect((await pending).run).toBe(1);
  });

  it('takes over the lock of a crashed worker once lockTtl has passed', async () => {
    const { state, executeTask } = agent();
    await redis!.set(lockKeyOf(prefix, 'task:executeTask', [{ id: 't', goal: 'g' }]), 'crashed-worker', 'PX', 300);
    const started = performance.now();
    const result = await memoizeTask(executeTask, { cache: c, lockTtl: 0.3 })({ id: 't', goal: 'g' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(performance.now() - started).toBeLessThan(400);
    expect(result.run).toBe(1);
    expect(state.runs).toBe(1);
  });
});

describe('memoizeTask without a working cache', () => {
  it('runs the task on every call and counts the failures', async () => {
    const { state, executeTask } = agent();
    const memoized = memoizeTask(executeTask, { cache: createFailingCache() });
    await memoized({ id: 't', goal: 'g' });
    await memoized({ id: 't', goal: 'g' });
    expect(state.runs).toBe(2);
    expect(cacheStats(memoized).errors).toBeGreaterThanOrEqual(2);
  });
});

describeWith('redis-server')('memoizeTask on a redis-server that hangs or fills up (own server)', () => {
  stopRedisServersAfterAll();

  it('does not wait out lockTtl for a lock whose add timed out and landed later, after its task failed', { timeout: 20_000 }, async () => {
    // The soak's finding: the lock's add times out on a hung server, the server applies it
    // when it resumes, the task fails so no result is stored, and the next call waited 30 s.
    const server = await RedisServer.start();
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: 300, keyPrefix: 'memo-late-lock' });
    try {
      let runs = 0;
      const flaky = memoizeTask(
        async function flaky(goal: string) {
          runs++;
          if (runs === 1) throw new Error('the first run fails');
          return `done: ${goal}`;
        },
        { cache, lockTtl: 30 },
      );
      // Reads go through, writes (the lock's SET NX) wait until the pause ends: the add times out, then lands.
      await server.command('CLIENT', 'PAUSE', '800', 'WRITE');
      await expect(flaky('report')).rejects.toThrow('the first run fails');
      await sleep(1000);
      const started = performance.now();
      expect(await flaky('report')).toBe('done: report');
      expect(performance.now() - started).toBeLessThan(2000);
      expect(runs).toBe(2);
    } finally {
      await cache.close();
      await server.stop();
    }
  });

  it('answers a miss on a full server from the task at once: a refused lock is never waited on', { timeout: 20_000 }, async () => {
    const server = await RedisServer.start({ maxmemory: 4 * 1024 * 1024 });
    const cache = await createDragonflyCache({ url: server.url, commandTimeout: 300, keyPrefix: 'memo-full' });
    try {
      await outages.fill(server, 300);
      const { state, executeTask } = agent();
      const memoized = memoizeTask(executeTask, { cache, lockTtl: 30 });
      const started = performance.now();
      for (let i = 0; i < 5; i++) expect(await memoized({ id: `full-${i}`, goal: 'after the fill' })).toMatchObject({ taskId: `full-${i}` });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(state.runs).toBe(5);
      expect(cacheStats(memoized).errors).toBeGreaterThan(0);
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});

describe('memoizeTask options', () => {
  it('throws a validation CacheError at once for bad options', () => {
    const cache = createMemoryCache();
    const named = async function named() {
      return 1;
    };
    for (const make of [
      () => memoizeTask(async () => 1, { cache }),
      () => memoizeTask(named, { cache, lockTtl: Infinity }),
      () => memoizeTask(named, { cache, lockTtl: 0 }),
      () => memoizeTask(named, { cache, version: {} as never }),
      () => memoizeTask(named, { cache, namespace: 'a b' }),
      () => memoizeTask(named.bind(null), { cache }),
    ]) {
      expect(make).toThrow(CacheError);
    }
    expect(() => memoizeTask(async () => 1, { cache, namespace: 'task:anon' })).not.toThrow();
  });

  it('refuses taskMetadata for a function memoizeTask did not return', async () => {
    await expect(taskMetadata(async () => 1)).rejects.toBeInstanceOf(CacheError);
  });
});

const WORKER = fileURLToPath(new URL('../fixtures/memoize-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Worker {
  process: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startWorker(prefix: string, role: 'worker' | 'crash', lockTtl: number): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, REDIS_URL, prefix, role, String(lockTtl)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { process: child, done };
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describeWith('redis')('memoizeTask across processes on Redis', () => {
  const started: Worker[] = [];
  const redis = redisAvailable ? new Redis(REDIS_URL) : undefined;
  afterEach(async () => {
    for (const w of started.splice(0)) w.process.kill('SIGKILL');
  });

  it('runs the task body once when four processes call it at the same moment', { timeout: 40_000 }, async () => {
    const prefix = uniquePrefix('memo-x');
    const workers = Array.from({ length: 4 }, () => startWorker(prefix, 'worker', 10));
    started.push(...workers);
    await until(async () => Number(await redis!.get(`${prefix}:ready`)) === 4, 'four workers to start');
    await redis!.set(`${prefix}:go`, '1');
    const outcomes = await Promise.all(workers.map((w) => w.done));
    for (const o of outcomes) expect(o.code, o.stderr).toBe(0);
    const results = outcomes.map((o) => JSON.parse(o.stdout) as { run: number; pid: number });
    expect(await redis!.get(`${prefix}:runs`)).toBe('1');
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(results[0]?.run).toBe(1);
    await redis!.del(`${prefix}:ready`, `${prefix}:go`, `${prefix}:runs`);
  });

  it('lets the waiting processes finish after lockTtl when the lock holder is SIGKILLed', { timeout: 40_000 }, async () => {
    const prefix = uniquePrefix('memo-k');
    const holder = startWorker(prefix, 'crash', 2);
    started.push(holder);
    await redis!.set(`${prefix}:go`, '1');
    await until(async () => (await redis!.get(`${prefix}:holder`)) !== null, 'the lock holder to start the task');
    const waiters = Array.from({ length: 3 }, () => startWorker(prefix, 'worker', 2));
    started.push(...waiters);
    await until(async () => Number(await redis!.get(`${prefix}:ready`)) === 4, 'the waiters to start');
    holder.process.kill('SIGKILL');
    const outcomes = await Promise.all(waiters.map((w) => w.done));
    for (const o of outcomes) expect(o.code, o.stderr).toBe(0);
    const results = outcomes.map((o) => JSON.parse(o.stdout) as { run: number });
    // One run by the killed holder, one by the waiter that took over its expired lock.
    expect(await redis!.get(`${prefix}:runs`)).toBe('2');
    expect(results.map((r) => r.run)).toEqual([2, 2, 2]);
    await redis!.del(`${prefix}:ready`, `${prefix}:go`, `${prefix}:runs`, `${prefix}:holder`);
  });
});
