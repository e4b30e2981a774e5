import { EventHub, type CacheEvents } from '../core/events.js';
import type { WrapperStats } from './entry.js';
import { statsOf } from './wrapper-stats.js';

// One hub per wrapper's counters, found from them, so every site that counts
// with a wrapper emits with it, and no integration has to pass a hub along.
// Shared by every copy of cachekit in the process, like the stats registry.
const hubs: WeakMap<WrapperStats, EventHub> = ((globalThis as Record<symbol, unknown>)[Symbol.for('cachekit.wrapper-events.v1')] ??= new WeakMap<WrapperStats, EventHub>()) as WeakMap<WrapperStats, EventHub>;

/** The hub of the wrapper counting into `stats`, made on first use. */
export function eventsOf(stats: WrapperStats): EventHub {
  let hub = hubs.get(stats);
  if (hub === undefined) {
    hub = new EventHub();
    hubs.set(stats, hub);
  }
  return hub;
}

/**
 * The events of a cachekit wrapper (what `withCache`, `cachedRag`,
 * `memoizeTask` or `cachedOpenAI` returned, or a method decorated with
 * `@Cached`): `hit` (with `tokensSaved` and `latencySavedMs`), `miss`,
 * `bypass`, `set` (a fresh result's write landed), `error` (a cache failure
 * the call survived), and `stale` once grace serves one. Throws a
 * `validation` CacheError for anything else. The wrapped object keeps its type:
 * the events live beside it, as its stats do.
 *
 * @example
 * const gw = withCache(gateway, { cache });
 * cacheEvents(gw).on('hit', (e) => console.log(`${e.namespace}: saved ${e.tokensSaved} tokens`));
 */
export function cacheEvents(wrapper: object): CacheEvents {
  return eventsOf(statsOf(wrapper, 'cacheEvents'));
}
