import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheError } from '../core/errors.js';
import { MAX_TTL_SECONDS } from '../core/keys.js';
import type { Cache, ScopeOptions } from '../core/types.js';
import { markServed } from './cache-info.js';
import { answerStored, countBypass, createCallSite, failOpen, gracedCall, isStored, joinFlight, planCall, readThen, storeResult, type CallPlan, type CallSite } from './cached-call.js';
import type { StoredResult } from './entry.js';
import { codeOf } from './code-identity.js';
import { registerKeyRecipe } from './explain-key.js';
import { checkNamespace, checkSiteOptions, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
import { namespacedKey } from './request-key.js';
import type { Hold } from '../core/single-flight.js';
import { registerStats } from './wrapper-stats.js';

/**
 * Options of `memoizeTask`.
 *
 * @example
 * const summarize = memoizeTask(summarizeDocument, { cache, version: 'v3', ttl: 86_400 });
 */
export interface MemoizeTaskOptions<A extends unknown[], R> extends FreshnessOptions<R, A> {
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
  /** Tokens a result cost, counted as saved on each hit. Default: `tokensOf` (OpenAI, Anthropic and AI SDK `usage` shapes). */
  countTokens?: (result: R) => number | undefined;
}

/** When a memoized task's stored result was produced, and what it cost. */
export interface TaskMetadata {
  /** When the result was stored, epoch milliseconds. */
  storedAt: number;
  /** How long the task ran, milliseconds. */
  durationMs: number;
  /** The tokens the result cost (see `countTokens`), when known. */
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

const MEMOIZE_TASK_OPTIONS = optionNames<MemoizeTaskOptions<unknown[], unknown>>({ cache: true, ttl: true, version: true, key: true, namespace: true, lockTtl: true, tenantId: true, shouldCache: true, countTokens: true, grace: true, graceBackoff: true, softTimeout: true, shouldServeStale: true, tags: true, prices: true });

/**
 * Memoizes an async task for agent frameworks: returns a function with the
 * same signature that returns the task's own result. Concurrent identical
 * calls run the task once in this process and, through a lock in the cache
 * (`add` with `lockTtl`, released with `deleteIfEquals`), once across every
 * process sharing a Dragonfly cache: the others poll with backoff until the
 * result appears, or take the lock when it is released or expires.
 *
 * Rejections reach the caller and are never stored. A cache that fails or
 * refuses the lock (a full server) runs the task unlocked, counted as an
 * error: nobody waits on a lock the cache did not take. The caller gets the
 * result as soon as the task returns; storing it and then releasing the lock
 * follow in the background. Read when and how long a result took
 * with `taskMetadata(memoized, ...args)`, the counters with `cacheStats(memoized)`.
 * Throws a `validation` CacheError at once for bad options.
 */
export function memoizeTask<A extends unknown[], R>(fn: (...args: A) => Promise<R>, options: MemoizeTaskOptions<A, R>): (...args: A) => Promise<R> {
  if (typeof fn !== 'function') throw new CacheError('memoizeTask: fn must be a function', 'validation');
  checkSiteOptions('memoizeTask', options, MEMOIZE_TASK_OPTIONS);
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

  const site = createCallSite({ ...(options as MemoizeTaskOptions<unknown[], unknown>), ...siteFreshness('memoizeTask', options) });
  const keyFn = options.key as ((...args: unknown[]) => unknown) | undefined;
  // The task's code is in the key: two tasks named alike never share results, and a changed task starts afresh.
  const keyInput = (args: unknown[]) => ({ version: version ?? null, code: codeOf(fn), input: keyFn ? keyFn(...args) : args });
  const keyOf = (args: unknown[]): string | undefined => {
    try {
      return namespacedKey(keyInput(args), namespace);
    } catch (error) {
      if (error instanceof CacheError && error.errorType === 'validation') throw error;
      // An argument the key cannot encode, or a key function that threw: uncached, never failed.
      if (!(error instanceof CacheError)) failOpen(site.stats, error);
      return undefined;
    }
  };
  const waitCap = Math.min(MAX_WAIT_MS, lockTtl * 250);

  const memoized = async function (this: unknown, ...args: A): Promise<R> {
    const task = () => fn.apply(this, args);
    const plan = planCall(site);
    const key = keyOf(args);
    if (key === undefined || plan.control?.bypass) {
      countBypass(site.stats);
      return task();
    }
    const joined = joinFlight<R>(site, plan, key);
    if (joined) return joined;
    const start = (failed: boolean): Promise<R> => {
      const started = site.flights.join<R>(plan.tenantId, key, plan.control?.refresh === true);
      if (started) return started.answer;
      return site.flights.run(plan.tenantId, key, (hold) =>
        // A cache that just failed a read would fail the lock too, only later: run unlocked now.
        failed ? produce(site, plan, key, task, hold, () => {}, args) : runLocked(site, plan, key, lockTtl, waitCap, task, hold, args),
      );
    };
    const { freshness } = site;
    if (freshness !== undefined && !plan.control?.refresh) {
      return gracedCall(site, plan, key, freshness, (stored, how) => answerStored(site, stored, how, key) as R, start);
    }
    return readThen(site, plan, key, (hit, failed) => (hit ? (hit.value as R) : start(failed)));
  };
  memos.set(memoized, { site, keyOf });
  registerKeyRecipe(memoized, (args) => ({ input: keyInput(args), namespace, tenantId: options.tenantId }));
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

// Lock tokens are `<this process>:<call>`: a waiter that finds a lock of its
// own process that no live call holds knows it is stale (an `add` that timed
// out and landed later) and need not wait out its lockTtl.
const PROCESS_TAG = randomUUID();
const liveTokens = new Set<string>();
// Releasing a lock is retried while the cache is unreachable, for at most the lock's TTL.
const FIRST_RELEASE_RETRY_MS = 100;

function isOutage(error: unknown): boolean {
  return error instanceof CacheError && (error.errorType === 'connection' || error.errorType === 'timeout');
}

/**
 * Runs the task and stores its result; `after` (the lock's release) is sent
 * right behind the write, never delaying the caller. On one connection the
 * server applies them in that order, so a waiter never finds neither result
 * nor lock; both are in flight before the caller can close the cache.
 */
async function produce<R>(
  site: CallSite<unknown>,
  plan: CallPlan,
  key: string,
  task: () => Promise<R>,
  hold: Hold<R> | undefined,
  after: () => void,
  args: readonly unknown[],
): Promise<R> {
  const started = performance.now();
  let value: R;
  try {
    value = await task();
  } catch (error) {
    after();
    throw error;
  }
  const held = storeResult(site, plan, key, value, performance.now() - started, args);
  if (held) hold?.(value, held);
  after();
  markServed(value, { status: plan.control?.refresh ? 'bypass' : 'miss', key });
  return value;
}

async function runLocked<R>(
  site: CallSite<unknown>,
  plan: CallPlan,
  key: string,
  lockTtl: number,
  waitCap: number,
  task: () => Promise<R>,
  hold: Hold<R>,
  args: readonly unknown[],
): Promise<R> {
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
  const release = (token: string) => releaseLock(site, lockKey, token, scoped, lockTtl);
  let wait = FIRST_WAIT_MS;
  for (;;) {
    const token = `${PROCESS_TAG}:${randomUUID()}`;
    let acquired: boolean;
    try {
      acquired = await cache.add(lockKey, token, { ttl: lockTtl, ...scoped });
    } catch (error) {
      // Refused (a full server) or unreachable: never wait on a lock the cache would not take.
      failOpen(site.stats, error);
      // An `add` that timed out may still land: clean up as if it had, since only we hold the token.
      return produce(site, plan, key, task, hold, isOutage(error) ? () => release(token) : () => {}, args);
    }
    if (acquired) {
      liveTokens.add(token);
      let done: StoredResult<R> | undefined;
      try {
        // Another process may have stored the result and released the lock since our read.
        done = refresh ? undefined : await fresh().catch((error: unknown) => void failOpen(site.stats, error));
      } catch (error) {
        release(token);
        throw error;
      }
      if (done) {
        release(token);
        return done.value;
      }
      // The lock is released once the result is stored, so a waiter never finds neither.
      return produce(site, plan, key, task, hold, () => release(token), args);
    }
    for (;;) {
      await sleep(wait);
      wait = Math.min(wait * 1.5, waitCap);
      let holder: unknown;
      try {
        const done = await fresh();
        if (done) return done.value;
        holder = await cache.get(lockKey, scoped);
      } catch (error) {
        failOpen(site.stats, error);
        return produce(site, plan, key, task, hold, () => {}, args);
      }
      if (holder === undefined) break;
      if (typeof holder === 'string' && holder.startsWith(`${PROCESS_TAG}:`) && !liveTokens.has(holder)) {
        // Ours, and no call of ours holds it: nobody will ever release it but us.
        await cache.deleteIfEquals(lockKey, holder, scoped).catch((error: unknown) => void failOpen(site.stats, error));
        break;
      }
    }
  }
}

/** Deletes the lock if it still holds `token`, retrying while the cache is unreachable. */
function releaseLock(site: CallSite<unknown>, lockKey: string, token: string, scoped: ScopeOptions | undefined, lockTtl: number): void {
  const giveUpAt = Date.now() + lockTtl * 1000;
  let retryMs = FIRST_RELEASE_RETRY_MS;
  const attempt = (): void => {
    site.cache.deleteIfEquals(lockKey, token, scoped).then(
      () => liveTokens.delete(token),
      (error: unknown) => {
        if (!(error instanceof CacheError && error.errorType === 'validation')) failOpen(site.stats, error);
        // Unreleased, the lock still expires after lockTtl.
        if (!isOutage(error) || Date.now() + retryMs > giveUpAt) return void liveTokens.delete(token);
        setTimeout(attempt, retryMs).unref();
        retryMs = Math.min(retryMs * 2, 2000);
      },
    );
  };
  attempt();
}
