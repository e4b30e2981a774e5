import { CacheError } from '../core/errors.js';
import type { Cache } from '../core/types.js';
import { cachedCall, countBypass, createCallSite, failOpen, type CallSite } from './cached-call.js';
import { emptyWrapperStats } from './entry.js';
import { codeOf } from './code-identity.js';
import { registerKeyRecipe } from './explain-key.js';
import { identityOf } from './identity.js';
import { checkCache, checkSiteOptions, FRESHNESS_OPTIONS, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
import { namespacedKey } from './request-key.js';
import { registerStats } from './wrapper-stats.js';

/**
 * Options of `@Cached`.
 *
 * @example
 * class Support {
 *   @Cached({ cache, ttl: 600 })
 *   async answer(question: string) { ... }
 * }
 */
export interface CachedOptions extends FreshnessOptions<any, any[]> {
  /** Where results are stored. Default: the instance's `cache` property (`this.cache`), read at each call. */
  cache?: Cache;
  /** TTL of stored results, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256 of the arguments>`.
   * Default: `<DeclaringClass>.<method>`. Set it when two classes share a name,
   * or when a minifier renames classes.
   */
  namespace?: string;
  /**
   * What to hash instead of the arguments; called with the instance as `this`,
   * so it can add instance state. The instance's identity fields (`model`,
   * `baseURL`, … as `withCache` detects them, see `IDENTITY_FIELDS`) are
   * hashed with it either way; other instance state is not. Default: all arguments.
   */
  key?: (this: any, ...args: any[]) => unknown;
  /** Tenant whose entries are read and written; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /** Return `false` to keep a result out of the cache (rejections never are cached). Default: cache every result. */
  shouldCache?: (result: unknown) => boolean;
  /** Tokens a result cost, counted as saved on each hit. Default: `tokensOf` (OpenAI, Anthropic and AI SDK `usage` shapes). */
  countTokens?: (result: unknown) => number | undefined;
}

/** An async method, as `@Cached` decorates it. */
export type AsyncMethod<This, A extends unknown[], R> = (this: This, ...args: A) => Promise<R>;

/** `@Cached(...)` applies as a TC39 standard decorator and as a legacy `experimentalDecorators` one. */
export interface CachedDecorator {
  /** As a standard (TC39) method decorator. */
  <This, A extends unknown[], R>(
    method: AsyncMethod<This, A, R>,
    context: ClassMethodDecoratorContext<This, AsyncMethod<This, A, R>>,
  ): AsyncMethod<This, A, R>;
  /**
   * As a legacy (`experimentalDecorators`) method decorator.
   *
   * @typeParam T The decorated method's type, kept as is.
   */
  <T extends (...args: any[]) => Promise<unknown>>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): TypedPropertyDescriptor<T>;
}

const CACHED_OPTIONS = optionNames<CachedOptions>({ cache: true, ttl: true, namespace: true, key: true, tenantId: true, shouldCache: true, countTokens: true, ...FRESHNESS_OPTIONS });

/**
 * Caches an async method's results under its class, name and arguments.
 * Works with standard decorators (TypeScript 5 default) and with
 * `experimentalDecorators` (NestJS), told apart by the arguments the
 * decorator receives. Concurrent identical calls share one execution; a
 * rejection reaches every caller and is never cached. Read the counters with
 * `cacheStats(Class.prototype.method)`.
 *
 * Throws a `validation` CacheError for bad options or when applied to
 * something other than a method, and on a call when neither `options.cache`
 * nor `this.cache` is a cache.
 */
export function Cached(options: CachedOptions = {}): CachedDecorator {
  checkSiteOptions('@Cached', options, CACHED_OPTIONS, true);

  return function decorate(this: unknown, ...args: unknown[]): unknown {
    const [value, second, descriptor] = args;
    if (second !== null && typeof second === 'object' && 'kind' in second) {
      const context = second as DecoratorContext;
      if (context.kind !== 'method' || typeof value !== 'function') throw new CacheError('@Cached decorates methods only', 'validation');
      // A #private method is no property of its class, so the class cannot be found from a call: fail now, not on every call.
      if ((context as ClassMethodDecoratorContext).private && options.namespace === undefined) {
        throw new CacheError(`@Cached on the private method ${String(context.name)}: give options.namespace (its class cannot be found for the default)`, 'validation');
      }
      return cachedMethod(value as AnyMethod, nameOf(context.name), undefined, options);
    }
    const d = descriptor as PropertyDescriptor | undefined;
    if ((typeof second === 'string' || typeof second === 'symbol') && typeof d?.value === 'function') {
      const owner = typeof value === 'function' ? value : (value as object).constructor;
      return { ...d, value: cachedMethod(d.value as AnyMethod, nameOf(second), (owner as { name?: string }).name, options) };
    }
    throw new CacheError('@Cached decorates methods only', 'validation');
  } as CachedDecorator;
}

type AnyMethod = (this: unknown, ...args: unknown[]) => Promise<unknown>;

function nameOf(name: string | symbol): string {
  return typeof name === 'symbol' ? `[${name.description ?? ''}]` : name;
}

function cachedMethod(method: AnyMethod, name: string, knownClass: string | undefined, options: CachedOptions): AnyMethod {
  const stats = emptyWrapperStats();
  const sites = new WeakMap<Cache, CallSite<unknown>>();
  let namespace = options.namespace ?? (knownClass === undefined ? undefined : `${knownClass || 'anonymous'}.${name}`);

  const siteFor = (cache: Cache): CallSite<unknown> => {
    let site = sites.get(cache);
    if (!site) {
      // One flight group per cache: instances holding different caches must each fill their own.
      site = createCallSite({ ...options, ...siteFreshness('@Cached', options), cache }, { stats });
      sites.set(cache, site);
    }
    return site;
  };

  const namespaceFor = (self: unknown): string => {
    if (namespace === undefined) {
      const cls = declaringClass(self, replacement);
      if (cls === undefined) throw new CacheError(`@Cached ${name}: called on an object that does not inherit it; set options.namespace`, 'validation');
      namespace = `${cls}.${name}`;
    }
    return namespace;
  };
  // One rule with withCache: the instance's identity fields are in the key.
  // The method's code is in the key: two methods of one name never share entries, a changed one starts afresh.
  const keyInput = (self: unknown, args: unknown[]) => ({ code: codeOf(method), identity: identityOf(self), input: options.key ? options.key.apply(self, args) : args });

  const replacement = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const cache = options.cache ?? (this as { cache?: unknown } | null | undefined)?.cache;
    const namespace = namespaceFor(this);
    checkCache(cache, `@Cached ${namespace}: no cache given and this.cache is not a cache`);
    const site = siteFor(cache);
    let key: string;
    try {
      key = namespacedKey(keyInput(this, args), namespace);
    } catch (error) {
      if (error instanceof CacheError && error.errorType === 'validation') throw error;
      // An argument the key cannot encode, or a key function that threw: uncached, never failed.
      if (!(error instanceof CacheError)) failOpen(stats, error);
      countBypass(stats);
      return method.apply(this, args);
    }
    return cachedCall(site, key, { upstream: async () => method.apply(this, args), args });
  };
  registerStats(replacement, stats);
  registerKeyRecipe(replacement, (args, self) => ({ input: keyInput(self, args), namespace: namespaceFor(self), tenantId: options.tenantId }));
  return replacement;
}

// Standard decorators are not told their class; the class whose prototype (or,
// for a static method, the class itself) owns the replacement is the one that
// declared it, whatever subclass `self` is an instance of. `undefined` when
// `self` does not inherit the method (a `.call` with another object).
function declaringClass(self: unknown, replacement: unknown): string | undefined {
  for (let holder = self; holder !== null && (typeof holder === 'object' || typeof holder === 'function'); holder = Object.getPrototypeOf(holder)) {
    const owner = holder as object;
    if (Reflect.ownKeys(owner).some((key) => Object.getOwnPropertyDescriptor(owner, key)?.value === replacement)) {
      const cls = typeof owner === 'function' ? owner : owner.constructor;
      return (cls as { name?: string } | undefined)?.name || 'anonymous';
    }
  }
  return undefined;
}
