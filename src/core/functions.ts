import type { BatchEntries, Cache, CacheStats, GetOrSetOptions, ScopeOptions, SetOptions, StatsOptions } from './types.js';

// The guide's free functions, each a thin wrapper over the `Cache` contract.

/**
 * The guide's `cache_set(key, value, ttl)`: a number as the last argument is the
 * TTL in seconds (`cacheSet(cache, 'k', v, 300)` is `cache.set('k', v, { ttl: 300 })`).
 * The methods take only the object form.
 */
export function cacheSet(cache: Cache, key: string, value: unknown, options?: SetOptions | number): Promise<boolean> {
  return cache.set(key, value, typeof options === 'number' ? { ttl: options } : options);
}

/**
 * The guide's `cache_get(key)`: `cache.get(key, options)`.
 *
 * @example
 * const user = await cacheGet<User>(cache, 'user:123', { tenantId: 'acme' });
 */
export function cacheGet<T = unknown>(cache: Cache, key: string, options?: ScopeOptions): Promise<T | undefined> {
  return cache.get<T>(key, options);
}

/** The guide's `cache_delete(key)`: `cache.delete(key, options)`; `false` when nothing was there.
 *
 * @example
 * await cacheDelete(cache, 'user:123');
 */
export function cacheDelete(cache: Cache, key: string, options?: ScopeOptions): Promise<boolean> {
  return cache.delete(key, options);
}

/**
 * Read-through: the value under `key`, else what `factory` computes, stored
 * with `options` (ttl, tenant, tags, grace; see `Cache.getOrSet`).
 */
export function cacheGetOrSet<T>(cache: Cache, key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T> {
  return cache.getOrSet(key, factory, options);
}

/** Drops every entry of the scope carrying one of `tags` (see `Cache.invalidateTags`). */
export function cacheInvalidateTags(cache: Cache, tags: readonly string[], options?: ScopeOptions): Promise<void> {
  return cache.invalidateTags(tags, options);
}

/** The guide's `cache_clear_pattern(pattern)`: `cache.clearPattern(pattern, options)`; the number removed.
 *
 * @example
 * await cacheClearPattern(cache, 'user:*');
 */
export function cacheClearPattern(cache: Cache, pattern: string, options?: ScopeOptions): Promise<number> {
  return cache.clearPattern(pattern, options);
}

/** The guide's `batch_cache_set(entries, ttl)`: a number as the last argument is the TTL in seconds, as in `cacheSet`. */
export function batchCacheSet(cache: Cache, entries: BatchEntries, options?: SetOptions | number): Promise<number> {
  return cache.setMany(entries, typeof options === 'number' ? { ttl: options } : options);
}

/** The guide's `batch_cache_get(keys)`: `cache.getMany(keys, options)`, a Map of the hits only.
 *
 * @example
 * const found = await batchCacheGet(cache, ['user:1', 'user:2']);
 */
export function batchCacheGet<T = unknown>(cache: Cache, keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>> {
  return cache.getMany<T>(keys, options);
}

/** The guide's `validate_cache()`: `cache.validate()`, `true` when the cache works end to end; never rejects.
 *
 * @example
 * if (!(await validateCache(cache))) console.warn('cache unavailable');
 */
export function validateCache(cache: Cache): Promise<boolean> {
  return cache.validate();
}

/** The guide's `get_cache_stats()`: `cache.stats(options)` (bounded in time; `{ exact: true }` walks every key).
 *
 * @example
 * const { hitRate, size, sizeMargin } = await getCacheStats(cache);
 */
export function getCacheStats(cache: Cache, options?: StatsOptions): Promise<CacheStats> {
  return cache.stats(options);
}
