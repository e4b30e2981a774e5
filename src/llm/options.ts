import { CacheError } from '../core/errors.js';
import { freshnessOf } from '../core/get-or-set.js';
import { scopeOf, ttlMs } from '../core/keys.js';
import type { Freshness } from '../core/read-through.js';
import { checkOptions, describeValue } from '../core/options.js';
import { sharedFlightOf, type SharedFlight } from '../core/shared-flight.js';
import type { Cache, SingleFlightMode, SingleFlightOptions } from '../core/types.js';
import type { Prices } from './entry.js';

// Checks shared by the wrappers' constructors: bad options throw at wrap time,
// never on the first call (STYLE.md, "fail loudly at construction").

/** What every wrapper's options may hold, whatever else it takes. */
export interface SiteOptions {
  cache?: unknown;
  ttl?: unknown;
  tenantId?: unknown;
  namespace?: unknown;
  key?: unknown;
  shouldCache?: unknown;
  countTokens?: unknown;
  grace?: unknown;
  graceBackoff?: unknown;
  softTimeout?: unknown;
  shouldServeStale?: unknown;
  tags?: unknown;
  prices?: unknown;
  singleFlight?: unknown;
  lockTtl?: unknown;
  maxWait?: unknown;
}

/**
 * The freshness and cost options every wrapper takes (each documented on the
 * wrappers' option types). Grace durations follow the library's rule: `grace`
 * in seconds like `ttl`, `graceBackoff` and `softTimeout` in milliseconds.
 */
export interface FreshnessOptions<R, A extends unknown[]> extends SingleFlightOptions {
  /**
   * Seconds a stored answer is kept past its `ttl` (fractions allowed),
   * counted from its expiry and never extended by serving it: when upstream
   * rejects and `shouldServeStale(error)` holds, the stale answer is returned
   * instead (`cacheInfo(...).status` `'stale'`, counted in `staleHits`). Needs
   * a finite ttl (the wrapper's or the cache's `defaultTtl`). Default: none.
   */
  grace?: number;
  /**
   * Milliseconds before upstream is called again after a failure, while a
   * stale answer can be served (calls in between get it without calling
   * upstream); doubles per failure in a row, up to 30 times this (30 s by
   * default). Per key and tenant. Needs `grace`. Default 1000.
   */
  graceBackoff?: number;
  /**
   * Milliseconds to wait for upstream when a stale answer is at hand: past
   * this the stale answer is returned and upstream's answer is still stored
   * (with the call's ttl and tenant) when it arrives; `0` answers stale at
   * once (stale-while-revalidate). Without a stale answer it changes
   * nothing. Needs `grace`. Default: wait for upstream.
   */
  softTimeout?: number;
  /**
   * Whether an upstream error may be answered with a stale answer. Default:
   * `true`, except for HTTP 4xx errors other than 408, 409 and 429 (the SDKs'
   * `status`/`statusCode`) and the caller's own abort. Needs `grace`.
   */
  shouldServeStale?: (error: unknown) => boolean;
  /**
   * Tags of a stored answer (non-empty strings, at most 256), from the answer
   * and the call's arguments: `cache.invalidateTags(['doc:42'])` then drops
   * every answer tagged `doc:42`, in the wrapper's tenant. Default: untagged.
   */
  tags?: (result: R, ...args: A) => readonly string[] | undefined;
  /**
   * Prices per model, in currency units per million tokens
   * (`{ 'gpt-4o-mini': { input: 0.15, output: 0.6 } }`): each hit adds
   * (prompt tokens x input + completion tokens x output) / 1e6 to
   * `costSaved`, priced by the model the answer reports, else the request's.
   * None are bundled (they change). Default: none (`costSaved` stays 0).
   */
  prices?: Prices;
}

/** The names of `FreshnessOptions`, spread into every wrapper's list of option names. */
export const FRESHNESS_OPTIONS: { readonly [K in keyof Required<FreshnessOptions<unknown, unknown[]>>]: true } = {
  grace: true,
  graceBackoff: true,
  softTimeout: true,
  shouldServeStale: true,
  tags: true,
  prices: true,
  singleFlight: true,
  lockTtl: true,
  maxWait: true,
};

/**
 * The site settings the freshness, cost and single-flight options describe,
 * checked (`validation` errors name the option); `mode` is the wrapper's
 * default `singleFlight`.
 */
export function siteFreshness(
  where: string,
  options: SiteOptions,
  mode: SingleFlightMode = 'local',
): { freshness: Freshness | undefined; tags: ((result: unknown, ...args: unknown[]) => readonly string[] | undefined) | undefined; prices: Prices | undefined; singleFlight: SharedFlight | undefined } {
  const freshness = freshnessOf(where, options);
  const singleFlight = sharedFlightOf(where, options, mode);
  checkFunction(options.tags, `${where}: tags`);
  checkPrices(options.prices, where);
  return {
    freshness,
    tags: options.tags as ((result: unknown, ...args: unknown[]) => readonly string[] | undefined) | undefined,
    prices: options.prices as Prices | undefined,
    singleFlight,
  };
}

function checkPrices(prices: unknown, where: string): void {
  if (prices === undefined) return;
  if (prices === null || typeof prices !== 'object' || Array.isArray(prices)) {
    throw new CacheError(`${where}: prices must be an object of { [model]: { input, output } } per million tokens, got ${describeValue(prices)}`, 'validation');
  }
  for (const [model, price] of Object.entries(prices)) {
    const p = price as { input?: unknown; output?: unknown } | null;
    if (p === null || typeof p !== 'object') throw new CacheError(`${where}: prices[${JSON.stringify(model)}] must be { input, output }, got ${describeValue(price)}`, 'validation');
    checkOptions(`${where}: prices[${JSON.stringify(model)}]`, p, ['input', 'output']);
    for (const side of ['input', 'output'] as const) {
      const n = p[side];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
        throw new CacheError(`${where}: prices[${JSON.stringify(model)}].${side} must be a non-negative number (per million tokens), got ${describeValue(n)}`, 'validation');
      }
    }
  }
}

/**
 * A wrapper's options: an object holding only the options it reads (a typo
 * is refused with the name meant), with the shared ones checked: `cache` (a
 * Cache, required unless `cacheOptional`), `ttl`, `tenantId`, `namespace`,
 * and the functions `key`, `shouldCache`, `countTokens`. Each wrapper checks
 * the options only it has.
 */
export function checkSiteOptions(where: string, options: unknown, known: readonly string[], cacheOptional = false, mode: SingleFlightMode = 'local'): asserts options is SiteOptions {
  if (options === undefined) throw new CacheError(`${where}: options are required, such as { cache }`, 'validation');
  checkOptions(where, options, known);
  const o = options as SiteOptions;
  if (!cacheOptional || o.cache !== undefined) checkCache(o.cache, where);
  checkTtl(o.ttl, `${where}: ttl`);
  checkTenant(o.tenantId);
  if (o.namespace !== undefined) checkNamespace(o.namespace, where);
  checkFunction(o.key, `${where}: key`);
  checkFunction(o.shouldCache, `${where}: shouldCache`);
  checkFunction(o.countTokens, `${where}: countTokens`);
  siteFreshness(where, o, mode);
}

export function checkCache(cache: unknown, where: string): asserts cache is Cache {
  const c = cache as Partial<Cache> | null | undefined;
  if (c === null || typeof c !== 'object' || typeof c.get !== 'function' || typeof c.set !== 'function') {
    throw new CacheError(`${where}: options.cache must be a cachekit Cache (createMemoryCache, createDragonflyCache), got ${describeValue(cache)}`, 'validation');
  }
}

export function checkTtl(ttl: unknown, name: string): void {
  if (ttl === undefined) return;
  try {
    ttlMs(ttl, undefined);
  } catch {
    throw new CacheError(`${name} must be a positive number of seconds or Infinity, got ${describeValue(ttl)}`, 'validation');
  }
}

export function checkTenant(tenantId: unknown): void {
  if (tenantId !== undefined) scopeOf(tenantId as string);
}

// Glob metacharacters would make `clearPattern('v1:<namespace>:*')` match other namespaces.
const NAMESPACE = /^[^\s*?[\]\\]{1,200}$/;

export function checkNamespace(namespace: unknown, where: string): asserts namespace is string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new CacheError(
      `${where}: namespace must be 1-200 characters without whitespace or glob metacharacters (* ? [ ] \\), got ${describeValue(namespace)}`,
      'validation',
    );
  }
}

export function checkFunction(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function') throw new CacheError(`${name} must be a function, got ${describeValue(value)}`, 'validation');
}

export function checkBoolean(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new CacheError(`${name} must be true or false, got ${describeValue(value)}`, 'validation');
}

export { optionNames } from '../core/options.js';
