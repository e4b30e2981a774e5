import { MAX_TTL_SECONDS } from '../../src/core/keys.js';

/** An entry whose expiry has already passed: `set` removes the key instead of storing it. */
export const EXPIRED = Symbol('expired');

/**
 * A cachekit TTL in seconds (fractions allowed) from Keyv 5's relative TTL in
 * milliseconds; `undefined` (no TTL given) leaves it to the cache's `defaultTtl`.
 * Past cachekit's longest TTL (about 68 years) an entry never expires.
 */
export function ttlFromMs(ttl: unknown): number | undefined | typeof EXPIRED {
  if (typeof ttl !== 'number' || Number.isNaN(ttl)) return undefined;
  // Keyv 5 turns a TTL of 0 into "none" itself; a negative one reaches the store and means "already expired".
  if (ttl <= 0) return EXPIRED;
  const seconds = ttl / 1000;
  return seconds > MAX_TTL_SECONDS ? Infinity : seconds;
}

/** The same from Keyv 6's absolute expiry (Unix milliseconds); `undefined` or a non-finite one means none given. */
export function ttlFromExpires(expires: unknown): number | undefined | typeof EXPIRED {
  if (typeof expires !== 'number' || !Number.isFinite(expires)) return undefined;
  return ttlFromMs(expires - Date.now());
}
