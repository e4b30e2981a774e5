import { CacheError } from '../core/errors.js';
import type { Cache } from '../core/types.js';
import { currentCacheControl, type CacheControl } from './cache-control.js';
import { tokensOf, type StoredResult, type WrapperStats } from './entry.js';
import type { SingleFlight } from './single-flight.js';

/** Where and how one wrapper caches: shared by every wrapper in src/llm and integrations/. */
export interface CallSite<T> {
  cache: Cache;
  /** Default TTL of stored results, in seconds; the cache's `defaultTtl` when omitted. */
  ttl?: number | undefined;
  /** Default tenant; `withCacheControl({ tenantId })` overrides it per call. */
  tenantId?: string | undefined;
  /** Return `false` to keep a result out of the cache (errors are never cached). */
  shouldCache?: ((result: T) => boolean) | undefined;
  stats: WrapperStats;
  flights: SingleFlight;
}

/** The per-call view of a site: controls in force, resolved tenant and TTL. */
export interface CallPlan {
  control: CacheControl | undefined;
  tenantId: string | undefined;
  ttl: number | undefined;
}

export function planCall(site: Pick<CallSite<unknown>, 'tenantId' | 'ttl'>): CallPlan {
  const control = currentCacheControl();
  return { control, tenantId: control?.tenantId ?? site.tenantId, ttl: control?.ttl ?? site.ttl };
}

// The caller's own mistakes (a bad tenant id, say) are reported; anything the
// cache itself suffers (outage, timeout, unreadable entry) only costs a miss.
export function failOpen(stats: WrapperStats, error: unknown): void {
  if (error instanceof CacheError && error.errorType === 'validation') throw error;
  stats.errors++;
}

/** Whether a cache entry is a `StoredResult` envelope (anything else reads as a miss). */
export function isStored(value: unknown): value is StoredResult {
  return value !== null && typeof value === 'object' && 'value' in value && 'durationMs' in value;
}

/**
 * Reads the stored result for `key`, counting a hit (with what it saved) or a
 * miss. `undefined` on a miss, on a bypass/refresh, and when the cache fails.
 */
export function readCached<T>(site: CallSite<T>, plan: CallPlan, key: string): Promise<StoredResult<T> | undefined> {
  return readThen(site, plan, key, same);
}

/**
 * `readCached` with the caller's next step chained on the read itself: on a
 * hit the answer is one microtask after the cache's, where awaiting
 * `readCached` inside another async function costs a second hop and promise
 * (bench workload 5). Errors thrown by `next` reach the caller, never
 * `failOpen`: they are not the cache's.
 */
export function readThen<T, R>(
  site: CallSite<T>,
  plan: CallPlan,
  key: string,
  next: (hit: StoredResult<T> | undefined) => R | PromiseLike<R>,
): Promise<R> {
  if (plan.control?.bypass || plan.control?.refresh) {
    site.stats.bypasses++;
    return Promise.resolve(undefined).then(next);
  }
  let read: Promise<unknown>;
  try {
    // Promise.resolve returns a native promise as is; it only guards a cache that answers synchronously.
    read = Promise.resolve(site.cache.get(key, plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId }));
  } catch (error) {
    read = Promise.reject(error);
  }
  return read.then(
    (stored) => next(counted<T>(site.stats, stored)),
    (error: unknown) => {
      failOpen(site.stats, error);
      return next(counted<T>(site.stats, undefined));
    },
  );
}

function same<V>(value: V): V {
  return value;
}

function counted<T>(stats: WrapperStats, stored: unknown): StoredResult<T> | undefined {
  if (!isStored(stored)) {
    stats.misses++;
    return undefined;
  }
  stats.hits++;
  stats.tokensSaved += stored.tokens ?? 0;
  stats.latencySavedMs += stored.durationMs;
  return stored as StoredResult<T>;
}

/** Stores a fresh result unless the call or the site says not to; never throws for cache failures. */
export async function storeResult<T>(site: CallSite<T>, plan: CallPlan, key: string, value: T, durationMs: number): Promise<void> {
  if (plan.control?.bypass || plan.control?.noStore) return;
  if (site.shouldCache && !site.shouldCache(value)) return;
  const tokens = tokensOf(value);
  const entry: StoredResult<T> = { value, storedAt: Date.now(), durationMs, ...(tokens === undefined ? {} : { tokens }) };
  try {
    await site.cache.set(key, entry, {
      ...(plan.ttl === undefined ? {} : { ttl: plan.ttl }),
      ...(plan.tenantId === undefined ? {} : { tenantId: plan.tenantId }),
    });
  } catch (error) {
    failOpen(site.stats, error);
  }
}

/**
 * The whole cached call: read, or else one upstream call per key at a time
 * (concurrent identical misses share it), then store. Upstream errors reach
 * the caller and are never cached.
 */
export function cachedCall<T>(site: CallSite<T>, key: string, upstream: () => Promise<T>): Promise<T> {
  const plan = planCall(site);
  if (plan.control?.bypass) {
    site.stats.bypasses++;
    try {
      return Promise.resolve(upstream());
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return readThen(site, plan, key, (hit) => {
    if (hit) return hit.value;
    const flight = `${plan.tenantId === undefined ? '' : plan.tenantId}\u0000${key}`;
    return site.flights.run(flight, async () => {
      const started = performance.now();
      const value = await upstream();
      await storeResult(site, plan, key, value, performance.now() - started);
      return value;
    });
  });
}
