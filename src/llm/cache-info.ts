/** How a wrapper answered a call: see `cacheInfo`. */
export interface CacheInfo {
  /**
   * `hit`: from the cache (or an identical call's answer still being stored);
   * `miss`: from upstream (also for callers who joined an identical call);
   * `stale`: from an entry past its ttl, within its grace, because upstream
   * failed, was slower than `softTimeout`, or was backing off;
   * `bypass`: from upstream, the cache skipped (`bypass`/`refresh` controls,
   * a call that cannot be keyed).
   */
  status: 'hit' | 'miss' | 'stale' | 'bypass';
  /** When the answer was stored, epoch milliseconds (hits and stale answers). */
  storedAt?: number;
  /** The key the answer is stored under, inside its tenant's scope. */
  key?: string;
}

// Beside the values, like the stats registry: the result keeps exactly its
// type and no property of ours can shadow one of its own. One registry per
// process, shared by every copy of cachekit loaded in it.
const registry: WeakMap<object, CacheInfo> = ((globalThis as Record<symbol, unknown>)[Symbol.for('cachekit.cache-info.v1')] ??= new WeakMap<object, CacheInfo>()) as WeakMap<object, CacheInfo>;

/** Records how `result` was answered; primitives (nothing to attach to) are left alone. */
export function markServed(result: unknown, info: CacheInfo): void {
  if (result !== null && (typeof result === 'object' || typeof result === 'function')) registry.set(result, info);
}

/**
 * How a cachekit wrapper answered: `{ status, storedAt?, key? }` for an
 * object or stream any wrapper returned (`withCache`, `cachedRag`, `@Cached`,
 * `memoizeTask`, `cachedOpenAI` and the integrations). `undefined` for
 * primitives (a string answer has nowhere to carry it) and for values no
 * wrapper returned. The result itself is never changed.
 */
export function cacheInfo(result: unknown): CacheInfo | undefined {
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return undefined;
  const info = registry.get(result);
  return info && { ...info };
}
