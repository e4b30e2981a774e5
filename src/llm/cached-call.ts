import { CacheError } from '../core/errors.js';
import type { CacheEvent, CacheEventType, EventHub } from '../core/events.js';
import type { Cache, SetOptions } from '../core/types.js';
import { currentCacheControl, type CacheControl } from './cache-control.js';
import { emptyWrapperStats, tokensOf, type StoredResult, type WrapperStats } from './entry.js';
import { SingleFlight, type Copies, type Held, type Hold } from './single-flight.js';
import { eventsOf } from './wrapper-events.js';

/** Where and how one wrapper caches: shared by every wrapper in src/llm and integrations/. */
export interface CallSite<T> {
  cache: Cache;
  /** Default TTL of stored results, in seconds; the cache's `defaultTtl` when omitted. */
  ttl?: number | undefined;
  /** Default tenant; `withCacheControl({ tenantId })` overrides it per call. */
  tenantId?: string | undefined;
  /** Return `false` to keep a result out of the cache (errors are never cached). */
  shouldCache?: ((result: T) => boolean) | undefined;
  /** Tokens a result cost upstream, counted as saved on each hit. Default: `tokensOf`. */
  countTokens?: ((result: T) => number | undefined) | undefined;
  stats: WrapperStats;
  flights: SingleFlight;
  /** The wrapper's events (`cacheEvents(wrapper)`): one hub per `stats`, so sites that count together emit together. */
  events: EventHub;
  /** The namespace the site's keys are made in, for its events and metrics. */
  namespace?: string | undefined;
}

/**
 * A site with its own counters and single-flight group, unless given ones to
 * share (one wrapper's several sites count together and may share flights).
 */
export function createCallSite<T = unknown>(
  options: Pick<CallSite<T>, 'cache' | 'ttl' | 'tenantId' | 'shouldCache' | 'countTokens'> & { namespace?: unknown },
  shared: { stats?: WrapperStats; flights?: SingleFlight } = {},
): CallSite<T> {
  const stats = shared.stats ?? emptyWrapperStats();
  return {
    cache: options.cache,
    ttl: options.ttl,
    tenantId: options.tenantId,
    shouldCache: options.shouldCache,
    countTokens: options.countTokens,
    stats,
    flights: shared.flights ?? new SingleFlight(),
    events: eventsOf(stats),
    namespace: typeof options.namespace === 'string' ? options.namespace : undefined,
  };
}

/** The per-call view of a site: controls in force, resolved tenant and TTL. */
export interface CallPlan {
  control: CacheControl | undefined;
  tenantId: string | undefined;
  ttl: number | undefined;
  /** The model the call asks for, when the integration knows it: only for events and metrics (`gen_ai.request.model`). */
  model?: string | undefined;
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
  const events = eventsOf(stats);
  if (events.listening) events.emit({ type: 'error', source: 'llm', operation: 'call', count: 1, error });
}

/**
 * Counts a call that skipped the cache (a bypass, a refresh, a request that
 * cannot be keyed) and emits its `bypass` event: the one way every wrapper and
 * integration counts one.
 */
export function countBypass(stats: WrapperStats, key?: string, plan?: CallPlan): void {
  stats.bypasses++;
  const events = eventsOf(stats);
  if (events.listening) events.emit({ type: 'bypass', source: 'llm', operation: 'call', key, count: 1, tenantId: plan?.tenantId, model: plan?.model });
}

/**
 * Queues a wrapper event; call only when `site.events.listening`. `extra`
 * fields (count, tokens saved, ...) are copied over the defaults.
 */
export function emitCallEvent(site: Pick<CallSite<unknown>, 'events' | 'namespace'>, plan: CallPlan, type: CacheEventType, key: string | undefined, extra?: Partial<CacheEvent>): void {
  const event: CacheEvent = { type, source: 'llm', operation: 'call', key, count: 1, tenantId: plan.tenantId, namespace: site.namespace, model: plan.model };
  site.events.emit(extra === undefined ? event : Object.assign(event, extra));
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
 * (bench workload 5). `next` is told whether the read failed (the cache is
 * down or slow: not worth a second round trip). Errors thrown by `next` reach
 * the caller, never `failOpen`: they are not the cache's.
 */
export function readThen<T, R>(
  site: CallSite<T>,
  plan: CallPlan,
  key: string,
  next: (hit: StoredResult<T> | undefined, failed: boolean) => R | PromiseLike<R>,
): Promise<R> {
  if (plan.control?.bypass || plan.control?.refresh) {
    countBypass(site.stats, key, plan);
    return Promise.resolve(undefined).then((nothing) => next(nothing, false));
  }
  let read: Promise<unknown>;
  try {
    // Promise.resolve returns a native promise as is; it only guards a cache that answers synchronously.
    read = Promise.resolve(site.cache.get(key, scopeOf(plan)));
  } catch (error) {
    read = Promise.reject(error);
  }
  return read.then(
    (stored) => next(counted<T>(site, plan, key, stored), false),
    (error: unknown) => {
      failOpen(site.stats, error);
      return next(counted<T>(site, plan, key, undefined), true);
    },
  );
}

function same<V>(value: V): V {
  return value;
}

function scopeOf(plan: CallPlan): { tenantId: string } | undefined {
  return plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId };
}

function counted<T>(site: CallSite<T>, plan: CallPlan, key: string, stored: unknown): StoredResult<T> | undefined {
  const stats = site.stats;
  if (!isStored(stored)) {
    stats.misses++;
    if (site.events.listening) emitCallEvent(site, plan, 'miss', key);
    return undefined;
  }
  stats.hits++;
  stats.tokensSaved += stored.tokens ?? 0;
  stats.latencySavedMs += stored.durationMs;
  if (site.events.listening) emitCallEvent(site, plan, 'hit', key, { tokensSaved: stored.tokens ?? 0, latencySavedMs: stored.durationMs });
  return stored as StoredResult<T>;
}

// Past this many writes still waiting for one cache (a slow or hung server),
// results are not stored: holding each one until a timeout would grow memory
// for as long as the outage lasts (ioredis#76 is the same trap for commands).
const MAX_WRITES_IN_FLIGHT = 1000;
const writesInFlight = new WeakMap<Cache, number>();

/**
 * Stores a fresh result unless the call or the site says not to. The write
 * runs in the background: nobody waits for it, it never throws, and its
 * failure is counted (`errors`, or `writesDropped` when the cache refused the
 * entry or too many writes were in flight). Returns the write and what the
 * result saves each later hit, or `undefined` when nothing is written.
 */
export function storeResult<T>(site: CallSite<T>, plan: CallPlan, key: string, value: T, durationMs: number): Held | undefined {
  if (plan.control?.bypass || plan.control?.noStore) return undefined;
  if (site.shouldCache && !site.shouldCache(value)) return undefined;
  const counted = (site.countTokens ?? tokensOf)(value);
  const tokens = typeof counted === 'number' && counted > 0 ? counted : 0;
  const entry: StoredResult<T> = { value, storedAt: Date.now(), durationMs, ...(tokens > 0 ? { tokens } : {}) };
  const write = backgroundWrite(site.cache, site.stats, (cache, options) => cache.set(key, entry, options), writeOptions(plan), site.events.listening ? setEvent(site, plan, key, 1) : undefined);
  return write && { write, tokens, durationMs };
}

export function writeOptions(plan: CallPlan): SetOptions | undefined {
  if (plan.ttl === undefined) return scopeOf(plan);
  return plan.tenantId === undefined ? { ttl: plan.ttl } : { ttl: plan.ttl, tenantId: plan.tenantId };
}

/** The `set` event a landed background write emits (built only while someone listens). */
export function setEvent(site: Pick<CallSite<unknown>, 'namespace'>, plan: CallPlan, key: string | undefined, count: number): CacheEvent {
  return { type: 'set', source: 'llm', operation: key === undefined ? 'items' : 'call', key, count, tenantId: plan.tenantId, namespace: site.namespace, model: plan.model };
}

/** One bounded background write (`set` or `setMany`); see `storeResult`. `landed` is emitted once it is stored. */
export function backgroundWrite(
  cache: Cache,
  stats: WrapperStats,
  write: (cache: Cache, options: SetOptions | undefined) => Promise<boolean | number>,
  options: SetOptions | undefined,
  landed?: CacheEvent,
): Promise<void> | undefined {
  const pending = writesInFlight.get(cache) ?? 0;
  if (pending >= MAX_WRITES_IN_FLIGHT) {
    stats.writesDropped++;
    return undefined;
  }
  writesInFlight.set(cache, pending + 1);
  let written: Promise<boolean | number>;
  try {
    written = Promise.resolve(write(cache, options));
  } catch (error) {
    written = Promise.reject(error);
  }
  return written.then(
    (stored) => {
      done(cache);
      if (stored === false) stats.writesDropped++;
      else if (landed !== undefined) eventsOf(stats).emit(landed);
    },
    () => {
      done(cache);
      stats.errors++;
    },
  );
}

function done(cache: Cache): void {
  const pending = (writesInFlight.get(cache) ?? 1) - 1;
  if (pending === 0) writesInFlight.delete(cache);
  else writesInFlight.set(cache, pending);
}

/** How one miss is answered: see `produce`. */
export interface Miss<T> {
  /** Calls upstream. Its rejection reaches the caller and is never cached. */
  upstream: () => Promise<T>;
  /** What is stored of an answer. Default: the answer itself. */
  stored?: ((answer: T) => unknown) | undefined;
  /** Copies of an answer for callers who join it. Default: through the cache's encoding. */
  copies?: Copies<T> | undefined;
  /** `false` when the call must neither join nor be joined (its caller's own abort signal ends it). Default `true`. */
  share?: boolean | undefined;
}

/**
 * Joins an identical call of this process, if one is running or its answer is
 * still held (see `SingleFlight`), counting it: a miss while upstream still
 * works, a hit (with what it saved) once the answer is there.
 */
export function joinFlight<T>(site: CallSite<unknown>, plan: CallPlan, key: string): Promise<T> | undefined {
  const joined = site.flights.join<T>(plan.tenantId, key, plan.control?.refresh === true);
  if (joined === undefined) return undefined;
  const { held } = joined;
  if (held === undefined) {
    site.stats.misses++;
    if (site.events.listening) emitCallEvent(site, plan, 'miss', key);
  } else {
    site.stats.hits++;
    site.stats.tokensSaved += held.tokens;
    site.stats.latencySavedMs += held.durationMs;
    if (site.events.listening) emitCallEvent(site, plan, 'hit', key, { tokensSaved: held.tokens, latencySavedMs: held.durationMs });
  }
  return joined.answer;
}

/**
 * The miss half of a cached call: one upstream call per key at a time in this
 * process (identical calls join it, and keep joining until its write has
 * landed), the answer handed back as soon as upstream gives it, the write
 * after it in the background. The caller has counted its miss already.
 */
export function produce<T>(site: CallSite<unknown>, plan: CallPlan, key: string, miss: Miss<T>): Promise<T> {
  const share = miss.share !== false;
  if (share) {
    const joined = site.flights.join<T>(plan.tenantId, key, plan.control?.refresh === true);
    if (joined) return joined.answer;
  }
  const work = async (hold?: Hold<T>): Promise<T> => {
    const started = performance.now();
    const answer = await miss.upstream();
    const stored = miss.stored ? miss.stored(answer) : answer;
    const held = storeResult(site, plan, key, stored, performance.now() - started);
    if (held && hold) hold(answer, held);
    return answer;
  };
  if (!share) return work();
  return site.flights.run(plan.tenantId, key, work, miss.copies);
}

/** One cached call: how a miss is answered (see `Miss`) and how a hit is. */
export interface CachedCall<T> extends Miss<T> {
  /**
   * The answer for a hit, from what was stored. `entry` is the whole stored
   * envelope (`storedAt`, `durationMs`, `tokens`), for an integration that
   * tells the caller when its answer was made. Default: the stored value itself.
   */
  hit?: ((stored: unknown, entry: StoredResult) => T) | undefined;
  /** The model the call asks for, for events and metrics only (see `CallPlan.model`). */
  model?: string | undefined;
}

/**
 * The whole cached call: a caller joins an identical call already running in
 * this process, else reads, else produces (see `produce`).
 */
export function cachedCall<T>(site: CallSite<unknown>, key: string, call: CachedCall<T>): Promise<T> {
  const plan = planCall(site);
  if (call.model !== undefined) plan.model = call.model;
  if (plan.control?.bypass) {
    countBypass(site.stats, key, plan);
    try {
      return Promise.resolve(call.upstream());
    } catch (error) {
      return Promise.reject(error);
    }
  }
  if (call.share !== false) {
    const joined = joinFlight<T>(site, plan, key);
    if (joined) return joined;
  }
  const fromStore = call.hit;
  return readThen(site, plan, key, (stored) => {
    if (stored) return fromStore ? fromStore(stored.value, stored) : (stored.value as T);
    return produce(site, plan, key, call);
  });
}
