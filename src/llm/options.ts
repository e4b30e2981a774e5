import { CacheError } from '../core/errors.js';
import { scopeOf, ttlMs } from '../core/keys.js';
import { checkOptions, describeValue } from '../core/options.js';
import type { Cache } from '../core/types.js';

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
}

/**
 * A wrapper's options: an object holding only the options it reads (a typo
 * is refused with the name meant), with the shared ones checked: `cache` (a
 * Cache, required unless `cacheOptional`), `ttl`, `tenantId`, `namespace`,
 * and the functions `key`, `shouldCache`, `countTokens`. Each wrapper checks
 * the options only it has.
 */
export function checkSiteOptions(where: string, options: unknown, known: readonly string[], cacheOptional = false): asserts options is SiteOptions {
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
