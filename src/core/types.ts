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
  /**
   * Tags the entry carries (non-empty strings, at most `MAX_TAGS`):
   * `cache.invalidateTags(['doc:42'])` then drops every entry of the scope
   * that carries one of them. A write replaces the key's tags (none given:
   * none kept). An untagged entry costs nothing extra; reading a tagged one
   * costs one more round trip on Dragonfly (its tags' invalidation times).
   */
  tags?: readonly string[];
}

/**
 * What `writeEntry` takes: `set`'s options plus what a read-through needs.
 * (`getOrSet` and the LLM wrappers build these; most callers use `set`.)
 */
export interface EntryOptions extends SetOptions {
  /**
   * Seconds the entry is kept past its `ttl` (fractions allowed) for
   * `readEntry`, which hands it out marked stale; `get` never returns it once
   * its `ttl` is over. Needs a finite `ttl`. Default: none.
   */
  grace?: number;
  /**
   * When the value's computation started, epoch milliseconds (`Date.now()`):
   * an invalidation of one of its `tags` after this moment makes it invalid
   * even if the write lands later. Default: the time of the write.
   */
  startedAt?: number;
}

/** What `readEntry` found: the value, and whether it is past its `ttl` (within its grace). */
export interface CacheEntry<T = unknown> {
  /** The stored value, decoded (a private copy, as `get` returns it). */
  value: T;
  /** `true` when the entry is past its `ttl`, kept only by its grace: `get` would not return it. */
  stale: boolean;
}

/** `'shared'`: one upstream call per key across processes (where the backend can); `'local'`: per process. */
export type SingleFlightMode = 'shared' | 'local';

/** How identical misses are collapsed: the same names on `getOrSet` and every wrapper. */
export interface SingleFlightOptions {
  /**
   * `'shared'`: identical misses make one upstream call across every process
   * sharing the Dragonfly/Redis cache (a lock beside the entry, waiters woken
   * by pub/sub); `'local'`: one per process. On the memory backend `'shared'`
   * collapses the calls of every wrapper on that cache in this process.
   * Default `'local'` (`memoizeTask`: `'shared'`).
   */
  singleFlight?: SingleFlightMode;
  /**
   * Seconds a shared flight's lock lives without a heartbeat (the holder
   * beats every lockTtl/3): how long a crashed holder keeps the others
   * waiting. A positive finite number. Needs `singleFlight: 'shared'`. Default 30.
   */
  lockTtl?: number;
  /**
   * Milliseconds a waiter waits for the holder, from its first failed lock
   * attempt, before it calls upstream itself. A positive finite number.
   * Needs `singleFlight: 'shared'`. Default 2 x lockTtl.
   */
  maxWait?: number;
}

/** The options of `getOrSet`: where and how long to store what `factory` computes, and how to survive its failures. */
export interface GetOrSetOptions extends SetOptions, SingleFlightOptions {
  /**
   * Seconds an entry is kept past its `ttl` (fractions allowed), counted from
   * its expiry and never extended by serving it: when `factory` rejects and
   * `shouldServeStale(error)` holds, the stale value is answered instead (and
   * counted in `staleHits`). Needs a finite `ttl` (or `defaultTtl`). Default: none.
   */
  grace?: number;
  /**
   * Milliseconds before the first retry of a failing factory while a stale
   * value can be served (calls in between get the stale value without calling
   * it); each further failure in a row doubles the wait, up to 30 times this
   * (30 s by default). Per key and tenant. Needs `grace`. Default 1000.
   */
  graceBackoff?: number;
  /**
   * Milliseconds to wait for `factory` when a stale value is at hand: past
   * this the stale value is answered and the factory's result is still stored
   * when it arrives (stale-while-revalidate; `0` answers stale at once).
   * Without a stale value it changes nothing. Needs `grace`. Default: wait.
   */
  softTimeout?: number;
  /**
   * Whether a factory's error may be answered with the stale value. Default:
   * `true`, except for an HTTP 4xx error (a `status` or `statusCode` of
   * 400-499) other than 408, 409 and 429, and the caller's own abort (an
   * `AbortError` or the SDK's `APIUserAbortError`), which are the caller's
   * to see.
   */
  shouldServeStale?: (error: unknown) => boolean;
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
  /** `getOrSet` calls answered with a stale value (within its grace) because the factory failed or was slower than `softTimeout`. */
  staleHits: number;
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
   * Read-through: the value under `key`, else `factory()`'s, stored in the
   * background (see README). Concurrent calls for one key and tenant in this
   * process share one `factory` call. With `grace`, a stale value survives a
   * failing or slow factory. A failing cache never fails the call: `factory`
   * runs and the failure is counted in `errors`. `factory`'s own rejections
   * reach the caller (unless a stale value is served) and are never stored.
   */
  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T>;
  /**
   * Drops every entry of the scope (untenanted, or `tenantId`'s) carrying one
   * of `tags`, and any value whose computation started before this call and
   * is stored later: none of them is ever served again, stale or not.
   * Resolves once the invalidation is in place. No key scan: one small record
   * per tag.
   */
  invalidateTags(tags: readonly string[], options?: ScopeOptions): Promise<void>;
  /**
   * The low-level read `getOrSet` and the LLM wrappers build on: the entry,
   * also one past its `ttl` but within its grace (`stale: true`); never an
   * expired, deleted or invalidated one. Counts a hit when fresh, a miss otherwise.
   */
  readEntry<T = unknown>(key: string, options?: ScopeOptions): Promise<CacheEntry<T> | undefined>;
  /** The low-level write beside `readEntry`: `set` with a grace period and the computation's start. */
  writeEntry(key: string, value: unknown, options?: EntryOptions): Promise<boolean>;
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
