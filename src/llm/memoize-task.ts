import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheError } from '../core/errors.js';
import { MAX_TTL_SECONDS } from '../core/keys.js';
import type { Cache, ScopeOptions } from '../core/types.js';
import { failOpen, isStored, planCall, readCached, storeResult, type CallPlan, type CallSite } from './cached-call.js';
import { emptyWrapperStats, type StoredResult } from './entry.js';
import { checkCache, checkFunction, checkNamespace, checkTenant, checkTtl } from './options.js';
import { requestKey } from './request-key.js';
import { SingleFlight } from './single-flight.js';
import { registerStats } from './wrapper-stats.js';

export interface MemoizeTaskOptions<A extends unknown[], R> {
  /** Where results and locks are stored. Required. On Dragonfly, identical calls run once across processes. */
  cache: Cache;
  /** TTL of stored results, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /** Version of the task's code, hashed into every key: bump it when the task changes and old results are never returned. Default: none. */
  version?: string | number;
  /**
   * What identifies a run instead of the arguments, e.g. the task id:
   * `key: (task) => task.id`. Default: all arguments.
   */
  key?: (...args: A) => unknown;
  /**
   * Readable key segment: results are stored at `v1:<namespace>:<sha256>` and
   * locks at `v1:<namespace>:<sha256>:lock`. Default: `task:<fn.name>`; required
   * for anonymous functions. Two tasks sharing a cache need different namespaces.
   */
  namespace?: string;
  /**
   * Seconds a running task's lock lives, a positive finite number: the longest
   * a crashed worker can keep others waiting. Keep it above the task's longest
   * run, or a second worker may start it while the first still runs. Default 30.
   */
  lockTtl?: number;
  /** Tenant whose results are read and written; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /** Return `false` to keep a result out of the cache (rejections never are cached). Default: cache every result. */
  shouldCache?: (result: R) => boolean;
}

/** When a memoized task's stored result was produced, and what it cost. */
export interface TaskMetadata {
  /** When the result was stored, epoch milliseconds. */
  storedAt: number;
  /** How long the task ran, milliseconds. */
  durationMs: number;
  /** `usage.total_tokens` of the result, when it has one. */
  tokens?: number;
}

interface Memo {
  site: CallSite<unknown>;
  keyOf: (args: unknown[]) => string | undefined;
}

const memos = new WeakMap<object, Memo>();
const DEFAULT_LOCK_TTL = 30;
const FIRST_WAIT_MS = 10;
const MAX_WAIT_MS = 1000;

/**
 * Memoizes an async task for agent frameworks: returns a function with the
 * same signature that returns the task's own result. Concurrent identical
 * calls run the task once in this process and, through a lock in the cache
 * (`add` with `lockTtl`, released with `deleteIfEquals`), once across every
 * process sharing a Dragonfly cache: the others poll with backoff until the
 * result appears, or take the lock when it is released or expires.
 *
 * Rejections reach the caller and are never stored. A failing cache runs the
 * task unlocked (counted as an error). Read when and how long a result took
 * with `taskMetadata(memoized, ...args)`, the counters with `cacheStats(memoized)`.
 * Throws a `validation` CacheError at once for bad options.
 */
export function memoizeTask<A extends unknown[], R>(fn: (...args: A) => Promise<R>, options: MemoizeTaskOptions<A, R>): (...args: A) => Promise<R> {
  if (typeof fn !== 'function') throw new CacheError('memoizeTask: fn must be a function', 'validation');
  if (options === null || typeof options !== 'object') throw new CacheError('memoizeTask: options must be an object', 'validation');
  checkCache(options.cache, 'memoizeTask');
  checkTtl(options.ttl, 'memoizeTask: ttl');
  checkTenant(options.tenantId);
  checkFunction(options.key, 'memoizeTask: key');
  checkFunction(options.shouldCache, 'memoizeTask: shouldCache');
  const { version } = options;
  if (version !== undefined && typeof version !== 'string' && typeof version !== 'number') {
    throw new CacheError('memoizeTask: version must be a string or a number', 'validation');
  }
  const lockTtl = options.lockTtl ?? DEFAULT_LOCK_TTL;
  if (typeof lockTtl !== 'number' || !(lockTtl > 0) || lockTtl > MAX_TTL_SECONDS) {
    throw new CacheError(`memoizeTask: lockTtl must be a positive finite number of seconds, got ${String(lockTtl)}`, 'validation');
  }
  if (options.namespace === undefined && !fn.name) {
    throw new CacheError('memoizeTask: an anonymous function needs options.namespace', 'validation');
  }
  const namespace = options.namespace ?? `task:${fn.name}`;
  checkNamespace(namespace, 'memoizeTask');

  const site: CallSite<unknown> = {
    cache: options.cache,
    ttl: options.ttl,
    tenantId: options.tenantId,
    shouldCache: options.shouldCache as ((result: unknown) => boolean) | undefined,
    stats: emptyWrapperStats(),
    flights: new SingleFlight(),
  };
  const keyFn = options.key as ((...args: unknown[]) => unknown) | undefined;
  const keyOf = (args: unknown[]): string | undefined => {
    try {
      return requestKey({ version: version ?? null, input: keyFn ? keyFn(...args) : args }, { namespace });
    } catch (error) {
      if (error instanceof CacheError && error.errorType === 'serialization') return undefined;
      throw error;
    }
  };
  const waitCap = Math.min(MAX_WAIT_MS, lockTtl * 250);

  const memoized = async function (this: unknown, ...args: A): Promise<R> {
    const task = () => fn.apply(this, args);
    const plan = planCall(site);
    const key = keyOf(args);
    if (key === undefined || plan.control?.bypass) {
      site.stats.bypasses++;
      return task();
    }
    const hit = await readCached(site, plan, key);
    if (hit) return hit.value as R;
    const flight = `${plan.tenantId ?? ''}\u0000${key}`;
    return site.flights.run(flight, () => runLocked(site, plan, key, lockTtl, waitCap, task)) as Promise<R>;
  };
  memos.set(memoized, { site, keyOf });
  registerStats(memoized, site.stats);
  return memoized;
}

/**
 * Metadata of the stored result `memoized(...args)` would return, or
 * `undefined` when none is stored. Honours the tenant of `withCacheControl`.
 * Rejects with the cache's own error when the cache fails, and with a
 * `validation` CacheError when `memoized` was not made by `memoizeTask`.
 */
export async function taskMetadata<A extends unknown[]>(memoized: (...args: A) => Promise<unknown>, ...args: A): Promise<TaskMetadata | undefined> {
  const memo = memos.get(memoized);
  if (!memo) throw new CacheError('taskMetadata() takes a function returned by memoizeTask', 'validation');
  const key = memo.keyOf(args);
  if (key === undefined) return undefined;
  const stored = await memo.site.cache.get(key, scope(planCall(memo.site)));
  if (!isStored(stored)) return undefined;
  return { storedAt: stored.storedAt, durationMs: stored.durationMs, ...(stored.tokens === undefined ? {} : { tokens: stored.tokens }) };
}

function scope(plan: CallPlan): ScopeOptions | undefined {
  return plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId };
}

async function produce<R>(site: CallSite<unknown>, plan: CallPlan, key: string, task: () => Promise<R>): Promise<R> {
  const started = performance.now();
  const value = await task();
  await storeResult(site, plan, key, value, performance.now() - started);
  return value;
}

async function runLocked<R>(site: CallSite<unknown>, plan: CallPlan, key: string, lockTtl: number, waitCap: number, task: () => Promise<R>): Promise<R> {
  const { cache } = site;
  const lockKey = `${key}:lock`;
  const scoped = scope(plan);
  // A refresh must not be answered by the entry it was asked to replace: only
  // by one another worker stored after it began.
  const refresh = plan.control?.refresh === true;
  const since = refresh ? Date.now() : -Infinity;
  const fresh = async (): Promise<StoredResult<R> | undefined> => {
    const stored = await cache.get(key, scoped);
    return isStored(stored) && stored.storedAt > since ? (stored as StoredResult<R>) : undefined;
  };
  let wait = FIRST_WAIT_MS;
  for (;;) {
    const token = randomUUID();
    let acquired: boolean;
    try {
      acquired = await cache.add(lockKey, token, { ttl: lockTtl, ...scoped });
    } catch (error) {
      failOpen(site.stats, error);
      return produce(site, plan, key, task);
    }
    if (acquired) {
      try {
        // Another process may have stored the result and released the lock since our read.
        const done = refresh ? undefined : await fresh().catch((error: unknown) => failOpen(site.stats, error));
        if (done) return done.value;
        return await produce(site, plan, key, task);
      } finally {
        await cache.deleteIfEquals(lockKey, token, scoped).catch(() => {
          // Unreleased, the lock still expires after lockTtl.
          site.stats.errors++;
        });
      }
    }
    for (;;) {
      await sleep(wait);
      wait = Math.min(wait * 1.5, waitCap);
      let held: boolean;
      try {
        const done = await fresh();
        if (done) return done.value;
        held = (await cache.get(lockKey, scoped)) !== undefined;
      } catch (error) {
        failOpen(site.stats, error);
        return produce(site, plan, key, task);
      }
      if (!held) break;
    }
  }
}
