/**
 * Every error cachekit throws is a `CacheError`; `errorType` tells callers what
 * went wrong without parsing messages.
 *
 * - `validation`: a key, tenant id, pattern, TTL or option broke a documented rule.
 * - `serialization`: the value cannot be encoded (circular, function, symbol, class instance).
 * - `connection`: the server cannot be reached, or the link dropped.
 * - `timeout`: a command outlived `commandTimeout`.
 * - `server`: the server answered with an error (wrong type, a refused SELECT, ...).
 * - `refused`: the cache refused a write: the entry is larger than `maxBytes`
 *   (memory), or the server is out of memory (Dragonfly/Redis `OOM`, a full
 *   `noeviction` server). `add` rejects with it, so a refusal never reads as
 *   "a live entry exists"; `set` answers `false` instead.
 * - `closed`: the cache was closed with `close()`.
 */
export type CacheErrorType = 'validation' | 'serialization' | 'connection' | 'timeout' | 'server' | 'refused' | 'closed';

/** Every `errorType`, for exhaustive handling: `CACHE_ERROR_TYPES.includes(error.errorType)`. */
export const CACHE_ERROR_TYPES: readonly CacheErrorType[] = [
  'validation',
  'serialization',
  'connection',
  'timeout',
  'server',
  'refused',
  'closed',
];

/** What a `CacheError` may carry besides its message and type. */
export interface CacheErrorOptions {
  /** The underlying failure (an ioredis error, a TypeError from encoding, ...), as `Error.cause`. */
  cause?: unknown;
  /** See `CacheError.stored`. */
  stored?: number;
}

/**
 * The one error class cachekit throws (or rejects with); see `CacheErrorType`.
 *
 * @example
 * try {
 *   await cache.set('k', value);
 * } catch (error) {
 *   if (error instanceof CacheError && error.errorType === 'refused') log.warn('cache full');
 * }
 */
export class CacheError extends Error {
  /** What went wrong, from a closed list: see `CacheErrorType`. */
  readonly errorType: CacheErrorType;
  /**
   * Set on a `setMany` that failed part-way (an outage after some of its
   * commands landed): how many entries were stored before it failed, `0` when
   * none. A batch is one command per 1 000 keys (per hash slot on a cluster),
   * each atomic, so a failure can leave some groups stored. `undefined` on
   * every other error.
   */
  readonly stored?: number;

  constructor(message: string, errorType: CacheErrorType, options?: CacheErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CacheError';
    this.errorType = errorType;
    if (options?.stored !== undefined) this.stored = options.stored;
  }
}

/** The Dragonfly/Redis server could not be reached (`connection`) or did not answer in time (`timeout`). */
export class DragonflyConnectionError extends CacheError {
  /** `'connection'` or `'timeout'`. */
  declare readonly errorType: 'connection' | 'timeout';

  constructor(message: string, errorType: 'connection' | 'timeout' = 'connection', options?: CacheErrorOptions) {
    super(message, errorType, options);
    this.name = 'DragonflyConnectionError';
  }
}
