import { AsyncLocalStorage } from 'node:async_hooks';
import { CacheError } from '../core/errors.js';
import { checkOptions, describeValue } from '../core/options.js';
import { checkBoolean, checkTenant, checkTtl, optionNames } from './options.js';

/** Per-call controls, honoured by every cachekit wrapper called inside `withCacheControl`. */
export interface CacheControl {
  /** Skip the cache entirely: no read, no write. */
  bypass?: boolean;
  /** Skip the read, call upstream, and store the fresh result. */
  refresh?: boolean;
  /** Read as usual, but do not store what upstream returns. */
  noStore?: boolean;
  /** TTL for what this call stores, in seconds (`Infinity`: never expires). */
  ttl?: number;
  /** Tenant for this call, overriding the wrapper's own `tenantId`. */
  tenantId?: string;
}

// One store per process, shared by every copy of cachekit loaded in it (the ESM
// and CommonJS builds side by side, or two installs): a control set through one
// copy must reach wrappers made by another. Versioned, so a future copy with an
// incompatible CacheControl shape gets its own.
const storage: AsyncLocalStorage<CacheControl> = ((globalThis as Record<symbol, unknown>)[Symbol.for('cachekit.cache-control.v1')] ??= new AsyncLocalStorage<CacheControl>()) as AsyncLocalStorage<CacheControl>;

const CONTROLS = optionNames<CacheControl>({ bypass: true, refresh: true, noStore: true, ttl: true, tenantId: true });

/**
 * Runs `fn` with per-call cache controls. The wrapped functions keep their own
 * types: controls travel in async context, not in arguments. Nested calls
 * merge, the innermost winning. Bad controls (a TTL of 0, `{ byPass: true }`,
 * a flag that is not a boolean, ...) throw a `validation` CacheError at once.
 */
export function withCacheControl<T>(control: CacheControl, fn: () => T): T {
  if (control === undefined) throw new CacheError('withCacheControl: controls are required, such as { refresh: true }', 'validation');
  checkOptions('withCacheControl', control, CONTROLS);
  checkBoolean(control.bypass, 'withCacheControl: bypass');
  checkBoolean(control.refresh, 'withCacheControl: refresh');
  checkBoolean(control.noStore, 'withCacheControl: noStore');
  checkTtl(control.ttl, 'withCacheControl: ttl');
  checkTenant(control.tenantId);
  if (typeof fn !== 'function') throw new CacheError(`withCacheControl: fn must be a function, got ${describeValue(fn)}`, 'validation');
  const outer = storage.getStore();
  return storage.run(outer ? { ...outer, ...control } : control, fn);
}

/** The controls in force for the current call, if any. */
export function currentCacheControl(): CacheControl | undefined {
  return storage.getStore();
}
