/**
 * Every error cachekit throws is a `CacheError`; `errorType` tells callers what
 * went wrong without parsing messages.
 *
 * - `validation`: a key, tenant id, pattern, TTL or option broke a documented rule.
 * - `serialization`: the value cannot be encoded (circular, function, symbol, class instance).
 * - `connection`: the server cannot be reached, or the link dropped.
 * - `timeout`: a command outlived `commandTimeout`.
 * - `server`: the server answered with an error (out of memory, wrong type, ...).
 * - `closed`: the cache was closed with `close()`.
 */
export type CacheErrorType = 'validation' | 'serialization' | 'connection' | 'timeout' | 'server' | 'closed';

export const CACHE_ERROR_TYPES: readonly CacheErrorType[] = [
  'validation',
  'serialization',
  'connection',
  'timeout',
  'server',
  'closed',
];

export class CacheError extends Error {
  readonly errorType: CacheErrorType;

  constructor(message: string, errorType: CacheErrorType, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CacheError';
    this.errorType = errorType;
  }
}

/** The Dragonfly/Redis server could not be reached (`connection`) or did not answer in time (`timeout`). */
export class DragonflyConnectionError extends CacheError {
  constructor(message: string, errorType: 'connection' | 'timeout' = 'connection', options?: { cause?: unknown }) {
    super(message, errorType, options);
    this.name = 'DragonflyConnectionError';
  }
}

export function validationError(message: string): CacheError {
  return new CacheError(message, 'validation');
}
