import { CacheError } from '../core/errors.js';
import type { Cache, ScopeOptions } from '../core/types.js';
import { cachedCall, countBypass, createCallSite, failOpen, isStored, planCall, type CallPlan, type CallSite } from './cached-call.js';
import { codeOf } from './code-identity.js';
import { registerKeyRecipe } from './explain-key.js';
import { checkNamespace, checkSiteOptions, FRESHNESS_OPTIONS, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
import { namespacedKey } from './request-key.js';
import { registerStats } from './wrapper-stats.js';

/**
 * Options of `memoizeTask`.
 *
 * @example
 * const summarize = memoizeTask(summarizeDocument, { cache, version: 'v3', ttl: 86_400 });
 */
export interface MemoizeTaskOptions<A extends unknown[], R> extends FreshnessOptions<R, A> {
  /** Where results and locks are stored. Required. On Dragonfly, identical calls run once across processes (see `singleFlight`). */
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
   * Readable key segment: results are stored at `v1:<namespace>:<sha256>`.
   * Default: `task:<fn.name>`; required for anonymous functions. Two tasks
   * sharing a cache need different namespaces.
   */
  namespace?: string;
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

const MEMOIZE_TASK_OPTIONS = optionNames<MemoizeTaskOptions<unknown[], unknown>>({ cache: true, ttl: true, version: true, key: true, namespace: true, tenantId: true, shouldCache: true, countTokens: true, ...FRESHNESS_OPTIONS });

/**
 * Memoizes an async task for agent frameworks: returns a function with the
 * same signature that returns the task's own result. Concurrent identical
 * calls run the task once in this process and, with the default
 * `singleFlight: 'shared'`, once across every process sharing a Dragonfly
 * cache: the others wait for the holder's message, or take the lock when
 * it is released or expires (see README, "Many processes").
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
  checkSiteOptions('memoizeTask', options, MEMOIZE_TASK_OPTIONS, false, 'shared');
  const { version } = options;
  if (version !== undefined && typeof version !== 'string' && typeof version !== 'number') {
    throw new CacheError('memoizeTask: version must be a string or a number', 'validation');
  }
  if (options.namespace === undefined && !fn.name) {
    throw new CacheError('memoizeTask: an anonymous function needs options.namespace', 'validation');
  }
  const namespace = options.namespace ?? `task:${fn.name}`;
  checkNamespace(namespace, 'memoizeTask');

  const site = createCallSite({ ...(options as MemoizeTaskOptions<unknown[], unknown>), ...siteFreshness('memoizeTask', options, 'shared') });
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

  const memoized = async function (this: unknown, ...args: A): Promise<R> {
    const task = () => fn.apply(this, args);
    const key = keyOf(args);
    if (key === undefined) {
      countBypass(site.stats);
      return task();
    }
    return cachedCall<R>(site, key, { upstream: task, args });
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
