import { CacheError } from '../core/errors.js';
import type { WrapperStats } from './entry.js';
import { eventsOf } from './wrapper-events.js';

// Stats live beside the wrapper, not on it, so a wrapped object keeps exactly
// its caller's type and no property of ours can shadow one of the target's.
// One registry per process, shared by every copy of cachekit loaded in it (ESM
// and CommonJS builds side by side), so cacheStats from one copy reads wrappers
// made by another; versioned like the per-call context.
const registry: WeakMap<object, WrapperStats> = ((globalThis as Record<symbol, unknown>)[Symbol.for('cachekit.wrapper-stats.v1')] ??= new WeakMap<object, WrapperStats>()) as WeakMap<object, WrapperStats>;

/** Makes `stats` readable through `cacheStats(wrapper)`. */
export function registerStats(wrapper: object, stats: WrapperStats): void {
  registry.set(wrapper, stats);
}

/**
 * A copy of the counters of a cachekit wrapper: what `withCache`, `cachedRag`
 * or `memoizeTask` returned, or a method decorated with `@Cached` (read it from
 * the class's prototype or any instance). Throws a `validation` CacheError for
 * anything else.
 */
export function cacheStats(wrapper: object): WrapperStats {
  const stats = statsOf(wrapper, 'cacheStats');
  return { ...stats, listenerErrors: eventsOf(stats).listenerErrors };
}

/** The live counters of a wrapper; a `validation` CacheError naming `where` for anything else. */
export function statsOf(wrapper: object, where: string): WrapperStats {
  const stats = registry.get(wrapper);
  if (stats === undefined) throw new CacheError(`${where}() takes a value returned by a cachekit wrapper`, 'validation');
  return stats;
}
