import type { CacheEvents } from './events.js';

/** Options that choose whose entries an operation sees. */
export interface ScopeOptions {
  /**
   * Isolates the operation to one tenant: it can neither read, write, count nor
   * delete entries of another tenant or the untenanted ones. Any non-empty,
   * well-formed string up to 256 characters. Default: untenanted.
   */
  tenantId?: string;
}

export interface SetOptions extends ScopeOptions {
  /**
   * Time to live in **seconds** (fractions allowed, millisecond precision).
   * Overrides the cache's `defaultTtl`; `Infinity` means "never expires".
   * `0`, negatives, `NaN` and non-numbers are `validation` errors.
   */
  ttl?: number;
}

/** Options of `stats()`. */
export interface StatsOptions extends ScopeOptions {
  /**
   * Count `size` and `memoryMb` by walking every key of the scope (Dragonfly:
   * `SCAN` + `MEMORY USAGE`, time proportional to the whole keyspace) instead
   * of the bounded estimate. Default `false`. The memory backend always counts.
   */
  exact?: boolean;
}

/** What `inspect` tells about one entry, without counting a read or refreshing its recency. */
export interface EntryInfo {
  /** The stored value, decoded (a private copy, as `get` returns it). */
  value: unknown;
  /** Seconds left before it expires (milliseconds precision); `Infinity` when it never expires. */
  ttl: number;
  /** Bytes it takes: memory, UTF-8 bytes of its raw key and encoding; Dragonfly, the server's `MEMORY USAGE`. */
  bytes: number;
}

/** What `setMany` / `batchCacheSet` accept: a record, a Map, or any iterable of `[key, value]` pairs. */
export type BatchEntries = Record<string, unknown> | Map<string, unknown> | Iterable<readonly [string, unknown]>;

/**
 * What `stats()` answers: this cache object's counters and the scope's size.
 *
 * @example
 * const { hits, misses, hitRate, size, sizeMethod, sizeMargin } = await cache.stats();
 */
export interface CacheStats {
  /** Gets (single or batched, per key) that found a live entry. */
  hits: number;
  /** Gets that found nothing, an expired entry or unreadable data. */
  misses: number;
  /** hits / (hits + misses), 0 when nothing was read. */
  hitRate: number;
  /** misses / (hits + misses), 0 when nothing was read. */
  missRate: number;
  /** Live entries in scope (expired entries are never counted); an estimate unless `sizeMethod` is `'counted'`. */
  size: number;
  /** Bytes held by the live entries in scope, in MiB (memory: counted by the cache; Dragonfly: `MEMORY USAGE`, estimated like `size`). */
  memoryMb: number;
  /**
   * How `size` and `memoryMb` were obtained: `'counted'` (every entry, as the
   * memory backend always does and Dragonfly with `{ exact: true }`) or
   * `'estimated'` (Dragonfly by default: sampled in bounded time, see README).
   */
  sizeMethod: 'counted' | 'estimated';
  /**
   * How far off `size` may be, in entries: the half-width of the estimate's
   * 99% interval (the true size is within `size ± sizeMargin` 99 times in
   * 100). `0` when counted.
   */
  sizeMargin: number;
  /** Entries stored. */
  sets: number;
  /** Entries removed by `delete` or `clearPattern`. */
  deletes: number;
  /** Entries removed to make room (memory: LRU; Dragonfly: the server's `evicted_keys`). */
  evictions: number;
  /** Entries that reached their TTL (memory: counted when noticed; Dragonfly: the server's `expired_keys`). */
  expirations: number;
  /** Operations that failed, plus entries whose stored data could not be decoded. */
  errors: number;
  /** Event listener calls that threw or rejected (never the operations'; counted for the whole cache). */
  listenerErrors: number;
}

/**
 * The one contract every backend implements. Every method returns a Promise and
 * reports failures as a rejected `CacheError`, never a synchronous throw.
 */
export interface Cache extends CacheEvents {
  /** `'memory'`, `'dragonfly'`, ... */
  readonly kind: string;
  /** The value stored under `key`, or `undefined` when absent, expired or unreadable. */
  get<T = unknown>(key: string, options?: ScopeOptions): Promise<T | undefined>;
  /** Stores `value`; `false` when the cache declined it (larger than the cache allows, server out of memory). */
  set(key: string, value: unknown, options?: SetOptions): Promise<boolean>;
  /** Stores `value` only if `key` holds no live entry; `true` when it was stored. */
  add(key: string, value: unknown, options?: SetOptions): Promise<boolean>;
  /** Removes `key`; `false` when nothing was there. */
  delete(key: string, options?: ScopeOptions): Promise<boolean>;
  /** Removes `key` only while it still holds `expected` (compared by encoding); `true` when removed. */
  deleteIfEquals(key: string, expected: unknown, options?: ScopeOptions): Promise<boolean>;
  /** Removes every key of the scope matching a Redis glob `pattern`; the number removed. */
  clearPattern(pattern: string, options?: ScopeOptions): Promise<number>;
  /**
   * The keys of the scope matching a Redis glob `pattern`, exactly as given to
   * `set` (without prefix or tenant), by the same scope and glob rules as
   * `clearPattern`: `for await (const key of cache.keys('user:*', { tenantId }))`.
   * Read page by page (Dragonfly: `SCAN`, on every master of a cluster; never
   * `KEYS`), so a listing never holds the whole keyspace. Expired entries are
   * never listed; a key written or deleted during the listing may or may not
   * be. Errors (a bad pattern, an outage, a closed cache) reject `next()`.
   */
  keys(pattern: string, options?: ScopeOptions): AsyncIterable<string>;
  /** The live entries among `keys`, as a Map of the hits only. */
  getMany<T = unknown>(keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>>;
  /** Stores every entry, all or none validated first; the number stored. */
  setMany(entries: BatchEntries, options?: SetOptions): Promise<number>;
  /**
   * The live entry under `key` with its TTL left and size, or `undefined` when
   * absent or expired; for tools (the `cachekit inspect` command), so it counts
   * neither a hit nor a miss and does not refresh the entry's recency.
   */
  inspect(key: string, options?: ScopeOptions): Promise<EntryInfo | undefined>;
  /**
   * Counters and size of the scope (the whole cache when no tenant is given),
   * answered in bounded time on any keyspace unless `exact` is asked for.
   */
  stats(options?: StatsOptions): Promise<CacheStats>;
  /** `true` when the cache works end to end; never rejects. */
  validate(): Promise<boolean>;
  /** Removes every entry of this cache's own namespace (all tenants), nothing else. */
  clear(): Promise<void>;
  /** Releases resources; later operations reject with a `closed` error. */
  close(): Promise<void>;
}
