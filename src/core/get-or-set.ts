import { CacheError } from './errors.js';
import { checkKey, graceMs, scopeOf, tagsOf, ttlMs } from './keys.js';
import { checkOptions, describeValue, optionNames } from './options.js';
import { Backoff, DEFAULT_GRACE_BACKOFF_MS, defaultShouldServeStale, readThrough, type Freshness, type ReadCall, type ReadHooks, type ReadSite } from './read-through.js';
import { sharedFlightOf } from './shared-flight.js';
import { SingleFlight } from './single-flight.js';
import type { Cache, GetOrSetOptions } from './types.js';

const OPTIONS = optionNames<GetOrSetOptions>({ ttl: true, tenantId: true, tags: true, grace: true, graceBackoff: true, softTimeout: true, shouldServeStale: true, singleFlight: true, lockTtl: true, maxWait: true });

/** What a backend counts of its `getOrSet` calls beyond its own operations: stale answers served, values it could not store. */
export interface GetOrSetCounts {
  staleHit(tenantId: string | undefined): void;
  /** A factory's value the cache refused to encode (a class instance, a function): answered, not stored. */
  unstorable(tenantId: string | undefined): void;
}

interface GetOrSetCall<T> extends ReadCall<T> {
  counts: GetOrSetCounts;
  tags: readonly string[] | undefined;
}

// One per cache: its getOrSet calls share flights and backoff.
const sites = new WeakMap<Cache, ReadSite>();

/**
 * `cache.getOrSet` for every backend, on the one read-through engine (see
 * src/core/read-through.ts): the backend's reads count hits and misses and
 * its failures, `counts` the stale answers. Bad options reject with a
 * `validation` CacheError naming the option, before anything runs.
 */
export function getOrSet<T>(cache: Cache, counts: GetOrSetCounts, key: string, factory: () => T | Promise<T>, options: GetOrSetOptions | undefined): Promise<T> {
  let call: GetOrSetCall<T>;
  try {
    call = checked(key, factory, options, counts);
  } catch (error) {
    return Promise.reject(error);
  }
  let site = sites.get(cache);
  if (site === undefined) sites.set(cache, (site = { cache, flights: new SingleFlight(), backoff: new Backoff() }));
  return readThrough(site, HOOKS as ReadHooks<T, GetOrSetCall<T>>, call);
}

function checked<T>(key: string, factory: () => T | Promise<T>, options: GetOrSetOptions | undefined, counts: GetOrSetCounts): GetOrSetCall<T> {
  checkKey(key);
  if (typeof factory !== 'function') throw new CacheError(`getOrSet: factory must be a function, got ${describeValue(factory)}`, 'validation');
  checkOptions('getOrSet', options, OPTIONS);
  const o = options ?? {};
  ttlMs(o.ttl, undefined);
  scopeOf(o.tenantId);
  const tags = tagsOf(o.tags, 'getOrSet: tags');
  return {
    key,
    tenantId: o.tenantId,
    ttl: o.ttl,
    read: true,
    store: true,
    share: true,
    freshness: freshnessOf('getOrSet', o),
    shared: o.singleFlight === undefined && o.lockTtl === undefined && o.maxWait === undefined ? undefined : sharedFlightOf('getOrSet', o),
    upstream: factory,
    tags,
    counts,
  };
}

/**
 * Checks `grace`, `graceBackoff`, `softTimeout` and `shouldServeStale` (the
 * last three need `grace`: without a stale entry they would do nothing) and
 * returns the freshness they describe, `undefined` without `grace`.
 */
export function freshnessOf(where: string, o: { grace?: unknown; graceBackoff?: unknown; softTimeout?: unknown; shouldServeStale?: unknown }): Freshness | undefined {
  const grace = graceMs(o.grace, `${where}: grace`);
  const backoff = milliseconds(o.graceBackoff, `${where}: graceBackoff`, false);
  const softTimeout = milliseconds(o.softTimeout, `${where}: softTimeout`, true);
  if (o.shouldServeStale !== undefined && typeof o.shouldServeStale !== 'function') {
    throw new CacheError(`${where}: shouldServeStale must be a function, got ${describeValue(o.shouldServeStale)}`, 'validation');
  }
  if (grace === 0) {
    for (const name of ['graceBackoff', 'softTimeout', 'shouldServeStale'] as const) {
      if (o[name] !== undefined) throw new CacheError(`${where}: ${name} needs grace (seconds a stale entry is kept), which is not set`, 'validation');
    }
    return undefined;
  }
  return {
    grace: grace / 1000,
    graceBackoff: backoff ?? DEFAULT_GRACE_BACKOFF_MS,
    softTimeout,
    shouldServeStale: (o.shouldServeStale as ((error: unknown) => boolean) | undefined) ?? defaultShouldServeStale,
  };
}

function milliseconds(value: unknown, name: string, zeroAllowed: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw new CacheError(`${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number of milliseconds, got ${describeValue(value)}`, 'validation');
  }
  return value;
}

const HOOKS: ReadHooks<unknown, GetOrSetCall<unknown>> = {
  served(call, stored, how) {
    if (how === 'stale') call.counts.staleHit(call.tenantId);
    return stored;
  },
  missed() {},
  waited: (_call, stored) => stored,
  joined() {},
  answered() {},
  entry: (_call, answer) => answer,
  tags: (call) => call.tags,
  copies: () => undefined,
  failed(_call, error) {
    // The caller's own mistakes and a closed cache are reported; an outage only costs a miss (the backend counted it).
    if (error instanceof CacheError && (error.errorType === 'validation' || error.errorType === 'closed')) throw error;
  },
  writeFailed(call, error) {
    // Outages were counted by the backend's own write; a value it cannot encode was not.
    if (error === undefined || (error instanceof CacheError && (error.errorType === 'serialization' || error.errorType === 'validation'))) call.counts.unstorable(call.tenantId);
  },
  dropped() {},
};
