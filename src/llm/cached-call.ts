import { CacheError } from '../core/errors.js';
import type { CacheEvent, CacheEventType, EventHub } from '../core/events.js';
import { backgroundWrite as writeInBackground, Backoff, readThrough, withStale, type Freshness, type ReadCall, type ReadHooks, type Served } from '../core/read-through.js';
import { cacheFlights, type SharedFlight } from '../core/shared-flight.js';
import { SingleFlight, copiesByEncoding, type Copies, type Held } from '../core/single-flight.js';
import type { Cache, CacheEntry, EntryOptions, SetOptions } from '../core/types.js';
import { markServed, type CacheInfo } from './cache-info.js';
import { currentCacheControl, type CacheControl } from './cache-control.js';
import { costOf, emptyWrapperStats, tokensOf, usageOf, type Prices, type StoredResult, type Usage, type WrapperStats } from './entry.js';
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
  /** Grace, backoff and soft timeout (see `GetOrSetOptions`); `undefined` without `grace`. */
  freshness?: Freshness | undefined;
  /** The tags of a stored result; the call's arguments follow it. */
  tags?: ((result: T, ...args: unknown[]) => readonly string[] | undefined) | undefined;
  /** Prices per model, for `costSaved`. */
  prices?: Prices | undefined;
  /** The prompt and completion tokens and the model a result reports, for `prices`. Default: `usageOf`. */
  usage?: ((result: T) => Usage) | undefined;
  /** One upstream call per key across processes (`singleFlight: 'shared'`); `undefined`: per process. */
  singleFlight?: SharedFlight | undefined;
  stats: WrapperStats;
  flights: SingleFlight;
  backoff: Backoff;
  /** The wrapper's events (`cacheEvents(wrapper)`): one hub per `stats`, so sites that count together emit together. */
  events: EventHub;
  /** The namespace the site's keys are made in, for its events and metrics. */
  namespace?: string | undefined;
}

/** What every wrapper takes besides its own options, read by `createCallSite`. */
export type SiteSettings<T> = Pick<CallSite<T>, 'cache' | 'ttl' | 'tenantId' | 'shouldCache' | 'countTokens' | 'freshness' | 'tags' | 'prices' | 'usage' | 'singleFlight'> & { namespace?: unknown };

/**
 * A site with its own counters, single-flight group and backoff, unless given
 * ones to share (one wrapper's several sites count together and may share flights).
 * A shared single-flight site joins the flights of every such site on its cache.
 */
export function createCallSite<T = unknown>(
  options: SiteSettings<T>,
  shared: { stats?: WrapperStats; flights?: SingleFlight; backoff?: Backoff } = {},
): CallSite<T> {
  const stats = shared.stats ?? emptyWrapperStats();
  return {
    cache: options.cache,
    ttl: options.ttl,
    tenantId: options.tenantId,
    shouldCache: options.shouldCache,
    countTokens: options.countTokens,
    freshness: options.freshness,
    tags: options.tags,
    prices: options.prices,
    usage: options.usage,
    singleFlight: options.singleFlight,
    stats,
    flights: options.singleFlight !== undefined ? cacheFlights(options.cache) : (shared.flights ?? new SingleFlight()),
    backoff: shared.backoff ?? new Backoff(),
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
  countError(stats, error);
}

/** Counts a cache failure the call did not see (a background write), with its `error` event; never throws. */
function countError(stats: WrapperStats, error: unknown): void {
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

/** Counts a call that found nothing to answer it and went upstream, with its `miss` event. */
export function countMiss(site: CallSite<unknown>, plan: CallPlan, key: string): void {
  site.stats.misses++;
  if (site.events.listening) emitCallEvent(site, plan, 'miss', key);
}

/**
 * Queues a wrapper event; call only when `site.events.listening`. `extra`
 * fields (count, tokens saved, ...) are copied over the defaults.
 */
export function emitCallEvent(site: Pick<CallSite<unknown>, 'events' | 'namespace'>, plan: CallPlan, type: CacheEventType, key: string | undefined, extra?: Partial<CacheEvent>): void {
  const event: CacheEvent = { type, source: 'llm', operation: 'call', key, count: 1, tenantId: plan.tenantId, namespace: site.namespace, model: plan.model };
  site.events.emit(extra === undefined ? event : Object.assign(event, extra));
}

/** The `set` event a landed background write emits (built only while someone listens). */
export function setEvent(site: Pick<CallSite<unknown>, 'namespace'>, plan: CallPlan, key: string | undefined, count: number): CacheEvent {
  return { type: 'set', source: 'llm', operation: key === undefined ? 'items' : 'call', key, count, tenantId: plan.tenantId, namespace: site.namespace, model: plan.model };
}

/** Whether a cache entry is a `StoredResult` envelope (anything else reads as a miss). */
export function isStored(value: unknown): value is StoredResult {
  return value !== null && typeof value === 'object' && 'value' in value && 'durationMs' in value;
}

/** Counts what a stored result saved the call it answered: a hit (or a stale answer), with its event. */
function countServed(site: CallSite<unknown>, plan: CallPlan | undefined, key: string, stored: StoredResult, how: Served): void {
  const { stats } = site;
  if (how === 'hit') stats.hits++;
  else stats.staleHits++;
  const tokens = stored.tokens ?? 0;
  stats.tokensSaved += tokens;
  stats.latencySavedMs += stored.durationMs;
  if (site.prices !== undefined) stats.costSaved += costOf(stored, site.prices);
  if (site.events.listening) {
    emitCallEvent(site, plan ?? { control: undefined, tenantId: undefined, ttl: undefined }, how, key, { tokensSaved: tokens, latencySavedMs: stored.durationMs });
  }
}

/** The answer of a stored result served as a hit or stale: counted, and marked for `cacheInfo`. */
export function answerStored(site: CallSite<unknown>, stored: StoredResult, how: Served, key: string, plan?: CallPlan): unknown {
  countServed(site, plan, key, stored, how);
  markServed(stored.value, { status: how, storedAt: stored.storedAt, key });
  return stored.value;
}

/**
 * A call with grace whose production is its own (a shared stream): reads the entry, fresh or stale. A fresh one that
 * `answer` can use answers (counted by `answer`); otherwise `produce` runs
 * (told whether the read failed), and a stale one answers instead while
 * upstream backs off, when `produce` fails (per `shouldServeStale`), or past
 * `softTimeout`. `answer` gives `undefined` for a value it cannot use (a miss).
 */
export async function gracedCall<R>(
  site: CallSite<unknown>,
  plan: CallPlan,
  key: string,
  freshness: Freshness,
  answer: (stored: StoredResult, how: Served) => R | undefined,
  produce: (failed: boolean) => Promise<R>,
): Promise<R> {
  let entry: CacheEntry | undefined;
  let failed = false;
  try {
    entry = await site.cache.readEntry(key, scopeOf(plan));
  } catch (error) {
    failOpen(site.stats, error);
    failed = true;
  }
  const stored = entry !== undefined && isStored(entry.value) ? entry.value : undefined;
  if (stored !== undefined && !entry?.stale) {
    const hit = answer(stored, 'hit');
    if (hit !== undefined) return hit;
  }
  const run = (): Promise<R> =>
    produce(failed).then(
      (value) => {
        site.backoff.succeeded(plan.tenantId, key);
        return value;
      },
      (error: unknown) => {
        site.backoff.failed(plan.tenantId, key, freshness.graceBackoff);
        throw error;
      },
    );
  if (stored === undefined || !entry?.stale) {
    countMiss(site, plan, key);
    return run();
  }
  let served: R | undefined;
  return withStale(site, freshness, plan.tenantId, key, () => (served ??= answer(stored, 'stale')), run, () => countMiss(site, plan, key));
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
    (stored) => next(counted<T>(site as CallSite<unknown>, plan, stored, key), false),
    (error: unknown) => {
      failOpen(site.stats, error);
      return next(counted<T>(site as CallSite<unknown>, plan, undefined, key), true);
    },
  );
}

function same<V>(value: V): V {
  return value;
}

function scopeOf(plan: CallPlan): { tenantId: string } | undefined {
  return plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId };
}

function counted<T>(site: CallSite<unknown>, plan: CallPlan, stored: unknown, key: string): StoredResult<T> | undefined {
  if (!isStored(stored)) {
    countMiss(site, plan, key);
    return undefined;
  }
  countServed(site, plan, key, stored, 'hit');
  markServed(stored.value, { status: 'hit', storedAt: stored.storedAt, key });
  return stored as StoredResult<T>;
}

/** The envelope a fresh result is stored in, or `undefined` when the site says not to store it. */
function envelope<T>(site: CallSite<T>, value: T, durationMs: number, requestModel?: string): StoredResult<T> | undefined {
  if (site.shouldCache && !site.shouldCache(value)) return undefined;
  const counted = (site.countTokens ?? tokensOf)(value);
  const tokens = typeof counted === 'number' && counted > 0 ? counted : 0;
  const entry: StoredResult<T> = { value, storedAt: Date.now(), durationMs };
  if (tokens > 0) entry.tokens = tokens;
  const { input, output, model = requestModel } = (site.usage ?? usageOf)(value);
  if (input !== undefined || output !== undefined) entry.usage = { input: input ?? 0, output: output ?? 0 };
  if (model !== undefined) entry.model = model;
  return entry;
}

/**
 * Stores a fresh result unless the call or the site says not to (see
 * `backgroundWrite`). Returns the write and what was stored, or `undefined`
 * when nothing is written. `args` are the call's, for the site's `tags`.
 */
export function storeResult<T>(site: CallSite<T>, plan: CallPlan, key: string, value: T, durationMs: number, args: readonly unknown[] = [], model?: string): Held | undefined {
  if (plan.control?.bypass || plan.control?.noStore) return undefined;
  const startedAt = Date.now() - durationMs;
  const entry = envelope(site, value, durationMs, model);
  if (entry === undefined) return undefined;
  let tags: readonly string[] | undefined;
  try {
    tags = site.tags?.(value, ...args);
  } catch (error) {
    // Stored untagged, it could outlive an invalidation of its real tags: not stored.
    failOpen(site.stats, error);
    return undefined;
  }
  const grace = site.freshness?.grace;
  const landed = site.events.listening ? setEvent(site, plan, key, 1) : undefined;
  const write =
    tags === undefined && grace === undefined
      ? backgroundWrite(site.cache, site.stats, (cache, o) => cache.set(key, entry, o), writeOptions(plan), landed)
      : backgroundWrite(site.cache, site.stats, (cache, o) => cache.writeEntry(key, entry, o), entryOptions(plan, tags, grace, startedAt), landed);
  return write && { write, stored: entry };
}

export function writeOptions(plan: CallPlan): SetOptions | undefined {
  if (plan.ttl === undefined) return scopeOf(plan);
  return plan.tenantId === undefined ? { ttl: plan.ttl } : { ttl: plan.ttl, tenantId: plan.tenantId };
}

function entryOptions(plan: CallPlan, tags: readonly string[] | undefined, grace: number | undefined, startedAt: number): EntryOptions {
  const options: EntryOptions = { startedAt };
  if (plan.ttl !== undefined) options.ttl = plan.ttl;
  if (plan.tenantId !== undefined) options.tenantId = plan.tenantId;
  if (tags !== undefined) options.tags = tags;
  if (grace !== undefined) options.grace = grace;
  return options;
}

/** One bounded background write (`set`, `writeEntry` or `setMany`): see the core's `backgroundWrite`. `landed` is emitted once it is stored. */
export function backgroundWrite<O extends SetOptions | undefined>(
  cache: Cache,
  stats: WrapperStats,
  write: (cache: Cache, options: O) => Promise<boolean | number>,
  options: O,
  landed?: CacheEvent,
): Promise<void> | undefined {
  return writeInBackground(cache, statsCounts(stats, landed), (c) => write(c, options));
}

function statsCounts(stats: WrapperStats, landed: CacheEvent | undefined): { writeFailed(error: unknown): void; dropped(): void; stored(): void } {
  return {
    writeFailed: (error) => countError(stats, error),
    dropped: () => void stats.writesDropped++,
    stored: () => {
      if (landed !== undefined) eventsOf(stats).emit(landed);
    },
  };
}

/** How one miss is answered: see `cachedCall`. */
export interface Miss<T> {
  /** Calls upstream. Its rejection reaches the caller and is never cached. */
  upstream: () => Promise<T>;
  /** What is stored of an answer, and what the caller sees of it (for `cacheInfo`). Default: the answer itself. */
  stored?: ((answer: T) => unknown) | undefined;
  /**
   * The object of an answer (fresh, joined or served) the caller holds, when
   * it is not what `stored` gives (an integration that converts an answer to
   * store it): it is what `cacheInfo` answers for. Default: `stored(answer)`.
   */
  seen?: ((answer: T) => unknown) | undefined;
  /** Copies of an answer for callers who join it. Default: through the cache's encoding. */
  copies?: Copies<T> | undefined;
  /** `false` when the call must neither join nor be joined (its caller's own abort signal ends it). Default `true`. */
  share?: boolean | undefined;
  /** The call's arguments, for the site's `tags(result, ...args)`. */
  args?: readonly unknown[] | undefined;
  /** The model the request asked for: what `prices` go by when the answer names none. */
  model?: string | undefined;
  /** The caller's abort signal, bound to its upstream call: once it aborted, a failure is never answered stale (see `callerFreshness`). */
  signal?: AbortSignal | null | undefined;
}

/**
 * `freshness` for a call whose caller holds an abort `signal`: once it
 * aborted, an upstream failure is the caller's own doing, whatever error an
 * SDK makes of it (an `AbortError`, or the signal's own reason), and is
 * never answered stale.
 */
export function callerFreshness(freshness: Freshness | undefined, signal: AbortSignal | null | undefined): Freshness | undefined {
  if (freshness === undefined || signal == null) return freshness;
  return { ...freshness, shouldServeStale: (error) => !signal.aborted && freshness.shouldServeStale(error) };
}

/** Counts a caller who joined an identical call: a miss while upstream still works, a hit (with what it saved) once the answer is held. */
export function countJoined(site: CallSite<unknown>, plan: CallPlan, key: string, held: Held | undefined): void {
  if (held !== undefined && isStored(held.stored)) countServed(site, plan, key, held.stored, 'hit');
  else countMiss(site, plan, key);
}

/** One cached call: how a miss is answered (see `Miss`) and how a hit is. */
export interface CachedCall<T> extends Miss<T> {
  /**
   * The answer for a hit or a stale answer, from what was stored. `entry` is
   * the whole stored envelope (`storedAt`, `durationMs`, `tokens`), for an
   * integration that tells the caller when its answer was made. Default: the
   * stored value itself.
   */
  hit?: ((stored: unknown, how: Served, entry: StoredResult) => T) | undefined;
}

interface EngineCall<T> extends ReadCall<T> {
  site: CallSite<unknown>;
  call: CachedCall<T>;
  plan: CallPlan;
  /** `refresh`: the answer upstream gives is a bypass, not a miss. */
  refresh: boolean;
}

/**
 * The whole cached call, on the core's read-through engine: a caller joins an
 * identical call already running in this process, else reads (with `grace`,
 * a stale entry too), else calls upstream once, answers at once and stores
 * in the background. Counts every outcome in the site's stats and marks the
 * answer for `cacheInfo`.
 */
export function cachedCall<T>(site: CallSite<unknown>, key: string, call: CachedCall<T>): Promise<T> {
  const plan = planCall(site);
  if (call.model !== undefined) plan.model = call.model;
  const control = plan.control;
  if (control?.bypass) {
    countBypass(site.stats, key, plan);
    return upstreamMarked(call, 'bypass', key);
  }
  const refresh = control?.refresh === true;
  if (refresh) countBypass(site.stats, key, plan);
  const engineCall: EngineCall<T> = {
    key,
    tenantId: plan.tenantId,
    ttl: plan.ttl,
    read: !refresh,
    store: control?.noStore !== true,
    share: call.share !== false,
    freshness: callerFreshness(site.freshness, call.signal),
    shared: site.singleFlight,
    upstream: call.upstream,
    site,
    call,
    plan,
    refresh,
  };
  return readThrough(site, HOOKS as ReadHooks<T, EngineCall<T>>, engineCall);
}

/** Marks what the caller receives of `answer` (see `Miss.seen`). */
function markSeen<T>(call: Miss<T>, answer: T, info: CacheInfo): void {
  markServed(call.seen ? call.seen(answer) : call.stored ? call.stored(answer) : answer, info);
}

function upstreamMarked<T>(call: CachedCall<T>, status: 'miss' | 'bypass', key: string): Promise<T> {
  let answer: Promise<T>;
  try {
    answer = Promise.resolve(call.upstream());
  } catch (error) {
    return Promise.reject(error);
  }
  return answer.then((value) => {
    markSeen(call, value, { status, key });
    return value;
  });
}

const HOOKS: ReadHooks<unknown, EngineCall<unknown>> = {
  served(c, stored, how) {
    if (!isStored(stored)) return undefined;
    countServed(c.site, c.plan, c.key, stored, how);
    const info: CacheInfo = { status: how, storedAt: stored.storedAt, key: c.key };
    if (c.call.hit === undefined) {
      markServed(stored.value, info);
      return stored.value;
    }
    const answer = c.call.hit(stored.value, how, stored);
    // With `seen`, what the caller receives is marked, not the stored value it never sees.
    if (c.call.seen !== undefined) markSeen(c.call, answer, info);
    else markServed(stored.value, info);
    return answer;
  },
  missed(c) {
    countMiss(c.site, c.plan, c.key);
  },
  waited(c, stored) {
    if (!isStored(stored)) return undefined;
    // Counted as a join while upstream worked: the call's miss is counted already.
    markServed(stored.value, { status: c.refresh ? 'bypass' : 'miss', storedAt: stored.storedAt, key: c.key });
    return c.call.hit ? c.call.hit(stored.value, 'hit', stored) : stored.value;
  },
  joined(c, held) {
    countJoined(c.site, c.plan, c.key, held);
  },
  answered(c, answer) {
    markSeen(c.call, answer, { status: c.refresh ? 'bypass' : 'miss', key: c.key });
  },
  tags(c, answer) {
    const { tags } = c.site;
    return tags === undefined ? undefined : tags(c.call.stored ? c.call.stored(answer) : answer, ...(c.call.args ?? []));
  },
  entry(c, answer, durationMs) {
    if (!c.store || c.plan.control?.bypass) return undefined;
    return envelope(c.site, c.call.stored ? c.call.stored(answer) : answer, durationMs, c.call.model);
  },
  copies(c) {
    const base = c.call.copies ?? (copiesByEncoding as Copies<unknown>);
    // Each joiner's copy is marked: a miss while upstream still worked, a hit once the answer was held.
    return (answer) => {
      const copy = base(answer);
      return (held) => {
        const value = copy(held);
        markSeen(c.call, value, { status: held ? 'hit' : 'miss', key: c.key });
        return value;
      };
    };
  },
  failed(c, error) {
    failOpen(c.site.stats, error);
  },
  writeFailed(c, error) {
    countError(c.site.stats, error);
  },
  dropped(c) {
    c.site.stats.writesDropped++;
  },
  written(c) {
    if (c.site.events.listening) c.site.events.emit(setEvent(c.site, c.plan, c.key, 1));
  },
};
